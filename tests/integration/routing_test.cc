// Any node serves any command (docs/commands.md, "Which node answers"), on real processes:
// forwarding from followers, MOVED mode (also through `redis-cli -c`), the CLUSTER commands,
// MULTI/EXEC as one atomic entry, KEYS/SCAN, leadership transfer (RAFT.TRANSFER-LEADER and
// SIGTERM), and the replies of DESIGN.md's table that need a cluster in a given state: rows
// 35-37 of the malformed-input table (too large, MOVED/CLUSTERDOWN, TIMEOUT) and -MISCONF.
#include <unistd.h>

#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "tests/integration/cluster.h"

namespace raftkv_it {
namespace {

int Follower(int leader, int n, int skip = 0) {
  for (int id = 1; id <= n; id++) {
    if (id != leader && id != skip) return id;
  }
  return 0;
}

// Runs a shell command; returns its standard output.
std::string Shell(const std::string& command) {
  std::string out;
  FILE* f = popen(command.c_str(), "r");
  if (f == nullptr) return "<popen failed>";
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
  pclose(f);
  return out;
}

class IntegrationRouting : public ::testing::Test {
 protected:
  void StartCluster(Flags flags = {}) {
    cluster_ = std::make_unique<TestCluster>(3, std::move(flags));
    ASSERT_TRUE(cluster_->Start());
    ASSERT_TRUE(cluster_->WaitLeader(Millis(20000), &leader_));
  }
  RedisClient Connect(int id) {
    RedisClient c = cluster_->Connect(id);
    EXPECT_TRUE(c.connected()) << c.error();
    return c;
  }

  std::unique_ptr<TestCluster> cluster_;
  int leader_ = 0;
};

TEST_F(IntegrationRouting, FollowersForwardReadsAndWrites) {
  StartCluster();
  int f1 = Follower(leader_, 3);
  int f2 = Follower(leader_, 3, f1);
  RedisClient a = Connect(f1);
  RedisClient b = Connect(f2);
  RedisClient l = Connect(leader_);
  EXPECT_EQ(a.Call({"SET", "k", "v"}), Status("OK"));
  EXPECT_EQ(b.Call({"GET", "k"}), Bulk("v"));  // linearizable: the write is visible at once
  EXPECT_EQ(b.Call({"PUT", "k2", "v2"}), Status("OK"));
  EXPECT_EQ(l.Call({"GET", "k2"}), Bulk("v2"));
  EXPECT_EQ(a.Call({"INCR", "n"}), Int(1));
  EXPECT_EQ(b.Call({"INCRBY", "n", "41"}), Int(42));
  EXPECT_EQ(a.Call({"MGET", "k", "k2", "none"}), Array({Bulk("v"), Bulk("v2"), Nil()}));
  EXPECT_EQ(a.Call({"DBSIZE"}), Int(3));
  EXPECT_EQ(b.Call({"INCR", "k"}), Err("ERR value is not an integer or out of range"));
  // Argument errors are answered by the follower itself, never forwarded.
  EXPECT_EQ(a.Call({"GET"}), WrongArgs("get"));
  InfoMap info = cluster_->Info(f1);
  EXPECT_EQ(InfoNumber(info, "forwarded_requests"), 4u);  // SET INCR MGET DBSIZE
  EXPECT_EQ(info["raft_follower_mode"], "forward");
  EXPECT_EQ(InfoNumber(cluster_->Info(leader_), "forwarded_requests_served"), 8u);
}

TEST_F(IntegrationRouting, ManyPipelinedRequestsThroughAFollowerKeepTheirOrder) {
  StartCluster();
  int f = Follower(leader_, 3);
  RawConnection raw(cluster_->Port(f), Millis(5000));
  ASSERT_TRUE(raw.ok()) << raw.error();
  std::string pipeline, expected;
  for (int i = 0; i < 500; i++) {
    pipeline += Request({"APPEND", "log", "x"});
    expected += Int(i + 1);
    if (i % 50 == 0) {
      pipeline += Request({"STRLEN", "log"});
      expected += Int(i + 1);
    }
  }
  ASSERT_TRUE(raw.Send(pipeline));
  ASSERT_TRUE(raw.ReadAtLeast(expected.size(), Millis(30000)));
  EXPECT_EQ(raw.received(), expected);
  EXPECT_FALSE(raw.closed());
}

TEST_F(IntegrationRouting, PipelinedReadsSeeTheWritesBeforeThemAndNoneAfter) {
  StartCluster();
  for (int id : {leader_, Follower(leader_, 3)}) {
    RawConnection raw(cluster_->Port(id), Millis(5000));
    ASSERT_TRUE(raw.ok()) << raw.error();
    std::string pipeline, expected;
    std::string key = "rw" + std::to_string(id);
    for (int i = 0; i < 200; i++) {
      pipeline += Request({"SET", key, std::to_string(i)});
      expected += Status("OK");
      pipeline += Request({"GET", key});
      expected += Bulk(std::to_string(i));
      if (i % 3 == 0) {  // two reads in a row share a round; the next write waits for both
        pipeline += Request({"STRLEN", key});
        expected += Int(static_cast<int64_t>(std::to_string(i).size()));
      }
    }
    ASSERT_TRUE(raw.Send(pipeline));
    ASSERT_TRUE(raw.ReadAtLeast(expected.size(), Millis(30000)));
    EXPECT_EQ(raw.received(), expected) << "through node " << id;
  }
}

TEST_F(IntegrationRouting, MovedModeRedirectsToTheLeaderWithTheKeysSlot) {
  StartCluster({{"follower-mode", "moved"}});
  int f = Follower(leader_, 3);
  RedisClient c = Connect(f);
  std::string leader_addr = "127.0.0.1:" + std::to_string(cluster_->Port(leader_));
  // Row 36: a write on a follower is never proposed there.
  EXPECT_EQ(c.Call({"SET", "foo", "bar"}), Err("MOVED 12182 " + leader_addr));
  EXPECT_EQ(c.Call({"GET", "{foo}.x"}), Err("MOVED 12182 " + leader_addr));
  EXPECT_EQ(c.Call({"DBSIZE"}), Err("MOVED 0 " + leader_addr));
  EXPECT_EQ(Connect(leader_).Call({"SET", "foo", "bar"}), Status("OK"));
  // A cluster-aware client follows the redirection.
  std::string out = Shell("redis-cli -c -p " + std::to_string(cluster_->Port(f)) + " GET foo");
  EXPECT_EQ(out, "bar\n");
  out = Shell("redis-cli -c -p " + std::to_string(cluster_->Port(f)) + " SET foo2 baz");
  EXPECT_EQ(out, "OK\n");
  EXPECT_EQ(Connect(leader_).Call({"GET", "foo2"}), Bulk("baz"));
}

TEST_F(IntegrationRouting, ClusterCommandsDescribeOneShardLedByTheLeader) {
  StartCluster();
  int f = Follower(leader_, 3);
  RedisClient c = Connect(f);
  ReplyPtr slots = c.Command({"CLUSTER", "SLOTS"});
  ASSERT_TRUE(slots);
  ASSERT_EQ(slots->type, REDIS_REPLY_ARRAY);
  ASSERT_EQ(slots->elements, 1u);
  const redisReply* range = slots->element[0];
  ASSERT_EQ(range->elements, 5u);  // start, end, master, two replicas
  EXPECT_EQ(range->element[0]->integer, 0);
  EXPECT_EQ(range->element[1]->integer, 16383);
  EXPECT_EQ(range->element[2]->element[1]->integer, cluster_->Port(leader_));
  ReplyPtr nodes = c.Command({"CLUSTER", "NODES"});
  ASSERT_TRUE(nodes);
  ASSERT_EQ(nodes->type, REDIS_REPLY_STRING);
  std::string text(nodes->str, nodes->len);
  std::string leader_line = "127.0.0.1:" + std::to_string(cluster_->Port(leader_)) + "@" +
                            std::to_string(cluster_->PeerPort(leader_)) + " ";
  EXPECT_NE(text.find(leader_line + "master - "), std::string::npos) << text;
  EXPECT_NE(text.find("myself,slave"), std::string::npos) << text;
  EXPECT_NE(text.find("connected 0-16383\n"), std::string::npos) << text;
  ReplyPtr shards = c.Command({"CLUSTER", "SHARDS"});
  ASSERT_TRUE(shards);
  ASSERT_EQ(shards->elements, 1u);
  EXPECT_EQ(shards->element[0]->element[3]->elements, 3u);  // nodes
  EXPECT_EQ(c.Call({"CLUSTER", "KEYSLOT", "foo"}), Int(12182));
  EXPECT_EQ(c.Call({"CLUSTER", "BOGUS"}), Err("ERR unknown subcommand 'BOGUS'. Try CLUSTER HELP."));
}

TEST_F(IntegrationRouting, TransactionsApplyAsOneEntryFromAnyNode) {
  StartCluster();
  for (int id : {leader_, Follower(leader_, 3)}) {
    RedisClient c = Connect(id);
    std::string k = "t" + std::to_string(id);
    EXPECT_EQ(c.Call({"SET", k, "old"}), Status("OK"));
    EXPECT_EQ(c.Call({"MULTI"}), Status("OK"));
    EXPECT_EQ(c.Call({"GET", k}), Status("QUEUED"));
    EXPECT_EQ(c.Call({"SET", k, "10"}), Status("QUEUED"));
    EXPECT_EQ(c.Call({"INCR", k}), Status("QUEUED"));
    EXPECT_EQ(c.Call({"APPEND", k + "x", "abc"}), Status("QUEUED"));
    EXPECT_EQ(c.Call({"INCR", k + "x"}), Status("QUEUED"));       // fails at run time
    EXPECT_EQ(c.Call({"SET", k, "v", "FOO"}), Status("QUEUED"));  // so does a syntax error
    EXPECT_EQ(c.Call({"MGET", k, k + "x"}), Status("QUEUED"));
    EXPECT_EQ(c.Call({"EXEC"}), Array({Bulk("old"), Status("OK"), Int(11), Int(3),
                                       Err("ERR value is not an integer or out of range"),
                                       Err("ERR syntax error"), Array({Bulk("11"), Bulk("abc")})}));
  }
  RedisClient c = Connect(Follower(leader_, 3));
  EXPECT_EQ(c.Call({"EXEC"}), Err("ERR EXEC without MULTI"));
  EXPECT_EQ(c.Call({"DISCARD"}), Err("ERR DISCARD without MULTI"));
  EXPECT_EQ(c.Call({"MULTI"}), Status("OK"));
  EXPECT_EQ(c.Call({"MULTI"}), Err("ERR MULTI calls can not be nested"));
  EXPECT_EQ(c.Call({"SET", "d", "1"}), Status("QUEUED"));
  EXPECT_EQ(c.Call({"DISCARD"}), Status("OK"));
  EXPECT_EQ(c.Call({"GET", "d"}), Nil());
  // A command that cannot be queued aborts the whole transaction.
  EXPECT_EQ(c.Call({"MULTI"}), Status("OK"));
  EXPECT_EQ(c.Call({"SET", "d", "1"}), Status("QUEUED"));
  EXPECT_EQ(c.Call({"GET"}), WrongArgs("get"));
  EXPECT_EQ(c.Call({"EXEC"}), Err("EXECABORT Transaction discarded because of previous errors."));
  EXPECT_EQ(c.Call({"MULTI"}), Status("OK"));
  EXPECT_EQ(c.Call({"KEYS", "*"}), Err("ERR 'keys' is not supported inside MULTI"));
  EXPECT_EQ(c.Call({"EXEC"}), Err("EXECABORT Transaction discarded because of previous errors."));
  EXPECT_EQ(c.Call({"GET", "d"}), Nil());
  EXPECT_EQ(c.Call({"MULTI"}), Status("OK"));
  EXPECT_EQ(c.Call({"EXEC"}), Array({}));
  // Only run-time errors: nothing to propose, the errors in order.
  EXPECT_EQ(c.Call({"MULTI"}), Status("OK"));
  EXPECT_EQ(c.Call({"INCRBY", "n", "abc"}), Status("QUEUED"));
  EXPECT_EQ(c.Call({"SET", "k", "v", "EX", "1"}), Status("QUEUED"));
  EXPECT_EQ(c.Call({"EXEC"}),
            Array({Err("ERR value is not an integer or out of range"),
                   Err("ERR expiry is not supported: keys in raftkv do not expire")}));
  EXPECT_EQ(c.Call({"WATCH", "k"}),
            Err("ERR WATCH is not supported: use MULTI/EXEC, which applies as one atomic log "
                "entry"));
}

TEST_F(IntegrationRouting, KeysAndScanWalkEveryKeyOnce) {
  StartCluster();
  RedisClient c = Connect(Follower(leader_, 3));
  std::vector<std::string> mset = {"MSET"};
  for (int i = 0; i < 95; i++) {
    mset.push_back("user:" + std::to_string(i));
    mset.push_back("v");
  }
  mset.insert(mset.end(), {"other:1", "v", "other:2", "v"});
  ASSERT_EQ(c.Call(mset), Status("OK"));
  EXPECT_EQ(c.Call({"DBSIZE"}), Int(97));
  ReplyPtr keys = c.Command({"KEYS", "other:*"});
  ASSERT_TRUE(keys);
  EXPECT_EQ(Encode(keys.get()), Array({Bulk("other:1"), Bulk("other:2")}));
  std::set<std::string> seen;
  std::string cursor = "0";
  int calls = 0;
  do {
    ReplyPtr r = c.Command({"SCAN", cursor, "MATCH", "user:*", "COUNT", "10"});
    ASSERT_TRUE(r);
    ASSERT_EQ(r->type, REDIS_REPLY_ARRAY) << Encode(r.get());
    cursor.assign(r->element[0]->str, r->element[0]->len);
    for (size_t i = 0; i < r->element[1]->elements; i++) {
      std::string key(r->element[1]->element[i]->str, r->element[1]->element[i]->len);
      EXPECT_TRUE(seen.insert(key).second) << "returned twice: " << key;
    }
    ASSERT_LT(++calls, 100);
  } while (cursor != "0");
  EXPECT_EQ(seen.size(), 95u);
  EXPECT_EQ(c.Call({"SCAN", "123456789"}),
            Err("ERR invalid cursor (unknown or expired; cursors live on the leader that "
                "issued them)"));
}

TEST_F(IntegrationRouting, TransferLeaderCommandHandsLeadershipOver) {
  StartCluster();
  int target = Follower(leader_, 3);
  int other = Follower(leader_, 3, target);
  // Asked through the third node: forwarded to the leader, answered once target leads.
  EXPECT_EQ(Connect(other).Call({"RAFT.TRANSFER-LEADER", std::to_string(target)}), Status("OK"));
  EXPECT_EQ(cluster_->Info(leader_)["raft_leader_id"], std::to_string(target));
  int now = 0;
  ASSERT_TRUE(cluster_->WaitLeader(Millis(10000), &now));
  EXPECT_EQ(now, target);
  EXPECT_EQ(Connect(leader_).Call({"SET", "after", "transfer"}), Status("OK"));
  EXPECT_EQ(Connect(target).Call({"RAFT.TRANSFER-LEADER", "9"}), Err("ERR unknown node id 9"));
  EXPECT_EQ(Connect(target).Call({"RAFT.TRANSFER-LEADER", std::to_string(target)}), Status("OK"));
}

TEST_F(IntegrationRouting, SigtermOnTheLeaderHandsLeadershipOverFirst) {
  StartCluster();
  ASSERT_EQ(Connect(leader_).Call({"SET", "k", "v"}), Status("OK"));
  uint64_t term = InfoNumber(cluster_->Info(leader_), "raft_term");
  int old = leader_;
  ASSERT_TRUE(cluster_->Stop(old));  // exits 0 within the timeout
  EXPECT_NE(cluster_->Log(old).find("handing leadership to node"), std::string::npos);
  int now = 0;
  ASSERT_TRUE(cluster_->WaitLeader(Millis(10000), &now));
  EXPECT_NE(now, old);
  // A transfer, not an election after a timeout: the very next term.
  EXPECT_EQ(InfoNumber(cluster_->Info(now), "raft_term"), term + 1);
  EXPECT_EQ(Connect(now).Call({"GET", "k"}), Bulk("v"));
}

TEST_F(IntegrationRouting, Row35ValueTooLargeForTheLogIsRefusedBeforeProposing) {
  StartCluster();
  RedisClient c = Connect(leader_);
  std::string big(2 << 20, 'x');
  EXPECT_EQ(c.Call({"SET", "k", big}),
            Err("ERR value too large for replicated log (max 1572864 bytes)"));
  EXPECT_EQ(c.Call({"GET", "k"}), Nil());  // the connection stays open, nothing applied
  EXPECT_EQ(Connect(Follower(leader_, 3)).Call({"SET", "k", big}),
            Err("ERR value too large for replicated log (max 1572864 bytes)"));
}

TEST_F(IntegrationRouting, Row36NoLeaderKnownIsClusterdown) {
  StartCluster();
  int f1 = Follower(leader_, 3);
  int f2 = Follower(leader_, 3, f1);
  cluster_->Kill(leader_);
  cluster_->Kill(f2);
  // Alone, f1 cannot elect anyone: once it has given up on the old leader it knows none.
  std::string reply;
  for (int i = 0; i < 200; i++) {
    reply = Connect(f1).Call({"SET", "k", "v"});
    if (reply == Err("CLUSTERDOWN no leader")) break;
    usleep(100 * 1000);
  }
  RedisClient c = Connect(f1);
  EXPECT_EQ(reply, Err("CLUSTERDOWN no leader"));
  EXPECT_EQ(c.Call({"GET", "k"}), Err("CLUSTERDOWN no leader"));
  EXPECT_EQ(c.Call({"PING"}), Status("PONG"));
}

TEST_F(IntegrationRouting, Row37WriteThatCannotCommitTimesOut) {
  StartCluster({{"request-timeout-ms", "1500"}, {"election-timeout-ms", "5000"}});
  RedisClient c = Connect(leader_);
  ASSERT_EQ(c.Call({"SET", "k", "before"}), Status("OK"));
  int f1 = Follower(leader_, 3);
  int f2 = Follower(leader_, 3, f1);
  cluster_->Pause(f1);
  cluster_->Pause(f2);
  EXPECT_EQ(c.Call({"SET", "k", "maybe"}), Err("TIMEOUT request may or may not have been applied"));
  EXPECT_EQ(c.Call({"GET", "k"}), Err("TIMEOUT request may or may not have been applied"));
  cluster_->Resume(f1);
  cluster_->Resume(f2);
  // Once a quorum is back, the proposed write is applied after all.
  int leader = 0;
  ASSERT_TRUE(cluster_->WaitLeader(Millis(20000), &leader));
  std::string value;
  for (int i = 0; i < 100; i++) {
    value = Connect(leader).Call({"GET", "k"});
    if (value == Bulk("maybe")) break;
    usleep(100 * 1000);
  }
  EXPECT_EQ(value, Bulk("maybe"));
  EXPECT_GE(InfoNumber(cluster_->Info(leader_), "request_timeouts"), 1u);
}

TEST_F(IntegrationRouting, LowDiskRefusesWritesWithMisconfButServesReads) {
  StartCluster({{"min-free-disk-mb", "1099511627776"}});  // 2^40 MiB: never that much free
  RedisClient c = Connect(leader_);
  std::string reply = c.Call({"SET", "k", "v"});
  EXPECT_EQ(reply.rfind("-MISCONF not enough free disk space to accept writes: ", 0), 0u) << reply;
  EXPECT_EQ(c.Call({"GET", "k"}), Nil());
  EXPECT_EQ(cluster_->Info(leader_)["writes_refused_low_disk"], "1");
}

}  // namespace
}  // namespace raftkv_it
