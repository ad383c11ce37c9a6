// Log replication: §5.3 (AppendEntries, log matching, fast back-up), §5.4.2 (committing entries
// of previous terms, Figure 8), §8 (the leader's no-op), batching and pipelining (thesis
// §10.2), and the durability rules of the Ready contract for acknowledgements.
#include <gtest/gtest.h>

#include "tests/raft/test_cluster.h"

namespace raft {
namespace {

using test::Between;
using test::Cluster;
using test::Count;
using test::MakeEntries;
using test::MakeMessage;
using test::MakeState;
using test::OfType;
using test::OfTypeTo;
using test::Select;

std::vector<Term> TermsOf(const Node& n) {
  std::vector<Term> out;
  for (Index i = n.log().first_index(); i <= n.log().last_index(); i++) {
    out.push_back(n.log().At(i).term);
  }
  return out;
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

Index MustPropose(Node& n, const std::string& data) {
  Index index = 0;
  Term term = 0;
  common::Status s = n.Propose(data, &index, &term);
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(term, n.term());
  return index;
}

// §8: "each leader commit a blank no-op entry into the log at the start of its term".
TEST(Replication, NewLeaderAppendsNoopOfItsTerm) {
  std::vector<Entry> log = MakeEntries(1, {1, 1});
  Cluster c({MakeState(1, kNoNode, 1, log), MakeState(1, kNoNode, 1, log),
             MakeState(1, kNoNode, 1, log)});
  ASSERT_TRUE(c.Elect(1));
  Node& leader = c.node(1);
  ASSERT_EQ(leader.term(), 2u);

  ASSERT_EQ(leader.log().last_index(), 3u);
  const Entry& noop = leader.log().At(3);
  EXPECT_EQ(noop.type, EntryType::kNoop);
  EXPECT_EQ(noop.term, 2u);
  EXPECT_TRUE(noop.data.empty());
  // Committing it also commits the previous term's entry 2 (§5.4.2).
  for (NodeId id = 1; id <= 3; id++) {
    EXPECT_EQ(c.node(id).log().committed(), 3u) << "node " << id;
    ASSERT_EQ(c.applied(id).size(), 3u) << "node " << id;
    EXPECT_EQ(c.applied(id)[1].index, 2u);
    EXPECT_EQ(c.applied(id)[2].type, EntryType::kNoop);
  }
}

// Batching: everything proposed before the next TakeReady travels in one AppendEntries.
TEST(Replication, ProposalsBeforeTakeReadyTravelInOneAppendPerFollower) {
  Cluster c(3);
  ASSERT_TRUE(c.Elect(1));
  Node& leader = c.node(1);
  Index first = MustPropose(leader, "a");
  MustPropose(leader, "b");
  Index last = MustPropose(leader, "c");
  ASSERT_EQ(last, first + 2);

  Ready rd = leader.TakeReady();

  EXPECT_EQ(rd.entries.size(), 3u);
  for (NodeId to : {2, 3}) {
    std::vector<Message> appends = Select(rd.messages, OfTypeTo(MessageType::kAppend, to));
    ASSERT_EQ(appends.size(), 1u) << "to " << to;
    ASSERT_EQ(appends[0].entries.size(), 3u);
    EXPECT_EQ(appends[0].index, first - 1);
    EXPECT_EQ(appends[0].entries[0].data, "a");
    EXPECT_EQ(appends[0].entries[2].data, "c");
  }
}

// Pipelining: a follower in replicate state has up to max_inflight_msgs AppendEntries in flight;
// the next one leaves when an acknowledgement frees a slot.
TEST(Replication, PipeliningUpToMaxInflightMsgs) {
  Cluster c(3, [](Config* cfg) {
    cfg->max_inflight_msgs = 3;
    cfg->max_msg_bytes = 1;  // one entry per message
  });
  ASSERT_TRUE(c.Elect(1));
  Node& leader = c.node(1);
  ASSERT_EQ(leader.progress(2)->state, Progress::State::kReplicate);
  Index first = 0;
  for (int i = 0; i < 5; i++) {
    Index index = MustPropose(leader, "p" + std::to_string(i));
    if (i == 0) first = index;
  }

  c.Process(1);

  std::vector<Message> to2 = Select(c.network(), OfTypeTo(MessageType::kAppend, 2));
  ASSERT_EQ(to2.size(), 3u);
  for (size_t i = 0; i < 3; i++) {
    ASSERT_EQ(to2[i].entries.size(), 1u);
    EXPECT_EQ(to2[i].entries[0].index, first + i);
  }
  EXPECT_EQ(leader.progress(2)->inflights.count(), 3u);
  EXPECT_TRUE(leader.progress(2)->IsPaused());

  // Acknowledge the first one: exactly one slot opens and the fourth entry goes out.
  c.Drop([](const Message& m) { return m.to != 2; });
  c.Deliver([&](const Message& m) { return !m.entries.empty() && m.entries[0].index == first; });
  c.Process(2);
  ASSERT_EQ(c.Deliver(OfTypeTo(MessageType::kAppendResponse, 1)), 1u);
  c.Process(1);
  std::vector<Message> next = Select(c.network(), [&](const Message& m) {
    return m.type == MessageType::kAppend && m.to == 2 && !m.entries.empty() &&
           m.entries[0].index > first + 2;
  });
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].entries[0].index, first + 3);
  EXPECT_EQ(leader.progress(2)->inflights.count(), 3u);
}

// §5.3 with the fast back-up of §5.3's last paragraphs: a follower with a long conflicting
// suffix is repaired in a number of round trips bounded by the conflicting terms, not entries.
TEST(Replication, FastBackupIsBoundedByTermsNotEntries) {
  std::vector<Term> leader_terms = {1};
  for (int i = 0; i < 9; i++) leader_terms.push_back(2);   // 2..10
  for (int i = 0; i < 10; i++) leader_terms.push_back(4);  // 11..20
  for (int i = 0; i < 10; i++) leader_terms.push_back(6);  // 21..30
  std::vector<Term> follower_terms = {1};
  for (int i = 0; i < 9; i++) follower_terms.push_back(2);   // 2..10
  for (int i = 0; i < 30; i++) follower_terms.push_back(3);  // 11..40
  for (int i = 0; i < 20; i++) follower_terms.push_back(5);  // 41..60
  Cluster c({MakeState(6, kNoNode, 1, MakeEntries(1, leader_terms)),
             MakeState(6, kNoNode, 1, MakeEntries(1, follower_terms)),
             MakeState(6, kNoNode, 1, MakeEntries(1, leader_terms))});

  ASSERT_TRUE(c.Elect(1));

  size_t refusals = Count(c.sent(), [](const Message& m) {
    return m.type == MessageType::kAppendResponse && m.from == 2 && m.reject;
  });
  size_t appends_with_entries = Count(c.sent(), [](const Message& m) {
    return m.type == MessageType::kAppend && m.to == 2 && !m.entries.empty();
  });
  EXPECT_GE(refusals, 1u);
  EXPECT_LE(refusals, 2u);  // two conflicting terms (3 and 5) against 50 conflicting entries
  EXPECT_LE(appends_with_entries, 3u);
  EXPECT_EQ(TermsOf(c.node(2)), TermsOf(c.node(1)));
  EXPECT_EQ(c.node(2).log().last_index(), 31u);
  // The commit index reaches it at the latest with the next heartbeat.
  c.Tick(1);
  c.Stabilize();
  EXPECT_EQ(c.node(2).log().committed(), 31u);
}

// Figure 8 and §5.4.2: "Raft never commits log entries from previous terms by counting
// replicas. Only log entries from the leader's current term are committed by counting
// replicas; once an entry from the current term has been committed ... all prior entries are
// committed indirectly."
TEST(Replication, PreviousTermEntryIsNotCommittedByCountingReplicas) {
  Cluster c({MakeState(3, kNoNode, 1, MakeEntries(1, {1, 2})),
             MakeState(3, kNoNode, 1, MakeEntries(1, {1})),
             MakeState(3, kNoNode, 1, MakeEntries(1, {1}))},
            [](Config* cfg) { cfg->max_msg_bytes = 1; });
  ASSERT_GT(c.TickUntilCampaign(1), 0);
  c.Stabilize([](const Message& m) { return m.type != MessageType::kAppend; });
  Node& leader = c.node(1);
  ASSERT_EQ(leader.role(), Role::kLeader);
  ASSERT_EQ(leader.term(), 4u);
  // Let the first probes be refused, then deliver everything except entries of term 4.
  c.Deliver(OfType(MessageType::kAppend));
  auto no_current_term_entries = [](const Message& m) {
    for (const Entry& e : m.entries) {
      if (e.term == 4) return false;
    }
    return true;
  };
  c.Stabilize(no_current_term_entries);

  for (NodeId id = 1; id <= 3; id++) {
    EXPECT_TRUE(c.node(id).log().MatchTerm(2, 2)) << "node " << id;
  }
  EXPECT_EQ(leader.progress(2)->match, 2u);
  EXPECT_EQ(leader.progress(3)->match, 2u);
  EXPECT_EQ(leader.log().committed(), 1u);  // stored on all three, still not committed
  EXPECT_EQ(c.applied_index(1), 1u);

  c.Stabilize();
  EXPECT_EQ(leader.log().committed(), 3u);
  ASSERT_EQ(c.applied(1).size(), 3u);
  EXPECT_EQ(c.applied(1)[1].index, 2u);
  EXPECT_EQ(c.applied(1)[1].term, 2u);
}

// Durability contract: the leader counts its own copy of an entry only once it is durable.
TEST(Replication, LeaderDoesNotCountItsOwnCopyBeforeOnPersisted) {
  Cluster c(3);
  ASSERT_TRUE(c.Elect(1));
  Node& leader = c.node(1);
  Index commit_before = leader.log().committed();
  Index index = MustPropose(leader, "x");

  Ready rd = leader.TakeReady();
  ASSERT_EQ(rd.entries.size(), 1u);
  for (const Message& m : rd.messages) c.Send(m);
  c.Deliver(Between(1, 2));
  c.Process(2);
  ASSERT_EQ(c.Deliver(OfTypeTo(MessageType::kAppendResponse, 1)), 1u);
  ASSERT_EQ(leader.progress(2)->match, index);

  // Node 2 and the leader make a majority of 3, but the leader's copy is not durable yet.
  EXPECT_EQ(leader.log().committed(), commit_before);

  ASSERT_TRUE(c.storage(1).Save(rd.hard_state, rd.entries, rd.must_sync).ok());
  leader.OnPersisted(index, leader.term());
  EXPECT_EQ(leader.log().committed(), index);
}

// Ready contract: an AppendEntries acknowledgement leaves only once the entries are durable.
TEST(Replication, AppendRepliesAreInMessagesAfterPersist) {
  Cluster c(
      {MakeState(1, kNoNode, 0, {}), MakeState(1, kNoNode, 0, {}), MakeState(1, kNoNode, 0, {})});
  Node& f = c.node(2);

  f.Step(Append(1, 2, 1, 0, 0, MakeEntries(1, {1, 1}), 0));
  Ready rd = f.TakeReady();

  EXPECT_EQ(rd.entries.size(), 2u);
  EXPECT_TRUE(rd.must_sync);
  EXPECT_EQ(Count(rd.messages, OfType(MessageType::kAppendResponse)), 0u);
  std::vector<Message> resp =
      Select(rd.messages_after_persist, OfTypeTo(MessageType::kAppendResponse, 1));
  ASSERT_EQ(resp.size(), 1u);
  EXPECT_FALSE(resp[0].reject);
  EXPECT_EQ(resp[0].index, 2u);
}

// Figure 2, AppendEntries: "If leaderCommit > commitIndex, set commitIndex =
// min(leaderCommit, index of last new entry)".
TEST(Replication, FollowerCommitIsMinOfLeaderCommitAndLastNewEntry) {
  Cluster c({MakeState(1, kNoNode, 0, {}),
             MakeState(1, kNoNode, 0, MakeEntries(1, {1, 1, 1, 1, 1})),
             MakeState(1, kNoNode, 0, {})});
  Node& f = c.node(2);

  // Entries 4 and 5 beyond the message are not known to match the leader's: not committed.
  f.Step(Append(1, 2, 1, 2, 1, MakeEntries(3, {1}), 5));
  EXPECT_EQ(f.log().committed(), 3u);

  f.Step(Append(1, 2, 1, 1, 1, {}, 5));
  EXPECT_EQ(f.log().committed(), 3u);  // last new entry 1; never moves back

  f.Step(Append(1, 2, 1, 5, 1, {}, 4));
  EXPECT_EQ(f.log().committed(), 4u);

  f.Step(Append(1, 2, 1, 5, 1, {}, 9));
  EXPECT_EQ(f.log().committed(), 5u);
}

// Figure 2, AppendEntries: "Reply false if log doesn't contain an entry at prevLogIndex whose
// term matches prevLogTerm", with a hint for the fast back-up.
TEST(Replication, FollowerRefusesMismatchingPrevLogEntryWithHint) {
  Cluster c({MakeState(3, kNoNode, 0, {}), MakeState(3, kNoNode, 1, MakeEntries(1, {1, 1, 2, 2})),
             MakeState(3, kNoNode, 0, {})});
  Node& f = c.node(2);

  f.Step(Append(1, 2, 3, 4, 3, MakeEntries(5, {3}), 0));
  Ready rd = f.TakeReady();
  std::vector<Message> resp =
      Select(rd.messages_after_persist, OfTypeTo(MessageType::kAppendResponse, 1));
  ASSERT_EQ(resp.size(), 1u);
  EXPECT_TRUE(resp[0].reject);
  EXPECT_EQ(resp[0].index, 4u);
  EXPECT_EQ(resp[0].reject_hint, 4u);  // the last index whose term is <= 3
  EXPECT_EQ(resp[0].log_term, 2u);
  EXPECT_EQ(f.log().last_index(), 4u);

  // prev_log_index beyond the follower's log: the hint is its last index.
  f.Step(Append(1, 2, 3, 9, 3, {}, 0));
  rd = f.TakeReady();
  resp = Select(rd.messages_after_persist, OfTypeTo(MessageType::kAppendResponse, 1));
  ASSERT_EQ(resp.size(), 1u);
  EXPECT_TRUE(resp[0].reject);
  EXPECT_EQ(resp[0].index, 9u);
  EXPECT_EQ(resp[0].reject_hint, 4u);

  // A leader whose entry at 4 has term 1: the hint skips the follower's term-2 entries.
  f.Step(Append(1, 2, 3, 4, 1, {}, 0));
  rd = f.TakeReady();
  resp = Select(rd.messages_after_persist, OfTypeTo(MessageType::kAppendResponse, 1));
  ASSERT_EQ(resp.size(), 1u);
  EXPECT_EQ(resp[0].reject_hint, 2u);
  EXPECT_EQ(resp[0].log_term, 1u);
}

// §5.3: "the leader handles inconsistencies by forcing the followers' logs to duplicate its
// own": uncommitted entries of a deposed leader are overwritten, and never applied.
TEST(Replication, NewLeaderOverwritesUncommittedEntriesOfDeposedLeader) {
  Cluster c(3);
  ASSERT_TRUE(c.Elect(1));
  c.Isolate(1);
  MustPropose(c.node(1), "lost-1");
  MustPropose(c.node(1), "lost-2");
  c.Stabilize();
  ASSERT_EQ(c.node(1).log().last_index(), 3u);

  NodeId new_leader = kNoNode;
  for (int i = 0; i < 100 && new_leader == kNoNode; i++) {
    c.Tick(2);
    c.Tick(3);
    c.Stabilize();
    for (NodeId id : {2, 3}) {
      if (c.node(id).role() == Role::kLeader) new_leader = id;
    }
  }
  ASSERT_NE(new_leader, kNoNode);
  MustPropose(c.node(new_leader), "kept");
  c.Stabilize();

  c.Heal();
  c.Tick(new_leader);
  c.Stabilize();

  Node& old = c.node(1);
  EXPECT_EQ(old.role(), Role::kFollower);
  EXPECT_EQ(TermsOf(old), TermsOf(c.node(new_leader)));
  EXPECT_EQ(old.log().committed(), c.node(new_leader).log().committed());
  for (Index i = 1; i <= old.log().last_index(); i++) {
    EXPECT_NE(old.log().At(i).data.rfind("lost", 0), 0u) << "index " << i;
  }
  for (const Entry& e : c.applied(1)) EXPECT_NE(e.data.rfind("lost", 0), 0u);
  ASSERT_FALSE(c.applied(1).empty());
  EXPECT_EQ(c.applied(1).back().data, "kept");
}

// Log Matching: after a stable run every node has applied the same entries in the same order.
TEST(Replication, AllNodesApplyTheSameEntriesInOrder) {
  Cluster c(5);
  ASSERT_TRUE(c.Elect(3));
  for (int i = 0; i < 10; i++) {
    MustPropose(c.node(3), "cmd" + std::to_string(i));
    if (i % 3 == 0) c.Stabilize();
  }
  c.Stabilize();
  ASSERT_EQ(c.applied(3).size(), 11u);  // the no-op and 10 commands
  for (NodeId id = 1; id <= 5; id++) {
    ASSERT_EQ(c.applied(id).size(), c.applied(3).size()) << "node " << id;
    for (size_t i = 0; i < c.applied(id).size(); i++) {
      EXPECT_EQ(c.applied(id)[i], c.applied(3)[i]) << "node " << id << " entry " << i;
    }
  }
}

}  // namespace
}  // namespace raft

namespace raft {
namespace {

TEST(Replication, ProposalsAreRefusedPastTheUncommittedLimit) {
  Cluster c(3, [](Config* cfg) { cfg->max_uncommitted_bytes = 200; });
  ASSERT_TRUE(c.Elect(1));
  Node& leader = c.node(1);
  int accepted = 0;
  common::Status last;
  for (int i = 0; i < 20; i++) {
    last = leader.Propose(std::string(40, 'x'), nullptr, nullptr);
    if (!last.ok()) break;
    accepted++;
  }
  // Each entry counts 40 + 24 bytes: three fit under 200, the fourth is refused.
  EXPECT_EQ(accepted, 3);
  EXPECT_EQ(last.code(), common::Status::Code::kBusy);
  // Once the followers acknowledge and the entries commit, proposals are taken again.
  c.Stabilize();
  EXPECT_TRUE(leader.Propose("y", nullptr, nullptr).ok());
}

// The leader's own copy of its entries is not yet durable (a slow disk): the followers commit
// them, but the leader cannot apply them, and past the apply-lag limit it refuses proposals.
TEST(Replication, ProposalsAreRefusedPastTheApplyLagLimit) {
  Cluster c(3, [](Config* cfg) { cfg->max_apply_lag_bytes = 200; });
  ASSERT_TRUE(c.Elect(1));
  Node& leader = c.node(1);
  std::vector<Entry> unwritten;
  int accepted = 0;
  common::Status last;
  for (int i = 0; i < 20; i++) {
    last = leader.Propose(std::string(40, 'x'), nullptr, nullptr);
    if (!last.ok()) break;
    accepted++;
    // Send the AppendEntries, keep the entries back from the leader's own storage.
    Ready rd = leader.TakeReady();
    unwritten.insert(unwritten.end(), rd.entries.begin(), rd.entries.end());
    for (const Message& m : rd.messages) c.Send(m);
    leader.Advance();
    c.Stabilize();
  }
  ASSERT_EQ(last.code(), common::Status::Code::kBusy) << last.ToString();
  // Each entry counts 40 + 24 bytes: with four committed and unapplied (256 > 200), the fifth
  // is refused; the lag is what the leader holds committed and not applied.
  EXPECT_EQ(accepted, 4);
  EXPECT_GE(leader.log().committed(), unwritten.back().index);
  EXPECT_EQ(leader.log().BytesBetween(leader.log().applied(), leader.log().committed()), 256u);
  // Once the leader's copy is durable and applied, proposals are taken again.
  ASSERT_TRUE(c.storage(1).Save(std::nullopt, unwritten, true).ok());
  leader.OnPersisted(unwritten.back().index, unwritten.back().term);
  c.Stabilize();
  EXPECT_EQ(c.applied_index(1), leader.log().committed());
  EXPECT_TRUE(leader.Propose("y", nullptr, nullptr).ok());
}

// A node whose state machine cannot take entries now (its storage stalled) pauses applying:
// it still replicates, persists and commits, and hands the entries out once resumed.
TEST(Replication, APausedNodeCommitsButAppliesOnlyOnceResumed) {
  Cluster c(3);
  ASSERT_TRUE(c.Elect(1));
  c.Stabilize();
  const size_t before = c.applied(2).size();
  c.node(2).set_apply_paused(true);
  const Index last = MustPropose(c.node(1), "a");
  MustPropose(c.node(1), "b");
  c.Stabilize();
  c.Tick(1, 3);  // heartbeats carry the commit index
  c.Stabilize();
  EXPECT_EQ(c.node(2).log().committed(), last + 1);
  EXPECT_EQ(c.node(2).log().persisted(), last + 1);
  EXPECT_EQ(c.applied(2).size(), before);
  EXPECT_EQ(c.applied(3).size(), before + 2);
  c.node(2).set_apply_paused(false);
  EXPECT_TRUE(c.node(2).HasReady());
  c.Stabilize();
  ASSERT_EQ(c.applied(2).size(), before + 2);
  EXPECT_EQ(c.applied(2), c.applied(3));
}

TEST(Replication, CaughtUpFollowerLearnsCommitWithoutWaitingForAHeartbeat) {
  // One message in flight per follower: node 3's window is full when the commit moves, so
  // the commit broadcast skips it.
  Cluster c(3, [](Config* cfg) { cfg->max_inflight_msgs = 1; });
  ASSERT_TRUE(c.Elect(1));
  Index index = MustPropose(c.node(1), "a");
  c.Process(1);
  auto involves3 = [](const Message& m) { return m.from == 3 || m.to == 3; };
  c.Stabilize([&](const Message& m) { return !involves3(m); });
  ASSERT_EQ(c.node(1).log().committed(), index);
  ASSERT_LT(c.node(3).log().committed(), index);
  // Node 3 now gets "a" (sent with the old commit index) and acknowledges it. No tick: the
  // leader must tell it the commit index on that acknowledgement.
  c.Stabilize();
  EXPECT_EQ(c.node(3).log().committed(), index);
}

}  // namespace
}  // namespace raft
