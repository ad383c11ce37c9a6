// The command codec: round trips, and every malformed buffer refused before it is read.
#include "protocol/command.h"

#include <gtest/gtest.h>

namespace protocol {
namespace {

Command Sample() {
  Command c;
  c.session = 42;
  c.seq = 7;
  Op set;
  set.code = OpCode::kSet;
  set.keys = {std::string("k\0ey", 4)};
  set.values = {std::string("\xff\x00v", 3)};
  set.nx = true;
  set.get = true;
  Op incr;
  incr.code = OpCode::kIncrByFloat;
  incr.keys = {"f"};
  incr.values = {"2.5"};
  Op del;
  del.code = OpCode::kDel;
  del.keys = {"a", "b", ""};
  c.ops = {set, incr, del};
  return c;
}

TEST(Command, RoundTripsBinarySafe) {
  Command in = Sample();
  Command out;
  common::Status s = DecodeCommand(EncodeCommand(in), &out);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(out, in);
  EXPECT_EQ(out.ops[0].keys[0].size(), 4u);
}

TEST(Command, GarbageIsRefused) {
  Command out;
  EXPECT_FALSE(DecodeCommand("", &out).ok());
  EXPECT_FALSE(DecodeCommand("not a flatbuffer at all", &out).ok());
  std::string bytes = EncodeCommand(Sample());
  EXPECT_FALSE(DecodeCommand(bytes.substr(0, bytes.size() / 2), &out).ok());
}

TEST(Command, PrefixesAndFlippedBytesAreRefusedSafely) {
  std::string bytes = EncodeCommand(Sample());
  // No strict prefix is a valid command (the root offset points past it).
  for (size_t n = 0; n < bytes.size(); n++) {
    Command out;
    EXPECT_FALSE(DecodeCommand(bytes.substr(0, n), &out).ok()) << "prefix of " << n << " bytes";
  }
  // A flipped byte is refused or decodes to a well-formed command; never an out-of-bounds
  // read (the sanitizer build runs this).
  int refused = 0;
  for (size_t i = 0; i < bytes.size(); i++) {
    std::string flipped = bytes;
    flipped[i] = static_cast<char>(flipped[i] ^ 0x5a);
    Command out;
    if (!DecodeCommand(flipped, &out).ok()) refused++;
  }
  EXPECT_GT(refused, 0);
}

TEST(Command, ArgumentsMustFitTheOp) {
  Command c;
  Op set;
  set.code = OpCode::kSet;
  set.keys = {"k"};  // no value
  c.ops = {set};
  Command out;
  EXPECT_EQ(DecodeCommand(EncodeCommand(c), &out).code(), common::Status::Code::kInvalidArgument);
  Op mset;
  mset.code = OpCode::kMSet;
  mset.keys = {"a", "b"};
  mset.values = {"1"};
  c.ops = {mset};
  EXPECT_FALSE(DecodeCommand(EncodeCommand(c), &out).ok());
  c.ops = {};
  EXPECT_FALSE(DecodeCommand(EncodeCommand(c), &out).ok());
  Op both;
  both.code = OpCode::kSet;
  both.keys = {"k"};
  both.values = {"v"};
  both.nx = both.xx = true;
  c.ops = {both};
  EXPECT_FALSE(DecodeCommand(EncodeCommand(c), &out).ok());
}

TEST(Command, OversizedBufferIsRefusedBeforeReading) {
  std::string huge(kMaxCommandBytes + 1, '\0');
  Command out;
  common::Status s = DecodeCommand(huge, &out);
  EXPECT_EQ(s.code(), common::Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("too large"), std::string::npos);
}

}  // namespace
}  // namespace protocol
