#include "kv/value_cache.h"

#include <leveldb/cache.h>
#include <leveldb/db.h>
#include <leveldb/write_batch.h>

#include "kv/keys.h"

namespace kv {

namespace {

// What an entry costs beyond its key and value, with room to spare: the cache's handle (about
// 70 bytes and the key), the value's string object and the allocator's rounding of both, and
// the hash table's slot.
constexpr size_t kEntryOverhead = 160;

bool IsUserKey(std::string_view key) { return !key.empty() && key[0] == keys::kUserPrefix; }

// An entry's value: the key's value, or null for a key the database does not hold.
void DeleteValue(const leveldb::Slice& /*key*/, void* value) {
  delete static_cast<std::string*>(value);
}

class Updater : public leveldb::WriteBatch::Handler {
 public:
  explicit Updater(ValueCache* cache, leveldb::Cache* lru) : cache_(cache), lru_(lru) {}

  void Put(const leveldb::Slice& key, const leveldb::Slice& value) override {
    cache_->Insert(std::string_view(key.data(), key.size()),
                   std::string_view(value.data(), value.size()));
  }
  void Delete(const leveldb::Slice& key) override {
    if (IsUserKey(std::string_view(key.data(), key.size()))) lru_->Erase(key);
  }

 private:
  ValueCache* cache_;
  leveldb::Cache* lru_;
};

}  // namespace

ValueCache::ValueCache(size_t capacity_bytes) : capacity_(capacity_bytes) {
  if (capacity_ > 0) cache_.reset(leveldb::NewLRUCache(capacity_));
}

ValueCache::~ValueCache() = default;

ValueCache::Found ValueCache::Lookup(std::string_view key, std::string* value) {
  if (cache_ == nullptr || !IsUserKey(key)) return Found::kUnknown;
  leveldb::Cache::Handle* h = cache_->Lookup(leveldb::Slice(key.data(), key.size()));
  if (h == nullptr) {
    misses_.fetch_add(1, std::memory_order_relaxed);
    return Found::kUnknown;
  }
  hits_.fetch_add(1, std::memory_order_relaxed);
  const auto* cached = static_cast<const std::string*>(cache_->Value(h));
  const Found found = cached != nullptr ? Found::kValue : Found::kAbsent;
  if (cached != nullptr) *value = *cached;
  cache_->Release(h);
  return found;
}

leveldb::Status ValueCache::Get(leveldb::DB* db, std::string_view key, std::string* value) {
  const leveldb::Slice k(key.data(), key.size());
  switch (Lookup(key, value)) {
    case Found::kValue:
      return leveldb::Status::OK();
    case Found::kAbsent:
      return leveldb::Status::NotFound(k);
    case Found::kUnknown:
      break;
  }
  leveldb::Status s = db->Get(leveldb::ReadOptions(), k, value);
  if (s.ok()) {
    Insert(key, *value);
  } else if (s.IsNotFound()) {
    InsertAbsent(key);
  }
  return s;
}

void ValueCache::Insert(std::string_view key, std::string_view value) {
  if (cache_ == nullptr || !IsUserKey(key)) return;
  Put(key, &value);
}

void ValueCache::InsertAbsent(std::string_view key) {
  if (cache_ == nullptr || !IsUserKey(key)) return;
  Put(key, nullptr);
}

void ValueCache::Put(std::string_view key, const std::string_view* value) {
  const size_t charge = key.size() + (value != nullptr ? value->size() : 0) + kEntryOverhead;
  const leveldb::Slice k(key.data(), key.size());
  if (charge > capacity_ / 64) {
    // Large for the room (the cache is 16 shards of a 16th each): not cached, and whatever was
    // cached for the key is stale now.
    cache_->Erase(k);
    return;
  }
  leveldb::Cache::Handle* h =
      cache_->Insert(k, value != nullptr ? new std::string(*value) : nullptr, charge, &DeleteValue);
  cache_->Release(h);
}

void ValueCache::Update(const leveldb::WriteBatch& batch) {
  if (cache_ == nullptr) return;
  Updater updater(this, cache_.get());
  // A batch this process built and wrote: it always parses.
  (void)batch.Iterate(&updater);
}

void ValueCache::Clear() {
  // No handle is ever held past a call: every entry goes.
  if (cache_ != nullptr) cache_->Prune();
}

size_t ValueCache::bytes() const { return cache_ == nullptr ? 0 : cache_->TotalCharge(); }

}  // namespace kv
