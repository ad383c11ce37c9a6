// Exactly-once sessions on real processes: RAFT.SESSION and RAFT.REQUEST answered the same on
// every node, expiry by cluster time, and writes forwarded by a follower that are applied once
// each although the leader dies while they are in flight.
#include <hiredis/hiredis.h>

#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/cluster.h"

namespace raftkv_it {
namespace {

int Follower(int leader, int nodes) { return leader % nodes + 1; }

// The number of times each ';'-terminated token occurs in `value`.
std::map<std::string, int> Tokens(const std::string& value) {
  std::map<std::string, int> count;
  size_t start = 0;
  for (size_t i = 0; i < value.size(); i++) {
    if (value[i] != ';') continue;
    count[value.substr(start, i - start)]++;
    start = i + 1;
  }
  return count;
}

TEST(IntegrationSession, RequestsApplyOnceWhicheverNodeTheyReach) {
  TestCluster cluster(3);
  ASSERT_TRUE(cluster.Start());
  int leader = 0;
  ASSERT_TRUE(cluster.WaitLeader(Millis(20000), &leader));
  const int f1 = Follower(leader, 3);
  const int f2 = Follower(f1, 3);
  RedisClient a = cluster.Connect(f1);
  RedisClient b = cluster.Connect(leader);
  RedisClient c = cluster.Connect(f2);

  ReplyPtr opened = a.Command({"RAFT.SESSION", "OPEN"});
  ASSERT_TRUE(opened != nullptr) << a.error();
  ASSERT_EQ(opened->type, REDIS_REPLY_INTEGER) << Encode(opened.get());
  const std::string id = std::to_string(opened->integer);

  // Request 1 through a follower, then its retries through the leader and the other follower.
  EXPECT_EQ(a.Call({"RAFT.REQUEST", id, "1", "1", "APPEND", "s:log", "a;"}), Int(2));
  EXPECT_EQ(b.Call({"RAFT.REQUEST", id, "1", "1", "APPEND", "s:log", "a;"}), Int(2));
  EXPECT_EQ(c.Call({"RAFT.REQUEST", id, "1", "1", "APPEND", "s:log", "a;"}), Int(2));
  // Requests 2 and 3 in flight at once (pipelined), then acknowledged.
  ASSERT_EQ(redisAppendCommand(b.context(), "RAFT.REQUEST %s 2 1 APPEND s:log b;", id.c_str()),
            REDIS_OK);
  ASSERT_EQ(redisAppendCommand(b.context(), "RAFT.REQUEST %s 3 1 APPEND s:log c;", id.c_str()),
            REDIS_OK);
  for (int i = 0; i < 2; i++) {
    void* r = nullptr;
    ASSERT_EQ(redisGetReply(b.context(), &r), REDIS_OK) << b.error();
    ReplyPtr reply(static_cast<redisReply*>(r));
    EXPECT_EQ(Encode(reply.get()), Int(4 + 2 * i));
  }
  EXPECT_EQ(c.Call({"RAFT.REQUEST", id, "2", "1", "APPEND", "s:log", "b;"}), Int(4));
  EXPECT_EQ(a.Call({"GET", "s:log"}), Bulk("a;b;c;"));
  // A copy of request 1 after the client acknowledged it: refused, not applied.
  EXPECT_EQ(a.Call({"RAFT.REQUEST", id, "4", "4", "APPEND", "s:log", "d;"}), Int(8));
  EXPECT_EQ(c.Call({"RAFT.REQUEST", id, "1", "1", "APPEND", "s:log", "a;"}),
            Err("ERR request 1 of session " + id + " was already acknowledged"));
  EXPECT_EQ(b.Call({"GET", "s:log"}), Bulk("a;b;c;d;"));
  // Reads run as they are; a session nobody opened refuses writes, unapplied.
  EXPECT_EQ(c.Call({"RAFT.REQUEST", id, "5", "5", "GET", "s:log"}), Bulk("a;b;c;d;"));
  EXPECT_EQ(c.Call({"RAFT.REQUEST", "77777", "1", "1", "SET", "s:other", "x"}),
            Err("SESSIONEXPIRED session 77777 is unknown or expired"));
  EXPECT_EQ(c.Call({"EXISTS", "s:other"}), Int(0));
  // A refusal is the whole reply, whatever the command would have answered.
  EXPECT_EQ(c.Call({"RAFT.REQUEST", "77777", "1", "1", "SETNX", "s:other", "x"}),
            Err("SESSIONEXPIRED session 77777 is unknown or expired"));
  // Bad input.
  EXPECT_EQ(c.Call({"RAFT.REQUEST", id, "0", "1", "SET", "k", "v"}),
            Err("ERR invalid request number '0'"));
  EXPECT_EQ(c.Call({"RAFT.REQUEST", "x", "1", "1", "SET", "k", "v"}),
            Err("ERR invalid session id 'x'"));
  EXPECT_EQ(c.Call({"RAFT.REQUEST", id, "1", "1", "SET", "k"}), WrongArgs("set"));
  EXPECT_EQ(c.Call({"RAFT.REQUEST", id, "1", "1", "MULTI"}),
            Err("ERR RAFT.REQUEST cannot run 'MULTI'"));
  EXPECT_EQ(c.Call({"RAFT.SESSION", "OPEN", "0"}),
            Err("ERR invalid session timeout '0': seconds from 1 to 604800"));
  // Every node counts the session; closing it ends it everywhere.
  for (int id_ = 1; id_ <= 3; id_++) EXPECT_GE(InfoNumber(cluster.Info(id_), "raft_sessions"), 1u);
  EXPECT_EQ(c.Call({"RAFT.SESSION", "CLOSE", id}), Status("OK"));
  EXPECT_EQ(a.Call({"RAFT.REQUEST", id, "5", "5", "APPEND", "s:log", "e;"}),
            Err("SESSIONEXPIRED session " + id + " is unknown or expired"));
  EXPECT_EQ(b.Call({"GET", "s:log"}), Bulk("a;b;c;d;"));
}

TEST(IntegrationSession, SessionExpiresAfterItsTimeoutOfClusterTime) {
  TestCluster cluster(3);
  ASSERT_TRUE(cluster.Start());
  int leader = 0;
  ASSERT_TRUE(cluster.WaitLeader(Millis(20000), &leader));
  RedisClient c = cluster.Connect(leader);
  ReplyPtr opened = c.Command({"RAFT.SESSION", "OPEN", "1"});
  ASSERT_TRUE(opened != nullptr && opened->type == REDIS_REPLY_INTEGER);
  const std::string id = std::to_string(opened->integer);
  EXPECT_EQ(c.Call({"RAFT.REQUEST", id, "1", "1", "SET", "e:k", "1"}), Status("OK"));
  // Expiry needs an entry stamped after the timeout: any write brings cluster time forward.
  std::this_thread::sleep_for(Millis(1500));
  EXPECT_EQ(c.Call({"SET", "e:tick", "x"}), Status("OK"));
  EXPECT_EQ(c.Call({"RAFT.REQUEST", id, "2", "2", "SET", "e:k", "2"}),
            Err("SESSIONEXPIRED session " + id + " is unknown or expired"));
  EXPECT_EQ(c.Call({"GET", "e:k"}), Bulk("1"));
}

// Plain APPENDs pipelined through a follower (which forwards them in its own session) while
// the leader is killed: whatever the follower acknowledged is in the value exactly once,
// nothing is in it twice, and the writes applied in the order they were sent.
TEST(IntegrationSession, ForwardedWritesApplyOnceAcrossALeaderKill) {
  TestCluster cluster(3);
  ASSERT_TRUE(cluster.Start());
  int leader = 0;
  ASSERT_TRUE(cluster.WaitLeader(Millis(20000), &leader));
  const int follower = Follower(leader, 3);
  RedisClient c = cluster.Connect(follower, Millis(30000));
  ASSERT_TRUE(c.connected()) << c.error();

  constexpr int kBatch = 300;
  int sent = 0;
  std::set<std::string> acknowledged;
  int unknown = 0;
  auto send = [&](int n) {
    for (int i = 0; i < n; i++, sent++) {
      const std::string token = "t" + std::to_string(sent) + ";";
      ASSERT_EQ(redisAppendCommand(c.context(), "APPEND f:log %s", token.c_str()), REDIS_OK);
    }
  };
  auto collect = [&](int first, int n) {
    for (int i = first; i < first + n; i++) {
      void* r = nullptr;
      ASSERT_EQ(redisGetReply(c.context(), &r), REDIS_OK) << c.error();
      ReplyPtr reply(static_cast<redisReply*>(r));
      if (reply->type == REDIS_REPLY_INTEGER) {
        acknowledged.insert("t" + std::to_string(i));
      } else {
        ASSERT_EQ(reply->type, REDIS_REPLY_ERROR);
        std::string text(reply->str, reply->len);
        EXPECT_TRUE(text.starts_with("TIMEOUT") || text.starts_with("CLUSTERDOWN")) << text;
        unknown++;
      }
    }
  };
  send(kBatch);
  collect(0, kBatch);
  ASSERT_EQ(acknowledged.size(), static_cast<size_t>(kBatch));
  // A second batch, the leader killed while it is being forwarded.
  send(kBatch);
  ASSERT_EQ(redisBufferWrite(c.context(), nullptr), REDIS_OK);
  std::this_thread::sleep_for(Millis(5));
  cluster.Kill(leader);
  collect(kBatch, kBatch);
  int new_leader = 0;
  ASSERT_TRUE(cluster.WaitLeader(Millis(20000), &new_leader));

  RedisClient check = cluster.Connect(follower);
  ReplyPtr value = check.Command({"GET", "f:log"});
  ASSERT_TRUE(value != nullptr && value->type == REDIS_REPLY_STRING) << check.error();
  std::map<std::string, int> tokens = Tokens(std::string(value->str, value->len));
  for (const std::string& t : acknowledged) {
    EXPECT_EQ(tokens.count(t) ? tokens[t] : 0, 1) << "acknowledged " << t;
  }
  for (const auto& [t, n] : tokens) EXPECT_EQ(n, 1) << t << " applied " << n << " times";
  // One connection's pipeline applies in the order it was sent, resent writes included.
  const std::string all(value->str, value->len);
  int previous = -1;
  for (size_t start = 0, end; (end = all.find(';', start)) != std::string::npos; start = end + 1) {
    const int index = std::stoi(all.substr(start + 1, end - start - 1));
    EXPECT_GT(index, previous) << "t" << index << " applied after t" << previous;
    previous = index;
  }
  EXPECT_LE(tokens.size(), static_cast<size_t>(2 * kBatch));
  std::printf(
      "acknowledged %zu of %d, unknown %d, applied %zu, follower retries %llu\n",
      acknowledged.size(), 2 * kBatch, unknown, tokens.size(),
      static_cast<unsigned long long>(InfoNumber(cluster.Info(follower), "forward_retries")));
}

}  // namespace
}  // namespace raftkv_it
