// NodeStorage: everything one node keeps on disk, opened together and kept consistent: the
// Raft log (LogStore, in <dir>/raft) and the state machine (StateMachine, in <dir>).
//
// At open it reconciles the two after a crash:
//  - the state machine may be behind the log (its writes are not synced): it resumes from its
//    applied index, replaying the log;
//  - it may be ahead of the log's snapshot metadata (a crash after a snapshot install switched
//    the state but before the log recorded it): the log is brought up to the snapshot;
//  - it must never be behind the log's snapshot (entries it would need are gone): that is
//    Corruption, and the node must not start.
//
// Compaction first makes the state durable, then drops log entries up to the applied index
// minus a tail kept for slow followers. Snapshot installs follow DESIGN.md's order: data
// durable, then the log's metadata in a synced batch, dropping the entries it covers.
//
// Thread-safety: as LogStore and StateMachine: one thread at a time, except that the task
// CompactionTask returns runs on the log's thread while the state machine goes on applying on
// another.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "kv/log_store.h"
#include "kv/state_machine.h"

namespace kv {

class NodeStorage {
 public:
  struct Options {
    leveldb::Env* env = nullptr;   // nullptr: leveldb::Env::Default()
    size_t value_cache_bytes = 0;  // StateMachine::Options::value_cache_bytes
  };

  static common::Status Open(const std::string& dir, const Options& options,
                             std::unique_ptr<NodeStorage>* out);

  LogStore* log() { return log_.get(); }
  StateMachine* state() { return state_.get(); }

  // What a raft::Node starts from: the log's persistent state, and Config::applied.
  common::Status Load(raft::PersistentState* state, raft::Index* applied);

  // Drops log entries up to (applied index - keep_tail) after syncing the state machine.
  // Sets *compacted_to to the log's snapshot index afterwards (for raft::Node::Compact).
  common::Status CompactLog(raft::Index keep_tail, raft::Index* compacted_to);

  // CompactLog split for a node whose log is written by one thread (the storage thread) while
  // the state machine applies on another: called on the applying thread, returns the work to
  // run on the log's thread, in order with its writes. The work makes the state as applied at
  // this call durable (StateMachine::SyncTask), then drops the log entries up to `index`; it
  // does nothing if the log's snapshot already covers `index`.
  // REQUIRES: index <= state()->applied_index(), and by the time the work runs, every entry up
  // to `index` has been written to the log.
  std::function<common::Status()> CompactionTask(raft::Index index);

  // Completes a snapshot install started with state()->NewSnapshotWriter: switches the state
  // machine to it, then records it in the log. Sets *meta to what was installed.
  common::Status FinishInstall(StateMachine::SnapshotWriter* writer, raft::SnapshotMeta* meta);

 private:
  NodeStorage() = default;
  common::Status Reconcile();

  std::unique_ptr<LogStore> log_;
  std::unique_ptr<StateMachine> state_;
};

}  // namespace kv
