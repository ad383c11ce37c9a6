#include "kv/log_store.h"

#include <leveldb/db.h>
#include <leveldb/env.h>
#include <leveldb/options.h>
#include <leveldb/write_batch.h>

#include "kv/durable_env.h"
#include "kv/keys.h"
#include "kv/leveldb_status.h"
#include "kv/torn_tail.h"

namespace kv {

LogStore::LogStore(std::shared_ptr<leveldb::Env> env, leveldb::DB* db)
    : env_(std::move(env)), db_(db, [env = env_](leveldb::DB* d) { delete d; }) {}
LogStore::~LogStore() = default;

common::Status LogStore::Open(const std::string& path, const Options& options,
                              std::unique_ptr<LogStore>* out) {
  leveldb::Options lo;
  lo.create_if_missing = options.create_if_missing;
  lo.paranoid_checks = true;
  // Log entries are small and mostly incompressible; tables stay plain so that checksums and
  // corruption reports line up with entries.
  lo.compression = leveldb::kNoCompression;
  auto env =
      std::make_unique<DurableEnv>(options.env != nullptr ? options.env : leveldb::Env::Default());
  lo.env = env.get();
  int trimmed = 0;
  common::Status t = TrimTornTails(lo.env, path, &trimmed);
  if (!t.ok()) return t;
  leveldb::DB* db = nullptr;
  leveldb::Status s = leveldb::DB::Open(lo, path, &db);
  if (s.IsCorruption()) {
    std::string where = LocateBadLogEntries(lo.env, path);
    if (!where.empty()) {
      return common::Status::Corruption("raft log entry at " + where +
                                        ": its write-ahead log record fails its checksum (" +
                                        s.ToString() + ")");
    }
  }
  if (!s.ok()) return FromLevelDB(s, "open raft log " + path);
  std::unique_ptr<LogStore> store(new LogStore(std::move(env), db));
  store->torn_tails_cut_ = trimmed;
  common::Status st = store->Check();
  if (!st.ok()) return st;
  if (store->format_ < keys::kFormatVersion) {
    // New, or written by a version that did not know batches: from now on it may hold them.
    leveldb::WriteBatch batch;
    batch.Put(std::string(keys::kFormat), keys::EncodeFormat(keys::kFormatVersion));
    st = FromLevelDB(keys::WriteSealed(store->db_.get(), true, &batch), "raft log: write format");
    if (!st.ok()) return st;
  }
  *out = std::move(store);
  return common::Status::OK();
}

common::Status LogStore::Check() {
  leveldb::ReadOptions ro;
  ro.verify_checksums = true;
  std::string value;
  // First: a newer format may encode everything else differently.
  leveldb::Status s = db_->Get(ro, std::string(keys::kFormat), &value);
  format_ = 1;
  if (s.ok()) {
    if (!keys::DecodeFormat(value, &format_)) {
      return common::Status::Corruption("raft log: format record fails its checksum");
    }
    if (format_ > keys::kFormatVersion) {
      return common::Status::InvalidArgument(
          "raft log: data format " + std::to_string(format_) + " is newer than this " +
          "raftkv-server reads (" + std::to_string(keys::kFormatVersion) +
          "): the directory was written by a newer version; run that version or a later one");
    }
  } else if (!s.IsNotFound()) {
    return FromLevelDB(s, "raft log: read format");
  }
  s = db_->Get(ro, std::string(keys::kHardState), &value);
  if (s.ok()) {
    if (!keys::DecodeHardState(value, &hard_state_)) {
      return common::Status::Corruption("raft log: hard state fails its checksum");
    }
  } else if (!s.IsNotFound()) {
    return FromLevelDB(s, "raft log: read hard state");
  }
  s = db_->Get(ro, std::string(keys::kSnapshotMeta), &value);
  if (s.ok()) {
    if (!keys::DecodeSnapshotMeta(value, &snapshot_)) {
      return common::Status::Corruption("raft log: snapshot metadata fails its checksum");
    }
  } else if (!s.IsNotFound()) {
    return FromLevelDB(s, "raft log: read snapshot metadata");
  }
  std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(ro));
  raft::Index expected = snapshot_.index + 1;
  raft::Term prev_term = snapshot_.term;
  for (it->Seek(keys::EntryKey(0)); it->Valid(); it->Next()) {
    raft::Index index;
    if (!keys::ParseEntryKey(std::string_view(it->key().data(), it->key().size()), &index)) break;
    auto where = [index] { return "raft log entry at index " + std::to_string(index); };
    // LevelDB skips a block it cannot read and reports it in status(): check that first.
    if (!it->status().ok()) break;
    if (index != expected) {
      return common::Status::Corruption(where() + ": expected index " + std::to_string(expected) +
                                        " (log not contiguous)");
    }
    raft::Term term;
    if (!keys::CheckEntry(index, std::string_view(it->value().data(), it->value().size()), &term)) {
      return common::Status::Corruption(where() + ": checksum mismatch");
    }
    if (term < prev_term) {
      return common::Status::Corruption(where() + ": term " + std::to_string(term) +
                                        " below the previous term " + std::to_string(prev_term));
    }
    prev_term = term;
    expected++;
  }
  if (!it->status().ok()) {
    // LevelDB found a bad block. Read again without its block checksums to name the entry
    // whose own checksum fails; otherwise name the first index that could not be read.
    std::string what = it->status().ToString();
    raft::Index bad = expected;
    leveldb::ReadOptions loose;
    loose.verify_checksums = false;
    std::unique_ptr<leveldb::Iterator> scan(db_->NewIterator(loose));
    for (scan->Seek(keys::EntryKey(expected)); scan->Valid(); scan->Next()) {
      raft::Index index;
      if (!keys::ParseEntryKey(std::string_view(scan->key().data(), scan->key().size()), &index))
        break;
      raft::Entry e;
      if (!keys::DecodeEntry(index, std::string_view(scan->value().data(), scan->value().size()),
                             &e)) {
        bad = index;
        break;
      }
    }
    return common::Status::Corruption("raft log entry at index " + std::to_string(bad) + ": " +
                                      what);
  }
  last_index_ = expected - 1;
  // Entries are written in one batch with the hard state of their term. (The snapshot's term
  // may be ahead of the hard state after a crash mid-install; NodeStorage settles that.)
  if (last_index_ > snapshot_.index && hard_state_.term < prev_term) {
    return common::Status::Corruption("raft log: hard state term " +
                                      std::to_string(hard_state_.term) +
                                      " below the last entry's term " + std::to_string(prev_term));
  }
  return common::Status::OK();
}

common::Status LogStore::Load(raft::PersistentState* out) {
  out->hard_state = hard_state_;
  out->snapshot = snapshot_;
  out->entries.clear();
  leveldb::ReadOptions ro;
  ro.verify_checksums = true;
  std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(ro));
  for (it->Seek(keys::EntryKey(snapshot_.index + 1)); it->Valid(); it->Next()) {
    raft::Index index;
    if (!keys::ParseEntryKey(std::string_view(it->key().data(), it->key().size()), &index)) break;
    raft::Entry e;
    if (!keys::DecodeEntry(index, std::string_view(it->value().data(), it->value().size()), &e)) {
      return common::Status::Corruption("raft log entry at index " + std::to_string(index) +
                                        ": checksum mismatch");
    }
    out->entries.push_back(std::move(e));
  }
  if (!it->status().ok()) return FromLevelDB(it->status(), "raft log: load entries");
  return common::Status::OK();
}

common::Status LogStore::Commit(void* batch_ptr, bool sync) {
  if (!failed_.ok()) return failed_;
  auto* batch = static_cast<leveldb::WriteBatch*>(batch_ptr);
  leveldb::Status s = keys::WriteSealed(db_.get(), sync, batch);
  if (!s.ok()) {
    failed_ = FromLevelDB(s, "raft log write");
    return failed_;
  }
  if (sync) syncs_++;
  return common::Status::OK();
}

common::Status LogStore::Save(const std::optional<raft::HardState>& hard_state,
                              const std::vector<raft::Entry>& entries, bool sync) {
  Step step{hard_state, entries};
  return WriteSteps({&step}, sync);
}

common::Status LogStore::WriteSteps(const std::vector<const Step*>& steps, bool sync) {
  leveldb::WriteBatch batch;
  raft::Index last = last_index_;
  std::optional<raft::HardState> hs;
  for (const Step* step : steps) {
    if (!step->entries.empty()) {
      raft::Index first = step->entries.front().index;
      if (first <= snapshot_.index || first > last + 1) {
        return common::Status::InvalidArgument(
            "entries from index " + std::to_string(first) + " do not follow the stored log (last " +
            std::to_string(last) + ", snapshot " + std::to_string(snapshot_.index) + ")");
      }
      raft::Index new_last = step->entries.back().index;
      // Entries beyond the new last index belong to a conflicting suffix: delete them.
      for (raft::Index i = new_last + 1; i <= last; i++) batch.Delete(keys::EntryKey(i));
      for (const raft::Entry& e : step->entries)
        batch.Put(keys::EntryKey(e.index), keys::EncodeEntry(e));
      last = new_last;
    }
    if (step->hard_state) hs = step->hard_state;
  }
  if (hs) batch.Put(std::string(keys::kHardState), keys::EncodeHardState(*hs));
  common::Status st = Commit(&batch, sync);
  if (!st.ok()) return st;
  last_index_ = last;
  if (hs) hard_state_ = *hs;
  return common::Status::OK();
}

common::Status LogStore::TermAt(raft::Index index, raft::Term* term) {
  if (index == snapshot_.index) {
    *term = snapshot_.term;
    return common::Status::OK();
  }
  std::string value;
  leveldb::Status s = db_->Get(leveldb::ReadOptions(), keys::EntryKey(index), &value);
  if (!s.ok()) return FromLevelDB(s, "raft log: read entry " + std::to_string(index));
  raft::Entry e;
  if (!keys::DecodeEntry(index, value, &e)) {
    return common::Status::Corruption("raft log entry at index " + std::to_string(index) +
                                      ": checksum mismatch");
  }
  *term = e.term;
  return common::Status::OK();
}

common::Status LogStore::ApplySnapshot(const raft::SnapshotMeta& meta) {
  if (meta.index <= snapshot_.index) return common::Status::OK();
  // Keep the entries after the snapshot only if the log holds its last entry (Figure 13, 6).
  bool keep_tail = false;
  if (meta.index <= last_index_) {
    raft::Term term;
    common::Status st = TermAt(meta.index, &term);
    if (!st.ok()) return st;
    keep_tail = term == meta.term;
  }
  leveldb::WriteBatch batch;
  batch.Put(std::string(keys::kSnapshotMeta), keys::EncodeSnapshotMeta(meta));
  raft::Index drop_to = keep_tail ? meta.index : last_index_;
  for (raft::Index i = snapshot_.index + 1; i <= drop_to; i++) batch.Delete(keys::EntryKey(i));
  common::Status st = Commit(&batch, true);
  if (!st.ok()) return st;
  snapshot_ = meta;
  if (!keep_tail) last_index_ = meta.index;
  return common::Status::OK();
}

common::Status LogStore::Compact(raft::Index index) {
  if (index <= snapshot_.index) return common::Status::OK();
  if (index > last_index_) {
    return common::Status::InvalidArgument("compact to " + std::to_string(index) +
                                           " beyond the last index " + std::to_string(last_index_));
  }
  raft::Term term;
  common::Status st = TermAt(index, &term);
  if (!st.ok()) return st;
  leveldb::WriteBatch batch;
  batch.Put(std::string(keys::kSnapshotMeta), keys::EncodeSnapshotMeta({index, term}));
  for (raft::Index i = snapshot_.index + 1; i <= index; i++) batch.Delete(keys::EntryKey(i));
  st = Commit(&batch, true);
  if (!st.ok()) return st;
  snapshot_ = {index, term};
  return common::Status::OK();
}

std::function<void()> LogStore::ReclaimTask(raft::Index from, raft::Index through) {
  std::shared_ptr<leveldb::DB> db = db_;
  return [db, from, through] {
    std::string begin = keys::EntryKey(from);
    std::string end = keys::EntryKey(through);
    leveldb::Slice b(begin), e(end);
    db->CompactRange(&b, &e);
  };
}

}  // namespace kv
