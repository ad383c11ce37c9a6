// The command codec: round trips, and every malformed buffer refused before it is read.
#include "protocol/command.h"

#include <gtest/gtest.h>

#include "protocol/command_generated.h"

namespace protocol {
namespace {

Command Sample() {
  Command c;
  c.session = 42;
  c.seq = 7;
  c.acked = 5;
  c.time_ms = 1'800'000'000'000;
  c.create_session = true;
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

TEST(Command, SessionOpsStandAlone) {
  Op open;
  open.code = OpCode::kSessionOpen;
  open.incr = 60'000;
  Command c;
  c.ops = {open};
  Command out;
  ASSERT_TRUE(DecodeCommand(EncodeCommand(c), &out).ok());
  EXPECT_EQ(out, c);
  // Not in a session, not beside another op, and with a positive argument.
  c.session = 3;
  c.seq = 1;
  EXPECT_FALSE(DecodeCommand(EncodeCommand(c), &out).ok());
  c.session = c.seq = 0;
  Op del;
  del.code = OpCode::kDel;
  del.keys = {"k"};
  c.ops = {del, open};
  EXPECT_FALSE(DecodeCommand(EncodeCommand(c), &out).ok());
  c.ops = {open, del};
  EXPECT_FALSE(DecodeCommand(EncodeCommand(c), &out).ok());
  Op close;
  close.code = OpCode::kSessionClose;
  close.incr = 0;
  c.ops = {close};
  EXPECT_FALSE(DecodeCommand(EncodeCommand(c), &out).ok());
  close.keys = {"k"};
  close.incr = 9;
  c.ops = {close};
  EXPECT_FALSE(DecodeCommand(EncodeCommand(c), &out).ok());
}

TEST(Command, OversizedBufferIsRefusedBeforeReading) {
  std::string huge(kMaxCommandBytes + 1, '\0');
  Command out;
  common::Status s = DecodeCommand(huge, &out);
  EXPECT_EQ(s.code(), common::Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("too large"), std::string::npos);
}

TEST(Command, SharedDataCannotAmplifyMemory) {
  // One 64-byte string, referenced by 100 ops: decoding would copy it 200 times.
  namespace fbs = raftkv::protocol::fb;
  flatbuffers::FlatBufferBuilder b;
  std::string payload(64, 'x');
  auto bytes = fbs::CreateBytes(
      b, b.CreateVector(reinterpret_cast<const uint8_t*>(payload.data()), payload.size()));
  auto list = b.CreateVector(std::vector<flatbuffers::Offset<fbs::Bytes>>{bytes});
  auto op = fbs::CreateOp(b, fbs::OpCode_Set, list, list);
  std::vector<flatbuffers::Offset<fbs::Op>> ops(100, op);
  b.Finish(fbs::CreateCommand(b, kCommandVersion, 0, 0, b.CreateVector(ops)));
  std::string encoded(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
  Command out;
  common::Status s = DecodeCommand(encoded, &out);
  EXPECT_EQ(s.code(), common::Status::Code::kInvalidArgument) << s.ToString();
  // The same command with one op decodes.
  flatbuffers::FlatBufferBuilder one;
  auto bytes1 = fbs::CreateBytes(
      one, one.CreateVector(reinterpret_cast<const uint8_t*>(payload.data()), payload.size()));
  auto list1 = one.CreateVector(std::vector<flatbuffers::Offset<fbs::Bytes>>{bytes1});
  auto op1 = fbs::CreateOp(one, fbs::OpCode_Set, list1, list1);
  one.Finish(fbs::CreateCommand(one, kCommandVersion, 0, 0,
                                one.CreateVector(std::vector<flatbuffers::Offset<fbs::Op>>{op1})));
  std::string encoded1(reinterpret_cast<const char*>(one.GetBufferPointer()), one.GetSize());
  // Key and value share one string here too (128 decoded bytes): refused only if the buffer is
  // smaller than what it decodes to.
  s = DecodeCommand(encoded1, &out);
  EXPECT_EQ(s.ok(), encoded1.size() >= 128) << s.ToString();
}

TEST(Command, MisalignedBufferDecodes) {
  std::string bytes = EncodeCommand(Sample());
  std::string shifted = "x" + bytes;
  Command out;
  ASSERT_TRUE(DecodeCommand(std::string_view(shifted).substr(1), &out).ok());
  EXPECT_EQ(out, Sample());
}

// ---------------------------------------------------------------- batches

namespace fbs = raftkv::protocol::fb;

Command SetOf(const std::string& key, uint64_t session, uint64_t seq) {
  Command c;
  c.session = session;
  c.seq = seq;
  c.time_ms = 1'800'000'000'000 + seq;
  Op set;
  set.code = OpCode::kSet;
  set.keys = {key};
  set.values = {"v-" + key};
  c.ops = {set};
  return c;
}

Command With(OpCode code) {
  Command c;
  Op op;
  op.code = code;
  if (code == OpCode::kSessionOpen || code == OpCode::kSessionClose) op.incr = 5;
  c.ops = {op};
  return c;
}

// A version-2 buffer of `items` as they are, with `session` set on the batch itself.
std::string RawBatch(const std::vector<std::string>& items, uint64_t session = 0) {
  flatbuffers::FlatBufferBuilder b;
  std::vector<flatbuffers::Offset<fbs::Bytes>> offsets;
  for (const std::string& i : items) {
    offsets.push_back(
        fbs::CreateBytes(b, b.CreateVector(reinterpret_cast<const uint8_t*>(i.data()), i.size())));
  }
  auto list = b.CreateVector(offsets);
  fbs::CommandBuilder cb(b);
  cb.add_version(kBatchVersion);
  cb.add_session(session);
  cb.add_batch(list);
  b.Finish(cb.Finish());
  return std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
}

TEST(CommandBatch, RoundTripsInOrder) {
  std::vector<Command> in = {Sample(), SetOf("a", 0, 0), SetOf("b", 9, 3)};
  std::vector<std::string> encoded;
  for (const Command& c : in) encoded.push_back(EncodeCommand(c));
  std::vector<Command> out;
  common::Status s = DecodeEntry(EncodeBatch(encoded), &out);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(out, in);
  // A single command is an entry of one.
  ASSERT_TRUE(DecodeEntry(encoded[0], &out).ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], in[0]);
  // DecodeCommand takes no batch.
  Command one;
  EXPECT_FALSE(DecodeCommand(EncodeBatch(encoded), &one).ok());
}

TEST(CommandBatch, WhatMustBeAnEntryOfItsOwnIsNotBatchable) {
  EXPECT_TRUE(Batchable(Sample()));
  EXPECT_FALSE(Batchable(With(OpCode::kFlushAll)));
  EXPECT_FALSE(Batchable(With(OpCode::kSessionOpen)));
  EXPECT_FALSE(Batchable(With(OpCode::kSessionClose)));
  Command multi = Sample();  // a MULTI queue with a FLUSHALL inside
  multi.ops.push_back(With(OpCode::kFlushAll).ops[0]);
  EXPECT_FALSE(Batchable(multi));
  for (OpCode code : {OpCode::kFlushAll, OpCode::kSessionOpen, OpCode::kSessionClose}) {
    std::vector<Command> out;
    common::Status s =
        DecodeEntry(RawBatch({EncodeCommand(SetOf("a", 0, 0)), EncodeCommand(With(code))}), &out);
    EXPECT_EQ(s.code(), common::Status::Code::kInvalidArgument) << static_cast<int>(code);
  }
}

TEST(CommandBatch, MalformedBatchesAreRefused) {
  const std::string a = EncodeCommand(SetOf("a", 0, 0));
  const std::string b = EncodeCommand(SetOf("b", 0, 0));
  std::vector<Command> out;
  EXPECT_TRUE(DecodeEntry(RawBatch({a, b}), &out).ok());
  EXPECT_FALSE(DecodeEntry(RawBatch({}), &out).ok()) << "empty";
  EXPECT_FALSE(DecodeEntry(RawBatch({a, b}, /*session=*/3), &out).ok()) << "fields of its own";
  EXPECT_FALSE(DecodeEntry(RawBatch({a, RawBatch({a, b})}), &out).ok()) << "nested";
  EXPECT_FALSE(DecodeEntry(RawBatch({a, "not a command"}), &out).ok()) << "garbage inside";
  const std::string whole = EncodeBatch(std::vector<std::string>{a, b});
  for (size_t n = 0; n < whole.size(); n++) {
    EXPECT_FALSE(DecodeEntry(whole.substr(0, n), &out).ok()) << "prefix of " << n << " bytes";
  }
}

TEST(CommandBatch, SharedCommandsCannotAmplifyMemory) {
  // One command referenced 50 times: 50 decodes of the same bytes.
  flatbuffers::FlatBufferBuilder b;
  const std::string a = EncodeCommand(SetOf("a", 0, 0));
  auto item =
      fbs::CreateBytes(b, b.CreateVector(reinterpret_cast<const uint8_t*>(a.data()), a.size()));
  std::vector<flatbuffers::Offset<fbs::Bytes>> items(50, item);
  auto list = b.CreateVector(items);
  fbs::CommandBuilder cb(b);
  cb.add_version(kBatchVersion);
  cb.add_batch(list);
  b.Finish(cb.Finish());
  std::string encoded(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
  std::vector<Command> out;
  common::Status s = DecodeEntry(encoded, &out);
  EXPECT_EQ(s.code(), common::Status::Code::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find("more than once"), std::string::npos) << s.ToString();
  // A count beyond the limit is refused before anything is decoded: 4 bytes an item.
  flatbuffers::FlatBufferBuilder many;
  auto one = fbs::CreateBytes(
      many, many.CreateVector(reinterpret_cast<const uint8_t*>(a.data()), a.size()));
  auto list_many =
      many.CreateVector(std::vector<flatbuffers::Offset<fbs::Bytes>>(kMaxBatchCommands + 1, one));
  fbs::CommandBuilder mb(many);
  mb.add_version(kBatchVersion);
  mb.add_batch(list_many);
  many.Finish(mb.Finish());
  std::string huge(reinterpret_cast<const char*>(many.GetBufferPointer()), many.GetSize());
  s = DecodeEntry(huge, &out);
  EXPECT_EQ(s.code(), common::Status::Code::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find("more than"), std::string::npos) << s.ToString();
  EXPECT_TRUE(out.empty()) << out.size();
}

TEST(CommandBatch, ACommandWithABatchFieldIsRefused) {
  // Version 1 with a batch beside its ops: neither a command nor a batch.
  const std::string a = EncodeCommand(SetOf("a", 0, 0));
  flatbuffers::FlatBufferBuilder b;
  auto item =
      fbs::CreateBytes(b, b.CreateVector(reinterpret_cast<const uint8_t*>(a.data()), a.size()));
  auto list = b.CreateVector(std::vector<flatbuffers::Offset<fbs::Bytes>>{item});
  auto key = fbs::CreateBytes(b, b.CreateVector(std::vector<uint8_t>{'k'}));
  auto keys = b.CreateVector(std::vector<flatbuffers::Offset<fbs::Bytes>>{key});
  auto op = fbs::CreateOp(b, fbs::OpCode_Set, keys, keys);
  auto ops = b.CreateVector(std::vector<flatbuffers::Offset<fbs::Op>>{op});
  fbs::CommandBuilder cb(b);
  cb.add_version(kCommandVersion);
  cb.add_ops(ops);
  cb.add_batch(list);
  b.Finish(cb.Finish());
  std::string encoded(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
  Command one;
  EXPECT_FALSE(DecodeCommand(encoded, &one).ok());
  std::vector<Command> out;
  EXPECT_FALSE(DecodeEntry(encoded, &out).ok());
}

}  // namespace
}  // namespace protocol
