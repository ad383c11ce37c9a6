// CommandCounts: how many client commands the applied log entries hold, so that log
// compaction counts writes rather than entries. A leader puts the writes of one loop pass into
// one batch entry (protocol::EncodeBatch), so under a pipelined load an entry holds hundreds
// of them; a trigger of `snapshot-entries` entries, or a tail of `snapshot-keep-entries`
// entries, would then let the log grow a hundredfold before anything but the byte limit acts.
//
//   counts.Add(index, commands);         // each applied entry, in index order
//   counts.total();                      // commands recorded so far (never decreases)
//   counts.TailStart(applied, keep);     // where a tail of `keep` commands starts
//   counts.DropThrough(index);           // once the log no longer holds them
//
// An entry that holds no command (a leader's no-op, a configuration change) counts as one,
// like an entry applied before this process started and so never recorded: below the first
// recorded entry, TailStart counts one command per entry. Memory: 16 bytes per entry recorded
// and not dropped, that is per entry in the log's applied part.
//
// Thread-safety: none; the loop thread owns it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>

#include "raft/types.h"

namespace server {

class CommandCounts {
 public:
  // `index` is above every index recorded and follows the last one (after Clear, anything);
  // `commands` of 0 counts as 1.
  void Add(raft::Index index, uint64_t commands) {
    entries_.push_back({index, total_});
    total_ += std::max<uint64_t>(commands, 1);
  }

  uint64_t total() const { return total_; }
  size_t size() const { return entries_.size(); }

  // The lowest index `to` such that the entries in (to, last] hold at most `keep` commands,
  // where `last` is the last index recorded (with nothing recorded, the caller's `applied`).
  // Those entries are what a compaction up to `to` keeps.
  raft::Index TailStart(raft::Index applied, uint64_t keep) const {
    if (entries_.empty()) return applied > keep ? applied - keep : 0;
    // The first entry from which on everything recorded fits in `keep`.
    auto it = std::lower_bound(entries_.begin(), entries_.end(), total_ - std::min(keep, total_),
                               [](const Counted& c, uint64_t before) { return c.before < before; });
    if (it == entries_.end()) return entries_.back().index;  // the last entry alone holds more
    if (it != entries_.begin()) return it->index - 1;
    // All of it fits; below the first recorded entry, one command per entry.
    const uint64_t more = keep - (total_ - it->before);
    const raft::Index below = it->index - 1;
    return below > more ? below - more : 0;
  }

  // Forgets the entries up to `index` (the log dropped them).
  void DropThrough(raft::Index index) {
    while (!entries_.empty() && entries_.front().index <= index) entries_.pop_front();
  }

  // Forgets every entry (a snapshot was installed over them); total() stays.
  void Clear() { entries_.clear(); }

 private:
  struct Counted {
    raft::Index index;
    uint64_t before;  // total() before this entry was recorded
  };
  std::deque<Counted> entries_;
  uint64_t total_ = 0;
};

}  // namespace server
