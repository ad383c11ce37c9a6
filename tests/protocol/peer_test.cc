// Peer frames: round trips of every kind, framing split at every byte, and every malformed
// stream refused (length prefixes, verification, versions, payload and message types,
// required fields, size bounds), plus a seeded mutation fuzz loop that the sanitizer build
// runs.
#include "protocol/peer.h"

#include <flatbuffers/flatbuffers.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "common/coding.h"
#include "protocol/command.h"
#include "protocol/peer_generated.h"

namespace protocol {
namespace {

namespace fbs = raftkv::protocol::fb;

constexpr uint64_t kMax64 = std::numeric_limits<uint64_t>::max();

std::string BigEndian32(uint32_t v) {
  std::string s;
  common::PutBigEndian32(&s, v);
  return s;
}

std::string WithPrefix(const uint8_t* body, size_t size) {
  return BigEndian32(static_cast<uint32_t>(size)) +
         std::string(reinterpret_cast<const char*>(body), size);
}

// Finishes a hand-built frame and returns its wire bytes.
std::string Finished(flatbuffers::FlatBufferBuilder& b, flatbuffers::Offset<fbs::Frame> frame,
                     bool identifier = true) {
  if (identifier) {
    fbs::FinishFrameBuffer(b, frame);
  } else {
    b.Finish(frame);
  }
  return WithPrefix(b.GetBufferPointer(), b.GetSize());
}

flatbuffers::Offset<flatbuffers::Vector<uint8_t>> Bytes(flatbuffers::FlatBufferBuilder& b,
                                                        const std::string& s) {
  return b.CreateVector(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

// Ends a table without the generated Finish()'s check of required fields (an assert in debug
// builds), so that tests can build what a broken or hostile writer would send.
template <typename Builder>
flatbuffers::Offset<typename Builder::Table> FinishUnchecked(Builder& builder) {
  return flatbuffers::Offset<typename Builder::Table>(builder.fbb_.EndTable(builder.start_));
}

Hello SampleHello() {
  Hello h;
  h.version = 0x1234;
  h.cluster_id = std::string("prod\0east", 9);
  h.node_id = 0x0102030405060708;
  h.nonce = std::string("\x00\xff\x01\x80\x00n", 6);
  return h;
}

HelloProof SampleProof() {
  HelloProof p;
  for (int i = 0; i < 32; i++) p.mac.push_back(static_cast<char>(255 - i * 7));
  p.mac[5] = '\0';
  return p;
}

PeerRaftMessage SampleMessage() {
  PeerRaftMessage m;
  m.type = 4;  // kAppend
  m.from = 3;
  m.to = kMax64;
  m.term = 0x1111111111;
  m.log_term = 0x2222;
  m.index = 0x3333333;
  m.commit = 0x44;
  m.reject = true;
  m.reject_hint = 0x5555555555555;
  m.context = 0x66;
  m.snapshot_index = 0x777;
  m.snapshot_term = 0x88888;
  m.entries.push_back({0x99, 0x3333334, 0, std::string("set\0k\0v", 7)});
  m.entries.push_back({0x9a, 0x3333335, 1, ""});
  m.entries.push_back({0x9b, 0x3333336, 0, std::string(1000, '\xab')});
  return m;
}

SnapshotChunk SampleChunk() {
  SnapshotChunk c;
  c.from = 11;
  c.to = 12;
  c.term = 13;
  c.snapshot_index = 14;
  c.snapshot_term = 15;
  c.offset = 1ull << 40;
  c.data = std::string("\x00\x00chunk\x00", 8);
  c.last = true;
  return c;
}

SnapshotAck SampleAck() {
  SnapshotAck a;
  a.from = 21;
  a.to = 22;
  a.snapshot_index = 23;
  a.snapshot_term = 24;
  a.offset_received = 25;
  a.ok = false;
  a.error = "disk full";
  return a;
}

ForwardRequest SampleForward() {
  ForwardRequest q;
  q.from = 31;
  q.to = 32;
  q.id = 33;
  q.session = 1ull << 62;
  q.seq = 35;
  q.acked = 34;
  q.commands = std::string("*2\r\n$3\r\nGET\r\n$2\r\nk\x00\r\n", 20);
  return q;
}

ForwardReply SampleForwardReply() {
  ForwardReply r;
  r.from = 41;
  r.to = 42;
  r.id = 43;
  r.not_leader = true;
  r.reply = "-ERR x\r\n";
  return r;
}

// Frames of every kind, with distinctive values, empty strings and zero values.
std::vector<PeerFrame> Samples() {
  std::vector<PeerFrame> frames = {SampleHello(),       SampleProof(), SampleMessage(),
                                   SampleChunk(),       SampleAck(),   SampleForward(),
                                   SampleForwardReply()};
  frames.push_back(ForwardRequest{});
  frames.push_back(ForwardReply{});
  frames.push_back(Hello{});  // empty cluster id and nonce, node 0
  frames.push_back(HelloProof{});
  frames.push_back(PeerRaftMessage{});
  frames.push_back(SnapshotChunk{});
  frames.push_back(SnapshotAck{});  // ok, empty error
  PeerRaftMessage big = SampleMessage();
  big.type = 9;
  big.reject = false;
  frames.push_back(big);
  return frames;
}

// Feeds `wire` in one piece; returns the frames, and the final result in *last.
std::vector<PeerFrame> DecodeAll(FrameDecoder* d, const std::string& wire,
                                 FrameDecoder::Result* last) {
  d->Feed(wire.data(), wire.size());
  std::vector<PeerFrame> frames;
  PeerFrame f;
  FrameDecoder::Result r;
  while ((r = d->Next(&f)) == FrameDecoder::kFrame) frames.push_back(f);
  *last = r;
  return frames;
}

// The result of decoding `wire` with a fresh decoder, which must hold no frame.
FrameDecoder::Result Refusal(const std::string& wire, std::string* error = nullptr) {
  FrameDecoder d;
  FrameDecoder::Result last;
  std::vector<PeerFrame> frames = DecodeAll(&d, wire, &last);
  EXPECT_TRUE(frames.empty());
  if (error != nullptr) *error = d.error();
  return last;
}

PeerFrame RoundTrip(const PeerFrame& in) {
  FrameDecoder d;
  FrameDecoder::Result last;
  std::vector<PeerFrame> out = DecodeAll(&d, EncodeFrame(in), &last);
  EXPECT_EQ(last, FrameDecoder::kNeedMore) << d.error();
  EXPECT_EQ(d.buffered_bytes(), 0u);
  EXPECT_EQ(out.size(), 1u);
  return out.empty() ? PeerFrame{} : out[0];
}

TEST(PeerFrame, RoundTripsEveryKind) {
  for (const PeerFrame& in : Samples()) {
    EXPECT_EQ(RoundTrip(in), in) << "frame kind " << in.index();
  }
  // Binary and empty byte strings keep their exact sizes.
  const PeerFrame hello = RoundTrip(SampleHello());
  ASSERT_TRUE(std::holds_alternative<Hello>(hello));
  EXPECT_EQ(std::get<Hello>(hello).cluster_id.size(), 9u);
  EXPECT_EQ(std::get<Hello>(hello).nonce.size(), 6u);
  const PeerFrame msg = RoundTrip(SampleMessage());
  ASSERT_TRUE(std::holds_alternative<PeerRaftMessage>(msg));
  EXPECT_EQ(std::get<PeerRaftMessage>(msg).entries[0].data.size(), 7u);
  EXPECT_TRUE(std::get<PeerRaftMessage>(msg).entries[1].data.empty());
}

TEST(PeerFrame, RoundTripsEveryMessageTypeAndExtremeValues) {
  for (uint8_t type = 0; type <= kMaxPeerMessageType; type++) {
    PeerRaftMessage m;
    m.type = type;
    m.from = kMax64;
    m.to = kMax64 - 1;
    m.term = kMax64 - 2;
    m.log_term = kMax64 - 3;
    m.index = kMax64 - 4;
    m.commit = kMax64 - 5;
    m.reject_hint = kMax64 - 6;
    m.context = kMax64 - 7;
    m.snapshot_index = kMax64 - 8;
    m.snapshot_term = kMax64 - 9;
    m.entries.push_back({kMax64, kMax64, kMaxPeerEntryType, "x"});
    EXPECT_EQ(RoundTrip(m), PeerFrame(m)) << "type " << int{type};
  }
}

TEST(PeerFrame, WireLayoutIsBigEndianLengthThenIdentifiedBody) {
  const std::string wire = EncodeFrame(SampleProof());
  ASSERT_GT(wire.size(), 12u);
  const auto* u = reinterpret_cast<const unsigned char*>(wire.data());
  const size_t length = (size_t{u[0]} << 24) | (size_t{u[1]} << 16) | (size_t{u[2]} << 8) | u[3];
  EXPECT_EQ(length, wire.size() - kPeerFrameHeaderBytes);
  EXPECT_EQ(wire.substr(kPeerFrameHeaderBytes + 4, 4), "RKVP");
}

TEST(PeerDecoder, ManyFramesInOneBufferSplitAtEveryByte) {
  const std::vector<PeerFrame> frames = Samples();
  std::string wire;
  for (const PeerFrame& f : frames) wire += EncodeFrame(f);

  for (size_t split = 0; split <= wire.size(); split++) {
    FrameDecoder d;
    std::vector<PeerFrame> out;
    PeerFrame f;
    FrameDecoder::Result r;
    d.Feed(wire.data(), split);
    while ((r = d.Next(&f)) == FrameDecoder::kFrame) out.push_back(f);
    ASSERT_EQ(r, FrameDecoder::kNeedMore) << "split " << split << ": " << d.error();
    d.Feed(wire.data() + split, wire.size() - split);
    while ((r = d.Next(&f)) == FrameDecoder::kFrame) out.push_back(f);
    ASSERT_EQ(r, FrameDecoder::kNeedMore) << "split " << split << ": " << d.error();
    ASSERT_EQ(out, frames) << "split " << split;
    ASSERT_EQ(d.buffered_bytes(), 0u);
  }

  // One byte at a time, taking frames as soon as they complete.
  FrameDecoder d;
  std::vector<PeerFrame> out;
  PeerFrame f;
  for (char c : wire) {
    d.Feed(&c, 1);
    FrameDecoder::Result r;
    while ((r = d.Next(&f)) == FrameDecoder::kFrame) out.push_back(f);
    ASSERT_EQ(r, FrameDecoder::kNeedMore) << d.error();
  }
  EXPECT_EQ(out, frames);
}

TEST(PeerDecoder, RefusesLengthZeroAndBelowMinimum) {
  std::string error;
  EXPECT_EQ(Refusal(BigEndian32(0), &error), FrameDecoder::kError);
  EXPECT_NE(error.find("frame length 0"), std::string::npos) << error;
  EXPECT_EQ(Refusal(BigEndian32(kMinPeerFrameBytes - 1)), FrameDecoder::kError);
}

TEST(PeerDecoder, RefusesLengthAboveCapBeforeTheBodyArrives) {
  FrameDecoder small(1024);
  const std::string prefix = BigEndian32(1025);
  small.Feed(prefix.data(), prefix.size());
  PeerFrame f;
  EXPECT_EQ(small.Next(&f), FrameDecoder::kError);
  EXPECT_NE(small.error().find("1025"), std::string::npos) << small.error();
  EXPECT_EQ(small.buffered_bytes(), 0u);

  // The default cap, and the largest length a prefix can hold.
  EXPECT_EQ(Refusal(BigEndian32(kDefaultMaxPeerFrameBytes + 1)), FrameDecoder::kError);
  EXPECT_EQ(Refusal(BigEndian32(0xffffffff)), FrameDecoder::kError);

  // A length at the cap is accepted: the decoder waits for its body.
  FrameDecoder at_cap(1024);
  const std::string ok_prefix = BigEndian32(1024);
  at_cap.Feed(ok_prefix.data(), ok_prefix.size());
  EXPECT_EQ(at_cap.Next(&f), FrameDecoder::kNeedMore);
}

TEST(PeerDecoder, ErrorIsFinalAndFramesBeforeItAreDelivered) {
  FrameDecoder d;
  const std::string wire = EncodeFrame(SampleAck()) + BigEndian32(0) + EncodeFrame(SampleAck());
  d.Feed(wire.data(), wire.size());
  PeerFrame f;
  ASSERT_EQ(d.Next(&f), FrameDecoder::kFrame);
  EXPECT_EQ(f, PeerFrame(SampleAck()));
  EXPECT_EQ(d.Next(&f), FrameDecoder::kError);
  const std::string good = EncodeFrame(SampleProof());
  d.Feed(good.data(), good.size());
  EXPECT_EQ(d.Next(&f), FrameDecoder::kError);
  EXPECT_EQ(d.buffered_bytes(), 0u);
  EXPECT_FALSE(d.error().empty());
}

TEST(PeerDecoder, TruncatedFrameThenCloseStaysNeedMore) {
  const std::string wire = EncodeFrame(SampleMessage());
  for (size_t cut : {size_t{0}, size_t{2}, size_t{4}, size_t{5}, wire.size() - 1}) {
    FrameDecoder d;
    d.Feed(wire.data(), cut);
    PeerFrame f;
    EXPECT_EQ(d.Next(&f), FrameDecoder::kNeedMore) << "cut " << cut;
    EXPECT_EQ(d.Next(&f), FrameDecoder::kNeedMore) << "cut " << cut;
    EXPECT_EQ(d.buffered_bytes(), cut);
    EXPECT_TRUE(d.error().empty());
  }
}

TEST(PeerDecoder, RefusesGarbageBodies) {
  // Deterministic non-FlatBuffer bytes of the declared length.
  std::string body(64, '\0');
  for (size_t i = 0; i < body.size(); i++) body[i] = static_cast<char>(i * 37 + 11);
  std::string error;
  EXPECT_EQ(Refusal(BigEndian32(64) + body, &error), FrameDecoder::kError);
  EXPECT_EQ(error, "frame fails verification");
  EXPECT_EQ(Refusal(BigEndian32(64) + std::string(64, '\0')), FrameDecoder::kError);
  EXPECT_EQ(Refusal(BigEndian32(64) + std::string(64, '\xff')), FrameDecoder::kError);
}

TEST(PeerDecoder, RefusesAFlatBufferOfAnotherSchema) {
  Command c;
  c.session = 1;
  c.seq = 2;
  Op op;
  op.code = OpCode::kSet;
  op.keys = {"k"};
  op.values = {"v"};
  c.ops = {op};
  const std::string command = EncodeCommand(c);
  EXPECT_EQ(Refusal(WithPrefix(reinterpret_cast<const uint8_t*>(command.data()), command.size())),
            FrameDecoder::kError);
}

TEST(PeerDecoder, RefusesAFrameWithoutTheIdentifier) {
  flatbuffers::FlatBufferBuilder b;
  auto proof = fbs::CreateHelloProof(b, Bytes(b, "mac"));
  auto frame = fbs::CreateFrame(b, kPeerFrameVersion, fbs::Payload_HelloProof, proof.Union());
  EXPECT_EQ(Refusal(Finished(b, frame, /*identifier=*/false)), FrameDecoder::kError);
}

TEST(PeerDecoder, RefusesUnknownVersions) {
  for (uint16_t version : {uint16_t{0}, uint16_t{2}, uint16_t{0xffff}}) {
    flatbuffers::FlatBufferBuilder b;
    auto proof = fbs::CreateHelloProof(b, Bytes(b, "mac"));
    auto frame = fbs::CreateFrame(b, version, fbs::Payload_HelloProof, proof.Union());
    std::string error;
    EXPECT_EQ(Refusal(Finished(b, frame), &error), FrameDecoder::kError) << version;
    EXPECT_EQ(error, "unknown frame version " + std::to_string(version));
  }
  // The same frame at version 1 is accepted, so the version is what was refused.
  flatbuffers::FlatBufferBuilder b;
  auto proof = fbs::CreateHelloProof(b, Bytes(b, "mac"));
  auto frame = fbs::CreateFrame(b, kPeerFrameVersion, fbs::Payload_HelloProof, proof.Union());
  FrameDecoder d;
  FrameDecoder::Result last;
  EXPECT_EQ(DecodeAll(&d, Finished(b, frame), &last).size(), 1u);
}

TEST(PeerDecoder, RefusesMissingAndUnknownPayloads) {
  {  // A union type this version does not know, pointing at a valid table.
    flatbuffers::FlatBufferBuilder b;
    auto proof = fbs::CreateHelloProof(b, Bytes(b, "mac"));
    auto frame =
        fbs::CreateFrame(b, kPeerFrameVersion, static_cast<fbs::Payload>(8), proof.Union());
    std::string error;
    EXPECT_EQ(Refusal(Finished(b, frame), &error), FrameDecoder::kError);
    EXPECT_EQ(error, "unknown payload type 8");
  }
  {  // Type NONE with a table.
    flatbuffers::FlatBufferBuilder b;
    auto proof = fbs::CreateHelloProof(b, Bytes(b, "mac"));
    auto frame = fbs::CreateFrame(b, kPeerFrameVersion, fbs::Payload_NONE, proof.Union());
    std::string error;
    EXPECT_EQ(Refusal(Finished(b, frame), &error), FrameDecoder::kError);
    EXPECT_EQ(error, "frame has no payload");
  }
  {  // No payload at all (a required field).
    flatbuffers::FlatBufferBuilder b;
    fbs::FrameBuilder fb(b);
    fb.add_version(kPeerFrameVersion);
    auto frame = FinishUnchecked(fb);
    EXPECT_EQ(Refusal(Finished(b, frame)), FrameDecoder::kError);
  }
}

TEST(PeerDecoder, RefusesMissingRequiredFields) {
  {  // Hello without a nonce.
    flatbuffers::FlatBufferBuilder b;
    auto cluster = b.CreateString("c");
    fbs::HelloBuilder hb(b);
    hb.add_version(1);
    hb.add_cluster_id(cluster);
    hb.add_node_id(1);
    auto hello = FinishUnchecked(hb);
    auto frame = fbs::CreateFrame(b, kPeerFrameVersion, fbs::Payload_Hello, hello.Union());
    EXPECT_EQ(Refusal(Finished(b, frame)), FrameDecoder::kError);
  }
  {  // HelloProof without a MAC.
    flatbuffers::FlatBufferBuilder b;
    fbs::HelloProofBuilder pb(b);
    auto proof = FinishUnchecked(pb);
    auto frame = fbs::CreateFrame(b, kPeerFrameVersion, fbs::Payload_HelloProof, proof.Union());
    EXPECT_EQ(Refusal(Finished(b, frame)), FrameDecoder::kError);
  }
  {  // RaftMessage without its entries vector.
    flatbuffers::FlatBufferBuilder b;
    fbs::RaftMessageBuilder mb(b);
    mb.add_type(fbs::MessageType_Heartbeat);
    mb.add_term(3);
    auto msg = FinishUnchecked(mb);
    auto frame = fbs::CreateFrame(b, kPeerFrameVersion, fbs::Payload_RaftMessage, msg.Union());
    EXPECT_EQ(Refusal(Finished(b, frame)), FrameDecoder::kError);
  }
  {  // An entry without data.
    flatbuffers::FlatBufferBuilder b;
    fbs::LogEntryBuilder eb(b);
    eb.add_term(1);
    eb.add_index(1);
    std::vector<flatbuffers::Offset<fbs::LogEntry>> entries = {FinishUnchecked(eb)};
    auto vec = b.CreateVector(entries);
    auto msg = fbs::CreateRaftMessage(b, fbs::MessageType_Append, 1, 2, 3, 0, 0, vec);
    auto frame = fbs::CreateFrame(b, kPeerFrameVersion, fbs::Payload_RaftMessage, msg.Union());
    EXPECT_EQ(Refusal(Finished(b, frame)), FrameDecoder::kError);
  }
  {  // SnapshotChunk without data, SnapshotAck without error text.
    flatbuffers::FlatBufferBuilder b;
    fbs::SnapshotChunkBuilder cb(b);
    cb.add_offset(7);
    auto chunk = FinishUnchecked(cb);
    auto frame = fbs::CreateFrame(b, kPeerFrameVersion, fbs::Payload_SnapshotChunk, chunk.Union());
    EXPECT_EQ(Refusal(Finished(b, frame)), FrameDecoder::kError);
    flatbuffers::FlatBufferBuilder b2;
    fbs::SnapshotAckBuilder ab(b2);
    ab.add_ok(true);
    auto ack = FinishUnchecked(ab);
    auto frame2 = fbs::CreateFrame(b2, kPeerFrameVersion, fbs::Payload_SnapshotAck, ack.Union());
    EXPECT_EQ(Refusal(Finished(b2, frame2)), FrameDecoder::kError);
  }
}

// A RaftMessage frame with the given message type and one entry of the given type.
std::string MessageFrame(uint8_t type, uint8_t entry_type) {
  flatbuffers::FlatBufferBuilder b;
  std::vector<flatbuffers::Offset<fbs::LogEntry>> entries = {
      fbs::CreateLogEntry(b, 1, 1, static_cast<fbs::EntryType>(entry_type), Bytes(b, "data"))};
  auto vec = b.CreateVector(entries);
  auto msg = fbs::CreateRaftMessage(b, static_cast<fbs::MessageType>(type), 1, 2, 3, 0, 0, vec);
  auto frame = fbs::CreateFrame(b, kPeerFrameVersion, fbs::Payload_RaftMessage, msg.Union());
  return Finished(b, frame);
}

TEST(PeerDecoder, RefusesMessageAndEntryTypesOutOfRange) {
  FrameDecoder::Result last;
  FrameDecoder ok;
  ASSERT_EQ(DecodeAll(&ok, MessageFrame(kMaxPeerMessageType, kMaxPeerEntryType), &last).size(), 1u);
  std::string error;
  EXPECT_EQ(Refusal(MessageFrame(kMaxPeerMessageType + 1, 0), &error), FrameDecoder::kError);
  EXPECT_EQ(error, "unknown raft message type 10");
  EXPECT_EQ(Refusal(MessageFrame(255, 0)), FrameDecoder::kError);
  EXPECT_EQ(Refusal(MessageFrame(0, kMaxPeerEntryType + 1), &error), FrameDecoder::kError);
  EXPECT_EQ(error, "unknown entry type 2");
  EXPECT_EQ(Refusal(MessageFrame(0, 255)), FrameDecoder::kError);
}

TEST(PeerDecoder, RefusesMoreEntriesThanItsLimit) {
  PeerRaftMessage m;
  m.type = 4;
  for (uint64_t i = 1; i <= 5; i++) m.entries.push_back({1, i, 0, "e"});
  const std::string five = EncodeFrame(m);
  m.entries.pop_back();
  const std::string four = EncodeFrame(m);
  FrameDecoder::Result last;
  FrameDecoder d4(kDefaultMaxPeerFrameBytes, 4);
  EXPECT_EQ(DecodeAll(&d4, four, &last).size(), 1u);
  EXPECT_EQ(last, FrameDecoder::kNeedMore);
  FrameDecoder d5(kDefaultMaxPeerFrameBytes, 4);
  EXPECT_TRUE(DecodeAll(&d5, five, &last).empty());
  EXPECT_EQ(last, FrameDecoder::kError);
}

TEST(PeerDecoder, RefusesEntriesThatShareTheirData) {
  // 200 entries pointing at one 4 KiB byte string: a ~5 KiB frame that would decode to
  // 800 KiB. Honest writers store each entry's data once.
  flatbuffers::FlatBufferBuilder b;
  auto shared =
      fbs::CreateLogEntry(b, 1, 1, fbs::EntryType_Normal, Bytes(b, std::string(4096, 'x')));
  std::vector<flatbuffers::Offset<fbs::LogEntry>> entries(200, shared);
  auto vec = b.CreateVector(entries);
  auto msg = fbs::CreateRaftMessage(b, fbs::MessageType_Append, 1, 2, 3, 0, 0, vec);
  auto frame = fbs::CreateFrame(b, kPeerFrameVersion, fbs::Payload_RaftMessage, msg.Union());
  std::string error;
  EXPECT_EQ(Refusal(Finished(b, frame), &error), FrameDecoder::kError);
  EXPECT_EQ(error, "entry data exceeds the frame size");
}

// Mutations of valid streams must be refused or decode to frames that are themselves valid
// (they re-encode to the same value), and never read out of bounds: the sanitizer build runs
// this. Deterministic: one seed, and only the generator's raw output is used.
TEST(PeerFuzz, MutatedFramesNeverCrash) {
  std::mt19937_64 rng(20240611);
  auto below = [&rng](size_t n) { return static_cast<size_t>(rng() % n); };
  const std::vector<PeerFrame> samples = Samples();
  std::vector<std::string> wires;
  for (const PeerFrame& f : samples) wires.push_back(EncodeFrame(f));

  int refused = 0;
  int frames = 0;
  const int kRounds = 20000;
  for (int round = 0; round < kRounds; round++) {
    std::string wire = wires[below(wires.size())];
    if (below(4) == 0) wire += wires[below(wires.size())];
    switch (below(6)) {
      case 0:
      case 1: {  // flip a few bytes, anywhere
        const size_t flips = 1 + below(4);
        for (size_t i = 0; i < flips; i++) {
          wire[below(wire.size())] ^= static_cast<char>(1 + below(255));
        }
        break;
      }
      case 2:  // truncate
        wire.resize(below(wire.size()));
        break;
      case 3: {  // edit the length prefix by a little
        const uint32_t length = (uint32_t{static_cast<unsigned char>(wire[0])} << 24) |
                                (uint32_t{static_cast<unsigned char>(wire[1])} << 16) |
                                (uint32_t{static_cast<unsigned char>(wire[2])} << 8) |
                                uint32_t{static_cast<unsigned char>(wire[3])};
        const uint32_t edited = length + static_cast<uint32_t>(below(33)) - 16;
        wire.replace(0, 4, BigEndian32(edited));
        break;
      }
      case 4:  // any length at all
        wire.replace(0, 4, BigEndian32(static_cast<uint32_t>(rng())));
        break;
      case 5: {  // overwrite a 4-byte word of the body (offsets, sizes, vtable entries)
        const size_t at = kPeerFrameHeaderBytes + below(wire.size() - kPeerFrameHeaderBytes);
        const uint32_t v = static_cast<uint32_t>(rng());
        for (size_t i = 0; i < 4 && at + i < wire.size(); i++) {
          wire[at + i] = static_cast<char>(v >> (8 * i));
        }
        break;
      }
    }

    FrameDecoder d(below(2) == 0 ? kDefaultMaxPeerFrameBytes : 4096);
    size_t fed = 0;
    PeerFrame f;
    FrameDecoder::Result r = FrameDecoder::kNeedMore;
    while (fed < wire.size() && r != FrameDecoder::kError) {
      const size_t n = std::min(wire.size() - fed, 1 + below(64));
      d.Feed(wire.data() + fed, n);
      fed += n;
      while ((r = d.Next(&f)) == FrameDecoder::kFrame) {
        frames++;
        ASSERT_EQ(RoundTrip(f), f) << "round " << round;
      }
    }
    if (r == FrameDecoder::kError) {
      refused++;
      ASSERT_FALSE(d.error().empty());
    }
  }
  std::printf("peer fuzz: %d mutated streams, %d refused, %d frames decoded\n", kRounds, refused,
              frames);
  EXPECT_GT(refused, kRounds / 4);
  EXPECT_GT(frames, 0);
}

}  // namespace
}  // namespace protocol
