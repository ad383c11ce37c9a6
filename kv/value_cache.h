// ValueCache: the most recently used user values of the state machine, in memory, bounded in
// bytes (LRU). A read that finds its key here does not reach LevelDB: a linearizable GET of a
// hot key is a hash lookup, and so is the read an applied write makes of the key it replaces
// (for the key count, NX/XX, APPEND, INCRBY).
//
// It holds only what the state database holds: a value is cached when it is read from the
// database, or when a batch that writes it has been written (Update); a delete erases it. A
// key the database was found not to hold is cached as absent, until a write sets it. The
// state machine clears it when it switches to another database (a snapshot install).
//
// Thread-safety: Lookup, Insert, Update and Clear as the state machine that owns it (one
// thread at a time); the figures (capacity, bytes, hits, misses) from any thread.
#pragma once

#include <leveldb/status.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace leveldb {
class Cache;
class DB;
class WriteBatch;
}  // namespace leveldb

namespace kv {

class ValueCache {
 public:
  // At most `capacity_bytes` of keys, values and bookkeeping; 0 caches nothing.
  explicit ValueCache(size_t capacity_bytes);
  ~ValueCache();

  ValueCache(const ValueCache&) = delete;
  ValueCache& operator=(const ValueCache&) = delete;

  enum class Found {
    kUnknown,  // not cached: ask the database
    kValue,    // *value is the key's value
    kAbsent,   // the database does not hold the key
  };
  // Reads raw key `key` (kv/keys.h) from `db` through the cache: what the cache knows of a user
  // key, else LevelDB's answer, which the cache then keeps (a value, or the key as absent).
  // Other records go straight to `db`.
  leveldb::Status Get(leveldb::DB* db, std::string_view key, std::string* value);
  // What is cached of raw key `key` (kv/keys.h); kUnknown for any key but a user key's, which
  // counts as neither a hit nor a miss.
  Found Lookup(std::string_view key, std::string* value);
  // Caches `value` as raw key `key`'s value, which the database holds now. Only user keys.
  void Insert(std::string_view key, std::string_view value);
  // Caches raw key `key` as absent: the database does not hold it now. Only user keys.
  void InsertAbsent(std::string_view key);
  // `batch` has been written to the database: its user values replace the cached ones, and its
  // deletes erase them.
  void Update(const leveldb::WriteBatch& batch);
  // Forgets everything.
  void Clear();

  size_t capacity() const { return capacity_; }
  // Bytes charged now (keys, values and 160 bytes per entry, for the bookkeeping).
  size_t bytes() const;
  uint64_t hits() const { return hits_.load(std::memory_order_relaxed); }
  uint64_t misses() const { return misses_.load(std::memory_order_relaxed); }

 private:
  // Caches `value` (null: absent) for user key `key`, unless the entry is too large.
  void Put(std::string_view key, const std::string_view* value);

  size_t capacity_;
  std::unique_ptr<leveldb::Cache> cache_;  // null when the capacity is 0
  std::atomic<uint64_t> hits_{0};
  std::atomic<uint64_t> misses_{0};
};

}  // namespace kv
