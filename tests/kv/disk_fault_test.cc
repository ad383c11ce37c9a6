// Disk faults on a node's storage: torn tails, full disks, failing syncs, and the restart
// after a crash in the middle of a snapshot install. Each fault surfaces as an error, leaves
// nothing half-applied, and a restart finds a consistent state.
#include <gtest/gtest.h>
#include <leveldb/env.h>
#include <leveldb/helpers/memenv.h>

#include <functional>
#include <map>
#include <memory>
#include <thread>

#include "kv/fault_env.h"
#include "kv/node_storage.h"
#include "kv/value_cache.h"
#include "protocol/command.h"
#include "raft/node.h"

namespace kv {
namespace {

using raft::Entry;

std::vector<Entry> Entries(raft::Index first, size_t n, raft::Term term, size_t bytes = 100) {
  std::vector<Entry> out;
  for (size_t i = 0; i < n; i++) {
    out.push_back({term, first + i, raft::EntryType::kNormal,
                   std::string(bytes, static_cast<char>('a' + (first + i) % 26))});
  }
  return out;
}

Entry SetEntry(raft::Index index, raft::Term term, const std::string& key,
               const std::string& value) {
  protocol::Command c;
  protocol::Op op;
  op.code = protocol::OpCode::kSet;
  op.keys = {key};
  op.values = {value};
  c.ops = {op};
  return {term, index, raft::EntryType::kNormal, protocol::EncodeCommand(c)};
}

Entry FlushAllEntry(raft::Index index, raft::Term term) {
  protocol::Command c;
  c.time_ms = 1;
  protocol::Op op;
  op.code = protocol::OpCode::kFlushAll;
  c.ops = {op};
  return {term, index, raft::EntryType::kNormal, protocol::EncodeCommand(c)};
}

class DiskFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    mem_.reset(leveldb::NewMemEnv(leveldb::Env::Default()));
    env_ = std::make_unique<FaultInjectionEnv>(mem_.get());
  }
  common::Status Open(size_t value_cache_bytes = 0) {
    ns_.reset();
    NodeStorage::Options o;
    o.env = env_.get();
    o.value_cache_bytes = value_cache_bytes;
    return NodeStorage::Open("/node", o, &ns_);
  }
  // The Raft log's write-ahead log file, or "" if there is none.
  std::string WriteAheadLog() {
    std::vector<std::string> children;
    EXPECT_TRUE(env_->GetChildren("/node/raft", &children).ok());
    for (const std::string& c : children) {
      if (c.size() > 4 && c.compare(c.size() - 4, 4, ".log") == 0) return "/node/raft/" + c;
    }
    return "";
  }
  void Crash(uint64_t seed, bool tear) {
    env_->SetCrashed(true);
    ns_.reset();
    env_->SimulateCrash(seed, tear);
    env_->SetCrashed(false);
  }

  std::unique_ptr<leveldb::Env> mem_;
  std::unique_ptr<FaultInjectionEnv> env_;
  std::unique_ptr<NodeStorage> ns_;
};

TEST_F(DiskFaultTest, TornTailBootable) {
  int cut = 0;
  for (uint64_t seed = 1; seed <= 40; seed++) {
    ns_.reset();
    env_.reset();
    SetUp();
    ASSERT_TRUE(Open().ok());
    ASSERT_TRUE(ns_->log()->Save(raft::HardState{2, 1, 0}, Entries(1, 10, 2), true).ok());
    // The next write reaches the file (LevelDB appends a record's header and payload, then
    // flushes) but the crash comes before its sync.
    env_->CrashAfterWrites(3);
    EXPECT_FALSE(ns_->log()->Save(raft::HardState{3, 2, 0}, Entries(11, 40, 3, 300), true).ok());
    Crash(seed, /*tear=*/true);
    common::Status s = Open();
    ASSERT_TRUE(s.ok()) << "seed " << seed << ": " << s.ToString();
    cut += ns_->log()->torn_tails_cut();
    raft::PersistentState st;
    raft::Index applied;
    ASSERT_TRUE(ns_->Load(&st, &applied).ok());
    // The unacknowledged write is there whole or not at all; the synced one always is.
    if (st.entries.size() == 10u) {
      EXPECT_EQ(st.hard_state, (raft::HardState{2, 1, 0})) << "seed " << seed;
    } else {
      ASSERT_EQ(st.entries.size(), 50u) << "seed " << seed;
      EXPECT_EQ(st.hard_state, (raft::HardState{3, 2, 0})) << "seed " << seed;
    }
    EXPECT_EQ(st.entries[9], Entries(10, 1, 2)[0]) << "seed " << seed;
  }
  EXPECT_GT(cut, 0) << "no seed produced a torn tail: the test does not exercise the cut";
}

TEST_F(DiskFaultTest, BitFlipInTheLastSyncedRecordIsCorruptionNotATornTail) {
  ASSERT_TRUE(Open().ok());
  ASSERT_TRUE(ns_->log()->Save(raft::HardState{1, 1, 0}, Entries(1, 3, 1), true).ok());
  ns_.reset();
  std::string wal = WriteAheadLog();
  ASSERT_FALSE(wal.empty());
  uint64_t size;
  ASSERT_TRUE(env_->GetFileSize(wal, &size).ok());
  ASSERT_TRUE(env_->FlipBit(wal, size / 2, 3).ok());
  common::Status s = Open();
  EXPECT_EQ(s.code(), common::Status::Code::kCorruption) << s.ToString();
}

TEST_F(DiskFaultTest, DamagedLastRecordIsNeverCutAsATornTail) {
  // Whatever byte of the last (synced) record is damaged, the node refuses to start: it never
  // mistakes the damage for a torn tail and forgets the entry and the vote.
  ASSERT_TRUE(Open().ok());
  ASSERT_TRUE(ns_->log()->Save(raft::HardState{3, 2, 1}, Entries(1, 1, 3, 8), true).ok());
  ns_.reset();
  std::string wal = WriteAheadLog();
  ASSERT_FALSE(wal.empty());
  std::vector<std::string> children;
  ASSERT_TRUE(env_->GetChildren("/node/raft", &children).ok());
  // Every file of the log database as it is now, to put back before each damage.
  std::map<std::string, std::string> saved;
  for (const std::string& c : children) {
    std::string data;
    if (leveldb::ReadFileToString(env_.get(), "/node/raft/" + c, &data).ok()) saved[c] = data;
  }
  auto restore = [&]() {
    std::vector<std::string> now;
    ASSERT_TRUE(env_->GetChildren("/node/raft", &now).ok());
    for (const std::string& c : now) {
      if (!saved.count(c)) {
        ASSERT_TRUE(env_->RemoveFile("/node/raft/" + c).ok());
      }
    }
    for (const auto& [name, data] : saved) {
      ASSERT_TRUE(leveldb::WriteStringToFile(env_.get(), data, "/node/raft/" + name).ok());
    }
  };
  const std::string original = saved.at(wal.substr(std::string("/node/raft/").size()));
  int refused = 0;
  for (size_t offset = 0; offset < original.size(); offset++) {
    for (int bit : {0, 2, 7}) {
      restore();
      std::string damaged = original;
      damaged[offset] = static_cast<char>(damaged[offset] ^ (1 << bit));
      ASSERT_TRUE(leveldb::WriteStringToFile(env_.get(), damaged, wal).ok());
      common::Status s = Open();
      if (!s.ok()) {
        EXPECT_EQ(s.code(), common::Status::Code::kCorruption) << s.ToString();
        refused++;
        continue;
      }
      // Opened: then nothing was lost.
      raft::PersistentState st;
      raft::Index applied;
      ASSERT_TRUE(ns_->Load(&st, &applied).ok());
      EXPECT_EQ(st.hard_state, (raft::HardState{3, 2, 1})) << "offset " << offset << " bit " << bit;
      EXPECT_EQ(st.entries.size(), 1u) << "offset " << offset << " bit " << bit;
      ns_.reset();
    }
  }
  EXPECT_GT(refused, 0);
}

TEST_F(DiskFaultTest, StateSyncCoversWritesBeforeALogSwitch) {
  // Enough data to make LevelDB switch to a new write-ahead log between the applies and the
  // sync: the old log must be durable too, or the applied index outruns the data.
  for (uint64_t seed = 1; seed <= 4; seed++) {
    ns_.reset();
    env_.reset();
    SetUp();
    ASSERT_TRUE(Open().ok());
    ApplyResult r;
    for (raft::Index i = 1; i <= 9; i++) {
      ASSERT_TRUE(
          ns_->state()
              ->Apply(SetEntry(i, 1, "k" + std::to_string(i), std::string(512 << 10, 'v')), &r)
              .ok());
    }
    ASSERT_TRUE(ns_->state()->Sync().ok());
    Crash(seed, seed % 2 == 0);
    ASSERT_TRUE(Open().ok());
    EXPECT_EQ(ns_->state()->applied_index(), 9u);
    for (int i = 1; i <= 9; i++) {
      std::string v;
      EXPECT_TRUE(ns_->state()->Get("k" + std::to_string(i), &v).ok())
          << "seed " << seed << " key " << i;
    }
  }
}

TEST_F(DiskFaultTest, SyncTaskOnAnotherThreadMakesTheAppliedStateDurable) {
  ASSERT_TRUE(Open().ok());
  ApplyResult r;
  for (raft::Index i = 1; i <= 20; i++) {
    ASSERT_TRUE(ns_->state()->Apply(SetEntry(i, 1, "k" + std::to_string(i), "v"), &r).ok());
  }
  std::function<common::Status()> task = ns_->state()->SyncTask();
  common::Status synced;
  // The state machine goes on applying while the task runs elsewhere.
  std::thread other([&] { synced = task(); });
  for (raft::Index i = 21; i <= 40; i++) {
    ASSERT_TRUE(ns_->state()->Apply(SetEntry(i, 1, "k" + std::to_string(i), "v"), &r).ok());
  }
  other.join();
  ASSERT_TRUE(synced.ok()) << synced.ToString();
  task = nullptr;            // it holds the database open
  Crash(9, /*tear=*/false);  // every unsynced byte is lost
  ASSERT_TRUE(Open().ok());
  // Everything applied before the task was made is durable; later applies may or may not be.
  EXPECT_GE(ns_->state()->applied_index(), 20u);
  for (int i = 1; i <= static_cast<int>(ns_->state()->applied_index()); i++) {
    std::string v;
    EXPECT_TRUE(ns_->state()->Get("k" + std::to_string(i), &v).ok()) << "key " << i;
  }
}

TEST_F(DiskFaultTest, FailedSyncTaskIsAnErrorAndLaterAppliesFail) {
  ASSERT_TRUE(Open().ok());
  ApplyResult r;
  ASSERT_TRUE(ns_->state()->Apply(SetEntry(1, 1, "a", "1"), &r).ok());
  std::function<common::Status()> task = ns_->state()->SyncTask();
  env_->SetSyncError(true);
  EXPECT_EQ(task().code(), common::Status::Code::kIOError);
  env_->SetSyncError(false);
  EXPECT_FALSE(ns_->state()->Apply(SetEntry(2, 1, "b", "2"), &r).ok()) << "must stay stopped";
}

TEST_F(DiskFaultTest, CompactionTaskSyncsTheStateBeforeDroppingEntries) {
  ASSERT_TRUE(Open().ok());
  ASSERT_TRUE(ns_->log()->Save(raft::HardState{1, 1, 10}, {}, true).ok());
  ApplyResult r;
  for (raft::Index i = 1; i <= 10; i++) {
    Entry e = SetEntry(i, 1, "k" + std::to_string(i), "v");
    ASSERT_TRUE(ns_->log()->Save(std::nullopt, {e}, true).ok());
    ASSERT_TRUE(ns_->state()->Apply(e, &r).ok());
  }
  // Made on the applying thread, run on the log's thread (here: another one).
  std::function<common::Status()> task = ns_->CompactionTask(8);
  common::Status compacted;
  std::thread log_thread([&] { compacted = task(); });
  log_thread.join();
  task = nullptr;  // it holds the state database open
  ASSERT_TRUE(compacted.ok()) << compacted.ToString();
  EXPECT_EQ(ns_->log()->snapshot(), (raft::SnapshotMeta{8, 1}));
  // Covered already: nothing to do.
  EXPECT_TRUE(ns_->CompactionTask(5)().ok());
  EXPECT_EQ(ns_->log()->snapshot().index, 8u);
  // Without the state sync, the applies (never synced) would be lost and the node would refuse
  // to start with its state behind the log's snapshot.
  Crash(4, /*tear=*/false);  // every unsynced byte is lost
  common::Status s = Open();
  ASSERT_TRUE(s.ok()) << s.ToString();
  raft::PersistentState st;
  raft::Index applied;
  ASSERT_TRUE(ns_->Load(&st, &applied).ok());
  EXPECT_EQ(st.snapshot, (raft::SnapshotMeta{8, 1}));
  EXPECT_GE(applied, 8u);
  ASSERT_EQ(st.entries.size(), 2u);
  EXPECT_EQ(st.entries[0].index, 9u);
}

TEST_F(DiskFaultTest, DiskFullFailsTheWriteAndLeavesNothingHalfApplied) {
  ASSERT_TRUE(Open().ok());
  ASSERT_TRUE(ns_->log()->Save(raft::HardState{1, 1, 0}, Entries(1, 5, 1), true).ok());
  env_->SetNoSpaceAfter(1000);
  common::Status s = ns_->log()->Save(raft::HardState{2, 0, 0}, Entries(6, 50, 2), true);
  EXPECT_EQ(s.code(), common::Status::Code::kIOError) << s.ToString();
  EXPECT_NE(s.message().find("No space"), std::string::npos) << s.ToString();
  // Fail-stop: nothing more is written, even small.
  EXPECT_FALSE(ns_->log()->Save(std::nullopt, Entries(6, 1, 1), true).ok());
  env_->SetNoSpaceAfter(-1);
  Crash(7, false);
  ASSERT_TRUE(Open().ok());
  raft::PersistentState st;
  raft::Index applied;
  ASSERT_TRUE(ns_->Load(&st, &applied).ok());
  EXPECT_EQ(st.hard_state, (raft::HardState{1, 1, 0}));
  EXPECT_EQ(st.entries.size(), 5u);
  // Space is back: the node writes again.
  EXPECT_TRUE(ns_->log()->Save(raft::HardState{2, 0, 0}, Entries(6, 50, 2), true).ok());
}

// A group of entries (ApplyAll) is one write: when it fails, none of them counts as applied.
TEST_F(DiskFaultTest, DiskFullWhileApplyingAGroupAppliesNoneOfIt) {
  ASSERT_TRUE(Open().ok());
  ApplyResult r;
  ASSERT_TRUE(ns_->state()->Apply(SetEntry(1, 1, "a", "1"), &r).ok());
  ASSERT_TRUE(ns_->state()->Sync().ok());
  const uint64_t keys = ns_->state()->key_count();
  env_->SetNoSpaceAfter(10);
  std::vector<raft::Entry> group = {SetEntry(2, 1, "b", std::string(500, 'x')),
                                    SetEntry(3, 1, "c", "3"), SetEntry(4, 1, "d", "4")};
  std::vector<ApplyResult> results;
  common::Status s = ns_->state()->ApplyAll(group, &results);
  EXPECT_EQ(s.code(), common::Status::Code::kIOError) << s.ToString();
  EXPECT_EQ(ns_->state()->applied_index(), 1u);
  EXPECT_EQ(ns_->state()->key_count(), keys);
  env_->SetNoSpaceAfter(-1);
  EXPECT_FALSE(ns_->state()->ApplyAll(group, &results).ok()) << "must stay stopped";
  Crash(3, true);
  ASSERT_TRUE(Open().ok());
  EXPECT_EQ(ns_->state()->applied_index(), 1u);
  std::string v;
  EXPECT_FALSE(ns_->state()->Get("c", &v).ok());
}

// A scan inside a group (FLUSHALL) writes the entries before it; when the group's last write
// then fails, the state machine counts as applied what that first write holds, no more.
TEST_F(DiskFaultTest, DiskFullAfterAScanInAGroupKeepsWhatTheScanWrote) {
  ASSERT_TRUE(Open().ok());
  ApplyResult r;
  ASSERT_TRUE(ns_->state()->Apply(SetEntry(1, 1, "a", "1"), &r).ok());
  ASSERT_TRUE(ns_->state()->Sync().ok());
  // Room for the write of entry 2 (before the FLUSHALL scans), not for the rest.
  env_->SetNoSpaceAfter(300);
  std::vector<raft::Entry> group = {SetEntry(2, 1, "b", "2"), FlushAllEntry(3, 1),
                                    SetEntry(4, 1, "c", std::string(1000, 'x'))};
  std::vector<ApplyResult> results;
  common::Status s = ns_->state()->ApplyAll(group, &results);
  EXPECT_EQ(s.code(), common::Status::Code::kIOError) << s.ToString();
  EXPECT_EQ(ns_->state()->applied_index(), 2u);
  EXPECT_EQ(ns_->state()->key_count(), 2u);  // a and b, as written
  std::string v;
  EXPECT_TRUE(ns_->state()->Get("b", &v).ok());
  EXPECT_FALSE(ns_->state()->Get("c", &v).ok());
}

// The value cache holds what the state holds: a group whose write fails changes neither, and
// what a scan wrote before the failure is in both.
TEST_F(DiskFaultTest, AFailedGroupWriteLeavesTheValueCacheAsTheState) {
  ASSERT_TRUE(Open(1 << 20).ok());
  ApplyResult r;
  ASSERT_TRUE(ns_->state()->Apply(SetEntry(1, 1, "a", "1"), &r).ok());
  std::string v;
  ASSERT_TRUE(ns_->state()->Get("a", &v).ok());   // cached
  EXPECT_FALSE(ns_->state()->Get("z", &v).ok());  // cached as absent
  env_->SetNoSpaceAfter(10);
  std::vector<raft::Entry> group = {SetEntry(2, 1, "a", std::string(500, 'x')),
                                    SetEntry(3, 1, "z", "new")};
  std::vector<ApplyResult> results;
  EXPECT_EQ(ns_->state()->ApplyAll(group, &results).code(), common::Status::Code::kIOError);
  ASSERT_TRUE(ns_->state()->Get("a", &v).ok());
  EXPECT_EQ(v, "1");
  EXPECT_FALSE(ns_->state()->Get("z", &v).ok());
  EXPECT_EQ(ns_->state()->applied_index(), 1u);
  const uint64_t hits = ns_->state()->value_cache().hits();
  EXPECT_GE(hits, 2u);  // those reads came from the cache

  // With room for the write before a FLUSHALL's scan only: that write is in the cache too.
  env_->SetNoSpaceAfter(-1);
  ASSERT_TRUE(Open(1 << 20).ok());               // a restart, the disk healthy again
  ASSERT_TRUE(ns_->state()->Get("a", &v).ok());  // cached again
  EXPECT_EQ(v, "1");
  env_->SetNoSpaceAfter(300);
  group = {SetEntry(2, 1, "a", "2"), FlushAllEntry(3, 1),
           SetEntry(4, 1, "c", std::string(1000, 'x'))};
  EXPECT_EQ(ns_->state()->ApplyAll(group, &results).code(), common::Status::Code::kIOError);
  EXPECT_EQ(ns_->state()->applied_index(), 2u);
  ASSERT_TRUE(ns_->state()->Get("a", &v).ok());
  EXPECT_EQ(v, "2");
  EXPECT_FALSE(ns_->state()->Get("c", &v).ok());
}

TEST_F(DiskFaultTest, DiskFullWhileApplyingKeepsDataAndAppliedIndexTogether) {
  ASSERT_TRUE(Open().ok());
  ApplyResult r;
  ASSERT_TRUE(ns_->state()->Apply(SetEntry(1, 1, "a", "1"), &r).ok());
  ASSERT_TRUE(ns_->state()->Sync().ok());
  env_->SetNoSpaceAfter(10);
  common::Status s = ns_->state()->Apply(SetEntry(2, 1, "b", std::string(500, 'x')), &r);
  EXPECT_EQ(s.code(), common::Status::Code::kIOError) << s.ToString();
  EXPECT_EQ(ns_->state()->applied_index(), 1u);
  env_->SetNoSpaceAfter(-1);
  EXPECT_FALSE(ns_->state()->Apply(SetEntry(2, 1, "b", "y"), &r).ok()) << "must stay stopped";
  Crash(3, true);
  ASSERT_TRUE(Open().ok());
  EXPECT_EQ(ns_->state()->applied_index(), 1u);
  std::string v;
  EXPECT_TRUE(ns_->state()->Get("a", &v).ok());
  EXPECT_FALSE(ns_->state()->Get("b", &v).ok());
}

TEST_F(DiskFaultTest, FailedSyncIsAnErrorAndTheWriteIsNotAcknowledged) {
  ASSERT_TRUE(Open().ok());
  ASSERT_TRUE(ns_->log()->Save(raft::HardState{1, 1, 0}, Entries(1, 3, 1), true).ok());
  env_->SetSyncError(true);
  common::Status s = ns_->log()->Save(raft::HardState{2, 2, 0}, Entries(4, 3, 2), true);
  EXPECT_EQ(s.code(), common::Status::Code::kIOError) << s.ToString();
  EXPECT_EQ(ns_->log()->last_index(), 3u);
  EXPECT_EQ(ns_->log()->hard_state(), (raft::HardState{1, 1, 0}));
  env_->SetSyncError(false);
  EXPECT_FALSE(ns_->log()->Save(std::nullopt, Entries(4, 1, 1), true).ok()) << "must stay stopped";
  Crash(11, false);
  ASSERT_TRUE(Open().ok());
  raft::PersistentState st;
  raft::Index applied;
  ASSERT_TRUE(ns_->Load(&st, &applied).ok());
  EXPECT_EQ(st.hard_state, (raft::HardState{1, 1, 0}));
  EXPECT_EQ(st.entries.size(), 3u);
}

TEST_F(DiskFaultTest, SnapshotAheadOfLogOnRestart) {
  ASSERT_TRUE(Open().ok());
  ASSERT_TRUE(ns_->log()->Save(raft::HardState{1, 1, 0}, Entries(1, 3, 1), true).ok());
  // A leader of term 5 sends a snapshot up to index 20 (term 4), built on its own disk.
  std::unique_ptr<leveldb::Env> leader_env(leveldb::NewMemEnv(leveldb::Env::Default()));
  std::unique_ptr<StateMachine> leader;
  StateMachine::Options so;
  so.env = leader_env.get();
  ASSERT_TRUE(StateMachine::Open("/leader", so, &leader).ok());
  ApplyResult r;
  for (raft::Index i = 1; i <= 20; i++) {
    ASSERT_TRUE(leader->Apply(SetEntry(i, i <= 3 ? 1 : 4, "k" + std::to_string(i), "v"), &r).ok());
  }
  auto reader = leader->NewSnapshotReader(256);
  std::unique_ptr<StateMachine::SnapshotWriter> writer;
  ASSERT_TRUE(ns_->state()->NewSnapshotWriter(&writer).ok());
  bool done = false;
  while (!done) {
    std::string chunk;
    ASSERT_TRUE(reader->Next(&chunk, &done).ok());
    ASSERT_TRUE(writer->Add(chunk).ok());
  }
  // The state switches, then the crash comes before the log records the snapshot.
  raft::SnapshotMeta meta;
  ASSERT_TRUE(writer->Finish(&meta).ok());
  env_->CrashAfterWrites(0);
  EXPECT_FALSE(ns_->log()->ApplySnapshot(meta).ok());
  writer.reset();
  Crash(5, true);

  common::Status s = Open();
  ASSERT_TRUE(s.ok()) << s.ToString();
  raft::PersistentState st;
  raft::Index applied;
  ASSERT_TRUE(ns_->Load(&st, &applied).ok());
  EXPECT_EQ(applied, 20u);
  EXPECT_EQ(st.snapshot, (raft::SnapshotMeta{20, 4}));
  EXPECT_TRUE(st.entries.empty());
  EXPECT_GE(st.hard_state.term, 4u);
  // And a Raft node starts from it, its invariants intact.
  raft::Config config;
  config.id = 1;
  config.voters = {1, 2, 3};
  config.applied = applied;
  config.check_invariants = true;
  raft::Node node(config, st);
  EXPECT_EQ(node.log().last_index(), 20u);
  EXPECT_EQ(node.CheckInvariants(), "");
}

TEST_F(DiskFaultTest, StateBehindTheLogSnapshotRefusesToStart) {
  ASSERT_TRUE(Open().ok());
  ASSERT_TRUE(ns_->log()->Save(raft::HardState{1, 1, 0}, Entries(1, 5, 1), true).ok());
  // Compaction that ignored the state machine (never done by NodeStorage) leaves a hole.
  ASSERT_TRUE(ns_->log()->Compact(4).ok());
  ns_.reset();
  common::Status s = Open();
  EXPECT_EQ(s.code(), common::Status::Code::kCorruption) << s.ToString();
  EXPECT_NE(s.message().find("behind the log's snapshot"), std::string::npos) << s.ToString();
}

}  // namespace
}  // namespace kv
