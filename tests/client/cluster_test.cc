// The client library against real raftkv-server processes (tests/integration/cluster.h): the
// outcomes of the basic commands, leader discovery, clients pinned to followers, exactly-once
// appends under dropped replies and a killed leader, an expired session, and a cluster that is
// entirely down.
#include "tests/integration/cluster.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"

namespace raftkv::client {
namespace {

using Clock = std::chrono::steady_clock;
using raftkv_it::TestCluster;

constexpr Millis kLeaderWait(15000);

Endpoint NodeEndpoint(const TestCluster& cluster, int id) {
  return Endpoint{"127.0.0.1", cluster.Port(id)};
}

// Options naming nodes `ids` of the cluster, in that order.
Options OptionsFor(const TestCluster& cluster, const std::vector<int>& ids) {
  Options o;
  for (int id : ids) o.nodes.push_back(NodeEndpoint(cluster, id));
  o.op_timeout = Millis(20000);
  o.attempt_timeout = Millis(1000);
  o.retry_backoff = Millis(10);
  return o;
}

std::vector<int> AllIds(const TestCluster& cluster) {
  std::vector<int> ids;
  for (int id = 1; id <= cluster.size(); id++) ids.push_back(id);
  return ids;
}

// Splits "t0;t1;..." into its tokens and counts each.
std::map<std::string, int> CountTokens(const std::string& value) {
  std::map<std::string, int> count;
  size_t start = 0;
  while (start < value.size()) {
    size_t end = value.find(';', start);
    if (end == std::string::npos) end = value.size();
    count[value.substr(start, end - start)]++;
    start = end + 1;
  }
  return count;
}

// Every token t<first>..t<last-1> appears exactly once in `value`, and nothing else does.
::testing::AssertionResult EachTokenOnce(const std::string& value, int first, int last) {
  std::map<std::string, int> count = CountTokens(value);
  for (int i = first; i < last; i++) {
    const std::string token = "t" + std::to_string(i);
    auto it = count.find(token);
    if (it == count.end()) return ::testing::AssertionFailure() << token << " is missing";
    if (it->second != 1) {
      return ::testing::AssertionFailure() << token << " appears " << it->second << " times";
    }
    count.erase(it);
  }
  if (!count.empty()) {
    return ::testing::AssertionFailure() << "unexpected token " << count.begin()->first;
  }
  return ::testing::AssertionSuccess();
}

TEST(ClientCluster, OutcomesOfTheBasicCommands) {
  TestCluster cluster(3);
  ASSERT_TRUE(cluster.Start());
  int leader = 0;
  ASSERT_TRUE(cluster.WaitLeader(kLeaderWait, &leader));
  Client client(OptionsFor(cluster, AllIds(cluster)));
  common::Status s = client.Open();
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_GT(client.session(), 0u);

  Result r = client.Get("k");
  EXPECT_EQ(r.outcome, Outcome::kOk) << r.error;
  EXPECT_EQ(r.reply.type, Reply::Type::kNil);

  r = client.Set("k", "v");
  EXPECT_EQ(r.outcome, Outcome::kOk) << r.error;
  EXPECT_EQ(r.reply.type, Reply::Type::kStatus);
  EXPECT_EQ(r.reply.str, "OK");

  r = client.Append("k", "w");
  EXPECT_EQ(r.outcome, Outcome::kOk) << r.error;
  EXPECT_EQ(r.reply.type, Reply::Type::kInteger);
  EXPECT_EQ(r.reply.integer, 2);

  r = client.Get("k");
  EXPECT_EQ(r.outcome, Outcome::kOk) << r.error;
  EXPECT_EQ(r.reply.type, Reply::Type::kBulk);
  EXPECT_EQ(r.reply.str, "vw");

  r = client.Incr("n");
  EXPECT_EQ(r.outcome, Outcome::kOk) << r.error;
  EXPECT_EQ(r.reply.integer, 1);
  r = client.Incr("n");
  EXPECT_EQ(r.reply.integer, 2);

  // INCR on a value that is not an integer: the command's own error, definite.
  r = client.Incr("k");
  EXPECT_EQ(r.outcome, Outcome::kFailed);
  EXPECT_EQ(r.attempts, 1);
  EXPECT_EQ(r.reply.type, Reply::Type::kError);
  EXPECT_EQ(r.reply.str, "ERR value is not an integer or out of range");

  r = client.Del("k");
  EXPECT_EQ(r.outcome, Outcome::kOk) << r.error;
  EXPECT_EQ(r.reply.integer, 1);
  r = client.Del("k");
  EXPECT_EQ(r.outcome, Outcome::kOk) << r.error;
  EXPECT_EQ(r.reply.integer, 0);

  r = client.Write({"MSET", "a", "1", "b", "2"});
  EXPECT_EQ(r.outcome, Outcome::kOk) << r.error;
  r = client.Read({"MGET", "a", "b", "k"});
  EXPECT_EQ(r.outcome, Outcome::kOk) << r.error;
  ASSERT_EQ(r.reply.type, Reply::Type::kArray);
  ASSERT_EQ(r.reply.elements.size(), 3u);
  EXPECT_EQ(r.reply.elements[0].str, "1");
  EXPECT_EQ(r.reply.elements[1].str, "2");
  EXPECT_EQ(r.reply.elements[2].type, Reply::Type::kNil);

  // A command the server refuses outright.
  r = client.Write({"SET", "k"});
  EXPECT_EQ(r.outcome, Outcome::kFailed);
  EXPECT_EQ(r.reply.type, Reply::Type::kError);

  // What the client wrote is what a plain connection reads.
  raftkv_it::RedisClient plain = cluster.Connect(leader);
  EXPECT_EQ(plain.Call({"GET", "n"}), raftkv_it::Bulk("2"));
  client.Close();
  EXPECT_EQ(client.session(), 0u);
}

TEST(ClientCluster, PreferLeaderFindsTheLeader) {
  TestCluster cluster(3);
  ASSERT_TRUE(cluster.Start());
  int leader = 0;
  ASSERT_TRUE(cluster.WaitLeader(kLeaderWait, &leader));
  for (uint64_t seed = 1; seed <= 6; seed++) {
    Options o = OptionsFor(cluster, AllIds(cluster));
    o.seed = seed;  // starts from different nodes
    Client client(o);
    ASSERT_TRUE(client.Open().ok());
    Result r = client.Set("k" + std::to_string(seed), "v");
    ASSERT_EQ(r.outcome, Outcome::kOk) << r.error;
    EXPECT_EQ(client.current_node(), static_cast<size_t>(leader - 1)) << "seed " << seed;
  }
  // Without prefer_leader the client stays on nodes[0], here a follower (it forwards).
  const int follower = leader == 1 ? 2 : 1;
  Options o = OptionsFor(cluster, {follower, leader});
  o.prefer_leader = false;
  Client sticky(o);
  ASSERT_TRUE(sticky.Open().ok());
  for (int i = 0; i < 5; i++) {
    Result r = sticky.Incr("counter");
    ASSERT_EQ(r.outcome, Outcome::kOk) << r.error;
    EXPECT_EQ(r.reply.integer, i + 1);
    EXPECT_EQ(sticky.current_node(), 0u);
  }
}

TEST(ClientCluster, AClientPinnedToFollowersOnly) {
  TestCluster cluster(3);
  ASSERT_TRUE(cluster.Start());
  int leader = 0;
  ASSERT_TRUE(cluster.WaitLeader(kLeaderWait, &leader));
  std::vector<int> followers;
  for (int id : AllIds(cluster)) {
    if (id != leader) followers.push_back(id);
  }
  for (bool prefer_leader : {true, false}) {
    Options o = OptionsFor(cluster, followers);
    o.prefer_leader = prefer_leader;
    Client client(o);
    common::Status s = client.Open();
    ASSERT_TRUE(s.ok()) << s.ToString();
    const std::string key = prefer_leader ? "pinned-a" : "pinned-b";
    for (int i = 0; i < 20; i++) {
      Result r = client.Append(key, "t" + std::to_string(i) + ";");
      ASSERT_EQ(r.outcome, Outcome::kOk) << r.error;
    }
    Result r = client.Get(key);
    ASSERT_EQ(r.outcome, Outcome::kOk) << r.error;
    EXPECT_TRUE(EachTokenOnce(r.reply.str, 0, 20)) << r.reply.str;
    raftkv_it::RedisClient plain = cluster.Connect(leader);
    EXPECT_EQ(plain.Call({"GET", key}), raftkv_it::Bulk(r.reply.str));
  }
}

TEST(ClientCluster, DroppedRepliesStillApplyEachAppendOnce) {
  TestCluster cluster(3);
  ASSERT_TRUE(cluster.Start());
  int leader = 0;
  ASSERT_TRUE(cluster.WaitLeader(kLeaderWait, &leader));
  Options o = OptionsFor(cluster, AllIds(cluster));
  o.drop_reply_percent = 50;
  o.seed = 7;
  Client client(o);
  ASSERT_TRUE(client.Open().ok());
  constexpr int kAppends = 200;
  int attempts = 0;
  int64_t last_length = 0;
  for (int i = 0; i < kAppends; i++) {
    const std::string token = "t" + std::to_string(i) + ";";
    Result r = client.Append("log", token);
    ASSERT_EQ(r.outcome, Outcome::kOk) << "append " << i << ": " << r.error;
    ASSERT_EQ(r.reply.type, Reply::Type::kInteger);
    // The reply of a retried append is its first execution's: the length right after it.
    EXPECT_EQ(r.reply.integer, last_length + static_cast<int64_t>(token.size())) << i;
    last_length = r.reply.integer;
    attempts += r.attempts;
  }
  EXPECT_GT(attempts, kAppends + kAppends / 4) << "replies were dropped and retried";
  std::printf("%d appends took %d attempts\n", kAppends, attempts);

  Options plain_options = OptionsFor(cluster, AllIds(cluster));
  Client reader(plain_options);
  Result r = reader.Get("log");
  ASSERT_EQ(r.outcome, Outcome::kOk) << r.error;
  EXPECT_TRUE(EachTokenOnce(r.reply.str, 0, kAppends));
  EXPECT_EQ(static_cast<int64_t>(r.reply.str.size()), last_length);
}

TEST(ClientCluster, LeaderKilledMidRunLosesAndDuplicatesNothing) {
  TestCluster cluster(3);
  ASSERT_TRUE(cluster.Start());
  int leader = 0;
  ASSERT_TRUE(cluster.WaitLeader(kLeaderWait, &leader));
  Options o = OptionsFor(cluster, AllIds(cluster));
  o.op_timeout = Millis(30000);
  o.drop_reply_percent = 10;
  o.seed = 3;
  constexpr int kAppends = 150;
  std::atomic<int> done{0};
  std::vector<Result> results(kAppends);
  std::thread worker([&] {
    Client client(o);
    if (!client.Open().ok()) return;
    for (int i = 0; i < kAppends; i++) {
      results[i] = client.Append("log", "t" + std::to_string(i) + ";");
      done++;
    }
  });
  // Kill the leader once the run is well under way, while appends are in flight.
  const Clock::time_point give_up = Clock::now() + std::chrono::seconds(60);
  while (done.load() < 40 && Clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const int done_at_kill = done.load();
  cluster.Kill(leader);
  worker.join();
  EXPECT_LT(done_at_kill, kAppends) << "the leader died while the run went on";
  ASSERT_EQ(done.load(), kAppends) << "the client could not open its session";
  int retried = 0;
  for (int i = 0; i < kAppends; i++) {
    EXPECT_EQ(results[i].outcome, Outcome::kOk) << "append " << i << ": " << results[i].error;
    if (results[i].attempts > 1) retried++;
  }
  EXPECT_GT(retried, 0);
  int new_leader = 0;
  ASSERT_TRUE(cluster.WaitLeader(kLeaderWait, &new_leader));
  EXPECT_NE(new_leader, leader);
  Client reader(OptionsFor(cluster, AllIds(cluster)));
  Result r = reader.Get("log");
  ASSERT_EQ(r.outcome, Outcome::kOk) << r.error;
  EXPECT_TRUE(EachTokenOnce(r.reply.str, 0, kAppends));
}

TEST(ClientCluster, AnExpiredSessionFailsOneWriteAndIsReopened) {
  TestCluster cluster(3);
  ASSERT_TRUE(cluster.Start());
  int leader = 0;
  ASSERT_TRUE(cluster.WaitLeader(kLeaderWait, &leader));
  Options o = OptionsFor(cluster, AllIds(cluster));
  o.session_timeout_s = 1;
  Client client(o);
  ASSERT_TRUE(client.Open().ok());
  const uint64_t first = client.session();
  ASSERT_EQ(client.Set("k", "1").outcome, Outcome::kOk);
  // Sessions expire by cluster time, which moves with applied writes: wait, then write from
  // another client so that an entry at least a second later is applied.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  Client other(OptionsFor(cluster, AllIds(cluster)));
  ASSERT_EQ(other.Set("other", "x").outcome, Outcome::kOk);

  Result r = client.Set("k", "2");
  EXPECT_EQ(r.outcome, Outcome::kFailed) << r.error;
  EXPECT_NE(r.error.find("SESSIONEXPIRED"), std::string::npos) << r.error;
  EXPECT_EQ(client.session(), 0u);
  r = client.Set("k", "3");
  EXPECT_EQ(r.outcome, Outcome::kOk) << r.error;
  EXPECT_NE(client.session(), 0u);
  EXPECT_NE(client.session(), first);
  r = client.Get("k");
  EXPECT_EQ(r.reply.str, "3");
}

TEST(ClientCluster, AllNodesDownFailsWithinOpTimeout) {
  TestCluster cluster(3);
  ASSERT_TRUE(cluster.Start());
  int leader = 0;
  ASSERT_TRUE(cluster.WaitLeader(kLeaderWait, &leader));
  Options o = OptionsFor(cluster, AllIds(cluster));
  o.op_timeout = Millis(2000);
  Client opened(o);
  ASSERT_TRUE(opened.Open().ok());
  ASSERT_EQ(opened.Set("k", "v").outcome, Outcome::kOk);
  for (int id : AllIds(cluster)) cluster.Kill(id);

  // A client with live (now dead) connections and an open session, and a fresh one.
  Client fresh(o);
  for (Client* client : {&opened, &fresh}) {
    for (int op = 0; op < 2; op++) {
      const Clock::time_point start = Clock::now();
      Result r = op == 0 ? client->Set("k", "w") : client->Get("k");
      const auto took = Clock::now() - start;
      EXPECT_EQ(r.outcome, Outcome::kFailed) << r.error;
      EXPECT_NE(r.error.find("connect"), std::string::npos) << r.error;
      EXPECT_LE(took, o.op_timeout + Millis(1000));
    }
  }
  const Clock::time_point start = Clock::now();
  common::Status s = fresh.Open();
  EXPECT_FALSE(s.ok());
  EXPECT_LE(Clock::now() - start, o.op_timeout + Millis(1000));
}

}  // namespace
}  // namespace raftkv::client
