#include "kv/pending_writes.h"

#include <leveldb/db.h>
#include <leveldb/iterator.h>

#include "kv/keys.h"
#include "kv/value_cache.h"

namespace kv {

namespace {

// Records the writes of an entry's batch in the group's index. The records an entry writes on
// every apply and no later apply reads back (they are read when the state opens) stay out.
class Indexer : public leveldb::WriteBatch::Handler {
 public:
  explicit Indexer(std::unordered_map<std::string, std::optional<std::string>>* written)
      : written_(written) {}

  void Put(const leveldb::Slice& key, const leveldb::Slice& value) override {
    if (Indexed(key)) (*written_)[key.ToString()] = value.ToString();
  }
  void Delete(const leveldb::Slice& key) override {
    if (Indexed(key)) (*written_)[key.ToString()] = std::nullopt;
  }

 private:
  static bool Indexed(const leveldb::Slice& key) {
    const std::string_view k(key.data(), key.size());
    return k != keys::kApplied && k != keys::kKeyCount && k != keys::kClusterTime;
  }

  std::unordered_map<std::string, std::optional<std::string>>* written_;
};

}  // namespace

leveldb::Status PendingWrites::Get(const std::string& key, std::string* value) {
  for (const auto* index : {&staged_, &written_}) {
    auto it = index->find(key);
    if (it == index->end()) continue;
    if (!it->second.has_value()) return leveldb::Status::NotFound(key);
    *value = *it->second;
    return leveldb::Status::OK();
  }
  if (cache_ != nullptr) return cache_->Get(db_, key, value);
  return db_->Get(leveldb::ReadOptions(), key, value);
}

leveldb::Status PendingWrites::NewIterator(std::unique_ptr<leveldb::Iterator>* out) {
  leveldb::Status s = Write();
  if (!s.ok()) return s;
  out->reset(db_->NewIterator(leveldb::ReadOptions()));
  return leveldb::Status::OK();
}

void PendingWrites::Stage(const leveldb::WriteBatch& part) {
  Indexer indexer(&staged_);
  (void)part.Iterate(&indexer);
}

void PendingWrites::Add(const leveldb::WriteBatch& entry, bool read_later) {
  staged_.clear();
  batch_.Append(entry);
  empty_ = false;
  if (read_later) {
    Indexer indexer(&written_);
    // An entry's own batch, built in memory: it always parses.
    (void)entry.Iterate(&indexer);
  }
}

leveldb::Status PendingWrites::Write() {
  if (empty_) return leveldb::Status::OK();
  leveldb::Status s = keys::WriteSealed(db_, false, &batch_);
  if (s.ok() && cache_ != nullptr) cache_->Update(batch_);
  batch_.Clear();
  written_.clear();
  empty_ = true;
  if (s.ok()) writes_++;
  return s;
}

}  // namespace kv
