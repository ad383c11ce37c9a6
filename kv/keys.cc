#include "kv/keys.h"

#include <leveldb/db.h>
#include <leveldb/write_batch.h>

#include "common/coding.h"

namespace kv::keys {

leveldb::Status WriteSealed(leveldb::DB* db, bool sync, leveldb::WriteBatch* batch) {
  batch->Put(leveldb::Slice(kBatchTrailer.data(), kBatchTrailer.size()), "\x01");
  leveldb::WriteOptions wo;
  wo.sync = sync;
  return db->Write(wo, batch);
}

std::string Seal(std::string_view key, std::string_view body) {
  std::string out;
  common::PutFixed32(&out, common::Crc32c(body, common::Crc32c(key)));
  out += body;
  return out;
}

bool Unseal(std::string_view key, std::string_view* value) {
  uint32_t crc;
  if (!common::GetFixed32(value, &crc)) return false;
  return crc == common::Crc32c(*value, common::Crc32c(key));
}

std::string EntryKey(raft::Index index) {
  std::string key(1, kEntryPrefix);
  common::PutBigEndian64(&key, index);
  return key;
}

bool ParseEntryKey(std::string_view key, raft::Index* index) {
  if (key.size() != 9 || key[0] != kEntryPrefix) return false;
  key.remove_prefix(1);
  return common::GetBigEndian64(&key, index);
}

std::string EncodeEntry(const raft::Entry& e) {
  std::string index;
  common::PutBigEndian64(&index, e.index);
  std::string body;
  common::PutFixed64(&body, e.term);
  body.push_back(static_cast<char>(e.type));
  body += e.data;
  return Seal(index, body);
}

namespace {

// Checks the entry stored under `index` and splits it; `data` points into `value`.
bool ParseEntry(raft::Index index, std::string_view value, raft::Term* term, raft::EntryType* type,
                std::string_view* data) {
  std::string key_index;
  common::PutBigEndian64(&key_index, index);
  if (!Unseal(key_index, &value)) return false;
  if (!common::GetFixed64(&value, term) || value.empty()) return false;
  auto t = static_cast<uint8_t>(value[0]);
  if (t > static_cast<uint8_t>(raft::EntryType::kNoop)) return false;
  value.remove_prefix(1);
  *type = static_cast<raft::EntryType>(t);
  *data = value;
  return true;
}

}  // namespace

bool DecodeEntry(raft::Index index, std::string_view value, raft::Entry* e) {
  raft::Term term;
  raft::EntryType type;
  std::string_view data;
  if (!ParseEntry(index, value, &term, &type, &data)) return false;
  e->index = index;
  e->term = term;
  e->type = type;
  e->data.assign(data.data(), data.size());
  return true;
}

bool CheckEntry(raft::Index index, std::string_view value, raft::Term* term) {
  raft::EntryType type;
  std::string_view data;
  return ParseEntry(index, value, term, &type, &data);
}

std::string EncodeHardState(const raft::HardState& hs) {
  std::string body;
  common::PutFixed64(&body, hs.term);
  common::PutFixed64(&body, hs.vote);
  common::PutFixed64(&body, hs.commit);
  return Seal(kHardState, body);
}

bool DecodeHardState(std::string_view value, raft::HardState* hs) {
  return Unseal(kHardState, &value) && common::GetFixed64(&value, &hs->term) &&
         common::GetFixed64(&value, &hs->vote) && common::GetFixed64(&value, &hs->commit) &&
         value.empty();
}

std::string EncodeFormat(uint32_t version) {
  std::string body;
  common::PutFixed32(&body, version);
  return Seal(kFormat, body);
}

bool DecodeFormat(std::string_view value, uint32_t* version) {
  return Unseal(kFormat, &value) && common::GetFixed32(&value, version) && value.empty();
}

std::string EncodeSnapshotMeta(const raft::SnapshotMeta& meta) {
  std::string body;
  common::PutFixed64(&body, meta.index);
  common::PutFixed64(&body, meta.term);
  return Seal(kSnapshotMeta, body);
}

bool DecodeSnapshotMeta(std::string_view value, raft::SnapshotMeta* meta) {
  return Unseal(kSnapshotMeta, &value) && common::GetFixed64(&value, &meta->index) &&
         common::GetFixed64(&value, &meta->term) && value.empty();
}

std::string EncodeApplied(raft::Index index, raft::Term term) {
  std::string body;
  common::PutFixed64(&body, index);
  common::PutFixed64(&body, term);
  return Seal(kApplied, body);
}

bool DecodeApplied(std::string_view value, raft::Index* index, raft::Term* term) {
  return Unseal(kApplied, &value) && common::GetFixed64(&value, index) &&
         common::GetFixed64(&value, term) && value.empty();
}

std::string EncodeKeyCount(uint64_t count) {
  std::string body;
  common::PutFixed64(&body, count);
  return Seal(kKeyCount, body);
}

bool DecodeKeyCount(std::string_view value, uint64_t* count) {
  return Unseal(kKeyCount, &value) && common::GetFixed64(&value, count) && value.empty();
}

std::string SessionKey(uint64_t session) {
  std::string key(1, kSessionPrefix);
  common::PutBigEndian64(&key, session);
  return key;
}

std::string SessionResultKey(uint64_t session, uint64_t seq) {
  std::string key(1, kSessionResultPrefix);
  common::PutBigEndian64(&key, session);
  common::PutBigEndian64(&key, seq);
  return key;
}

std::string SessionExpiryKey(uint64_t expires_ms, uint64_t session) {
  std::string key(1, kSessionExpiryPrefix);
  common::PutBigEndian64(&key, expires_ms);
  common::PutBigEndian64(&key, session);
  return key;
}

bool ParseSessionExpiryKey(std::string_view key, uint64_t* expires_ms, uint64_t* session) {
  if (key.size() != 17 || key[0] != kSessionExpiryPrefix) return false;
  key.remove_prefix(1);
  return common::GetBigEndian64(&key, expires_ms) && common::GetBigEndian64(&key, session);
}

std::string UserKey(std::string_view key) {
  std::string out(1, kUserPrefix);
  out += key;
  return out;
}

}  // namespace kv::keys
