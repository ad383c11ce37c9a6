// ValueCache: only user keys, values and absent keys, what a written batch says, bounded, and
// nothing at capacity 0.
#include "kv/value_cache.h"

#include <gtest/gtest.h>
#include <leveldb/write_batch.h>

#include <string>

#include "kv/keys.h"

namespace kv {
namespace {

using Found = ValueCache::Found;

TEST(ValueCacheTest, HoldsUserValuesOnly) {
  ValueCache cache(1 << 20);
  std::string v;
  EXPECT_EQ(cache.Lookup(keys::UserKey("a"), &v), Found::kUnknown);
  cache.Insert(keys::UserKey("a"), "1");
  ASSERT_EQ(cache.Lookup(keys::UserKey("a"), &v), Found::kValue);
  EXPECT_EQ(v, "1");
  cache.Insert(std::string(keys::kApplied), "x");  // not a user value: ignored
  EXPECT_EQ(cache.Lookup(std::string(keys::kApplied), &v), Found::kUnknown);
  EXPECT_EQ(cache.hits(), 1u);
  EXPECT_EQ(cache.misses(), 1u);  // the first lookup of "a"; other records are not counted
}

TEST(ValueCacheTest, AbsentKeysStayAbsentUntilWritten) {
  ValueCache cache(1 << 20);
  std::string v = "untouched";
  cache.InsertAbsent(keys::UserKey("a"));
  EXPECT_EQ(cache.Lookup(keys::UserKey("a"), &v), Found::kAbsent);
  EXPECT_EQ(v, "untouched");
  leveldb::WriteBatch set;
  set.Put(keys::UserKey("a"), "1");
  cache.Update(set);
  ASSERT_EQ(cache.Lookup(keys::UserKey("a"), &v), Found::kValue);
  EXPECT_EQ(v, "1");
  leveldb::WriteBatch del;
  del.Delete(keys::UserKey("a"));
  cache.Update(del);
  EXPECT_EQ(cache.Lookup(keys::UserKey("a"), &v), Found::kUnknown);
  cache.InsertAbsent(std::string(keys::kApplied));  // not a user key: ignored
  EXPECT_EQ(cache.Lookup(std::string(keys::kApplied), &v), Found::kUnknown);
}

TEST(ValueCacheTest, AWrittenBatchReplacesAndErases) {
  ValueCache cache(1 << 20);
  cache.Insert(keys::UserKey("a"), "1");
  cache.Insert(keys::UserKey("b"), "2");
  leveldb::WriteBatch batch;
  batch.Put(keys::UserKey("a"), "10");
  batch.Delete(keys::UserKey("b"));
  batch.Put(keys::UserKey("c"), "30");
  batch.Put(std::string(keys::kKeyCount), "count");
  cache.Update(batch);
  std::string v;
  ASSERT_EQ(cache.Lookup(keys::UserKey("a"), &v), Found::kValue);
  EXPECT_EQ(v, "10");
  EXPECT_EQ(cache.Lookup(keys::UserKey("b"), &v), Found::kUnknown);
  ASSERT_EQ(cache.Lookup(keys::UserKey("c"), &v), Found::kValue);
  EXPECT_EQ(v, "30");
  EXPECT_EQ(cache.Lookup(std::string(keys::kKeyCount), &v), Found::kUnknown);
  cache.Clear();
  EXPECT_EQ(cache.Lookup(keys::UserKey("a"), &v), Found::kUnknown);
  EXPECT_EQ(cache.bytes(), 0u);
}

TEST(ValueCacheTest, StaysWithinItsCapacity) {
  const size_t capacity = 64 << 10;
  ValueCache cache(capacity);
  for (int i = 0; i < 10'000; i++) {
    cache.Insert(keys::UserKey("key" + std::to_string(i)), std::string(100, 'v'));
    ASSERT_LE(cache.bytes(), capacity);
  }
  EXPECT_GT(cache.bytes(), capacity / 2);
  // A value too large for the room is not cached, and one cached for its key is dropped.
  cache.Insert(keys::UserKey("big"), "small");
  std::string v;
  ASSERT_EQ(cache.Lookup(keys::UserKey("big"), &v), Found::kValue);
  leveldb::WriteBatch batch;
  batch.Put(keys::UserKey("big"), std::string(capacity / 32, 'x'));
  cache.Update(batch);
  EXPECT_EQ(cache.Lookup(keys::UserKey("big"), &v), Found::kUnknown);
  // So is an absent key too large for the room.
  const std::string huge = keys::UserKey(std::string(capacity / 32, 'k'));
  cache.InsertAbsent(huge);
  EXPECT_EQ(cache.Lookup(huge, &v), Found::kUnknown);
  EXPECT_LE(cache.bytes(), capacity);
}

TEST(ValueCacheTest, CapacityZeroCachesNothing) {
  ValueCache cache(0);
  cache.Insert(keys::UserKey("a"), "1");
  std::string v;
  EXPECT_EQ(cache.Lookup(keys::UserKey("a"), &v), Found::kUnknown);
  EXPECT_EQ(cache.bytes(), 0u);
  EXPECT_EQ(cache.misses(), 0u);
}

}  // namespace
}  // namespace kv
