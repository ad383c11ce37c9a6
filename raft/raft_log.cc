#include "raft/raft_log.h"

#include <algorithm>

#include "common/check.h"

namespace raft {

void RaftLog::Restore(const SnapshotMeta& snapshot, std::vector<Entry> entries) {
  snapshot_ = snapshot;
  entries_.assign(std::make_move_iterator(entries.begin()), std::make_move_iterator(entries.end()));
  for (size_t i = 0; i < entries_.size(); i++) {
    CHECK(entries_[i].index == snapshot_.index + 1 + i) << "stored entries not contiguous";
    Term prev = i == 0 ? snapshot_.term : entries_[i - 1].term;
    CHECK(entries_[i].term >= prev) << "stored terms decrease at index " << entries_[i].index;
  }
  base_bytes_ = 0;
  ends_.clear();
  for (const Entry& e : entries_) {
    ends_.push_back((ends_.empty() ? base_bytes_ : ends_.back()) + EntryPayloadBytes(e));
  }
  committed_ = snapshot_.index;
  persisted_ = handed_ = last_index();
  applied_ = applying_ = snapshot_.index;
}

std::optional<Term> RaftLog::TermAt(Index index) const {
  if (index == snapshot_.index) return snapshot_.term;
  if (index < snapshot_.index || index > last_index()) return std::nullopt;
  return entries_[index - snapshot_.index - 1].term;
}

bool RaftLog::MatchTerm(Index index, Term term) const {
  std::optional<Term> t = TermAt(index);
  return t.has_value() && *t == term;
}

const Entry& RaftLog::At(Index index) const {
  CHECK(index > snapshot_.index && index <= last_index()) << "index " << index;
  return entries_[index - snapshot_.index - 1];
}

std::vector<Entry> RaftLog::Slice(Index lo, Index hi, size_t max_bytes) const {
  CHECK(lo > snapshot_.index) << "slice from compacted index " << lo;
  hi = std::min(hi, last_index() + 1);
  std::vector<Entry> out;
  size_t bytes = 0;
  for (Index i = lo; i < hi; i++) {
    const Entry& e = At(i);
    bytes += EntryPayloadBytes(e);
    if (!out.empty() && bytes > max_bytes) break;
    out.push_back(e);
  }
  return out;
}

bool RaftLog::IsUpToDate(Index index, Term term) const {
  return term > last_term() || (term == last_term() && index >= last_index());
}

Index RaftLog::Append(const std::vector<Entry>& entries) {
  Index first_new = 0;
  for (const Entry& e : entries) {
    if (e.index <= snapshot_.index) continue;  // covered by our snapshot, hence committed
    if (e.index <= last_index()) {
      if (At(e.index).term == e.term) continue;
      CHECK(e.index > committed_) << "conflict at committed index " << e.index << " (commit "
                                  << committed_ << ")";
      entries_.resize(e.index - snapshot_.index - 1);
      ends_.resize(entries_.size());
      persisted_ = std::min(persisted_, e.index - 1);
      handed_ = std::min(handed_, e.index - 1);
    }
    CHECK(e.index == last_index() + 1) << "gap appending " << e.index << " after " << last_index();
    CHECK(e.term >= last_term()) << "term decreases appending " << e.index;
    ends_.push_back((ends_.empty() ? base_bytes_ : ends_.back()) + EntryPayloadBytes(e));
    entries_.push_back(e);
    if (first_new == 0) first_new = e.index;
  }
  return first_new;
}

std::pair<Index, Term> RaftLog::FindConflictByTerm(Index index, Term term) const {
  index = std::min(index, last_index());
  for (;;) {
    std::optional<Term> t = TermAt(index);
    if (!t.has_value()) return {index, 0};
    if (*t <= term) return {index, *t};
    index--;
  }
}

void RaftLog::RestoreSnapshot(const SnapshotMeta& snapshot) {
  snapshot_ = snapshot;
  entries_.clear();
  ends_.clear();
  committed_ = std::max(committed_, snapshot.index);
  // Nothing past the snapshot is left to hand out; what is persisted is decided when the
  // install completes.
  handed_ = snapshot.index;
  persisted_ = std::min(persisted_, snapshot.index);
}

void RaftLog::Compact(Index index) {
  CHECK(index > snapshot_.index && index <= applied_ && index <= last_index())
      << "compact to " << index;
  Term term = At(index).term;
  auto dropped = static_cast<long>(index - snapshot_.index);
  base_bytes_ = ends_[static_cast<size_t>(dropped - 1)];
  entries_.erase(entries_.begin(), entries_.begin() + dropped);
  ends_.erase(ends_.begin(), ends_.begin() + dropped);
  snapshot_ = {index, term};
}

uint64_t RaftLog::BytesBetween(Index after, Index through) const {
  after = std::max(after, snapshot_.index);
  through = std::min(through, last_index());
  if (through <= after) return 0;
  auto end_of = [this](Index i) {
    return i == snapshot_.index ? base_bytes_ : ends_[i - snapshot_.index - 1];
  };
  return end_of(through) - end_of(after);
}

void RaftLog::CommitTo(Index index) {
  if (index <= committed_) return;
  CHECK(index <= last_index()) << "commit " << index << " beyond last " << last_index();
  committed_ = index;
}

void RaftLog::PersistedTo(Index index, Term term) {
  if (index <= persisted_ || index > handed_) return;
  if (!MatchTerm(index, term)) return;  // overwritten since; a later acknowledgement covers it
  persisted_ = index;
}

std::vector<Entry> RaftLog::TakeUnpersisted() {
  std::vector<Entry> out;
  for (Index i = std::max(handed_ + 1, first_index()); i <= last_index(); i++) out.push_back(At(i));
  handed_ = last_index();
  return out;
}

bool RaftLog::HasCommitted() const {
  return applied_ >= snapshot_.index && applying_ < std::min(committed_, persisted_);
}

std::vector<Entry> RaftLog::TakeCommitted(size_t max_bytes) {
  if (!HasCommitted()) return {};
  std::vector<Entry> out = Slice(applying_ + 1, std::min(committed_, persisted_) + 1, max_bytes);
  if (!out.empty()) applying_ = out.back().index;
  return out;
}

std::string RaftLog::CheckInvariants() const {
  if (committed_ > last_index()) return "commit index beyond last index";
  if (persisted_ > last_index()) return "persisted index beyond last index";
  if (applied_ > applying_) return "applied beyond handed out";
  if (applying_ > committed_) return "applying beyond commit index";
  if (ends_.size() != entries_.size()) return "byte sums out of step with the entries";
  if (!entries_.empty()) {
    if (entries_.front().index != snapshot_.index + 1)
      return "first entry does not follow snapshot";
    if (entries_.front().term < snapshot_.term) return "first entry term below snapshot term";
    if (entries_.back().index != last_index()) return "entries not contiguous";
  }
  return "";
}

}  // namespace raft
