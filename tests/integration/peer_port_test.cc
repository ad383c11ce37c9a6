// The peer port under adversarial input (reliability plan §6.6, "Peer port adversarial
// cases"): garbage, length prefixes below the smallest frame, 2^31, one above the 8 MiB cap,
// and a frame that never completes. Each must end with the server closing the connection,
// and the node must go on serving clients and its cluster; so must peers that hang up in the
// middle of the handshake (the node then writes to a closed socket). Also: a node configured with
// another cluster-secret never joins its cluster, and nothing crashes.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "protocol/peer.h"
#include "tests/integration/cluster.h"

namespace raftkv_it {
namespace {

// The node the connections are aimed at.
constexpr int kTarget = 1;
const Millis kCloseTimeout(10000);

// A 4-byte big-endian length prefix, as protocol/peer.h frames are.
std::string LengthPrefix(uint32_t length) {
  std::string out(4, '\0');
  for (int i = 0; i < 4; i++)
    out[static_cast<size_t>(i)] = static_cast<char>(length >> (24 - 8 * i));
  return out;
}

// Resident memory of a process in KiB (0 if unknown).
long RssKiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return 0;
}

class IntegrationPeerPort : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cluster_ = new TestCluster(3);
    ::testing::AssertionResult started = cluster_->Start();
    start_error_ = started ? "" : started.message();
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override { ASSERT_EQ(start_error_, ""); }

  // Sends `bytes` to the target's peer port; the server must close the connection within
  // kCloseTimeout. Returns how long that took.
  Millis ExpectClosed(const std::string& bytes) {
    const Clock::time_point start = Clock::now();
    RawConnection c(cluster_->PeerPort(kTarget), Millis(5000));
    EXPECT_TRUE(c.ok()) << c.error();
    c.Send(bytes);
    EXPECT_TRUE(c.ReadUntilClosed(kCloseTimeout))
        << "the peer port kept the connection open for " << kCloseTimeout.count() << " ms";
    return std::chrono::duration_cast<Millis>(Clock::now() - start);
  }

  // The target is alive, answers PING, and the cluster has a leader that takes a write.
  void ExpectServing() {
    ASSERT_TRUE(cluster_->Running(kTarget)) << "node " << kTarget << " died";
    RedisClient target = cluster_->Connect(kTarget);
    ASSERT_TRUE(target.connected()) << target.error();
    EXPECT_EQ(target.Call({"PING"}), Status("PONG"));
    int leader = 0;
    ASSERT_TRUE(cluster_->WaitLeader(Millis(20000), &leader));
    RedisClient c = cluster_->Connect(leader);
    const std::string key = "peer:" + std::to_string(++writes_);
    EXPECT_EQ(c.Call({"SET", key, "v"}), Status("OK"));
    EXPECT_EQ(c.Call({"GET", key}), Bulk("v"));
    for (int id = 1; id <= cluster_->size(); id++) {
      EXPECT_TRUE(cluster_->Running(id)) << "node " << id << " died";
    }
  }

  static TestCluster* cluster_;
  static std::string start_error_;
  static int writes_;
};

TestCluster* IntegrationPeerPort::cluster_ = nullptr;
std::string IntegrationPeerPort::start_error_;
int IntegrationPeerPort::writes_ = 0;

TEST_F(IntegrationPeerPort, GarbageIsRefused) {
  ExpectClosed("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  ExpectClosed(Request({"PING"}));
  // A plausible length, then a body that is no FlatBuffer.
  ExpectClosed(LengthPrefix(64) + std::string(64, '\xab'));
  ExpectServing();
}

TEST_F(IntegrationPeerPort, LengthBelowTheSmallestFrame) {
  for (uint32_t length : {0u, 1u, 7u}) {
    SCOPED_TRACE("length " + std::to_string(length));
    ExpectClosed(LengthPrefix(length) + std::string(length, 'x'));
  }
  ExpectServing();
}

TEST_F(IntegrationPeerPort, LengthTwoToThe31IsRefusedBeforeAllocating) {
  const long before = RssKiB(cluster_->Pid(kTarget));
  ExpectClosed(LengthPrefix(1u << 31));
  ExpectClosed(LengthPrefix(0xffffffffu));
  const long after = RssKiB(cluster_->Pid(kTarget));
  EXPECT_LT(after - before, 64 * 1024) << "RSS grew from " << before << " to " << after << " KiB";
  ExpectServing();
}

TEST_F(IntegrationPeerPort, LengthAboveTheMaxFrameByOne) {
  ExpectClosed(LengthPrefix((8u << 20) + 1));
  ExpectServing();
}

TEST_F(IntegrationPeerPort, IncompleteFrameThenStall) {
  // The length promises more than is sent; the server closes at its handshake deadline
  // (2 s by default).
  Millis took = ExpectClosed(LengthPrefix(100) + std::string(10, 'x'));
  EXPECT_GE(took, Millis(1000)) << "closed before the handshake timeout";
  ExpectServing();
}

// Connects to `port`, sends `bytes` and closes at once: with a reset (`reset`, SO_LINGER 0) or
// a plain close. The node then writes its handshake to a socket whose other end is gone.
void SendAndHangUp(uint16_t port, const std::string& bytes, bool reset) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    if (!bytes.empty()) ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (reset) {
      linger l{1, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    }
  }
  ::close(fd);
}

TEST_F(IntegrationPeerPort, PeersThatHangUpMidHandshakeHurtNothing) {
  // A well-formed Hello (the node answers it with its proof), then gone: many times, with a
  // reset and with a plain close. Writing to such a socket must not kill the node (SIGPIPE).
  protocol::Hello hello;
  hello.cluster_id = "raftkv";
  hello.node_id = 2;
  const std::string frame = protocol::EncodeFrame(hello);
  for (int i = 0; i < 300; i++) {
    hello.nonce = std::string(32, static_cast<char>(i % 250 + 1));
    SendAndHangUp(cluster_->PeerPort(kTarget), protocol::EncodeFrame(hello), i % 2 == 0);
    SendAndHangUp(cluster_->PeerPort(kTarget), "", i % 2 == 1);
    if (i % 50 == 0) std::this_thread::sleep_for(Millis(20));
  }
  ASSERT_TRUE(cluster_->Running(kTarget)) << "node " << kTarget << " died";
  ExpectServing();
}

TEST(IntegrationPeerPortSecret, NodeWithAnotherSecretNeverJoins) {
  TestCluster cluster(3, {{"cluster-secret", "integration-cluster-secret"}},
                      {{3, {{"cluster-secret", "not-the-cluster-secret"}}}});
  ASSERT_TRUE(cluster.Start());
  int leader = 0;
  ASSERT_TRUE(cluster.WaitLeader(Millis(20000), &leader));
  ASSERT_NE(leader, 3);
  RedisClient c = cluster.Connect(leader);
  for (int i = 0; i < 10; i++) {
    const std::string key = "secret:" + std::to_string(i);
    ASSERT_EQ(c.Call({"SET", key, "v"}), Status("OK"));
  }
  EXPECT_EQ(c.Call({"GET", "secret:9"}), Bulk("v"));

  // The refusal is logged on both sides.
  const Clock::time_point deadline = Clock::now() + Millis(10000);
  auto refused = [&cluster](int id) {
    return cluster.Log(id).find("proof does not verify") != std::string::npos;
  };
  while (!(refused(3) && (refused(1) || refused(2))) && Clock::now() < deadline) {
    std::this_thread::sleep_for(Millis(50));
  }
  EXPECT_TRUE(refused(3)) << "node 3 did not log the refusal of its peers' proofs";
  EXPECT_TRUE(refused(1) || refused(2)) << "nodes 1 and 2 did not log the refusal of node 3";

  // Node 3 never learns of a leader nor commits anything, over several election timeouts.
  const Clock::time_point watch_until = Clock::now() + Millis(3000);
  int samples = 0;
  while (Clock::now() < watch_until) {
    InfoMap info = cluster.Info(3);
    ASSERT_FALSE(info.empty()) << "node 3 does not answer INFO";
    EXPECT_EQ(info["raft_leader_id"], "0");
    EXPECT_EQ(info["raft_commit_index"], "0");
    EXPECT_NE(info["raft_role"], "leader");
    samples++;
    std::this_thread::sleep_for(Millis(200));
  }
  EXPECT_GT(samples, 5);
  InfoMap l = cluster.Info(leader);
  EXPECT_GE(std::stoull(l["raft_commit_index"]), 10u);
  EXPECT_NE(l["raft_peer3"].find("state=disconnected"), std::string::npos) << l["raft_peer3"];
  EXPECT_EQ(c.Call({"SET", "secret:last", "v"}), Status("OK"));
  for (int id = 1; id <= 3; id++) EXPECT_TRUE(cluster.Running(id)) << "node " << id << " died";
}

}  // namespace
}  // namespace raftkv_it
