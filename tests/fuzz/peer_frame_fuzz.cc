// Fuzz target for protocol::FrameDecoder, driven the way a peer connection drives it: the
// input is the byte stream a peer sends, fed in pieces and drained with Next() (after each
// piece, or now and then after a few) until kNeedMore or kError.
//
// Each input is read twice: as a whole stream (length prefixes included), and as one frame
// body behind a correct length prefix, so that mutations of a body reach the FlatBuffers
// Verifier and the checks after it without having to keep the prefix right. Each runs with the
// default caps and with tiny ones, fed in one piece, one byte at a time, and in pieces whose
// sizes come from the input's own bytes. Checked, with a hard abort on violation:
//   - buffered_bytes() is exactly what a reference model of the framing says: every byte fed
//     up to the first refused length prefix, less the frames returned; in particular nothing
//     after a prefix above the cap is ever buffered, and after kNeedMore at most one frame in
//     progress is held;
//   - frames come out in stream order; an error is reported only after the frames before it,
//     it is final, and it leaves nothing buffered;
//   - a decoded RaftMessage has at most max_entries entries whose data fits in its body;
//   - every decoded frame, encoded again with EncodeFrame, decodes to the same value;
//   - every way of splitting the stream yields the same frames, the same error and the same
//     buffered_bytes() at the end as feeding it in one piece.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/check.h"
#include "common/coding.h"
#include "protocol/peer.h"

namespace {

using protocol::FrameDecoder;
using protocol::PeerFrame;

struct Caps {
  size_t max_frame_bytes;
  size_t max_entries;
};

// Tiny caps: a short input reaches both.
constexpr Caps kSmallCaps = {256, 2};
constexpr Caps kDefaultCaps = {protocol::kDefaultMaxPeerFrameBytes,
                               protocol::kDefaultMaxPeerEntries};

constexpr size_t kNone = static_cast<size_t>(-1);

std::string BigEndian32(uint32_t v) {
  std::string s;
  common::PutBigEndian32(&s, v);
  return s;
}

// The framing of a stream as peer.h describes it, computed independently of the decoder.
struct FramingModel {
  FramingModel(std::string_view stream, size_t max_frame_bytes) {
    size_t at = 0;
    while (stream.size() - at >= protocol::kPeerFrameHeaderBytes) {
      const size_t length = common::DecodeBigEndian32(stream.data() + at);
      if (length < protocol::kMinPeerFrameBytes || length > max_frame_bytes) {
        refused_at = at;
        return;
      }
      if (stream.size() - at - protocol::kPeerFrameHeaderBytes < length) return;
      at += protocol::kPeerFrameHeaderBytes + length;
      frame_ends.push_back(at);
    }
  }

  // Where the first refused length prefix starts, or kNone.
  size_t refused_at = kNone;
  // Where each whole frame before it ends.
  std::vector<size_t> frame_ends;
};

// What the connection saw: the frames in order, then the error if any.
struct Outcome {
  std::vector<PeerFrame> frames;
  std::string error;
  size_t final_buffered_bytes = 0;

  bool operator==(const Outcome&) const = default;
};

// A decoded frame, encoded again, decodes to the same value.
void CheckRoundTrip(const PeerFrame& frame) {
  const std::string wire = protocol::EncodeFrame(frame);
  FrameDecoder decoder;
  decoder.Feed(wire.data(), wire.size());
  PeerFrame again;
  CHECK(decoder.Next(&again) == FrameDecoder::kFrame);
  CHECK(again == frame);
  CHECK(decoder.Next(&again) == FrameDecoder::kNeedMore);
  CHECK(decoder.buffered_bytes() == 0);
}

// One connection: the decoder, the model of its stream, and what it returned.
class Connection {
 public:
  Connection(const Caps& caps, std::string_view stream)
      : caps_(caps),
        stream_(stream),
        model_(stream, caps.max_frame_bytes),
        decoder_(caps.max_frame_bytes, caps.max_entries) {}

  // Feeds the next n bytes of the stream; then, if `drain`, drains the decoder as the
  // transport does.
  void Read(size_t n, bool drain = true) {
    decoder_.Feed(n == 0 ? nullptr : stream_.data() + fed_, n);
    fed_ += n;
    CheckBuffered();
    if (drain) Drain();
  }

  Outcome Finish() {
    CHECK(fed_ == stream_.size());
    Drain();
    outcome_.final_buffered_bytes = decoder_.buffered_bytes();
    return outcome_;
  }

 private:
  // The bytes fed that the decoder must still hold.
  size_t ExpectedBuffered() const {
    if (failed_) return 0;
    size_t accepted = fed_;
    if (model_.refused_at != kNone && fed_ >= model_.refused_at + protocol::kPeerFrameHeaderBytes) {
      accepted = model_.refused_at;
    }
    const size_t consumed = returned_ == 0 ? 0 : model_.frame_ends[returned_ - 1];
    return accepted - consumed;
  }

  void CheckBuffered() const { CHECK(decoder_.buffered_bytes() == ExpectedBuffered()); }

  // Whole frames fed and not yet returned.
  size_t WholeFramesFed() const {
    size_t n = 0;
    while (n < model_.frame_ends.size() && model_.frame_ends[n] <= fed_) ++n;
    return n;
  }

  void Drain() {
    PeerFrame frame;
    while (true) {
      const FrameDecoder::Result result = decoder_.Next(&frame);
      if (result == FrameDecoder::kNeedMore) {
        CHECK(!failed_);
        CHECK(decoder_.error().empty());
        CHECK(returned_ == WholeFramesFed());
        CHECK(model_.refused_at == kNone ||
              fed_ < model_.refused_at + protocol::kPeerFrameHeaderBytes);
        CheckBuffered();
        // At most one frame in progress.
        CHECK(decoder_.buffered_bytes() < protocol::kPeerFrameHeaderBytes + caps_.max_frame_bytes);
        return;
      }
      if (result == FrameDecoder::kError) {
        CHECK(!decoder_.error().empty());
        if (failed_) {
          CHECK(decoder_.error() == outcome_.error);
        } else {
          failed_ = true;
          outcome_.error = decoder_.error();
          if (returned_ < WholeFramesFed()) {
            // The body of the next whole frame was refused.
          } else {
            // Every whole frame came out first: the next length prefix was refused.
            CHECK(returned_ == model_.frame_ends.size());
            CHECK(model_.refused_at != kNone &&
                  fed_ >= model_.refused_at + protocol::kPeerFrameHeaderBytes);
          }
        }
        CheckBuffered();
        // Final: asking again, or feeding more, changes nothing.
        CHECK(decoder_.Next(&frame) == FrameDecoder::kError);
        decoder_.Feed("\0\0\0\x10", 4);
        CheckBuffered();
        CHECK(decoder_.Next(&frame) == FrameDecoder::kError);
        CHECK(decoder_.error() == outcome_.error);
        return;
      }
      CHECK(result == FrameDecoder::kFrame);
      CHECK(!failed_);
      CHECK(returned_ < WholeFramesFed());
      const size_t start = returned_ == 0 ? 0 : model_.frame_ends[returned_ - 1];
      const size_t body_bytes =
          model_.frame_ends[returned_] - start - protocol::kPeerFrameHeaderBytes;
      ++returned_;
      CheckBuffered();
      if (const auto* m = std::get_if<protocol::PeerRaftMessage>(&frame)) {
        CHECK(m->type <= protocol::kMaxPeerMessageType);
        CHECK(m->entries.size() <= caps_.max_entries);
        size_t data_bytes = 0;
        for (const protocol::PeerEntry& e : m->entries) {
          CHECK(e.type <= protocol::kMaxPeerEntryType);
          data_bytes += e.data.size();
        }
        CHECK(data_bytes <= body_bytes);
      }
      CheckRoundTrip(frame);
      outcome_.frames.push_back(frame);
    }
  }

  const Caps caps_;
  const std::string_view stream_;
  const FramingModel model_;
  FrameDecoder decoder_;
  size_t fed_ = 0;
  size_t returned_ = 0;
  bool failed_ = false;
  Outcome outcome_;
};

Outcome FeedWhole(const Caps& caps, std::string_view stream) {
  Connection connection(caps, stream);
  connection.Read(stream.size());
  return connection.Finish();
}

Outcome FeedBytewise(const Caps& caps, std::string_view stream) {
  Connection connection(caps, stream);
  for (size_t i = 0; i < stream.size(); ++i) connection.Read(1);
  return connection.Finish();
}

// Piece sizes come from the input's bytes, read from the end backwards: mostly short pieces,
// sometimes long ones, now and then an empty read, and a quarter of the time more bytes are
// fed before the next drain.
Outcome FeedInPieces(const Caps& caps, std::string_view stream) {
  Connection connection(caps, stream);
  size_t at = 0;
  for (size_t j = 0; at < stream.size(); ++j) {
    const uint8_t b = static_cast<uint8_t>(stream[stream.size() - 1 - j % stream.size()]);
    size_t size = b < 0xc0 ? 1 + (b & 0x0f) : 1 + (b & 0x3f) * 16;
    if (b == 0xff) connection.Read(0);
    size = std::min(size, stream.size() - at);
    connection.Read(size, /*drain=*/(b & 0x30) != 0x30);
    at += size;
  }
  return connection.Finish();
}

void CheckStream(std::string_view stream) {
  for (const Caps& caps : {kSmallCaps, kDefaultCaps}) {
    const Outcome whole = FeedWhole(caps, stream);
    CHECK(FeedBytewise(caps, stream) == whole);
    CHECK(FeedInPieces(caps, stream) == whole);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  CheckStream(input);
  // The input as one frame body.
  if (size <= protocol::kMaxPeerFrameBytesLimit) {
    CheckStream(BigEndian32(static_cast<uint32_t>(size)) + std::string(input));
  }
  return 0;
}
