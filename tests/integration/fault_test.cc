// RAFT.FAULT (docs/commands.md, "Fault injection") on real processes: refused unless
// enable-debug-command allows the client (Redis 7's DEBUG text), its argument checks and
// replies, and a blocked leader losing its followers.
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tests/integration/cluster.h"

namespace raftkv_it {
namespace {

const std::string kRefusal = Err(
    "ERR RAFT.FAULT command not allowed. If the enable-debug-command option is set to \"local\", "
    "you can run it from a local connection, otherwise you need to set this option in the "
    "configuration file, and then restart the server.");

std::string FaultStatus(const std::string& blocked, bool unreliable, int drop, int delay) {
  return Array({Bulk("blocked"), Bulk(blocked), Bulk("unreliable"), Bulk(unreliable ? "yes" : "no"),
                Bulk("drop_percent"), Int(drop), Bulk("max_delay_ms"), Int(delay)});
}

TEST(IntegrationFault, RefusedUnlessEnableDebugCommandAllowsIt) {
  TestCluster cluster(1);  // enable-debug-command no (the default)
  ASSERT_TRUE(cluster.Start());
  RedisClient c = cluster.Connect(1);
  ASSERT_TRUE(c.connected()) << c.error();
  EXPECT_EQ(c.Call({"RAFT.FAULT", "STATUS"}), kRefusal);
  EXPECT_EQ(c.Call({"raft.fault", "heal"}), kRefusal);
  EXPECT_EQ(c.Call({"RAFT.FAULT", "HELP"}), kRefusal);
  EXPECT_EQ(c.Call({"RAFT.FAULT", "BLOCK", "2"}), kRefusal);
  // Argument errors come first, as in Redis's processCommand.
  EXPECT_EQ(c.Call({"RAFT.FAULT", "nope"}),
            Err("ERR unknown subcommand 'nope'. Try RAFT.FAULT HELP."));
  EXPECT_EQ(c.Call({"RAFT.FAULT"}), WrongArgs("raft.fault"));
  // Refused inside MULTI too, which then aborts.
  EXPECT_EQ(c.Call({"MULTI"}), Status("OK"));
  EXPECT_EQ(c.Call({"RAFT.FAULT", "STATUS"}), kRefusal);
  EXPECT_EQ(c.Call({"EXEC"}), Err("EXECABORT Transaction discarded because of previous errors."));
}

TEST(IntegrationFault, LocalAllowsLoopbackClients) {
  TestCluster cluster(1, {{"enable-debug-command", "local"}});
  ASSERT_TRUE(cluster.Start());
  RedisClient c = cluster.Connect(1);  // over 127.0.0.1
  ASSERT_TRUE(c.connected()) << c.error();
  EXPECT_EQ(c.Call({"RAFT.FAULT", "STATUS"}), FaultStatus("", false, 0, 0));
}

TEST(IntegrationFault, SubcommandsCheckTheirArgumentsAndBlockingCutsALeaderOff) {
  TestCluster cluster(3, {{"enable-debug-command", "yes"}});
  ASSERT_TRUE(cluster.Start());
  int leader = 0;
  ASSERT_TRUE(cluster.WaitLeader(Millis(20000), &leader));
  RedisClient c = cluster.Connect(leader, Millis(10000));  // above request-timeout-ms
  ASSERT_TRUE(c.connected()) << c.error();
  const std::string self = std::to_string(leader);
  const int f1 = leader % 3 + 1;
  const int f2 = f1 % 3 + 1;

  EXPECT_EQ(c.Call({"RAFT.FAULT", "STATUS"}), FaultStatus("", false, 0, 0));
  EXPECT_EQ(c.Call({"RAFT.FAULT", "BLOCK", "9"}), Err("ERR unknown node id 9"));
  EXPECT_EQ(c.Call({"RAFT.FAULT", "BLOCK", self}), Err("ERR unknown node id " + self));
  EXPECT_EQ(c.Call({"RAFT.FAULT", "BLOCK", "0"}), Err("ERR unknown node id 0"));
  EXPECT_EQ(c.Call({"RAFT.FAULT", "BLOCK", std::to_string(f1), "x"}),
            Err("ERR value is not an integer or out of range"));
  EXPECT_EQ(c.Call({"RAFT.FAULT", "UNRELIABLE", "101", "0"}),
            Err("ERR value is not an integer or out of range"));
  EXPECT_EQ(c.Call({"RAFT.FAULT", "UNRELIABLE", "10", "10001"}),
            Err("ERR value is not an integer or out of range"));
  EXPECT_EQ(c.Call({"RAFT.FAULT", "UNRELIABLE", "-1", "5"}),
            Err("ERR value is not an integer or out of range"));
  EXPECT_EQ(c.Call({"RAFT.FAULT", "UNRELIABLE", "10"}), WrongArgs("raft.fault|unreliable"));
  EXPECT_EQ(c.Call({"RAFT.FAULT", "BLOCK"}), WrongArgs("raft.fault|block"));
  EXPECT_EQ(c.Call({"RAFT.FAULT", "HEAL", "now"}), WrongArgs("raft.fault|heal"));
  EXPECT_EQ(c.Call({"RAFT.FAULT", "partition"}),
            Err("ERR unknown subcommand 'partition'. Try RAFT.FAULT HELP."));
  // Nothing changed by the refused ones.
  EXPECT_EQ(c.Call({"RAFT.FAULT", "STATUS"}), FaultStatus("", false, 0, 0));
  EXPECT_NE(c.Call({"RAFT.FAULT", "HELP"}).find("UNRELIABLE <drop-percent> <max-delay-ms>"),
            std::string::npos);

  EXPECT_EQ(c.Call({"RAFT.FAULT", "UNRELIABLE", "10", "26"}), Status("OK"));
  EXPECT_EQ(c.Call({"RAFT.FAULT", "STATUS"}), FaultStatus("", true, 10, 26));
  EXPECT_EQ(c.Call({"RAFT.FAULT", "RELIABLE"}), Status("OK"));
  EXPECT_EQ(c.Call({"RAFT.FAULT", "STATUS"}), FaultStatus("", false, 0, 0));
  EXPECT_EQ(c.Call({"MULTI"}), Status("OK"));
  EXPECT_EQ(c.Call({"RAFT.FAULT", "STATUS"}),
            Err("ERR 'raft.fault' is not supported inside MULTI"));
  EXPECT_EQ(c.Call({"DISCARD"}), Status("OK"));

  // The leader blocks both followers: they elect another leader, and the old one steps down
  // (check-quorum) and answers writes with -CLUSTERDOWN or -TIMEOUT.
  EXPECT_EQ(c.Call({"RAFT.FAULT", "BLOCK", std::to_string(f1), std::to_string(f2)}), Status("OK"));
  const std::string both =
      std::to_string(std::min(f1, f2)) + "," + std::to_string(std::max(f1, f2));
  EXPECT_EQ(c.Call({"RAFT.FAULT", "STATUS"}), FaultStatus(both, false, 0, 0));
  const Clock::time_point deadline = Clock::now() + Millis(15000);
  int new_leader = 0;
  while (Clock::now() < deadline) {
    InfoMap info = cluster.Info(f1);
    if (!info["raft_leader_id"].empty() && info["raft_leader_id"] != "0" &&
        info["raft_leader_id"] != self) {
      new_leader = std::stoi(info["raft_leader_id"]);
      break;
    }
    usleep(100 * 1000);
  }
  ASSERT_NE(new_leader, 0) << "the followers did not elect another leader";
  RedisClient n = cluster.Connect(new_leader);
  std::string reply;
  for (int i = 0; i < 50 && reply != Status("OK"); i++) {
    reply = n.Call({"SET", "k", "v"});
    if (reply != Status("OK")) usleep(100 * 1000);
  }
  EXPECT_EQ(reply, Status("OK"));
  reply = c.Call({"SET", "k", "old"});
  EXPECT_TRUE(reply.starts_with("-CLUSTERDOWN") || reply.starts_with("-TIMEOUT")) << reply;

  // Unblocking one follower, then healing, brings it back.
  EXPECT_EQ(c.Call({"RAFT.FAULT", "UNBLOCK", std::to_string(f1)}), Status("OK"));
  EXPECT_EQ(c.Call({"RAFT.FAULT", "STATUS"}), FaultStatus(std::to_string(f2), false, 0, 0));
  EXPECT_EQ(c.Call({"RAFT.FAULT", "HEAL"}), Status("OK"));
  EXPECT_EQ(c.Call({"RAFT.FAULT", "STATUS"}), FaultStatus("", false, 0, 0));
  reply.clear();
  for (int i = 0; i < 100 && reply != Bulk("v"); i++) {
    reply = c.Call({"GET", "k"});
    if (reply != Bulk("v")) usleep(100 * 1000);
  }
  EXPECT_EQ(reply, Bulk("v"));
  EXPECT_NE(cluster.Log(leader).find("fault injection: blocking traffic"), std::string::npos);
}

}  // namespace
}  // namespace raftkv_it
