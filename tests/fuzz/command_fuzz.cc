// Fuzz target for protocol::DecodeCommand, called the way the state machine calls it: on the
// data of a log entry, held in a std::string. Checked, with a hard abort on violation:
//   - decoding never crashes, and a refusal is InvalidArgument;
//   - an accepted command has at least one operation, and each operation's arguments fit its
//     code (as command.h promises);
//   - an accepted command, encoded again with EncodeCommand, decodes to the same value, and
//     encoding is a function of the value (the second encoding equals the first);
//   - protocol::DecodeEntry on the same data: every command it accepts obeys the same rules, a
//     single command is what DecodeCommand returns, and a batch encoded again (EncodeBatch of
//     each command's EncodeCommand) decodes to the same commands.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/check.h"
#include "common/status.h"
#include "protocol/command.h"

namespace {

using protocol::Command;
using protocol::Op;
using protocol::OpCode;

}  // namespace

// DecodeEntry's checks. `single`: what DecodeCommand made of the same bytes, if it took them.
void CheckEntry(const std::string& bytes, const Command* single) {
  std::vector<Command> commands;
  const common::Status status = protocol::DecodeEntry(bytes, &commands);
  if (!status.ok()) {
    CHECK(status.code() == common::Status::Code::kInvalidArgument);
    CHECK(single == nullptr);
    return;
  }
  CHECK(!commands.empty());
  for (const Command& c : commands) {
    CHECK(!c.ops.empty());
    for (const Op& op : c.ops) CHECK(protocol::OpArgumentsFit(op));
  }
  if (commands.size() == 1 && single != nullptr) {
    CHECK(commands[0] == *single);
    return;
  }
  CHECK(commands.size() >= 2 && single == nullptr);
  std::vector<std::string> encoded;
  for (const Command& c : commands) {
    CHECK(protocol::Batchable(c));
    encoded.push_back(protocol::EncodeCommand(c));
  }
  std::vector<Command> again;
  CHECK(protocol::DecodeEntry(protocol::EncodeBatch(encoded), &again).ok());
  CHECK(again == commands);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A log entry's data is a std::string, as raft::Entry holds it.
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  Command command;
  const common::Status status = protocol::DecodeCommand(bytes, &command);
  CheckEntry(bytes, status.ok() ? &command : nullptr);
  if (!status.ok()) {
    CHECK(status.code() == common::Status::Code::kInvalidArgument);
    return 0;
  }
  CHECK(!command.ops.empty());
  for (const Op& op : command.ops) CHECK(protocol::OpArgumentsFit(op));

  const std::string encoded = protocol::EncodeCommand(command);
  CHECK(encoded.size() <= protocol::kMaxCommandBytes);
  Command again;
  CHECK(protocol::DecodeCommand(encoded, &again).ok());
  CHECK(again == command);
  CHECK(protocol::EncodeCommand(again) == encoded);
  return 0;
}
