// Whole-cluster restarts on real processes: every node stopped with SIGTERM (a clean
// shutdown), or killed with SIGKILL (a crash of every node at once), then started again on
// the same data. A leader is elected and every acknowledged write is there.
#include <string>
#include <vector>

#include "tests/integration/cluster.h"

namespace raftkv_it {
namespace {

constexpr int kKeys = 100;

std::string Key(int i) { return "rs:key:" + std::to_string(i); }
std::string Value(int i, int round) {
  return "round-" + std::to_string(round) + "-value-" + std::to_string(i);
}

// Writes kKeys keys through the leader; returns the ones acknowledged with +OK.
std::vector<int> WriteKeys(TestCluster& cluster, int round) {
  std::vector<int> acknowledged;
  int leader = 0;
  EXPECT_TRUE(cluster.WaitLeader(Millis(20000), &leader));
  if (leader == 0) return acknowledged;
  RedisClient c = cluster.Connect(leader);
  EXPECT_TRUE(c.connected()) << c.error();
  for (int i = 0; i < kKeys; i++) {
    std::string reply = c.Call({"SET", Key(i), Value(i, round)});
    if (reply == Status("OK")) {
      acknowledged.push_back(i);
    } else {
      ADD_FAILURE() << "SET " << Key(i) << ": " << reply;
    }
  }
  EXPECT_EQ(c.Call({"INCR", "rs:counter"}), Int(round));
  return acknowledged;
}

// Every acknowledged key holds its value of `round`, read from the leader.
void ExpectKeys(TestCluster& cluster, const std::vector<int>& acknowledged, int round) {
  int leader = 0;
  ASSERT_TRUE(cluster.WaitLeader(Millis(20000), &leader));
  RedisClient c = cluster.Connect(leader);
  ASSERT_TRUE(c.connected()) << c.error();
  std::vector<std::string> args = {"MGET"};
  for (int i : acknowledged) args.push_back(Key(i));
  ReplyPtr r = c.Command(args);
  ASSERT_NE(r, nullptr) << c.error();
  ASSERT_EQ(r->type, REDIS_REPLY_ARRAY) << Encode(r.get());
  ASSERT_EQ(r->elements, acknowledged.size());
  for (size_t j = 0; j < acknowledged.size(); j++) {
    EXPECT_EQ(Encode(r->element[j]), Bulk(Value(acknowledged[j], round))) << Key(acknowledged[j]);
  }
  EXPECT_EQ(c.Call({"GET", "rs:counter"}), Bulk(std::to_string(round)));
  // The restarted cluster takes writes.
  EXPECT_EQ(c.Call({"SET", "rs:after-restart", std::to_string(round)}), Status("OK"));
}

TEST(IntegrationRestart, AllNodesStoppedWithSigtermKeepEveryWrite) {
  TestCluster cluster(3);
  ASSERT_TRUE(cluster.Start());
  for (int round = 1; round <= 2; round++) {
    SCOPED_TRACE("round " + std::to_string(round));
    std::vector<int> acknowledged = WriteKeys(cluster, round);
    ASSERT_EQ(acknowledged.size(), static_cast<size_t>(kKeys));
    for (int id = 1; id <= cluster.size(); id++) {
      EXPECT_TRUE(cluster.Stop(id)) << "node " << id;
    }
    ASSERT_TRUE(cluster.Start());
    ExpectKeys(cluster, acknowledged, round);
  }
}

TEST(IntegrationRestart, AllNodesKilledKeepEveryAcknowledgedWrite) {
  TestCluster cluster(3);
  ASSERT_TRUE(cluster.Start());
  for (int round = 1; round <= 2; round++) {
    SCOPED_TRACE("round " + std::to_string(round));
    std::vector<int> acknowledged = WriteKeys(cluster, round);
    ASSERT_FALSE(acknowledged.empty());
    for (int id = 1; id <= cluster.size(); id++) cluster.Kill(id);
    ASSERT_TRUE(cluster.Start());
    ExpectKeys(cluster, acknowledged, round);
  }
}

}  // namespace
}  // namespace raftkv_it
