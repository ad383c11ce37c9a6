// Tests of the simulator itself: determinism, crash semantics, partitions, snapshot streams.
#include <gtest/gtest.h>

#include "tests/sim/cluster.h"
#include "tests/sim/swarm.h"

namespace sim {
namespace {

int LeaderOf(Cluster& c) {
  for (int i = 0; i < c.size(); i++) {
    if (c.alive(i) && c.connected(i) && c.node(i)->role() == raft::Role::kLeader) return i;
  }
  return -1;
}

TEST(Sim, SameSeedSameRun) {
  auto run = [](uint64_t seed) {
    ClusterOptions o;
    o.n = 5;
    o.seed = seed;
    o.max_persist_delay = 5 * kMs;
    Cluster c(o);
    c.SetReliable(false);
    std::string trace;
    for (int k = 0; k < 200; k++) {
      c.RunFor(20 * kMs);
      int l = LeaderOf(c);
      if (l >= 0) c.Start(l, "x" + std::to_string(k));
      if (k % 50 == 10) c.Crash(k % 5);
      if (k % 50 == 30) {
        c.Restart(k % 5 == 0 ? 0 : (k - 20) % 5);
        c.Connect((k - 20) % 5);
      }
    }
    for (const auto& [index, te] : c.committed())
      trace += std::to_string(index) + ":" + std::to_string(te.first) + ";";
    return trace + "rpcs=" + std::to_string(c.total_rpcs());
  };
  std::string a = run(42), b = run(42), other = run(43);
  EXPECT_FALSE(a.empty());
  EXPECT_EQ(a, b);
  EXPECT_NE(a, other);
}

TEST(Sim, CrashKeepsOnlySyncedState) {
  ClusterOptions o;
  o.n = 1;
  o.seed = 7;
  o.max_persist_delay = 0;
  Cluster c(o);
  c.RunFor(2000 * kMs);
  ASSERT_EQ(c.node(0)->role(), raft::Role::kLeader);
  ASSERT_TRUE(c.Start(0, "a").ok);
  c.RunFor(50 * kMs);
  raft::Index durable = c.node(0)->log().last_index();
  ASSERT_EQ(c.applied(0).size(), 1u);
  // "b" is only in memory: the crash comes before the event loop hands it to storage.
  ASSERT_TRUE(c.Start(0, "b").ok);
  EXPECT_EQ(c.node(0)->log().last_index(), durable + 1);
  c.Crash(0);
  c.Restart(0);
  EXPECT_EQ(c.node(0)->log().last_index(), durable);
  c.Connect(0);
  c.RunFor(2000 * kMs);
  EXPECT_EQ(c.applied(0).size(), 1u);  // "b" is gone, "a" is still there
  EXPECT_EQ(c.applied(0).at(1), "a");
}

TEST(Sim, DisconnectedNodeReceivesNothing) {
  ClusterOptions o;
  o.n = 3;
  o.seed = 3;
  Cluster c(o);
  c.RunFor(3000 * kMs);
  int l = LeaderOf(c);
  ASSERT_GE(l, 0);
  int f = (l + 1) % 3;
  c.Disconnect(f);
  int64_t before = c.rpc_count(f);
  c.RunFor(2000 * kMs);
  EXPECT_EQ(c.rpc_count(f), before);
  EXPECT_NE(c.node(f)->role(), raft::Role::kLeader);
}

TEST(Sim, PartitionGroupsSplitTheCluster) {
  ClusterOptions o;
  o.n = 5;
  o.seed = 11;
  Cluster c(o);
  c.RunFor(3000 * kMs);
  c.SetGroups({0, 0, 0, 1, 1});
  c.RunFor(3000 * kMs);
  int leaders_major = 0;
  for (int i = 0; i < 3; i++) leaders_major += c.node(i)->role() == raft::Role::kLeader;
  EXPECT_EQ(leaders_major, 1);
  for (int i = 3; i < 5; i++) EXPECT_NE(c.node(i)->role(), raft::Role::kLeader);
}

TEST(Sim, SnapshotEncodingRoundTrips) {
  SmSnapshot s;
  s.meta = {17, 3};
  s.cmds = {"a", "", std::string(300, 'z')};
  SmSnapshot back;
  ASSERT_TRUE(DecodeSnapshot(EncodeSnapshot(s), &back));
  EXPECT_EQ(back.meta, s.meta);
  EXPECT_EQ(back.cmds, s.cmds);
  std::string bytes = EncodeSnapshot(s);
  EXPECT_FALSE(DecodeSnapshot(bytes.substr(0, bytes.size() - 1), &back));
}

TEST(Sim, LaggingFollowerCatchesUpBySnapshotChunks) {
  ClusterOptions o;
  o.n = 3;
  o.seed = 5;
  o.snapshot_interval = 10;
  o.snapshot_chunk_bytes = 16;  // many chunks per snapshot
  Cluster c(o);
  c.RunFor(3000 * kMs);
  int l = LeaderOf(c);
  ASSERT_GE(l, 0);
  int f = (l + 1) % 3;
  c.Disconnect(f);
  for (int k = 0; k < 50; k++) {
    c.Start(l, "v" + std::to_string(k));
    c.RunFor(20 * kMs);
  }
  ASSERT_GT(c.node(l)->log().snapshot().index, 0u);
  c.Connect(f);
  c.RunFor(3000 * kMs);
  EXPECT_GE(c.node(f)->log().snapshot().index, c.node(l)->log().snapshot().index);
  EXPECT_EQ(c.applied(f).size(), c.applied(l).size());
  EXPECT_TRUE(c.violations().empty());
}

TEST(Sim, SwarmSeedPasses) {
  SwarmResult r = RunSwarmSeed(1, 0, false);
  EXPECT_TRUE(r.ok) << r.failure;
  EXPECT_GT(r.commands, 0);
}

}  // namespace
}  // namespace sim
