// A follower that missed a compaction catches up by snapshot, on real processes: RAFT.COMPACT
// on the leader drops the entries the stopped follower lacks, so when it comes back only a
// streamed snapshot can bring it up to date. It must then serve the data (through
// forwarding and as part of the quorum) and keep it across a restart.
#include <unistd.h>

#include <string>
#include <vector>

#include "tests/integration/cluster.h"

namespace raftkv_it {
namespace {

// Polls `done` every 100 ms until it holds or `timeout` passes.
template <typename F>
bool WaitFor(F done, Millis timeout) {
  Clock::time_point deadline = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() > deadline) return false;
    usleep(100 * 1000);
  }
  return true;
}

TEST(IntegrationSnapshot, FollowerThatMissedACompactionCatchesUpBySnapshot) {
  TestCluster cluster(3, {{"snapshot-entries", "0"}});  // only RAFT.COMPACT compacts
  ASSERT_TRUE(cluster.Start());
  int leader = 0;
  ASSERT_TRUE(cluster.WaitLeader(Millis(20000), &leader));
  int lagging = leader % 3 + 1;
  int other = lagging % 3 + 1;
  ASSERT_NE(other, leader);
  cluster.Kill(lagging);

  RedisClient c = cluster.Connect(leader);
  ASSERT_TRUE(c.connected()) << c.error();
  for (int batch = 0; batch < 20; batch++) {
    std::vector<std::string> mset = {"MSET"};
    for (int i = 0; i < 50; i++) {
      mset.push_back("snap:" + std::to_string(batch * 50 + i));
      mset.push_back(std::string(200, static_cast<char>('a' + batch)));
    }
    ASSERT_EQ(c.Call(mset), Status("OK"));
  }
  ReplyPtr compacted = c.Command({"RAFT.COMPACT"});
  ASSERT_TRUE(compacted);
  ASSERT_EQ(compacted->type, REDIS_REPLY_INTEGER) << Encode(compacted.get());
  const uint64_t snapshot_index = static_cast<uint64_t>(compacted->integer);
  EXPECT_GE(snapshot_index, 20u);
  ASSERT_TRUE(WaitFor(
      [&] { return InfoNumber(cluster.Info(leader), "raft_snapshot_index") >= snapshot_index; },
      Millis(10000)));

  ASSERT_TRUE(cluster.StartNode(lagging));
  // The entries it lacks are gone from every log: only a snapshot can bring it up to date.
  ASSERT_TRUE(WaitFor(
      [&] {
        InfoMap info = cluster.Info(lagging);
        return InfoNumber(info, "raft_applied_index") >= snapshot_index &&
               InfoNumber(info, "raft_snapshot_index") >= snapshot_index;
      },
      Millis(30000)))
      << "node " << lagging << " never caught up";
  EXPECT_NE(cluster.Log(leader).find("snapshot"), std::string::npos);
  EXPECT_GE(InfoNumber(cluster.Info(lagging), "raft_snapshots_installed"), 1u);
  EXPECT_GE(InfoNumber(cluster.Info(leader), "raft_snapshots_sent"), 1u);

  // With the other follower gone, the caught-up node is half of the quorum.
  cluster.Kill(other);
  RedisClient f = cluster.Connect(lagging);
  ASSERT_TRUE(f.connected()) << f.error();
  EXPECT_EQ(f.Call({"GET", "snap:0"}), Bulk(std::string(200, 'a')));
  EXPECT_EQ(f.Call({"GET", "snap:999"}), Bulk(std::string(200, 't')));
  EXPECT_EQ(f.Call({"DBSIZE"}), Int(1000));
  EXPECT_EQ(f.Call({"SET", "after", "snapshot"}), Status("OK"));

  // Its own disk holds the installed state.
  cluster.Kill(leader);
  ASSERT_TRUE(cluster.Restart(lagging));
  ASSERT_TRUE(cluster.StartNode(other));
  int now = 0;
  ASSERT_TRUE(cluster.WaitLeader(Millis(20000), &now));
  RedisClient again = cluster.Connect(lagging);
  EXPECT_EQ(again.Call({"GET", "snap:500"}), Bulk(std::string(200, 'k')));
  EXPECT_EQ(again.Call({"GET", "after"}), Bulk("snapshot"));
}

TEST(IntegrationSnapshot, CompactWrongArguments) {
  TestCluster cluster(1);
  ASSERT_TRUE(cluster.Start());
  RedisClient c = cluster.Connect(1);
  EXPECT_EQ(c.Call({"RAFT.COMPACT", "now"}), WrongArgs("raft.compact"));
}

}  // namespace
}  // namespace raftkv_it
