// The malformed-input table of the reliability plan (§6.6), rows 1-30, 33 and 35, on a real
// raftkv-server: each row sends its bytes on a raw connection and checks the exact bytes of
// the reply and whether the server closed the connection. A row whose connection must stay
// open is checked by sending one more request afterwards and getting its reply (and nothing
// else). Rows 31 (lists), 32 (cross-protocol) and 34 (non-loopback client) are not here.
//
// Rows 20-24 run on a node with `requirepass`, row 33 on a node with `maxclients 4`.
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/cluster.h"

namespace raftkv_it {
namespace {

constexpr char kPassword[] = "malformed-pw";
const Millis kReplyTimeout(10000);

// Bytes made readable in a failure message.
std::string Printable(const std::string& bytes) {
  std::string out;
  for (char raw : bytes) {
    const auto ch = static_cast<unsigned char>(raw);
    if (ch == '\r') {
      out += "\\r";
    } else if (ch == '\n') {
      out += "\\n";
    } else if (ch < 0x20 || ch >= 0x7f) {
      const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[ch >> 4];
      out += hex[ch & 15];
    } else {
      out += static_cast<char>(ch);
    }
  }
  if (out.size() > 300) out = out.substr(0, 300) + "...(" + std::to_string(bytes.size()) + ")";
  return out;
}

std::string ProtocolError(const std::string& reason) {
  return Err("ERR Protocol error: " + reason);
}

// Sends `input`; the server must answer exactly `reply` and close the connection.
::testing::AssertionResult RepliesAndCloses(uint16_t port, const std::string& input,
                                            const std::string& reply) {
  RawResult r = SendAndReadUntilClosed(port, input, kReplyTimeout);
  if (r.bytes == reply && r.closed) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "expected '" << Printable(reply) << "' and a close; got '" << Printable(r.bytes)
         << "' and the connection " << (r.closed ? "closed" : "still open");
}

// Sends each of `pieces` in its own write; the server must answer exactly `reply` to them,
// and then `probe_reply` to `probe`, with the connection open.
::testing::AssertionResult RepliesAndStaysOpen(uint16_t port,
                                               const std::vector<std::string>& pieces,
                                               const std::string& reply,
                                               const std::string& probe = Request({"PING"}),
                                               const std::string& probe_reply = Status("PONG")) {
  RawConnection c(port, Millis(5000));
  if (!c.ok()) return ::testing::AssertionFailure() << "connect: " << c.error();
  for (const std::string& piece : pieces) {
    if (!c.Send(piece)) return ::testing::AssertionFailure() << "the server closed the connection";
  }
  c.ReadAtLeast(reply.size(), kReplyTimeout);
  if (!c.Send(probe)) return ::testing::AssertionFailure() << "the server closed the connection";
  c.ReadAtLeast(reply.size() + probe_reply.size(), kReplyTimeout);
  if (c.received() == reply + probe_reply && !c.closed()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "expected '" << Printable(reply + probe_reply) << "' on an open connection; got '"
         << Printable(c.received()) << "' and the connection "
         << (c.closed() ? "closed" : "still open");
}

// Single-node clusters, each started on first use: plain, with a password, with maxclients 4.
class IntegrationMalformedInput : public ::testing::Test {
 protected:
  static void TearDownTestSuite() {
    for (TestCluster** c : {&plain_, &password_, &maxclients_}) {
      delete *c;
      *c = nullptr;
    }
  }

  static uint16_t PlainPort() { return PortOf(&plain_, {}); }
  static uint16_t PasswordPort() { return PortOf(&password_, {{"requirepass", kPassword}}); }
  static uint16_t MaxClientsPort() { return PortOf(&maxclients_, {{"maxclients", "4"}}); }

  // A connection to the plain node once it leads (for rows that write).
  static RedisClient PlainLeader() {
    PlainPort();
    int leader = 0;
    EXPECT_TRUE(plain_->WaitLeader(Millis(20000), &leader));
    RedisClient c = plain_->Connect(1);
    EXPECT_TRUE(c.connected()) << c.error();
    return c;
  }

 private:
  static uint16_t PortOf(TestCluster** cluster, Flags flags) {
    if (*cluster == nullptr) {
      *cluster = new TestCluster(1, std::move(flags));
      EXPECT_TRUE((*cluster)->Start());
    }
    return (*cluster)->Port(1);
  }

  static TestCluster* plain_;
  static TestCluster* password_;
  static TestCluster* maxclients_;
};

TestCluster* IntegrationMalformedInput::plain_ = nullptr;
TestCluster* IntegrationMalformedInput::password_ = nullptr;
TestCluster* IntegrationMalformedInput::maxclients_ = nullptr;

TEST_F(IntegrationMalformedInput, Row01EmptyLineIsIgnored) {
  EXPECT_TRUE(RepliesAndStaysOpen(PlainPort(), {"\r\n"}, "", "PING\r\n"));
  EXPECT_TRUE(RepliesAndStaysOpen(PlainPort(), {"\r\n", "PING\r\n"}, Status("PONG")));
}

TEST_F(IntegrationMalformedInput, Row02NegativeMultibulkCountIsIgnored) {
  EXPECT_TRUE(RepliesAndStaysOpen(PlainPort(), {"*-10\r\n"}, "", "PING\r\n"));
}

TEST_F(IntegrationMalformedInput, Row03ZeroMultibulkCountIsIgnored) {
  EXPECT_TRUE(RepliesAndStaysOpen(PlainPort(), {"*0\r\n"}, "", "PING\r\n"));
}

TEST_F(IntegrationMalformedInput, Row04MultibulkCountAboveIntMax) {
  EXPECT_TRUE(
      RepliesAndCloses(PlainPort(), "*3000000000\r\n", ProtocolError("invalid multibulk length")));
}

TEST_F(IntegrationMalformedInput, Row05MultibulkCountNotANumber) {
  EXPECT_TRUE(RepliesAndCloses(PlainPort(), "*abc\r\n", ProtocolError("invalid multibulk length")));
}

TEST_F(IntegrationMalformedInput, Row06MultibulkCountAboveOurCap) {
  EXPECT_TRUE(
      RepliesAndCloses(PlainPort(), "*2000000\r\n", ProtocolError("invalid multibulk length")));
}

TEST_F(IntegrationMalformedInput, Row07NoDollarBeforeAnArgument) {
  EXPECT_TRUE(RepliesAndCloses(PlainPort(), "*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n",
                               ProtocolError("expected '$', got 'f'")));
}

TEST_F(IntegrationMalformedInput, Row08NoDollarBeforeTheFirstArgument) {
  EXPECT_TRUE(
      RepliesAndCloses(PlainPort(), "*1\r\nfoo\r\n", ProtocolError("expected '$', got 'f'")));
}

TEST_F(IntegrationMalformedInput, Row09NegativeBulkLength) {
  EXPECT_TRUE(RepliesAndCloses(PlainPort(), "*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n",
                               ProtocolError("invalid bulk length")));
}

TEST_F(IntegrationMalformedInput, Row10BulkLengthAbove512MiB) {
  EXPECT_TRUE(RepliesAndCloses(PlainPort(), "*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2000000000\r\n",
                               ProtocolError("invalid bulk length")));
}

TEST_F(IntegrationMalformedInput, Row11BulkLengthNotANumber) {
  EXPECT_TRUE(RepliesAndCloses(PlainPort(), "*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$blabla\r\n",
                               ProtocolError("invalid bulk length")));
}

TEST_F(IntegrationMalformedInput, Row12UnbalancedQuotesInline) {
  EXPECT_TRUE(RepliesAndCloses(PlainPort(), "set \"\"\"test-key\"\"\" test-value\r\n",
                               ProtocolError("unbalanced quotes in request")));
}

TEST_F(IntegrationMalformedInput, Row13InlineRequestTooBig) {
  EXPECT_TRUE(RepliesAndCloses(PlainPort(), std::string(65 * 1024, 'A'),
                               ProtocolError("too big inline request")));
}

TEST_F(IntegrationMalformedInput, Row14MultibulkCountLineTooBig) {
  EXPECT_TRUE(RepliesAndCloses(PlainPort(), "*" + std::string(65 * 1024, '1'),
                               ProtocolError("too big mbulk count string")));
}

TEST_F(IntegrationMalformedInput, Row15BulkLengthLineTooBig) {
  EXPECT_TRUE(RepliesAndCloses(PlainPort(), "*1\r\n$" + std::string(65 * 1024, '1'),
                               ProtocolError("too big bulk count string")));
}

// Redis's "protocol desync" test: a prefix, then bytes with no newline, 1 KiB per write,
// until the server answers and closes (after more than 64 KiB), within 30 s.
TEST_F(IntegrationMalformedInput, Row16ProtocolDesync) {
  struct Case {
    std::string prefix;
    std::string reply;
  };
  for (const Case& c : {Case{std::string(1, '\0'), ProtocolError("too big inline request")},
                        Case{std::string("*\0", 2), ProtocolError("too big mbulk count string")},
                        Case{std::string("$\0", 2), ProtocolError("too big inline request")}}) {
    SCOPED_TRACE("prefix '" + Printable(c.prefix) + "'");
    RawConnection conn(PlainPort(), Millis(5000));
    ASSERT_TRUE(conn.ok()) << conn.error();
    const Clock::time_point deadline = Clock::now() + Millis(30000);
    const std::string chunk(1024, 'x');
    size_t sent = 0;
    bool sending = conn.Send(c.prefix);
    while (sending && !conn.closed() && conn.received().empty() && Clock::now() < deadline &&
           sent < (4u << 20)) {
      sending = conn.Send(chunk);
      if (sending) sent += chunk.size();
    }
    EXPECT_TRUE(conn.ReadUntilClosed(kReplyTimeout));
    EXPECT_EQ(Printable(conn.received()), Printable(c.reply));
    EXPECT_GE(sent, 63u * 1024) << "answered before 64 KiB were buffered";
    EXPECT_LT(Clock::now(), deadline + kReplyTimeout);
  }
}

TEST_F(IntegrationMalformedInput, Row17NoCrlfAfterBulk) {
  EXPECT_TRUE(RepliesAndCloses(PlainPort(), "*1\r\n$4\r\nPINGXY",
                               ProtocolError("expected CRLF after bulk")));
}

TEST_F(IntegrationMalformedInput, Row18IncompleteRequestThenClientCloses) {
  {
    RawConnection c(PlainPort(), Millis(5000));
    ASSERT_TRUE(c.ok()) << c.error();
    ASSERT_TRUE(c.Send("*2\r\n$3\r\nGET\r\n"));
    c.ReadFor(Millis(300));
    EXPECT_EQ(c.received(), "");
    EXPECT_FALSE(c.closed());
  }
  // The node goes on serving.
  EXPECT_TRUE(RepliesAndStaysOpen(PlainPort(), {}, "", Request({"PING"}), Status("PONG")));
}

TEST_F(IntegrationMalformedInput, Row19TenThousandPipelinedPings) {
  std::string pings;
  std::string pongs;
  for (int i = 0; i < 10000; i++) {
    pings += Request({"PING"});
    pongs += Status("PONG");
  }
  RawConnection c(PlainPort(), Millis(5000));
  ASSERT_TRUE(c.ok()) << c.error();
  ASSERT_TRUE(c.Send(pings));
  EXPECT_TRUE(c.ReadAtLeast(pongs.size(), Millis(30000)));
  EXPECT_EQ(c.received().size(), pongs.size());
  EXPECT_TRUE(c.received() == pongs) << Printable(c.received());
  // Still open: one more.
  ASSERT_TRUE(c.Send(Request({"ECHO", "done"})));
  EXPECT_TRUE(c.ReadAtLeast(pongs.size() + Bulk("done").size(), kReplyTimeout));
  EXPECT_EQ(c.received().substr(pongs.size()), Bulk("done"));
  EXPECT_FALSE(c.closed());
}

TEST_F(IntegrationMalformedInput, Row20UnauthenticatedMultibulkCount) {
  EXPECT_TRUE(RepliesAndCloses(PasswordPort(), "*11\r\n",
                               ProtocolError("unauthenticated multibulk length")));
  // Ten arguments are still allowed before authentication (a known command: an unknown one
  // gets its unknown-command error first, as in Redis).
  std::vector<std::string> ten(10, "x");
  ten[0] = "MGET";
  EXPECT_TRUE(RepliesAndStaysOpen(PasswordPort(), {Request(ten)},
                                  Err("NOAUTH Authentication required."),
                                  Request({"AUTH", kPassword}), Status("OK")));
}

TEST_F(IntegrationMalformedInput, Row21UnauthenticatedBulkLength) {
  EXPECT_TRUE(RepliesAndCloses(PasswordPort(), "*2\r\n$4\r\nAUTH\r\n$16385\r\n",
                               ProtocolError("unauthenticated bulk length")));
}

TEST_F(IntegrationMalformedInput, Row22UnauthenticatedBulkAtTheLimit) {
  EXPECT_TRUE(
      RepliesAndStaysOpen(PasswordPort(), {Request({"AUTH", std::string(16384, 'p')})},
                          Err("WRONGPASS invalid username-password pair or user is disabled."),
                          Request({"GET", "k"}), Err("NOAUTH Authentication required.")));
}

TEST_F(IntegrationMalformedInput, Row23UnauthenticatedGet) {
  EXPECT_TRUE(RepliesAndStaysOpen(PasswordPort(), {Request({"GET", "k"})},
                                  Err("NOAUTH Authentication required."),
                                  Request({"AUTH", kPassword}), Status("OK")));
}

TEST_F(IntegrationMalformedInput, Row24WrongPassword) {
  EXPECT_TRUE(
      RepliesAndStaysOpen(PasswordPort(), {Request({"AUTH", "wrong"})},
                          Err("WRONGPASS invalid username-password pair or user is disabled."),
                          Request({"AUTH", kPassword}), Status("OK")));
}

TEST_F(IntegrationMalformedInput, Row25AuthWithoutPasswordConfigured) {
  EXPECT_TRUE(RepliesAndStaysOpen(
      PlainPort(), {Request({"AUTH", "x"})},
      Err("ERR AUTH <password> called without any password configured for the default user. "
          "Are you sure your configuration is correct?")));
}

TEST_F(IntegrationMalformedInput, Row26UnknownCommand) {
  EXPECT_TRUE(
      RepliesAndStaysOpen(PlainPort(), {Request({"FOO", "a", "b"})},
                          Err("ERR unknown command 'FOO', with args beginning with: 'a' 'b' ")));
}

TEST_F(IntegrationMalformedInput, Row27Resp3MapParsedAsInline) {
  EXPECT_TRUE(RepliesAndStaysOpen(PlainPort(), {"%1\r\n"},
                                  Err("ERR unknown command '%1', with args beginning with: ")));
}

TEST_F(IntegrationMalformedInput, Row28GetWithoutArguments) {
  EXPECT_TRUE(RepliesAndStaysOpen(PlainPort(), {Request({"GET"})}, WrongArgs("get")));
}

TEST_F(IntegrationMalformedInput, Row29IncrOfANonInteger) {
  RedisClient leader = PlainLeader();
  ASSERT_EQ(leader.Call({"SET", "row29", "abc"}), Status("OK"));
  EXPECT_TRUE(RepliesAndStaysOpen(PlainPort(), {Request({"INCR", "row29"})},
                                  Err("ERR value is not an integer or out of range")));
  EXPECT_EQ(leader.Call({"GET", "row29"}), Bulk("abc"));
}

TEST_F(IntegrationMalformedInput, Row30IncrByOverflow) {
  RedisClient leader = PlainLeader();
  ASSERT_EQ(leader.Call({"SET", "row30", "9223372036854775807"}), Status("OK"));
  EXPECT_TRUE(RepliesAndStaysOpen(PlainPort(), {Request({"INCRBY", "row30", "1"})},
                                  Err("ERR increment or decrement would overflow")));
  EXPECT_EQ(leader.Call({"GET", "row30"}), Bulk("9223372036854775807"));
}

TEST_F(IntegrationMalformedInput, Row35ValueAboveMaxEntryBytes) {
  RedisClient leader = PlainLeader();
  EXPECT_TRUE(
      RepliesAndStaysOpen(PlainPort(), {Request({"SET", "row35", std::string(2 << 20, 'v')})},
                          Err("ERR value too large for replicated log (max 1572864 bytes)")));
  EXPECT_EQ(leader.Call({"EXISTS", "row35"}), Int(0));
}

TEST_F(IntegrationMalformedInput, Row33MaxClients) {
  const uint16_t port = MaxClientsPort();
  std::vector<std::unique_ptr<RawConnection>> held;
  for (int i = 0; i < 4; i++) {
    held.push_back(std::make_unique<RawConnection>(port, Millis(5000)));
    ASSERT_TRUE(held.back()->ok()) << held.back()->error();
    ASSERT_TRUE(held.back()->Send(Request({"PING"})));
    ASSERT_TRUE(held.back()->ReadAtLeast(Status("PONG").size(), kReplyTimeout)) << "client " << i;
    ASSERT_EQ(held.back()->received(), Status("PONG"));
  }
  EXPECT_TRUE(RepliesAndCloses(port, Request({"PING"}), Err("ERR max number of clients reached")));
  // The held connections are unaffected.
  for (auto& c : held) {
    ASSERT_TRUE(c->Send(Request({"PING"})));
    EXPECT_TRUE(c->ReadAtLeast(2 * Status("PONG").size(), kReplyTimeout));
    EXPECT_FALSE(c->closed());
  }
  // A freed slot is given to the next client (once the server has seen the close).
  held.pop_back();
  const Clock::time_point deadline = Clock::now() + kReplyTimeout;
  std::string last;
  while (true) {
    RawConnection c(port, Millis(5000));
    ASSERT_TRUE(c.ok()) << c.error();
    c.Send(Request({"PING"}));
    c.ReadAtLeast(Status("PONG").size(), kReplyTimeout);
    last = c.received();
    if (last == Status("PONG") || Clock::now() >= deadline) break;
    std::this_thread::sleep_for(Millis(20));
  }
  EXPECT_EQ(last, Status("PONG"));
}

}  // namespace
}  // namespace raftkv_it
