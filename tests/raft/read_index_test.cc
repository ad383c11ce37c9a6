// ReadIndex (thesis §6.4): a read point is the leader's commit index, released once a majority
// confirms the leader in a heartbeat round that began after the read arrived, and never before
// the leader has committed an entry of its own term.
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

bool IsReadHeartbeat(const Message& m) {
  return m.type == MessageType::kHeartbeat && m.context != 0;
}

TEST(ReadIndex, RefusedOnFollower) {
  Cluster c(3);
  ASSERT_TRUE(c.Elect(1));

  common::Status s = c.node(2).ReadIndex(1);
  EXPECT_EQ(s.code(), common::Status::Code::kInvalidArgument);
  EXPECT_FALSE(c.node(2).HasReady());
}

// Thesis §6.4 step 1: "If the leader has not yet marked an entry from its current term
// committed, it waits until it has done so." Until then its commit index may be stale.
TEST(ReadIndex, LeaderWaitsForItsNoopBeforeAnswering) {
  std::vector<Entry> log = MakeEntries(1, {1, 1});
  Cluster c({MakeState(1, kNoNode, 2, log), MakeState(1, kNoNode, 2, log),
             MakeState(1, kNoNode, 2, log)});
  ASSERT_TRUE(c.ElectWithoutCommit(1));
  Node& leader = c.node(1);
  ASSERT_EQ(leader.term(), 2u);
  ASSERT_EQ(leader.log().committed(), 2u);

  ASSERT_TRUE(leader.ReadIndex(7).ok());
  c.Process(1);
  EXPECT_TRUE(c.read_states(1).empty());
  EXPECT_EQ(Count(c.network(), IsReadHeartbeat), 0u);

  c.Stabilize();
  ASSERT_EQ(leader.log().committed(), 3u);
  ASSERT_EQ(c.read_states(1).size(), 1u);
  EXPECT_EQ(c.read_states(1)[0].ctx, 7u);
  EXPECT_TRUE(c.read_states(1)[0].ok);
  EXPECT_EQ(c.read_states(1)[0].index, 3u);  // not the stale 2
}

// Reads that arrive while a round is in flight share the next round: many reads, two rounds.
TEST(ReadIndex, ReadsDuringARoundShareTheNextRound) {
  Cluster c(3);
  ASSERT_TRUE(c.Elect(1));
  Node& leader = c.node(1);
  size_t sent_before = c.sent().size();

  ASSERT_TRUE(leader.ReadIndex(1).ok());
  c.Process(1);
  EXPECT_EQ(Count(c.network(), IsReadHeartbeat), 2u);
  for (uint64_t ctx = 2; ctx <= 10; ctx++) ASSERT_TRUE(leader.ReadIndex(ctx).ok());
  c.Process(1);
  EXPECT_EQ(Count(c.network(), IsReadHeartbeat), 2u);  // no new round while one is in flight

  c.Stabilize();

  std::vector<Message> since(c.sent().begin() + static_cast<long>(sent_before), c.sent().end());
  // Two rounds: the first to both followers, the second to the one whose answer completed the
  // first (with the leader, a quorum).
  EXPECT_EQ(Count(since, IsReadHeartbeat), 3u);
  EXPECT_EQ(Count(since, OfType(MessageType::kHeartbeat)), 3u);
  const std::vector<ReadState>& rs = c.read_states(1);
  ASSERT_EQ(rs.size(), 10u);
  for (uint64_t i = 0; i < 10; i++) {
    EXPECT_EQ(rs[i].ctx, i + 1);
    EXPECT_TRUE(rs[i].ok);
    EXPECT_EQ(rs[i].index, leader.log().committed());
  }
}

// Thesis §6.4 step 1: the read index is the commit index when the read arrives.
TEST(ReadIndex, ReadStateCarriesTheCommitIndexAtRequestTime) {
  Cluster c(3);
  ASSERT_TRUE(c.Elect(1));
  Node& leader = c.node(1);
  ASSERT_TRUE(leader.Propose("a", nullptr, nullptr).ok());
  c.Stabilize();
  Index commit = leader.log().committed();
  ASSERT_EQ(commit, 2u);

  ASSERT_TRUE(leader.ReadIndex(5).ok());
  c.Process(1);
  // Before the round completes, another entry is proposed and committed; the read point is
  // still the commit index the read found.
  ASSERT_TRUE(leader.Propose("b", nullptr, nullptr).ok());
  c.Stabilize([](const Message& m) { return m.type != MessageType::kHeartbeatResponse; });
  ASSERT_EQ(leader.log().committed(), commit + 1);
  EXPECT_TRUE(c.read_states(1).empty());
  c.Stabilize();

  ASSERT_EQ(c.read_states(1).size(), 1u);
  EXPECT_EQ(c.read_states(1)[0].ctx, 5u);
  EXPECT_EQ(c.read_states(1)[0].index, commit);
  EXPECT_TRUE(c.read_states(1)[0].ok);
}

// Thesis §6.4 step 3: the leader must hear from a majority: one follower of four is not enough.
TEST(ReadIndex, RoundNeedsAMajority) {
  Cluster c(5);
  ASSERT_TRUE(c.Elect(1));
  ASSERT_TRUE(c.node(1).ReadIndex(3).ok());
  c.Process(1);
  ASSERT_EQ(Count(c.network(), IsReadHeartbeat), 4u);
  c.Deliver();
  c.ProcessAll();

  ASSERT_EQ(c.Deliver([](const Message& m) {
    return m.type == MessageType::kHeartbeatResponse && m.from == 2;
  }),
            1u);
  EXPECT_FALSE(c.node(1).HasReady());
  ASSERT_EQ(c.Deliver([](const Message& m) { return m.from == 3; }), 1u);
  c.Process(1);
  ASSERT_EQ(c.read_states(1).size(), 1u);
  EXPECT_EQ(c.read_states(1)[0].ctx, 3u);
}

// Only answers to heartbeats sent after the read arrived confirm leadership for it: neither a
// plain heartbeat sent before, nor a late answer to the previous read round.
TEST(ReadIndex, HeartbeatSentBeforeTheReadDoesNotConfirmIt) {
  Cluster c(3);
  ASSERT_TRUE(c.Elect(1));
  Node& leader = c.node(1);
  c.Tick(1);
  c.Process(1);
  std::vector<Message> plain = Select(c.network(), OfType(MessageType::kHeartbeat));
  ASSERT_EQ(plain.size(), 2u);
  ASSERT_EQ(plain[0].context, 0u);
  c.Drop();

  // Round 1 for read 1 is confirmed by node 2; node 3's answer to it is still on its way.
  ASSERT_TRUE(leader.ReadIndex(1).ok());
  c.Process(1);
  c.Deliver(IsReadHeartbeat);
  c.ProcessAll();
  ASSERT_EQ(c.Deliver([](const Message& m) {
    return m.type == MessageType::kHeartbeatResponse && m.from == 2;
  }),
            1u);
  c.Process(1);
  ASSERT_EQ(c.read_states(1).size(), 1u);
  std::vector<Message> late = Select(c.network(), OfType(MessageType::kHeartbeatResponse));
  ASSERT_EQ(late.size(), 1u);
  c.Drop();

  // Read 2 starts round 2; answers to the plain heartbeats and node 3's late answer to round 1
  // arrive first and must not confirm it.
  ASSERT_TRUE(leader.ReadIndex(2).ok());
  c.Process(1);
  std::vector<Message> round = Select(c.network(), IsReadHeartbeat);
  ASSERT_EQ(round.size(), 1u);  // to node 2, whose answer completed round 1
  EXPECT_EQ(round[0].to, 2u);
  c.Drop();
  for (const Message& m : plain) c.Send(m);
  c.Stabilize();
  for (const Message& m : late) c.Send(m);
  c.Stabilize();
  ASSERT_EQ(c.read_states(1).size(), 1u);

  for (const Message& m : round) c.Send(m);
  c.Stabilize();
  ASSERT_EQ(c.read_states(1).size(), 2u);
  EXPECT_EQ(c.read_states(1)[1].ctx, 2u);
  EXPECT_TRUE(c.read_states(1)[1].ok);
}

// A round asks only the followers whose answers completed the last one; when one of them
// does not answer, the next heartbeat carries the round to every follower and the others'
// answers complete it.
TEST(ReadIndex, ARoundAsksTheLastQuorumAndHeartbeatsAskTheRest) {
  Cluster c(5);
  ASSERT_TRUE(c.Elect(1));
  Node& leader = c.node(1);
  c.Stabilize();

  // Round 1 goes to all four followers; nodes 2 and 3 answer first and complete it.
  ASSERT_TRUE(leader.ReadIndex(1).ok());
  c.Process(1);
  ASSERT_EQ(Count(c.network(), IsReadHeartbeat), 4u);
  c.Deliver(IsReadHeartbeat);
  c.ProcessAll();
  auto from = [](NodeId id) {
    return [id](const Message& m) {
      return m.type == MessageType::kHeartbeatResponse && m.from == id;
    };
  };
  ASSERT_EQ(c.Deliver(from(2)), 1u);
  ASSERT_EQ(c.Deliver(from(3)), 1u);
  c.Process(1);
  ASSERT_EQ(c.read_states(1).size(), 1u);
  c.Drop();

  // Round 2 asks nodes 2 and 3 only; node 3 is gone.
  c.Isolate(3);
  ASSERT_TRUE(leader.ReadIndex(2).ok());
  c.Process(1);
  std::vector<Message> round = Select(c.network(), IsReadHeartbeat);
  ASSERT_EQ(round.size(), 2u);
  EXPECT_EQ(round[0].to + round[1].to, 5u);  // nodes 2 and 3
  c.Stabilize();
  ASSERT_EQ(c.read_states(1).size(), 1u) << "node 2 alone is no quorum";

  // The next heartbeat carries round 2 to nodes 2, 4 and 5: their answers complete it.
  c.Tick(1, c.config(1).heartbeat_ticks);
  c.Stabilize();
  ASSERT_EQ(c.read_states(1).size(), 2u);
  EXPECT_EQ(c.read_states(1)[1].ctx, 2u);
  EXPECT_TRUE(c.read_states(1)[1].ok);

  // Round 3 asks the followers that completed round 2, none of them node 3.
  ASSERT_TRUE(leader.ReadIndex(3).ok());
  c.Process(1);
  round = Select(c.network(), IsReadHeartbeat);
  ASSERT_EQ(round.size(), 2u);
  for (const Message& m : round) EXPECT_NE(m.to, 3u);
  c.Stabilize();
  ASSERT_EQ(c.read_states(1).size(), 3u);
  EXPECT_TRUE(c.read_states(1)[2].ok);
}

// A leader that loses leadership fails its pending reads (ok == false), so that clients retry.
TEST(ReadIndex, LeaderThatStepsDownFailsPendingReads) {
  Cluster c(3);
  ASSERT_TRUE(c.Elect(1));
  Node& leader = c.node(1);
  ASSERT_TRUE(leader.ReadIndex(1).ok());  // its round goes out
  ASSERT_TRUE(leader.ReadIndex(2).ok());  // waits for the next round
  c.Process(1);
  ASSERT_TRUE(c.read_states(1).empty());

  Message higher = MakeMessage(MessageType::kHeartbeatResponse, 2, 1, 2);
  leader.Step(higher);
  ASSERT_EQ(leader.role(), Role::kFollower);
  c.Process(1);

  const std::vector<ReadState>& rs = c.read_states(1);
  ASSERT_EQ(rs.size(), 2u);
  for (const ReadState& r : rs) EXPECT_FALSE(r.ok) << "ctx " << r.ctx;
  EXPECT_EQ(rs[0].ctx + rs[1].ctx, 3u);
}

// The same for reads still waiting for the no-op, when check-quorum deposes the leader.
TEST(ReadIndex, CheckQuorumStepDownFailsReadsWaitingForTheNoop) {
  Cluster c(3);
  ASSERT_TRUE(c.ElectWithoutCommit(1));
  ASSERT_TRUE(c.node(1).ReadIndex(4).ok());
  for (int i = 0; i < 40 && c.node(1).role() == Role::kLeader; i++) {
    c.Tick(1);
    c.Process(1);
    c.Drop();
  }
  ASSERT_EQ(c.node(1).role(), Role::kFollower);
  c.Process(1);
  ASSERT_EQ(c.read_states(1).size(), 1u);
  EXPECT_EQ(c.read_states(1)[0].ctx, 4u);
  EXPECT_FALSE(c.read_states(1)[0].ok);
}

TEST(ReadIndex, SingleNodeAnswersAtOnce) {
  Cluster c(1);
  ASSERT_TRUE(c.Elect(1));
  ASSERT_EQ(c.node(1).log().committed(), 1u);

  ASSERT_TRUE(c.node(1).ReadIndex(11).ok());
  Ready rd = c.node(1).TakeReady();
  ASSERT_EQ(rd.read_states.size(), 1u);
  EXPECT_EQ(rd.read_states[0].ctx, 11u);
  EXPECT_EQ(rd.read_states[0].index, 1u);
  EXPECT_TRUE(rd.read_states[0].ok);
}

}  // namespace
}  // namespace raft
