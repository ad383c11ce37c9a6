#include "server/commands.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>

#include "common/strings.h"
#include "kv/sessions.h"
#include "protocol/resp_writer.h"

namespace server {

namespace {

using protocol::Op;
using protocol::OpCode;
using Results = std::span<const kv::OpResult>;

Plan Fail(std::string_view text) {
  Plan p;
  p.kind = Plan::Kind::kError;
  p.error = ErrorReply(text);
  return p;
}

Plan WrongArgs(const std::string& name) {
  return Fail("ERR wrong number of arguments for '" + name + "' command");
}

Op MakeOp(OpCode code, std::vector<std::string> keys, std::vector<std::string> values = {}) {
  Op op;
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

bool Found(const kv::OpResult& r) { return r.kind == kv::OpResult::Kind::kBulk; }

Plan Read(std::vector<std::string> keys, std::function<void(Results, std::string*)> format) {
  Plan p;
  p.kind = Plan::Kind::kRead;
  p.slot = keys.empty() ? 0 : KeyHashSlot(keys[0]);
  for (std::string& k : keys) p.ops.push_back(MakeOp(OpCode::kGet, {std::move(k)}));
  p.format = std::move(format);
  return p;
}

Plan Write(Op op, std::function<void(Results, std::string*)> format) {
  Plan p;
  p.kind = Plan::Kind::kWrite;
  p.slot = op.keys.empty() ? 0 : KeyHashSlot(op.keys[0]);
  p.ops.push_back(std::move(op));
  p.format = std::move(format);
  return p;
}

void FormatFirst(Results r, std::string* out) { WriteResult(r[0], out); }

Plan Keyspace(std::function<void(kv::StateMachine&, ScanCursors&, std::string*)> fn) {
  Plan p;
  p.kind = Plan::Kind::kKeyspace;
  p.keyspace = std::move(fn);
  return p;
}

// A state-machine read failure while walking keys: the node's storage is failing.
void StorageError(const common::Status& s, std::string* out) {
  out->clear();
  protocol::RespWriter(out).Error("ERR storage error: " + s.message());
}

Plan PlanScan(const std::vector<std::string>& args) {
  size_t argc = args.size();
  if (argc % 2 != 0) return Fail("ERR syntax error");  // an option without its value
  uint64_t cursor = 0;
  {
    const std::string& c = args[1];
    if (c.empty() || c.size() > 20 ||
        !std::all_of(c.begin(), c.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
      return Fail("ERR invalid cursor");
    }
    errno = 0;
    cursor = std::strtoull(c.c_str(), nullptr, 10);
    if (errno == ERANGE) return Fail("ERR invalid cursor");
  }
  std::string pattern = "*";
  int64_t count = 10;
  std::string type;
  for (size_t i = 2; i < argc; i += 2) {
    std::string opt = common::AsciiLower(args[i]);
    if (opt == "match") {
      pattern = args[i + 1];
    } else if (opt == "count") {
      if (!common::ParseInt64(args[i + 1], &count))
        return Fail("ERR value is not an integer or out of range");
      if (count < 1) return Fail("ERR syntax error");
    } else if (opt == "type") {
      type = common::AsciiLower(args[i + 1]);
    } else {
      return Fail("ERR syntax error");
    }
  }
  return Keyspace([cursor, pattern, count, type](kv::StateMachine& sm, ScanCursors& cursors,
                                                 std::string* out) {
    std::string from;
    if (cursor != 0 && !cursors.Find(cursor, &from)) {
      protocol::RespWriter(out).Error(
          "ERR invalid cursor (unknown or expired; cursors live on the leader that issued them)");
      return;
    }
    // As Redis, COUNT bounds the work (keys visited), not the keys returned.
    std::vector<std::string> found;
    std::string resume;
    int64_t visited = 0;
    bool strings = type.empty() || type == "string";
    common::Status s = sm.ForEachKey(from, [&](std::string_view key) {
      if (visited == count) {
        resume.assign(key);
        return false;
      }
      visited++;
      if (strings && GlobMatch(pattern, key)) found.emplace_back(key);
      return true;
    });
    if (!s.ok()) return StorageError(s, out);
    protocol::RespWriter w(out);
    w.ArrayHeader(2);
    w.BulkString(resume.empty() ? "0" : std::to_string(cursors.Save(std::move(resume))));
    w.BulkStringArray(found);
  });
}

// ---- The command table ----

struct Subcommand {
  std::string_view name;  // lower case
  int arity;              // Redis's: n exactly n arguments, -n at least n (command included)
  std::string_view help;  // its lines in `<command> HELP`, separated by '\n'
};

struct CommandSpec {
  std::string_view name;  // lower case
  int arity;
  bool data;                                // needs the leader (Plan)
  std::span<const Subcommand> subcommands;  // a container command's, HELP among them
};

constexpr Subcommand kClientSubcommands[] = {
    {"getname", 2, "GETNAME\n    Return the name of the current connection."},
    {"id", 2, "ID\n    Return the ID of the current connection."},
    {"info", 2, "INFO\n    Return information about the current client connection."},
    {"list", -2,
     "LIST [TYPE NORMAL] [ID <id> [<id> ...]]\n"
     "    Return information about client connections (every one is of type NORMAL)."},
    {"setinfo", 4,
     "SETINFO <option> <value>\n"
     "    Accepted for client libraries (LIB-NAME, LIB-VER); the value is not kept."},
    {"setname", 3, "SETNAME <name>\n    Assign the name <name> to the current connection."},
    {"help", 2, "HELP\n    Prints this help."},
};

constexpr Subcommand kConfigSubcommands[] = {
    {"get", -3,
     "GET <pattern> [<pattern> ...]\n"
     "    Return parameters matching the glob-like <pattern>s and their values."},
    {"help", 2, "HELP\n    Prints this help."},
};

constexpr Subcommand kClusterSubcommands[] = {
    {"info", 2, "INFO\n    Return information about the cluster."},
    {"keyslot", 3, "KEYSLOT <key>\n    Return the hash slot for <key>."},
    {"myid", 2, "MYID\n    Return the node id."},
    {"nodes", 2,
     "NODES\n"
     "    Return cluster configuration seen by node. Output format:\n"
     "    <id> <ip:port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ..."},
    {"shards", 2,
     "SHARDS\n"
     "    Return information about slot range mappings and the nodes associated with them."},
    {"slots", 2,
     "SLOTS\n"
     "    Return information about slots range mappings. Each range is made of:\n"
     "    start, end, master and replicas IP addresses, ports and ids"},
    {"help", 2, "HELP\n    Prints this help."},
};

constexpr Subcommand kRaftSessionSubcommands[] = {
    {"open", -2,
     "OPEN [<timeout-seconds>]\n"
     "    Open an exactly-once session; return its id. It expires after <timeout-seconds>\n"
     "    (default 3600, at most 604800) of cluster time without a request."},
    {"close", 3, "CLOSE <id>\n    Close session <id>."},
    {"help", 2, "HELP\n    Prints this help."},
};

constexpr Subcommand kMemorySubcommands[] = {
    {"usage", -3,
     "USAGE <key> [SAMPLES <count>]\n"
     "    Return the bytes the key and its value take in the state: the key with its 1-byte\n"
     "    prefix, the value, and the 8-byte sequence number of its LevelDB record.\n"
     "    SAMPLES is accepted and has no effect (a value is one string)."},
    {"help", 2, "HELP\n    Prints this help."},
};

constexpr Subcommand kRaftFaultSubcommands[] = {
    {"block", -3,
     "BLOCK <id> [<id> ...]\n"
     "    Drop every frame to and from the nodes <id> (fault injection)."},
    {"unblock", -3, "UNBLOCK <id> [<id> ...]\n    Let traffic with the nodes <id> through again."},
    {"unreliable", 4,
     "UNRELIABLE <drop-percent> <max-delay-ms>\n"
     "    Drop <drop-percent> (0..100) of the frames sent to peers, delay the others by\n"
     "    0..<max-delay-ms> (at most 10000) milliseconds."},
    {"reliable", 2, "RELIABLE\n    Stop dropping and delaying frames."},
    {"heal", 2, "HEAL\n    Unblock every node and make peer links reliable."},
    {"status", 2, "STATUS\n    Return the faults in force."},
    {"help", 2, "HELP\n    Prints this help."},
};

constexpr CommandSpec kCommands[] = {
    // Data commands: reads.
    {"get", 2, true, {}},
    {"strlen", 2, true, {}},
    {"type", 2, true, {}},
    {"exists", -2, true, {}},
    {"mget", -2, true, {}},
    {"ttl", 2, true, {}},
    {"pttl", 2, true, {}},
    {"persist", 2, true, {}},
    {"expiretime", 2, true, {}},
    {"pexpiretime", 2, true, {}},
    {"dbsize", 1, true, {}},
    {"keys", 2, true, {}},
    {"scan", -2, true, {}},
    {"memory", -2, true, kMemorySubcommands},
    // Data commands: writes.
    {"set", -3, true, {}},
    {"put", -3, true, {}},
    {"setnx", 3, true, {}},
    {"getset", 3, true, {}},
    {"getdel", 2, true, {}},
    {"mset", -3, true, {}},
    {"del", -2, true, {}},
    {"unlink", -2, true, {}},
    {"append", 3, true, {}},
    {"incr", 2, true, {}},
    {"decr", 2, true, {}},
    {"incrby", 3, true, {}},
    {"decrby", 3, true, {}},
    {"incrbyfloat", 3, true, {}},
    {"flushall", -1, true, {}},
    {"flushdb", -1, true, {}},
    {"setex", 4, true, {}},
    {"psetex", 4, true, {}},
    {"getex", -2, true, {}},
    {"expire", -3, true, {}},
    {"pexpire", -3, true, {}},
    {"expireat", -3, true, {}},
    {"pexpireat", -3, true, {}},
    {"raft.transfer-leader", 2, true, {}},
    {"raft.session", -2, true, kRaftSessionSubcommands},
    {"raft.request", -5, true, {}},
    // Transactions.
    {"multi", 1, false, {}},
    {"exec", 1, false, {}},
    {"discard", 1, false, {}},
    {"watch", -2, false, {}},
    {"unwatch", 1, false, {}},
    // Connection and node commands.
    {"ping", -1, false, {}},
    {"echo", 2, false, {}},
    {"quit", -1, false, {}},
    {"select", 2, false, {}},
    {"auth", -2, false, {}},
    {"hello", -1, false, {}},
    {"client", -2, false, kClientSubcommands},
    {"command", -1, false, {}},  // any arguments: an empty array
    {"config", -2, false, kConfigSubcommands},
    {"info", -1, false, {}},
    {"cluster", -2, false, kClusterSubcommands},
    {"raft.status", 1, false, {}},
    {"raft.compact", 1, false, {}},
    {"raft.fault", -2, false, kRaftFaultSubcommands},
};

const CommandSpec* FindCommand(std::string_view lower_name) {
  for (const CommandSpec& c : kCommands) {
    if (c.name == lower_name) return &c;
  }
  return nullptr;
}

// An argument as Redis's "%s" prints it: up to its first NUL byte.
std::string_view AsCString(std::string_view s) { return s.substr(0, s.find('\0')); }

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}
}  // namespace

std::string ErrorReply(std::string_view text) {
  std::string out;
  protocol::RespWriter(&out).Error(text);
  return out;
}

std::string UnknownCommandError(const std::vector<std::string>& args) {
  // Redis 7.0's commandCheckExistence: "'%.*s' " with the room left of 128, while the list is
  // shorter than 128; the name as "%.128s".
  std::string list;
  for (size_t i = 1; i < args.size() && list.size() < 128; i++) {
    const size_t room = 128 - list.size();
    list.append("'").append(AsCString(args[i]).substr(0, room)).append("' ");
  }
  return "ERR unknown command '" + std::string(AsCString(args[0]).substr(0, 128)) +
         "', with args beginning with: " + list;
}

std::string CheckCommand(const std::vector<std::string>& args) {
  const std::string name = common::AsciiLower(args[0]);
  const CommandSpec* command = FindCommand(name);
  if (command == nullptr) return UnknownCommandError(args);
  std::string full_name = name;
  int arity = command->arity;
  if (args.size() >= 2 && !command->subcommands.empty()) {
    const std::string sub = common::AsciiLower(args[1]);
    auto it = std::find_if(command->subcommands.begin(), command->subcommands.end(),
                           [&sub](const Subcommand& s) { return s.name == sub; });
    if (it == command->subcommands.end()) {
      return "ERR unknown subcommand '" + std::string(AsCString(args[1]).substr(0, 128)) +
             "'. Try " + Upper(AsCString(args[0])) + " HELP.";
    }
    full_name += "|" + sub;
    arity = it->arity;
  }
  const auto argc = static_cast<int>(std::min<size_t>(args.size(), INT_MAX));
  if ((arity > 0 && argc != arity) || argc < -arity) {
    return "ERR wrong number of arguments for '" + full_name + "' command";
  }
  return "";
}

std::string HelpReply(std::string_view command) {
  const CommandSpec* spec = FindCommand(common::AsciiLower(command));
  if (spec == nullptr || spec->subcommands.empty()) return "";
  // Redis's addReplyHelp: a header, each subcommand's lines, HELP last.
  std::vector<std::string_view> lines;
  for (const Subcommand& s : spec->subcommands) {
    std::string_view help = s.help;
    for (size_t end; (end = help.find('\n')) != std::string_view::npos;
         help.remove_prefix(end + 1)) {
      lines.push_back(help.substr(0, end));
    }
    lines.push_back(help);
  }
  std::string out;
  protocol::RespWriter w(&out);
  w.ArrayHeader(lines.size() + 1);
  w.SimpleString(Upper(AsCString(command)) +
                 " <subcommand> [<arg> [value] [opt] ...]. Subcommands are:");
  for (std::string_view line : lines) w.SimpleString(line);
  return out;
}

uint16_t KeyHashSlot(std::string_view key) {
  size_t open = key.find('{');
  if (open != std::string_view::npos) {
    size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close != open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  // CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0; a byte at a time from a table
  // (every write request hashes its first key).
  static constexpr std::array<uint16_t, 256> kTable = [] {
    std::array<uint16_t, 256> t{};
    for (int b = 0; b < 256; b++) {
      uint16_t crc = static_cast<uint16_t>(b << 8);
      for (int i = 0; i < 8; i++) {
        crc = static_cast<uint16_t>((crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1);
      }
      t[static_cast<size_t>(b)] = crc;
    }
    return t;
  }();
  uint16_t crc = 0;
  for (char ch : key) {
    crc =
        static_cast<uint16_t>((crc << 8) ^ kTable[((crc >> 8) ^ static_cast<uint8_t>(ch)) & 0xff]);
  }
  return static_cast<uint16_t>(crc & 16383);
}

bool GlobMatch(std::string_view p, std::string_view s) {
  // Backtracking on the last `*` only: linear in practice, and no recursion depth to bound.
  size_t pi = 0, si = 0;
  size_t star_p = std::string_view::npos, star_s = 0;
  while (si < s.size()) {
    if (pi < p.size()) {
      char c = p[pi];
      if (c == '*') {
        while (pi < p.size() && p[pi] == '*') pi++;
        if (pi == p.size()) return true;
        star_p = pi;
        star_s = si;
        continue;
      }
      if (c == '?') {
        pi++;
        si++;
        continue;
      }
      if (c == '[') {
        size_t j = pi + 1;
        bool negate = j < p.size() && p[j] == '^';
        if (negate) j++;
        bool match = false;
        while (j < p.size() && p[j] != ']') {
          if (p[j] == '\\' && j + 1 < p.size()) {
            j++;
            if (p[j] == s[si]) match = true;
            j++;
          } else if (j + 2 < p.size() && p[j + 1] == '-' && p[j + 2] != ']') {
            char lo = p[j], hi = p[j + 2];
            if (lo > hi) std::swap(lo, hi);
            if (s[si] >= lo && s[si] <= hi) match = true;
            j += 3;
          } else {
            if (p[j] == s[si]) match = true;
            j++;
          }
        }
        // An unterminated class is taken as running to the end of the pattern, as Redis does.
        if (match != negate) {
          pi = j < p.size() ? j + 1 : j;
          si++;
          continue;
        }
      } else {
        if (c == '\\' && pi + 1 < p.size()) {
          pi++;
          c = p[pi];
        }
        if (c == s[si]) {
          pi++;
          si++;
          continue;
        }
      }
    }
    if (star_p == std::string_view::npos) return false;
    pi = star_p;
    si = ++star_s;
  }
  while (pi < p.size() && p[pi] == '*') pi++;
  return pi == p.size();
}

ScanCursors::ScanCursors(size_t capacity, uint64_t seed)
    : capacity_(std::max<size_t>(capacity, 1)), next_((seed % (uint64_t{1} << 40)) + 1) {}

uint64_t ScanCursors::Save(std::string key) {
  uint64_t id = next_++;
  if (ring_.size() < capacity_) {
    ring_.emplace_back(id, std::move(key));
  } else {
    ring_[head_] = {id, std::move(key)};
    head_ = (head_ + 1) % capacity_;
  }
  return id;
}

bool ScanCursors::Find(uint64_t id, std::string* key) const {
  for (const auto& [cursor, k] : ring_) {
    if (cursor == id) {
      *key = k;
      return true;
    }
  }
  return false;
}

bool IsDataCommand(std::string_view lower_name) {
  const CommandSpec* c = FindCommand(lower_name);
  return c != nullptr && c->data;
}

bool IsSessionCommand(const Plan& plan) {
  return !plan.ops.empty() &&
         (plan.ops[0].code == OpCode::kSessionOpen || plan.ops[0].code == OpCode::kSessionClose);
}

bool AllowedInMulti(std::string_view lower_name) {
  return lower_name != "raft.request" && lower_name != "raft.session" &&
         lower_name != "raft.transfer-leader";
}

Plan PlanCommand(const std::vector<std::string>& args) {
  if (std::string error = CheckCommand(args); !error.empty()) return Fail(error);
  const std::string name = common::AsciiLower(args[0]);
  const size_t argc = args.size();

  // ---- Reads ----
  if (name == "get" || name == "strlen" || name == "type" || name == "ttl" || name == "pttl" ||
      name == "persist" || name == "expiretime" || name == "pexpiretime") {
    if (name == "get") return Read({args[1]}, FormatFirst);
    if (name == "strlen") {
      return Read({args[1]}, [](Results r, std::string* o) {
        protocol::RespWriter(o).Integer(Found(r[0]) ? static_cast<int64_t>(r[0].bulk.size()) : 0);
      });
    }
    if (name == "type") {
      return Read({args[1]}, [](Results r, std::string* o) {
        protocol::RespWriter(o).SimpleString(Found(r[0]) ? "string" : "none");
      });
    }
    if (name == "persist") {  // no key has a time to live, so there is nothing to remove
      return Read({args[1]}, [](Results, std::string* o) { protocol::RespWriter(o).Integer(0); });
    }
    // TTL, PTTL, EXPIRETIME, PEXPIRETIME: -2 for a missing key, -1 for a key without expiry.
    return Read({args[1]}, [](Results r, std::string* o) {
      protocol::RespWriter(o).Integer(Found(r[0]) ? -1 : -2);
    });
  }
  if (name == "mget" || name == "exists") {
    std::vector<std::string> keys(args.begin() + 1, args.end());
    if (name == "exists") {
      return Read(std::move(keys), [](Results r, std::string* o) {
        protocol::RespWriter(o).Integer(std::count_if(r.begin(), r.end(), Found));
      });
    }
    return Read(std::move(keys), [](Results r, std::string* o) {
      protocol::RespWriter w(o);
      w.ArrayHeader(r.size());
      for (const kv::OpResult& x : r) WriteResult(x, o);
    });
  }
  if (name == "dbsize") {
    return Keyspace([](kv::StateMachine& sm, ScanCursors&, std::string* out) {
      protocol::RespWriter(out).Integer(static_cast<int64_t>(sm.key_count()));
    });
  }
  if (name == "keys") {
    std::string pattern = args[1];
    return Keyspace([pattern](kv::StateMachine& sm, ScanCursors&, std::string* out) {
      std::vector<std::string> found;
      common::Status s = sm.ForEachKey("", [&](std::string_view key) {
        if (GlobMatch(pattern, key)) found.emplace_back(key);
        return true;
      });
      if (!s.ok()) return StorageError(s, out);
      protocol::RespWriter(out).BulkStringArray(found);
    });
  }
  if (name == "scan") return PlanScan(args);
  if (name == "memory") {
    // USAGE; HELP is the node's (outside MULTI).
    if (common::AsciiLower(args[1]) != "usage") {
      return Fail("ERR 'memory|help' is not supported inside MULTI");
    }
    int64_t samples = 0;
    if (argc != 3 && !(argc == 5 && common::AsciiLower(args[3]) == "samples" &&
                       common::ParseInt64(args[4], &samples) && samples >= 0)) {
      return Fail("ERR syntax error");
    }
    return Read({args[2]}, [key_bytes = args[2].size()](Results r, std::string* o) {
      protocol::RespWriter w(o);
      if (!Found(r[0])) return w.NullBulk();
      w.Integer(static_cast<int64_t>(1 + key_bytes + r[0].bulk.size() + 8));
    });
  }

  // ---- Writes ----
  if (name == "set" || name == "put") {
    Op op = MakeOp(OpCode::kSet, {args[1]}, {args[2]});
    for (size_t i = 3; i < argc; i++) {
      std::string opt = common::AsciiLower(args[i]);
      if (opt == "nx" && !op.xx) {
        op.nx = true;
      } else if (opt == "xx" && !op.nx) {
        op.xx = true;
      } else if (opt == "get") {
        op.get = true;
      } else if (opt == "ex" || opt == "px" || opt == "exat" || opt == "pxat" || opt == "keepttl") {
        return Fail("ERR expiry is not supported: keys in raftkv do not expire");
      } else {
        return Fail("ERR syntax error");
      }
    }
    return Write(std::move(op), FormatFirst);
  }
  if (name == "setex" || name == "psetex" || name == "getex" || name == "expire" ||
      name == "pexpire" || name == "expireat" || name == "pexpireat") {
    return Fail("ERR expiry is not supported: keys in raftkv do not expire");
  }
  if (name == "setnx" || name == "getset") {
    Op op = MakeOp(OpCode::kSet, {args[1]}, {args[2]});
    if (name == "getset") {
      op.get = true;
      return Write(std::move(op), FormatFirst);
    }
    op.nx = true;
    return Write(std::move(op), [](Results r, std::string* o) {
      protocol::RespWriter(o).Integer(r[0].kind == kv::OpResult::Kind::kOk ? 1 : 0);
    });
  }
  if (name == "getdel") {
    return Write(MakeOp(OpCode::kGetDel, {args[1]}), FormatFirst);
  }
  if (name == "mset") {
    if (argc % 2 == 0) return WrongArgs(name);  // a key without its value
    Op op = MakeOp(OpCode::kMSet, {});
    for (size_t i = 1; i < argc; i += 2) {
      op.keys.push_back(args[i]);
      op.values.push_back(args[i + 1]);
    }
    return Write(std::move(op), FormatFirst);
  }
  if (name == "del" || name == "unlink") {
    return Write(MakeOp(OpCode::kDel, std::vector<std::string>(args.begin() + 1, args.end())),
                 FormatFirst);
  }
  if (name == "append") {
    return Write(MakeOp(OpCode::kAppend, {args[1]}, {args[2]}), FormatFirst);
  }
  if (name == "incr" || name == "decr" || name == "incrby" || name == "decrby") {
    bool by = name == "incrby" || name == "decrby";
    int64_t amount = 1;
    if (by && !common::ParseInt64(args[2], &amount)) {
      return Fail("ERR value is not an integer or out of range");
    }
    if (name[0] == 'd') {
      if (amount == INT64_MIN) return Fail("ERR decrement would overflow");
      amount = -amount;
    }
    Op op = MakeOp(OpCode::kIncrBy, {args[1]});
    op.incr = amount;
    return Write(std::move(op), FormatFirst);
  }
  if (name == "incrbyfloat") {
    return Write(MakeOp(OpCode::kIncrByFloat, {args[1]}, {args[2]}), FormatFirst);
  }
  if (name == "flushall" || name == "flushdb") {
    // As Redis: one optional SYNC or ASYNC, anything else is a syntax error.
    if (argc > 2) return Fail("ERR syntax error");
    if (argc == 2) {
      std::string mode = common::AsciiLower(args[1]);
      if (mode != "sync" && mode != "async") return Fail("ERR syntax error");
    }
    return Write(MakeOp(OpCode::kFlushAll, {}), FormatFirst);
  }
  if (name == "raft.session") {
    const std::string sub = common::AsciiLower(args[1]);
    int64_t n = 0;
    if (sub == "open") {
      if (argc > 3) return Fail("ERR syntax error");
      n = static_cast<int64_t>(kv::kDefaultSessionTimeoutMs / 1000);
      if (argc == 3 && (!common::ParseInt64(args[2], &n) || n <= 0 ||
                        n > static_cast<int64_t>(kv::kMaxSessionTimeoutMs / 1000))) {
        return Fail("ERR invalid session timeout '" + args[2] + "': seconds from 1 to " +
                    std::to_string(kv::kMaxSessionTimeoutMs / 1000));
      }
      Op op = MakeOp(OpCode::kSessionOpen, {});
      op.incr = n * 1000;
      return Write(std::move(op), FormatFirst);
    }
    if (!common::ParseInt64(args[2], &n) || n <= 0) {  // close
      return Fail("ERR invalid session id '" + args[2] + "'");
    }
    Op op = MakeOp(OpCode::kSessionClose, {});
    op.incr = n;
    return Write(std::move(op), FormatFirst);
  }
  if (name == "raft.request") {
    // RAFT.REQUEST <session> <seq> <acked> <command> [arg ...]
    int64_t session = 0, seq = 0, acked = 0;
    if (!common::ParseInt64(args[1], &session) || session <= 0) {
      return Fail("ERR invalid session id '" + args[1] + "'");
    }
    if (!common::ParseInt64(args[2], &seq) || seq <= 0) {
      return Fail("ERR invalid request number '" + args[2] + "'");
    }
    if (!common::ParseInt64(args[3], &acked) || acked < 0) {
      return Fail("ERR invalid acknowledgement '" + args[3] + "'");
    }
    std::vector<std::string> inner(args.begin() + 4, args.end());
    const std::string inner_name = common::AsciiLower(inner[0]);
    if (std::string error = CheckCommand(inner); !error.empty()) return Fail(error);
    if (!IsDataCommand(inner_name) || !AllowedInMulti(inner_name)) {
      return Fail("ERR RAFT.REQUEST cannot run '" + std::string(AsCString(inner[0])) + "'");
    }
    Plan p = PlanCommand(inner);
    if (p.kind == Plan::Kind::kWrite) {
      p.session = {static_cast<uint64_t>(session), static_cast<uint64_t>(seq),
                   static_cast<uint64_t>(acked), false};
    }
    return p;
  }
  if (name == "raft.transfer-leader") {
    int64_t id = 0;
    if (!common::ParseInt64(args[1], &id) || id <= 0)
      return Fail("ERR invalid node id '" + args[1] + "'");
    Plan p;
    p.kind = Plan::Kind::kTransfer;
    p.transfer_target = static_cast<uint64_t>(id);
    return p;
  }
  return Fail(UnknownCommandError(args));  // not a data command
}

}  // namespace server
