// Progress: what a leader knows of one follower's log, and the flow control of what it sends
// it (thesis §10.2: batching and pipelining with a bounded in-flight window).
//
//   kProbe:     the leader does not know where the follower's log matches; it sends one
//               AppendEntries at a time and waits for the answer (or the next heartbeat reply).
//   kReplicate: the follower is known to match up to `match`; the leader streams entries
//               optimistically, up to the in-flight limits.
//   kSnapshot:  the follower needs entries that were compacted; a snapshot is on its way and
//               nothing else is sent until it is acknowledged or times out.
//
// Thread-safety: none; owned by one Node.
#pragma once

#include <cstddef>
#include <deque>
#include <utility>

#include "raft/types.h"

namespace raft {

// The AppendEntries sent to one follower and not yet acknowledged: (last index, bytes) each.
class Inflights {
 public:
  Inflights(size_t max_msgs, size_t max_bytes) : max_msgs_(max_msgs), max_bytes_(max_bytes) {}

  void Add(Index last, size_t bytes);
  // Forgets every message whose last index is <= `index` (acknowledged).
  void FreeLE(Index index);
  void FreeFirst();
  void Reset();
  bool Full() const { return items_.size() >= max_msgs_ || bytes_ >= max_bytes_; }
  size_t count() const { return items_.size(); }
  size_t bytes() const { return bytes_; }

 private:
  size_t max_msgs_;
  size_t max_bytes_;
  std::deque<std::pair<Index, size_t>> items_;
  size_t bytes_ = 0;
};

struct Progress {
  enum class State { kProbe, kReplicate, kSnapshot };

  Progress(size_t max_inflight_msgs, size_t max_inflight_bytes)
      : inflights(max_inflight_msgs, max_inflight_bytes) {}

  Index match = 0;  // match_index: highest index known to be replicated there
  Index next = 1;   // next_index: next entry to send
  State state = State::kProbe;
  bool probe_sent = false;     // kProbe: an AppendEntries is out; wait for its answer
  Index pending_snapshot = 0;  // kSnapshot: index of the snapshot sent
  int snapshot_elapsed = 0;    // kSnapshot: ticks since it was sent
  bool recent_active = false;  // heard from in the current check-quorum window
  Index sent_commit = 0;       // highest commit index this follower was told it may apply
  Inflights inflights;

  void BecomeProbe();
  void BecomeReplicate();
  void BecomeSnapshot(Index snapshot_index);

  // An acknowledgement up to `index`: returns false if it is stale.
  bool MaybeUpdate(Index index);
  // A refusal of the AppendEntries whose prev_log_index was `rejected`; `next_hint` is where
  // the leader should probe next. Returns false if the refusal is stale.
  bool MaybeDecrTo(Index rejected, Index next_hint);

  bool IsPaused() const;
};

const char* ProgressStateName(Progress::State state);

}  // namespace raft
