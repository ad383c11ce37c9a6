// The command table (every command raftkv knows, with Redis's arities) and command planning:
// what a data command (one that reads or writes keys, and so needs the leader) does, worked out
// from its arguments alone. The server executes a Plan on the leader: a read waits for a
// ReadIndex point and evaluates its kGet ops on the local state; a write is proposed as one log
// entry; a MULTI queue concatenates the ops of its commands into one entry. Either way the
// results of the ops go through the plan's `format` to become the reply, so a command answers
// the same alone or inside EXEC.
//
// Replies and errors follow Redis 7.0's texts (docs/commands.md lists every command). Keys never
// expire in raftkv: the commands that would set an expiry are refused with a clear error; TTL,
// PTTL and PERSIST answer what is true (no key has a time to live).
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kv/state_machine.h"
#include "protocol/command.h"

namespace server {

// The Redis Cluster hash slot of `key`: CRC16 (XMODEM) of the key, or of the part between the
// first `{` and the next `}` when that part is not empty, modulo 16384.
uint16_t KeyHashSlot(std::string_view key);

// Redis's glob-style pattern match (KEYS, SCAN MATCH): `*`, `?`, `[abc]`, `[^a-z]`, `\x`.
bool GlobMatch(std::string_view pattern, std::string_view text);

// "-<text>\r\n".
std::string ErrorReply(std::string_view text);

// SCAN's cursors: an integer cursor (what clients expect) names the key where the next call
// resumes. The table is bounded: the oldest cursors are forgotten first, and a forgotten or
// unknown cursor is an error rather than a silent restart. Cursors live on the node that
// answered; after a leader change a scan starts again from 0.
class ScanCursors {
 public:
  explicit ScanCursors(size_t capacity = 4096, uint64_t seed = 0);
  // A new cursor for resuming at `key`.
  uint64_t Save(std::string key);
  // Where cursor `id` resumes; false if unknown (never issued or forgotten).
  bool Find(uint64_t id, std::string* key) const;

 private:
  size_t capacity_;
  uint64_t next_;
  std::vector<std::pair<uint64_t, std::string>> ring_;  // (cursor, key), oldest overwritten
  size_t head_ = 0;
};

// A write's exactly-once fields (RAFT.REQUEST, or a node's own forwarding session); id 0: none.
struct SessionRef {
  uint64_t id = 0;
  uint64_t seq = 0;
  uint64_t acked = 0;
  bool create = false;  // a node's forwarding session, created by its first request
};

struct Plan {
  enum class Kind {
    kError,     // reply `error` at once; nothing is read or proposed
    kRead,      // `ops` are kGet ops, read after a ReadIndex point
    kWrite,     // `ops` are proposed as one log entry
    kKeyspace,  // `keyspace` walks the keys after a ReadIndex point (not inside MULTI)
    kTransfer,  // RAFT.TRANSFER-LEADER `transfer_target` (not inside MULTI)
  };
  Kind kind = Kind::kError;
  std::string error;  // kError: the whole RESP error reply
  std::vector<protocol::Op> ops;
  // Builds the reply from the results of `ops`, one per op, in order.
  std::function<void(std::span<const kv::OpResult>, std::string*)> format;
  // kKeyspace: builds the reply from the state machine (read-only). `cursors` is the node's
  // SCAN cursor table.
  std::function<void(kv::StateMachine&, ScanCursors&, std::string*)> keyspace;
  uint64_t transfer_target = 0;
  // The hash slot of the first key (-MOVED); 0 for commands without keys.
  uint16_t slot = 0;
  // kWrite from RAFT.REQUEST: the client's session, request number and acknowledgement.
  SessionRef session;
};

// The command table: every command raftkv knows, with Redis's arity (n: exactly n arguments,
// the name included; -n: at least n) and, for the container commands CLIENT, CONFIG, CLUSTER
// and RAFT.FAULT, their subcommands. CheckCommand looks `args` (args[0] in any case) up as Redis's
// processCommand does before anything else, authentication and MULTI included, and returns
// Redis's error text for an unknown command, an unknown subcommand or a wrong number of
// arguments, or "" when the command may run.
std::string CheckCommand(const std::vector<std::string>& args);

// Redis's text for an unknown command: the name cut at 128 characters, then the arguments,
// each quoted, while they take less than 128 characters (the last one cut to fit).
std::string UnknownCommandError(const std::vector<std::string>& args);

// The reply to `<command> HELP` for a container command (`command` as the client sent it):
// Redis's layout, listing the subcommands raftkv has. "" for any other command.
std::string HelpReply(std::string_view command);

// Whether the command named `lower_name` (lower case) is a data command. The others
// (connection commands, INFO, CLUSTER, ...) are answered by whichever node the client is on.
bool IsDataCommand(std::string_view lower_name);

// Whether `plan` opens or closes a session (RAFT.SESSION): proposed outside any session, and
// never sent twice.
bool IsSessionCommand(const Plan& plan);

// Whether the data command `lower_name` may be queued by MULTI (RAFT.REQUEST, RAFT.SESSION and
// RAFT.TRANSFER-LEADER may not).
bool AllowedInMulti(std::string_view lower_name);

// Plans the data command `args` (args[0] in any case): CheckCommand's errors first, then the
// command's own. RAFT.REQUEST plans the command it wraps, with the session in Plan::session
// when that command writes. REQUIRES: IsDataCommand(lower args[0]).
Plan PlanCommand(const std::vector<std::string>& args);

}  // namespace server
