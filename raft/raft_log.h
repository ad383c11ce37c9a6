// RaftLog: a node's view of its log, in memory: the snapshot it starts after and the entries
// that follow. It also tracks how far the log is committed, persisted and handed out.
//
//   snapshot.index <= applied <= committed <= last_index(), persisted <= last_index()
//   (applied < snapshot.index only while a received snapshot is being installed)
//
// Thread-safety: none; owned by one Node.
#pragma once

#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "raft/types.h"

namespace raft {

class RaftLog {
 public:
  RaftLog() = default;

  // Restores the log from persisted state. REQUIRES: entries contiguous from snapshot.index + 1.
  void Restore(const SnapshotMeta& snapshot, std::vector<Entry> entries);

  const SnapshotMeta& snapshot() const { return snapshot_; }
  Index first_index() const { return snapshot_.index + 1; }
  Index last_index() const { return snapshot_.index + entries_.size(); }
  Term last_term() const { return entries_.empty() ? snapshot_.term : entries_.back().term; }

  // The term of the entry at `index`, or nullopt if it is compacted (below the snapshot) or
  // beyond the last index. The snapshot's own index answers its term.
  std::optional<Term> TermAt(Index index) const;
  bool MatchTerm(Index index, Term term) const;

  // The entry at `index`. REQUIRES: first_index() <= index <= last_index().
  const Entry& At(Index index) const;

  // Entries in [lo, hi), stopping once `max_bytes` is exceeded (at least one entry is returned
  // when the range is not empty). REQUIRES: first_index() <= lo.
  std::vector<Entry> Slice(Index lo, Index hi, size_t max_bytes) const;

  // §5.4.1: a log is at least as up-to-date as (last_index, last_term) when its last term is
  // greater, or equal with a last index at least as large.
  bool IsUpToDate(Index last_index, Term last_term) const;

  // Appends `entries`, first truncating any conflicting suffix (§5.3: "If an existing entry
  // conflicts with a new one (same index but different terms), delete the existing entry and
  // all that follow it"). Entries already present with the same term are skipped. Returns the
  // index of the first entry actually written, or 0 if nothing changed.
  // REQUIRES: entries contiguous, entries.front().index <= last_index() + 1, and no conflict
  // at or below `committed` (a broken invariant panics).
  Index Append(const std::vector<Entry>& entries);

  // The last index <= `index` whose term is <= `term` (or the first unknown one below the
  // snapshot); used for fast conflict back-up. Returns {index, term at index}.
  std::pair<Index, Term> FindConflictByTerm(Index index, Term term) const;

  // Payload bytes (EntryPayloadBytes) of the entries in (after, through], clamped to what the
  // log holds: what a follower that matches up to `after` still lacks of the log, or what the
  // log holds between two points. O(1).
  uint64_t BytesBetween(Index after, Index through) const;
  // Payload bytes of every entry the log holds.
  uint64_t bytes() const { return BytesBetween(snapshot_.index, last_index()); }

  // Replaces the whole log by a snapshot (InstallSnapshot, Figure 13 step 7).
  void RestoreSnapshot(const SnapshotMeta& snapshot);

  // Drops entries up to and including `index`. REQUIRES: snapshot index < index <= applied.
  void Compact(Index index);

  Index committed() const { return committed_; }
  void CommitTo(Index index);

  Index persisted() const { return persisted_; }
  // Entries up to (index, term) are durable, if the log still holds that entry.
  void PersistedTo(Index index, Term term);
  void SetPersisted(Index index) { persisted_ = index; }

  // Entries not yet handed to the driver for persistence, and marking them handed.
  std::vector<Entry> TakeUnpersisted();
  bool HasUnpersisted() const { return handed_ < last_index(); }

  // Committed entries that are durable here and not yet handed out for applying, and marking
  // them handed. None while a snapshot install is pending (applied < snapshot index).
  std::vector<Entry> TakeCommitted(size_t max_bytes);
  bool HasCommitted() const;

  Index applied() const { return applied_; }
  // The state machine applied everything handed out so far (Ready::committed_entries).
  void AppliedAll() { applied_ = applying_; }
  // The state machine now holds the snapshot up to `index`.
  void SetApplied(Index index) { applied_ = applying_ = index; }

  // Checks the log's internal invariants; returns "" or a description of the violation.
  // Cheap: O(1).
  std::string CheckInvariants() const;

 private:
  SnapshotMeta snapshot_;
  std::deque<Entry> entries_;  // entries_[i].index == snapshot_.index + 1 + i
  // Running sums of payload bytes: ends_[i] = base_bytes_ + the bytes of entries_[0..i]. Only
  // differences mean anything; base_bytes_ stands for everything compacted away.
  std::deque<uint64_t> ends_;
  uint64_t base_bytes_ = 0;
  Index committed_ = 0;
  Index persisted_ = 0;  // entries up to here are durable
  Index handed_ = 0;     // entries up to here were handed out for persistence
  Index applying_ = 0;   // entries up to here were handed out for applying
  Index applied_ = 0;    // entries up to here are applied (or covered by an installed snapshot)
};

}  // namespace raft
