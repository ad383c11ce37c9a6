// Failover on real processes: the leader of a 3-node cluster is killed (SIGKILL) after
// acknowledging writes; the other two elect a new leader that has every acknowledged write
// and takes new ones; the killed node, restarted on its data, catches up.
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/cluster.h"

namespace raftkv_it {
namespace {

constexpr int kKeys = 200;

std::string Key(int i) { return "fo:key:" + std::to_string(i); }
std::string Value(int i) { return "value-" + std::to_string(i) + "-" + std::string(20, 'v'); }

// MGET of keys[...]: the values as encoded replies, or an error text.
std::vector<std::string> ReadAll(RedisClient& c, const std::vector<int>& keys) {
  std::vector<std::string> args = {"MGET"};
  for (int i : keys) args.push_back(Key(i));
  ReplyPtr r = c.Command(args);
  if (!r) return {"<io error: " + c.error() + ">"};
  if (r->type != REDIS_REPLY_ARRAY) return {Encode(r.get())};
  std::vector<std::string> values;
  for (size_t i = 0; i < r->elements; i++) values.push_back(Encode(r->element[i]));
  return values;
}

TEST(IntegrationFailover, LeaderKilledNewLeaderHasEveryAcknowledgedWrite) {
  TestCluster cluster(3);
  ASSERT_TRUE(cluster.Start());
  int old_leader = 0;
  ASSERT_TRUE(cluster.WaitLeader(Millis(20000), &old_leader));

  std::vector<int> acknowledged;
  {
    RedisClient c = cluster.Connect(old_leader);
    ASSERT_TRUE(c.connected()) << c.error();
    for (int i = 0; i < kKeys; i++) {
      std::string reply = c.Call({"SET", Key(i), Value(i)});
      if (reply == Status("OK")) {
        acknowledged.push_back(i);
      } else {
        ADD_FAILURE() << "SET " << Key(i) << " on a stable leader: " << reply;
      }
    }
  }
  ASSERT_EQ(acknowledged.size(), static_cast<size_t>(kKeys));

  cluster.Kill(old_leader);
  int new_leader = 0;
  ASSERT_TRUE(cluster.WaitLeader(Millis(10000), &new_leader));
  ASSERT_NE(new_leader, old_leader);

  RedisClient c = cluster.Connect(new_leader);
  ASSERT_TRUE(c.connected()) << c.error();
  EXPECT_EQ(c.Call({"SET", "fo:after", "new"}), Status("OK"));
  EXPECT_EQ(c.Call({"GET", "fo:after"}), Bulk("new"));
  EXPECT_EQ(c.Call({"INCR", "fo:counter"}), Int(1));
  std::vector<std::string> values = ReadAll(c, acknowledged);
  ASSERT_EQ(values.size(), acknowledged.size()) << values[0];
  for (size_t j = 0; j < acknowledged.size(); j++) {
    EXPECT_EQ(values[j], Bulk(Value(acknowledged[j]))) << Key(acknowledged[j]);
  }
  EXPECT_EQ(c.Call({"DBSIZE"}), Int(kKeys + 2));

  // The killed node restarts on its data and catches up with the leader.
  ASSERT_TRUE(cluster.StartNode(old_leader));
  const uint64_t commit = InfoNumber(cluster.Info(new_leader), "raft_commit_index");
  ASSERT_GT(commit, static_cast<uint64_t>(kKeys));
  const Clock::time_point deadline = Clock::now() + Millis(20000);
  uint64_t applied = 0;
  while (Clock::now() < deadline) {
    applied = InfoNumber(cluster.Info(old_leader), "raft_applied_index");
    if (applied >= commit) break;
    std::this_thread::sleep_for(Millis(50));
  }
  EXPECT_GE(applied, commit) << "node " << old_leader << " did not catch up";
  InfoMap rejoined = cluster.Info(old_leader);
  EXPECT_EQ(rejoined["raft_role"], "follower");
  EXPECT_EQ(rejoined["raft_leader_id"], std::to_string(new_leader));

  // Still one cluster: a leader agreed by all and writes go through.
  int leader = 0;
  ASSERT_TRUE(cluster.WaitLeader(Millis(10000), &leader));
  RedisClient again = cluster.Connect(leader);
  EXPECT_EQ(again.Call({"SET", "fo:rejoined", "yes"}), Status("OK"));
  EXPECT_EQ(again.Call({"GET", Key(kKeys - 1)}), Bulk(Value(kKeys - 1)));
}

}  // namespace
}  // namespace raftkv_it
