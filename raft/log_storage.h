// LogStorage: where a node's Raft state lives between restarts: hard state (term, vote,
// commit), snapshot metadata and the log entries after it. The driver writes it as it acts on
// Readys; a Node reads it only at construction (PersistentState). kv/ implements it on
// LevelDB; MemoryStorage (memory_storage.h) is the in-memory one for tests.
//
// Thread-safety: implementations say.
#pragma once

#include <optional>
#include <vector>

#include "common/status.h"
#include "raft/types.h"

namespace raft {

class LogStorage {
 public:
  virtual ~LogStorage() = default;

  // Reads everything a Node needs to restart.
  virtual common::Status Load(PersistentState* out) = 0;

  // One persistence step: `hard_state` (if set) and `entries`, which replace every stored
  // entry from entries.front().index on, in one atomic batch; durable on return when `sync`.
  // REQUIRES: entries contiguous, entries.front().index <= stored last index + 1.
  virtual common::Status Save(const std::optional<HardState>& hard_state,
                              const std::vector<Entry>& entries, bool sync) = 0;

  // Records an installed snapshot (its data is already durable): metadata first, then drops
  // the entries it covers; if the stored entry at meta.index has another term, drops them all.
  virtual common::Status ApplySnapshot(const SnapshotMeta& meta) = 0;

  // Drops entries up to and including `index`, now covered by a durable snapshot.
  // REQUIRES: index is stored.
  virtual common::Status Compact(Index index) = 0;
};

}  // namespace raft
