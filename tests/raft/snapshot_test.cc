// Snapshots (§7, Figure 13): the leader sends one when a follower needs compacted entries; the
// follower installs it through the Ready pipeline before acknowledging it.
#include <gtest/gtest.h>

#include "tests/raft/test_cluster.h"

namespace raft {
namespace {

using test::Cluster;
using test::Count;
using test::MakeEntries;
using test::MakeMessage;
using test::MakeState;
using test::OfType;
using test::OfTypeTo;
using test::Select;

bool IsSnapshot(const Message& m) { return m.type == MessageType::kSnapshot; }
bool NotSnapshot(const Message& m) { return m.type != MessageType::kSnapshot; }

// Node 1 leads; node 3 was cut off from the start. Entries 1..6 (the no-op and five commands)
// are committed and applied on 1 and 2, and node 1's log is compacted up to 6. Then the
// partition heals.
void SetUpCompactedLeader(Cluster& c) {
  c.Isolate(3);
  ASSERT_TRUE(c.Elect(1));
  for (int i = 0; i < 5; i++) ASSERT_TRUE(c.node(1).Propose("cmd", nullptr, nullptr).ok());
  c.Stabilize();
  ASSERT_EQ(c.applied_index(1), 6u);
  ASSERT_TRUE(c.Compact(1, 6).ok());
  ASSERT_EQ(c.node(1).log().first_index(), 7u);
  c.Heal();
}

Message Snapshot(NodeId from, NodeId to, Term term, SnapshotMeta meta) {
  Message m = MakeMessage(MessageType::kSnapshot, from, to, term);
  m.snapshot = meta;
  return m;
}

Message Append(NodeId from, NodeId to, Term term, Index prev_index, Term prev_term,
               std::vector<Entry> entries, Index commit) {
  Message m = MakeMessage(MessageType::kAppend, from, to, term);
  m.index = prev_index;
  m.log_term = prev_term;
  m.entries = std::move(entries);
  m.commit = commit;
  return m;
}

// §7: "the leader must occasionally send snapshots to followers that lag behind ... when the
// leader has already discarded the next log entry that it needs to send to a follower".
TEST(Snapshot, LeaderSendsSnapshotWhenFollowerNeedsCompactedEntries) {
  Cluster c(3);
  SetUpCompactedLeader(c);

  c.Tick(1);  // a heartbeat reaches node 3; its answer shows it needs entry 1
  c.Stabilize(NotSnapshot);

  std::vector<Message> snaps = Select(c.network(), IsSnapshot);
  ASSERT_EQ(snaps.size(), 1u);
  EXPECT_EQ(snaps[0].to, 3u);
  EXPECT_EQ(snaps[0].snapshot, (SnapshotMeta{6, 1}));
  EXPECT_TRUE(snaps[0].entries.empty());  // metadata only
  const Progress* pr = c.node(1).progress(3);
  ASSERT_NE(pr, nullptr);
  EXPECT_EQ(pr->state, Progress::State::kSnapshot);
  EXPECT_EQ(pr->pending_snapshot, 6u);

  // While it is on its way, nothing else is sent to node 3.
  c.Tick(1);
  c.Stabilize(NotSnapshot);
  EXPECT_EQ(Count(c.network(), IsSnapshot), 1u);
  EXPECT_EQ(Count(c.sent(), OfTypeTo(MessageType::kAppend, 3)), 1u);  // the lost first probe
}

// Figure 13, steps 7-8, through the Ready contract: the follower hands out the snapshot to
// install, hands out no committed entries until the install is reported, and acknowledges only
// then, with index = the snapshot's index.
TEST(Snapshot, FollowerInstallsBeforeApplyingAndAcknowledging) {
  Cluster c({MakeState(1, kNoNode, 0, {}), MakeState(1, kNoNode, 0, {}),
             MakeState(1, kNoNode, 0, MakeEntries(1, {1, 1, 1}))});
  Node& f = c.node(3);
  f.Step(Append(1, 3, 1, 3, 1, {}, 2));  // entries 1..2 committed, not yet handed out
  ASSERT_EQ(f.log().committed(), 2u);

  f.Step(Snapshot(1, 3, 1, {6, 1}));
  Ready rd = f.TakeReady();

  ASSERT_TRUE(rd.snapshot.has_value());
  EXPECT_EQ(*rd.snapshot, (SnapshotMeta{6, 1}));
  EXPECT_TRUE(rd.must_sync);
  EXPECT_TRUE(rd.committed_entries.empty());
  auto ack6 = [](const Message& m) {
    return m.type == MessageType::kAppendResponse && m.index == 6;
  };
  EXPECT_EQ(Count(rd.messages, ack6), 0u);
  EXPECT_EQ(Count(rd.messages_after_persist, ack6), 0u);
  ASSERT_TRUE(c.storage(3).ApplySnapshot(*rd.snapshot).ok());
  ASSERT_TRUE(c.storage(3).Save(rd.hard_state, rd.entries, rd.must_sync).ok());
  f.Advance();

  // Not installed yet: nothing to apply, no acknowledgement.
  rd = f.TakeReady();
  EXPECT_TRUE(rd.committed_entries.empty());
  EXPECT_EQ(Count(rd.messages, ack6), 0u);
  f.Advance();

  f.OnSnapshotInstalled({6, 1});
  EXPECT_EQ(f.log().applied(), 6u);
  EXPECT_EQ(f.log().first_index(), 7u);
  rd = f.TakeReady();
  EXPECT_TRUE(rd.committed_entries.empty());  // everything up to 6 came with the snapshot
  std::vector<Message> acks = Select(rd.messages, OfTypeTo(MessageType::kAppendResponse, 1));
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_FALSE(acks[0].reject);
  EXPECT_EQ(acks[0].index, 6u);
  f.Advance();

  // Entries after the snapshot are applied from 7 on.
  f.Step(Append(1, 3, 1, 6, 1, MakeEntries(7, {1}), 7));
  rd = f.TakeReady();
  ASSERT_EQ(rd.entries.size(), 1u);
  f.OnPersisted(7, 1);
  f.Advance();
  rd = f.TakeReady();
  ASSERT_EQ(rd.committed_entries.size(), 1u);
  EXPECT_EQ(rd.committed_entries[0].index, 7u);
}

// A snapshot that does not go beyond what the follower has committed is old news: answer with
// the commit index, install nothing.
TEST(Snapshot, SnapshotAtOrBelowCommitIndexIsAnsweredWithoutInstall) {
  Cluster c({MakeState(1, kNoNode, 0, {}), MakeState(1, kNoNode, 0, {}),
             MakeState(1, kNoNode, 0, MakeEntries(1, {1, 1, 1, 1, 1}))});
  Node& f = c.node(3);
  f.Step(Append(1, 3, 1, 5, 1, {}, 5));
  ASSERT_EQ(f.log().committed(), 5u);
  c.Process(3);
  c.Drop();

  for (Index snap : {4, 5}) {
    f.Step(Snapshot(1, 3, 1, {snap, 1}));
    Ready rd = f.TakeReady();
    EXPECT_FALSE(rd.snapshot.has_value()) << "snapshot at " << snap;
    std::vector<Message> acks =
        Select(rd.messages_after_persist, OfTypeTo(MessageType::kAppendResponse, 1));
    ASSERT_EQ(acks.size(), 1u);
    EXPECT_FALSE(acks[0].reject);
    EXPECT_EQ(acks[0].index, 5u);
    EXPECT_EQ(f.log().first_index(), 1u);
    EXPECT_EQ(f.log().last_index(), 5u);
    f.Advance();
  }
}

// Figure 13, step 6: "If existing log entry has same index and term as snapshot's last included
// entry, retain log entries following it and reply".
TEST(Snapshot, SnapshotMatchingAnExistingEntryKeepsTheEntriesAfterIt) {
  Cluster c({MakeState(1, kNoNode, 0, {}), MakeState(1, kNoNode, 0, {}),
             MakeState(1, kNoNode, 2, MakeEntries(1, {1, 1, 1, 1, 1, 1, 1}))});
  Node& f = c.node(3);

  f.Step(Snapshot(1, 3, 1, {5, 1}));
  Ready rd = f.TakeReady();

  EXPECT_FALSE(rd.snapshot.has_value());
  EXPECT_EQ(f.log().last_index(), 7u);
  EXPECT_EQ(f.log().committed(), 5u);
  std::vector<Message> acks =
      Select(rd.messages_after_persist, OfTypeTo(MessageType::kAppendResponse, 1));
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].index, 5u);
}

// A snapshot that is neither acknowledged nor refused within snapshot_timeout_ticks was lost:
// the leader probes the follower again (and so finds it still needs the snapshot).
TEST(Snapshot, SnapshotTimeoutReturnsProgressToProbe) {
  Cluster c(3, [](Config* cfg) { cfg->snapshot_timeout_ticks = 5; });
  SetUpCompactedLeader(c);
  c.Tick(1);
  c.Stabilize(NotSnapshot);
  ASSERT_EQ(c.Drop(IsSnapshot), 1u);  // the stream is lost
  ASSERT_EQ(c.node(1).progress(3)->state, Progress::State::kSnapshot);

  for (int i = 0; i < 4; i++) {
    c.Tick(1);
    c.Stabilize();
  }
  ASSERT_EQ(c.node(1).role(), Role::kLeader);
  EXPECT_EQ(c.node(1).progress(3)->state, Progress::State::kSnapshot);
  c.Tick(1);
  const Progress* pr = c.node(1).progress(3);
  ASSERT_NE(pr, nullptr);
  EXPECT_EQ(pr->state, Progress::State::kProbe);
  EXPECT_FALSE(pr->IsPaused());
  EXPECT_LE(pr->next, 7u);

  c.Stabilize(NotSnapshot);
  EXPECT_EQ(Count(c.network(), IsSnapshot), 1u);  // probed, refused, snapshot sent again
}

// The driver reports that the snapshot could not be delivered: probe at once.
TEST(Snapshot, ReportSnapshotFailureReturnsProgressToProbe) {
  Cluster c(3);
  SetUpCompactedLeader(c);
  c.Tick(1);
  c.Stabilize(NotSnapshot);
  ASSERT_EQ(c.Drop(IsSnapshot), 1u);

  c.node(1).ReportSnapshotFailure(3);

  const Progress* pr = c.node(1).progress(3);
  ASSERT_NE(pr, nullptr);
  EXPECT_EQ(pr->state, Progress::State::kProbe);
  EXPECT_FALSE(pr->IsPaused());
}

// The leader learns the snapshot was installed from the acknowledgement (index = snapshot
// index), moves the follower to replicate and streams what follows; the follower then applies
// only entries after the snapshot.
TEST(Snapshot, AcknowledgedSnapshotMovesFollowerToReplicate) {
  Cluster c(3);
  SetUpCompactedLeader(c);
  c.Tick(1);
  c.Stabilize();

  const Progress* pr = c.node(1).progress(3);
  ASSERT_NE(pr, nullptr);
  EXPECT_EQ(pr->state, Progress::State::kReplicate);
  EXPECT_EQ(pr->match, 6u);
  EXPECT_EQ(c.storage(3).state().snapshot, (SnapshotMeta{6, 1}));
  EXPECT_EQ(c.applied_index(3), 6u);
  EXPECT_TRUE(c.applied(3).empty());

  ASSERT_TRUE(c.node(1).Propose("after", nullptr, nullptr).ok());
  c.Stabilize();
  ASSERT_EQ(c.applied(3).size(), 1u);
  EXPECT_EQ(c.applied(3)[0].index, 7u);
  EXPECT_EQ(c.applied(3)[0].data, "after");
  EXPECT_EQ(c.node(3).log().last_index(), c.node(1).log().last_index());
}

}  // namespace
}  // namespace raft
