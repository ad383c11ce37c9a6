// Config::bugs: each switch must really break the rule it names, or the simulator and the lab
// suite that are meant to catch it prove nothing. Each test mirrors a correct-behaviour test in
// election_test.cc or replication_test.cc.
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
using test::Select;

Cluster::ConfigTweak WithBug(uint32_t bug) {
  return [bug](Config* c) { c->bugs = bug; };
}

Message VoteRequest(NodeId from, NodeId to, Term term, Index last_index, Term last_term) {
  Message m = MakeMessage(MessageType::kVote, from, to, term);
  m.index = last_index;
  m.log_term = last_term;
  return m;
}

bool Granted(Node& n, NodeId to) {
  Ready rd = n.TakeReady();
  std::vector<Message> all = rd.messages;
  all.insert(all.end(), rd.messages_after_persist.begin(), rd.messages_after_persist.end());
  std::vector<Message> resp = Select(
      all, [to](const Message& m) { return m.type == MessageType::kVoteResponse && m.to == to; });
  EXPECT_EQ(resp.size(), 1u);
  return resp.size() == 1 && !resp[0].reject;
}

// Compare Election.GrantsAtMostOneVotePerTerm.
TEST(NodeBugSwitch, DoubleVoteGrantsTwoVotesInOneTerm) {
  Cluster c(3, WithBug(kBugDoubleVote));
  Node& n = c.node(1);

  n.Step(VoteRequest(2, 1, 1, 0, 0));
  EXPECT_TRUE(Granted(n, 2));
  n.Step(VoteRequest(3, 1, 1, 0, 0));
  EXPECT_TRUE(Granted(n, 3));
  EXPECT_EQ(n.term(), 1u);
}

// Compare Election.DeniesCandidateWithLessUpToDateLog.
TEST(NodeBugSwitch, NoElectionRestrictionGrantsVoteToStaleLog) {
  Cluster c({MakeState(2, kNoNode, 0, MakeEntries(1, {1, 2})), MakeState(2, kNoNode, 0, {}),
             MakeState(2, kNoNode, 0, {})},
            WithBug(kBugNoElectionRestriction));
  Node& n = c.node(1);

  n.Step(VoteRequest(2, 1, 3, 1, 1));

  EXPECT_TRUE(Granted(n, 2));
  EXPECT_EQ(n.voted_for(), 2u);
}

// Compare Replication.AppendRepliesAreInMessagesAfterPersist.
TEST(NodeBugSwitch, ReplyBeforePersistSendsAppendReplyAtOnce) {
  Cluster c(
      {MakeState(1, kNoNode, 0, {}), MakeState(1, kNoNode, 0, {}), MakeState(1, kNoNode, 0, {})},
      WithBug(kBugReplyBeforePersist));
  Node& f = c.node(2);
  Message m = MakeMessage(MessageType::kAppend, 1, 2, 1);
  m.entries = MakeEntries(1, {1});

  f.Step(m);
  Ready rd = f.TakeReady();

  EXPECT_EQ(rd.entries.size(), 1u);
  EXPECT_EQ(Count(rd.messages, OfType(MessageType::kAppendResponse)), 1u);
  EXPECT_EQ(Count(rd.messages_after_persist, OfType(MessageType::kAppendResponse)), 0u);
}

// Compare Replication.PreviousTermEntryIsNotCommittedByCountingReplicas.
TEST(NodeBugSwitch, CommitPreviousTermCommitsByCountingReplicas) {
  Cluster c({MakeState(3, kNoNode, 1, MakeEntries(1, {1, 2})),
             MakeState(3, kNoNode, 1, MakeEntries(1, {1})),
             MakeState(3, kNoNode, 1, MakeEntries(1, {1}))},
            [](Config* cfg) {
              cfg->max_msg_bytes = 1;
              cfg->bugs = kBugCommitPreviousTerm;
            });
  ASSERT_GT(c.TickUntilCampaign(1), 0);
  c.Stabilize([](const Message& m) { return m.type != MessageType::kAppend; });
  Node& leader = c.node(1);
  ASSERT_EQ(leader.role(), Role::kLeader);
  c.Deliver(OfType(MessageType::kAppend));
  c.Stabilize([](const Message& m) {
    for (const Entry& e : m.entries) {
      if (e.term == 4) return false;
    }
    return true;
  });

  EXPECT_EQ(leader.progress(2)->match, 2u);
  EXPECT_EQ(leader.log().committed(), 2u);  // term-2 entry committed by counting replicas
}

}  // namespace
}  // namespace raft
