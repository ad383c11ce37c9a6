// The client's retry rules and outcomes against scripted fake nodes (tests/client/fake_node.h):
// how writes are wrapped, which replies are retried and where, and when the outcome is ok,
// failed or unknown. No raftkv-server involved.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "client/client.h"
#include "tests/client/fake_node.h"

namespace raftkv::client {
namespace {

using raftkv_client_test::Action;
using raftkv_client_test::CloseConnection;
using raftkv_client_test::Command;
using raftkv_client_test::FakeNode;
using raftkv_client_test::Send;
using raftkv_client_test::Silence;
using raftkv_client_test::UnusedPort;
using Clock = std::chrono::steady_clock;

constexpr char kTimeout[] = "-TIMEOUT request may or may not have been applied\r\n";
constexpr char kClusterDown[] = "-CLUSTERDOWN no leader\r\n";

bool IsOpen(const Command& c) { return c.size() >= 2 && c[0] == "RAFT.SESSION" && c[1] == "OPEN"; }
bool IsRequest(const Command& c) { return !c.empty() && c[0] == "RAFT.REQUEST"; }

// The commands of `node` that satisfy `pred`.
template <typename Pred>
std::vector<Command> Filter(const FakeNode& node, Pred pred) {
  std::vector<Command> out;
  for (const Command& c : node.commands()) {
    if (pred(c)) out.push_back(c);
  }
  return out;
}

// A node that opens session 7 and answers each RAFT.REQUEST with `request(n)` (n = 0, 1, ...:
// how many requests this node has seen before).
std::unique_ptr<FakeNode> SessionNode(std::function<Action(int)> request) {
  auto seen = std::make_shared<std::atomic<int>>(0);
  return std::make_unique<FakeNode>([request, seen](const Command& c) -> Action {
    if (IsOpen(c)) return Send(":7\r\n");
    if (c.size() == 3 && c[0] == "RAFT.SESSION" && c[1] == "CLOSE") return Send("+OK\r\n");
    if (IsRequest(c)) return request((*seen)++);
    return Send("-ERR unexpected command '" + c[0] + "'\r\n");
  });
}

Options FastOptions(std::vector<const FakeNode*> nodes) {
  Options o;
  for (const FakeNode* n : nodes) o.nodes.push_back(Endpoint{"127.0.0.1", n->port()});
  o.op_timeout = std::chrono::milliseconds(600);
  o.attempt_timeout = std::chrono::milliseconds(100);
  o.retry_backoff = std::chrono::milliseconds(2);
  o.prefer_leader = false;
  return o;
}

TEST(ClientRetry, WritesAreWrappedInRaftRequestWithTheNextSeq) {
  auto node = SessionNode([](int) { return Send("+OK\r\n"); });
  Client client(FastOptions({node.get()}));
  ASSERT_TRUE(client.Open().ok());
  EXPECT_EQ(client.session(), 7u);
  Result r = client.Set("k", "v");
  EXPECT_EQ(r.outcome, Outcome::kOk) << r.error;
  EXPECT_EQ(r.reply.type, Reply::Type::kStatus);
  EXPECT_EQ(r.reply.str, "OK");
  EXPECT_EQ(r.attempts, 1);
  EXPECT_EQ(client.Append("k", std::string("a\0b", 3)).outcome, Outcome::kOk);
  EXPECT_EQ(client.Write({"MSET", "a", "1", "b", "2"}).outcome, Outcome::kOk);
  const std::vector<Command> requests = Filter(*node, IsRequest);
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0], (Command{"RAFT.REQUEST", "7", "1", "1", "SET", "k", "v"}));
  EXPECT_EQ(requests[1],
            (Command{"RAFT.REQUEST", "7", "2", "2", "APPEND", "k", std::string("a\0b", 3)}));
  EXPECT_EQ(requests[2], (Command{"RAFT.REQUEST", "7", "3", "3", "MSET", "a", "1", "b", "2"}));
}

TEST(ClientRetry, AWriteBeforeOpenOpensTheSessionFirst) {
  auto node = SessionNode([](int) { return Send(":1\r\n"); });
  Client client(FastOptions({node.get()}));
  EXPECT_EQ(client.session(), 0u);
  Result r = client.Incr("n");
  EXPECT_EQ(r.outcome, Outcome::kOk) << r.error;
  EXPECT_EQ(r.reply.integer, 1);
  EXPECT_EQ(client.session(), 7u);
  EXPECT_EQ(Filter(*node, IsOpen).size(), 1u);
}

TEST(ClientRetry, ReadsAreSentPlain) {
  FakeNode node([](const Command& c) -> Action {
    if (c == Command{"GET", "k"}) return Send("$3\r\nval\r\n");
    if (c == Command{"GET", "none"}) return Send("$-1\r\n");
    return Send("*2\r\n:1\r\n$1\r\nx\r\n");
  });
  Client client(FastOptions({&node}));
  Result r = client.Get("k");
  EXPECT_EQ(r.outcome, Outcome::kOk);
  EXPECT_EQ(r.reply.type, Reply::Type::kBulk);
  EXPECT_EQ(r.reply.str, "val");
  r = client.Get("none");
  EXPECT_EQ(r.outcome, Outcome::kOk);
  EXPECT_EQ(r.reply.type, Reply::Type::kNil);
  r = client.Read({"MGET", "a", "b"});
  EXPECT_EQ(r.outcome, Outcome::kOk);
  ASSERT_EQ(r.reply.type, Reply::Type::kArray);
  ASSERT_EQ(r.reply.elements.size(), 2u);
  EXPECT_EQ(r.reply.elements[0].integer, 1);
  EXPECT_EQ(r.reply.elements[1].str, "x");
  EXPECT_EQ(client.session(), 0u) << "reads need no session";
  for (const Command& c : node.commands()) EXPECT_FALSE(IsOpen(c) || IsRequest(c));
}

TEST(ClientRetry, TimeoutIsRetriedWithTheSameSeqOnAnotherNode) {
  auto a = SessionNode([](int) { return Send(kTimeout); });
  auto b = SessionNode([](int) { return Send(":5\r\n"); });
  Client client(FastOptions({a.get(), b.get()}));
  ASSERT_TRUE(client.Open().ok());
  Result r = client.Append("k", "x");
  EXPECT_EQ(r.outcome, Outcome::kOk) << r.error;
  EXPECT_EQ(r.reply.integer, 5);
  EXPECT_EQ(r.attempts, 2);
  const std::vector<Command> on_a = Filter(*a, IsRequest);
  const std::vector<Command> on_b = Filter(*b, IsRequest);
  ASSERT_EQ(on_a.size(), 1u);
  ASSERT_EQ(on_b.size(), 1u);
  EXPECT_EQ(on_a[0], on_b[0]) << "the retry resends the same session and seq";
  EXPECT_EQ(on_a[0][2], "1");
  // The next write gets the next seq.
  EXPECT_EQ(client.Append("k", "y").outcome, Outcome::kOk);
  EXPECT_EQ(Filter(*b, IsRequest).back()[2], "2");
}

TEST(ClientRetry, GivingUpAfterATimeoutIsUnknown) {
  auto node = SessionNode([](int) { return Send(kTimeout); });
  Client client(FastOptions({node.get()}));
  ASSERT_TRUE(client.Open().ok());
  const Clock::time_point start = Clock::now();
  Result r = client.Set("k", "v");
  const auto took = Clock::now() - start;
  EXPECT_EQ(r.outcome, Outcome::kUnknown);
  EXPECT_GT(r.attempts, 1);
  EXPECT_NE(r.error.find("TIMEOUT"), std::string::npos) << r.error;
  EXPECT_LT(took, std::chrono::milliseconds(600 + 500)) << "bounded by op_timeout";
  // Every attempt carried seq 1.
  for (const Command& c : Filter(*node, IsRequest)) EXPECT_EQ(c[2], "1");
}

TEST(ClientRetry, OnlyDefiniteRefusalsGiveFailed) {
  auto node = SessionNode([](int n) {
    return Send(n % 2 == 0 ? kClusterDown : "-TRYAGAIN too many requests in flight\r\n");
  });
  Client client(FastOptions({node.get()}));
  ASSERT_TRUE(client.Open().ok());
  Result r = client.Set("k", "v");
  EXPECT_EQ(r.outcome, Outcome::kFailed) << r.error;
  EXPECT_GT(r.attempts, 2);
  EXPECT_EQ(r.reply.type, Reply::Type::kError);
  EXPECT_TRUE(r.reply.str.rfind("CLUSTERDOWN", 0) == 0 || r.reply.str.rfind("TRYAGAIN", 0) == 0)
      << r.reply.str;
}

TEST(ClientRetry, OneAmbiguousAttemptMakesGivingUpUnknown) {
  auto node = SessionNode([](int n) { return Send(n == 0 ? kTimeout : kClusterDown); });
  Client client(FastOptions({node.get()}));
  ASSERT_TRUE(client.Open().ok());
  Result r = client.Del("k");
  EXPECT_EQ(r.outcome, Outcome::kUnknown) << r.error;
  EXPECT_GT(r.attempts, 2);
}

TEST(ClientRetry, TheCommandsOwnErrorIsFailedAtOnce) {
  auto node =
      SessionNode([](int) { return Send("-ERR value is not an integer or out of range\r\n"); });
  Client client(FastOptions({node.get()}));
  ASSERT_TRUE(client.Open().ok());
  Result r = client.Incr("k");
  EXPECT_EQ(r.outcome, Outcome::kFailed);
  EXPECT_EQ(r.attempts, 1);
  EXPECT_EQ(r.reply.type, Reply::Type::kError);
  EXPECT_EQ(r.reply.str, "ERR value is not an integer or out of range");
}

TEST(ClientRetry, TheFirstExecutionsErrorAfterAnAmbiguousAttemptIsStillFailed) {
  // With the session, a retry's reply is the first execution's: a WRONGTYPE after a lost reply
  // says the command was refused.
  auto node = SessionNode([](int n) {
    return n == 0 ? CloseConnection()
                  : Send("-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
  });
  Client client(FastOptions({node.get()}));
  ASSERT_TRUE(client.Open().ok());
  Result r = client.Append("k", "v");
  EXPECT_EQ(r.outcome, Outcome::kFailed) << r.error;
  EXPECT_EQ(r.attempts, 2);
  EXPECT_EQ(r.reply.str.rfind("WRONGTYPE", 0), 0u);
}

TEST(ClientRetry, MisconfGivesUpAtOnce) {
  auto node = SessionNode([](int) { return Send("-MISCONF not enough free disk space\r\n"); });
  Client client(FastOptions({node.get()}));
  ASSERT_TRUE(client.Open().ok());
  Result r = client.Set("k", "v");
  EXPECT_EQ(r.outcome, Outcome::kFailed);
  EXPECT_EQ(r.attempts, 1);
  EXPECT_EQ(r.reply.str.rfind("MISCONF", 0), 0u);
}

TEST(ClientRetry, AClosedConnectionIsRetriedAndAmbiguous) {
  auto flaky = SessionNode([](int n) { return n < 2 ? CloseConnection() : Send("+OK\r\n"); });
  Client client(FastOptions({flaky.get()}));
  ASSERT_TRUE(client.Open().ok());
  Result r = client.Set("k", "v");
  EXPECT_EQ(r.outcome, Outcome::kOk) << r.error;
  EXPECT_EQ(r.attempts, 3);
  EXPECT_GE(flaky->connections(), 3) << "a new connection after each broken one";

  auto dead = SessionNode([](int) { return CloseConnection(); });
  Client client2(FastOptions({dead.get()}));
  ASSERT_TRUE(client2.Open().ok());
  r = client2.Set("k", "v");
  EXPECT_EQ(r.outcome, Outcome::kUnknown);
  EXPECT_NE(r.error.find("connection"), std::string::npos) << r.error;
}

TEST(ClientRetry, ASilentNodeCostsOneAttemptTimeout) {
  auto silent = SessionNode([](int) { return Silence(); });
  auto good = SessionNode([](int) { return Send("+OK\r\n"); });
  Client client(FastOptions({silent.get(), good.get()}));
  ASSERT_TRUE(client.Open().ok());
  const Clock::time_point start = Clock::now();
  Result r = client.Set("k", "v");
  EXPECT_EQ(r.outcome, Outcome::kOk) << r.error;
  EXPECT_EQ(r.attempts, 2);
  EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(90));

  // Reads that time out everywhere are unknown, too.
  FakeNode mute([](const Command&) { return Silence(); });
  Client reader(FastOptions({&mute}));
  r = reader.Get("k");
  EXPECT_EQ(r.outcome, Outcome::kUnknown);
  EXPECT_NE(r.error.find("no reply within"), std::string::npos) << r.error;
}

TEST(ClientRetry, NodesThatRefuseConnectionsGiveFailedWithinOpTimeout) {
  Options o;
  o.nodes = {Endpoint{"127.0.0.1", UnusedPort()}, Endpoint{"127.0.0.1", UnusedPort()}};
  o.op_timeout = std::chrono::milliseconds(400);
  o.retry_backoff = std::chrono::milliseconds(5);
  for (bool prefer_leader : {false, true}) {
    o.prefer_leader = prefer_leader;
    Client client(o);
    const Clock::time_point start = Clock::now();
    Result r = client.Get("k");
    EXPECT_EQ(r.outcome, Outcome::kFailed);
    EXPECT_GT(r.attempts, 1);
    EXPECT_NE(r.error.find("connect"), std::string::npos) << r.error;
    r = client.Set("k", "v");  // cannot open a session: failed, nothing sent
    EXPECT_EQ(r.outcome, Outcome::kFailed);
    EXPECT_NE(r.error.find("no session"), std::string::npos) << r.error;
    common::Status s = client.Open();
    EXPECT_FALSE(s.ok());
    EXPECT_EQ(s.code(), common::Status::Code::kIOError);
    EXPECT_LT(Clock::now() - start, std::chrono::milliseconds(3 * 400 + 600));
  }
}

TEST(ClientRetry, MovedGoesToTheNamedNode) {
  auto target = SessionNode([](int) { return Send("+OK\r\n"); });
  const uint16_t target_port = target->port();
  auto redirecting = SessionNode([target_port](int) {
    return Send("-MOVED 1234 127.0.0.1:" + std::to_string(target_port) + "\r\n");
  });
  auto other = SessionNode([](int) { return Send(kClusterDown); });
  Client client(FastOptions({redirecting.get(), other.get(), target.get()}));
  ASSERT_TRUE(client.Open().ok());
  Result r = client.Set("k", "v");
  EXPECT_EQ(r.outcome, Outcome::kOk) << r.error;
  EXPECT_EQ(r.attempts, 2);
  EXPECT_TRUE(Filter(*other, IsRequest).empty()) << "skipped straight to the named node";
  EXPECT_EQ(client.current_node(), 2u);
}

TEST(ClientRetry, SessionExpiredFailsTheOpAndReopensForTheNext) {
  std::atomic<int> opens{0};
  std::atomic<int> requests{0};
  FakeNode node([&](const Command& c) -> Action {
    if (IsOpen(c)) return Send(":" + std::to_string(10 + opens++) + "\r\n");
    if (IsRequest(c)) {
      return requests++ == 0 ? Send("-SESSIONEXPIRED session 10 is unknown or expired\r\n")
                             : Send("+OK\r\n");
    }
    return Send("+OK\r\n");
  });
  Client client(FastOptions({&node}));
  ASSERT_TRUE(client.Open().ok());
  EXPECT_EQ(client.session(), 10u);
  Result r = client.Set("k", "v");
  EXPECT_EQ(r.outcome, Outcome::kFailed);
  EXPECT_EQ(r.attempts, 1);
  EXPECT_EQ(client.session(), 0u);
  r = client.Set("k", "w");
  EXPECT_EQ(r.outcome, Outcome::kOk) << r.error;
  EXPECT_EQ(client.session(), 11u);
  const std::vector<Command> reqs = Filter(node, IsRequest);
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[1], (Command{"RAFT.REQUEST", "11", "1", "1", "SET", "k", "w"}));

  // After an ambiguous attempt, an expired session leaves the op unknown.
  std::atomic<int> n{0};
  FakeNode node2([&](const Command& c) -> Action {
    if (IsOpen(c)) return Send(":3\r\n");
    if (IsRequest(c)) {
      return n++ == 0 ? Send(kTimeout)
                      : Send("-SESSIONEXPIRED session 3 is unknown or expired\r\n");
    }
    return Send("+OK\r\n");
  });
  Client client2(FastOptions({&node2}));
  r = client2.Set("k", "v");
  EXPECT_EQ(r.outcome, Outcome::kUnknown) << r.error;
  EXPECT_EQ(r.attempts, 2);
}

TEST(ClientRetry, DroppedRepliesAreRetriedWithTheSameSeq) {
  auto node = SessionNode([](int) { return Send("+OK\r\n"); });
  Options o = FastOptions({node.get()});
  o.drop_reply_percent = 50;
  o.seed = 42;
  o.op_timeout = std::chrono::seconds(5);
  Client client(o);
  ASSERT_TRUE(client.Open().ok());
  int total_attempts = 0;
  for (int i = 0; i < 40; i++) {
    Result r = client.Set("k", std::to_string(i));
    ASSERT_EQ(r.outcome, Outcome::kOk) << r.error;
    total_attempts += r.attempts;
  }
  EXPECT_GT(total_attempts, 50) << "about half the replies were dropped";
  // Requests carry seqs 1..40 in order, each retried until its reply was kept.
  uint64_t last = 0;
  for (const Command& c : Filter(*node, IsRequest)) {
    const uint64_t seq = std::stoull(c[2]);
    EXPECT_TRUE(seq == last || seq == last + 1) << seq << " after " << last;
    EXPECT_EQ(c[6], std::to_string(seq - 1));
    last = seq;
  }
  EXPECT_EQ(last, 40u);

  o.drop_reply_percent = 100;
  o.op_timeout = std::chrono::milliseconds(300);
  Client always(o);
  ASSERT_TRUE(always.Open().ok()) << "Open's replies are never dropped";
  Result r = always.Set("k", "v");
  EXPECT_EQ(r.outcome, Outcome::kUnknown);
  EXPECT_NE(r.error.find("dropped"), std::string::npos) << r.error;
}

TEST(ClientRetry, PreferLeaderAsksClusterSlots) {
  auto leader = SessionNode([](int) { return Send("+OK\r\n"); });
  const uint16_t leader_port = leader->port();
  const std::string slots =
      "*1\r\n*4\r\n:0\r\n:16383\r\n*3\r\n$9\r\n127.0.0.1\r\n:" + std::to_string(leader_port) +
      "\r\n$2\r\nn2\r\n*3\r\n$9\r\n127.0.0.1\r\n:1\r\n$2\r\nn1\r\n";
  auto follower = std::make_unique<FakeNode>([slots](const Command& c) -> Action {
    if (c.size() == 2 && c[0] == "CLUSTER" && c[1] == "SLOTS") return Send(slots);
    return Send("-ERR the follower should not be used\r\n");
  });
  for (uint64_t seed = 1; seed <= 4; seed++) {
    Options o = FastOptions({follower.get(), leader.get()});
    o.prefer_leader = true;
    o.seed = seed;
    Client client(o);
    ASSERT_TRUE(client.Open().ok());
    Result r = client.Set("k", "v");
    EXPECT_EQ(r.outcome, Outcome::kOk) << r.error;
    EXPECT_EQ(client.current_node(), 1u);
  }
  EXPECT_TRUE(Filter(*follower, IsRequest).empty());
  EXPECT_TRUE(Filter(*follower, IsOpen).empty());
}

TEST(ClientRetry, PreferLeaderUsesANodeOfItsOwnWhenTheLeaderIsNotOne) {
  // The leader named by CLUSTER SLOTS is not among `nodes`: use the node that answered.
  std::atomic<int> slots_asked{0};
  FakeNode node([&slots_asked](const Command& c) -> Action {
    if (c.size() == 2 && c[0] == "CLUSTER") {
      slots_asked++;
      return Send("*1\r\n*3\r\n:0\r\n:16383\r\n*3\r\n$9\r\n127.0.0.1\r\n:1\r\n$2\r\nn9\r\n");
    }
    if (IsOpen(c)) return Send(":4\r\n");
    return Send("+OK\r\n");
  });
  Options o = FastOptions({&node});
  o.prefer_leader = true;
  Client client(o);
  ASSERT_TRUE(client.Open().ok());
  EXPECT_EQ(client.Set("k", "v").outcome, Outcome::kOk);
  EXPECT_EQ(client.Set("k", "w").outcome, Outcome::kOk);
  EXPECT_EQ(slots_asked.load(), 1) << "the choice is kept until something fails";
}

TEST(ClientRetry, AuthIsSentOnEveryNewConnection) {
  std::atomic<int> auths{0};
  std::atomic<int> requests{0};
  FakeNode node([&](const Command& c) -> Action {
    if (c == Command{"AUTH", "secret"}) {
      auths++;
      return Send("+OK\r\n");
    }
    if (c[0] == "AUTH") return Send("-WRONGPASS invalid username-password pair\r\n");
    if (IsOpen(c)) return Send(":1\r\n");
    if (IsRequest(c)) return requests++ == 0 ? CloseConnection() : Send("+OK\r\n");
    return Send("+OK\r\n");
  });
  Options o = FastOptions({&node});
  o.password = "secret";
  Client client(o);
  ASSERT_TRUE(client.Open().ok());
  EXPECT_EQ(client.Set("k", "v").outcome, Outcome::kOk);
  EXPECT_EQ(auths.load(), 2) << "one AUTH per connection";
  const std::vector<Command> all = node.commands();
  ASSERT_FALSE(all.empty());
  EXPECT_EQ(all[0], (Command{"AUTH", "secret"}));

  o.password = "wrong";
  Client bad(o);
  common::Status s = bad.Open();
  EXPECT_FALSE(s.ok());
  Result r = bad.Get("k");
  EXPECT_EQ(r.outcome, Outcome::kFailed);
  EXPECT_EQ(r.attempts, 1);
  EXPECT_NE(r.error.find("WRONGPASS"), std::string::npos) << r.error;
}

TEST(ClientRetry, CloseClosesTheSession) {
  auto node = SessionNode([](int) { return Send("+OK\r\n"); });
  {
    Client client(FastOptions({node.get()}));
    ASSERT_TRUE(client.Open().ok());
    client.Close();
    EXPECT_EQ(client.session(), 0u);
    // Usable again: the next write opens a new session.
    EXPECT_EQ(client.Set("k", "v").outcome, Outcome::kOk);
  }  // the destructor closes the second session
  const std::vector<Command> closes = Filter(*node, [](const Command& c) {
    return c.size() == 3 && c[0] == "RAFT.SESSION" && c[1] == "CLOSE";
  });
  ASSERT_EQ(closes.size(), 2u);
  EXPECT_EQ(closes[0][2], "7");
}

}  // namespace
}  // namespace raftkv::client
