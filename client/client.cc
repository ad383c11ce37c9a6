#include "client/client.h"

#include <hiredis/hiredis.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <optional>
#include <random>
#include <thread>
#include <utility>

#include "common/check.h"

namespace raftkv::client {
namespace {

using Clock = std::chrono::steady_clock;

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// "host:port" -> endpoint. False on a missing host or a port outside 1..65535.
bool ParseEndpoint(std::string_view s, Endpoint* out) {
  const size_t colon = s.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  const std::string_view port = s.substr(colon + 1);
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || ptr != port.data() + port.size() || value == 0 ||
      value > 65535) {
    return false;
  }
  out->host = std::string(s.substr(0, colon));
  out->port = static_cast<uint16_t>(value);
  return true;
}

// Blocks SIGPIPE on this thread while hiredis writes to a socket, and discards a SIGPIPE the
// write raised (one that was pending before is left alone), so that a peer that closed the
// connection costs an EPIPE error, never the process.
class ScopedSigpipeBlock {
 public:
  ScopedSigpipeBlock() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~ScopedSigpipeBlock() {
    if (!was_pending_) {
      const timespec zero{};
      while (sigtimedwait(&pipe_, nullptr, &zero) == SIGPIPE) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  ScopedSigpipeBlock(const ScopedSigpipeBlock&) = delete;
  ScopedSigpipeBlock& operator=(const ScopedSigpipeBlock&) = delete;

 private:
  sigset_t pipe_;
  sigset_t old_;
  bool was_pending_ = false;
};

struct ContextDeleter {
  void operator()(redisContext* c) const { redisFree(c); }
};
using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

Reply Convert(const redisReply* r) {
  Reply out;
  switch (r->type) {
    case REDIS_REPLY_STATUS:
      out.type = Reply::Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = Reply::Type::kError;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = Reply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_STRING:
      out.type = Reply::Type::kBulk;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ARRAY:
      out.type = Reply::Type::kArray;
      out.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; i++) out.elements.push_back(Convert(r->element[i]));
      break;
    default:
      out.type = Reply::Type::kNil;
      break;
  }
  return out;
}

// Whether a connection kept from an earlier attempt can carry a new command: the peer has not
// closed or reset it, and nothing unexpected is waiting to be read. Checked before sending, so
// that a node that died since the last command costs a definite "not sent", not an ambiguous
// lost reply.
bool Idle(redisContext* c) {
  pollfd p{c->fd, POLLIN, 0};
  if (::poll(&p, 1, 0) == 0) return true;
  return false;  // EOF, an error, or bytes nobody asked for: start afresh
}

timeval ToTimeval(Millis ms) {
  const int64_t count = std::max<int64_t>(1, ms.count());
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(count / 1000);
  tv.tv_usec = static_cast<suseconds_t>((count % 1000) * 1000);
  return tv;
}

// The first word of an error reply ("TIMEOUT", "MOVED", "ERR", ...).
std::string_view ErrorCode(const Reply& r) {
  std::string_view s = r.str;
  return s.substr(0, s.find(' '));
}

bool IsAlreadyAcknowledged(const Reply& r) {
  return r.str.rfind("ERR request ", 0) == 0 &&
         r.str.find(" was already acknowledged") != std::string::npos;
}

}  // namespace

common::Status ParseEndpoints(std::string_view list, std::vector<Endpoint>* out) {
  std::vector<Endpoint> result;
  if (Trim(list).empty()) return common::Status::InvalidArgument("empty list of endpoints");
  size_t start = 0;
  while (true) {
    const size_t comma = list.find(',', start);
    const std::string_view entry = Trim(list.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    Endpoint e;
    if (!ParseEndpoint(entry, &e)) {
      return common::Status::InvalidArgument("bad endpoint \"" + std::string(entry) +
                                             "\" (want host:port, port 1..65535)");
    }
    result.push_back(std::move(e));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  *out = std::move(result);
  return common::Status::OK();
}

std::string EndpointName(const Endpoint& endpoint) {
  return endpoint.host + ":" + std::to_string(endpoint.port);
}

const char* OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kOk:
      return "ok";
    case Outcome::kFailed:
      return "failed";
    case Outcome::kUnknown:
      return "unknown";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------------

struct Client::Impl {
  // How one attempt ended.
  struct Attempt {
    enum class Kind {
      kReply,        // a reply arrived (possibly an error reply)
      kNotSent,      // definite: the connect or AUTH failed before the command was sent
      kAuthRefused,  // definite: AUTH answered with an error (in `reply`)
      kLost,         // ambiguous: sent, but no reply (I/O error, timeout, dropped reply)
      kNoTime,       // nothing done: the deadline has passed
    };
    Kind kind = Kind::kLost;
    Reply reply;
    std::string error;
  };

  explicit Impl(Options o) : options(std::move(o)), rng(options.seed), conns(options.nodes.size()) {
    CHECK(!options.nodes.empty()) << "a client needs at least one node";
    if (options.prefer_leader) current = static_cast<size_t>(rng() % options.nodes.size());
  }

  Clock::time_point Deadline() const { return Clock::now() + options.op_timeout; }

  static Millis Remaining(Clock::time_point deadline) {
    return std::chrono::duration_cast<Millis>(deadline - Clock::now());
  }
  // Whether an attempt can still start: at least a millisecond is left.
  static bool TimeLeft(Clock::time_point deadline) { return Remaining(deadline).count() > 0; }

  void Disconnect(size_t node) { conns[node].reset(); }

  // Runs `argv` once on node `node`, connecting (and AUTHing) first if needed. Every wait is
  // bounded by attempt_timeout and by `deadline`.
  Attempt RunOnce(size_t node, const std::vector<std::string>& argv, Clock::time_point deadline,
                  bool droppable) {
    Attempt a;
    const Endpoint& ep = options.nodes[node];
    const std::string where = EndpointName(ep) + ": ";
    const Millis wait = std::min(options.attempt_timeout, Remaining(deadline));
    if (wait.count() <= 0) {
      a.kind = Attempt::Kind::kNoTime;
      return a;
    }
    const timeval tv = ToTimeval(wait);
    if (conns[node] != nullptr && !Idle(conns[node].get())) Disconnect(node);
    if (conns[node] == nullptr) {
      ContextPtr c(redisConnectWithTimeout(ep.host.c_str(), ep.port, tv));
      if (c == nullptr || c->err != 0) {
        a.kind = Attempt::Kind::kNotSent;
        a.error = where + "connect: " + (c == nullptr ? "out of memory" : c->errstr);
        return a;
      }
      if (!options.password.empty()) {
        redisSetTimeout(c.get(), tv);
        const char* auth_argv[] = {"AUTH", options.password.c_str()};
        const size_t auth_len[] = {4, options.password.size()};
        ReplyPtr r;
        {
          ScopedSigpipeBlock block;
          r.reset(static_cast<redisReply*>(redisCommandArgv(c.get(), 2, auth_argv, auth_len)));
        }
        if (r == nullptr) {
          a.kind = Attempt::Kind::kNotSent;
          a.error = where + "AUTH: " + c->errstr;
          return a;
        }
        if (r->type == REDIS_REPLY_ERROR) {
          a.kind = Attempt::Kind::kAuthRefused;
          a.reply = Convert(r.get());
          a.error = where + "AUTH: " + a.reply.str;
          return a;
        }
      }
      conns[node] = std::move(c);
    }
    redisContext* c = conns[node].get();
    redisSetTimeout(c, tv);
    std::vector<const char*> ptrs;
    std::vector<size_t> lens;
    ptrs.reserve(argv.size());
    lens.reserve(argv.size());
    for (const std::string& s : argv) {
      ptrs.push_back(s.data());
      lens.push_back(s.size());
    }
    ReplyPtr r;
    int saved_errno = 0;
    {
      ScopedSigpipeBlock block;
      r.reset(static_cast<redisReply*>(
          redisCommandArgv(c, static_cast<int>(argv.size()), ptrs.data(), lens.data())));
      saved_errno = errno;
    }
    if (r == nullptr) {
      a.kind = Attempt::Kind::kLost;
      const bool timed_out =
          c->err == REDIS_ERR_IO && (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK);
      a.error = where + (timed_out ? "no reply within " + std::to_string(wait.count()) + " ms"
                                   : std::string("connection: ") + c->errstr);
      Disconnect(node);
      return a;
    }
    a.reply = Convert(r.get());
    if (droppable && options.drop_reply_percent > 0 &&
        static_cast<int>(rng() % 100) < options.drop_reply_percent) {
      a.kind = Attempt::Kind::kLost;
      a.error = where + "reply dropped (drop_reply_percent)";
      a.reply = Reply();
      Disconnect(node);
      return a;
    }
    a.kind = Attempt::Kind::kReply;
    return a;
  }

  // The node with this endpoint, if it is one of `nodes`.
  std::optional<size_t> FindNode(std::string_view host, int64_t port) const {
    for (size_t i = 0; i < options.nodes.size(); i++) {
      if (options.nodes[i].host == host && options.nodes[i].port == port) return i;
    }
    return std::nullopt;
  }

  // The node the next attempt goes to. With prefer_leader and no leader known, asks the nodes
  // in turn (from the current one) for CLUSTER SLOTS: the leader if it is one of `nodes`, else
  // the first node that named a leader (it forwards). Without an answer, the current node.
  size_t PickNode(Clock::time_point deadline) {
    if (!options.prefer_leader || leader_known) return current;
    const size_t n = options.nodes.size();
    for (size_t k = 0; k < n && TimeLeft(deadline); k++) {
      const size_t node = (current + k) % n;
      Attempt a = RunOnce(node, {"CLUSTER", "SLOTS"}, deadline, /*droppable=*/false);
      if (a.kind != Attempt::Kind::kReply) {
        Disconnect(node);
        continue;
      }
      const Reply& r = a.reply;
      if (r.type != Reply::Type::kArray || r.elements.empty() ||
          r.elements[0].elements.size() < 3 || r.elements[0].elements[2].elements.size() < 2) {
        continue;  // -CLUSTERDOWN: this node knows no leader
      }
      const Reply& leader = r.elements[0].elements[2];
      std::optional<size_t> found = FindNode(leader.elements[0].str, leader.elements[1].integer);
      current = found.value_or(node);
      leader_known = true;
      return current;
    }
    return current;
  }

  // The current node failed: the next attempt goes to another one.
  void MoveOn() {
    current = (current + 1) % options.nodes.size();
    leader_known = false;
  }

  void Backoff(int* step, Clock::time_point deadline) {
    const int64_t base = options.retry_backoff.count();
    const int64_t pause = std::min(base << std::min(*step, 4), base * 10);
    (*step)++;
    const Millis wait = std::min(Millis(pause), Remaining(deadline));
    if (wait.count() > 0) std::this_thread::sleep_for(wait);
  }

  common::Status OpenSession(Clock::time_point deadline) {
    std::vector<std::string> argv = {"RAFT.SESSION", "OPEN"};
    if (options.session_timeout_s > 0) argv.push_back(std::to_string(options.session_timeout_s));
    std::string last_error = "no attempt";
    int step = 0;
    while (TimeLeft(deadline)) {
      const size_t node = PickNode(deadline);
      Attempt a = RunOnce(node, argv, deadline, /*droppable=*/false);
      if (a.kind == Attempt::Kind::kNoTime) break;
      switch (a.kind) {
        case Attempt::Kind::kNoTime:
        case Attempt::Kind::kNotSent:
        case Attempt::Kind::kLost:
          last_error = a.error;
          MoveOn();
          break;
        case Attempt::Kind::kAuthRefused:
          return common::Status::InvalidArgument("RAFT.SESSION OPEN: " + a.error);
        case Attempt::Kind::kReply: {
          const Reply& r = a.reply;
          if (r.type == Reply::Type::kInteger && r.integer > 0) {
            session = static_cast<uint64_t>(r.integer);
            next_seq = 1;
            return common::Status::OK();
          }
          if (r.type != Reply::Type::kError) {
            return common::Status::InvalidArgument("RAFT.SESSION OPEN: unexpected reply");
          }
          last_error = EndpointName(options.nodes[node]) + ": " + r.str;
          const std::string_view code = ErrorCode(r);
          if (code == "TIMEOUT" || code == "CLUSTERDOWN" || code == "LOADING") {
            MoveOn();
          } else if (code == "MOVED") {
            Redirect(r);
            continue;
          } else if (code != "TRYAGAIN") {
            return common::Status::InvalidArgument("RAFT.SESSION OPEN: " + last_error);
          }
          break;
        }
      }
      Backoff(&step, deadline);
    }
    return common::Status::IOError("no session opened within op_timeout; last error: " +
                                   last_error);
  }

  // -MOVED <slot> <host>:<port>: the next attempt goes there if it is one of `nodes`.
  // Returns whether it is.
  bool Redirect(const Reply& moved) {
    const std::string_view s = moved.str;
    const size_t space = s.rfind(' ');
    Endpoint target;
    if (space != std::string_view::npos && ParseEndpoint(s.substr(space + 1), &target)) {
      if (std::optional<size_t> found = FindNode(target.host, target.port)) {
        current = *found;
        leader_known = true;
        return true;
      }
    }
    MoveOn();
    return false;
  }

  Result Run(const std::vector<std::string>& args, bool write) {
    CHECK(!args.empty()) << "a command needs a name";
    const Clock::time_point deadline = Deadline();
    Result res;
    std::vector<std::string> argv;
    if (write) {
      if (session == 0) {
        common::Status s = OpenSession(deadline);
        if (!s.ok()) {
          res.outcome = Outcome::kFailed;
          res.error = "no session: " + s.ToString();
          return res;
        }
      }
      const uint64_t seq = next_seq++;
      argv.reserve(args.size() + 4);
      argv.push_back("RAFT.REQUEST");
      argv.push_back(std::to_string(session));
      argv.push_back(std::to_string(seq));
      argv.push_back(std::to_string(seq));  // acked: every earlier request is settled
      argv.insert(argv.end(), args.begin(), args.end());
    } else {
      argv = args;
    }

    bool ambiguous = false;  // some attempt may have been applied
    int step = 0;
    std::string last_error = "op_timeout passed before any attempt";
    Reply last_refusal;  // the last definite error reply, for kFailed
    auto give_up = [&](std::string why) {
      res.outcome = ambiguous ? Outcome::kUnknown : Outcome::kFailed;
      if (!ambiguous) res.reply = last_refusal;
      res.error = std::move(why);
      return res;
    };

    while (TimeLeft(deadline)) {
      const size_t node = PickNode(deadline);
      if (!TimeLeft(deadline)) break;
      Attempt a = RunOnce(node, argv, deadline, /*droppable=*/true);
      if (a.kind == Attempt::Kind::kNoTime) break;
      res.attempts++;
      bool pause = true;
      switch (a.kind) {
        case Attempt::Kind::kNoTime:
        case Attempt::Kind::kNotSent:
          last_error = a.error;
          MoveOn();
          break;
        case Attempt::Kind::kAuthRefused:
          last_refusal = a.reply;
          return give_up(a.error);
        case Attempt::Kind::kLost:
          ambiguous = true;
          last_error = a.error;
          MoveOn();
          break;
        case Attempt::Kind::kReply: {
          if (!a.reply.is_error()) {
            res.outcome = Outcome::kOk;
            res.reply = std::move(a.reply);
            res.error.clear();
            return res;
          }
          last_error = EndpointName(options.nodes[node]) + ": " + a.reply.str;
          const std::string_view code = ErrorCode(a.reply);
          if (code == "TIMEOUT") {
            ambiguous = true;
            MoveOn();
          } else if (code == "CLUSTERDOWN" || code == "LOADING") {
            last_refusal = a.reply;
            MoveOn();
          } else if (code == "TRYAGAIN") {
            last_refusal = a.reply;
          } else if (code == "MOVED") {
            last_refusal = a.reply;
            pause = !Redirect(a.reply);
          } else if (code == "MISCONF" || code == "NOAUTH" || code == "WRONGPASS") {
            last_refusal = a.reply;
            return give_up(last_error);
          } else if (write && code == "SESSIONEXPIRED") {
            session = 0;  // the next write opens a new one
            last_refusal = a.reply;
            return give_up(last_error);
          } else if (write && IsAlreadyAcknowledged(a.reply)) {
            last_refusal = a.reply;
            return give_up(last_error);
          } else {
            // The command's own error: definite (a retried write gets its first reply).
            res.outcome = Outcome::kFailed;
            res.reply = std::move(a.reply);
            res.error = last_error;
            return res;
          }
          break;
        }
      }
      if (pause) Backoff(&step, deadline);
    }
    return give_up("gave up after " + std::to_string(res.attempts) +
                   " attempts within op_timeout; last error: " + last_error);
  }

  void CloseAll() {
    if (session != 0) {
      const Clock::time_point deadline = Clock::now() + options.attempt_timeout;
      (void)RunOnce(current, {"RAFT.SESSION", "CLOSE", std::to_string(session)}, deadline,
                    /*droppable=*/false);
      session = 0;
    }
    for (ContextPtr& c : conns) c.reset();
    leader_known = false;
  }

  Options options;
  std::mt19937_64 rng;
  std::vector<ContextPtr> conns;  // one per node of options.nodes; null: not connected
  size_t current = 0;             // the node the next attempt goes to
  bool leader_known = false;      // prefer_leader: `current` came from CLUSTER SLOTS or -MOVED
  uint64_t session = 0;           // 0: none open
  uint64_t next_seq = 1;          // the seq of the session's next request
};

Client::Client(Options options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Client::~Client() { Close(); }

common::Status Client::Open() { return impl_->OpenSession(impl_->Deadline()); }

uint64_t Client::session() const { return impl_->session; }

Result Client::Get(std::string_view key) { return Read({"GET", std::string(key)}); }

Result Client::Set(std::string_view key, std::string_view value) {
  return Write({"SET", std::string(key), std::string(value)});
}

Result Client::Append(std::string_view key, std::string_view value) {
  return Write({"APPEND", std::string(key), std::string(value)});
}

Result Client::Del(std::string_view key) { return Write({"DEL", std::string(key)}); }

Result Client::Incr(std::string_view key) { return Write({"INCR", std::string(key)}); }

Result Client::Write(const std::vector<std::string>& args) { return impl_->Run(args, true); }

Result Client::Read(const std::vector<std::string>& args) { return impl_->Run(args, false); }

void Client::Close() { impl_->CloseAll(); }

size_t Client::current_node() const { return impl_->current; }

}  // namespace raftkv::client
