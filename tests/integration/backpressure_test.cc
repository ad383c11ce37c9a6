// Bounded memory on real processes: past a configured limit a node refuses or disconnects
// instead of growing. A leader without a quorum keeps its uncommitted entries up to
// max-uncommitted-bytes, then answers -TRYAGAIN; a client that does not read its replies is
// disconnected at client-output-buffer-limit.
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/cluster.h"

namespace raftkv_it {
namespace {

std::string Resp(const std::vector<std::string>& args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const std::string& a : args) out += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return out;
}

// The first line of each of the simple replies in `bytes` (errors and statuses only).
std::vector<std::string> ReplyLines(const std::string& bytes) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < bytes.size()) {
    size_t end = bytes.find("\r\n", pos);
    if (end == std::string::npos) break;
    out.push_back(bytes.substr(pos, end - pos));
    pos = end + 2;
  }
  return out;
}

TEST(IntegrationBackpressure, ALeaderWithoutQuorumRefusesPastTheUncommittedLimit) {
  // A long election timeout: the leader steps down (check-quorum) only once the pipeline is
  // answered, even on a loaded machine.
  TestCluster cluster(3, {{"max-uncommitted-bytes", "65536"},
                          {"request-timeout-ms", "1000"},
                          {"election-timeout-ms", "10000"}});
  ASSERT_TRUE(cluster.Start());
  int leader = 0;
  ASSERT_TRUE(cluster.WaitLeader(Millis(20000), &leader));
  for (int id = 1; id <= 3; id++) {
    if (id != leader) cluster.Kill(id);
  }
  // 100 writes of 2000 bytes in one pipeline: about 32 fit under 64 KiB and are proposed (no
  // quorum: their outcome stays unknown), the rest are refused at once, never proposed.
  const int n = 100;
  std::string pipeline;
  for (int i = 0; i < n; i++) {
    pipeline += Resp({"SET", "bp:" + std::to_string(i), std::string(2000, 'v')});
  }
  RawConnection conn(cluster.Port(leader), Millis(5000));
  ASSERT_TRUE(conn.ok()) << conn.error();
  ASSERT_TRUE(conn.Send(pipeline));
  std::vector<std::string> lines;
  Clock::time_point deadline = Clock::now() + Millis(15000);
  while (lines.size() < n && Clock::now() < deadline) {
    conn.ReadFor(Millis(200));
    lines = ReplyLines(conn.received());
  }
  ASSERT_EQ(lines.size(), static_cast<size_t>(n)) << conn.received();
  int refused = 0, unknown = 0;
  for (const std::string& line : lines) {
    if (line == "-TRYAGAIN the leader refuses writes for now: too much uncommitted data") {
      refused++;
    } else if (line.rfind("-TIMEOUT", 0) == 0 || line.rfind("-MOVED", 0) == 0 ||
               line.rfind("-CLUSTERDOWN", 0) == 0) {
      unknown++;  // proposed, then no quorum; or this node stepped down before
    } else {
      ADD_FAILURE() << "unexpected reply " << line;
    }
  }
  EXPECT_GE(refused, 50) << conn.received();
  EXPECT_GE(unknown, 20) << conn.received();
  EXPECT_LE(unknown, 33) << conn.received();
  // The refused writes were never applied anywhere: once the quorum is back, the last key of
  // the pipeline (refused: it came after the limit) does not exist.
  for (int id = 1; id <= 3; id++) {
    if (id == leader) continue;
    ASSERT_TRUE(cluster.StartNode(id));
  }
  int now = 0;
  ASSERT_TRUE(cluster.WaitLeader(Millis(20000), &now));
  RedisClient c = cluster.Connect(now);
  ASSERT_TRUE(c.connected()) << c.error();
  EXPECT_EQ(c.Call({"EXISTS", "bp:" + std::to_string(n - 1)}), Int(0));
  EXPECT_EQ(c.Call({"SET", "after", "quorum"}), Status("OK"));
}

TEST(IntegrationBackpressure, AClientThatDoesNotReadIsDisconnectedAtTheOutputLimit) {
  TestCluster cluster(1, {{"client-output-buffer-limit", "1000000"}});
  ASSERT_TRUE(cluster.Start());
  int leader = 0;
  ASSERT_TRUE(cluster.WaitLeader(Millis(20000), &leader));
  RedisClient c = cluster.Connect(leader);
  ASSERT_TRUE(c.connected()) << c.error();
  ASSERT_EQ(c.Call({"SET", "big", std::string(500000, 'b')}), Status("OK"));
  // 2000 GETs of 500 KB, and never a read: about 1 GB of replies the node would hold.
  RawConnection conn(cluster.Port(leader), Millis(5000));
  ASSERT_TRUE(conn.ok()) << conn.error();
  std::string gets;
  for (int i = 0; i < 2000; i++) gets += Resp({"GET", "big"});
  conn.Send(gets);  // may fail part-way once the node closes the connection
  Clock::time_point deadline = Clock::now() + Millis(15000);
  InfoMap info;
  while (Clock::now() < deadline) {
    info = cluster.Info(leader);
    if (InfoNumber(info, "client_output_buffer_limit_disconnections") >= 1) break;
    std::this_thread::sleep_for(Millis(50));
  }
  EXPECT_EQ(InfoNumber(info, "client_output_buffer_limit_disconnections"), 1u);
  // The node goes on serving.
  EXPECT_EQ(c.Call({"STRLEN", "big"}), Int(500000));
}

}  // namespace
}  // namespace raftkv_it
