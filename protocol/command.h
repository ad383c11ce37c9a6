// Commands in log entries: plain structs, and their FlatBuffers encoding (command.fbs).
// Decoding verifies the buffer and caps its size before reading it.
//
// Thread-safety: pure functions on values.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace protocol {

enum class OpCode : uint8_t {
  kSet,
  kDel,
  kAppend,
  kIncrBy,
  kIncrByFloat,
  kMSet,
  kGetDel,
  kFlushAll,
  kGet,
  kSessionOpen,   // no keys or values; incr = the session's timeout in milliseconds (> 0)
  kSessionClose,  // no keys or values; incr = the session id (> 0)
};

struct Op {
  OpCode code = OpCode::kSet;
  std::vector<std::string> keys;
  std::vector<std::string> values;
  bool nx = false;
  bool xx = false;
  bool get = false;
  int64_t incr = 0;  // kIncrBy; kIncrByFloat carries its amount as values[0], as sent

  bool operator==(const Op&) const = default;
};

// A command's exactly-once fields (kv/state_machine.h has the rules): request `seq` of
// `session`, whose client holds the replies of every request numbered below `acked`.
struct Command {
  uint64_t session = 0;  // 0: no duplicate detection
  uint64_t seq = 0;
  uint64_t acked = 0;
  // Cluster time: the proposing leader's clock in milliseconds since the epoch. Applying takes
  // the largest time seen so far, so cluster time never goes back; sessions expire by it.
  uint64_t time_ms = 0;
  // A node's own forwarding session is created by its first request; a client's session must
  // have been opened (RAFT.SESSION OPEN), so that a retry after expiry cannot apply twice.
  bool create_session = false;
  std::vector<Op> ops;

  bool operator==(const Command&) const = default;
};

inline constexpr uint16_t kCommandVersion = 1;
// A batch: commands of many requests proposed as one log entry, applied in order as if each
// were an entry of its own (kv/state_machine.h).
inline constexpr uint16_t kBatchVersion = 2;
// No batch may carry more commands than this (a leader's batch of 256 KiB holds a few
// thousand): the count is checked before anything is decoded.
inline constexpr size_t kMaxBatchCommands = 1 << 16;
// No encoded command may exceed this (a log entry's payload limit).
inline constexpr size_t kMaxCommandBytes = 64 << 20;

// Whether an op's keys, values and flags fit its code (what DecodeCommand demands).
bool OpArgumentsFit(const Op& op);

// Whether `cmd` may share a log entry with others. Not a session's opening (the entry's index
// names the session) or closing, nor a FLUSHALL (it scans the state, which must then hold whole
// entries only: kv/pending_writes.h).
bool Batchable(const Command& cmd);

std::string EncodeCommand(const Command& cmd);
// One entry's payload for `commands`, each an EncodeCommand() of a Batchable command.
// REQUIRES: at least two.
std::string EncodeBatch(std::span<const std::string> commands);
// InvalidArgument on a buffer that is too large, fails verification, has an unknown version
// or op code, or an op whose arguments do not fit its code.
common::Status DecodeCommand(std::string_view bytes, Command* out);
// The commands of a log entry's payload: the one command, or those of a batch. InvalidArgument
// as DecodeCommand, and on a batch that is empty, has fields of its own besides its commands,
// nests, holds more than kMaxBatchCommands or a command that is not Batchable, or whose
// commands add up to more than its own size (the same bytes referred to more than once).
common::Status DecodeEntry(std::string_view bytes, std::vector<Command>* out);

}  // namespace protocol
