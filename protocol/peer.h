// Frames on the peer port: plain structs for what travels between raftkv-server processes
// (the handshake, Raft messages, snapshot chunks), an encoder, and an incremental, bounded
// decoder. No sockets and no cryptography here: the transport (server/) moves the bytes,
// computes and checks MACs, and copies raft::Message to and from PeerRaftMessage.
//
// Wire format. A connection carries a sequence of frames, each
//
//   +--------------------------+--------------------------------------------+
//   | length: 4 bytes, big-    | body: `length` bytes, a FlatBuffer whose   |
//   | endian, of the body only | root is fb::Frame (peer.fbs), identifier   |
//   |                          | "RKVP" at body bytes 4..7                  |
//   +--------------------------+--------------------------------------------+
//
// Frame = {version: ushort (1), payload: union of Hello | HelloProof | RaftMessage |
// SnapshotChunk | SnapshotAck | ForwardRequest | ForwardReply}. The prefix is ours, not
// FlatBuffers' own size prefix (which is little-endian), so the body is verified as a plain buffer.
//
// A reader (FrameDecoder) refuses, and the connection must then be closed:
//  - a length below kMinPeerFrameBytes or above its cap, as soon as the 4 length bytes are
//    in and before any of the body is buffered;
//  - a body that fails flatbuffers::Verifier (bounded depth and table count), lacks the
//    identifier or a required field, or carries another version, no payload or an unknown
//    payload type;
//  - a RaftMessage with a type outside raft::MessageType (0..9) or more entries than its
//    limit, an entry type outside raft::EntryType (0..1), or entry data adding up to more
//    than the body (a crafted buffer can point many entries at one byte string).
// Everything else (ids, terms, indices, MACs, nonce lengths, chunk offsets) is meaning, and
// the transport checks it.
//
// Handshake, on each new connection, each side sends: Hello, then (after reading the other
// side's Hello) HelloProof. Nothing else is sent or accepted before both proofs check out.
//
// Thread-safety: EncodeFrame is a pure function. A FrameDecoder is not thread-safe: one per
// connection, used from one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace protocol {

// Frame encoding version written in every frame (fb::Frame.version).
inline constexpr uint16_t kPeerFrameVersion = 1;
// Peer protocol version a Hello announces; nodes of other versions are not connected to.
// 2: log entries may be batches of commands (protocol::kBatchVersion), which a node of
// version 1 could not apply.
inline constexpr uint16_t kPeerProtocolVersion = 2;

// Bytes of the length prefix.
inline constexpr size_t kPeerFrameHeaderBytes = 4;
// No FlatBuffer is shorter (FLATBUFFERS_MIN_BUFFER_SIZE); shorter lengths are refused at once.
inline constexpr size_t kMinPeerFrameBytes = 12;
// Default cap on a frame body.
inline constexpr size_t kDefaultMaxPeerFrameBytes = 64 << 20;
// Largest cap a decoder accepts (FlatBuffers buffers stay below 2 GiB).
inline constexpr size_t kMaxPeerFrameBytesLimit = 1 << 30;
// Default cap on the entries of one RaftMessage. raft::Config::max_msg_bytes (1 MiB) and
// raft::EntryPayloadBytes (at least 24 per entry) keep real messages far below it.
inline constexpr size_t kDefaultMaxPeerEntries = 1 << 16;

// Largest values of PeerRaftMessage::type and PeerEntry::type, as in raft/types.h
// (raft::MessageType::kTimeoutNow, raft::EntryType::kNoop). protocol/ cannot include raft/:
// the code that copies between the two static_asserts that they agree.
inline constexpr uint8_t kMaxPeerMessageType = 9;
inline constexpr uint8_t kMaxPeerEntryType = 1;

// raft::Entry on the wire.
struct PeerEntry {
  uint64_t term = 0;
  uint64_t index = 0;
  uint8_t type = 0;  // raft::EntryType
  std::string data;

  bool operator==(const PeerEntry&) const = default;
};

// raft::Message on the wire, field for field (raft/types.h says which fields each type uses).
struct PeerRaftMessage {
  uint8_t type = 0;  // raft::MessageType
  uint64_t from = 0;
  uint64_t to = 0;
  uint64_t term = 0;
  uint64_t log_term = 0;
  uint64_t index = 0;
  std::vector<PeerEntry> entries;
  uint64_t commit = 0;
  bool reject = false;
  uint64_t reject_hint = 0;
  uint64_t context = 0;
  uint64_t snapshot_index = 0;  // raft::Message::snapshot.index
  uint64_t snapshot_term = 0;   // raft::Message::snapshot.term

  bool operator==(const PeerRaftMessage&) const = default;
};

// First frame each way. The transport refuses a cluster_id other than its own, a node_id that
// is not the configured peer (or is 0), a version it does not speak, and an empty or short
// nonce.
struct Hello {
  uint16_t version = kPeerProtocolVersion;
  std::string cluster_id;
  uint64_t node_id = 0;
  std::string nonce;  // fresh random bytes

  bool operator==(const Hello&) const = default;
};

// Second frame each way: a MAC keyed by cluster-secret over both nonces (computed and checked
// by the transport).
struct HelloProof {
  std::string mac;

  bool operator==(const HelloProof&) const = default;
};

// A piece of the snapshot (snapshot_index, snapshot_term), sent by leader `from` in `term`;
// `data` holds the stream's bytes at [offset, offset + data.size()); `last` ends the stream.
struct SnapshotChunk {
  uint64_t from = 0;
  uint64_t to = 0;
  uint64_t term = 0;
  uint64_t snapshot_index = 0;
  uint64_t snapshot_term = 0;
  uint64_t offset = 0;
  std::string data;
  bool last = false;

  bool operator==(const SnapshotChunk&) const = default;
};

// The follower's answer to chunks of snapshot (snapshot_index, snapshot_term): every byte
// before offset_received is written. ok == false abandons the stream, with `error` saying why.
struct SnapshotAck {
  uint64_t from = 0;
  uint64_t to = 0;
  uint64_t snapshot_index = 0;
  uint64_t snapshot_term = 0;
  uint64_t offset_received = 0;
  bool ok = true;
  std::string error;

  bool operator==(const SnapshotAck&) const = default;
};

// A client request relayed by follower `from` to leader `to` (follower-mode forward):
// `commands` holds RESP arrays, one command or the queue of a MULTI for EXEC. Writes carry the
// follower's exactly-once session, a sequence number and the number below which the follower
// has every reply (the leader creates the session at its first request); reads, and writes
// that carry a client's own session (RAFT.REQUEST), carry session 0.
struct ForwardRequest {
  uint64_t from = 0;
  uint64_t to = 0;
  uint64_t id = 0;
  uint64_t session = 0;
  uint64_t seq = 0;
  uint64_t acked = 0;
  std::string commands;

  bool operator==(const ForwardRequest&) const = default;
};

// The leader's answer to ForwardRequest `id`: the RESP reply to relay, or not_leader (nothing
// was proposed; the follower may try the leader it knows now).
struct ForwardReply {
  uint64_t from = 0;
  uint64_t to = 0;
  uint64_t id = 0;
  bool not_leader = false;
  std::string reply;

  bool operator==(const ForwardReply&) const = default;
};

// One frame: exactly one message.
using PeerFrame = std::variant<Hello, HelloProof, PeerRaftMessage, SnapshotChunk, SnapshotAck,
                               ForwardRequest, ForwardReply>;

// Returns the wire bytes of `frame`: the length prefix, then the body.
// REQUIRES: a PeerRaftMessage's type <= kMaxPeerMessageType and its entries' types
// <= kMaxPeerEntryType (checked: a violation aborts). The body must fit the receiver's cap
// (kDefaultMaxPeerFrameBytes unless configured otherwise); the caller sizes batches and
// chunks for that.
std::string EncodeFrame(const PeerFrame& frame);

// Splits a byte stream into frames and decodes them, checking everything listed at the top of
// this file. A body is buffered only once its length prefix passed; the decoder holds at most
// the bytes fed and not yet returned, plus an aligned copy of one body while decoding it.
//
//   FrameDecoder decoder;
//   decoder.Feed(buf, n);                    // on every read
//   PeerFrame frame;
//   for (;;) {
//     FrameDecoder::Result r = decoder.Next(&frame);
//     if (r == FrameDecoder::kNeedMore) break;
//     if (r == FrameDecoder::kError) { log(decoder.error()); close(); break; }
//     Handle(frame);
//   }
class FrameDecoder {
 public:
  enum Result {
    kNeedMore,  // no complete frame is buffered yet
    kFrame,     // *out holds the next frame
    kError,     // the stream is malformed; error() says why. Final: close the connection.
  };

  // `max_frame_bytes` caps a frame's body; `max_entries` caps the entries of one RaftMessage
  // (it also bounds the Verifier's table count).
  // REQUIRES: kMinPeerFrameBytes <= max_frame_bytes <= kMaxPeerFrameBytesLimit and
  // max_entries <= kMaxPeerFrameBytesLimit (checked).
  explicit FrameDecoder(size_t max_frame_bytes = kDefaultMaxPeerFrameBytes,
                        size_t max_entries = kDefaultMaxPeerEntries);

  // Appends received bytes. Checks each length prefix as soon as its 4 bytes are in; bytes
  // after a refused prefix, and any bytes fed after an error, are dropped.
  void Feed(const char* data, size_t n);

  // Takes the next frame, in order. kFrame: *out holds it. kNeedMore: no complete frame is
  // buffered (at the end of the stream, buffered_bytes() > 0 means one was cut short).
  // kError: the stream is malformed and every later call returns kError; frames before the
  // malformed one were returned first.
  Result Next(PeerFrame* out);

  // Why the decoder failed; empty unless Next returned kError.
  const std::string& error() const { return error_; }

  // Bytes fed and not yet returned as frames (including a partial length prefix).
  size_t buffered_bytes() const { return (buffer_.size() - pos_) + header_fill_; }

 private:
  // Enters the final error state and releases the buffers.
  void Fail(std::string why);

  size_t max_frame_bytes_;
  size_t max_entries_;

  // Complete prefixes (after their check) and the body bytes after them. Frames are taken
  // from pos_; buffer_ ends in the body of the frame being received, if any.
  std::string buffer_;
  size_t pos_ = 0;
  // Body bytes still to come for the frame at the end of buffer_.
  size_t body_remaining_ = 0;
  // A length prefix being received (not yet in buffer_).
  char header_[kPeerFrameHeaderBytes] = {};
  size_t header_fill_ = 0;
  // Set by Feed on a refused prefix; reported by Next after the frames before it.
  std::string pending_error_;
  // Aligned copy of a body, for the FlatBuffers reader (8-byte scalars).
  std::vector<uint64_t> scratch_;
  bool failed_ = false;
  std::string error_;
};

}  // namespace protocol
