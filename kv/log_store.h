// LogStore: raft::LogStorage on LevelDB (layout in kv/keys.h). Every persistence step is one
// WriteBatch; with sync it is durable when the call returns. WriteSteps coalesces many steps
// (many Readys) into one synced batch: the storage thread's group commit.
//
// Opening checks the whole log: the hard state and snapshot metadata decode, entries are
// contiguous from the snapshot index + 1, terms never decrease, every checksum matches, and
// the hard state's term is not below the last entry's. Otherwise Open fails with Corruption
// naming what and where. LevelDB runs with paranoid_checks; RepairDB is never called. Before
// all that, the directory's format (kv/keys.h, kFormat): one newer than this binary reads is
// refused (InvalidArgument), an older or unmarked one is marked with the current version once
// the checks pass.
//
// A write that fails (ENOSPC, EIO) leaves the database as it was before that batch (LevelDB
// batches are atomic) and the store refuses every later write: the caller must stop
// acknowledging (fail-stop, DESIGN.md).
//
// Thread-safety: not thread-safe. After Open, one thread at a time (the storage thread);
// except ReclaimTask, which any thread may call (it only takes a reference to the database).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "raft/log_storage.h"

namespace leveldb {
class DB;
class Env;
}  // namespace leveldb

namespace kv {

class LogStore : public raft::LogStorage {
 public:
  struct Options {
    leveldb::Env* env = nullptr;  // nullptr: leveldb::Env::Default()
    bool create_if_missing = true;
  };

  // One persistence step of a Ready (see raft::Ready).
  struct Step {
    std::optional<raft::HardState> hard_state;
    std::vector<raft::Entry> entries;
  };

  // Opens (or creates) the log database in directory `path` and checks it.
  static common::Status Open(const std::string& path, const Options& options,
                             std::unique_ptr<LogStore>* out);
  ~LogStore() override;

  common::Status Load(raft::PersistentState* out) override;
  common::Status Save(const std::optional<raft::HardState>& hard_state,
                      const std::vector<raft::Entry>& entries, bool sync) override;
  // Writes `steps` in order as one batch (later steps' entries replace earlier ones from their
  // first index on), synced when `sync`. REQUIRES: each step's entries are contiguous and start
  // at most one past the last index left by the steps before it.
  common::Status WriteSteps(const std::vector<const Step*>& steps, bool sync);
  common::Status ApplySnapshot(const raft::SnapshotMeta& meta) override;
  common::Status Compact(raft::Index index) override;

  // Work that gives back the disk space of dropped entries: LevelDB keeps a deleted entry (and
  // its deletion marker) in its files until a compaction of that key range rewrites them, so
  // after Compact or ApplySnapshot the bytes stay on disk for a while. The work compacts the
  // range of entry keys in [from, through]. It may run on any thread, concurrently with this
  // store's writes (LevelDB orders them), and may outlive the store: it holds the database.
  // It cannot fail in a way that matters: a failed compaction leaves the files as they were
  // (and a broken disk shows up in the next write). The Env given in Options must outlive the
  // work (leveldb::Env::Default() does; a test's own Env must wait for it).
  std::function<void()> ReclaimTask(raft::Index from, raft::Index through);

  // The term of the entry at `index` (the snapshot's own index answers its term).
  common::Status Term(raft::Index index, raft::Term* term) { return TermAt(index, term); }
  raft::Index last_index() const { return last_index_; }
  raft::SnapshotMeta snapshot() const { return snapshot_; }
  raft::HardState hard_state() const { return hard_state_; }
  // Number of synced writes so far.
  uint64_t syncs() const { return syncs_; }
  // Write-ahead logs whose torn tail was cut at open (kv/torn_tail.h).
  int torn_tails_cut() const { return torn_tails_cut_; }
  // The format the directory had when opened (1 if unmarked); it is kFormatVersion now.
  uint32_t format_at_open() const { return format_; }

 private:
  LogStore(std::shared_ptr<leveldb::Env> env, leveldb::DB* db);
  common::Status Check();
  common::Status Commit(void* batch, bool sync);  // leveldb::WriteBatch*
  common::Status TermAt(raft::Index index, raft::Term* term);

  std::shared_ptr<leveldb::Env> env_;
  std::shared_ptr<leveldb::DB> db_;  // holds env_ too (a ReclaimTask may outlive the store)
  raft::HardState hard_state_;
  raft::SnapshotMeta snapshot_;
  raft::Index last_index_ = 0;
  uint64_t syncs_ = 0;
  int torn_tails_cut_ = 0;
  uint32_t format_ = 1;
  common::Status failed_;  // first write failure: every later write returns it
};

}  // namespace kv
