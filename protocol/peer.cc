#include "protocol/peer.h"

#include <flatbuffers/flatbuffers.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>

#include "common/check.h"
#include "common/coding.h"
#include "protocol/peer_generated.h"

namespace protocol {

namespace fbs = raftkv::protocol::fb;

// FLATBUFFERS_MIN_BUFFER_SIZE: root offset, vtable offset, vtable size and table size.
static_assert(kMinPeerFrameBytes == sizeof(flatbuffers::uoffset_t) +
                                        sizeof(flatbuffers::soffset_t) +
                                        2 * sizeof(flatbuffers::voffset_t));
static_assert(kMaxPeerFrameBytesLimit < (FLATBUFFERS_MAX_BUFFER_SIZE));
static_assert(kMaxPeerFrameBytesLimit <= std::numeric_limits<uint32_t>::max());
static_assert(kMaxPeerMessageType == fbs::MessageType_MAX);
static_assert(kMaxPeerEntryType == fbs::EntryType_MAX);

namespace {

// Nesting of a valid frame: Frame > RaftMessage > LogEntry. Anything deeper is refused.
constexpr flatbuffers::uoffset_t kMaxDepth = 8;
// Tables of a valid frame besides its entries (Frame and the payload), with room to spare.
constexpr size_t kTablesBesideEntries = 16;
// Buffers larger than this are released once they are empty, so that one large frame does
// not pin its memory for the life of the connection.
constexpr size_t kRetainBytes = 1 << 20;

flatbuffers::Offset<flatbuffers::Vector<uint8_t>> Bytes(flatbuffers::FlatBufferBuilder& b,
                                                        const std::string& s) {
  return b.CreateVector(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

// REQUIRES: v != nullptr (required fields are checked by the Verifier).
std::string ToString(const flatbuffers::Vector<uint8_t>* v) {
  return std::string(reinterpret_cast<const char*>(v->data()), v->size());
}

// Builds the payload table of `frame`; returns its union type and offset.
std::pair<fbs::Payload, flatbuffers::Offset<void>> BuildPayload(flatbuffers::FlatBufferBuilder& b,
                                                                const PeerFrame& frame) {
  if (const auto* h = std::get_if<Hello>(&frame)) {
    auto cluster_id = b.CreateString(h->cluster_id);
    auto nonce = Bytes(b, h->nonce);
    return {fbs::Payload_Hello,
            fbs::CreateHello(b, h->version, cluster_id, h->node_id, nonce).Union()};
  }
  if (const auto* p = std::get_if<HelloProof>(&frame)) {
    auto mac = Bytes(b, p->mac);
    return {fbs::Payload_HelloProof, fbs::CreateHelloProof(b, mac).Union()};
  }
  if (const auto* m = std::get_if<PeerRaftMessage>(&frame)) {
    CHECK(m->type <= kMaxPeerMessageType) << "message type " << int{m->type};
    std::vector<flatbuffers::Offset<fbs::LogEntry>> entries;
    entries.reserve(m->entries.size());
    for (const PeerEntry& e : m->entries) {
      CHECK(e.type <= kMaxPeerEntryType) << "entry type " << int{e.type};
      auto data = Bytes(b, e.data);
      entries.push_back(
          fbs::CreateLogEntry(b, e.term, e.index, static_cast<fbs::EntryType>(e.type), data));
    }
    auto vec = b.CreateVector(entries);
    return {fbs::Payload_RaftMessage,
            fbs::CreateRaftMessage(b, static_cast<fbs::MessageType>(m->type), m->from, m->to,
                                   m->term, m->log_term, m->index, vec, m->commit, m->reject,
                                   m->reject_hint, m->context, m->snapshot_index, m->snapshot_term)
                .Union()};
  }
  if (const auto* c = std::get_if<SnapshotChunk>(&frame)) {
    auto data = Bytes(b, c->data);
    return {fbs::Payload_SnapshotChunk,
            fbs::CreateSnapshotChunk(b, c->from, c->to, c->term, c->snapshot_index,
                                     c->snapshot_term, c->offset, data, c->last)
                .Union()};
  }
  if (const auto* a = std::get_if<SnapshotAck>(&frame)) {
    auto error = b.CreateString(a->error);
    return {fbs::Payload_SnapshotAck,
            fbs::CreateSnapshotAck(b, a->from, a->to, a->snapshot_index, a->snapshot_term,
                                   a->offset_received, a->ok, error)
                .Union()};
  }
  if (const auto* q = std::get_if<ForwardRequest>(&frame)) {
    auto commands = Bytes(b, q->commands);
    return {
        fbs::Payload_ForwardRequest,
        fbs::CreateForwardRequest(b, q->from, q->to, q->id, q->session, q->seq, commands, q->acked)
            .Union()};
  }
  const auto& r = std::get<ForwardReply>(frame);
  auto reply = Bytes(b, r.reply);
  return {fbs::Payload_ForwardReply,
          fbs::CreateForwardReply(
              b, r.from, r.to, r.id,
              r.not_leader ? fbs::ForwardStatus_NotLeader : fbs::ForwardStatus_Done, reply)
              .Union()};
}

// A guess at the body size, so that the builder rarely grows.
size_t SizeHint(const PeerFrame& frame) {
  size_t n = 128;
  if (const auto* m = std::get_if<PeerRaftMessage>(&frame)) {
    for (const PeerEntry& e : m->entries) n += e.data.size() + 48;
  } else if (const auto* c = std::get_if<SnapshotChunk>(&frame)) {
    n += c->data.size();
  } else if (const auto* q = std::get_if<ForwardRequest>(&frame)) {
    n += q->commands.size();
  } else if (const auto* r = std::get_if<ForwardReply>(&frame)) {
    n += r->reply.size();
  }
  return n;
}

// Reads a RaftMessage whose buffer passed verification. `body_size` bounds the entry data it
// may produce: an honest writer stores each entry's data once, so more than that means
// entries share bytes, and decoding them would multiply memory.
bool ReadRaftMessage(const fbs::RaftMessage& r, size_t body_size, size_t max_entries,
                     PeerRaftMessage* m, std::string* why) {
  const uint8_t type = static_cast<uint8_t>(r.type());
  if (type > kMaxPeerMessageType) {
    *why = "unknown raft message type " + std::to_string(type);
    return false;
  }
  if (r.entries()->size() > max_entries) {
    *why = "raft message has " + std::to_string(r.entries()->size()) + " entries, above " +
           std::to_string(max_entries);
    return false;
  }
  m->type = type;
  m->from = r.from();
  m->to = r.to();
  m->term = r.term();
  m->log_term = r.log_term();
  m->index = r.index();
  m->commit = r.commit();
  m->reject = r.reject();
  m->reject_hint = r.reject_hint();
  m->context = r.context();
  m->snapshot_index = r.snapshot_index();
  m->snapshot_term = r.snapshot_term();
  m->entries.clear();
  m->entries.reserve(r.entries()->size());
  size_t data_bytes = 0;
  for (const fbs::LogEntry* e : *r.entries()) {
    const uint8_t entry_type = static_cast<uint8_t>(e->type());
    if (entry_type > kMaxPeerEntryType) {
      *why = "unknown entry type " + std::to_string(entry_type);
      return false;
    }
    data_bytes += e->data()->size();
    if (data_bytes > body_size) {
      *why = "entry data exceeds the frame size";
      return false;
    }
    PeerEntry& out = m->entries.emplace_back();
    out.term = e->term();
    out.index = e->index();
    out.type = entry_type;
    out.data = ToString(e->data());
  }
  return true;
}

// Verifies and decodes one frame body. REQUIRES: `buf` is 8-byte aligned and
// kMinPeerFrameBytes <= size <= kMaxPeerFrameBytesLimit.
bool DecodeBody(const uint8_t* buf, size_t size, size_t max_entries, PeerFrame* out,
                std::string* why) {
  flatbuffers::Verifier::Options options;
  options.max_depth = kMaxDepth;
  options.max_tables = static_cast<flatbuffers::uoffset_t>(max_entries + kTablesBesideEntries);
  flatbuffers::Verifier verifier(buf, size, options);
  if (!fbs::VerifyFrameBuffer(verifier)) {
    *why = "frame fails verification";
    return false;
  }
  const fbs::Frame* f = fbs::GetFrame(buf);
  if (f->version() != kPeerFrameVersion) {
    *why = "unknown frame version " + std::to_string(f->version());
    return false;
  }
  // The Verifier accepts union types it does not know (forward compatibility); we do not.
  switch (f->payload_type()) {
    case fbs::Payload_Hello: {
      const fbs::Hello* h = f->payload_as_Hello();
      Hello hello;
      hello.version = h->version();
      hello.cluster_id = h->cluster_id()->str();
      hello.node_id = h->node_id();
      hello.nonce = ToString(h->nonce());
      *out = std::move(hello);
      return true;
    }
    case fbs::Payload_HelloProof: {
      HelloProof proof;
      proof.mac = ToString(f->payload_as_HelloProof()->mac());
      *out = std::move(proof);
      return true;
    }
    case fbs::Payload_RaftMessage: {
      PeerRaftMessage m;
      if (!ReadRaftMessage(*f->payload_as_RaftMessage(), size, max_entries, &m, why)) {
        return false;
      }
      *out = std::move(m);
      return true;
    }
    case fbs::Payload_SnapshotChunk: {
      const fbs::SnapshotChunk* c = f->payload_as_SnapshotChunk();
      SnapshotChunk chunk;
      chunk.from = c->from();
      chunk.to = c->to();
      chunk.term = c->term();
      chunk.snapshot_index = c->snapshot_index();
      chunk.snapshot_term = c->snapshot_term();
      chunk.offset = c->offset();
      chunk.data = ToString(c->data());
      chunk.last = c->last();
      *out = std::move(chunk);
      return true;
    }
    case fbs::Payload_SnapshotAck: {
      const fbs::SnapshotAck* a = f->payload_as_SnapshotAck();
      SnapshotAck ack;
      ack.from = a->from();
      ack.to = a->to();
      ack.snapshot_index = a->snapshot_index();
      ack.snapshot_term = a->snapshot_term();
      ack.offset_received = a->offset_received();
      ack.ok = a->ok();
      ack.error = a->error()->str();
      *out = std::move(ack);
      return true;
    }
    case fbs::Payload_ForwardRequest: {
      const fbs::ForwardRequest* q = f->payload_as_ForwardRequest();
      ForwardRequest request;
      request.from = q->from();
      request.to = q->to();
      request.id = q->id();
      request.session = q->session();
      request.seq = q->seq();
      request.acked = q->acked();
      request.commands = ToString(q->commands());
      *out = std::move(request);
      return true;
    }
    case fbs::Payload_ForwardReply: {
      const fbs::ForwardReply* r = f->payload_as_ForwardReply();
      if (r->status() != fbs::ForwardStatus_Done && r->status() != fbs::ForwardStatus_NotLeader) {
        *why = "unknown forward status " + std::to_string(static_cast<unsigned>(r->status()));
        return false;
      }
      ForwardReply reply;
      reply.from = r->from();
      reply.to = r->to();
      reply.id = r->id();
      reply.not_leader = r->status() == fbs::ForwardStatus_NotLeader;
      reply.reply = ToString(r->reply());
      *out = std::move(reply);
      return true;
    }
    case fbs::Payload_NONE:
      *why = "frame has no payload";
      return false;
  }
  *why = "unknown payload type " + std::to_string(static_cast<unsigned>(f->payload_type()));
  return false;
}

}  // namespace

std::string EncodeFrame(const PeerFrame& frame) {
  flatbuffers::FlatBufferBuilder b(SizeHint(frame));
  auto [type, payload] = BuildPayload(b, frame);
  fbs::FinishFrameBuffer(b, fbs::CreateFrame(b, kPeerFrameVersion, type, payload));
  const size_t size = b.GetSize();
  CHECK(size <= kMaxPeerFrameBytesLimit) << "peer frame of " << size << " bytes";
  std::string out(kPeerFrameHeaderBytes + size, '\0');
  common::EncodeBigEndian32(out.data(), static_cast<uint32_t>(size));
  std::memcpy(out.data() + kPeerFrameHeaderBytes, b.GetBufferPointer(), size);
  return out;
}

FrameDecoder::FrameDecoder(size_t max_frame_bytes, size_t max_entries)
    : max_frame_bytes_(max_frame_bytes), max_entries_(max_entries) {
  CHECK(max_frame_bytes >= kMinPeerFrameBytes && max_frame_bytes <= kMaxPeerFrameBytesLimit)
      << "max_frame_bytes " << max_frame_bytes;
  CHECK(max_entries <= kMaxPeerFrameBytesLimit) << "max_entries " << max_entries;
}

void FrameDecoder::Feed(const char* data, size_t n) {
  if (failed_ || !pending_error_.empty()) return;
  while (n > 0) {
    if (body_remaining_ > 0) {
      const size_t take = std::min(n, body_remaining_);
      buffer_.append(data, take);
      data += take;
      n -= take;
      body_remaining_ -= take;
      continue;
    }
    const size_t take = std::min(n, kPeerFrameHeaderBytes - header_fill_);
    std::memcpy(header_ + header_fill_, data, take);
    header_fill_ += take;
    data += take;
    n -= take;
    if (header_fill_ < kPeerFrameHeaderBytes) return;
    header_fill_ = 0;
    const uint32_t length = common::DecodeBigEndian32(header_);
    if (length < kMinPeerFrameBytes || length > max_frame_bytes_) {
      pending_error_ = "frame length " + std::to_string(length) + " outside [" +
                       std::to_string(kMinPeerFrameBytes) + ", " +
                       std::to_string(max_frame_bytes_) + "]";
      return;
    }
    buffer_.append(header_, kPeerFrameHeaderBytes);
    body_remaining_ = length;
  }
}

FrameDecoder::Result FrameDecoder::Next(PeerFrame* out) {
  if (failed_) return kError;
  const size_t available = buffer_.size() - pos_;
  if (available >= kPeerFrameHeaderBytes) {
    const size_t length = common::DecodeBigEndian32(buffer_.data() + pos_);  // checked by Feed
    if (available - kPeerFrameHeaderBytes >= length) {
      const char* body = buffer_.data() + pos_ + kPeerFrameHeaderBytes;
      pos_ += kPeerFrameHeaderBytes + length;
      // FlatBuffers reads 8-byte scalars in place, and the body sits 4 bytes into its record:
      // decode from an 8-byte-aligned copy unless it happens to be aligned.
      const uint8_t* aligned = reinterpret_cast<const uint8_t*>(body);
      if (reinterpret_cast<uintptr_t>(body) % alignof(uint64_t) != 0) {
        scratch_.resize((length + sizeof(uint64_t) - 1) / sizeof(uint64_t));
        std::memcpy(scratch_.data(), body, length);
        aligned = reinterpret_cast<const uint8_t*>(scratch_.data());
      }
      std::string why;
      const bool ok = DecodeBody(aligned, length, max_entries_, out, &why);
      if (scratch_.capacity() * sizeof(uint64_t) > kRetainBytes) {
        std::vector<uint64_t>().swap(scratch_);
      }
      if (!ok) {
        Fail(std::move(why));
        return kError;
      }
      if (pos_ == buffer_.size()) {
        pos_ = 0;
        buffer_.clear();
        if (buffer_.capacity() > kRetainBytes) std::string().swap(buffer_);
      }
      return kFrame;
    }
  }
  if (!pending_error_.empty()) {
    Fail(std::move(pending_error_));
    return kError;
  }
  // Keep only the frame being received, so that the buffer does not grow with the stream.
  if (pos_ > 0) {
    buffer_.erase(0, pos_);
    pos_ = 0;
  }
  return kNeedMore;
}

void FrameDecoder::Fail(std::string why) {
  failed_ = true;
  error_ = std::move(why);
  pending_error_.clear();
  std::string().swap(buffer_);
  pos_ = 0;
  body_remaining_ = 0;
  header_fill_ = 0;
  std::vector<uint64_t>().swap(scratch_);
}

}  // namespace protocol
