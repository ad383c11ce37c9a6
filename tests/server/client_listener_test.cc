// ClientListener over real loopback sockets: replies in request order behind delayed ones, split
// and inline requests, protocol errors, QUIT, maxclients, the pre-authentication limits, the
// idle timeout, clients that leave while a reply is pending, back-pressure, the output buffer
// limit, and redis-cli against it.
//
// One thread: the test's client sockets are non-blocking, and every wait runs the loop with
// UV_RUN_NOWAIT between polls of the socket, up to a deadline, so no test can hang. Every test
// ends with the listener stopped, every handle closed and uv_loop_close() == 0.
#include "server/client_listener.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "protocol/resp_writer.h"

extern char** environ;

namespace server {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// How long any single wait may take before the test fails instead of hanging.
constexpr milliseconds kDeadline{10000};

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string Bulk(const std::string& s) {
  std::string out;
  protocol::RespWriter(&out).BulkString(s);
  return out;
}

std::string Multibulk(const std::vector<std::string>& args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const std::string& a : args) out += Bulk(a);
  return out;
}

// The server side of the tests:
//   PING            +PONG
//   ECHO x          bulk x
//   ARGC ...        the number of arguments, command included
//   BIG n           a bulk of n bytes
//   DELAY ms x      bulk x, after ms milliseconds (a uv_timer and a DeferredReply)
//   LATE x          bulk x, sent by the test when it calls SendLate()
//   NOREPLY         no reply at all
//   AUTH pw         +OK and authenticated when pw == "secret"
//   QUIT            +OK, then close
//   KILL            close now, no reply
// With require_auth, anything but AUTH and QUIT before authentication gets -NOAUTH.
class TestHandler : public ClientHandler {
 public:
  explicit TestHandler(uv_loop_t* loop) : loop_(loop) {}

  bool require_auth = false;

  int connects = 0;
  int closes = 0;
  int requests = 0;
  int outstanding = 0;      // DELAYs not yet answered
  int max_outstanding = 0;  // the most at once
  int closed_before_reply = 0;
  std::vector<int> requests_seen_at_reply;  // `requests` when each DELAY fired
  DeferredReply late;
  bool has_late = false;

  void OnConnect(Client& client) override {
    (void)client;
    connects++;
  }

  void OnClose(Client& client) override {
    EXPECT_TRUE(client.closed());
    closes++;
  }

  void OnRequest(Client& client, std::vector<std::string>&& args) override {
    requests++;
    const std::string cmd = Upper(args[0]);
    std::string out;
    protocol::RespWriter w(&out);
    if (require_auth && !client.authenticated() && cmd != "AUTH" && cmd != "QUIT") {
      w.Error("NOAUTH Authentication required.");
      client.Reply(std::move(out));
      return;
    }
    if (cmd == "PING") {
      w.Pong();
    } else if (cmd == "ECHO" && args.size() == 2) {
      w.BulkString(args[1]);
    } else if (cmd == "ARGC") {
      w.Integer(static_cast<int64_t>(args.size()));
    } else if (cmd == "BIG" && args.size() == 2) {
      w.BulkString(std::string(std::stoul(args[1]), 'x'));
    } else if (cmd == "DELAY" && args.size() == 3) {
      StartDelay(client.Defer(), std::stoul(args[1]), args[2]);
      return;
    } else if (cmd == "LATE" && args.size() == 2) {
      late = client.Defer();
      late_value_ = args[1];
      has_late = true;
      return;
    } else if (cmd == "NOREPLY") {
      return;
    } else if (cmd == "AUTH" && args.size() == 2) {
      if (args[1] == "secret") {
        client.set_authenticated(true);
        w.Ok();
      } else {
        w.Error("WRONGPASS invalid username-password pair or user is disabled.");
      }
    } else if (cmd == "QUIT") {
      w.Ok();
      client.Close();
    } else if (cmd == "KILL") {
      client.Kill();
      return;
    } else {
      w.Error("ERR unknown command '" + args[0] + "'");
    }
    client.Reply(std::move(out));
  }

  void SendLate() {
    if (!has_late) return;
    has_late = false;
    late.Send(Bulk(late_value_));
  }

  // Closes the timers of DELAYs still pending (their replies are never sent).
  void Shutdown() {
    for (Delay* d : delays_) uv_close(reinterpret_cast<uv_handle_t*>(&d->timer), OnDelayClosed);
    delays_.clear();
  }

 private:
  struct Delay {
    TestHandler* handler;
    uv_timer_t timer;
    DeferredReply reply;
    std::string value;
  };

  void StartDelay(DeferredReply reply, uint64_t ms, const std::string& value) {
    auto* d = new Delay{this, {}, std::move(reply), value};
    uv_timer_init(loop_, &d->timer);
    d->timer.data = d;
    uv_timer_start(&d->timer, OnDelayFired, ms, 0);
    delays_.insert(d);
    outstanding++;
    max_outstanding = std::max(max_outstanding, outstanding);
  }

  static void OnDelayFired(uv_timer_t* timer) {
    auto* d = static_cast<Delay*>(timer->data);
    TestHandler* h = d->handler;
    h->delays_.erase(d);
    h->outstanding--;
    h->requests_seen_at_reply.push_back(h->requests);
    if (d->reply.client_closed()) h->closed_before_reply++;
    d->reply.Send(Bulk(d->value));  // a no-op when the client is gone
    uv_close(reinterpret_cast<uv_handle_t*>(&d->timer), OnDelayClosed);
  }

  static void OnDelayClosed(uv_handle_t* handle) { delete static_cast<Delay*>(handle->data); }

  uv_loop_t* loop_;
  std::set<Delay*> delays_;
  std::string late_value_;
};

class ClientListenerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    handler_ = std::make_unique<TestHandler>(&loop_);
  }

  void TearDown() override {
    for (int fd : fds_) ::close(fd);
    handler_->Shutdown();
    if (listener_) listener_->Stop();
    for (int i = 0; i < 10000 && uv_loop_alive(&loop_); i++) uv_run(&loop_, UV_RUN_NOWAIT);
    listener_.reset();
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }

  void Start(ClientListener::Options options = {}) {
    options.bind = "127.0.0.1";
    options.port = 0;
    listener_ = std::make_unique<ClientListener>(&loop_, options, handler_.get());
    common::Status s = listener_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_NE(listener_->port(), 0);
  }

  // A non-blocking client socket connected to the listener (the kernel completes the handshake;
  // the listener accepts it when the loop next runs). `rcvbuf` > 0 shrinks its receive buffer.
  int Connect(int rcvbuf = 0) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    EXPECT_GE(fd, 0);
    if (rcvbuf > 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(listener_->port());
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0)
        << strerror(errno);
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    fds_.push_back(fd);
    return fd;
  }

  // Closes a client socket; with `reset`, with an RST (SO_LINGER 0) instead of a FIN.
  void Disconnect(int fd, bool reset = false) {
    if (reset) {
      linger l{1, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    }
    ::close(fd);
    std::erase(fds_, fd);
  }

  void RunOnce() { uv_run(&loop_, UV_RUN_NOWAIT); }

  // Runs the loop until pred() holds; false at the deadline.
  bool RunUntil(const std::function<bool()>& pred, milliseconds limit = kDeadline) {
    const auto end = Clock::now() + limit;
    while (!pred()) {
      if (Clock::now() > end) return false;
      RunOnce();
      ::poll(nullptr, 0, 1);
    }
    return true;
  }

  void RunFor(milliseconds d) {
    const auto end = Clock::now() + d;
    while (Clock::now() < end) {
      RunOnce();
      ::poll(nullptr, 0, 1);
    }
  }

  // Sends everything, running the loop whenever the socket is full. False if the connection
  // broke (EPIPE, ECONNRESET) or the deadline passed.
  bool Send(int fd, const std::string& data) {
    size_t sent = 0;
    const auto end = Clock::now() + kDeadline;
    while (sent < data.size()) {
      const ssize_t n =
          ::send(fd, data.data() + sent, data.size() - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return false;
      if (Clock::now() > end) return false;
      RunOnce();
      pollfd p{fd, POLLOUT, 0};
      ::poll(&p, 1, 1);
    }
    RunOnce();
    return true;
  }

  // Reads until `n` bytes arrived, the peer closed, or the deadline. Sets *eof when it closed.
  // Sends 12 DELAY requests whose values are `value_bytes` long, then a PING, in one write; every
  // reply must come back, in order.
  void PipelineDelays(int fd, size_t value_bytes) {
    std::string request;
    std::string reply;
    for (int i = 0; i < 12; i++) {
      const std::string value(value_bytes, static_cast<char>('a' + i));
      request += "DELAY 5 " + value + "\r\n";
      reply += Bulk(value);
    }
    request += "PING\r\n";
    reply += "+PONG\r\n";
    ASSERT_TRUE(Send(fd, request));
    EXPECT_EQ(Read(fd, reply.size()), reply);
  }

  std::string Read(int fd, size_t n, bool* eof = nullptr, milliseconds limit = kDeadline) {
    std::string got;
    bool closed = false;
    const auto end = Clock::now() + limit;
    char buf[65536];
    while (got.size() < n && !closed && Clock::now() < end) {
      RunOnce();
      pollfd p{fd, POLLIN, 0};
      ::poll(&p, 1, 1);
      while (got.size() < n) {
        const ssize_t r = ::recv(fd, buf, std::min(sizeof(buf), n - got.size()), MSG_DONTWAIT);
        if (r > 0) {
          got.append(buf, static_cast<size_t>(r));
        } else {
          if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) closed = true;
          break;
        }
      }
    }
    if (eof) *eof = closed;
    return got;
  }

  // Reads everything until the peer closes the connection; false at the deadline.
  bool ReadUntilClosed(int fd, std::string* got, milliseconds limit = kDeadline) {
    bool eof = false;
    *got += Read(fd, SIZE_MAX, &eof, limit);
    return eof;
  }

  // Sends `request` and expects exactly `reply` back.
  void RoundTrip(int fd, const std::string& request, const std::string& reply) {
    ASSERT_TRUE(Send(fd, request));
    EXPECT_EQ(Read(fd, reply.size()), reply);
  }

  uv_loop_t loop_;
  std::unique_ptr<TestHandler> handler_;
  std::unique_ptr<ClientListener> listener_;
  std::vector<int> fds_;
};

TEST_F(ClientListenerTest, RepliesToMultibulkAndInlineRequests) {
  Start();
  int fd = Connect();
  RoundTrip(fd, Multibulk({"PING"}), "+PONG\r\n");
  RoundTrip(fd, Multibulk({"ECHO", std::string("a\0b\r\n", 5)}), Bulk(std::string("a\0b\r\n", 5)));
  // Inline: LF or CRLF, empty lines skipped, quoting.
  RoundTrip(fd, "PING\n\r\nECHO hello\r\nECHO \"a b\" \r\nping\r\n",
            "+PONG\r\n$5\r\nhello\r\n$3\r\na b\r\n+PONG\r\n");
  EXPECT_EQ(handler_->connects, 1);
  EXPECT_EQ(handler_->requests, 6);
}

TEST_F(ClientListenerTest, PipelinedRepliesKeepRequestOrderBehindDelayedOnes) {
  Start();
  int fd = Connect();
  // The first reply comes last in time, the fourth before it; the bytes still follow the
  // requests. Every request is parsed before the first reply exists.
  ASSERT_TRUE(Send(fd, "DELAY 80 a\r\nECHO b\r\nPING\r\nDELAY 5 c\r\n" + Multibulk({"ECHO", "d"}) +
                           "NOREPLY\r\nECHO e\r\n"));
  const std::string expected = "$1\r\na\r\n$1\r\nb\r\n+PONG\r\n$1\r\nc\r\n$1\r\nd\r\n$1\r\ne\r\n";
  EXPECT_EQ(Read(fd, expected.size()), expected);
  ASSERT_EQ(handler_->requests_seen_at_reply.size(), 2u);
  EXPECT_EQ(handler_->requests_seen_at_reply[1], 7);  // "a", fired second, saw all 7
  // Nothing more arrives.
  EXPECT_EQ(Read(fd, 1, nullptr, milliseconds(50)), "");
}

TEST_F(ClientListenerTest, TenThousandPipelinedPings) {
  Start();
  int fd = Connect();
  std::string request;
  std::string reply;
  for (int i = 0; i < 10000; i++) {
    request += "PING\r\n";
    reply += "+PONG\r\n";
  }
  ASSERT_TRUE(Send(fd, request));
  EXPECT_EQ(Read(fd, reply.size()), reply);
}

TEST_F(ClientListenerTest, RequestSplitAcrossManyWrites) {
  Start();
  int fd = Connect();
  const std::string value(300, 'v');
  const std::string request = Multibulk({"ECHO", value}) + "ECHO inline\r\n";
  for (char c : request) {
    ASSERT_TRUE(Send(fd, std::string(1, c)));
    RunOnce();
  }
  EXPECT_EQ(Read(fd, Bulk(value).size() + 12), Bulk(value) + "$6\r\ninline\r\n");
  EXPECT_EQ(handler_->requests, 2);
}

TEST_F(ClientListenerTest, ProtocolErrorRepliesThenCloses) {
  Start();
  {
    int fd = Connect();
    ASSERT_TRUE(Send(fd, "*abc\r\n"));
    std::string got;
    ASSERT_TRUE(ReadUntilClosed(fd, &got));
    EXPECT_EQ(got, "-ERR Protocol error: invalid multibulk length\r\n");
  }
  {
    // Earlier requests are answered first; nothing after the bad one is executed.
    int fd = Connect();
    ASSERT_TRUE(Send(fd, "PING\r\n*1\r\nfoo\r\nPING\r\n"));
    std::string got;
    ASSERT_TRUE(ReadUntilClosed(fd, &got));
    EXPECT_EQ(got, "+PONG\r\n-ERR Protocol error: expected '$', got 'f'\r\n");
  }
  {
    // The error waits for a delayed reply before it.
    int fd = Connect();
    ASSERT_TRUE(Send(fd, "DELAY 30 x\r\nset \"\"\"k\"\"\" v\r\n"));
    std::string got;
    ASSERT_TRUE(ReadUntilClosed(fd, &got));
    EXPECT_EQ(got, "$1\r\nx\r\n-ERR Protocol error: unbalanced quotes in request\r\n");
  }
  EXPECT_EQ(handler_->requests, 2);
  ASSERT_TRUE(RunUntil([&] { return listener_->stats().connected_clients == 0; }));
  EXPECT_EQ(handler_->closes, 3);
}

TEST_F(ClientListenerTest, QuitRepliesThenCloses) {
  Start();
  int fd = Connect();
  ASSERT_TRUE(Send(fd, "PING\r\nQUIT\r\nPING\r\n"));
  std::string got;
  ASSERT_TRUE(ReadUntilClosed(fd, &got));
  EXPECT_EQ(got, "+PONG\r\n+OK\r\n");
  EXPECT_EQ(handler_->requests, 2);
}

TEST_F(ClientListenerTest, KillClosesWithoutReplying) {
  Start();
  int fd = Connect();
  ASSERT_TRUE(Send(fd, "PING\r\nKILL\r\nPING\r\n"));
  std::string got;
  ASSERT_TRUE(ReadUntilClosed(fd, &got));
  EXPECT_EQ(got, "");  // PING's reply was not yet written when KILL ran
  ASSERT_TRUE(RunUntil([&] { return handler_->closes == 1; }));
}

TEST_F(ClientListenerTest, EndOfInputStillAnswersWhatWasRead) {
  Start();
  int fd = Connect();
  ASSERT_TRUE(Send(fd, "PING\r\nDELAY 20 x\r\n"));
  ASSERT_EQ(::shutdown(fd, SHUT_WR), 0);
  std::string got;
  ASSERT_TRUE(ReadUntilClosed(fd, &got));
  EXPECT_EQ(got, "+PONG\r\n$1\r\nx\r\n");
}

TEST_F(ClientListenerTest, MaxClientsRefusesWithRedisError) {
  ClientListener::Options options;
  options.maxclients = 2;
  Start(options);
  int a = Connect();
  int b = Connect();
  RoundTrip(a, "PING\r\n", "+PONG\r\n");
  RoundTrip(b, "PING\r\n", "+PONG\r\n");

  int c = Connect();
  std::string got;
  ASSERT_TRUE(ReadUntilClosed(c, &got));
  EXPECT_EQ(got, "-ERR max number of clients reached\r\n");

  ClientListener::Stats stats = listener_->stats();
  EXPECT_EQ(stats.rejected_connections, 1u);
  EXPECT_EQ(stats.total_connections_received, 2u);
  EXPECT_EQ(stats.connected_clients, 2u);
  EXPECT_EQ(handler_->connects, 2);

  // Room again once a client leaves.
  Disconnect(a);
  ASSERT_TRUE(RunUntil([&] { return listener_->stats().connected_clients == 1; }));
  int d = Connect();
  RoundTrip(d, "PING\r\n", "+PONG\r\n");
  EXPECT_EQ(listener_->stats().total_connections_received, 3u);
}

TEST_F(ClientListenerTest, UnauthenticatedLimitsApplyUntilTheHandlerAuthenticates) {
  ClientListener::Options options;
  options.require_auth = true;
  options.max_unauthenticated_query_buffer_bytes = 4096;
  options.max_query_buffer_bytes = 1 << 20;
  handler_->require_auth = true;
  Start(options);

  std::vector<std::string> eleven(11, "x");
  eleven[0] = "ARGC";
  {
    // More than 10 arguments before AUTH: Redis's error, then close.
    int fd = Connect();
    ASSERT_TRUE(Send(fd, "PING\r\n" + Multibulk(eleven)));
    std::string got;
    ASSERT_TRUE(ReadUntilClosed(fd, &got));
    EXPECT_EQ(got,
              "-NOAUTH Authentication required.\r\n"
              "-ERR Protocol error: unauthenticated multibulk length\r\n");
  }
  {
    // A bulk over 16384 bytes before AUTH.
    int fd = Connect();
    ASSERT_TRUE(Send(fd, "*2\r\n$4\r\nAUTH\r\n$16385\r\n"));
    std::string got;
    ASSERT_TRUE(ReadUntilClosed(fd, &got));
    EXPECT_EQ(got, "-ERR Protocol error: unauthenticated bulk length\r\n");
  }
  {
    // The unauthenticated query buffer limit: closed without a reply.
    int fd = Connect();
    Send(fd, "*2\r\n$4\r\nECHO\r\n$10000\r\n" + std::string(8000, 'q'));
    std::string got;
    ASSERT_TRUE(ReadUntilClosed(fd, &got));
    EXPECT_EQ(got, "");
    EXPECT_EQ(listener_->stats().client_query_buffer_limit_disconnections, 1u);
  }
  {
    // AUTH takes effect for the very next request of the same pipeline.
    int fd = Connect();
    RoundTrip(fd, "AUTH secret\r\n" + Multibulk(eleven), "+OK\r\n:11\r\n");
    const std::string big(10000, 'q');
    RoundTrip(fd, Multibulk({"ECHO", big}), Bulk(big));
  }
  EXPECT_EQ(listener_->stats().client_query_buffer_limit_disconnections, 1u);
}

TEST_F(ClientListenerTest, QueryBufferLimitAfterAuthentication) {
  ClientListener::Options options;
  options.max_query_buffer_bytes = 100000;
  Start(options);
  int fd = Connect();
  Send(fd, "*2\r\n$4\r\nECHO\r\n$500000\r\n" + std::string(200000, 'q'));
  std::string got;
  ASSERT_TRUE(ReadUntilClosed(fd, &got));
  EXPECT_EQ(got, "");
  EXPECT_EQ(listener_->stats().client_query_buffer_limit_disconnections, 1u);
}

TEST_F(ClientListenerTest, IdleTimeoutClosesIdleClients) {
  ClientListener::Options options;
  options.idle_timeout_ms = 100;
  Start(options);
  int idle = Connect();
  RoundTrip(idle, "PING\r\n", "+PONG\r\n");
  const auto start = Clock::now();
  std::string got;
  ASSERT_TRUE(ReadUntilClosed(idle, &got));
  EXPECT_EQ(got, "");
  EXPECT_GE(Clock::now() - start, milliseconds(90));

  // A client waiting for its reply is not idle, however long the wait.
  int waiting = Connect();
  ASSERT_TRUE(Send(waiting, "DELAY 400 x\r\n"));
  got.clear();
  ASSERT_TRUE(ReadUntilClosed(waiting, &got));
  EXPECT_EQ(got, "$1\r\nx\r\n");
  EXPECT_EQ(listener_->stats().idle_timeout_disconnections, 2u);
}

TEST_F(ClientListenerTest, ClientLeavingWhileItsReplyIsDelayed) {
  Start();
  // With a FIN: the listener answers what it read, into a socket nobody reads, then closes.
  int fin = Connect();
  ASSERT_TRUE(Send(fin, "DELAY 30 x\r\nDELAY 10 y\r\n"));
  ASSERT_TRUE(RunUntil([&] { return handler_->requests == 2; }));
  Disconnect(fin);
  // With an RST: the connection closes at once; the handler sees it when its reply is ready.
  int rst = Connect();
  ASSERT_TRUE(Send(rst, "DELAY 60 z\r\n"));
  ASSERT_TRUE(RunUntil([&] { return handler_->requests == 3; }));
  Disconnect(rst, /*reset=*/true);

  ASSERT_TRUE(RunUntil([&] { return handler_->outstanding == 0; }));
  ASSERT_TRUE(RunUntil([&] { return listener_->stats().connected_clients == 0; }));
  EXPECT_EQ(handler_->closed_before_reply, 1);
  EXPECT_EQ(handler_->closes, 2);
}

TEST_F(ClientListenerTest, StopWithRepliesOutstanding) {
  Start();
  int fd = Connect();
  ASSERT_TRUE(Send(fd, "DELAY 20 x\r\n"));
  ASSERT_TRUE(RunUntil([&] { return handler_->requests == 1; }));
  listener_->Stop();
  ASSERT_TRUE(RunUntil([&] { return handler_->outstanding == 0; }));
  EXPECT_EQ(handler_->closed_before_reply, 1);
  EXPECT_EQ(handler_->closes, 1);
  std::string got;
  ASSERT_TRUE(ReadUntilClosed(fd, &got));
  EXPECT_EQ(got, "");
}

TEST_F(ClientListenerTest, InflightCapPausesReadingUntilRepliesDrain) {
  ClientListener::Options options;
  options.max_inflight_requests = 4;
  Start(options);
  PipelineDelays(Connect(), 1);
  EXPECT_EQ(handler_->max_outstanding, 4);
  EXPECT_EQ(handler_->requests, 13);
}

// The cap in request bytes: requests of 400 argument bytes against a cap of 1000, so at most
// three await their replies at once (the third reaches the cap); all are answered, in order.
TEST_F(ClientListenerTest, InflightBytesCapPausesReadingUntilRepliesDrain) {
  ClientListener::Options options;
  options.max_inflight_request_bytes = 1000;
  Start(options);
  PipelineDelays(Connect(), 393);  // "DELAY" + "5" + 393 = 399 argument bytes
  EXPECT_EQ(handler_->max_outstanding, 3);
  EXPECT_EQ(handler_->requests, 13);
}

TEST_F(ClientListenerTest, OutputLimitClosesAClientThatNeverReads) {
  ClientListener::Options options;
  options.max_output_buffer_bytes = 1 << 20;
  Start(options);

  // Under the limit: delivered whole.
  int reader = Connect();
  RoundTrip(reader, "BIG 500000\r\n", Bulk(std::string(500000, 'x')));

  // One reply over the limit: closed at once.
  int greedy = Connect();
  ASSERT_TRUE(Send(greedy, "BIG 2000000\r\n"));
  ASSERT_TRUE(
      RunUntil([&] { return listener_->stats().client_output_buffer_limit_disconnections == 1; }));

  // A client that asks and never reads: replies pile up behind the full socket until the limit.
  int sleeper = Connect(/*rcvbuf=*/4096);
  for (int i = 0; i < 2000; i++) {
    if (listener_->stats().client_output_buffer_limit_disconnections == 2) break;
    if (!Send(sleeper, "BIG 65536\r\n")) break;  // already closed
    RunFor(milliseconds(1));
  }
  ASSERT_TRUE(
      RunUntil([&] { return listener_->stats().client_output_buffer_limit_disconnections == 2; }));
  ASSERT_TRUE(RunUntil([&] { return listener_->stats().connected_clients == 1; }));
  RoundTrip(reader, "PING\r\n", "+PONG\r\n");
}

// A reply produced after the listener's flush of an iteration (here: by a prepare handle that
// runs after it) must not wait for the next I/O event: the loop must not block in poll.
TEST_F(ClientListenerTest, ReplyAfterTheFlushDoesNotWaitForTheNextEvent) {
  // Started before the listener's, so (libuv running the newest prepare handle first) it runs
  // after the listener's flush.
  uv_prepare_t late;
  uv_prepare_init(&loop_, &late);
  late.data = handler_.get();
  uv_prepare_start(&late, [](uv_prepare_t* p) { static_cast<TestHandler*>(p->data)->SendLate(); });
  // A guard that would end a blocked poll after 3 s (and fail the timing check below).
  uv_timer_t guard;
  uv_timer_init(&loop_, &guard);
  uv_timer_start(
      &guard, [](uv_timer_t*) {}, 3000, 0);

  Start();
  int fd = Connect();
  ASSERT_TRUE(Send(fd, "LATE hi\r\n"));
  ASSERT_TRUE(RunUntil([&] { return handler_->has_late; }));
  const auto start = Clock::now();
  std::string got;
  char buf[64];
  for (int i = 0; i < 10 && got.size() < 8; i++) {
    uv_run(&loop_, UV_RUN_ONCE);
    const ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0) got.append(buf, static_cast<size_t>(n));
  }
  EXPECT_EQ(got, "$2\r\nhi\r\n");
  EXPECT_LT(Clock::now() - start, milliseconds(1500));

  uv_close(reinterpret_cast<uv_handle_t*>(&late), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&guard), nullptr);
  RunOnce();  // their close callbacks, before they leave scope
}

TEST_F(ClientListenerTest, CountsForInfo) {
  Start();
  int fd = Connect();
  const std::string request = "PING\r\nECHO abc\r\n";
  const std::string reply = "+PONG\r\n$3\r\nabc\r\n";
  RoundTrip(fd, request, reply);
  ClientListener::Stats stats = listener_->stats();
  EXPECT_EQ(stats.connected_clients, 1u);
  EXPECT_EQ(stats.total_connections_received, 1u);
  EXPECT_EQ(stats.total_commands_processed, 2u);
  EXPECT_EQ(stats.total_net_input_bytes, request.size());
  ASSERT_TRUE(RunUntil([&] { return listener_->stats().total_net_output_bytes == reply.size(); }));

  std::vector<uint64_t> ids;
  listener_->ForEachClient([&](Client& c) {
    ids.push_back(c.id());
    EXPECT_TRUE(c.loopback());
    EXPECT_EQ(c.address().rfind("127.0.0.1:", 0), 0u) << c.address();
  });
  ASSERT_EQ(ids.size(), 1u);
  ASSERT_NE(listener_->FindClient(ids[0]), nullptr);
  listener_->FindClient(ids[0])->Kill();
  std::string got;
  ASSERT_TRUE(ReadUntilClosed(fd, &got));
  EXPECT_EQ(listener_->FindClient(ids[0]), nullptr);
}

TEST_F(ClientListenerTest, StartFailures) {
  Start();
  ClientListener::Options options;
  options.port = listener_->port();  // taken
  ClientListener second(&loop_, options, handler_.get());
  common::Status s = second.Start();
  EXPECT_EQ(s.code(), common::Status::Code::kIOError) << s.ToString();
  ClientListener::Options bad;
  bad.bind = "localhost";  // not numeric
  ClientListener third(&loop_, bad, handler_.get());
  s = third.Start();
  EXPECT_EQ(s.code(), common::Status::Code::kInvalidArgument) << s.ToString();
  RunOnce();  // runs the close callback of the second listener's handle
}

// redis-cli, the reference client, against the listener (skipped when it is not installed).
TEST_F(ClientListenerTest, RedisCliPing) {
  if (std::system("command -v redis-cli >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "redis-cli not installed";
  }
  Start();
  int out[2];
  ASSERT_EQ(::pipe(out), 0);
  ::fcntl(out[0], F_SETFL, ::fcntl(out[0], F_GETFL) | O_NONBLOCK);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, out[0]);
  const std::string port = std::to_string(listener_->port());
  std::vector<std::string> argv_s = {"redis-cli", "-h", "127.0.0.1", "-p", port, "PING"};
  std::vector<char*> argv;
  for (std::string& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, "redis-cli", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  ASSERT_EQ(rc, 0);

  std::string got;
  int status = 0;
  bool exited = false;
  const auto end = Clock::now() + kDeadline;
  while (!exited && Clock::now() < end) {
    RunOnce();
    char buf[256];
    ssize_t n;
    while ((n = ::read(out[0], buf, sizeof(buf))) > 0) got.append(buf, static_cast<size_t>(n));
    exited = ::waitpid(pid, &status, WNOHANG) == pid;
    ::poll(nullptr, 0, 1);
  }
  if (!exited) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  char buf[256];
  ssize_t n;
  while ((n = ::read(out[0], buf, sizeof(buf))) > 0) got.append(buf, static_cast<size_t>(n));
  ::close(out[0]);
  ASSERT_TRUE(exited) << "redis-cli did not finish";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(got, "PONG\n");
}

}  // namespace
}  // namespace server
