// Leadership transfer (thesis §3.10): the leader brings the target up to date, then sends it
// TimeoutNow; the target campaigns at once, and its vote requests pass the voters' lease.
#include <gtest/gtest.h>

#include "tests/raft/test_cluster.h"

namespace raft {
namespace {

using test::Cluster;
using test::Count;
using test::OfType;
using test::OfTypeTo;
using test::Select;

TEST(Transfer, UpToDateTargetGetsTimeoutNowAtOnce) {
  Cluster c(3);
  ASSERT_TRUE(c.Elect(1));
  Node& leader = c.node(1);
  ASSERT_EQ(leader.progress(2)->match, leader.log().last_index());

  ASSERT_TRUE(leader.TransferLeadership(2).ok());
  EXPECT_TRUE(leader.transferring());
  Ready rd = leader.TakeReady();
  EXPECT_EQ(Count(rd.messages, OfTypeTo(MessageType::kTimeoutNow, 2)), 1u);
  c.Handle(1, rd);

  // The target campaigns at once in term + 1 (no pre-vote), flagged as a transfer.
  ASSERT_EQ(c.Deliver(OfType(MessageType::kTimeoutNow)), 1u);
  EXPECT_EQ(c.node(2).role(), Role::kCandidate);
  EXPECT_EQ(c.node(2).term(), 2u);
  rd = c.node(2).TakeReady();
  std::vector<Message> votes = Select(rd.messages_after_persist, OfType(MessageType::kVote));
  ASSERT_EQ(votes.size(), 2u);
  for (const Message& m : votes) EXPECT_EQ(m.context, kContextTransfer);
  c.Handle(2, rd);

  // Nodes 1 and 3 heard from the leader just now, yet grant the transfer vote.
  c.Stabilize();
  EXPECT_EQ(c.node(2).role(), Role::kLeader);
  EXPECT_EQ(c.node(2).term(), 2u);
  EXPECT_EQ(c.node(1).role(), Role::kFollower);
  EXPECT_EQ(c.node(1).leader(), 2u);
  EXPECT_EQ(c.node(3).leader(), 2u);
  EXPECT_FALSE(c.node(1).transferring());
}

TEST(Transfer, LaggingTargetGetsEntriesBeforeTimeoutNow) {
  Cluster c(3);
  ASSERT_TRUE(c.Elect(1));
  Node& leader = c.node(1);
  c.Isolate(3);
  for (int i = 0; i < 3; i++) ASSERT_TRUE(leader.Propose("x", nullptr, nullptr).ok());
  c.Stabilize();
  c.Heal();
  Index last = leader.log().last_index();
  ASSERT_EQ(leader.log().committed(), last);
  ASSERT_LT(c.node(3).log().last_index(), last);
  size_t sent_before = c.sent().size();

  ASSERT_TRUE(leader.TransferLeadership(3).ok());
  c.Process(1);
  EXPECT_EQ(Count(c.network(), OfType(MessageType::kTimeoutNow)), 0u);

  c.Stabilize([](const Message& m) { return m.type != MessageType::kTimeoutNow; });
  EXPECT_EQ(c.node(3).log().last_index(), last);
  std::vector<Message> since(c.sent().begin() + static_cast<long>(sent_before), c.sent().end());
  EXPECT_GE(Count(since,
                  [](const Message& m) {
                    return m.type == MessageType::kAppend && m.to == 3 && !m.entries.empty();
                  }),
            1u);
  // Caught up: now, and only now, TimeoutNow is on its way.
  EXPECT_EQ(Count(c.network(), OfTypeTo(MessageType::kTimeoutNow, 3)), 1u);

  c.Stabilize();
  EXPECT_EQ(c.node(3).role(), Role::kLeader);
  EXPECT_EQ(c.node(3).term(), 2u);
}

TEST(Transfer, ProposalsAreRefusedDuringTransfer) {
  Cluster c(3);
  ASSERT_TRUE(c.Elect(1));
  c.Isolate(3);
  ASSERT_TRUE(c.node(1).TransferLeadership(3).ok());

  Index last = c.node(1).log().last_index();
  common::Status s = c.node(1).Propose("refused", nullptr, nullptr);
  EXPECT_EQ(s.code(), common::Status::Code::kBusy);
  EXPECT_EQ(c.node(1).log().last_index(), last);
}

// Thesis §3.10: "If the transfer does not complete after about one election timeout, the
// prior leader aborts the transfer and resumes accepting client requests."
TEST(Transfer, TransferIsAbandonedAfterAnElectionTimeout) {
  Cluster c(3);
  ASSERT_TRUE(c.Elect(1));
  c.Isolate(3);  // TimeoutNow never arrives
  Node& leader = c.node(1);
  ASSERT_TRUE(leader.TransferLeadership(3).ok());

  for (int i = 0; i < 9; i++) {
    c.Tick(1);
    c.Stabilize();
  }
  EXPECT_TRUE(leader.transferring());
  c.Tick(1);
  EXPECT_FALSE(leader.transferring());
  EXPECT_EQ(leader.role(), Role::kLeader);
  EXPECT_TRUE(leader.Propose("accepted", nullptr, nullptr).ok());
}

TEST(Transfer, RefusedWhenNotLeaderOrTargetUnknown) {
  Cluster c(3);
  ASSERT_TRUE(c.Elect(1));

  EXPECT_EQ(c.node(2).TransferLeadership(3).code(), common::Status::Code::kInvalidArgument);
  EXPECT_EQ(c.node(1).TransferLeadership(9).code(), common::Status::Code::kInvalidArgument);
  EXPECT_FALSE(c.node(1).transferring());
}

}  // namespace
}  // namespace raft

namespace raft {
namespace {

TEST(Transfer, LostTimeoutNowIsSentAgain) {
  Cluster c(3);
  ASSERT_TRUE(c.Elect(1));
  Node& leader = c.node(1);
  ASSERT_TRUE(leader.TransferLeadership(2).ok());
  c.Process(1);
  ASSERT_EQ(c.Drop(OfType(MessageType::kTimeoutNow)), 1u);  // lost
  // The caught-up target answers the next heartbeat: the leader sends TimeoutNow again.
  leader.Tick();
  c.Stabilize([](const Message& m) { return m.type != MessageType::kTimeoutNow; });
  ASSERT_GE(c.Drop(OfTypeTo(MessageType::kTimeoutNow, 2)), 1u);
  // Asking again for the same target sends it again too.
  ASSERT_TRUE(leader.TransferLeadership(2).ok());
  c.Process(1);
  c.Stabilize();
  EXPECT_EQ(c.node(2).role(), Role::kLeader);
}

}  // namespace
}  // namespace raft
