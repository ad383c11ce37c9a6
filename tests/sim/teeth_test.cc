// The simulator has teeth: each known Raft bug, switched on in the core, is caught by the
// swarm within a fixed number of seeds. If one of these tests fails, the checks have gone
// blind to that bug.
#include <gtest/gtest.h>

#include <cstdio>

#include "raft/config.h"
#include "tests/sim/swarm.h"

namespace sim {
namespace {

// Runs seeds 1..limit with the bug on, stopping at the first failure.
void ExpectCaught(uint32_t bug, uint64_t limit) {
  SwarmSummary s = RunSeeds(1, limit, bug, 2, /*stop_at_first_failure=*/true);
  ASSERT_GT(s.failures, 0) << "bug not caught in " << limit << " seeds";
  std::printf("caught after %lld seeds, first at seed %llu: %s\n", static_cast<long long>(s.seeds),
              static_cast<unsigned long long>(s.failing_seeds[0]), s.messages[0].c_str());
}

// Figure 8's hazard needs a rare interleaving (a leader bringing a follower up to its no-op
// over several round trips, cut off in between); the swarm finds it about once in 400 seeds.
TEST(SimTeeth, CommitPreviousTermIsCaught) { ExpectCaught(raft::kBugCommitPreviousTerm, 3000); }
TEST(SimTeeth, DoubleVoteIsCaught) { ExpectCaught(raft::kBugDoubleVote, 500); }
TEST(SimTeeth, ReplyBeforePersistIsCaught) { ExpectCaught(raft::kBugReplyBeforePersist, 500); }
TEST(SimTeeth, NoElectionRestrictionIsCaught) {
  ExpectCaught(raft::kBugNoElectionRestriction, 500);
}

TEST(SimTeeth, CorrectCoreHasNoFailures) {
  SwarmSummary s = RunSeeds(1, 50, raft::kBugNone, 2);
  EXPECT_EQ(s.seeds, 50);
  EXPECT_EQ(s.failures, 0) << (s.messages.empty() ? "" : s.messages[0]);
}

}  // namespace
}  // namespace sim
