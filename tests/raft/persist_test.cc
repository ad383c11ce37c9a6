// Restart from storage (Figure 2, "Persistent state on all servers: updated on stable storage
// before responding to RPCs"): what the driver saved from the Ready pipeline is enough to
// restart a node without breaking a promise it made.
#include <gtest/gtest.h>

#include "tests/raft/test_cluster.h"

namespace raft {
namespace {

using test::Cluster;
using test::MakeEntries;
using test::MakeMessage;
using test::MakeState;
using test::OfType;
using test::Select;

Message VoteRequest(NodeId from, NodeId to, Term term, Index last_index, Term last_term) {
  Message m = MakeMessage(MessageType::kVote, from, to, term);
  m.index = last_index;
  m.log_term = last_term;
  return m;
}

std::vector<Entry> LogOf(const Node& n) {
  std::vector<Entry> out;
  for (Index i = n.log().first_index(); i <= n.log().last_index(); i++) {
    out.push_back(n.log().At(i));
  }
  return out;
}

TEST(Persist, RestartKeepsTermVoteAndLog) {
  Cluster c(3);
  ASSERT_TRUE(c.Elect(1));
  ASSERT_TRUE(c.node(1).Propose("a", nullptr, nullptr).ok());
  ASSERT_TRUE(c.node(1).Propose("b", nullptr, nullptr).ok());
  c.Stabilize();
  for (NodeId id : {1, 2}) {
    Term term = c.node(id).term();
    NodeId vote = c.node(id).voted_for();
    std::vector<Entry> log = LogOf(c.node(id));
    ASSERT_EQ(log.size(), 3u);

    c.Restart(id, c.applied_index(id));

    EXPECT_EQ(c.node(id).term(), term) << "node " << id;
    EXPECT_EQ(c.node(id).voted_for(), vote) << "node " << id;
    EXPECT_EQ(vote, 1u);
    EXPECT_EQ(LogOf(c.node(id)), log) << "node " << id;
    EXPECT_EQ(c.node(id).log().committed(), 3u) << "node " << id;
    EXPECT_EQ(c.node(id).role(), Role::kFollower);
  }
}

// Election Safety across a crash: the vote is durable, so a restarted voter still refuses a
// second candidate in the same term.
TEST(Persist, RestartedVoterDoesNotVoteTwiceInATerm) {
  Cluster c(3);
  c.node(1).Step(VoteRequest(2, 1, 5, 0, 0));
  Ready rd = c.Process(1);
  ASSERT_EQ(Select(rd.messages_after_persist, OfType(MessageType::kVoteResponse)).size(), 1u);
  c.Drop();

  c.Restart(1);
  EXPECT_EQ(c.node(1).term(), 5u);
  EXPECT_EQ(c.node(1).voted_for(), 2u);
  c.node(1).Step(VoteRequest(3, 1, 5, 0, 0));
  rd = c.node(1).TakeReady();
  std::vector<Message> resp = Select(rd.messages_after_persist, OfType(MessageType::kVoteResponse));
  ASSERT_EQ(resp.size(), 1u);
  EXPECT_TRUE(resp[0].reject);
  EXPECT_EQ(c.node(1).voted_for(), 2u);
}

// Config::applied: the state machine already holds entries up to there; resume after them.
TEST(Persist, RestartWithAppliedResumesApplyingAfterIt) {
  Cluster c({MakeState(1, kNoNode, 5, MakeEntries(1, {1, 1, 1, 1, 1})),
             MakeState(1, kNoNode, 5, MakeEntries(1, {1, 1, 1, 1, 1})),
             MakeState(1, kNoNode, 5, MakeEntries(1, {1, 1, 1, 1, 1}))});

  c.Restart(1, 3);
  Ready rd = c.Process(1);
  ASSERT_EQ(rd.committed_entries.size(), 2u);
  EXPECT_EQ(rd.committed_entries[0].index, 4u);
  EXPECT_EQ(rd.committed_entries[1].index, 5u);
  EXPECT_EQ(c.node(1).log().applied(), 5u);

  // Without it, everything committed is applied again from the start.
  c.Restart(2, 0);
  rd = c.Process(2);
  ASSERT_EQ(rd.committed_entries.size(), 5u);
  EXPECT_EQ(rd.committed_entries[0].index, 1u);
}

TEST(Persist, RestartFromSnapshotResumesAfterTheSnapshot) {
  Cluster c({MakeState(1, kNoNode, 5, MakeEntries(4, {1, 1}), SnapshotMeta{3, 1}),
             MakeState(1, kNoNode, 0, {}), MakeState(1, kNoNode, 0, {})});
  Node& n = c.node(1);
  EXPECT_EQ(n.log().first_index(), 4u);
  EXPECT_EQ(n.log().snapshot(), (SnapshotMeta{3, 1}));
  EXPECT_EQ(n.log().applied(), 3u);

  Ready rd = c.Process(1);
  ASSERT_EQ(rd.committed_entries.size(), 2u);
  EXPECT_EQ(rd.committed_entries[0].index, 4u);
}

// Leader Completeness across a full restart: a leader elected after every node restarted holds
// every committed entry, and no node applies an entry twice.
TEST(Persist, CommittedEntriesSurviveAFullRestart) {
  Cluster c(3);
  ASSERT_TRUE(c.Elect(1));
  for (int i = 0; i < 3; i++) ASSERT_TRUE(c.node(1).Propose("v", nullptr, nullptr).ok());
  c.Stabilize();
  std::vector<Entry> committed = LogOf(c.node(1));
  ASSERT_EQ(committed.size(), 4u);
  ASSERT_EQ(c.node(1).log().committed(), 4u);

  for (NodeId id = 1; id <= 3; id++) c.Restart(id, c.applied_index(id));
  ASSERT_TRUE(c.Elect(2));
  ASSERT_TRUE(c.node(2).Propose("w", nullptr, nullptr).ok());
  c.Stabilize();

  for (NodeId id = 1; id <= 3; id++) {
    std::vector<Entry> log = LogOf(c.node(id));
    ASSERT_GE(log.size(), committed.size() + 2) << "node " << id;
    for (size_t i = 0; i < committed.size(); i++) EXPECT_EQ(log[i], committed[i]);
    // Since the restart each node applied only the new no-op and "w".
    ASSERT_EQ(c.applied(id).size(), 2u) << "node " << id;
    EXPECT_EQ(c.applied(id)[0].index, 5u);
    EXPECT_EQ(c.applied(id)[1].data, "w");
  }
}

}  // namespace
}  // namespace raft
