#include "raft/progress.h"

#include <algorithm>

namespace raft {

void Inflights::Add(Index last, size_t bytes) {
  items_.emplace_back(last, bytes);
  bytes_ += bytes;
}

void Inflights::FreeLE(Index index) {
  while (!items_.empty() && items_.front().first <= index) {
    bytes_ -= items_.front().second;
    items_.pop_front();
  }
}

void Inflights::FreeFirst() {
  if (items_.empty()) return;
  bytes_ -= items_.front().second;
  items_.pop_front();
}

void Inflights::Reset() {
  items_.clear();
  bytes_ = 0;
}

void Progress::BecomeProbe() {
  if (state == State::kSnapshot) {
    next = std::max(match + 1, pending_snapshot + 1);
  } else {
    next = match + 1;
  }
  state = State::kProbe;
  probe_sent = false;
  pending_snapshot = 0;
  inflights.Reset();
}

void Progress::BecomeReplicate() {
  state = State::kReplicate;
  next = match + 1;
  probe_sent = false;
  inflights.Reset();
}

void Progress::BecomeSnapshot(Index snapshot_index) {
  state = State::kSnapshot;
  pending_snapshot = snapshot_index;
  snapshot_elapsed = 0;
  probe_sent = false;
  inflights.Reset();
}

bool Progress::MaybeUpdate(Index index) {
  bool updated = false;
  if (match < index) {
    match = index;
    updated = true;
    probe_sent = false;
  }
  next = std::max(next, index + 1);
  return updated;
}

bool Progress::MaybeDecrTo(Index rejected, Index next_hint) {
  if (state == State::kReplicate) {
    // Refusals at or below match are stale; otherwise restart from just after match.
    if (rejected <= match) return false;
    next = match + 1;
    return true;
  }
  // In probe, only the refusal of the last probe counts.
  if (next == 0 || next - 1 != rejected) return false;
  next = std::max(std::min(rejected, next_hint), match + 1);
  probe_sent = false;
  return true;
}

bool Progress::IsPaused() const {
  switch (state) {
    case State::kProbe:
      return probe_sent;
    case State::kReplicate:
      return inflights.Full();
    case State::kSnapshot:
      return true;
  }
  return true;
}

const char* ProgressStateName(Progress::State state) {
  switch (state) {
    case Progress::State::kProbe:
      return "probe";
    case Progress::State::kReplicate:
      return "replicate";
    case Progress::State::kSnapshot:
      return "snapshot";
  }
  return "?";
}

}  // namespace raft
