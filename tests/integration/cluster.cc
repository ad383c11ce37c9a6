#include "tests/integration/cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <thread>

#ifndef RAFTKV_SERVER_PATH
#error "RAFTKV_SERVER_PATH must name the raftkv-server binary"
#endif

namespace raftkv_it {

namespace {

constexpr Millis kPollInterval(20);

timeval ToTimeval(Millis ms) {
  timeval tv;
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

int RemainingMs(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
  if (left <= 0) return 0;
  return left > 1000000 ? 1000000 : static_cast<int>(left);
}

// The lowest port of the kernel's ephemeral range (ports that connect() may take).
int EphemeralLow() {
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  int low = 32768, high = 60999;
  if (!(in >> low >> high)) low = 32768;
  return low;
}

// Test processes that run at the same time (ctest -j) draw ports from the same range. A port
// is bound by its node only while the node runs, so a node killed and started again could
// find its port taken by another process's cluster. Each TestCluster therefore claims its
// ports machine-wide for its whole life: a file named after the port, created exclusively in
// this directory and holding the owner's pid (a claim whose owner is gone is stale).
std::string ClaimDir() {
  const char* tmp = std::getenv("TMPDIR");
  return std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/raftkv-it-ports";
}

bool ClaimPort(uint16_t port) {
  const std::string dir = ClaimDir();
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const std::string path = dir + "/" + std::to_string(port);
  for (int attempt = 0; attempt < 2; attempt++) {
    int fd = ::open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
    if (fd >= 0) {
      const std::string pid = std::to_string(::getpid());
      bool ok = ::write(fd, pid.data(), pid.size()) == static_cast<ssize_t>(pid.size());
      ::close(fd);
      if (!ok) ::unlink(path.c_str());
      return ok;
    }
    if (errno != EEXIST) return false;
    std::ifstream in(path);
    long owner = 0;
    if ((in >> owner) && owner > 0 &&
        (::kill(static_cast<pid_t>(owner), 0) == 0 || errno == EPERM)) {
      return false;  // held by a live process
    }
    ::unlink(path.c_str());  // stale (or half-written): take it over
  }
  return false;
}

void UnclaimPort(uint16_t port) { ::unlink((ClaimDir() + "/" + std::to_string(port)).c_str()); }

// Binds a TCP socket to 127.0.0.1:port (no SO_REUSEADDR, so nobody else can bind it while
// it is held). Returns the fd, or -1 if the port is taken.
int BindPort(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string DescribeStatus(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

// The value of the last `key` in `flags`, or "" if none.
std::string LastFlag(const Flags& flags, std::string_view key, std::string value) {
  for (const auto& [k, v] : flags) {
    if (k == key) value = v;
  }
  return value;
}

}  // namespace

// ---- Replies ----

std::string Status(std::string_view text) { return "+" + std::string(text) + "\r\n"; }

std::string Err(std::string_view text) { return "-" + std::string(text) + "\r\n"; }

std::string Int(int64_t n) { return ":" + std::to_string(n) + "\r\n"; }

std::string Bulk(std::string_view value) {
  return "$" + std::to_string(value.size()) + "\r\n" + std::string(value) + "\r\n";
}

std::string Nil() { return "$-1\r\n"; }

std::string Array(const std::vector<std::string>& encoded_elements) {
  std::string out = "*" + std::to_string(encoded_elements.size()) + "\r\n";
  for (const std::string& e : encoded_elements) out += e;
  return out;
}

std::string Request(const std::vector<std::string>& args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const std::string& a : args) out += Bulk(a);
  return out;
}

std::string WrongArgs(std::string_view name) {
  return Err("ERR wrong number of arguments for '" + std::string(name) + "' command");
}

std::string Encode(const redisReply* r) {
  switch (r->type) {
    case REDIS_REPLY_STATUS:
      return Status(std::string_view(r->str, r->len));
    case REDIS_REPLY_ERROR:
      return Err(std::string_view(r->str, r->len));
    case REDIS_REPLY_INTEGER:
      return Int(r->integer);
    case REDIS_REPLY_NIL:
      return Nil();
    case REDIS_REPLY_STRING:
      return Bulk(std::string_view(r->str, r->len));
    case REDIS_REPLY_ARRAY: {
      std::vector<std::string> elements;
      for (size_t i = 0; i < r->elements; i++) elements.push_back(Encode(r->element[i]));
      return Array(elements);
    }
    default:
      return "<reply of unknown type " + std::to_string(r->type) + ">";
  }
}

// ---- RedisClient ----

RedisClient::RedisClient(uint16_t port, Millis timeout)
    : context_(redisConnectWithTimeout("127.0.0.1", port, ToTimeval(timeout))) {
  if (context_ && context_->err == 0) redisSetTimeout(context_.get(), ToTimeval(timeout));
}

std::string RedisClient::error() const {
  if (!context_) return "cannot allocate a hiredis context";
  if (context_->err != 0) return context_->errstr;
  return "";
}

ReplyPtr RedisClient::Command(const std::vector<std::string>& args) {
  if (!connected()) return nullptr;
  std::vector<const char*> argv;
  std::vector<size_t> argvlen;
  for (const std::string& a : args) {
    argv.push_back(a.data());
    argvlen.push_back(a.size());
  }
  void* r =
      redisCommandArgv(context_.get(), static_cast<int>(args.size()), argv.data(), argvlen.data());
  return ReplyPtr(static_cast<redisReply*>(r));
}

std::string RedisClient::Call(const std::vector<std::string>& args) {
  ReplyPtr r = Command(args);
  if (!r) return "<io error: " + error() + ">";
  return Encode(r.get());
}

// ---- RawConnection ----

RawConnection::RawConnection(uint16_t port, Millis timeout) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd_ < 0) {
    error_ = std::string("socket: ") + std::strerror(errno);
    return;
  }
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) return;
  if (errno != EINPROGRESS) {
    error_ = std::string("connect: ") + std::strerror(errno);
    return;
  }
  pollfd p{fd_, POLLOUT, 0};
  int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (n <= 0) {
    error_ = "connect: timed out";
    return;
  }
  int err = 0;
  socklen_t len = sizeof(err);
  ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) error_ = std::string("connect: ") + std::strerror(err);
}

RawConnection::~RawConnection() { Close(); }

void RawConnection::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool RawConnection::Send(std::string_view bytes) {
  if (fd_ < 0 || closed_) return false;
  const Clock::time_point deadline = Clock::now() + Millis(30000);
  size_t sent = 0;
  while (sent < bytes.size()) {
    // Drain what the server answers meanwhile, so that neither side blocks the other.
    pollfd p{fd_, POLLIN | POLLOUT, 0};
    int n = ::poll(&p, 1, RemainingMs(deadline));
    if (n <= 0) return false;
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      if (!ReadOnce(Clock::now()) && closed_) return false;
    }
    if (p.revents & POLLOUT) {
      ssize_t w = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (w > 0) {
        sent += static_cast<size_t>(w);
      } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
        if (errno == EPIPE || errno == ECONNRESET) {
          // The server has closed (and reset) the connection: what it sent before is still
          // in our receive queue.
          char buf[65536];
          ssize_t r;
          while ((r = ::recv(fd_, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
            received_.append(buf, static_cast<size_t>(r));
          }
          closed_ = true;
        }
        return false;
      }
    }
  }
  return true;
}

bool RawConnection::ReadOnce(Clock::time_point deadline) {
  if (fd_ < 0 || closed_) return false;
  pollfd p{fd_, POLLIN, 0};
  int n = ::poll(&p, 1, RemainingMs(deadline));
  if (n < 0 && errno == EINTR) return true;
  if (n <= 0) return false;
  char buf[65536];
  ssize_t r = ::recv(fd_, buf, sizeof(buf), 0);
  if (r > 0) {
    received_.append(buf, static_cast<size_t>(r));
    return true;
  }
  if (r == 0) {
    closed_ = true;
    return false;
  }
  if (errno == EAGAIN || errno == EINTR) return true;
  if (errno == ECONNRESET || errno == EPIPE) {
    closed_ = true;
  } else {
    error_ = std::string("recv: ") + std::strerror(errno);
  }
  return false;
}

bool RawConnection::ReadAtLeast(size_t n, Millis timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  while (received_.size() < n && ReadOnce(deadline)) {
  }
  return received_.size() >= n;
}

bool RawConnection::ReadUntilClosed(Millis timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  while (ReadOnce(deadline)) {
  }
  return closed_;
}

void RawConnection::ReadFor(Millis timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (!ReadOnce(deadline) && (closed_ || !error_.empty())) return;
  }
}

RawResult SendAndReadUntilClosed(uint16_t port, std::string_view bytes, Millis timeout) {
  RawConnection c(port, Millis(5000));
  RawResult result;
  if (!c.ok()) return result;
  c.Send(bytes);
  c.ReadUntilClosed(timeout);
  result.bytes = c.received();
  result.closed = c.closed();
  return result;
}

// ---- TestCluster ----

TestCluster::TestCluster(ClusterOptions options) : options_(std::move(options)) {
  if (options_.nodes < 1 || options_.nodes > 7) {
    ADD_FAILURE() << "a TestCluster has 1..7 nodes, not " << options_.nodes;
    options_.nodes = options_.nodes < 1 ? 1 : 7;
  }
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/raftkv-it-XXXXXX";
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp " << pattern << ": " << std::strerror(errno);
  }
  root_ = buf.data();
  for (int id = 1; id <= options_.nodes; id++) {
    Node n;
    n.id = id;
    n.dir = root_ + "/node" + std::to_string(id);
    n.log_path = root_ + "/node" + std::to_string(id) + ".log";
    nodes_.push_back(n);
  }
}

TestCluster::TestCluster(int nodes, Flags flags, std::map<int, Flags> node_flags)
    : TestCluster(ClusterOptions{nodes, std::move(flags), std::move(node_flags)}) {}

TestCluster::~TestCluster() {
  for (Node& n : nodes_) {
    if (n.pid > 0) ::kill(n.pid, SIGKILL);
  }
  const Clock::time_point deadline = Clock::now() + Millis(10000);
  for (Node& n : nodes_) {
    while (n.pid > 0 && !Reap(n) && Clock::now() < deadline) std::this_thread::sleep_for(Millis(5));
  }
  ReleasePorts();
  ReleaseClaims();
  bool failed = ::testing::Test::HasFailure();
  const ::testing::TestSuite* suite = ::testing::UnitTest::GetInstance()->current_test_suite();
  if (suite != nullptr && suite->Failed()) failed = true;
  if (failed) PrintLogs(std::cerr);
  if (std::getenv("RAFTKV_IT_KEEP") != nullptr) {
    std::cerr << "raftkv-it: kept " << root_ << "\n";
  } else if (!root_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
}

TestCluster::Node& TestCluster::node(int id) {
  if (id < 1 || id > options_.nodes) {
    std::cerr << "raftkv-it: no node " << id << " in a cluster of " << options_.nodes << "\n";
    std::abort();
  }
  return nodes_[static_cast<size_t>(id - 1)];
}

const TestCluster::Node& TestCluster::node(int id) const {
  return const_cast<TestCluster*>(this)->node(id);
}

::testing::AssertionResult TestCluster::ReservePorts() {
  ReleasePorts();
  ReleaseClaims();
  // 10100..16899: below the ephemeral range, and apart from the ports of the default local
  // cluster (7001.., 17001..) and of the shell tests (tests/e2e: 20001 and up).
  const int ephemeral_low = EphemeralLow();
  int lo = 10100, hi = std::min(16900, ephemeral_low);
  if (hi - lo < 1000) {
    lo = 1024;
    hi = ephemeral_low;
  }
  std::mt19937 rng(std::random_device{}() ^ static_cast<unsigned>(::getpid()) ^
                   static_cast<unsigned>(Clock::now().time_since_epoch().count()));
  std::uniform_int_distribution<int> pick(lo, hi - 1);
  std::vector<uint16_t> ports;
  for (int attempt = 0; attempt < 10000 && ports.size() < 2 * nodes_.size(); attempt++) {
    uint16_t port = static_cast<uint16_t>(pick(rng));
    if (std::find(ports.begin(), ports.end(), port) != ports.end()) continue;
    if (!ClaimPort(port)) continue;
    claimed_ports_.push_back(port);
    int fd = BindPort(port);
    if (fd < 0) continue;
    reserved_fds_.push_back(fd);
    ports.push_back(port);
  }
  if (ports.size() < 2 * nodes_.size()) {
    ReleasePorts();
    return ::testing::AssertionFailure()
           << "found only " << ports.size() << " free ports in [" << lo << ", " << hi << ")";
  }
  for (size_t i = 0; i < nodes_.size(); i++) {
    nodes_[i].port = ports[2 * i];
    nodes_[i].peer_port = ports[2 * i + 1];
  }
  return ::testing::AssertionSuccess();
}

void TestCluster::ReleaseClaims() {
  for (uint16_t port : claimed_ports_) UnclaimPort(port);
  claimed_ports_.clear();
}

void TestCluster::ReleasePorts() {
  for (int fd : reserved_fds_) ::close(fd);
  reserved_fds_.clear();
}

std::vector<std::string> TestCluster::Args(const Node& n) const {
  std::string cluster;
  for (const Node& m : nodes_) {
    if (!cluster.empty()) cluster += ",";
    cluster += std::to_string(m.id) + "=127.0.0.1:" + std::to_string(m.port) + ":" +
               std::to_string(m.peer_port);
  }
  std::vector<std::string> args = {
      RAFTKV_SERVER_PATH, "--node-id", std::to_string(n.id), "--cluster", cluster, "--dir", n.dir,
      "--bind",           "127.0.0.1"};
  auto add = [&args](const Flags& flags) {
    for (const auto& [k, v] : flags) {
      args.push_back("--" + k);
      args.push_back(v);
    }
  };
  add(options_.flags);
  auto it = options_.node_flags.find(n.id);
  if (it != options_.node_flags.end()) add(it->second);
  return args;
}

::testing::AssertionResult TestCluster::Spawn(Node& n) {
  if (n.pid > 0) return ::testing::AssertionFailure() << "node " << n.id << " is running";
  std::vector<std::string> args = Args(n);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  {
    std::ofstream log(n.log_path, std::ios::app);
    log << "==== raftkv-it: starting node " << n.id << ":";
    for (const std::string& a : args) log << " " << a;
    log << "\n";
  }
  n.log_offset = ReadFile(n.log_path).size();
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return ::testing::AssertionFailure() << "fork: " << std::strerror(errno);
  if (pid == 0) {
    // The child: only async-signal-safe calls until exec. Die with the test process, so a
    // test killed by its timeout leaves no server behind.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);
    int log = ::open(n.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int null = ::open("/dev/null", O_RDONLY);
    if (log < 0 || null < 0) ::_exit(126);
    ::dup2(null, 0);
    ::dup2(log, 1);
    ::dup2(log, 2);
    // Inherit no other descriptor (a client connection of the test held open by a server
    // would keep it open after the test closes it).
    ::close_range(3, ~0U, 0);
    ::execv(argv[0], argv.data());
    const char msg[] = "raftkv-it: exec failed\n";
    ssize_t ignored = ::write(2, msg, sizeof(msg) - 1);
    (void)ignored;
    ::_exit(127);
  }
  n.pid = pid;
  n.paused = false;
  n.exit_status.reset();
  return ::testing::AssertionSuccess();
}

bool TestCluster::Reap(Node& n) {
  if (n.pid <= 0) return true;
  int status = 0;
  pid_t r = ::waitpid(n.pid, &status, WNOHANG);
  if (r == n.pid || (r < 0 && errno == ECHILD)) {
    n.exit_status = r == n.pid ? std::optional<int>(status) : std::nullopt;
    n.pid = -1;
    n.paused = false;
    return true;
  }
  return false;
}

bool TestCluster::Running(int id) { return !Reap(node(id)); }

::testing::AssertionResult TestCluster::WaitReady(Node& n, Clock::time_point deadline) {
  while (true) {
    if (Reap(n)) {
      return ::testing::AssertionFailure()
             << "node " << n.id << " "
             << (n.exit_status ? DescribeStatus(*n.exit_status) : std::string("vanished"))
             << " while starting";
    }
    RedisClient c(n.port, Millis(200));
    if (c.connected()) {
      // Any reply (+PONG, or -NOAUTH with requirepass) means the node serves clients.
      if (c.Command({"PING"}) != nullptr) return ::testing::AssertionSuccess();
    }
    if (Clock::now() >= deadline) {
      return ::testing::AssertionFailure()
             << "node " << n.id << " did not accept clients on port " << n.port;
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

::testing::AssertionResult TestCluster::Start(Millis timeout) {
  constexpr int kAttempts = 5;
  for (int attempt = 1;; attempt++) {
    if (!ports_fixed_) {
      ::testing::AssertionResult r = ReservePorts();
      if (!r) return r;
      ReleasePorts();
    }
    const Clock::time_point deadline = Clock::now() + timeout;
    ::testing::AssertionResult result = ::testing::AssertionSuccess();
    for (Node& n : nodes_) {
      if (n.pid > 0) continue;
      result = Spawn(n);
      if (!result) break;
    }
    if (result) {
      for (Node& n : nodes_) {
        result = WaitReady(n, deadline);
        if (!result) break;
      }
    }
    if (result) {
      ports_fixed_ = true;
      return result;
    }
    // A node that could not bind its port, on the first start: another process took it
    // between our check and the node's bind. Start over on other ports.
    bool port_taken = false;
    for (const Node& n : nodes_) {
      if (n.pid <= 0 &&
          Log(n.id).find("address already in use", n.log_offset) != std::string::npos) {
        port_taken = true;
      }
    }
    if (ports_fixed_ || !port_taken || attempt == kAttempts) return result;
    for (Node& n : nodes_) Kill(n.id);
    for (Node& n : nodes_) {
      std::error_code ec;
      std::filesystem::remove_all(n.dir, ec);
      std::ofstream log(n.log_path, std::ios::app);
      log << "==== raftkv-it: a port was taken; starting the cluster again on other ports\n";
    }
  }
}

::testing::AssertionResult TestCluster::StartNode(int id, Millis timeout) {
  Node& n = node(id);
  if (!ports_fixed_) {
    return ::testing::AssertionFailure() << "StartNode(" << id << ") before Start()";
  }
  ::testing::AssertionResult r = Spawn(n);
  if (!r) return r;
  return WaitReady(n, Clock::now() + timeout);
}

void TestCluster::Kill(int id) {
  Node& n = node(id);
  if (n.pid <= 0) return;
  ::kill(n.pid, SIGKILL);
  const Clock::time_point deadline = Clock::now() + Millis(10000);
  while (!Reap(n) && Clock::now() < deadline) std::this_thread::sleep_for(Millis(2));
  if (n.pid > 0) ADD_FAILURE() << "node " << id << " (pid " << n.pid << ") survived SIGKILL";
}

::testing::AssertionResult TestCluster::Stop(int id, Millis timeout) {
  Node& n = node(id);
  if (n.pid <= 0) return ::testing::AssertionSuccess();
  ::kill(n.pid, SIGTERM);
  if (n.paused) ::kill(n.pid, SIGCONT);
  const Clock::time_point deadline = Clock::now() + timeout;
  while (!Reap(n)) {
    if (Clock::now() >= deadline) {
      Kill(id);
      return ::testing::AssertionFailure() << "node " << id << " did not exit within "
                                           << timeout.count() << " ms of SIGTERM; killed";
    }
    std::this_thread::sleep_for(Millis(5));
  }
  if (!n.exit_status || !WIFEXITED(*n.exit_status) || WEXITSTATUS(*n.exit_status) != 0) {
    return ::testing::AssertionFailure()
           << "node " << id << " "
           << (n.exit_status ? DescribeStatus(*n.exit_status) : std::string("vanished"))
           << " after SIGTERM";
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult TestCluster::Restart(int id) {
  ::testing::AssertionResult r = Stop(id);
  if (!r) return r;
  return StartNode(id);
}

void TestCluster::Pause(int id) {
  Node& n = node(id);
  if (n.pid <= 0) return;
  ::kill(n.pid, SIGSTOP);
  n.paused = true;
}

void TestCluster::Resume(int id) {
  Node& n = node(id);
  if (n.pid <= 0) return;
  ::kill(n.pid, SIGCONT);
  n.paused = false;
}

RedisClient TestCluster::Connect(int id, Millis timeout) const {
  return RedisClient(node(id).port, timeout);
}

uint64_t InfoNumber(const InfoMap& info, const std::string& key) {
  auto it = info.find(key);
  return it == info.end() || it->second.empty() ? 0 : std::stoull(it->second);
}

InfoMap TestCluster::Info(int id, Millis timeout) const {
  InfoMap info;
  RedisClient c = Connect(id, timeout);
  if (!c.connected()) return info;
  Flags flags = options_.flags;
  auto it = options_.node_flags.find(id);
  if (it != options_.node_flags.end())
    flags.insert(flags.end(), it->second.begin(), it->second.end());
  std::string password = LastFlag(flags, "requirepass", "");
  if (!password.empty() && c.Call({"AUTH", password}) != Status("OK")) return info;
  ReplyPtr r = c.Command({"INFO", "all"});
  if (!r || r->type != REDIS_REPLY_STRING) return info;
  std::istringstream lines(std::string(r->str, r->len));
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    info[line.substr(0, colon)] = line.substr(colon + 1);
  }
  return info;
}

::testing::AssertionResult TestCluster::WaitLeader(Millis timeout, int* leader) {
  const Clock::time_point deadline = Clock::now() + timeout;
  const int majority = options_.nodes / 2 + 1;
  std::string last_view;
  std::optional<Clock::time_point> settle_until;
  while (true) {
    std::map<int, InfoMap> infos;
    std::ostringstream view;
    for (Node& n : nodes_) {
      if (Reap(n)) {
        view << " node " << n.id << ": not running;";
        continue;
      }
      if (n.paused) {
        view << " node " << n.id << ": paused;";
        continue;
      }
      InfoMap info = Info(n.id, Millis(500));
      if (info.empty()) {
        view << " node " << n.id << ": no answer to INFO;";
        continue;
      }
      view << " node " << n.id << ": role=" << info["raft_role"] << " term=" << info["raft_term"]
           << " leader=" << info["raft_leader_id"] << ";";
      infos[n.id] = std::move(info);
    }
    last_view = view.str();
    // The claimant in the highest term, if exactly one claims it.
    int best = 0;
    unsigned long long best_term = 0;
    int claimants_in_best_term = 0;
    for (auto& [id, info] : infos) {
      if (info["raft_role"] != "leader") continue;
      unsigned long long term = std::strtoull(info["raft_term"].c_str(), nullptr, 10);
      if (best == 0 || term > best_term) {
        best = id;
        best_term = term;
        claimants_in_best_term = 1;
      } else if (term == best_term) {
        claimants_in_best_term++;
      }
    }
    if (best != 0 && claimants_in_best_term == 1) {
      int agree = 0;
      for (auto& [id, info] : infos) {
        if (info["raft_leader_id"] == std::to_string(best) &&
            std::strtoull(info["raft_term"].c_str(), nullptr, 10) == best_term) {
          agree++;
        }
      }
      // A majority is enough, but the others (just started, say) usually learn of the leader
      // within a heartbeat or two: give them a moment, so that a test can reach any node.
      if (agree >= majority && !settle_until.has_value()) {
        settle_until = Clock::now() + Millis(2000);
      }
      if (agree >= majority &&
          (agree == static_cast<int>(infos.size()) || Clock::now() >= *settle_until)) {
        *leader = best;
        return ::testing::AssertionSuccess();
      }
    }
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(Millis(50));
  }
  return ::testing::AssertionFailure() << "no leader agreed by a majority within "
                                       << timeout.count() << " ms; last view:" << last_view;
}

std::string TestCluster::Log(int id) const { return ReadFile(node(id).log_path); }

void TestCluster::PrintLogs(std::ostream& out) const {
  constexpr size_t kMaxBytes = 64 << 10;
  for (const Node& n : nodes_) {
    std::string log = ReadFile(n.log_path);
    out << "---- node " << n.id << " (client port " << n.port << ", peer port " << n.peer_port
        << ") log " << n.log_path << " ----\n";
    if (log.size() > kMaxBytes) {
      out << "[... " << (log.size() - kMaxBytes) << " bytes omitted ...]\n";
      log = log.substr(log.size() - kMaxBytes);
    }
    out << log << "---- end of node " << n.id << " ----\n";
  }
}

}  // namespace raftkv_it
