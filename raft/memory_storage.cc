#include "raft/memory_storage.h"

#include "common/check.h"

namespace raft {

common::Status MemoryStorage::Load(PersistentState* out) {
  *out = state_;
  return common::Status::OK();
}

Index MemoryStorage::last_index() const { return state_.snapshot.index + state_.entries.size(); }

common::Status MemoryStorage::Save(const std::optional<HardState>& hard_state,
                                   const std::vector<Entry>& entries, bool /*sync*/) {
  if (!entries.empty()) {
    Index first = entries.front().index;
    if (first > last_index() + 1) {
      return common::Status::InvalidArgument("entries leave a gap in the stored log");
    }
    if (first <= state_.snapshot.index) {
      return common::Status::InvalidArgument("entries overwrite the snapshot");
    }
    state_.entries.resize(first - state_.snapshot.index - 1);
    state_.entries.insert(state_.entries.end(), entries.begin(), entries.end());
  }
  if (hard_state) state_.hard_state = *hard_state;
  return common::Status::OK();
}

common::Status MemoryStorage::ApplySnapshot(const SnapshotMeta& meta) {
  if (meta.index <= state_.snapshot.index) return common::Status::OK();
  std::vector<Entry> kept;
  if (meta.index < last_index() &&
      state_.entries[meta.index - state_.snapshot.index - 1].term == meta.term) {
    kept.assign(state_.entries.begin() + static_cast<long>(meta.index - state_.snapshot.index),
                state_.entries.end());
  }
  state_.snapshot = meta;
  state_.entries = std::move(kept);
  if (state_.hard_state.commit < meta.index) state_.hard_state.commit = meta.index;
  return common::Status::OK();
}

common::Status MemoryStorage::Compact(Index index) {
  if (index <= state_.snapshot.index) return common::Status::OK();
  if (index > last_index()) return common::Status::InvalidArgument("compact beyond last index");
  size_t drop = index - state_.snapshot.index;
  Term term = state_.entries[drop - 1].term;
  state_.entries.erase(state_.entries.begin(), state_.entries.begin() + static_cast<long>(drop));
  state_.snapshot = {index, term};
  return common::Status::OK();
}

size_t MemoryStorage::Bytes() const {
  size_t bytes = 24;  // term, vote, commit
  for (const Entry& e : state_.entries) bytes += EntryPayloadBytes(e);
  return bytes;
}

}  // namespace raft
