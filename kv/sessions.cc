#include "kv/sessions.h"

#include <leveldb/db.h>
#include <leveldb/write_batch.h>

#include <algorithm>
#include <memory>

#include "common/coding.h"
#include "kv/keys.h"
#include "kv/leveldb_status.h"
#include "kv/pending_writes.h"

namespace kv {

namespace {

OpResult ErrorResult(std::string text) { return {OpResult::Kind::kError, 0, std::move(text)}; }

std::string Expired(uint64_t id) {
  return "SESSIONEXPIRED session " + std::to_string(id) + " is unknown or expired";
}

std::string Prefix(char prefix, uint64_t id) {
  std::string p(1, prefix);
  common::PutBigEndian64(&p, id);
  return p;
}

}  // namespace

common::Status SessionTable::Load(leveldb::DB* db) {
  time_ms_ = 0;
  count_ = 0;
  next_expiry_ms_ = std::numeric_limits<uint64_t>::max();
  std::string value;
  leveldb::Status s = db->Get(leveldb::ReadOptions(), std::string(keys::kClusterTime), &value);
  if (s.ok()) {
    std::string_view v = value;
    if (!keys::Unseal(keys::kClusterTime, &v) || !common::GetFixed64(&v, &time_ms_) || !v.empty()) {
      return common::Status::Corruption("cluster time fails its checksum");
    }
  } else if (!s.IsNotFound()) {
    return FromLevelDB(s, "read cluster time");
  }
  std::unique_ptr<leveldb::Iterator> it(db->NewIterator(leveldb::ReadOptions()));
  const std::string sessions(1, keys::kSessionPrefix);
  for (it->Seek(sessions); it->Valid() && it->key().starts_with(sessions); it->Next()) count_++;
  const std::string expiries(1, keys::kSessionExpiryPrefix);
  it->Seek(expiries);
  uint64_t expires = 0, id = 0;
  if (it->Valid() && it->key().starts_with(expiries)) {
    if (!keys::ParseSessionExpiryKey(std::string_view(it->key().data(), it->key().size()), &expires,
                                     &id)) {
      return common::Status::Corruption("malformed session expiry key");
    }
    next_expiry_ms_ = expires;
  }
  if (!it->status().ok()) return FromLevelDB(it->status(), "count sessions");
  return common::Status::OK();
}

common::Status SessionTable::Read(PendingWrites* db, uint64_t id, Meta* meta, bool* found,
                                  bool* stored) {
  *found = false;
  if (stored != nullptr) *stored = false;
  const std::string key = keys::SessionKey(id);
  std::string value;
  leveldb::Status s = db->Get(key, &value);
  if (s.IsNotFound()) return common::Status::OK();
  if (!s.ok()) return FromLevelDB(s, "read session");
  std::string_view v = value;
  if (!keys::Unseal(key, &v) || !common::GetFixed64(&v, &meta->timeout_ms) ||
      !common::GetFixed64(&v, &meta->last_used_ms) || !common::GetFixed64(&v, &meta->acked) ||
      !v.empty()) {
    return common::Status::Corruption("session " + std::to_string(id) + " fails its checksum");
  }
  if (stored != nullptr) *stored = true;
  // A session whose time is up is gone, even while the batch that deletes it is being built.
  *found = meta->expires() > time_ms_;
  return common::Status::OK();
}

void SessionTable::Write(uint64_t id, const Meta& meta, leveldb::WriteBatch* batch) {
  const std::string key = keys::SessionKey(id);
  std::string body;
  common::PutFixed64(&body, meta.timeout_ms);
  common::PutFixed64(&body, meta.last_used_ms);
  common::PutFixed64(&body, meta.acked);
  batch->Put(key, keys::Seal(key, body));
}

common::Status SessionTable::Erase(PendingWrites* db, uint64_t id, const Meta& meta,
                                   leveldb::WriteBatch* batch) {
  batch->Delete(keys::SessionKey(id));
  batch->Delete(keys::SessionExpiryKey(meta.expires(), id));
  const std::string results = Prefix(keys::kSessionResultPrefix, id);
  std::unique_ptr<leveldb::Iterator> it;
  leveldb::Status s = db->NewIterator(&it);
  if (!s.ok()) return FromLevelDB(s, "erase session");
  for (it->Seek(results); it->Valid() && it->key().starts_with(results); it->Next()) {
    batch->Delete(it->key());
  }
  if (!it->status().ok()) return FromLevelDB(it->status(), "erase session");
  count_--;
  erased_.push_back(id);
  return common::Status::OK();
}

common::Status SessionTable::Advance(PendingWrites* db, uint64_t time_ms,
                                     leveldb::WriteBatch* batch) {
  erased_.clear();
  if (time_ms > time_ms_) {
    time_ms_ = time_ms;
    std::string body;
    common::PutFixed64(&body, time_ms_);
    batch->Put(std::string(keys::kClusterTime), keys::Seal(keys::kClusterTime, body));
  }
  if (time_ms_ < next_expiry_ms_) return common::Status::OK();
  // Expiry keys sort by time: expire from the front until one lies in the future.
  next_expiry_ms_ = std::numeric_limits<uint64_t>::max();
  std::unique_ptr<leveldb::Iterator> it;
  leveldb::Status s = db->NewIterator(&it);
  if (!s.ok()) return FromLevelDB(s, "expire sessions");
  const std::string expiries(1, keys::kSessionExpiryPrefix);
  uint64_t expired = 0;
  for (it->Seek(expiries); it->Valid() && it->key().starts_with(expiries); it->Next()) {
    uint64_t expires = 0, id = 0;
    if (!keys::ParseSessionExpiryKey(std::string_view(it->key().data(), it->key().size()), &expires,
                                     &id)) {
      return common::Status::Corruption("malformed session expiry key");
    }
    if (expires > time_ms_) {
      next_expiry_ms_ = expires;
      break;
    }
    if (expired == kMaxExpiriesPerEntry) {
      next_expiry_ms_ = expires;  // the rest go with the next entries
      break;
    }
    expired++;
    Meta meta;
    bool live = false;
    common::Status st = Read(db, id, &meta, &live);
    if (!st.ok()) return st;
    if (meta.expires() == expires) {
      st = Erase(db, id, meta, batch);
      if (!st.ok()) return st;
    } else {
      batch->Delete(it->key());  // left behind by a session that was used since (never written)
    }
  }
  if (!it->status().ok()) return FromLevelDB(it->status(), "expire sessions");
  return common::Status::OK();
}

OpResult SessionTable::Open(uint64_t index, uint64_t timeout_ms, leveldb::WriteBatch* batch) {
  if (count_ >= kMaxSessions) {
    return ErrorResult("TRYAGAIN too many open sessions (" + std::to_string(kMaxSessions) +
                       "); close some or let them expire");
  }
  Meta meta;
  meta.timeout_ms = std::clamp<uint64_t>(timeout_ms, 1, kMaxSessionTimeoutMs);
  meta.last_used_ms = time_ms_;
  Write(index, meta, batch);
  batch->Put(keys::SessionExpiryKey(meta.expires(), index),
             keys::Seal(keys::SessionExpiryKey(meta.expires(), index), ""));
  next_expiry_ms_ = std::min(next_expiry_ms_, meta.expires());
  count_++;
  return {OpResult::Kind::kInt, static_cast<int64_t>(index), ""};
}

common::Status SessionTable::Close(PendingWrites* db, uint64_t id, leveldb::WriteBatch* batch,
                                   OpResult* out) {
  Meta meta;
  bool found = false;
  common::Status st = Read(db, id, &meta, &found);
  if (!st.ok()) return st;
  if (!found) {
    *out = ErrorResult(Expired(id));
    return common::Status::OK();
  }
  *out = OpResult{};
  return Erase(db, id, meta, batch);
}

common::Status SessionTable::Begin(PendingWrites* db, const Request& r, leveldb::WriteBatch* batch,
                                   Verdict* verdict, std::vector<OpResult>* results) {
  results->clear();
  Meta meta;
  bool found = false, stored_meta = false;
  common::Status st = Read(db, r.session, &meta, &found, &stored_meta);
  if (!st.ok()) return st;
  const bool existed = found;
  if (!found) {
    // A node's forwarding session is created by its first request only (acked 1): a later
    // request of an expired session may have been applied before it expired, and must not
    // run again; the node then starts a new session.
    if (!r.create || r.acked > 1 || count_ >= kMaxSessions) {
      *verdict = Verdict::kRefused;
      const bool full = r.create && r.acked <= 1;
      results->push_back(ErrorResult(full ? "TRYAGAIN too many open sessions (" +
                                                std::to_string(kMaxSessions) + ")"
                                          : Expired(r.session)));
      return common::Status::OK();
    }
    if (stored_meta && std::find(erased_.begin(), erased_.end(), r.session) == erased_.end()) {
      // Expired, and not yet erased (expiry is spread over entries): erase it now, so that
      // the new session starts clean and the count stays what a restart would count.
      st = Erase(db, r.session, meta, batch);
      if (!st.ok()) return st;
    }
    meta = Meta();
    meta.timeout_ms = kDefaultSessionTimeoutMs;
    meta.last_used_ms = time_ms_;
  }
  if (r.seq < meta.acked) {
    *verdict = Verdict::kRefused;
    results->push_back(ErrorResult("ERR request " + std::to_string(r.seq) + " of session " +
                                   std::to_string(r.session) + " was already acknowledged"));
    return common::Status::OK();
  }
  // The client's acknowledgement, never past this request (its results must stay).
  const uint64_t acked = std::max(meta.acked, std::min(r.acked, r.seq));
  std::string stored;
  // A new session has no results (an expired one's, still in the database until this entry's
  // batch deletes them, are not its own).
  leveldb::Status s = existed ? db->Get(keys::SessionResultKey(r.session, r.seq), &stored)
                              : leveldb::Status::NotFound("new session");
  if (s.ok()) {
    std::string_view v = stored;
    if (!keys::Unseal(keys::SessionResultKey(r.session, r.seq), &v) || !DecodeResults(v, results)) {
      return common::Status::Corruption("results of request " + std::to_string(r.seq) +
                                        " of session " + std::to_string(r.session) +
                                        " fail their checksum");
    }
    *verdict = Verdict::kDuplicate;
  } else if (!s.IsNotFound()) {
    return FromLevelDB(s, "read session results");
  } else if (r.seq >= acked + kSessionWindow) {
    *verdict = Verdict::kRefused;
    results->push_back(ErrorResult("TRYAGAIN request " + std::to_string(r.seq) +
                                   " is beyond session " + std::to_string(r.session) +
                                   "'s window of " + std::to_string(kSessionWindow) +
                                   " requests after " + std::to_string(acked)));
    return common::Status::OK();
  } else {
    *verdict = Verdict::kApply;
  }
  // Forget the results the client now holds. Every stored result lies below the old acked +
  // the window, so the walk is bounded by it.
  for (uint64_t seq = meta.acked; seq < acked && seq < meta.acked + kSessionWindow; seq++) {
    batch->Delete(keys::SessionResultKey(r.session, seq));
  }
  if (existed) batch->Delete(keys::SessionExpiryKey(meta.expires(), r.session));
  if (!existed) count_++;
  meta.acked = acked;
  meta.last_used_ms = time_ms_;
  Write(r.session, meta, batch);
  const std::string expiry = keys::SessionExpiryKey(meta.expires(), r.session);
  batch->Put(expiry, keys::Seal(expiry, ""));
  next_expiry_ms_ = std::min(next_expiry_ms_, meta.expires());
  return common::Status::OK();
}

void SessionTable::Finish(const Request& r, const std::vector<OpResult>& results,
                          leveldb::WriteBatch* batch) {
  const std::string key = keys::SessionResultKey(r.session, r.seq);
  batch->Put(key, keys::Seal(key, EncodeResults(results)));
}

}  // namespace kv
