// RaftLog: the log rules of §5.3 and §5.4.1 on the in-memory log.
#include "raft/raft_log.h"

#include <gtest/gtest.h>

#include "tests/raft/test_cluster.h"

namespace raft {
namespace {

using test::MakeEntries;

// A log restored from `terms` (entries 1..n), all persisted, nothing committed.
RaftLog LogWithTerms(const std::vector<Term>& terms, SnapshotMeta snapshot = {}) {
  RaftLog log;
  log.Restore(snapshot, MakeEntries(snapshot.index + 1, terms));
  return log;
}

std::vector<Term> TermsOf(const RaftLog& log) {
  std::vector<Term> out;
  for (Index i = log.first_index(); i <= log.last_index(); i++) out.push_back(log.At(i).term);
  return out;
}

// §5.3: "If an existing entry conflicts with a new one (same index but different terms), delete
// the existing entry and all that follow it."
TEST(RaftLog, AppendTruncatesConflictingSuffix) {
  RaftLog log = LogWithTerms({1, 1, 2, 2, 2});
  ASSERT_EQ(log.persisted(), 5u);

  Index first_new = log.Append(MakeEntries(3, {3}));

  EXPECT_EQ(first_new, 3u);
  EXPECT_EQ(log.last_index(), 3u);
  EXPECT_EQ(TermsOf(log), (std::vector<Term>{1, 1, 3}));
  EXPECT_FALSE(log.TermAt(4).has_value());
  // The overwritten entries are no longer durable here: only 1..2 remain persisted, and the
  // new entry is handed out again for persistence.
  EXPECT_EQ(log.persisted(), 2u);
  std::vector<Entry> unpersisted = log.TakeUnpersisted();
  ASSERT_EQ(unpersisted.size(), 1u);
  EXPECT_EQ(unpersisted[0].index, 3u);
  EXPECT_EQ(unpersisted[0].term, 3u);
}

// Entries already present with the same term are skipped: a late, shorter AppendEntries must
// not truncate entries that follow it (§5.3, Figure 2 step 3 only deletes on a conflict).
TEST(RaftLog, AppendSkipsMatchingEntries) {
  RaftLog log = LogWithTerms({1, 1, 2, 2});

  EXPECT_EQ(log.Append(MakeEntries(2, {1, 2})), 0u);
  EXPECT_EQ(log.last_index(), 4u);
  EXPECT_EQ(log.persisted(), 4u);
  EXPECT_FALSE(log.HasUnpersisted());

  EXPECT_EQ(log.Append(MakeEntries(3, {2, 2, 3})), 5u);
  EXPECT_EQ(TermsOf(log), (std::vector<Term>{1, 1, 2, 2, 3}));
  EXPECT_EQ(log.persisted(), 4u);
  std::vector<Entry> unpersisted = log.TakeUnpersisted();
  ASSERT_EQ(unpersisted.size(), 1u);
  EXPECT_EQ(unpersisted[0].index, 5u);
}

TEST(RaftLog, FindConflictByTerm) {
  //                        index: 1  2  3  4  5  6  7  8  9  10
  RaftLog log = LogWithTerms({1, 1, 1, 4, 4, 5, 5, 6, 6, 6});

  EXPECT_EQ(log.FindConflictByTerm(10, 6), (std::pair<Index, Term>{10, 6}));
  EXPECT_EQ(log.FindConflictByTerm(10, 5), (std::pair<Index, Term>{7, 5}));
  EXPECT_EQ(log.FindConflictByTerm(10, 3), (std::pair<Index, Term>{3, 1}));
  EXPECT_EQ(log.FindConflictByTerm(5, 4), (std::pair<Index, Term>{5, 4}));
  // Beyond the last index: starts from the last index.
  EXPECT_EQ(log.FindConflictByTerm(20, 6), (std::pair<Index, Term>{10, 6}));
  // No entry with a term that low: index 0 (the empty prefix, term 0).
  EXPECT_EQ(log.FindConflictByTerm(10, 0), (std::pair<Index, Term>{0, 0}));

  // With a snapshot at 3 (term 1), the snapshot index answers its term; below it nothing is
  // known.
  RaftLog compacted = LogWithTerms({4, 4, 5}, SnapshotMeta{3, 1});
  EXPECT_EQ(compacted.FindConflictByTerm(6, 2), (std::pair<Index, Term>{3, 1}));
  EXPECT_EQ(compacted.FindConflictByTerm(6, 0), (std::pair<Index, Term>{2, 0}));
}

// §5.4.1: "If the logs have last entries with different terms, then the log with the later term
// is more up-to-date. If the logs end with the same term, then whichever log is longer is more
// up-to-date."
TEST(RaftLog, IsUpToDate) {
  RaftLog log = LogWithTerms({1, 1, 2, 3, 3});  // last (5, 3)

  EXPECT_TRUE(log.IsUpToDate(5, 3));     // identical
  EXPECT_TRUE(log.IsUpToDate(6, 3));     // same term, longer
  EXPECT_FALSE(log.IsUpToDate(4, 3));    // same term, shorter
  EXPECT_TRUE(log.IsUpToDate(1, 4));     // later term wins even when much shorter
  EXPECT_FALSE(log.IsUpToDate(100, 2));  // earlier term loses even when much longer
  EXPECT_FALSE(log.IsUpToDate(0, 0));

  RaftLog empty;
  EXPECT_TRUE(empty.IsUpToDate(0, 0));
}

TEST(RaftLog, Compact) {
  RaftLog log = LogWithTerms({1, 1, 2, 2, 3});
  log.CommitTo(5);
  ASSERT_EQ(log.TakeCommitted(1 << 20).size(), 5u);
  log.AppliedAll();
  ASSERT_EQ(log.applied(), 5u);

  log.Compact(3);

  EXPECT_EQ(log.snapshot(), (SnapshotMeta{3, 2}));
  EXPECT_EQ(log.first_index(), 4u);
  EXPECT_EQ(log.last_index(), 5u);
  EXPECT_EQ(log.TermAt(3), std::optional<Term>(2));  // the snapshot's own index keeps its term
  EXPECT_FALSE(log.TermAt(2).has_value());
  EXPECT_EQ(log.At(4).term, 2u);
  EXPECT_EQ(log.Slice(4, 6, 1 << 20).size(), 2u);
  EXPECT_TRUE(log.MatchTerm(3, 2));
  EXPECT_FALSE(log.MatchTerm(2, 1));
  EXPECT_EQ(log.CheckInvariants(), "");
}

TEST(RaftLog, BytesBetweenFollowsAppendsTruncationsAndCompaction) {
  RaftLog log;
  log.Restore({2, 1}, {});
  auto entry = [](Index index, Term term, size_t size) {
    Entry e;
    e.index = index;
    e.term = term;
    e.data = std::string(size, 'v');
    return e;
  };
  // Commits, persists and applies everything up to `index`, then compacts to `to`.
  auto apply_and_compact = [&log](Index index, Term term, Index to) {
    log.CommitTo(index);
    log.TakeUnpersisted();
    log.PersistedTo(index, term);
    EXPECT_FALSE(log.TakeCommitted(1 << 20).empty());
    log.AppliedAll();
    log.Compact(to);
  };
  const uint64_t overhead = EntryPayloadBytes(entry(1, 1, 0));
  log.Append({entry(3, 1, 10), entry(4, 1, 20), entry(5, 1, 30)});
  EXPECT_EQ(log.bytes(), 60 + 3 * overhead);
  EXPECT_EQ(log.BytesBetween(3, 5), 50 + 2 * overhead);
  EXPECT_EQ(log.BytesBetween(4, 4), 0u);
  // Clamped to what the log holds.
  EXPECT_EQ(log.BytesBetween(0, 100), log.bytes());
  // A conflicting suffix is replaced: its bytes with it.
  log.Append({entry(4, 2, 5)});
  EXPECT_EQ(log.bytes(), 15 + 2 * overhead);
  log.Append({entry(5, 2, 7)});
  apply_and_compact(5, 2, 4);
  EXPECT_EQ(log.bytes(), 7 + overhead);
  EXPECT_EQ(log.BytesBetween(4, 5), 7 + overhead);
  EXPECT_EQ(log.BytesBetween(0, 4), 0u);
  log.Append({entry(6, 2, 100)});
  EXPECT_EQ(log.BytesBetween(5, 6), 100 + overhead);
  EXPECT_EQ(log.CheckInvariants(), "");
  apply_and_compact(6, 2, 6);
  EXPECT_EQ(log.bytes(), 0u);
}

TEST(RaftLog, SliceRespectsMaxBytesButReturnsAtLeastOneEntry) {
  RaftLog log;
  std::vector<Entry> entries = MakeEntries(1, {1, 1, 1, 1, 1});
  for (Entry& e : entries) e.data = std::string(100, 'x');  // 124 bytes each
  log.Restore({}, entries);
  const size_t one = EntryPayloadBytes(entries[0]);
  ASSERT_EQ(one, 124u);

  EXPECT_EQ(log.Slice(1, 6, 2 * one).size(), 2u);
  EXPECT_EQ(log.Slice(1, 6, 2 * one + 1).size(), 2u);
  EXPECT_EQ(log.Slice(1, 6, 3 * one).size(), 3u);
  std::vector<Entry> tiny = log.Slice(2, 6, 1);
  ASSERT_EQ(tiny.size(), 1u);  // larger than the limit, but never empty
  EXPECT_EQ(tiny[0].index, 2u);
  EXPECT_EQ(log.Slice(1, 6, 1 << 20).size(), 5u);
  EXPECT_EQ(log.Slice(4, 100, 1 << 20).size(), 2u);  // hi is clamped to the last index
  EXPECT_TRUE(log.Slice(3, 3, 1 << 20).empty());
}

// Ready contract: an entry is applied only once it is committed and durable on this node.
TEST(RaftLog, TakeCommittedIsLimitedByPersistedIndex) {
  RaftLog log;
  log.Append(MakeEntries(1, {1, 1, 1, 1, 1}));
  log.CommitTo(5);
  EXPECT_EQ(log.persisted(), 0u);
  EXPECT_FALSE(log.HasCommitted());
  EXPECT_TRUE(log.TakeCommitted(1 << 20).empty());

  ASSERT_EQ(log.TakeUnpersisted().size(), 5u);
  log.PersistedTo(3, 1);
  std::vector<Entry> first = log.TakeCommitted(1 << 20);
  ASSERT_EQ(first.size(), 3u);
  EXPECT_EQ(first.front().index, 1u);
  EXPECT_EQ(first.back().index, 3u);

  log.PersistedTo(5, 2);  // wrong term: not this log's entry, ignored
  EXPECT_EQ(log.persisted(), 3u);
  EXPECT_TRUE(log.TakeCommitted(1 << 20).empty());

  log.PersistedTo(5, 1);
  std::vector<Entry> rest = log.TakeCommitted(1 << 20);
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_EQ(rest.front().index, 4u);
  EXPECT_EQ(rest.back().index, 5u);
}

TEST(RaftLog, RestoreSnapshotWithholdsEntriesUntilApplied) {
  RaftLog log = LogWithTerms({1, 1, 1});
  log.CommitTo(2);  // entries 1..2 committed and durable, not yet handed out

  log.RestoreSnapshot({10, 3});

  EXPECT_EQ(log.first_index(), 11u);
  EXPECT_EQ(log.last_index(), 10u);
  EXPECT_EQ(log.last_term(), 3u);
  EXPECT_EQ(log.committed(), 10u);
  EXPECT_FALSE(log.HasCommitted());  // the state machine must take the snapshot first
  EXPECT_TRUE(log.TakeCommitted(1 << 20).empty());
  log.SetApplied(10);
  EXPECT_EQ(log.applied(), 10u);
  EXPECT_FALSE(log.HasCommitted());
}

}  // namespace
}  // namespace raft
