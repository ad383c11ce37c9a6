#include "kv/node_storage.h"

#include <leveldb/env.h>

#include <algorithm>

namespace kv {

common::Status NodeStorage::Open(const std::string& dir, const Options& options,
                                 std::unique_ptr<NodeStorage>* out) {
  leveldb::Env* env = options.env != nullptr ? options.env : leveldb::Env::Default();
  env->CreateDir(dir);  // may exist already
  std::unique_ptr<NodeStorage> ns(new NodeStorage());
  LogStore::Options lo;
  lo.env = env;
  common::Status s = LogStore::Open(dir + "/raft", lo, &ns->log_);
  if (!s.ok()) return s;
  StateMachine::Options so;
  so.env = env;
  so.value_cache_bytes = options.value_cache_bytes;
  s = StateMachine::Open(dir, so, &ns->state_);
  if (!s.ok()) return s;
  s = ns->Reconcile();
  if (!s.ok()) return s;
  *out = std::move(ns);
  return common::Status::OK();
}

common::Status NodeStorage::Reconcile() {
  raft::Index applied = state_->applied_index();
  raft::Term applied_term = state_->applied_term();
  raft::SnapshotMeta snap = log_->snapshot();
  if (applied < snap.index) {
    return common::Status::Corruption("state machine applied index " + std::to_string(applied) +
                                      " is behind the log's snapshot index " +
                                      std::to_string(snap.index) +
                                      ": the entries in between are gone");
  }
  if (applied > snap.index) {
    bool log_holds_it = false;
    if (applied <= log_->last_index()) {
      raft::Term term;
      common::Status s = log_->Term(applied, &term);
      if (!s.ok()) return s;
      log_holds_it = term == applied_term;
    }
    // The state is ahead of the log: a snapshot was installed and the crash came before the
    // log recorded it. Record it now.
    if (!log_holds_it) {
      common::Status s = log_->ApplySnapshot({applied, applied_term});
      if (!s.ok()) return s;
    }
  }
  // A snapshot is installed before the hard state of the term it came in is written: a crash
  // in between leaves the log's snapshot term ahead of the current term. Moving the term
  // forward, without a vote, is always safe.
  raft::HardState hs = log_->hard_state();
  if (hs.term < log_->snapshot().term) {
    hs = {log_->snapshot().term, raft::kNoNode, std::max(hs.commit, log_->snapshot().index)};
    return log_->Save(hs, {}, true);
  }
  return common::Status::OK();
}

common::Status NodeStorage::Load(raft::PersistentState* state, raft::Index* applied) {
  *applied = state_->applied_index();
  return log_->Load(state);
}

common::Status NodeStorage::CompactLog(raft::Index keep_tail, raft::Index* compacted_to) {
  raft::Index applied = state_->applied_index();
  *compacted_to = log_->snapshot().index;
  if (applied <= keep_tail || applied - keep_tail <= log_->snapshot().index) {
    return common::Status::OK();
  }
  raft::Index index = std::min(applied - keep_tail, log_->last_index());
  // The entries go only once the state that covers them is durable.
  common::Status s = state_->Sync();
  if (!s.ok()) return s;
  s = log_->Compact(index);
  if (!s.ok()) return s;
  *compacted_to = index;
  return common::Status::OK();
}

std::function<common::Status()> NodeStorage::CompactionTask(raft::Index index) {
  std::function<common::Status()> sync = state_->SyncTask();
  LogStore* log = log_.get();
  return [sync, log, index]() -> common::Status {
    if (index <= log->snapshot().index) return common::Status::OK();
    // The entries go only once the state that covers them is durable.
    common::Status s = sync();
    if (!s.ok()) return s;
    return log->Compact(index);
  };
}

common::Status NodeStorage::FinishInstall(StateMachine::SnapshotWriter* writer,
                                          raft::SnapshotMeta* meta) {
  common::Status s = writer->Finish(meta);
  if (!s.ok()) return s;
  return log_->ApplySnapshot(*meta);
}

}  // namespace kv
