// Elections: §5.2 (RequestVote, randomized timeouts), §5.4.1 (election restriction), pre-vote
// (thesis §9.6), check-quorum and the leader lease on votes (thesis §6.2, §4.2.3), and the
// durability rules of the Ready contract for votes.
#include <gtest/gtest.h>

#include <set>

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

Message VoteRequest(MessageType type, NodeId from, NodeId to, Term term, Index last_index,
                    Term last_term) {
  Message m = MakeMessage(type, from, to, term);
  m.index = last_index;
  m.log_term = last_term;
  return m;
}

void NoPreVote(Config* c) { c->pre_vote = false; }

// §5.2 and thesis §9.6: a follower that hears nothing for its randomized election timeout
// first runs a pre-vote (its term unchanged), and only with a majority of pre-votes becomes a
// candidate of term + 1.
TEST(Election, FollowerCampaignsAfterRandomizedTimeoutPreVoteFirst) {
  Cluster c(3);
  Node& n = c.node(1);

  c.Tick(1, 9);
  EXPECT_EQ(n.role(), Role::kFollower);
  EXPECT_FALSE(n.HasReady());
  int more = c.TickUntilCampaign(1);
  ASSERT_GT(more, 0);
  EXPECT_GE(9 + more, 10);
  EXPECT_LT(9 + more, 20);

  EXPECT_EQ(n.role(), Role::kPreCandidate);
  EXPECT_EQ(n.term(), 0u);
  EXPECT_EQ(n.voted_for(), kNoNode);
  Ready rd = n.TakeReady();
  EXPECT_FALSE(rd.hard_state.has_value());
  std::vector<Message> prevotes = Select(rd.messages, OfType(MessageType::kPreVote));
  ASSERT_EQ(prevotes.size(), 2u);
  for (const Message& m : prevotes) {
    EXPECT_EQ(m.term, 1u);  // the term it would campaign in
    EXPECT_EQ(m.index, 0u);
    EXPECT_EQ(m.log_term, 0u);
  }
  c.Handle(1, rd);

  c.Deliver();
  c.ProcessAll();
  EXPECT_EQ(c.node(2).term(), 0u);  // granting a pre-vote changes nothing
  EXPECT_EQ(c.node(2).voted_for(), kNoNode);
  ASSERT_EQ(c.Deliver(OfType(MessageType::kPreVoteResponse)), 2u);

  EXPECT_EQ(n.role(), Role::kCandidate);
  EXPECT_EQ(n.term(), 1u);
  EXPECT_EQ(n.voted_for(), 1u);
  rd = n.TakeReady();
  ASSERT_TRUE(rd.hard_state.has_value());
  EXPECT_EQ(rd.hard_state->term, 1u);
  EXPECT_EQ(rd.hard_state->vote, 1u);
  EXPECT_TRUE(rd.must_sync);
  EXPECT_EQ(Count(rd.messages_after_persist, OfType(MessageType::kVote)), 2u);
}

// §5.2: "Raft uses randomized election timeouts ... chosen randomly from a fixed interval".
TEST(Election, ElectionTimeoutIsRandomizedInOneToTwoTimeouts) {
  std::set<int> seen;
  for (uint64_t seed = 1; seed <= 16; seed++) {
    Cluster c(3, [seed](Config* cfg) { cfg->seed = seed; });
    int ticks = c.TickUntilCampaign(1);
    ASSERT_GT(ticks, 0) << "seed " << seed;
    EXPECT_GE(ticks, 10) << "seed " << seed;
    EXPECT_LT(ticks, 20) << "seed " << seed;
    seen.insert(ticks);
  }
  EXPECT_GT(seen.size(), 1u);
}

// A node that has just started campaigns within one election timeout, still at a random
// moment (ElectionTimeoutIsRandomizedInOneToTwoTimeouts: without it, one to two).
TEST(Election, FastFirstElectionCampaignsWithinOneTimeout) {
  std::set<int> seen;
  for (uint64_t seed = 1; seed <= 16; seed++) {
    Cluster c(3, [seed](Config* cfg) {
      cfg->seed = seed;
      cfg->fast_first_election = true;
    });
    int ticks = c.TickUntilCampaign(1);
    ASSERT_GT(ticks, 0) << "seed " << seed;
    EXPECT_GE(ticks, 1) << "seed " << seed;
    EXPECT_LE(ticks, 10) << "seed " << seed;
    seen.insert(ticks);
  }
  EXPECT_GT(seen.size(), 1u);
}

// Figure 2, RequestVote: grant "if votedFor is null or candidateId" (Election Safety, §5.2).
TEST(Election, GrantsAtMostOneVotePerTerm) {
  Cluster c(3);
  Node& n = c.node(1);

  n.Step(VoteRequest(MessageType::kVote, 2, 1, 1, 0, 0));
  EXPECT_EQ(n.term(), 1u);
  EXPECT_EQ(n.voted_for(), 2u);
  Ready rd = n.TakeReady();
  std::vector<Message> resp = Select(rd.messages_after_persist, OfType(MessageType::kVoteResponse));
  ASSERT_EQ(resp.size(), 1u);
  EXPECT_EQ(resp[0].to, 2u);
  EXPECT_FALSE(resp[0].reject);

  n.Step(VoteRequest(MessageType::kVote, 3, 1, 1, 0, 0));
  EXPECT_EQ(n.voted_for(), 2u);
  rd = n.TakeReady();
  resp = Select(rd.messages_after_persist, OfType(MessageType::kVoteResponse));
  ASSERT_EQ(resp.size(), 1u);
  EXPECT_EQ(resp[0].to, 3u);
  EXPECT_TRUE(resp[0].reject);

  // The same candidate asking again (a retry) is granted again.
  n.Step(VoteRequest(MessageType::kVote, 2, 1, 1, 0, 0));
  rd = n.TakeReady();
  resp = Select(rd.messages_after_persist, OfType(MessageType::kVoteResponse));
  ASSERT_EQ(resp.size(), 1u);
  EXPECT_FALSE(resp[0].reject);
}

// §5.4.1: "the voter denies its vote if its own log is more up-to-date than that of the
// candidate".
TEST(Election, DeniesCandidateWithLessUpToDateLog) {
  Cluster c({MakeState(2, kNoNode, 0, MakeEntries(1, {1, 2})), MakeState(2, kNoNode, 0, {}),
             MakeState(2, kNoNode, 0, {})});
  Node& n = c.node(1);

  // Longer log, but an older last term.
  n.Step(VoteRequest(MessageType::kVote, 2, 1, 3, 5, 1));
  EXPECT_EQ(n.term(), 3u);  // the term is adopted even though the vote is denied
  EXPECT_EQ(n.voted_for(), kNoNode);
  Ready rd = n.TakeReady();
  std::vector<Message> resp = Select(rd.messages_after_persist, OfType(MessageType::kVoteResponse));
  ASSERT_EQ(resp.size(), 1u);
  EXPECT_TRUE(resp[0].reject);
  EXPECT_EQ(resp[0].term, 3u);

  // Same last term, shorter log.
  n.Step(VoteRequest(MessageType::kVote, 2, 1, 3, 1, 2));
  EXPECT_EQ(n.voted_for(), kNoNode);

  // Exactly as up-to-date: granted.
  n.Step(VoteRequest(MessageType::kVote, 3, 1, 3, 2, 2));
  EXPECT_EQ(n.voted_for(), 3u);
}

// Ready contract: a vote leaves only once the vote (and term) it depends on is durable.
TEST(Election, VoteReplyOnlyInMessagesAfterPersist) {
  Cluster c(3);
  Node& n = c.node(1);

  n.Step(VoteRequest(MessageType::kVote, 2, 1, 4, 0, 0));
  Ready rd = n.TakeReady();

  EXPECT_EQ(Count(rd.messages, OfType(MessageType::kVoteResponse)), 0u);
  EXPECT_EQ(Count(rd.messages_after_persist, OfType(MessageType::kVoteResponse)), 1u);
  ASSERT_TRUE(rd.hard_state.has_value());
  EXPECT_EQ(*rd.hard_state, (HardState{4, 2, 0}));
  EXPECT_TRUE(rd.must_sync);
}

// A candidate's own vote is a message to itself, released after its term and vote are durable;
// until it is stepped back, it is not counted.
TEST(Election, CandidateOwnVoteIsSelfAddressedAfterPersist) {
  Cluster c(3, NoPreVote);
  Node& n = c.node(1);
  ASSERT_GT(c.TickUntilCampaign(1), 0);
  ASSERT_EQ(n.role(), Role::kCandidate);
  ASSERT_EQ(n.term(), 1u);

  Ready rd = n.TakeReady();
  std::vector<Message> self =
      Select(rd.messages_after_persist, [](const Message& m) { return m.to == 1; });
  ASSERT_EQ(self.size(), 1u);
  EXPECT_EQ(self[0].type, MessageType::kVoteResponse);
  EXPECT_EQ(self[0].from, 1u);
  EXPECT_EQ(self[0].term, 1u);
  EXPECT_FALSE(self[0].reject);
  EXPECT_EQ(Count(rd.messages, [](const Message& m) { return m.to == 1; }), 0u);

  // One peer's vote alone is not a majority of 3 while the own vote is not yet counted.
  n.Step(MakeMessage(MessageType::kVoteResponse, 2, 1, 1));
  EXPECT_EQ(n.role(), Role::kCandidate);
  n.Step(self[0]);
  EXPECT_EQ(n.role(), Role::kLeader);
}

// A single-node cluster elects itself once its own vote comes back, and commits its no-op only
// when the no-op is durable.
TEST(Election, SingleNodeBecomesLeaderAfterSelfVoteAndCommitsNoopAfterPersist) {
  Cluster c(1);
  Node& n = c.node(1);
  ASSERT_GT(c.TickUntilCampaign(1), 0);
  EXPECT_EQ(n.role(), Role::kCandidate);  // its own pre-vote is a majority at once
  EXPECT_EQ(n.term(), 1u);

  Ready rd = n.TakeReady();
  ASSERT_EQ(rd.messages_after_persist.size(), 1u);
  const Message self = rd.messages_after_persist[0];
  EXPECT_EQ(self.to, 1u);
  EXPECT_EQ(n.role(), Role::kCandidate);
  ASSERT_TRUE(c.storage(1).Save(rd.hard_state, rd.entries, rd.must_sync).ok());
  n.Step(self);
  ASSERT_EQ(n.role(), Role::kLeader);

  rd = n.TakeReady();
  ASSERT_EQ(rd.entries.size(), 1u);
  EXPECT_EQ(rd.entries[0].type, EntryType::kNoop);
  EXPECT_EQ(rd.entries[0].index, 1u);
  EXPECT_EQ(rd.entries[0].term, 1u);
  EXPECT_TRUE(rd.committed_entries.empty());
  EXPECT_EQ(n.log().committed(), 0u);
  n.Advance();
  EXPECT_FALSE(n.HasReady());

  n.OnPersisted(1, 1);
  EXPECT_EQ(n.log().committed(), 1u);
  rd = n.TakeReady();
  ASSERT_EQ(rd.committed_entries.size(), 1u);
  EXPECT_EQ(rd.committed_entries[0].index, 1u);
}

// Thesis §6.2: a leader that cannot hear from a majority for an election timeout steps down.
// The check runs once per election timeout, so it must happen within two of them.
TEST(Election, CheckQuorumLeaderThatHearsFromNobodyStepsDown) {
  Cluster c(3);
  ASSERT_TRUE(c.Elect(1));
  Node& n = c.node(1);
  Term term = n.term();

  int ticks = 0;
  while (n.role() == Role::kLeader && ticks < 100) {
    c.Tick(1);
    ticks++;
    c.Process(1);
    c.Drop();  // nobody answers
  }
  EXPECT_EQ(n.role(), Role::kFollower);
  EXPECT_GE(ticks, 10);
  EXPECT_LE(ticks, 20);
  EXPECT_EQ(n.term(), term);
  EXPECT_EQ(n.leader(), kNoNode);
}

// The same leader stays while a majority answers, even with one follower gone.
TEST(Election, CheckQuorumLeaderStaysWhileMajorityAnswers) {
  Cluster c(3);
  ASSERT_TRUE(c.Elect(1));
  c.Isolate(3);
  for (int i = 0; i < 100; i++) {
    c.Tick(1);
    c.Stabilize();
  }
  EXPECT_EQ(c.node(1).role(), Role::kLeader);
  EXPECT_EQ(c.node(1).term(), 1u);
}

// Thesis §4.2.3: a follower that heard from its leader within the election timeout ignores
// (pre-)vote requests of a higher term, so a rejoining server cannot depose a healthy leader.
TEST(Election, FollowerInLeaseIgnoresHigherTermVoteRequests) {
  Cluster c(3);
  ASSERT_TRUE(c.Elect(1));
  Node& n = c.node(2);
  Index last = n.log().last_index();
  Term last_term = n.log().last_term();

  n.Step(VoteRequest(MessageType::kPreVote, 3, 2, 2, last, last_term));
  n.Step(VoteRequest(MessageType::kVote, 3, 2, 2, last, last_term));

  EXPECT_EQ(n.term(), 1u);
  EXPECT_EQ(n.voted_for(), 1u);
  EXPECT_EQ(n.leader(), 1u);
  EXPECT_FALSE(n.HasReady());

  // Once the lease has run out, the pre-vote is answered (granted: the log is as up-to-date).
  c.Tick(2, 10);
  c.Process(2);
  c.Drop();
  n.Step(VoteRequest(MessageType::kPreVote, 3, 2, 2, last, last_term));
  Ready rd = n.TakeReady();
  std::vector<Message> resp = Select(rd.messages, OfTypeTo(MessageType::kPreVoteResponse, 3));
  ASSERT_EQ(resp.size(), 1u);
  EXPECT_FALSE(resp[0].reject);
}

// Thesis §3.10: a vote request caused by a leadership transfer is honoured during the lease.
TEST(Election, FollowerInLeaseHonoursTransferVote) {
  Cluster c(3);
  ASSERT_TRUE(c.Elect(1));
  Node& n = c.node(2);
  Message m = VoteRequest(MessageType::kVote, 3, 2, 2, n.log().last_index(), n.log().last_term());
  m.context = kContextTransfer;

  n.Step(m);

  EXPECT_EQ(n.term(), 2u);
  EXPECT_EQ(n.voted_for(), 3u);
  Ready rd = n.TakeReady();
  std::vector<Message> resp = Select(rd.messages_after_persist, OfType(MessageType::kVoteResponse));
  ASSERT_EQ(resp.size(), 1u);
  EXPECT_FALSE(resp[0].reject);
  EXPECT_EQ(resp[0].term, 2u);
}

// Thesis §9.6: a partitioned node keeps failing pre-votes and never raises its term, so when it
// comes back it does not disrupt the leader.
TEST(Election, PreVoteKeepsPartitionedNodeFromRaisingItsTerm) {
  Cluster c(3);
  ASSERT_TRUE(c.Elect(1));
  c.Isolate(3);
  for (int i = 0; i < 100; i++) {
    c.Tick(3);
    c.Stabilize();
  }
  EXPECT_EQ(c.node(3).term(), 1u);
  EXPECT_NE(c.node(3).role(), Role::kCandidate);

  c.Heal();
  c.Tick(1);
  c.Stabilize();
  EXPECT_EQ(c.node(1).role(), Role::kLeader);
  EXPECT_EQ(c.node(1).term(), 1u);
  EXPECT_EQ(c.node(3).role(), Role::kFollower);
  EXPECT_EQ(c.node(3).leader(), 1u);
}

// A pre-candidate whose log is behind is refused by the majority and goes back to being a
// follower, with its term unchanged, and nobody else's term changes either.
TEST(Election, PreCandidateWithStaleLogIsRefusedAndKeepsTerm) {
  Cluster c({MakeState(1, kNoNode, 1, MakeEntries(1, {1})),
             MakeState(1, kNoNode, 1, MakeEntries(1, {1, 1})),
             MakeState(1, kNoNode, 1, MakeEntries(1, {1, 1}))});
  ASSERT_GT(c.TickUntilCampaign(1), 0);
  ASSERT_EQ(c.node(1).role(), Role::kPreCandidate);
  c.Stabilize();

  EXPECT_EQ(c.node(1).role(), Role::kFollower);
  for (NodeId id = 1; id <= 3; id++) {
    EXPECT_EQ(c.node(id).term(), 1u) << "node " << id;
    EXPECT_EQ(c.node(id).voted_for(), kNoNode) << "node " << id;
  }
}

// Figure 2, All Servers: "If RPC request or response contains term T > currentTerm: set
// currentTerm = T, convert to follower".
TEST(Election, LeaderStepsDownOnHigherTermResponse) {
  Cluster c(3);
  ASSERT_TRUE(c.Elect(1));
  Message m = MakeMessage(MessageType::kAppendResponse, 2, 1, 5);
  m.reject = true;

  c.node(1).Step(m);

  EXPECT_EQ(c.node(1).role(), Role::kFollower);
  EXPECT_EQ(c.node(1).term(), 5u);
  EXPECT_EQ(c.node(1).voted_for(), kNoNode);
  EXPECT_EQ(c.node(1).leader(), kNoNode);
}

// §5.2: "If the leader's term ... is at least as large as the candidate's current term, then
// the candidate recognizes the leader as legitimate and returns to follower state."
TEST(Election, CandidateStepsDownOnAppendEntriesOfItsTerm) {
  Cluster c(3, NoPreVote);
  ASSERT_GT(c.TickUntilCampaign(1), 0);
  ASSERT_EQ(c.node(1).role(), Role::kCandidate);

  c.node(1).Step(MakeMessage(MessageType::kAppend, 2, 1, 1));

  EXPECT_EQ(c.node(1).role(), Role::kFollower);
  EXPECT_EQ(c.node(1).term(), 1u);
  EXPECT_EQ(c.node(1).leader(), 2u);
  EXPECT_EQ(c.node(1).voted_for(), 1u);  // a vote is never taken back within a term
}

// Figure 2, AppendEntries: "Reply false if term < currentTerm"; the answer carries the current
// term so the stale leader learns it and steps down.
TEST(Election, StaleLeaderIsAnsweredWithCurrentTerm) {
  Cluster c(
      {MakeState(2, kNoNode, 0, {}), MakeState(3, kNoNode, 0, {}), MakeState(3, kNoNode, 0, {})});
  Message append = MakeMessage(MessageType::kAppend, 1, 2, 2);
  append.entries = MakeEntries(1, {2});

  c.node(2).Step(append);

  EXPECT_EQ(c.node(2).term(), 3u);
  EXPECT_EQ(c.node(2).log().last_index(), 0u);
  Ready rd = c.node(2).TakeReady();
  std::vector<Message> resp = Select(rd.messages, OfTypeTo(MessageType::kAppendResponse, 1));
  ASSERT_EQ(resp.size(), 1u);
  EXPECT_EQ(resp[0].term, 3u);
  EXPECT_TRUE(resp[0].reject);
}

}  // namespace
}  // namespace raft
