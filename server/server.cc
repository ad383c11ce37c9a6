#include "server/server.h"

#include <dlfcn.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <deque>
#include <iterator>

#include "common/check.h"
#include "common/strings.h"
#include "kv/sessions.h"
#include "kv/value_cache.h"
#include "protocol/command.h"
#include "protocol/resp_parser.h"
#include "protocol/resp_writer.h"
#include "server/fault_command.h"
#include "server/log.h"
#include "server/uv_background_work.h"

namespace server {

namespace {

constexpr std::string_view kTimeout = "TIMEOUT request may or may not have been applied";
constexpr std::string_view kNoLeader = "CLUSTERDOWN no leader";

std::string WrongArgs(const std::string& name) {
  return ErrorReply("ERR wrong number of arguments for '" + name + "' command");
}

// jemalloc's mallctl when it is linked in (raftkv-server's default build), else null (a build
// without it, or a sanitizer build, whose allocator is the sanitizer's).
using MallctlFn = int (*)(const char*, void*, size_t*, void*, size_t);
MallctlFn Mallctl() {
  static const MallctlFn fn = reinterpret_cast<MallctlFn>(dlsym(RTLD_DEFAULT, "mallctl"));
  return fn;
}

// The allocator this process runs with, as INFO's mem_allocator: "jemalloc-<version>" or
// "libc".
const std::string& MemAllocator() {
  static const std::string name = [] {
    const char* version = nullptr;
    size_t size = sizeof(version);
    if (Mallctl() != nullptr && Mallctl()("version", &version, &size, nullptr, 0) == 0 &&
        version != nullptr) {
      return "jemalloc-" + std::string(version);
    }
    return std::string("libc");
  }();
  return name;
}

// The process's resident set in bytes (INFO used_memory_rss); 0 if /proc cannot tell.
uint64_t ResidentBytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long long size = 0, resident = 0;
  const int n = std::fscanf(f, "%llu %llu", &size, &resident);
  std::fclose(f);
  if (n != 2) return 0;
  return static_cast<uint64_t>(resident) * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

// The bytes the allocator has handed out and not taken back (INFO used_memory): jemalloc's
// stats.allocated, refreshed; without jemalloc, the resident set.
uint64_t AllocatedBytes() {
  if (Mallctl() != nullptr) {
    uint64_t epoch = 1;
    size_t epoch_size = sizeof(epoch);
    size_t allocated = 0;
    size_t size = sizeof(allocated);
    if (Mallctl()("epoch", &epoch, &epoch_size, &epoch, epoch_size) == 0 &&
        Mallctl()("stats.allocated", &allocated, &size, nullptr, 0) == 0) {
      return allocated;
    }
  }
  return ResidentBytes();
}

// Bytes as Redis writes them for humans: "0B", "512B", "1.50K", "12.25M".
std::string HumanBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"K", "M", "G", "T", "P"};
  if (bytes < 1024) return std::to_string(bytes) + "B";
  double v = static_cast<double>(bytes) / 1024;
  size_t unit = 0;
  while (v >= 1024 && unit + 1 < std::size(kUnits)) {
    v /= 1024;
    unit++;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f%s", v, kUnits[unit]);
  return buf;
}

// Redis's check on a client name (CLIENT SETNAME, HELLO SETNAME): printable ASCII without spaces;
// "" clears the name. "" when `name` is acceptable, else the error text.
std::string ClientNameError(const std::string& name) {
  for (char c : name) {
    auto u = static_cast<unsigned char>(c);
    if (u < '!' || u > '~') {
      return "ERR Client names cannot contain spaces, newlines or special characters.";
    }
  }
  return "";
}

template <typename T>
void CloseHandle(T* handle) {
  uv_close(reinterpret_cast<uv_handle_t*>(handle),
           [](uv_handle_t* h) { delete reinterpret_cast<T*>(h); });
}

// A connection's MULTI state.
struct Transaction {
  bool active = false;
  bool dirty = false;  // a command failed to queue: EXEC aborts
  std::vector<std::vector<std::string>> queue;
  std::vector<Plan> plans;
};

}  // namespace

// What the server keeps per connection: its MULTI state, and the gate that keeps a pipeline's
// reads and writes in order (see Dispatch).
struct Server::Connection : Client::Context {
  Transaction txn;
  size_t inflight = 0;          // data requests started and not yet answered
  bool inflight_write = false;  // whether those are writes (else reads)
  struct Waiting {
    DeferredReply reply;
    std::vector<Plan> plans;
    std::vector<std::vector<std::string>> commands;
    bool transaction;
    bool write;
  };
  std::deque<Waiting> waiting;  // held back until the requests of the other kind finish
};

namespace {

Server::Connection* ConnectionOf(Client& client) {
  if (client.context() == nullptr) client.set_context(std::make_unique<Server::Connection>());
  return static_cast<Server::Connection*>(client.context());
}

// One line of CLIENT LIST / CLIENT INFO, in Redis's layout, with the fields raftkv keeps: the
// connection's id, address and name, its age and idle time in seconds, MULTI's state (flags x,
// multi = commands queued) and the reply bytes it holds (omem).
std::string ClientLine(const Client& client, uint64_t now_ms) {
  // Read only: a connection that never needed its state (no context yet) is outside MULTI.
  static const Transaction kNone;
  const auto* conn = static_cast<const Server::Connection*>(client.context());
  const Transaction& txn = conn != nullptr ? conn->txn : kNone;
  std::string line =
      "id=" + std::to_string(client.id()) + " addr=" + client.address() + " name=" + client.name();
  line += " age=" + std::to_string((now_ms - client.connected_at_ms()) / 1000);
  line += " idle=" + std::to_string((now_ms - client.last_interaction_ms()) / 1000);
  line += txn.active ? " flags=x" : " flags=N";
  line += " db=0 sub=0 psub=0 ssub=0 multi=";
  line += txn.active ? std::to_string(txn.queue.size()) : "-1";
  line += " omem=" + std::to_string(client.output_bytes());
  line += " user=default\n";
  return line;
}

// The RESP arrays a follower forwards: one command, or MULTI, the queue, EXEC.
std::string EncodeCommands(const std::vector<std::vector<std::string>>& commands,
                           bool transaction) {
  std::string out;
  protocol::RespWriter w(&out);
  if (transaction) w.BulkStringArray({"MULTI"});
  for (const std::vector<std::string>& args : commands) w.BulkStringArray(args);
  if (transaction) w.BulkStringArray({"EXEC"});
  return out;
}

// A queued command whose arguments are wrong in a way Redis finds only when it runs the
// command (a syntax error, a number that does not parse): its error becomes its reply inside
// EXEC's array, and the other commands still apply.
Plan RunTimeError(Plan p) {
  Plan q;
  q.kind = Plan::Kind::kRead;  // no ops: it changes nothing
  q.format = [error = std::move(p.error)](std::span<const kv::OpResult>, std::string* out) {
    out->append(error);
  };
  return q;
}

// A 40-character node name, as Redis Cluster's node ids look.
std::string ClusterNodeName(uint64_t id) {
  char buf[41];
  std::snprintf(buf, sizeof(buf), "%040llx", static_cast<unsigned long long>(id));
  return buf;
}

// kGet ops evaluated on the local state (a read after its read point).
bool EvaluateReads(kv::StateMachine* sm, const std::vector<protocol::Op>& ops,
                   std::vector<kv::OpResult>* results, std::string* error) {
  results->clear();
  for (const protocol::Op& op : ops) {
    kv::OpResult& r = results->emplace_back();
    common::Status s = sm->Get(op.keys[0], &r.bulk);
    if (s.ok()) {
      r.kind = kv::OpResult::Kind::kBulk;
    } else if (s.code() == common::Status::Code::kNotFound) {
      r.kind = kv::OpResult::Kind::kNil;
    } else {
      *error = ErrorReply("ERR storage error: " + s.message());
      return false;
    }
  }
  return true;
}

}  // namespace

Server::Server(uv_loop_t* loop, Config config)
    : loop_(loop),
      config_(std::move(config)),
      cursors_(4096,
               static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count())) {
}

Server::~Server() = default;

common::Status Server::Start() {
  kv::NodeStorage::Options so;
  so.value_cache_bytes = config_.value_cache_bytes;
  common::Status s = kv::NodeStorage::Open(config_.dir, so, &storage_);
  if (!s.ok()) return s;

  PeerTransport::Options po = PeerTransport::OptionsFromConfig(config_);
  po.jitter_seed =
      config_.node_id * 7919 +
      static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  po.on_message = [this](raft::Message m) { driver_->Step(m); };
  po.on_forward_request = [this](protocol::ForwardRequest q) { OnForwardRequest(std::move(q)); };
  po.on_forward_reply = [this](protocol::ForwardReply r) { OnForwardReply(std::move(r)); };
  po.on_peer_state = [this](uint64_t peer, bool connected) { OnPeerState(peer, connected); };
  po.on_snapshot_chunk = [this](protocol::SnapshotChunk c) {
    driver_->OnSnapshotChunk(std::move(c));
  };
  po.on_snapshot_ack = [this](protocol::SnapshotAck a) { driver_->OnSnapshotAck(a); };
  po.on_log = [](LogLevel level, std::string_view line) {
    spdlog::log(SpdlogLevel(level), "peer: {}", line);
  };
  max_forward_reply_bytes_ = po.max_frame_bytes - 4096;
  transport_ = std::make_unique<PeerTransport>(loop_, po);

  raft::Config rc;
  rc.id = config_.node_id;
  for (const ClusterMember& m : config_.cluster) rc.voters.push_back(m.id);
  rc.heartbeat_ticks = 1;
  rc.election_ticks =
      static_cast<int>(std::max<uint32_t>(2, config_.election_timeout_ms / config_.heartbeat_ms));
  rc.seed = po.jitter_seed ^ 0x5bd1e995u;
  // A whole cluster restarted elects a leader within one election timeout, not two.
  rc.fast_first_election = true;
  rc.max_inflight_bytes = config_.max_inflight_bytes;
  rc.max_uncommitted_bytes = config_.max_uncommitted_bytes;
  rc.max_apply_lag_bytes = config_.max_apply_lag_bytes;
  election_ticks_ = static_cast<uint64_t>(rc.election_ticks);
  storage_news_ = new uv_async_t;
  storage_news_->data = this;
  uv_async_init(loop_, storage_news_, [](uv_async_t* h) {
    auto* self = static_cast<Server*>(h->data);
    self->driver_->OnStorageNews();
    self->CheckFatal();
  });
  RaftDriver::Options dopts;
  // The writes of a loop pass share a log entry up to 256 KiB: well under an entry's limit,
  // and an eighth of the uncommitted data a leader takes at most, which it then refuses (or
  // takes) in steps that fine.
  dopts.max_batch_bytes = std::min<uint64_t>(
      {256 << 10, config_.max_entry_bytes / 2, config_.max_uncommitted_bytes / 8});
  dopts.snapshot_entries = config_.snapshot_entries;
  dopts.compact_keep_tail = config_.snapshot_keep_entries;
  dopts.snapshot_log_bytes = config_.snapshot_log_bytes;
  // A tick is a heartbeat interval; a rate too small for one byte a tick still sends one.
  dopts.snapshot_bytes_per_tick =
      config_.snapshot_rate_bytes == 0
          ? 0
          : std::max<uint64_t>(1, config_.snapshot_rate_bytes * config_.heartbeat_ms / 1000);
  // A snapshot stream without progress is abandoned after 4 election timeouts, and never
  // sooner than 4 s: a chunk takes as long to write whatever the election timeout.
  dopts.snapshot_stall_ticks = static_cast<int>(
      std::max<uint64_t>(4 * static_cast<uint64_t>(rc.election_ticks),
                         (4000 + config_.heartbeat_ms - 1) / config_.heartbeat_ms));
  dopts.background = std::make_unique<UvBackgroundWork>(loop_);
  // Applying waits while the state's LevelDB would throttle or stop writes (compaction behind,
  // on a saturated disk): the loop keeps its heartbeats and peers instead of sleeping in it.
  dopts.apply_would_block = [storage = storage_.get()] {
    return storage->state()->WritesWouldStall();
  };
  dopts.log = [](LogLevel level, std::string_view line) {
    spdlog::log(SpdlogLevel(level), "raft: {}", line);
  };
  driver_ = std::make_unique<RaftDriver>(
      rc, storage_.get(), transport_.get(), [news = storage_news_] { uv_async_send(news); },
      std::move(dopts));
  request_timeout_ticks_ =
      (config_.request_timeout_ms + config_.heartbeat_ms - 1) / config_.heartbeat_ms;
  driver_->set_request_timeout_ticks(request_timeout_ticks_);
  s = driver_->Start();
  if (!s.ok()) return s;
  s = transport_->Start();
  if (!s.ok()) return s;

  // This process's exactly-once session for the writes it forwards: random, so that a restart
  // never reuses the sequence numbers of an earlier run.
  NewForwardSession();
  start_time_ms_ = uv_now(loop_);
  CheckDisk();

  tick_ = new uv_timer_t;
  tick_->data = this;
  uv_timer_init(loop_, tick_);
  uv_timer_start(
      tick_, [](uv_timer_t* h) { static_cast<Server*>(h->data)->OnTick(); }, config_.heartbeat_ms,
      config_.heartbeat_ms);
  // Once per loop iteration, before it sleeps: everything the requests of this iteration
  // proposed goes out as one Ready (one fsync for all of them).
  flush_ = new uv_prepare_t;
  flush_->data = this;
  uv_prepare_init(loop_, flush_);
  uv_prepare_start(flush_, [](uv_prepare_t* h) {
    auto* self = static_cast<Server*>(h->data);
    self->driver_->Flush();
    self->CheckFatal();
  });

  ClientListener::Options lo;
  lo.bind = config_.bind;
  lo.port = config_.port;
  lo.maxclients = config_.maxclients;
  lo.idle_timeout_ms = static_cast<uint64_t>(config_.timeout_seconds) * 1000;
  lo.require_auth = !config_.requirepass.empty();
  lo.max_output_buffer_bytes = config_.client_output_buffer_limit;
  lo.max_query_buffer_bytes = config_.client_query_buffer_limit;
  listener_ = std::make_unique<ClientListener>(loop_, lo, this);
  return listener_->Start();
}

void Server::Shutdown() {
  if (stopped_) return;
  if (shutting_down_) {  // asked twice: stop now
    Stop();
    return;
  }
  shutting_down_ = true;
  raft::Node& n = driver_->node();
  if (n.role() != raft::Role::kLeader || config_.cluster.size() == 1) {
    spdlog::info("shutting down");
    Stop();
    return;
  }
  // Hand leadership to the connected follower with the longest log, so that clients see a
  // new leader at once instead of after an election timeout.
  uint64_t best = 0;
  raft::Index best_match = 0;
  for (const ClusterMember& m : config_.cluster) {
    const raft::Progress* pr = n.progress(m.id);
    if (m.id == config_.node_id || pr == nullptr || !transport_->connected(m.id)) continue;
    if (best == 0 || pr->match > best_match) {
      best = m.id;
      best_match = pr->match;
    }
  }
  if (best == 0 || !driver_->TransferLeadership(best).ok()) {
    spdlog::info("shutting down (no follower to hand leadership to)");
    Stop();
    return;
  }
  spdlog::info("shutting down: handing leadership to node {} first", best);
  shutdown_deadline_ = ticks_ + 2 * election_ticks_;
  driver_->Flush();
}

void Server::Stop() {
  if (stopped_) return;
  stopped_ = true;
  if (driver_) driver_->Stop();  // before storage_news_ closes: nothing wakes it any more
  if (listener_) listener_->Stop();
  if (transport_) transport_->Stop();
  if (tick_) CloseHandle(tick_);
  if (flush_) CloseHandle(flush_);
  if (storage_news_) CloseHandle(storage_news_);
  tick_ = nullptr;
  flush_ = nullptr;
  storage_news_ = nullptr;
}

void Server::CheckFatal() {
  if (driver_ && driver_->failed() && fatal_.ok()) {
    fatal_ = driver_->failure();
    spdlog::critical("stopping: {}", fatal_.ToString());
    Stop();
    uv_stop(loop_);  // main closes what else it has open and exits non-zero
  }
}

void Server::CheckDisk() {
  if (config_.min_free_disk_mb == 0) return;
  struct statvfs st;
  if (statvfs(config_.dir.c_str(), &st) != 0) return;
  disk_free_mb_ = static_cast<uint64_t>(st.f_bavail) * st.f_frsize / (1024 * 1024);
  bool low = disk_free_mb_ < config_.min_free_disk_mb;
  if (low != disk_low_) {
    if (low) {
      spdlog::warn("refusing writes: {} MiB free in {}, below min-free-disk-mb {}", disk_free_mb_,
                   config_.dir, config_.min_free_disk_mb);
    } else {
      spdlog::info("accepting writes again: {} MiB free in {}", disk_free_mb_, config_.dir);
    }
  }
  disk_low_ = low;
}

void Server::OnTick() {
  ticks_++;
  driver_->Tick();
  RetryForwards();
  CheckTransfers();
  if (ticks_ % std::max<uint64_t>(1, 1000 / config_.heartbeat_ms) == 0) CheckDisk();
  if (shutting_down_ &&
      (driver_->node().role() != raft::Role::kLeader || ticks_ >= shutdown_deadline_)) {
    spdlog::info("leadership is with node {}; stopping", driver_->node().leader());
    Stop();
  }
  CheckFatal();
}

std::string Server::RedirectReply(uint16_t slot) {
  raft::NodeId leader = driver_->node().leader();
  for (const ClusterMember& m : config_.cluster) {
    if (m.id == leader && leader != config_.node_id) {
      return ErrorReply("MOVED " + std::to_string(slot) + " " + m.host + ":" +
                        std::to_string(m.client_port));
    }
  }
  return ErrorReply(kNoLeader);
}

// ---------------------------------------------------------------- data commands

// A pipeline runs in order, as in Redis: a read sent after a write on the same connection sees
// that write, and a write sent after a read does not change what the read returns. Requests of
// one kind may run together (writes are proposed in order; reads share ReadIndex rounds), but
// a request of the other kind waits, its reply slot reserved, until those in flight have
// answered.
void Server::Dispatch(Client& client, std::vector<Plan> plans,
                      std::vector<std::vector<std::string>> commands, bool transaction) {
  const bool write =
      transaction || plans[0].kind == Plan::Kind::kWrite || plans[0].kind == Plan::Kind::kTransfer;
  Connection* conn = ConnectionOf(client);
  DeferredReply reply = client.Defer();
  if ((conn->inflight > 0 && conn->inflight_write != write) || !conn->waiting.empty()) {
    conn->waiting.push_back(
        {std::move(reply), std::move(plans), std::move(commands), transaction, write});
    return;
  }
  Begin(client.weak_from_this(), conn, std::move(reply), std::move(plans), std::move(commands),
        transaction, write);
}

void Server::Begin(std::weak_ptr<Client> weak, Connection* conn, DeferredReply reply,
                   std::vector<Plan> plans, std::vector<std::vector<std::string>> commands,
                   bool transaction, bool write) {
  conn->inflight++;
  conn->inflight_write = write;
  // Answers the client, then lets the requests held behind this one start. The connection
  // state is reached through the client, which may have gone meanwhile.
  Sink sink = [this, weak, reply](std::string out) {
    reply.Send(std::move(out));
    std::shared_ptr<Client> client = weak.lock();
    if (client == nullptr || client->closed()) return;
    Connection* c = ConnectionOf(*client);
    if (--c->inflight > 0) return;
    while (!c->waiting.empty() &&
           (c->inflight == 0 || c->waiting.front().write == c->inflight_write)) {
      Connection::Waiting w = std::move(c->waiting.front());
      c->waiting.pop_front();
      Begin(weak, c, std::move(w.reply), std::move(w.plans), std::move(w.commands), w.transaction,
            w.write);
    }
  };
  const uint16_t slot = plans[0].slot;
  // A write forwarded without a session of its own goes in this node's forwarding session, and
  // may then be sent again. Opening or closing a session is neither: it is sent once.
  const bool session_op = !transaction && IsSessionCommand(plans[0]);
  const bool node_session = write && !session_op && (transaction || plans[0].session.id == 0);
  const bool resendable = !session_op;
  raft::Node& n = driver_->node();
  if (n.role() == raft::Role::kLeader) {
    // Leadership lost before anything was proposed: try the new leader, or redirect.
    auto not_leader = [this, sink, slot, node_session, resendable, transaction,
                       commands = std::move(commands)]() {
      if (config_.follower_mode == FollowerMode::kForward) {
        ForwardToLeader(sink, EncodeCommands(commands, transaction), node_session, resendable);
      } else {
        sink(RedirectReply(slot));
      }
    };
    RunOnLeader(std::move(plans), transaction, SessionRef(), std::move(sink),
                std::move(not_leader));
    return;
  }
  if (config_.debug_unsafe == DebugUnsafe::kStaleReads && !transaction &&
      plans[0].kind == Plan::Kind::kRead) {
    // Deliberately wrong (debug-unsafe): the follower's own state, which may be stale.
    std::vector<kv::OpResult> results;
    std::string out;
    if (EvaluateReads(storage_->state(), plans[0].ops, &results, &out)) {
      plans[0].format(results, &out);
    }
    return sink(std::move(out));
  }
  if (config_.follower_mode == FollowerMode::kMoved) return sink(RedirectReply(slot));
  ForwardToLeader(std::move(sink), EncodeCommands(commands, transaction), node_session, resendable);
}

void Server::RunOnLeader(std::vector<Plan> plans, bool transaction, SessionRef node_session,
                         Sink sink, std::function<void()> not_leader) {
  if (driver_->node().role() != raft::Role::kLeader) return not_leader();
  kv::StateMachine* sm = storage_->state();

  // The callbacks move into the read's: no copy of a request's state.
  auto read_then = [this](Sink to, std::function<void()> elsewhere,
                          std::function<void(std::string*)> answer) {
    driver_->Read([this, sink = std::move(to), not_leader = std::move(elsewhere),
                   answer = std::move(answer)](RaftDriver::Outcome o) {
      switch (o) {
        case RaftDriver::Outcome::kApplied: {
          std::string out;
          answer(&out);
          return sink(std::move(out));
        }
        case RaftDriver::Outcome::kNotLeader:
          return not_leader();
        case RaftDriver::Outcome::kUnknown:
          timeouts_++;
          return sink(ErrorReply(kTimeout));
        case RaftDriver::Outcome::kBusy:
        case RaftDriver::Outcome::kFailed:
          return sink(ErrorReply("CLUSTERDOWN the node is stopping"));
      }
    });
  };

  if (!transaction) {
    Plan& p = plans[0];
    switch (p.kind) {
      case Plan::Kind::kError:
        return sink(p.error);
      case Plan::Kind::kRead:
        return read_then(
            std::move(sink), std::move(not_leader),
            [sm, ops = std::move(p.ops), format = std::move(p.format)](std::string* out) {
              std::vector<kv::OpResult> results;
              if (EvaluateReads(sm, ops, &results, out)) format(results, out);
            });
      case Plan::Kind::kKeyspace:
        return read_then(
            std::move(sink), std::move(not_leader),
            [this, sm, fn = std::move(p.keyspace)](std::string* out) { fn(*sm, cursors_, out); });
      case Plan::Kind::kTransfer:
        return StartTransfer(p.transfer_target, std::move(sink));
      case Plan::Kind::kWrite:
        break;
    }
  }

  // A write, or a MULTI queue: one log entry. The queue's reply is an array of each command's
  // reply, built from its share of the results.
  protocol::Command cmd;
  SessionRef session = !transaction && plans[0].session.id != 0 ? plans[0].session : node_session;
  if (!transaction && IsSessionCommand(plans[0])) {
    session = SessionRef();  // opening or closing a session is not a request in one
  }
  if (config_.debug_unsafe == DebugUnsafe::kNoDedup) session = SessionRef();  // deliberately
  cmd.session = session.id;
  cmd.seq = session.seq;
  cmd.acked = session.acked;
  cmd.create_session = session.create;
  // Cluster time (kv/sessions.h): this leader's clock; applying never lets it go back.
  cmd.time_ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
  std::vector<std::pair<size_t, std::function<void(std::span<const kv::OpResult>, std::string*)>>>
      parts;
  for (Plan& p : plans) {
    parts.emplace_back(p.ops.size(), std::move(p.format));
    for (protocol::Op& op : p.ops) cmd.ops.push_back(std::move(op));
  }
  if (cmd.ops.empty()) {  // a queue of commands that all failed: nothing to propose
    std::string out;
    protocol::RespWriter(&out).ArrayHeader(parts.size());
    for (const auto& part : parts) part.second({}, &out);
    return sink(std::move(out));
  }
  if (disk_low_) {
    return sink(ErrorReply("MISCONF not enough free disk space to accept writes: " +
                           std::to_string(disk_free_mb_) + " MiB free in " + config_.dir +
                           ", min-free-disk-mb is " + std::to_string(config_.min_free_disk_mb)));
  }
  std::string data = protocol::EncodeCommand(cmd);
  if (data.size() > config_.max_entry_bytes) {
    return sink(ErrorReply("ERR value too large for replicated log (max " +
                           std::to_string(config_.max_entry_bytes) + " bytes)"));
  }
  const size_t total_ops = cmd.ops.size();
  const bool batchable = protocol::Batchable(cmd);
  driver_->Propose(
      std::move(data),
      [this, sink = std::move(sink), not_leader = std::move(not_leader), transaction, total_ops,
       parts = std::move(parts)](RaftDriver::Outcome o, const kv::ApplyResult* r) {
        switch (o) {
          case RaftDriver::Outcome::kApplied: {
            std::string out;
            if (r->refused || r->results.size() != total_ops) {
              // Refused unapplied (its session, its window), or undecodable: one error, the
              // reply of the whole request.
              if (!r->results.empty() && r->results[0].kind == kv::OpResult::Kind::kError) {
                protocol::RespWriter(&out).Error(r->results[0].bulk);
              } else {
                out = ErrorReply("ERR the request was not applied");
              }
              return sink(std::move(out));
            }
            std::span<const kv::OpResult> all(r->results);
            if (transaction) protocol::RespWriter(&out).ArrayHeader(parts.size());
            size_t offset = 0;
            for (const auto& [count, format] : parts) {
              format(all.subspan(offset, count), &out);
              offset += count;
            }
            return sink(std::move(out));
          }
          case RaftDriver::Outcome::kNotLeader:
            return not_leader();
          case RaftDriver::Outcome::kBusy:
            return sink(ErrorReply("TRYAGAIN the leader refuses writes for now: " +
                                   driver_->busy_reason()));
          case RaftDriver::Outcome::kUnknown:
          case RaftDriver::Outcome::kFailed:
            timeouts_++;
            return sink(ErrorReply(kTimeout));
        }
      },
      batchable);
}

void Server::ForwardToLeader(Sink sink, std::string commands, bool node_session, bool resendable) {
  raft::NodeId leader = driver_->node().leader();
  // No leader, or one this node cannot reach now: the request would not be delivered, so the
  // answer is definite.
  if (leader == raft::kNoNode || leader == config_.node_id || !transport_->connected(leader)) {
    return sink(ErrorReply(kNoLeader));
  }
  Forward f;
  f.sink = std::move(sink);
  f.commands = std::move(commands);
  f.deadline = ticks_ + request_timeout_ticks_ + 2 * election_ticks_;
  f.resendable = resendable;
  if (node_session) {
    // The session's window bounds the requests in flight (kv/sessions.h).
    if (!forward_seqs_.empty() && forward_seq_ + 1 - *forward_seqs_.begin() >= kv::kSessionWindow) {
      return f.sink(ErrorReply("TRYAGAIN too many forwarded writes in flight"));
    }
    f.session = forward_session_;
    f.seq = ++forward_seq_;
    forward_seqs_.insert(f.seq);
  }
  const uint64_t id = ++next_forward_id_;
  forwards_.emplace(id, std::move(f));
  forwarded_requests_++;
  SendForward(id, leader);
  auto it = forwards_.find(id);
  if (it != forwards_.end() && it->second.leader == 0) {
    // The first attempt was not queued, so never delivered: a definite failure.
    FinishForward(id, ErrorReply("TRYAGAIN the link to the leader is congested"));
  }
}

void Server::NewForwardSession() {
  uint64_t session = 0;
  while (session == 0 || session == forward_session_) {
    CHECK(RAND_bytes(reinterpret_cast<unsigned char*>(&session), sizeof(session)) == 1)
        << "RAND_bytes failed";
  }
  forward_session_ = session;
  forward_seq_ = 0;
  forward_seqs_.clear();
}

void Server::SendForward(uint64_t id, raft::NodeId leader) {
  auto it = forwards_.find(id);
  if (it == forwards_.end()) return;
  Forward& f = it->second;
  if (f.seq != 0 && f.session != forward_session_) {
    // The node's session was replaced (it had expired). A request never applied in the old
    // one moves to the new one; one that may have been applied must not run again.
    if (f.ambiguous) return FinishForward(id, ErrorReply(kTimeout));
    f.session = forward_session_;
    f.seq = ++forward_seq_;
    forward_seqs_.insert(f.seq);
  }
  protocol::ForwardRequest q;
  q.from = config_.node_id;
  q.to = leader;
  q.id = id;
  if (f.seq != 0) {
    q.session = f.session;
    q.seq = f.seq;
    q.acked = *forward_seqs_.begin();  // every request below it has been answered
  }
  q.commands = f.commands;
  f.leader = leader;
  f.sent = ticks_;
  if (leader == config_.node_id) {
    // This node leads now: serve the request here, in the same session.
    ServeForwarded(q, [this, id](bool not_leader, std::string out) {
      auto at = forwards_.find(id);
      if (at == forwards_.end() || at->second.leader != config_.node_id) return;
      if (not_leader) {
        at->second.leader = 0;  // nothing was proposed; try again on a later tick
      } else {
        OnForwardAnswer(id, std::move(out));
      }
    });
    return;
  }
  if (!transport_->SendFrame(leader, q)) f.leader = 0;  // not queued: never delivered
}

void Server::OnForwardAnswer(uint64_t id, std::string reply) {
  auto it = forwards_.find(id);
  if (it == forwards_.end()) return;
  Forward& f = it->second;
  if (f.seq != 0 && !f.ambiguous && reply.starts_with("-SESSIONEXPIRED")) {
    // The node's own session expired, and this request was refused, never applied: start a
    // new session and send it again there.
    if (f.session == forward_session_) NewForwardSession();
    f.leader = 0;
    return;
  }
  if (f.resendable && reply == ErrorReply(kTimeout) && f.deadline > ticks_) {
    // The leader could not tell the outcome: ask again, in the same session, until the
    // deadline. The retry cannot apply twice.
    f.leader = 0;
    f.ambiguous = true;
    return;
  }
  FinishForward(id, std::move(reply));
}

void Server::FinishForward(uint64_t id, std::string reply) {
  auto it = forwards_.find(id);
  if (it == forwards_.end()) return;
  Forward& f = it->second;
  // After an attempt that may have been applied, a refusal of a later copy (its session gone,
  // or its result already forgotten) does not mean "not applied": the outcome is unknown.
  if (f.ambiguous && (reply.starts_with("-SESSIONEXPIRED") ||
                      (reply.starts_with("-ERR request ") &&
                       reply.find("was already acknowledged") != std::string::npos))) {
    timeouts_++;
    reply = ErrorReply(kTimeout);
  }
  Sink sink = std::move(f.sink);
  if (f.seq != 0 && f.session == forward_session_) forward_seqs_.erase(f.seq);
  forwards_.erase(it);
  sink(std::move(reply));
}

void Server::RetryForwards() {
  const raft::NodeId leader = driver_->node().leader();
  const bool reachable =
      leader != raft::kNoNode && (leader == config_.node_id || transport_->connected(leader));
  // In id order, which is the order the requests came in: a pipeline's writes reach the new
  // leader in the order the client sent them.
  std::vector<uint64_t> expired, resend;
  for (auto& [id, f] : forwards_) {
    if (f.deadline <= ticks_) {
      expired.push_back(id);
      continue;
    }
    if (!reachable) continue;
    if (f.leader == 0) {
      resend.push_back(id);  // the last attempt was refused, lost, or never went out
    } else if (f.resendable && (f.leader != leader || ticks_ - f.sent >= 2 * election_ticks_)) {
      // The node it went to no longer leads, or it has had no answer for long (a lost frame):
      // that attempt may still be applied.
      f.ambiguous = true;
      resend.push_back(id);
    }
  }
  for (uint64_t id : expired) {
    // The leader never answered (lost with a connection, or a leader that stopped
    // answering): the outcome is unknown.
    timeouts_++;
    FinishForward(id, ErrorReply(kTimeout));
  }
  for (uint64_t id : resend) {
    forward_retries_++;
    SendForward(id, leader);
  }
}

void Server::OnPeerState(uint64_t peer, bool connected) {
  if (connected) return;
  // Requests sent over the lost connection may or may not have reached the leader: send them
  // again (same session and number) once a leader is reachable; one that cannot be sent
  // again has an unknown outcome.
  std::vector<uint64_t> lost;
  for (auto& [id, f] : forwards_) {
    if (f.leader != peer) continue;
    if (f.resendable) {
      f.leader = 0;
      f.ambiguous = true;
    } else {
      lost.push_back(id);
    }
  }
  for (uint64_t id : lost) {
    timeouts_++;
    FinishForward(id, ErrorReply(kTimeout));
  }
}

void Server::OnForwardReply(protocol::ForwardReply r) {
  auto it = forwards_.find(r.id);
  if (it == forwards_.end() || it->second.leader != r.from) return;  // answered already
  if (r.not_leader) {
    // Nothing was proposed: ask the leader this node knows now (at once if there is another
    // one, else on a later tick), until the deadline.
    it->second.leader = 0;
    const raft::NodeId leader = driver_->node().leader();
    if (leader != raft::kNoNode && leader != r.from &&
        (leader == config_.node_id || transport_->connected(leader))) {
      forward_retries_++;
      SendForward(r.id, leader);
    }
    return;
  }
  OnForwardAnswer(r.id, std::move(r.reply));
}

void Server::OnForwardRequest(protocol::ForwardRequest q) {
  const uint64_t from = q.from;
  const uint64_t id = q.id;
  auto reply = [this, from, id](bool not_leader, std::string out) {
    if (out.size() > max_forward_reply_bytes_) {
      out = ErrorReply("ERR reply of " + std::to_string(out.size()) +
                       " bytes is too large to forward; send the command to the leader");
    }
    protocol::ForwardReply r;
    r.from = config_.node_id;
    r.to = from;
    r.id = id;
    r.not_leader = not_leader;
    r.reply = std::move(out);
    transport_->SendFrame(from, r);
  };
  ServeForwarded(q, std::move(reply));
}

void Server::ServeForwarded(const protocol::ForwardRequest& q,
                            std::function<void(bool not_leader, std::string out)> reply) {
  if (driver_->node().role() != raft::Role::kLeader) return reply(true, "");
  forwarded_served_++;
  protocol::RespParser parser(protocol::RespParser::Limits(), true);
  parser.Feed(q.commands);
  std::vector<std::vector<std::string>> commands;
  protocol::Request request;
  protocol::RespParser::Result result;
  while ((result = parser.Next(&request)) == protocol::RespParser::Result::kRequest) {
    commands.push_back(std::move(request.args));
  }
  if (result == protocol::RespParser::Result::kError || parser.pending_bytes() != 0 ||
      commands.empty()) {
    return reply(false, ErrorReply("ERR malformed forwarded request"));
  }
  bool transaction = common::AsciiLower(commands[0][0]) == "multi";
  if (transaction) {
    if (commands.size() < 3 || common::AsciiLower(commands.back()[0]) != "exec") {
      return reply(false, ErrorReply("ERR malformed forwarded transaction"));
    }
    commands.pop_back();
    commands.erase(commands.begin());
  } else if (commands.size() != 1) {
    return reply(false, ErrorReply("ERR malformed forwarded request"));
  }
  std::vector<Plan> plans;
  for (const std::vector<std::string>& args : commands) {
    const std::string name = common::AsciiLower(args[0]);
    if (!IsDataCommand(name) || (transaction && !AllowedInMulti(name))) {
      return reply(false, ErrorReply("ERR '" + args[0] + "' cannot be forwarded"));
    }
    plans.push_back(PlanCommand(args));
    Plan& p = plans.back();
    if (transaction && p.kind == Plan::Kind::kError) p = RunTimeError(std::move(p));
    if (transaction && p.kind != Plan::Kind::kRead && p.kind != Plan::Kind::kWrite) {
      return reply(false,
                   ErrorReply("EXECABORT Transaction discarded because of previous errors."));
    }
  }
  const SessionRef session{q.session, q.seq, q.acked, q.session != 0};
  RunOnLeader(
      std::move(plans), transaction, session,
      [reply](std::string out) { reply(false, std::move(out)); }, [reply] { reply(true, ""); });
}

// ---------------------------------------------------------------- leadership transfer

void Server::StartTransfer(uint64_t target, Sink sink) {
  bool member = std::any_of(config_.cluster.begin(), config_.cluster.end(),
                            [target](const ClusterMember& m) { return m.id == target; });
  if (!member) return sink(ErrorReply("ERR unknown node id " + std::to_string(target)));
  if (target == config_.node_id) {
    std::string out;
    protocol::RespWriter(&out).Ok();
    return sink(std::move(out));
  }
  common::Status s = driver_->TransferLeadership(target);
  if (!s.ok()) return sink(ErrorReply("ERR " + s.message()));
  spdlog::info("handing leadership to node {}", target);
  transfers_.push_back({target, ticks_ + 2 * election_ticks_, std::move(sink)});
}

void Server::CheckTransfers() {
  std::vector<Transfer> still;
  for (Transfer& t : transfers_) {
    raft::NodeId leader = driver_->node().leader();
    if (leader == t.target) {
      std::string out;
      protocol::RespWriter(&out).Ok();
      t.sink(std::move(out));
    } else if (ticks_ >= t.deadline) {
      t.sink(ErrorReply("ERR leadership transfer to node " + std::to_string(t.target) +
                        " did not complete; the leader is node " + std::to_string(leader)));
    } else {
      still.push_back(std::move(t));
    }
  }
  transfers_ = std::move(still);
}

// ---------------------------------------------------------------- node commands

std::string Server::ClusterReply(const std::vector<std::string>& args) {
  std::string out;
  protocol::RespWriter w(&out);
  std::string sub = args.size() >= 2 ? common::AsciiLower(args[1]) : "";
  raft::NodeId leader = driver_->node().leader();
  const ClusterMember* lead = nullptr;
  for (const ClusterMember& m : config_.cluster) {
    if (m.id == leader) lead = &m;
  }
  auto node_fields = [&w](const ClusterMember& m, bool is_leader) {
    w.ArrayHeader(14);
    w.BulkString("id");
    w.BulkString(ClusterNodeName(m.id));
    w.BulkString("port");
    w.Integer(m.client_port);
    w.BulkString("ip");
    w.BulkString(m.host);
    w.BulkString("endpoint");
    w.BulkString(m.host);
    w.BulkString("role");
    w.BulkString(is_leader ? "master" : "replica");
    w.BulkString("replication-offset");
    w.Integer(0);
    w.BulkString("health");
    w.BulkString("online");
  };
  if (sub == "slots") {
    if (lead == nullptr) return ErrorReply(kNoLeader);
    w.ArrayHeader(1);
    w.ArrayHeader(2 + config_.cluster.size());
    w.Integer(0);
    w.Integer(16383);
    auto node = [&w](const ClusterMember& m) {
      w.ArrayHeader(3);
      w.BulkString(m.host);
      w.Integer(m.client_port);
      w.BulkString(ClusterNodeName(m.id));
    };
    node(*lead);
    for (const ClusterMember& m : config_.cluster) {
      if (&m != lead) node(m);
    }
    return out;
  }
  if (sub == "shards") {
    if (lead == nullptr) return ErrorReply(kNoLeader);
    w.ArrayHeader(1);
    w.ArrayHeader(4);
    w.BulkString("slots");
    w.ArrayHeader(2);
    w.Integer(0);
    w.Integer(16383);
    w.BulkString("nodes");
    w.ArrayHeader(config_.cluster.size());
    node_fields(*lead, true);
    for (const ClusterMember& m : config_.cluster) {
      if (&m != lead) node_fields(m, false);
    }
    return out;
  }
  if (sub == "nodes") {
    std::string text;
    for (const ClusterMember& m : config_.cluster) {
      bool is_leader = m.id == leader;
      std::string flags = m.id == config_.node_id ? "myself," : "";
      flags += is_leader ? "master" : "slave";
      text += ClusterNodeName(m.id) + " " + m.host + ":" + std::to_string(m.client_port) + "@" +
              std::to_string(m.peer_port) + " " + flags + " " +
              (is_leader || lead == nullptr ? "-" : ClusterNodeName(lead->id)) + " 0 0 " +
              std::to_string(driver_->node().term()) + " connected" +
              (is_leader ? " 0-16383" : "") + "\n";
    }
    w.BulkString(text);
    return out;
  }
  if (sub == "info") {
    std::string text =
        std::string("cluster_enabled:1\r\ncluster_state:") + (lead ? "ok" : "fail") +
        "\r\ncluster_slots_assigned:16384\r\ncluster_slots_ok:" + (lead ? "16384" : "0") +
        "\r\ncluster_known_nodes:" + std::to_string(config_.cluster.size()) +
        "\r\ncluster_size:1\r\ncluster_current_epoch:" + std::to_string(driver_->node().term()) +
        "\r\n";
    w.BulkString(text);
    return out;
  }
  if (sub == "myid") {
    w.BulkString(ClusterNodeName(config_.node_id));
    return out;
  }
  if (sub == "keyslot") {
    w.Integer(KeyHashSlot(args[2]));
    return out;
  }
  // CheckCommand lets nothing else through.
  return ErrorReply("ERR unknown subcommand '" + args[1] + "'. Try CLUSTER HELP.");
}

std::string Server::Info(const std::vector<std::string>& sections) {
  std::vector<std::string> want;
  for (size_t i = 1; i < sections.size(); i++) want.push_back(common::AsciiLower(sections[i]));
  auto wanted = [&want](std::string_view name) {
    if (want.empty()) return true;
    for (const std::string& s : want) {
      if (s == name || s == "all" || s == "everything" || s == "default") return true;
    }
    return false;
  };
  raft::Node& n = driver_->node();
  std::string s;
  auto line = [&s](std::string_view key, const std::string& value) {
    s.append(key).append(":").append(value).append("\r\n");
  };
  auto num = [](uint64_t v) { return std::to_string(v); };
  auto section = [&s](std::string_view title) {
    if (!s.empty()) s += "\r\n";
    s.append("# ").append(title).append("\r\n");
  };
  if (wanted("server")) {
    uint64_t uptime = (uv_now(loop_) - start_time_ms_) / 1000;
    section("Server");
    line("redis_version", "7.0.0");
    line("raftkv_version", "0.1.0");
    line("redis_mode", "standalone");
    line("arch_bits", num(sizeof(void*) * 8));
    line("process_id", num(uv_os_getpid()));
    line("tcp_port", num(config_.port));
    line("uptime_in_seconds", num(uptime));
    line("uptime_in_days", num(uptime / 86400));
    line("executable_dir", config_.dir);
  }
  ClientListener::Stats cs = listener_->stats();
  if (wanted("clients")) {
    section("Clients");
    line("connected_clients", num(cs.connected_clients));
    line("maxclients", num(config_.maxclients));
    line("blocked_clients", "0");
  }
  if (wanted("memory")) {
    section("Memory");
    const uint64_t used = AllocatedBytes();
    const uint64_t rss = ResidentBytes();
    line("used_memory", num(used));
    line("used_memory_human", HumanBytes(used));
    line("used_memory_rss", num(rss));
    line("used_memory_rss_human", HumanBytes(rss));
    line("maxmemory", "0");
    line("maxmemory_human", "0B");
    line("maxmemory_policy", "noeviction");
    line("mem_allocator", MemAllocator());
  }
  if (wanted("persistence")) {
    StorageThread::Stats st = driver_->storage_stats();
    section("Persistence");
    line("loading", "0");
    line("fsyncs", num(st.syncs));
    line("fsync_avg_us", num(st.syncs ? st.sync_micros_total / st.syncs : 0));
    line("fsync_max_us", num(st.sync_micros_max));
    line("disk_free_mb", num(disk_free_mb_));
    line("min_free_disk_mb", num(config_.min_free_disk_mb));
    line("writes_refused_low_disk", disk_low_ ? "1" : "0");
  }
  if (wanted("stats")) {
    section("Stats");
    line("total_connections_received", num(cs.total_connections_received));
    line("total_commands_processed", num(cs.total_commands_processed));
    line("rejected_connections", num(cs.rejected_connections));
    line("total_net_input_bytes", num(cs.total_net_input_bytes));
    line("total_net_output_bytes", num(cs.total_net_output_bytes));
    line("client_query_buffer_limit_disconnections",
         num(cs.client_query_buffer_limit_disconnections));
    line("client_output_buffer_limit_disconnections",
         num(cs.client_output_buffer_limit_disconnections));
    line("forwarded_requests", num(forwarded_requests_));
    line("forwarded_requests_served", num(forwarded_served_));
    line("forwards_waiting", num(forwards_.size()));
    line("forward_retries", num(forward_retries_));
    line("request_timeouts", num(timeouts_));
    const kv::ValueCache& cache = storage_->state()->value_cache();
    line("value_cache_bytes", num(cache.bytes()));
    line("value_cache_capacity", num(cache.capacity()));
    line("value_cache_hits", num(cache.hits()));
    line("value_cache_misses", num(cache.misses()));
  }
  if (wanted("raft")) {
    section("Raft");
    line("raft_node_id", num(config_.node_id));
    line("raft_role", raft::RoleName(n.role()));
    line("raft_term", num(n.term()));
    line("raft_leader_id", num(n.leader()));
    std::string leader_addr;
    for (const ClusterMember& m : config_.cluster) {
      if (m.id == n.leader()) leader_addr = m.host + ":" + std::to_string(m.client_port);
    }
    line("raft_leader_addr", leader_addr);
    line("raft_commit_index", num(n.log().committed()));
    line("raft_applied_index", num(driver_->applied_index()));
    line("raft_last_index", num(n.log().last_index()));
    line("raft_snapshot_index", num(n.log().snapshot().index));
    // The log in memory: what it holds, what waits to commit, what waits to be applied.
    line("raft_log_entries", num(n.log().last_index() - n.log().snapshot().index));
    line("raft_log_bytes", num(n.log().bytes()));
    line("raft_uncommitted_bytes",
         num(n.log().BytesBetween(n.log().committed(), n.log().last_index())));
    line("raft_apply_lag_bytes", num(n.log().BytesBetween(n.log().applied(), n.log().committed())));
    line("raft_apply_paused", num(driver_->apply_paused() ? 1 : 0));
    line("raft_apply_pauses", num(driver_->apply_pauses()));
    line("raft_log_reclaimed_index", num(driver_->log_reclaimed_index()));
    line("raft_snapshots_installed", num(driver_->snapshots_installed()));
    line("raft_snapshots_sent", num(driver_->snapshot_send_stats().completed));
    // Streams under way: to each follower (this node leads), from the leader (it follows).
    for (const SnapshotSender::Progress& p : driver_->snapshots_sending()) {
      line("raft_snapshot_sending" + num(p.follower),
           "index=" + num(p.snapshot.index) + ",sent_bytes=" + num(p.bytes_sent) +
               ",acked_bytes=" + num(p.bytes_acked) + ",chunks=" + num(p.chunks_sent) +
               ",elapsed_ms=" + num(p.elapsed_ticks * config_.heartbeat_ms) +
               ",throttled=" + (p.throttled ? "1" : "0"));
    }
    if (auto r = driver_->snapshot_receiving()) {
      line("raft_snapshot_receiving",
           "from=" + num(r->from) + ",index=" + num(r->snapshot.index) +
               ",received_bytes=" + num(r->bytes_received) +
               ",elapsed_ms=" + num(r->elapsed_ticks * config_.heartbeat_ms));
    }
    line("raft_sessions", num(driver_->session_count()));
    line("raft_follower_mode", std::string(FollowerModeName(config_.follower_mode)));
    for (const ClusterMember& m : config_.cluster) {
      if (m.id == config_.node_id) continue;
      const raft::Progress* pr = n.progress(m.id);
      std::string v = "id=" + num(m.id) + ",addr=" + m.host + ":" + num(m.client_port) +
                      ",state=" + (transport_->connected(m.id) ? "connected" : "disconnected");
      if (pr != nullptr) {
        v += ",match=" + num(pr->match) + ",next=" + num(pr->next) +
             ",lag_entries=" + num(n.log().last_index() - pr->match) +
             ",lag_bytes=" + num(n.log().BytesBetween(pr->match, n.log().last_index()));
      }
      line("raft_peer" + num(m.id), v);
    }
  }
  if (wanted("keyspace")) {
    section("Keyspace");
    uint64_t keys = driver_->key_count();
    if (keys > 0) line("db0", "keys=" + num(keys) + ",expires=0,avg_ttl=0");
  }
  return s;
}

// ---------------------------------------------------------------- requests

void Server::OnRequest(Client& client, std::vector<std::string>&& args) {
  if (args.empty()) return;
  std::string name = common::AsciiLower(args[0]);
  std::string out;
  protocol::RespWriter w(&out);
  size_t argc = args.size();
  Transaction* txn = &ConnectionOf(client)->txn;
  const bool in_multi = txn->active;

  // The order of Redis's processCommand: QUIT whatever the state; then an unknown command or a
  // wrong number of arguments; then authentication; then MULTI's queue.
  if (name == "quit") {
    w.Ok();
    client.Reply(out);
    return client.Close();
  }
  // A command refused before it runs marks the transaction (EXEC then aborts); a refused EXEC
  // discards it and says why (Redis's rejectCommand).
  auto reject = [&](std::string error) {
    if (txn->active) txn->dirty = true;
    if (name == "exec") {
      *txn = Transaction();
      if (error.starts_with("ERR ")) error.erase(0, 4);
      return client.Reply(ErrorReply("EXECABORT Transaction discarded because of: " + error));
    }
    client.Reply(ErrorReply(error));
  };
  if (std::string error = CheckCommand(args); !error.empty()) return reject(std::move(error));
  if (!client.authenticated() && name != "auth" && name != "hello") {
    return reject("NOAUTH Authentication required.");
  }
  // Redis's protected commands (DEBUG): refused before MULTI's queue, HELP included.
  if (name == "raft.fault" &&
      !DebugCommandAllowed(config_.enable_debug_command, client.loopback())) {
    return reject(DebugCommandRefusal("RAFT.FAULT"));
  }

  // ---- MULTI / EXEC ----
  if (in_multi && name != "exec" && name != "discard" && name != "multi" && name != "watch") {
    // Connection and node commands answer at once in Redis; raftkv refuses them here rather
    // than run them out of order (docs/commands.md).
    if (!IsDataCommand(name) || !AllowedInMulti(name)) {
      return reject("ERR '" + name + "' is not supported inside MULTI");
    }
    Plan p = PlanCommand(args);
    if (p.kind == Plan::Kind::kError) p = RunTimeError(std::move(p));
    if (p.kind != Plan::Kind::kRead && p.kind != Plan::Kind::kWrite) {
      return reject("ERR '" + name + "' is not supported inside MULTI");
    }
    txn->queue.push_back(std::move(args));
    txn->plans.push_back(std::move(p));
    w.Queued();
    return client.Reply(out);
  }
  if (name == "multi") {
    if (in_multi) return client.Reply(ErrorReply("ERR MULTI calls can not be nested"));
    txn->active = true;
    txn->dirty = false;
    w.Ok();
    return client.Reply(out);
  }
  if (name == "exec" || name == "discard") {
    if (!in_multi) {
      return client.Reply(
          ErrorReply(name == "exec" ? "ERR EXEC without MULTI" : "ERR DISCARD without MULTI"));
    }
    std::vector<std::vector<std::string>> queue = std::move(txn->queue);
    std::vector<Plan> plans = std::move(txn->plans);
    bool dirty = txn->dirty;
    *txn = Transaction();
    if (name == "discard") {
      w.Ok();
      return client.Reply(out);
    }
    if (dirty) {
      return client.Reply(
          ErrorReply("EXECABORT Transaction discarded because of previous errors."));
    }
    if (queue.empty()) {
      w.ArrayHeader(0);
      return client.Reply(out);
    }
    return Dispatch(client, std::move(plans), std::move(queue), true);
  }
  if (name == "unwatch") {  // nothing is ever watched
    w.Ok();
    return client.Reply(out);
  }
  if (name == "watch") {
    if (in_multi) return client.Reply(ErrorReply("ERR WATCH inside MULTI is not allowed"));
    return client.Reply(ErrorReply(
        "ERR WATCH is not supported: use MULTI/EXEC, which applies as one atomic log entry"));
  }

  // ---- Connection and node commands ----
  if ((name == "client" || name == "config" || name == "cluster" || name == "raft.fault" ||
       name == "raft.session" || name == "memory") &&
      common::AsciiLower(args[1]) == "help") {
    return client.Reply(HelpReply(args[0]));
  }
  if (name == "ping") {
    if (argc > 2) return client.Reply(WrongArgs(name));
    if (argc == 2) {
      w.BulkString(args[1]);
    } else {
      w.Pong();
    }
    return client.Reply(out);
  }
  if (name == "echo") {
    w.BulkString(args[1]);
    return client.Reply(out);
  }
  if (name == "select") {
    // Redis reads an int first: not a number, then out of an int's range, then no such database.
    int64_t db = 0;
    if (!common::ParseInt64(args[1], &db)) {
      return client.Reply(ErrorReply("ERR value is not an integer or out of range"));
    }
    if (db < INT32_MIN || db > INT32_MAX) {
      return client.Reply(
          ErrorReply("ERR value is out of range, value must between -2147483648 and 2147483647"));
    }
    if (db != 0) return client.Reply(ErrorReply("ERR DB index is out of range"));
    w.Ok();
    return client.Reply(out);
  }
  if (name == "auth" || name == "hello") return client.Reply(AuthOrHello(client, args));
  if (name == "client") {
    std::string sub = common::AsciiLower(args[1]);
    if (sub == "setname") {
      if (std::string error = ClientNameError(args[2]); !error.empty()) {
        return client.Reply(ErrorReply(error));
      }
      client.set_name(args[2]);
      w.Ok();
    } else if (sub == "getname") {
      if (client.name().empty()) {
        w.NullBulk();
      } else {
        w.BulkString(client.name());
      }
    } else if (sub == "id") {
      w.Integer(static_cast<int64_t>(client.id()));
    } else if (sub == "info") {
      w.BulkString(ClientLine(client, uv_now(loop_)));
    } else if (sub == "list") {
      // LIST [TYPE normal] [ID id ...]: every connection is a normal one.
      std::vector<uint64_t> ids;
      bool only_ids = false;
      for (size_t i = 2; i < argc; i++) {
        const std::string opt = common::AsciiLower(args[i]);
        if (opt == "type" && i + 1 < argc) {
          const std::string type = common::AsciiLower(args[++i]);
          if (type == "normal") continue;
          if (type != "master" && type != "replica" && type != "slave" && type != "pubsub") {
            return client.Reply(ErrorReply("ERR Unknown client type '" + args[i] + "'"));
          }
          w.BulkString("");  // no connection of that type
          return client.Reply(out);
        }
        if (opt == "id" && i + 1 < argc) {
          only_ids = true;
          for (i++; i < argc; i++) {
            int64_t id = 0;
            if (!common::ParseInt64(args[i], &id) || id <= 0) {
              return client.Reply(ErrorReply("ERR Invalid client ID"));
            }
            ids.push_back(static_cast<uint64_t>(id));
          }
          break;
        }
        return client.Reply(ErrorReply("ERR syntax error"));
      }
      const uint64_t now = uv_now(loop_);
      std::vector<std::pair<uint64_t, std::string>> lines;
      listener_->ForEachClient([&](Client& c) {
        if (only_ids && std::find(ids.begin(), ids.end(), c.id()) == ids.end()) return;
        lines.emplace_back(c.id(), ClientLine(c, now));
      });
      std::sort(lines.begin(), lines.end());
      std::string text;
      for (const auto& [id, line] : lines) text += line;
      w.BulkString(text);
    } else {  // setinfo
      w.Ok();
    }
    return client.Reply(out);
  }
  if (name == "command") {
    w.ArrayHeader(0);
    return client.Reply(out);
  }
  if (name == "config") {  // CONFIG GET pattern…
    // What redis-benchmark and client libraries ask on connect, plus our own keys (never the
    // secrets). As Redis 7: each key once, however many patterns match it.
    std::vector<std::pair<std::string, std::string>> entries = {
        {"save", ""}, {"appendonly", "no"}, {"databases", "1"}};
    for (auto& [key, value] : ConfigEntries(config_)) {
      if (key == "cluster-secret" || key == "requirepass") continue;
      entries.emplace_back(std::move(key), std::move(value));
    }
    std::vector<bool> taken(entries.size());
    std::vector<std::string> pairs;
    for (size_t i = 2; i < argc; i++) {
      const std::string pattern = common::AsciiLower(args[i]);
      for (size_t e = 0; e < entries.size(); e++) {
        if (taken[e] || !GlobMatch(pattern, entries[e].first)) continue;
        taken[e] = true;
        pairs.push_back(entries[e].first);
        pairs.push_back(entries[e].second);
      }
    }
    w.BulkStringArray(pairs);
    return client.Reply(out);
  }
  if (name == "info") {
    w.BulkString(Info(args));
    return client.Reply(out);
  }
  if (name == "cluster") return client.Reply(ClusterReply(args));
  if (name == "raft.status") {
    raft::Node& n = driver_->node();
    w.ArrayHeader(14);
    w.BulkString("node_id");
    w.Integer(static_cast<int64_t>(config_.node_id));
    w.BulkString("role");
    w.BulkString(raft::RoleName(n.role()));
    w.BulkString("term");
    w.Integer(static_cast<int64_t>(n.term()));
    w.BulkString("leader");
    w.Integer(static_cast<int64_t>(n.leader()));
    w.BulkString("commit_index");
    w.Integer(static_cast<int64_t>(n.log().committed()));
    w.BulkString("applied_index");
    w.Integer(static_cast<int64_t>(driver_->applied_index()));
    w.BulkString("snapshot_index");
    w.Integer(static_cast<int64_t>(n.log().snapshot().index));
    return client.Reply(out);
  }

  if (name == "raft.compact") {
    raft::Index index = 0;
    common::Status s = driver_->CompactNow(&index);
    if (!s.ok()) return client.Reply(ErrorReply("ERR " + s.message()));
    w.Integer(static_cast<int64_t>(index));
    return client.Reply(out);
  }

  if (name == "raft.fault") return client.Reply(RunFaultCommand(args, config_, *transport_));

  // ---- Data commands ----
  if (IsDataCommand(name)) {
    Plan p = PlanCommand(args);
    if (p.kind == Plan::Kind::kError) return client.Reply(p.error);
    std::vector<Plan> plans;
    plans.push_back(std::move(p));
    std::vector<std::vector<std::string>> commands;
    commands.push_back(std::move(args));
    return Dispatch(client, std::move(plans), std::move(commands), false);
  }
  client.Reply(ErrorReply(UnknownCommandError(args)));  // in the table but not handled above
}

// AUTH and HELLO, as Redis 7.0.15 answers them. Only the default user exists: with
// `requirepass` its password is that; without, it has none (Redis's `nopass`), so any password
// authenticates it.
std::string Server::AuthOrHello(Client& client, const std::vector<std::string>& args) {
  const size_t argc = args.size();
  auto password_ok = [this](const std::string& user, const std::string& pass) {
    if (user != "default") return false;
    if (config_.requirepass.empty()) return true;
    return pass.size() == config_.requirepass.size() &&
           CRYPTO_memcmp(pass.data(), config_.requirepass.data(), pass.size()) == 0;
  };
  const std::string wrongpass = "WRONGPASS invalid username-password pair or user is disabled.";
  std::string out;
  protocol::RespWriter w(&out);
  if (common::AsciiLower(args[0]) == "auth") {
    if (argc > 3) return ErrorReply("ERR syntax error");
    if (argc == 2 && config_.requirepass.empty()) {
      return ErrorReply(
          "ERR AUTH <password> called without any password configured for the default user. "
          "Are you sure your configuration is correct?");
    }
    if (!password_ok(argc == 2 ? "default" : args[1], args[argc - 1])) {
      return ErrorReply(wrongpass);
    }
    client.set_authenticated(true);
    w.Ok();
    return out;
  }
  // HELLO [protover [AUTH username password] [SETNAME clientname]]: the version first, then the
  // options in order, each taking effect at once (as in Redis 7.0, a name is kept even when a
  // later option fails or the client is not authenticated). Only RESP2 is spoken
  // (docs/commands.md): 3 gets -NOPROTO too.
  if (argc >= 2) {
    int64_t version = 0;
    if (!common::ParseInt64(args[1], &version)) {
      return ErrorReply("ERR Protocol version is not an integer or out of range");
    }
    if (version != 2) return ErrorReply("NOPROTO unsupported protocol version");
  }
  for (size_t i = 2; i < argc; i++) {
    std::string opt = common::AsciiLower(args[i]);
    if (opt == "auth" && i + 2 < argc) {
      if (!password_ok(args[i + 1], args[i + 2])) return ErrorReply(wrongpass);
      client.set_authenticated(true);
      i += 2;
    } else if (opt == "setname" && i + 1 < argc) {
      const std::string& name = args[++i];
      if (std::string error = ClientNameError(name); !error.empty()) return ErrorReply(error);
      client.set_name(name);
    } else {
      return ErrorReply("ERR Syntax error in HELLO option '" + args[i] + "'");
    }
  }
  if (!client.authenticated()) {
    return ErrorReply(
        "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
        "HELLO AUTH <user> <pass> option can be used to authenticate the client and select "
        "the RESP protocol version at the same time");
  }
  w.ArrayHeader(14);
  w.BulkString("server");
  w.BulkString("redis");
  w.BulkString("version");
  w.BulkString("7.0.0");
  w.BulkString("proto");
  w.Integer(2);
  w.BulkString("id");
  w.Integer(static_cast<int64_t>(client.id()));
  w.BulkString("mode");
  w.BulkString("standalone");
  w.BulkString("role");
  w.BulkString(driver_->node().role() == raft::Role::kLeader ? "master" : "replica");
  w.BulkString("modules");
  w.ArrayHeader(0);
  return out;
}

}  // namespace server
