#include "server/server.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>

#include "protocol/command.h"
#include "protocol/resp_writer.h"
#include "server/uv_background_work.h"

namespace server {

namespace {

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Error(std::string_view text) {
  std::string out;
  protocol::RespWriter(&out).Error(text);
  return out;
}

std::string WrongArgs(const std::string& name) {
  return Error("ERR wrong number of arguments for '" + name + "' command");
}

// Redis's string2ll: what INCRBY and friends accept as an amount.
bool ParseInt(const std::string& s, int64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  size_t i = s[0] == '-' ? 1 : 0;
  if (i == s.size() || (s[i] == '0' && s.size() > i + 1)) return false;
  int64_t v = 0;
  for (; i < s.size(); i++) {
    if (s[i] < '0' || s[i] > '9') return false;
    int d = s[i] - '0';
    if (s[0] == '-') {
      if (v < (INT64_MIN + d) / 10) return false;
      v = v * 10 - d;
    } else {
      if (v > (INT64_MAX - d) / 10) return false;
      v = v * 10 + d;
    }
  }
  if (s == "-0") return false;
  *out = v;
  return true;
}

protocol::Op MakeOp(protocol::OpCode code, std::vector<std::string> keys,
                    std::vector<std::string> values = {}) {
  protocol::Op op;
  op.code = code;
  op.keys = std::move(keys);
  op.values = std::move(values);
  return op;
}

// The reply for one op's result, as Redis gives it for the usual form of the command.
void WriteResult(const kv::OpResult& r, std::string* out) {
  protocol::RespWriter w(out);
  switch (r.kind) {
    case kv::OpResult::Kind::kOk:
      w.Ok();
      break;
    case kv::OpResult::Kind::kNil:
      w.NullBulk();
      break;
    case kv::OpResult::Kind::kInt:
      w.Integer(r.integer);
      break;
    case kv::OpResult::Kind::kBulk:
      w.BulkString(r.bulk);
      break;
    case kv::OpResult::Kind::kError:
      w.Error(r.bulk);
      break;
  }
}

template <typename T>
void CloseHandle(T* handle) {
  uv_close(reinterpret_cast<uv_handle_t*>(handle),
           [](uv_handle_t* h) { delete reinterpret_cast<T*>(h); });
}

}  // namespace

Server::Server(uv_loop_t* loop, Config config) : loop_(loop), config_(std::move(config)) {}

Server::~Server() = default;

common::Status Server::Start() {
  kv::NodeStorage::Options so;
  common::Status s = kv::NodeStorage::Open(config_.dir, so, &storage_);
  if (!s.ok()) return s;

  PeerTransport::Options po = PeerTransport::OptionsFromConfig(config_);
  po.jitter_seed =
      config_.node_id * 7919 +
      static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  po.on_message = [this](raft::Message m) { driver_->Step(m); };
  po.on_snapshot_chunk = [this](protocol::SnapshotChunk c) {
    driver_->OnSnapshotChunk(std::move(c));
  };
  po.on_snapshot_ack = [this](protocol::SnapshotAck a) { driver_->OnSnapshotAck(a); };
  po.on_log = [this](LogLevel level, std::string_view line) {
    if (level >= config_.loglevel) {
      std::fprintf(stderr, "peer: %.*s\n", static_cast<int>(line.size()), line.data());
    }
  };
  transport_ = std::make_unique<PeerTransport>(loop_, po);

  raft::Config rc;
  rc.id = config_.node_id;
  for (const ClusterMember& m : config_.cluster) rc.voters.push_back(m.id);
  rc.heartbeat_ticks = 1;
  rc.election_ticks =
      static_cast<int>(std::max<uint32_t>(2, config_.election_timeout_ms / config_.heartbeat_ms));
  rc.seed = po.jitter_seed ^ 0x5bd1e995u;
  storage_news_ = new uv_async_t;
  storage_news_->data = this;
  uv_async_init(loop_, storage_news_, [](uv_async_t* h) {
    auto* self = static_cast<Server*>(h->data);
    self->driver_->OnStorageNews();
    self->CheckFatal();
  });
  uv_async_t* news = storage_news_;
  RaftDriver::Options dopts;
  dopts.snapshot_entries = config_.snapshot_entries;
  dopts.background = std::make_unique<UvBackgroundWork>(loop_);
  dopts.log = [this](LogLevel level, std::string_view line) {
    if (level >= config_.loglevel) {
      std::fprintf(stderr, "raft: %.*s\n", static_cast<int>(line.size()), line.data());
    }
  };
  driver_ = std::make_unique<RaftDriver>(
      rc, storage_.get(), transport_.get(), [news] { uv_async_send(news); }, std::move(dopts));
  s = driver_->Start();
  if (!s.ok()) return s;
  s = transport_->Start();
  if (!s.ok()) return s;

  tick_ = new uv_timer_t;
  tick_->data = this;
  uv_timer_init(loop_, tick_);
  uv_timer_start(
      tick_, [](uv_timer_t* h) { static_cast<Server*>(h->data)->driver_->Tick(); },
      config_.heartbeat_ms, config_.heartbeat_ms);
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
  listener_ = std::make_unique<ClientListener>(loop_, lo, this);
  return listener_->Start();
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
    std::fprintf(stderr, "raftkv: stopping: %s\n", fatal_.ToString().c_str());
    Stop();
    uv_stop(loop_);  // main closes what else it has open and exits non-zero
  }
}

std::string Server::RedirectReply() {
  raft::NodeId leader = driver_->node().leader();
  for (const ClusterMember& m : config_.cluster) {
    if (m.id == leader && leader != config_.node_id) {
      return Error("MOVED 0 " + m.host + ":" + std::to_string(m.client_port));
    }
  }
  return Error("CLUSTERDOWN no leader");
}

bool Server::RedirectIfFollower(Client& client) {
  if (driver_->node().role() == raft::Role::kLeader) return false;
  client.Reply(RedirectReply());
  return true;
}

void Server::Propose(Client& client, protocol::Command cmd,
                     std::function<void(const kv::ApplyResult&, std::string*)> format) {
  if (RedirectIfFollower(client)) return;
  DeferredReply reply = client.Defer();
  std::string redirect = RedirectReply();
  driver_->Propose(protocol::EncodeCommand(cmd),
                   [reply, format, redirect](RaftDriver::Outcome o, const kv::ApplyResult* r) {
                     std::string out;
                     switch (o) {
                       case RaftDriver::Outcome::kApplied:
                         format(*r, &out);
                         break;
                       case RaftDriver::Outcome::kNotLeader:
                         out = redirect;  // never proposed
                         break;
                       case RaftDriver::Outcome::kUnknown:
                       case RaftDriver::Outcome::kFailed:
                         out = Error("TIMEOUT request may or may not have been applied");
                         break;
                     }
                     reply.Send(std::move(out));
                   });
}

void Server::ReadThen(Client& client, std::function<void(std::string*)> answer) {
  if (RedirectIfFollower(client)) return;
  DeferredReply reply = client.Defer();
  std::string redirect = RedirectReply();
  driver_->Read([reply, answer, redirect](RaftDriver::Outcome o) {
    std::string out;
    if (o == RaftDriver::Outcome::kApplied) {
      answer(&out);
    } else if (o == RaftDriver::Outcome::kNotLeader) {
      out = redirect;
    } else {
      out = Error("CLUSTERDOWN the node is stopping");
    }
    reply.Send(std::move(out));
  });
}

std::string Server::Info() {
  raft::Node& n = driver_->node();
  std::string s = "# Server\r\nredis_version:7.0.0\r\nraftkv_version:0.1.0\r\nprocess_id:" +
                  std::to_string(uv_os_getpid()) + "\r\ntcp_port:" + std::to_string(config_.port) +
                  "\r\n\r\n# Raft\r\n";
  s += "raft_node_id:" + std::to_string(config_.node_id) + "\r\n";
  s += std::string("raft_role:") + raft::RoleName(n.role()) + "\r\n";
  s += "raft_term:" + std::to_string(n.term()) + "\r\n";
  s += "raft_leader_id:" + std::to_string(n.leader()) + "\r\n";
  std::string leader_addr;
  for (const ClusterMember& m : config_.cluster) {
    if (m.id == n.leader()) leader_addr = m.host + ":" + std::to_string(m.client_port);
  }
  s += "raft_leader_addr:" + leader_addr + "\r\n";
  s += "raft_commit_index:" + std::to_string(n.log().committed()) + "\r\n";
  s += "raft_applied_index:" + std::to_string(storage_->state()->applied_index()) + "\r\n";
  s += "raft_last_index:" + std::to_string(n.log().last_index()) + "\r\n";
  s += "raft_snapshot_index:" + std::to_string(n.log().snapshot().index) + "\r\n";
  for (const ClusterMember& m : config_.cluster) {
    if (m.id == config_.node_id) continue;
    const raft::Progress* pr = n.progress(m.id);
    s += "raft_peer" + std::to_string(m.id) + ":id=" + std::to_string(m.id) + ",addr=" + m.host +
         ":" + std::to_string(m.client_port) +
         ",state=" + (transport_->connected(m.id) ? "connected" : "disconnected");
    if (pr != nullptr) {
      s += ",match=" + std::to_string(pr->match) + ",next=" + std::to_string(pr->next) +
           ",lag_entries=" + std::to_string(n.log().last_index() - pr->match);
    }
    s += "\r\n";
  }
  StorageThread::Stats st = driver_->storage_stats();
  s += "\r\n# Persistence\r\nfsyncs:" + std::to_string(st.syncs) +
       "\r\nfsync_avg_us:" + std::to_string(st.syncs ? st.sync_micros_total / st.syncs : 0) +
       "\r\nfsync_max_us:" + std::to_string(st.sync_micros_max) + "\r\n";
  return s;
}

void Server::OnRequest(Client& client, std::vector<std::string>&& args) {
  if (args.empty()) return;
  std::string name = Lower(args[0]);
  std::string out;
  protocol::RespWriter w(&out);
  size_t argc = args.size();

  if (!client.authenticated() && name != "auth" && name != "hello" && name != "quit") {
    client.Reply(Error("NOAUTH Authentication required."));
    return;
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
    if (argc != 2) return client.Reply(WrongArgs(name));
    w.BulkString(args[1]);
    return client.Reply(out);
  }
  if (name == "quit") {
    w.Ok();
    client.Reply(out);
    return client.Close();
  }
  if (name == "select") {
    if (argc != 2) return client.Reply(WrongArgs(name));
    if (args[1] != "0") return client.Reply(Error("ERR DB index is out of range"));
    w.Ok();
    return client.Reply(out);
  }
  if (name == "auth") {
    if (argc != 2 && argc != 3) return client.Reply(WrongArgs(name));
    if (config_.requirepass.empty()) {
      return client.Reply(
          Error("ERR AUTH <password> called without any password configured for the default user. "
                "Are you sure your configuration is correct?"));
    }
    const std::string& pass = args[argc - 1];
    bool user_ok = argc == 2 || args[1] == "default";
    bool pass_ok = pass.size() == config_.requirepass.size() &&
                   CRYPTO_memcmp(pass.data(), config_.requirepass.data(), pass.size()) == 0;
    if (!user_ok || !pass_ok) {
      return client.Reply(Error("WRONGPASS invalid username-password pair or user is disabled."));
    }
    client.set_authenticated(true);
    w.Ok();
    return client.Reply(out);
  }
  if (name == "hello") {
    if (argc >= 2 && args[1] != "2") {
      return client.Reply(Error("NOPROTO sorry, this protocol version is not supported."));
    }
    for (size_t i = 2; i < argc; i++) {
      std::string opt = Lower(args[i]);
      if (opt == "auth" && i + 2 < argc) {
        bool pass_ok = !config_.requirepass.empty() && args[i + 2] == config_.requirepass &&
                       args[i + 1] == "default";
        if (!pass_ok) {
          return client.Reply(
              Error("WRONGPASS invalid username-password pair or user is disabled."));
        }
        client.set_authenticated(true);
        i += 2;
      } else if (opt == "setname" && i + 1 < argc) {
        client.set_name(args[++i]);
      } else {
        return client.Reply(Error("ERR Syntax error in HELLO option '" + args[i] + "'"));
      }
    }
    if (!client.authenticated())
      return client.Reply(
          Error("NOAUTH HELLO must be called with the client already authenticated, otherwise the "
                "HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client "
                "and select the RESP protocol version at the same time"));
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
    return client.Reply(out);
  }
  if (name == "client") {
    std::string sub = argc >= 2 ? Lower(args[1]) : "";
    if (sub == "setname" && argc == 3) {
      client.set_name(args[2]);
      w.Ok();
    } else if (sub == "getname" && argc == 2) {
      if (client.name().empty()) {
        w.NullBulk();
      } else {
        w.BulkString(client.name());
      }
    } else if (sub == "id" && argc == 2) {
      w.Integer(static_cast<int64_t>(client.id()));
    } else if (sub == "setinfo" && argc == 4) {
      w.Ok();
    } else {
      return client.Reply(
          Error("ERR unknown subcommand or wrong number of arguments for 'client'"));
    }
    return client.Reply(out);
  }
  if (name == "command") {
    w.ArrayHeader(0);
    return client.Reply(out);
  }
  if (name == "config") {
    if (argc != 3 || Lower(args[1]) != "get") {
      return client.Reply(
          Error("ERR unknown subcommand or wrong number of arguments for 'config'"));
    }
    std::string key = Lower(args[2]);
    std::vector<std::string> pairs;
    if (key == "save" || key == "*") pairs = {"save", ""};
    if (key == "appendonly" || key == "*") pairs.insert(pairs.end(), {"appendonly", "no"});
    w.BulkStringArray(pairs);
    return client.Reply(out);
  }
  if (name == "info") {
    w.BulkString(Info());
    return client.Reply(out);
  }
  if (name == "raft.status") {
    raft::Node& n = driver_->node();
    w.ArrayHeader(6);
    w.BulkString("role");
    w.BulkString(raft::RoleName(n.role()));
    w.BulkString("term");
    w.Integer(static_cast<int64_t>(n.term()));
    w.BulkString("leader");
    w.Integer(static_cast<int64_t>(n.leader()));
    return client.Reply(out);
  }

  // ---- Reads ----
  kv::StateMachine* sm = storage_->state();
  if (name == "get" || name == "strlen" || name == "type") {
    if (argc != 2) return client.Reply(WrongArgs(name));
    std::string key = args[1];
    return ReadThen(client, [sm, key, name](std::string* o) {
      protocol::RespWriter rw(o);
      std::string v;
      bool found = sm->Get(key, &v).ok();
      if (name == "get") {
        if (found) {
          rw.BulkString(v);
        } else {
          rw.NullBulk();
        }
      } else if (name == "strlen") {
        rw.Integer(found ? static_cast<int64_t>(v.size()) : 0);
      } else {
        rw.SimpleString(found ? "string" : "none");
      }
    });
  }
  if (name == "mget" || name == "exists") {
    if (argc < 2) return client.Reply(WrongArgs(name));
    std::vector<std::string> keys(args.begin() + 1, args.end());
    return ReadThen(client, [sm, keys, name](std::string* o) {
      protocol::RespWriter rw(o);
      if (name == "exists") {
        int64_t n = 0;
        std::string v;
        for (const std::string& k : keys) n += sm->Get(k, &v).ok() ? 1 : 0;
        rw.Integer(n);
        return;
      }
      rw.ArrayHeader(keys.size());
      for (const std::string& k : keys) {
        std::string v;
        if (sm->Get(k, &v).ok()) {
          rw.BulkString(v);
        } else {
          rw.NullBulk();
        }
      }
    });
  }
  if (name == "dbsize") {
    if (argc != 1) return client.Reply(WrongArgs(name));
    return ReadThen(client, [sm](std::string* o) {
      std::vector<std::pair<std::string, std::string>> all;
      (void)sm->Dump(&all);
      protocol::RespWriter(o).Integer(static_cast<int64_t>(all.size()));
    });
  }

  // ---- Writes ----
  protocol::Command cmd;
  auto single = [](const kv::ApplyResult& r, std::string* o) {
    if (!r.results.empty()) WriteResult(r.results[0], o);
  };
  if (name == "set" || name == "put") {
    if (argc < 3) return client.Reply(WrongArgs(name));
    protocol::Op op = MakeOp(protocol::OpCode::kSet, {args[1]}, {args[2]});
    for (size_t i = 3; i < argc; i++) {
      std::string opt = Lower(args[i]);
      if (opt == "nx" && !op.xx) {
        op.nx = true;
      } else if (opt == "xx" && !op.nx) {
        op.xx = true;
      } else if (opt == "get") {
        op.get = true;
      } else if (opt == "ex" || opt == "px" || opt == "exat" || opt == "pxat" || opt == "keepttl") {
        return client.Reply(Error("ERR expiry is not supported: keys in raftkv do not expire"));
      } else {
        return client.Reply(Error("ERR syntax error"));
      }
    }
    cmd.ops = {op};
    return Propose(client, cmd, single);
  }
  if (name == "setnx" || name == "getset") {
    if (argc != 3) return client.Reply(WrongArgs(name));
    protocol::Op op = MakeOp(protocol::OpCode::kSet, {args[1]}, {args[2]});
    if (name == "setnx") op.nx = true;
    if (name == "getset") op.get = true;
    cmd.ops = {op};
    if (name == "setnx") {
      return Propose(client, cmd, [](const kv::ApplyResult& r, std::string* o) {
        protocol::RespWriter(o).Integer(
            !r.results.empty() && r.results[0].kind == kv::OpResult::Kind::kOk ? 1 : 0);
      });
    }
    return Propose(client, cmd, single);
  }
  if (name == "getdel") {
    if (argc != 2) return client.Reply(WrongArgs(name));
    cmd.ops = {MakeOp(protocol::OpCode::kGetDel, {args[1]})};
    return Propose(client, cmd, single);
  }
  if (name == "mset") {
    if (argc < 3 || argc % 2 == 0) return client.Reply(WrongArgs(name));
    protocol::Op op = MakeOp(protocol::OpCode::kMSet, {});
    for (size_t i = 1; i < argc; i += 2) {
      op.keys.push_back(args[i]);
      op.values.push_back(args[i + 1]);
    }
    cmd.ops = {op};
    return Propose(client, cmd, single);
  }
  if (name == "del") {
    if (argc < 2) return client.Reply(WrongArgs(name));
    cmd.ops = {
        MakeOp(protocol::OpCode::kDel, std::vector<std::string>(args.begin() + 1, args.end()))};
    return Propose(client, cmd, single);
  }
  if (name == "append") {
    if (argc != 3) return client.Reply(WrongArgs(name));
    cmd.ops = {MakeOp(protocol::OpCode::kAppend, {args[1]}, {args[2]})};
    return Propose(client, cmd, single);
  }
  if (name == "incr" || name == "decr" || name == "incrby" || name == "decrby") {
    bool by = name == "incrby" || name == "decrby";
    if (argc != (by ? 3u : 2u)) return client.Reply(WrongArgs(name));
    int64_t amount = 1;
    if (by && !ParseInt(args[2], &amount)) {
      return client.Reply(Error("ERR value is not an integer or out of range"));
    }
    if (name[0] == 'd') {
      if (amount == INT64_MIN) {
        return client.Reply(Error("ERR decrement would overflow"));
      }
      amount = -amount;
    }
    protocol::Op op = MakeOp(protocol::OpCode::kIncrBy, {args[1]});
    op.incr = amount;
    cmd.ops = {op};
    return Propose(client, cmd, single);
  }
  if (name == "incrbyfloat") {
    if (argc != 3) return client.Reply(WrongArgs(name));
    cmd.ops = {MakeOp(protocol::OpCode::kIncrByFloat, {args[1]}, {args[2]})};
    return Propose(client, cmd, single);
  }
  if (name == "flushall" || name == "flushdb") {
    cmd.ops = {MakeOp(protocol::OpCode::kFlushAll, {})};
    return Propose(client, cmd, single);
  }

  std::string msg = "ERR unknown command '" + args[0] + "', with args beginning with: ";
  for (size_t i = 1; i < argc && msg.size() < 128; i++) msg += "'" + args[i] + "' ";
  client.Reply(Error(msg));
}

}  // namespace server
