// Commands in log entries: plain structs, and their FlatBuffers encoding (command.fbs).
// Decoding verifies the buffer and caps its size before reading it.
//
// Thread-safety: pure functions on values.
#pragma once

#include <cstdint>
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
  kGet
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

struct Command {
  uint64_t session = 0;  // 0: no duplicate detection
  uint64_t seq = 0;
  std::vector<Op> ops;

  bool operator==(const Command&) const = default;
};

inline constexpr uint16_t kCommandVersion = 1;
// No encoded command may exceed this (a log entry's payload limit).
inline constexpr size_t kMaxCommandBytes = 64 << 20;

// Whether an op's keys, values and flags fit its code (what DecodeCommand demands).
bool OpArgumentsFit(const Op& op);

std::string EncodeCommand(const Command& cmd);
// InvalidArgument on a buffer that is too large, fails verification, has an unknown version
// or op code, or an op whose arguments do not fit its code.
common::Status DecodeCommand(std::string_view bytes, Command* out);

}  // namespace protocol
