// TestCluster: real raftkv-server processes on 127.0.0.1 for integration tests, and the two
// ways the tests talk to them: RedisClient (hiredis, one reply at a time) and RawConnection
// (bytes in, bytes out, and whether the server closed the connection).
//
// A TestCluster owns N (1..7) processes started with fork/exec from RAFTKV_SERVER_PATH (a
// compile definition). Each node gets its own data directory under a fresh temporary
// directory, an explicit `--cluster 1=127.0.0.1:P1:Q1,...` and the flags of the test. Ports
// are drawn at random from 10100..16899, below the kernel's ephemeral range (so no outgoing
// connection of any process can take one while its node is down) and apart from the ports
// the shell tests and the default local cluster use, each checked free by binding it; the
// sockets are held until just before the nodes start. Each port is also claimed machine-wide
// for the cluster's life ($TMPDIR/raftkv-it-ports/<port>, holding the pid), so that a test
// process running beside this one never takes the port of a node that is down here for a
// restart. If a node exits while the cluster
// first starts (another process took a port in that instant), every node is killed and the
// cluster starts again on new ports. A node's stdout and stderr go to `node<I>.log` in the
// temporary directory; the logs are printed when the test that owns the cluster has failed.
//
// Node ids are 1..N, the Raft ids. Every wait is bounded by a deadline, and conditions are
// polled, never assumed after a sleep. The destructor SIGKILLs every process it started, by
// pid, reaps it, and removes the temporary directory (kept, and named on stderr, when the
// environment variable RAFTKV_IT_KEEP is set).
//
//   raftkv_it::TestCluster cluster(3, {{"requirepass", "pw"}});
//   ASSERT_TRUE(cluster.Start());
//   int leader = 0;
//   ASSERT_TRUE(cluster.WaitLeader(std::chrono::seconds(10), &leader));
//   raftkv_it::RedisClient c = cluster.Connect(leader);
//   EXPECT_EQ(c.Call({"SET", "k", "v"}), raftkv_it::Status("OK"));
//
// Thread-safety: none; use a TestCluster, RedisClient or RawConnection from one thread.
#pragma once

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace raftkv_it {

using Millis = std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// ---- Replies as RESP2 bytes, for exact comparisons ----

// "+text\r\n"
std::string Status(std::string_view text);
// "-text\r\n" (text without the leading '-')
std::string Err(std::string_view text);
// ":n\r\n"
std::string Int(int64_t n);
// "$len\r\nvalue\r\n"
std::string Bulk(std::string_view value);
// "$-1\r\n"
std::string Nil();
// "*n\r\n" followed by the given encoded elements.
std::string Array(const std::vector<std::string>& encoded_elements);
// A request as a client sends it: "*n\r\n$len\r\narg\r\n...".
std::string Request(const std::vector<std::string>& args);

// Redis's "ERR wrong number of arguments for '<name>' command" (name in lower case, as
// Redis prints it).
std::string WrongArgs(std::string_view name);

// ---- RedisClient ----

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

// One hiredis connection with a timeout on connect, reads and writes. Movable, not copyable;
// the destructor closes the connection.
class RedisClient {
 public:
  RedisClient() = default;
  // Connects to 127.0.0.1:port. On failure connected() is false and error() says why.
  RedisClient(uint16_t port, Millis timeout);

  bool connected() const { return context_ != nullptr && context_->err == 0; }
  // Why the connection failed or broke; empty while it is fine.
  std::string error() const;

  // Sends one command and waits for its reply. Returns the reply encoded as RESP2 (so that
  // tests compare exact bytes: Status("OK"), Bulk("v"), Nil(), ...), or "<io error: ...>"
  // when no reply arrived (timeout, connection closed; the client is then unusable).
  std::string Call(const std::vector<std::string>& args);
  // The same, returning hiredis's reply; null on an I/O error.
  ReplyPtr Command(const std::vector<std::string>& args);

  redisContext* context() { return context_.get(); }

 private:
  struct ContextDeleter {
    void operator()(redisContext* c) const { redisFree(c); }
  };
  std::unique_ptr<redisContext, ContextDeleter> context_;
};

// hiredis's reply encoded as RESP2 bytes.
std::string Encode(const redisReply* reply);

// ---- RawConnection ----

// A plain TCP connection for exact-byte protocol checks. Reads keep everything received in
// received(); closed() becomes true once the server has closed (EOF) or reset the connection.
class RawConnection {
 public:
  // Connects to 127.0.0.1:port (blocking, bounded by timeout). On failure ok() is false.
  RawConnection(uint16_t port, Millis timeout);
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool ok() const { return fd_ >= 0 && error_.empty(); }
  const std::string& error() const { return error_; }

  // Writes every byte (or stops when the server has closed or reset the connection). Returns
  // false if not everything was written; never raises SIGPIPE.
  bool Send(std::string_view bytes);
  // Reads until received() holds at least n bytes, the server closes, or timeout passes.
  // Returns whether received() holds at least n bytes.
  bool ReadAtLeast(size_t n, Millis timeout);
  // Reads until the server closes the connection or timeout passes; returns closed().
  bool ReadUntilClosed(Millis timeout);
  // Reads whatever arrives within timeout (stops early if the server closes).
  void ReadFor(Millis timeout);

  const std::string& received() const { return received_; }
  bool closed() const { return closed_; }
  // Closes our side now.
  void Close();

 private:
  // One poll+recv step, waiting until `deadline`. Returns false when nothing more can come
  // (closed, error, or the deadline passed).
  bool ReadOnce(Clock::time_point deadline);

  int fd_ = -1;
  std::string error_;
  std::string received_;
  bool closed_ = false;
};

// What a one-shot exchange saw: the bytes the server sent, and whether it closed.
struct RawResult {
  std::string bytes;
  bool closed = false;
};

// Connects, sends `bytes`, reads until the server closes or `timeout` passes.
RawResult SendAndReadUntilClosed(uint16_t port, std::string_view bytes, Millis timeout);

// ---- TestCluster ----

using Flags = std::vector<std::pair<std::string, std::string>>;

struct ClusterOptions {
  // Number of nodes, 1..7; node ids 1..nodes.
  int nodes = 3;
  // `--key value` flags for every node, after the fixture's own (so they override them).
  Flags flags;
  // More flags for single nodes (node id -> flags), after `flags`.
  std::map<int, Flags> node_flags;
};

// What INFO says, as key -> value (the "# Section" lines dropped).
using InfoMap = std::map<std::string, std::string>;
// The number INFO gives for `key`; 0 when it is missing or empty.
uint64_t InfoNumber(const InfoMap& info, const std::string& key);

class TestCluster {
 public:
  explicit TestCluster(ClusterOptions options);
  // The same as TestCluster(ClusterOptions{nodes, flags, node_flags}).
  explicit TestCluster(int nodes, Flags flags = {}, std::map<int, Flags> node_flags = {});
  // Kills (SIGKILL) and reaps every process still running, prints the logs if the current
  // test (or, in TearDownTestSuite, the suite) failed, removes the temporary directory.
  ~TestCluster();
  TestCluster(const TestCluster&) = delete;
  TestCluster& operator=(const TestCluster&) = delete;

  int size() const { return options_.nodes; }

  // Starts every node that is not running and waits until each accepts clients (PING), up
  // to `timeout`. The first call picks the ports (and retries on new ones if a node cannot
  // bind); later calls reuse them and the data directories.
  ::testing::AssertionResult Start(Millis timeout = Millis(15000));
  // Starts node `id` (not running) with its directory, ports and flags; waits until it
  // accepts clients.
  ::testing::AssertionResult StartNode(int id, Millis timeout = Millis(15000));
  // SIGKILL, then reap. No-op if the node is not running.
  void Kill(int id);
  // SIGTERM, then wait up to `timeout` for the process to exit; SIGKILL after that. Fails if
  // the node had to be killed or exited with a non-zero status.
  ::testing::AssertionResult Stop(int id, Millis timeout = Millis(10000));
  // Stop (if running), then StartNode: same directory, ports and flags.
  ::testing::AssertionResult Restart(int id);
  // SIGSTOP / SIGCONT. A paused node is skipped by WaitLeader.
  void Pause(int id);
  void Resume(int id);

  // Whether node `id`'s process is running (reaps it if it has exited).
  bool Running(int id);
  bool Paused(int id) const { return node(id).paused; }
  pid_t Pid(int id) const { return node(id).pid; }
  // How the last process of node `id` ended (waitpid status), if it has.
  std::optional<int> ExitStatus(int id) const { return node(id).exit_status; }

  // Waits until one running, unpaused node reports raft_role:leader and a majority of the
  // cluster (counting every configured node) reports that leader in the same term, then up to
  // 2 s more for every running, unpaused node to report it too. Stores its id in *leader.
  ::testing::AssertionResult WaitLeader(Millis timeout, int* leader);

  // A hiredis connection to node `id`'s client port.
  RedisClient Connect(int id, Millis timeout = Millis(5000)) const;
  // INFO of node `id`, or an empty map if it did not answer within `timeout`.
  InfoMap Info(int id, Millis timeout = Millis(1000)) const;

  uint16_t Port(int id) const { return node(id).port; }
  uint16_t PeerPort(int id) const { return node(id).peer_port; }
  const std::string& Dir(int id) const { return node(id).dir; }
  // Everything node `id` has logged so far.
  std::string Log(int id) const;
  // Every node's log, with a header per node.
  void PrintLogs(std::ostream& out) const;

 private:
  struct Node {
    int id = 0;
    uint16_t port = 0;
    uint16_t peer_port = 0;
    std::string dir;
    std::string log_path;
    size_t log_offset = 0;  // size of the log when the current process started
    pid_t pid = -1;         // -1: not running
    bool paused = false;
    std::optional<int> exit_status;
  };

  Node& node(int id);
  const Node& node(int id) const;
  // Picks 2N free ports, claims them for this cluster's life (claimed_ports_: no other test
  // process picks them, even while a node is down) and holds them bound in reserved_fds_
  // until the nodes start.
  ::testing::AssertionResult ReservePorts();
  void ReleasePorts();
  // The argv of node `id`.
  std::vector<std::string> Args(const Node& n) const;
  ::testing::AssertionResult Spawn(Node& n);
  // Waits until node `id` answers PING, or its process exits, or the deadline passes.
  ::testing::AssertionResult WaitReady(Node& n, Clock::time_point deadline);
  // waitpid with WNOHANG; records the status. Returns true if the process has exited.
  bool Reap(Node& n);

  ClusterOptions options_;
  std::string root_;  // the temporary directory
  std::vector<Node> nodes_;
  std::vector<int> reserved_fds_;
  std::vector<uint16_t> claimed_ports_;
  void ReleaseClaims();
  bool ports_fixed_ = false;  // true once the cluster has started on its ports
};

}  // namespace raftkv_it
