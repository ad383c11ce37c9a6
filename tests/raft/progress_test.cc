// Progress and Inflights: the leader's per-follower flow control (thesis §10.2).
#include "raft/progress.h"

#include <gtest/gtest.h>

namespace raft {
namespace {

TEST(ProgressInflights, FullByCount) {
  Inflights in(3, 1 << 20);
  in.Add(1, 10);
  in.Add(2, 10);
  EXPECT_FALSE(in.Full());
  in.Add(3, 10);
  EXPECT_TRUE(in.Full());
  EXPECT_EQ(in.count(), 3u);
  EXPECT_EQ(in.bytes(), 30u);
  in.FreeFirst();
  EXPECT_FALSE(in.Full());
  EXPECT_EQ(in.count(), 2u);
}

TEST(ProgressInflights, FullByBytes) {
  Inflights in(100, 300);
  in.Add(1, 200);
  EXPECT_FALSE(in.Full());
  in.Add(2, 99);
  EXPECT_FALSE(in.Full());
  in.Add(3, 1);  // 300 bytes: the byte budget is used up with only 3 messages out
  EXPECT_TRUE(in.Full());
  in.FreeLE(1);
  EXPECT_FALSE(in.Full());
  EXPECT_EQ(in.bytes(), 100u);
}

TEST(ProgressInflights, FreeLE) {
  Inflights in(10, 1 << 20);
  for (Index last = 2; last <= 10; last += 2) in.Add(last, last);  // 2,4,6,8,10
  ASSERT_EQ(in.count(), 5u);

  in.FreeLE(5);  // frees 2 and 4
  EXPECT_EQ(in.count(), 3u);
  EXPECT_EQ(in.bytes(), 6u + 8u + 10u);

  in.FreeLE(3);  // already freed: nothing
  EXPECT_EQ(in.count(), 3u);

  in.FreeLE(6);
  EXPECT_EQ(in.count(), 2u);
  EXPECT_EQ(in.bytes(), 18u);

  in.FreeLE(100);
  EXPECT_EQ(in.count(), 0u);
  EXPECT_EQ(in.bytes(), 0u);

  in.Reset();
  EXPECT_EQ(in.count(), 0u);
}

// In probe state, only the refusal of the probe in flight (prev_log_index == next - 1) counts;
// a late refusal of an earlier probe must not move next_index.
TEST(Progress, MaybeDecrToIgnoresStaleRefusalInProbe) {
  Progress pr(8, 1 << 20);
  pr.next = 10;
  pr.probe_sent = true;

  EXPECT_FALSE(pr.MaybeDecrTo(5, 3));  // refusal of an older probe
  EXPECT_EQ(pr.next, 10u);
  EXPECT_TRUE(pr.probe_sent);

  EXPECT_TRUE(pr.MaybeDecrTo(9, 4));  // refusal of the current probe, hint 4
  EXPECT_EQ(pr.next, 4u);
  EXPECT_FALSE(pr.probe_sent);

  // The hint never takes next_index below match + 1.
  pr.match = 2;
  pr.next = 6;
  EXPECT_TRUE(pr.MaybeDecrTo(5, 1));
  EXPECT_EQ(pr.next, 3u);
  // And never above the rejected index.
  pr.next = 6;
  EXPECT_TRUE(pr.MaybeDecrTo(5, 9));
  EXPECT_EQ(pr.next, 5u);
}

// In replicate state, a refusal at or below match_index is stale (the follower has since
// acknowledged more); a real refusal restarts from match_index + 1.
TEST(Progress, MaybeDecrToIgnoresStaleRefusalInReplicate) {
  Progress pr(8, 1 << 20);
  pr.match = 5;
  pr.BecomeReplicate();
  pr.next = 12;  // entries 6..11 in flight

  EXPECT_FALSE(pr.MaybeDecrTo(5, 1));
  EXPECT_FALSE(pr.MaybeDecrTo(3, 1));
  EXPECT_EQ(pr.next, 12u);

  EXPECT_TRUE(pr.MaybeDecrTo(8, 2));
  EXPECT_EQ(pr.next, 6u);
}

TEST(Progress, MaybeUpdateIgnoresStaleAcknowledgements) {
  Progress pr(8, 1 << 20);
  pr.next = 4;
  pr.probe_sent = true;

  EXPECT_TRUE(pr.MaybeUpdate(3));
  EXPECT_EQ(pr.match, 3u);
  EXPECT_EQ(pr.next, 4u);
  EXPECT_FALSE(pr.probe_sent);

  EXPECT_FALSE(pr.MaybeUpdate(2));
  EXPECT_EQ(pr.match, 3u);  // match_index never moves back
  EXPECT_FALSE(pr.MaybeUpdate(3));
}

TEST(Progress, IsPausedByState) {
  Progress pr(2, 1 << 20);
  EXPECT_EQ(pr.state, Progress::State::kProbe);
  EXPECT_FALSE(pr.IsPaused());
  pr.probe_sent = true;
  EXPECT_TRUE(pr.IsPaused());  // probe: one message at a time

  pr.BecomeReplicate();
  EXPECT_FALSE(pr.IsPaused());
  pr.inflights.Add(1, 10);
  EXPECT_FALSE(pr.IsPaused());
  pr.inflights.Add(2, 10);
  EXPECT_TRUE(pr.IsPaused());  // replicate: the window is full

  pr.BecomeSnapshot(7);
  EXPECT_TRUE(pr.IsPaused());  // snapshot: nothing until it is acknowledged
  EXPECT_EQ(pr.inflights.count(), 0u);

  // Leaving snapshot state assumes the snapshot arrived: probe right after it.
  pr.BecomeProbe();
  EXPECT_EQ(pr.state, Progress::State::kProbe);
  EXPECT_EQ(pr.next, 8u);
  EXPECT_FALSE(pr.IsPaused());
}

}  // namespace
}  // namespace raft
