// LogStore: raft::LogStorage on LevelDB, on an in-memory Env and on a real directory.
#include "kv/log_store.h"

#include <gtest/gtest.h>
#include <leveldb/db.h>
#include <leveldb/env.h>
#include <leveldb/helpers/memenv.h>

#include <filesystem>
#include <memory>
#include <string>

#include "kv/keys.h"
#include "tests/kv/test_dir.h"

namespace kv {
namespace {

using raft::Entry;
using raft::EntryType;
using raft::HardState;
using raft::PersistentState;
using raft::SnapshotMeta;

std::vector<Entry> MakeEntries(raft::Index first, const std::vector<raft::Term>& terms,
                               const std::string& tag = "e") {
  std::vector<Entry> out;
  for (size_t i = 0; i < terms.size(); i++) {
    raft::Index index = first + i;
    out.push_back({terms[i], index, EntryType::kNormal, tag + "-" + std::to_string(index)});
  }
  return out;
}

// Runs each test on leveldb::NewMemEnv and on a real directory.
class LogStoreTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    dir_holder_ = std::make_unique<test::TestDir>(GetParam(), "log-store");
    env_ = dir_holder_->env();
    dir_ = dir_holder_->Path("/log");
  }
  void TearDown() override {
    store_.reset();
    dir_holder_.reset();
  }

  common::Status Open() {
    store_.reset();
    LogStore::Options options;
    options.env = env_;
    return LogStore::Open(dir_, options, &store_);
  }
  void MustOpen() {
    common::Status s = Open();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  PersistentState MustLoad() {
    PersistentState st;
    common::Status s = store_->Load(&st);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return st;
  }
  // Writes keys straight into the database, bypassing LogStore's checks.
  void RawPut(const std::string& key, const std::string& value) {
    store_.reset();
    leveldb::Options o;
    o.env = env_;
    o.create_if_missing = true;
    leveldb::DB* db = nullptr;
    ASSERT_TRUE(leveldb::DB::Open(o, dir_, &db).ok());
    ASSERT_TRUE(db->Put(leveldb::WriteOptions(), key, value).ok());
    delete db;
  }
  void RawDelete(const std::string& key) {
    store_.reset();
    leveldb::Options o;
    o.env = env_;
    leveldb::DB* db = nullptr;
    ASSERT_TRUE(leveldb::DB::Open(o, dir_, &db).ok());
    ASSERT_TRUE(db->Delete(leveldb::WriteOptions(), key).ok());
    delete db;
  }
  // Flips one bit in the first byte of `needle` inside some file of the database whose name
  // ends with `suffix`. Returns whether it found it.
  bool FlipBitIn(const std::string& suffix, const std::string& needle) {
    store_.reset();
    std::vector<std::string> children;
    EXPECT_TRUE(env_->GetChildren(dir_, &children).ok());
    for (const std::string& name : children) {
      if (name.size() < suffix.size() ||
          name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) {
        continue;
      }
      std::string path = dir_ + "/" + name;
      std::string data;
      EXPECT_TRUE(leveldb::ReadFileToString(env_, path, &data).ok());
      size_t at = data.find(needle);
      if (at == std::string::npos) continue;
      data[at + needle.size() / 2] ^= 0x10;
      EXPECT_TRUE(leveldb::WriteStringToFile(env_, data, path).ok());
      return true;
    }
    return false;
  }

  std::unique_ptr<test::TestDir> dir_holder_;
  leveldb::Env* env_ = nullptr;
  std::string dir_;
  std::unique_ptr<LogStore> store_;
};

TEST_P(LogStoreTest, EmptyStoreLoadsEmptyState) {
  MustOpen();
  PersistentState st = MustLoad();
  EXPECT_EQ(st.hard_state, HardState{});
  EXPECT_EQ(st.snapshot, SnapshotMeta{});
  EXPECT_TRUE(st.entries.empty());
}

TEST_P(LogStoreTest, SavedStateSurvivesReopen) {
  MustOpen();
  ASSERT_TRUE(store_->Save(HardState{3, 2, 4}, MakeEntries(1, {1, 1, 2, 3}), true).ok());
  MustOpen();
  PersistentState st = MustLoad();
  EXPECT_EQ(st.hard_state, (HardState{3, 2, 4}));
  ASSERT_EQ(st.entries.size(), 4u);
  EXPECT_EQ(st.entries[2].term, 2u);
  EXPECT_EQ(st.entries[3].data, "e-4");
  EXPECT_EQ(store_->last_index(), 4u);
}

TEST_P(LogStoreTest, SaveReplacesAConflictingSuffix) {
  MustOpen();
  ASSERT_TRUE(store_->Save(HardState{1, 1, 0}, MakeEntries(1, {1, 1, 1, 1, 1}), true).ok());
  ASSERT_TRUE(store_->Save(HardState{2, 0, 0}, MakeEntries(3, {2, 2}, "new"), true).ok());
  EXPECT_EQ(store_->last_index(), 4u);
  MustOpen();
  PersistentState st = MustLoad();
  ASSERT_EQ(st.entries.size(), 4u);
  EXPECT_EQ(st.entries[1].data, "e-2");
  EXPECT_EQ(st.entries[2].data, "new-3");
  EXPECT_EQ(st.entries[3].term, 2u);
}

TEST_P(LogStoreTest, WriteStepsCoalescesManyReadysIntoOneSync) {
  MustOpen();
  LogStore::Step a{HardState{1, 1, 0}, MakeEntries(1, {1, 1, 1})};
  LogStore::Step b{std::nullopt, MakeEntries(4, {1, 1})};
  LogStore::Step c{HardState{2, 0, 3}, MakeEntries(3, {2}, "c")};  // truncates b's 4-5
  ASSERT_TRUE(store_->WriteSteps({&a, &b, &c}, true).ok());
  EXPECT_EQ(store_->syncs(), 1u);
  EXPECT_EQ(store_->last_index(), 3u);
  MustOpen();
  PersistentState st = MustLoad();
  EXPECT_EQ(st.hard_state, (HardState{2, 0, 3}));
  ASSERT_EQ(st.entries.size(), 3u);
  EXPECT_EQ(st.entries[2].data, "c-3");
}

TEST_P(LogStoreTest, SaveRefusesAGapOrAnOverwriteOfTheSnapshot) {
  MustOpen();
  ASSERT_TRUE(store_->Save(HardState{1, 0, 0}, MakeEntries(1, {1, 1}), true).ok());
  EXPECT_EQ(store_->Save(std::nullopt, MakeEntries(4, {1}), true).code(),
            common::Status::Code::kInvalidArgument);
  ASSERT_TRUE(store_->Compact(2).ok());
  EXPECT_EQ(store_->Save(std::nullopt, MakeEntries(2, {1}), true).code(),
            common::Status::Code::kInvalidArgument);
  EXPECT_EQ(store_->last_index(), 2u);
}

TEST_P(LogStoreTest, HardStateSurvivesCompaction) {
  MustOpen();
  ASSERT_TRUE(
      store_->Save(HardState{7, 3, 9}, MakeEntries(1, {1, 2, 3, 4, 5, 6, 7, 7, 7, 7}), true).ok());
  ASSERT_TRUE(store_->Compact(8).ok());
  ASSERT_TRUE(store_->ApplySnapshot({10, 7}).ok());
  MustOpen();
  PersistentState st = MustLoad();
  EXPECT_EQ(st.hard_state, (HardState{7, 3, 9}));
  EXPECT_EQ(st.snapshot, (SnapshotMeta{10, 7}));
  EXPECT_TRUE(st.entries.empty());
}

TEST_P(LogStoreTest, CompactDropsEntriesUpToTheIndex) {
  MustOpen();
  ASSERT_TRUE(store_->Save(HardState{2, 1, 5}, MakeEntries(1, {1, 1, 2, 2, 2}), true).ok());
  ASSERT_TRUE(store_->Compact(3).ok());
  EXPECT_EQ(store_->Compact(9).code(), common::Status::Code::kInvalidArgument);
  MustOpen();
  PersistentState st = MustLoad();
  EXPECT_EQ(st.snapshot, (SnapshotMeta{3, 2}));
  ASSERT_EQ(st.entries.size(), 2u);
  EXPECT_EQ(st.entries[0].index, 4u);
}

TEST_P(LogStoreTest, ApplySnapshotKeepsTheTailWhenTheLogHoldsItsLastEntry) {
  MustOpen();
  ASSERT_TRUE(store_->Save(HardState{2, 1, 0}, MakeEntries(1, {1, 1, 2, 2, 2}), true).ok());
  ASSERT_TRUE(store_->ApplySnapshot({3, 2}).ok());
  MustOpen();
  PersistentState st = MustLoad();
  EXPECT_EQ(st.snapshot, (SnapshotMeta{3, 2}));
  ASSERT_EQ(st.entries.size(), 2u);
  EXPECT_EQ(st.entries[0].index, 4u);
}

TEST_P(LogStoreTest, ApplySnapshotDropsAMismatchingLog) {
  MustOpen();
  ASSERT_TRUE(store_->Save(HardState{2, 1, 0}, MakeEntries(1, {1, 1, 1, 1, 1}), true).ok());
  ASSERT_TRUE(store_->ApplySnapshot({3, 2}).ok());
  EXPECT_EQ(store_->last_index(), 3u);
  MustOpen();
  PersistentState st = MustLoad();
  EXPECT_EQ(st.snapshot, (SnapshotMeta{3, 2}));
  EXPECT_TRUE(st.entries.empty());
  // The log continues after the snapshot.
  ASSERT_TRUE(store_->Save(std::nullopt, MakeEntries(4, {3}), true).ok());
  EXPECT_EQ(store_->last_index(), 4u);
}

TEST_P(LogStoreTest, CorruptEntryInATableFailsOpenNamingTheIndex) {
  MustOpen();
  std::vector<Entry> entries;
  for (raft::Index i = 1; i <= 100; i++) {
    entries.push_back({1, i, EntryType::kNormal, "payload-" + std::to_string(1000 + i) + "-end"});
  }
  ASSERT_TRUE(store_->Save(HardState{1, 1, 100}, entries, true).ok());
  store_.reset();
  {
    // Move everything from the write-ahead log into tables.
    leveldb::Options o;
    o.env = env_;
    o.compression = leveldb::kNoCompression;  // as LogStore writes its tables
    leveldb::DB* db = nullptr;
    ASSERT_TRUE(leveldb::DB::Open(o, dir_, &db).ok());
    db->CompactRange(nullptr, nullptr);
    delete db;
  }
  ASSERT_TRUE(FlipBitIn(".ldb", "payload-1042-end"));
  common::Status s = Open();
  ASSERT_EQ(s.code(), common::Status::Code::kCorruption) << s.ToString();
  EXPECT_NE(s.message().find("index 42"), std::string::npos) << s.ToString();
}

TEST_P(LogStoreTest, CorruptEntryInTheWriteAheadLogFailsOpenNamingTheIndex) {
  MustOpen();
  ASSERT_TRUE(store_->Save(HardState{1, 1, 0}, MakeEntries(1, {1, 1, 1}, "walpayload"), true).ok());
  ASSERT_TRUE(store_->Save(std::nullopt, MakeEntries(4, {1}, "walpayload"), true).ok());
  ASSERT_TRUE(store_->Save(std::nullopt, MakeEntries(5, {1}, "walpayload"), true).ok());
  ASSERT_TRUE(FlipBitIn(".log", "walpayload-4"));
  common::Status s = Open();
  EXPECT_EQ(s.code(), common::Status::Code::kCorruption) << s.ToString();
  EXPECT_NE(s.message().find("index 4"), std::string::npos) << s.ToString();
}

TEST_P(LogStoreTest, GapInTheLogFailsOpenNamingTheIndex) {
  MustOpen();
  ASSERT_TRUE(store_->Save(HardState{1, 1, 0}, MakeEntries(1, {1, 1, 1}), true).ok());
  Entry stray{1, 7, EntryType::kNormal, "stray"};
  RawPut(keys::EntryKey(7), keys::EncodeEntry(stray));
  common::Status s = Open();
  ASSERT_EQ(s.code(), common::Status::Code::kCorruption);
  EXPECT_NE(s.message().find("index 7"), std::string::npos) << s.ToString();
}

TEST_P(LogStoreTest, DecreasingTermFailsOpenNamingTheIndex) {
  MustOpen();
  ASSERT_TRUE(store_->Save(HardState{3, 1, 0}, MakeEntries(1, {1, 3, 3}), true).ok());
  Entry back{2, 3, EntryType::kNormal, "back"};
  RawPut(keys::EntryKey(3), keys::EncodeEntry(back));
  common::Status s = Open();
  ASSERT_EQ(s.code(), common::Status::Code::kCorruption);
  EXPECT_NE(s.message().find("index 3"), std::string::npos) << s.ToString();
}

TEST_P(LogStoreTest, EntryUnderTheWrongKeyFailsItsChecksum) {
  MustOpen();
  ASSERT_TRUE(store_->Save(HardState{1, 1, 0}, MakeEntries(1, {1, 1}), true).ok());
  Entry e1 = MakeEntries(1, {1})[0];
  RawPut(keys::EntryKey(2), keys::EncodeEntry(e1));  // the value of entry 1 under key 2
  common::Status s = Open();
  ASSERT_EQ(s.code(), common::Status::Code::kCorruption);
  EXPECT_NE(s.message().find("index 2"), std::string::npos) << s.ToString();
}

TEST_P(LogStoreTest, HardStateTermBelowTheLogFailsOpen) {
  MustOpen();
  ASSERT_TRUE(store_->Save(HardState{1, 1, 0}, MakeEntries(1, {1}), true).ok());
  RawPut(keys::EntryKey(2), keys::EncodeEntry(MakeEntries(2, {5})[0]));
  common::Status s = Open();
  EXPECT_EQ(s.code(), common::Status::Code::kCorruption) << s.ToString();
}

TEST_P(LogStoreTest, TheFormatIsMarkedAndANewerOneIsRefusedWithoutLosingAnything) {
  MustOpen();
  EXPECT_EQ(store_->format_at_open(), 1u);  // a new directory, unmarked until now
  ASSERT_TRUE(store_->Save(HardState{1, 1, 0}, MakeEntries(1, {1, 1}), true).ok());
  MustOpen();
  EXPECT_EQ(store_->format_at_open(), keys::kFormatVersion);
  RawPut(std::string(keys::kFormat), keys::EncodeFormat(keys::kFormatVersion + 1));
  common::Status s = Open();
  ASSERT_EQ(s.code(), common::Status::Code::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find("newer"), std::string::npos) << s.ToString();
  // Refused, not changed: with its own version back, the log is all there.
  RawPut(std::string(keys::kFormat), keys::EncodeFormat(keys::kFormatVersion));
  MustOpen();
  EXPECT_EQ(MustLoad().entries.size(), 2u);
}

TEST_P(LogStoreTest, AnUnmarkedLogOpensAsVersionOneAndIsMarked) {
  MustOpen();
  ASSERT_TRUE(store_->Save(HardState{1, 1, 0}, MakeEntries(1, {1, 1, 1}), true).ok());
  RawDelete(std::string(keys::kFormat));  // as an older version left it
  MustOpen();
  EXPECT_EQ(store_->format_at_open(), 1u);
  EXPECT_EQ(MustLoad().entries.size(), 3u);
  MustOpen();
  EXPECT_EQ(store_->format_at_open(), keys::kFormatVersion);
}

TEST_P(LogStoreTest, AFormatRecordFailingItsChecksumFailsOpen) {
  MustOpen();
  RawPut(std::string(keys::kFormat), "not a format record");
  common::Status s = Open();
  EXPECT_EQ(s.code(), common::Status::Code::kCorruption) << s.ToString();
}

// Compact drops entries, but LevelDB keeps their bytes in its files until a compaction of
// their key range rewrites them: ReclaimTask does that, and the space comes back.
TEST(LogStoreReclaim, ReclaimTaskGivesBackTheSpaceOfDroppedEntries) {
  test::TestDir holder(true, "log-store-reclaim");
  std::string dir = holder.Path("/log");
  LogStore::Options options;
  std::unique_ptr<LogStore> store;
  ASSERT_TRUE(LogStore::Open(dir, options, &store).ok());
  auto dir_bytes = [&dir] {
    uintmax_t total = 0;
    for (const auto& f : std::filesystem::directory_iterator(dir)) {
      if (f.is_regular_file()) total += f.file_size();
    }
    return total;
  };
  const std::string value(1000, 'v');
  const raft::Index n = 30000;  // about 30 MB of entries
  for (raft::Index first = 1; first <= n; first += 1000) {
    std::vector<Entry> batch;
    for (raft::Index i = first; i < first + 1000; i++) {
      batch.push_back({1, i, EntryType::kNormal, value});
    }
    ASSERT_TRUE(store->Save(std::nullopt, batch, false).ok());
  }
  ASSERT_TRUE(store->Compact(n - 10).ok());
  uintmax_t before = dir_bytes();
  store->ReclaimTask(1, n - 10)();
  uintmax_t after = dir_bytes();
  // What is left: ten entries, the metadata, and LevelDB's small files.
  EXPECT_LT(after, uintmax_t{2} << 20) << "before the reclaim: " << before << " bytes";
  // The store reads on as before.
  PersistentState st;
  ASSERT_TRUE(store->Load(&st).ok());
  EXPECT_EQ(st.snapshot.index, n - 10);
  ASSERT_EQ(st.entries.size(), 10u);
  EXPECT_EQ(st.entries.back().index, n);
  // The task may outlive the store.
  std::function<void()> late = store->ReclaimTask(1, n);
  store.reset();
  late();
}

INSTANTIATE_TEST_SUITE_P(Env, LogStoreTest, ::testing::Values(false, true), test::EnvName);

}  // namespace
}  // namespace kv
