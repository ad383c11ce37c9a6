#include "server/command_counts.h"

#include <gtest/gtest.h>

namespace server {
namespace {

TEST(CommandCounts, NothingRecordedCountsOneCommandPerEntry) {
  CommandCounts c;
  EXPECT_EQ(c.TailStart(100, 10), 90u);
  EXPECT_EQ(c.TailStart(5, 10), 0u);
  EXPECT_EQ(c.TailStart(100, 0), 100u);
}

TEST(CommandCounts, TheTailHoldsAtMostKeepCommands) {
  CommandCounts c;
  // Entries 1..6 holding 1, 8, 8, 1, 3, 2 commands (0 counts as one).
  const uint64_t held[] = {0, 8, 8, 1, 3, 2};
  for (raft::Index i = 1; i <= 6; i++) c.Add(i, held[i - 1]);
  EXPECT_EQ(c.total(), 23u);
  EXPECT_EQ(c.TailStart(6, 0), 6u);   // nothing kept
  EXPECT_EQ(c.TailStart(6, 1), 6u);   // entry 6 alone holds 2
  EXPECT_EQ(c.TailStart(6, 2), 5u);   // entry 6
  EXPECT_EQ(c.TailStart(6, 5), 4u);   // entries 5 and 6
  EXPECT_EQ(c.TailStart(6, 6), 3u);   // entries 4 to 6
  EXPECT_EQ(c.TailStart(6, 13), 3u);  // entry 3 would make 14
  EXPECT_EQ(c.TailStart(6, 14), 2u);
  EXPECT_EQ(c.TailStart(6, 22), 1u);
  EXPECT_EQ(c.TailStart(6, 23), 0u);  // everything
  EXPECT_EQ(c.TailStart(6, 1000), 0u);
}

TEST(CommandCounts, BelowTheFirstRecordedEntryEachEntryCountsOne) {
  CommandCounts c;
  // Applied up to 100 before recording started (a restart), then 101 and 102 with 4 each.
  c.Add(101, 4);
  c.Add(102, 4);
  EXPECT_EQ(c.TailStart(102, 8), 100u);
  EXPECT_EQ(c.TailStart(102, 11), 97u);  // 8 recorded, 3 entries below
  EXPECT_EQ(c.TailStart(102, 500), 0u);
}

TEST(CommandCounts, DroppedEntriesAreForgottenAndTheTotalStays) {
  CommandCounts c;
  for (raft::Index i = 1; i <= 10; i++) c.Add(i, 5);
  c.DropThrough(7);
  EXPECT_EQ(c.size(), 3u);
  EXPECT_EQ(c.total(), 50u);
  EXPECT_EQ(c.TailStart(10, 10), 8u);
  // Past what is recorded: one per entry below entry 8.
  EXPECT_EQ(c.TailStart(10, 17), 5u);
  c.Clear();
  EXPECT_EQ(c.size(), 0u);
  EXPECT_EQ(c.total(), 50u);
  c.Add(40, 3);  // after a snapshot install at 39
  EXPECT_EQ(c.TailStart(40, 3), 39u);
  EXPECT_EQ(c.TailStart(40, 2), 40u);
}

}  // namespace
}  // namespace server
