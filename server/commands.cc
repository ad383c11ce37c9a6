#include "server/commands.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>

#include "protocol/resp_writer.h"

namespace server {

namespace {

using protocol::Op;
using protocol::OpCode;
using Results = std::span<const kv::OpResult>;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Plan Fail(std::string_view text) {
  Plan p;
  p.kind = Plan::Kind::kError;
  p.error = ErrorReply(text);
  return p;
}

Plan WrongArgs(const std::string& name) {
  return Fail("ERR wrong number of arguments for '" + name + "' command");
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
  if (argc < 2 || argc % 2 != 0) return argc < 2 ? WrongArgs("scan") : Fail("ERR syntax error");
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
    std::string opt = Lower(args[i]);
    if (opt == "match") {
      pattern = args[i + 1];
    } else if (opt == "count") {
      if (!ParseInt(args[i + 1], &count))
        return Fail("ERR value is not an integer or out of range");
      if (count < 1) return Fail("ERR syntax error");
    } else if (opt == "type") {
      type = Lower(args[i + 1]);
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

}  // namespace

std::string ErrorReply(std::string_view text) {
  std::string out;
  protocol::RespWriter(&out).Error(text);
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
  uint16_t crc = 0;  // CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0
  for (char ch : key) {
    crc = static_cast<uint16_t>(crc ^ (static_cast<uint8_t>(ch) << 8));
    for (int i = 0; i < 8; i++) {
      crc = static_cast<uint16_t>((crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1);
    }
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

bool IsDataCommand(std::string_view n) {
  static const char* const kNames[] = {"get",
                                       "strlen",
                                       "type",
                                       "exists",
                                       "mget",
                                       "ttl",
                                       "pttl",
                                       "persist",
                                       "dbsize",
                                       "keys",
                                       "scan",
                                       "set",
                                       "put",
                                       "setnx",
                                       "getset",
                                       "getdel",
                                       "mset",
                                       "del",
                                       "unlink",
                                       "append",
                                       "incr",
                                       "decr",
                                       "incrby",
                                       "decrby",
                                       "incrbyfloat",
                                       "flushall",
                                       "flushdb",
                                       "setex",
                                       "psetex",
                                       "getex",
                                       "expire",
                                       "pexpire",
                                       "expireat",
                                       "pexpireat",
                                       "expiretime",
                                       "pexpiretime",
                                       "raft.transfer-leader"};
  for (const char* name : kNames) {
    if (n == name) return true;
  }
  return false;
}

Plan PlanCommand(const std::vector<std::string>& args) {
  const std::string name = Lower(args[0]);
  const size_t argc = args.size();

  // ---- Reads ----
  if (name == "get" || name == "strlen" || name == "type" || name == "ttl" || name == "pttl" ||
      name == "persist" || name == "expiretime" || name == "pexpiretime") {
    if (argc != 2) return WrongArgs(name);
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
    if (argc < 2) return WrongArgs(name);
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
    if (argc != 1) return WrongArgs(name);
    return Keyspace([](kv::StateMachine& sm, ScanCursors&, std::string* out) {
      protocol::RespWriter(out).Integer(static_cast<int64_t>(sm.key_count()));
    });
  }
  if (name == "keys") {
    if (argc != 2) return WrongArgs(name);
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

  // ---- Writes ----
  if (name == "set" || name == "put") {
    if (argc < 3) return WrongArgs(name);
    Op op = MakeOp(OpCode::kSet, {args[1]}, {args[2]});
    for (size_t i = 3; i < argc; i++) {
      std::string opt = Lower(args[i]);
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
    if (argc != 3) return WrongArgs(name);
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
    if (argc != 2) return WrongArgs(name);
    return Write(MakeOp(OpCode::kGetDel, {args[1]}), FormatFirst);
  }
  if (name == "mset") {
    if (argc < 3 || argc % 2 == 0) return WrongArgs(name);
    Op op = MakeOp(OpCode::kMSet, {});
    for (size_t i = 1; i < argc; i += 2) {
      op.keys.push_back(args[i]);
      op.values.push_back(args[i + 1]);
    }
    return Write(std::move(op), FormatFirst);
  }
  if (name == "del" || name == "unlink") {
    if (argc < 2) return WrongArgs(name);
    return Write(MakeOp(OpCode::kDel, std::vector<std::string>(args.begin() + 1, args.end())),
                 FormatFirst);
  }
  if (name == "append") {
    if (argc != 3) return WrongArgs(name);
    return Write(MakeOp(OpCode::kAppend, {args[1]}, {args[2]}), FormatFirst);
  }
  if (name == "incr" || name == "decr" || name == "incrby" || name == "decrby") {
    bool by = name == "incrby" || name == "decrby";
    if (argc != (by ? 3u : 2u)) return WrongArgs(name);
    int64_t amount = 1;
    if (by && !ParseInt(args[2], &amount)) {
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
    if (argc != 3) return WrongArgs(name);
    return Write(MakeOp(OpCode::kIncrByFloat, {args[1]}, {args[2]}), FormatFirst);
  }
  if (name == "flushall" || name == "flushdb") {
    if (argc > 2) return WrongArgs(name);
    if (argc == 2) {
      std::string mode = Lower(args[1]);
      if (mode != "sync" && mode != "async") return Fail("ERR syntax error");
    }
    return Write(MakeOp(OpCode::kFlushAll, {}), FormatFirst);
  }
  if (name == "raft.transfer-leader") {
    if (argc != 2) return WrongArgs(name);
    int64_t id = 0;
    if (!ParseInt(args[1], &id) || id <= 0) return Fail("ERR invalid node id '" + args[1] + "'");
    Plan p;
    p.kind = Plan::Kind::kTransfer;
    p.transfer_target = static_cast<uint64_t>(id);
    return p;
  }
  return Fail("ERR unknown command '" + args[0] + "'");
}

}  // namespace server
