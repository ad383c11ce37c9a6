// The on-disk layout of a raftkv node, in one place.
//
// A node's data directory holds two LevelDB databases:
//
//   <dir>/raft/   the Raft log database (LogStore):
//     "h"                    hard state: crc32c(fixed32) | term(fixed64) | vote(fixed64) |
//                            commit(fixed64). Written only with the hard state; compaction
//                            and snapshots never rewrite it (NodeStorage moves the term
//                            forward at open after a crash mid-install, kv/node_storage.h).
//     "s"                    log snapshot metadata: crc32c | index(fixed64) | term(fixed64).
//                            Every entry up to `index` is covered by the state machine.
//     "f"                    format: crc32c | version(fixed32), what this directory's entries
//                            may hold (kFormatVersion). Absent: written before it was kept,
//                            version 1. A version above kFormatVersion is refused at open.
//     "e" <index:BE64>       a log entry: crc32c | term(fixed64) | type(1 byte) | data.
//                            Big-endian indexes sort numerically. The checksum covers the
//                            key's index too, so an entry moved to another key is caught.
//
//   <dir>/STATE   the generation number of the live state database, written to a temporary
//                 file and renamed over, so that switching to an installed snapshot is atomic.
//
//   <dir>/state-<generation>/   the state machine's database (StateMachine):
//     "a"                    applied: crc32c | index(fixed64) | term(fixed64). Changes in the
//                            same batch as the data it covers.
//     "k"                    key count: crc32c | the number of "u" keys (fixed64), written in
//                            the batch of every entry that changes it, so that a restart
//                            need not count millions of keys. Absent (an empty state, or
//                            one written before it was kept): the keys are counted at open.
//     "t"                    cluster time: crc32c | milliseconds since the epoch (fixed64),
//                            the largest time_ms of the commands applied (kv/sessions.h).
//     "c" <session:BE64>     an exactly-once session: crc32c | timeout ms(fixed64) | last
//                            used, cluster time ms(fixed64) | acked(fixed64).
//     "r" <session:BE64> <seq:BE64>
//                            the results of request `seq` of the session: crc32c |
//                            EncodeResults. Kept from acked to acked + window.
//     "x" <expires:BE64> <session:BE64>
//                            the session's expiry (last used + timeout) in cluster time:
//                            crc32c only. Sorted by time, so expiring walks from the front.
//     "u" <user key>         a user value, as the client wrote it.
//
// A snapshot is the state database read through a LevelDB snapshot, shipped as chunks:
//   crc32c(fixed32) | seq(fixed32) | last(1 byte) | index(fixed64) | term(fixed64) |
//   count(fixed32) | count * (key length(fixed32) | key | value length(fixed32) | value),
//   the checksum covering everything after it; seq counts from 0, index and term name the
//   snapshot, `last` marks the final chunk.
//
// Both databases:
//     "~"                    the batch trailer: a constant value ending in a non-zero byte,
//                            written last in every batch, so that no write-ahead log record
//                            ends in zero bytes (kv/torn_tail.h relies on it to tell a torn
//                            tail from a damaged record).
//
// Every checksum is CRC-32C over the bytes that follow it (for entries: the 8-byte big-endian
// index, then the value's bytes after the checksum), stored little-endian.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "raft/types.h"

namespace leveldb {
class DB;
class Status;
class WriteBatch;
}  // namespace leveldb

namespace kv::keys {

inline constexpr std::string_view kBatchTrailer = "~";
// Appends the trailer to `batch` and writes it (synced if `sync`): every batch raftkv writes
// goes through here, so that none lacks its trailer.
leveldb::Status WriteSealed(leveldb::DB* db, bool sync, leveldb::WriteBatch* batch);

// The data directory's format: 1, entries hold one command each; 2, an entry may also hold a
// batch of them (protocol::EncodeBatch). A binary that reads version N opens any directory of
// version N or below and refuses a newer one, which it could misread.
inline constexpr std::string_view kFormat = "f";
inline constexpr uint32_t kFormatVersion = 2;
std::string EncodeFormat(uint32_t version);
bool DecodeFormat(std::string_view value, uint32_t* version);

inline constexpr std::string_view kHardState = "h";
inline constexpr std::string_view kSnapshotMeta = "s";
inline constexpr char kEntryPrefix = 'e';

// "e" + big-endian index.
std::string EntryKey(raft::Index index);
// Parses an entry key; false if `key` is not one.
bool ParseEntryKey(std::string_view key, raft::Index* index);

std::string EncodeEntry(const raft::Entry& e);
// Decodes the value stored under EntryKey(index); false if the checksum or layout is wrong.
bool DecodeEntry(raft::Index index, std::string_view value, raft::Entry* e);
// DecodeEntry's checks without copying the command: sets *term.
bool CheckEntry(raft::Index index, std::string_view value, raft::Term* term);

std::string EncodeHardState(const raft::HardState& hs);
bool DecodeHardState(std::string_view value, raft::HardState* hs);

std::string EncodeSnapshotMeta(const raft::SnapshotMeta& meta);
bool DecodeSnapshotMeta(std::string_view value, raft::SnapshotMeta* meta);

inline constexpr std::string_view kApplied = "a";
inline constexpr std::string_view kClusterTime = "t";
inline constexpr std::string_view kKeyCount = "k";
inline constexpr char kSessionPrefix = 'c';
inline constexpr char kSessionResultPrefix = 'r';
inline constexpr char kSessionExpiryPrefix = 'x';
inline constexpr char kUserPrefix = 'u';

std::string EncodeApplied(raft::Index index, raft::Term term);
bool DecodeApplied(std::string_view value, raft::Index* index, raft::Term* term);
std::string EncodeKeyCount(uint64_t count);
bool DecodeKeyCount(std::string_view value, uint64_t* count);
std::string SessionKey(uint64_t session);
std::string SessionResultKey(uint64_t session, uint64_t seq);
std::string SessionExpiryKey(uint64_t expires_ms, uint64_t session);
// Parses an expiry key; false if `key` is not one.
bool ParseSessionExpiryKey(std::string_view key, uint64_t* expires_ms, uint64_t* session);
std::string UserKey(std::string_view key);

// Seals a value with a CRC-32C of `key` + the value; Unseal checks and strips it.
std::string Seal(std::string_view key, std::string_view body);
bool Unseal(std::string_view key, std::string_view* value);

}  // namespace kv::keys
