// MemoryStorage: LogStorage in memory, for tests and the simulator. Everything "written" is
// durable at once; the simulator models late durability by calling Save only when a simulated
// sync completes, so a crash keeps exactly what was saved.
//
// Thread-safety: none.
#pragma once

#include "raft/log_storage.h"

namespace raft {

class MemoryStorage : public LogStorage {
 public:
  common::Status Load(PersistentState* out) override;
  common::Status Save(const std::optional<HardState>& hard_state, const std::vector<Entry>& entries,
                      bool sync) override;
  common::Status ApplySnapshot(const SnapshotMeta& meta) override;
  common::Status Compact(Index index) override;

  const PersistentState& state() const { return state_; }
  Index last_index() const;
  // Bytes the stored Raft state would take: hard state plus entries (the lab's RaftStateSize).
  size_t Bytes() const;

 private:
  PersistentState state_;
};

}  // namespace raft
