// Fuzz target for protocol::DecodeCommand, called the way the state machine calls it: on the
// data of a log entry, held in a std::string. Checked, with a hard abort on violation:
//   - decoding never crashes, and a refusal is InvalidArgument;
//   - an accepted command has at least one operation, and each operation's arguments fit its
//     code (as command.h promises);
//   - an accepted command, encoded again with EncodeCommand, decodes to the same value, and
//     encoding is a function of the value (the second encoding equals the first).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/status.h"
#include "protocol/command.h"

namespace {

using protocol::Command;
using protocol::Op;
using protocol::OpCode;

#define FUZZ_CHECK(condition)                                                                \
  do {                                                                                       \
    if (!(condition)) {                                                                      \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                          \
    }                                                                                        \
  } while (false)

bool ArgumentsFit(const Op& op) {
  switch (op.code) {
    case OpCode::kSet:
    case OpCode::kAppend:
    case OpCode::kIncrByFloat:
      return op.keys.size() == 1 && op.values.size() == 1 && !(op.nx && op.xx);
    case OpCode::kIncrBy:
    case OpCode::kGetDel:
      return op.keys.size() == 1 && op.values.empty();
    case OpCode::kDel:
      return !op.keys.empty() && op.values.empty();
    case OpCode::kMSet:
      return !op.keys.empty() && op.keys.size() == op.values.size();
    case OpCode::kFlushAll:
      return op.keys.empty() && op.values.empty();
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A log entry's data is a std::string, as raft::Entry holds it.
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  Command command;
  const common::Status status = protocol::DecodeCommand(bytes, &command);
  if (!status.ok()) {
    FUZZ_CHECK(status.code() == common::Status::Code::kInvalidArgument);
    return 0;
  }
  FUZZ_CHECK(!command.ops.empty());
  for (const Op& op : command.ops) FUZZ_CHECK(ArgumentsFit(op));

  const std::string encoded = protocol::EncodeCommand(command);
  FUZZ_CHECK(encoded.size() <= protocol::kMaxCommandBytes);
  Command again;
  FUZZ_CHECK(protocol::DecodeCommand(encoded, &again).ok());
  FUZZ_CHECK(again == command);
  FUZZ_CHECK(protocol::EncodeCommand(again) == encoded);
  return 0;
}
