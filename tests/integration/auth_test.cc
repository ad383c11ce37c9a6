// Authentication as Redis 7.0 does it (reliability plan §4.1): with `requirepass`, every
// command but AUTH, HELLO and QUIT gets -NOAUTH until the client authenticates with AUTH
// <password>, AUTH default <password> or HELLO 2 AUTH default <password>; a wrong password
// gets -WRONGPASS. As in Redis, an unknown command or a wrong number of arguments gets its own
// error first. Without a password, the default user has none: AUTH <password> gets Redis's
// "called without any password" error, AUTH default <anything> succeeds. Expected replies are
// redis-server 7.0.15's.
#include <string>
#include <vector>

#include "tests/integration/cluster.h"

namespace raftkv_it {
namespace {

constexpr char kPassword[] = "it-secret-Pa55";
const std::string kNoAuth = Err("NOAUTH Authentication required.");
const std::string kWrongPass = Err("WRONGPASS invalid username-password pair or user is disabled.");

// One single-node cluster with a password and one without, each started on first use.
class IntegrationAuth : public ::testing::Test {
 protected:
  static void TearDownTestSuite() {
    delete with_password_;
    with_password_ = nullptr;
    delete without_password_;
    without_password_ = nullptr;
  }

  // The leader of the cluster with requirepass; a fresh, unauthenticated connection to it.
  RedisClient ConnectWithPassword() {
    return ConnectTo(&with_password_, {{"requirepass", kPassword}});
  }
  RedisClient ConnectWithoutPassword() { return ConnectTo(&without_password_, {}); }

 private:
  static RedisClient ConnectTo(TestCluster** cluster, Flags flags) {
    if (*cluster == nullptr) {
      *cluster = new TestCluster(1, std::move(flags));
      EXPECT_TRUE((*cluster)->Start());
    }
    int leader = 0;
    EXPECT_TRUE((*cluster)->WaitLeader(Millis(20000), &leader));
    if (leader == 0) return RedisClient();
    RedisClient c = (*cluster)->Connect(leader);
    EXPECT_TRUE(c.connected()) << c.error();
    return c;
  }

  static TestCluster* with_password_;
  static TestCluster* without_password_;
};

TestCluster* IntegrationAuth::with_password_ = nullptr;
TestCluster* IntegrationAuth::without_password_ = nullptr;

TEST_F(IntegrationAuth, NoAuthBeforeAuthenticating) {
  RedisClient c = ConnectWithPassword();
  ASSERT_TRUE(c.connected());
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"GET", "k"},
                                             {"SET", "k", "v"},
                                             {"PING"},
                                             {"ECHO", "x"},
                                             {"INFO"},
                                             {"CLIENT", "ID"},
                                             {"SELECT", "0"},
                                             {"DBSIZE"},
                                             {"UNWATCH"}}) {
    EXPECT_EQ(c.Call(args), kNoAuth) << args[0];
  }
  // Redis checks that the command exists and has its number of arguments first.
  EXPECT_EQ(c.Call({"FOO", "a"}), Err("ERR unknown command 'FOO', with args beginning with: 'a' "));
  EXPECT_EQ(c.Call({"GET"}), WrongArgs("get"));
  EXPECT_EQ(c.Call({"CLIENT", "FOO"}), Err("ERR unknown subcommand 'FOO'. Try CLIENT HELP."));
  EXPECT_EQ(c.Call({"EXEC"}),
            Err("EXECABORT Transaction discarded because of: NOAUTH Authentication required."));
  // HELLO without AUTH does not authenticate either.
  EXPECT_EQ(c.Call({"HELLO", "2"})
                .rfind("-NOAUTH HELLO must be called with the client already "
                       "authenticated",
                       0),
            0u);
  EXPECT_EQ(c.Call({"GET", "k"}), kNoAuth);
}

// Redis 7.0.15's text (7.2 says "HELLO <proto> AUTH <user> <pass>").
TEST_F(IntegrationAuth, HelloWithoutAuthAsRedis70) {
  RedisClient c = ConnectWithPassword();
  ASSERT_TRUE(c.connected());
  EXPECT_EQ(c.Call({"HELLO", "2"}),
            Err("NOAUTH HELLO must be called with the client already authenticated, otherwise "
                "the HELLO AUTH <user> <pass> option can be used to authenticate the client and "
                "select the RESP protocol version at the same time"));
}

TEST_F(IntegrationAuth, QuitBeforeAuthenticating) {
  RedisClient c = ConnectWithPassword();
  ASSERT_TRUE(c.connected());
  EXPECT_EQ(c.Call({"QUIT"}), Status("OK"));
}

TEST_F(IntegrationAuth, WrongPassword) {
  RedisClient c = ConnectWithPassword();
  ASSERT_TRUE(c.connected());
  EXPECT_EQ(c.Call({"AUTH", "wrong"}), kWrongPass);
  EXPECT_EQ(c.Call({"AUTH", ""}), kWrongPass);
  EXPECT_EQ(c.Call({"AUTH", std::string(kPassword) + "x"}), kWrongPass);
  EXPECT_EQ(c.Call({"AUTH", "default", "wrong"}), kWrongPass);
  // Only the default user exists.
  EXPECT_EQ(c.Call({"AUTH", "nobody", kPassword}), kWrongPass);
  EXPECT_EQ(c.Call({"HELLO", "2", "AUTH", "default", "wrong"}), kWrongPass);
  EXPECT_EQ(c.Call({"HELLO", "2", "AUTH", "nobody", kPassword}), kWrongPass);
  EXPECT_EQ(c.Call({"AUTH"}), WrongArgs("auth"));
  // Still not authenticated, still connected.
  EXPECT_EQ(c.Call({"GET", "k"}), kNoAuth);
}

TEST_F(IntegrationAuth, AuthPassword) {
  RedisClient c = ConnectWithPassword();
  ASSERT_TRUE(c.connected());
  EXPECT_EQ(c.Call({"AUTH", kPassword}), Status("OK"));
  EXPECT_EQ(c.Call({"PING"}), Status("PONG"));
  EXPECT_EQ(c.Call({"SET", "auth:a", "1"}), Status("OK"));
  EXPECT_EQ(c.Call({"GET", "auth:a"}), Bulk("1"));
  EXPECT_EQ(c.Call({"INCR", "auth:n"}), Int(1));
  // A later wrong AUTH does not log the connection out (as in Redis).
  EXPECT_EQ(c.Call({"AUTH", "wrong"}), kWrongPass);
  EXPECT_EQ(c.Call({"GET", "auth:a"}), Bulk("1"));
  // Authentication belongs to the connection.
  RedisClient other = ConnectWithPassword();
  EXPECT_EQ(other.Call({"GET", "auth:a"}), kNoAuth);
}

TEST_F(IntegrationAuth, AuthDefaultUser) {
  RedisClient c = ConnectWithPassword();
  ASSERT_TRUE(c.connected());
  EXPECT_EQ(c.Call({"AUTH", "default", kPassword}), Status("OK"));
  EXPECT_EQ(c.Call({"SET", "auth:b", "2"}), Status("OK"));
  EXPECT_EQ(c.Call({"GET", "auth:b"}), Bulk("2"));
}

TEST_F(IntegrationAuth, HelloAuth) {
  RedisClient c = ConnectWithPassword();
  ASSERT_TRUE(c.connected());
  ReplyPtr r = c.Command({"HELLO", "2", "AUTH", "default", kPassword, "SETNAME", "it"});
  ASSERT_NE(r, nullptr);
  ASSERT_EQ(r->type, REDIS_REPLY_ARRAY) << Encode(r.get());
  ASSERT_EQ(r->elements, 14u);
  EXPECT_EQ(Encode(r->element[4]), Bulk("proto"));
  EXPECT_EQ(Encode(r->element[5]), Int(2));
  EXPECT_EQ(c.Call({"CLIENT", "GETNAME"}), Bulk("it"));
  EXPECT_EQ(c.Call({"SET", "auth:c", "3"}), Status("OK"));
  EXPECT_EQ(c.Call({"GET", "auth:c"}), Bulk("3"));
}

TEST_F(IntegrationAuth, Hello3IsRefused) {
  RedisClient c = ConnectWithPassword();
  ASSERT_TRUE(c.connected());
  EXPECT_EQ(c.Call({"HELLO", "3"}).rfind("-NOPROTO ", 0), 0u);
  // Refused before its options are looked at: no authentication happened.
  EXPECT_EQ(c.Call({"HELLO", "3", "AUTH", "default", kPassword}).rfind("-NOPROTO ", 0), 0u);
  EXPECT_EQ(c.Call({"GET", "k"}), kNoAuth);
  EXPECT_EQ(c.Call({"AUTH", kPassword}), Status("OK"));
  EXPECT_EQ(c.Call({"HELLO", "3"}).rfind("-NOPROTO ", 0), 0u);
  EXPECT_EQ(c.Call({"PING"}), Status("PONG"));
}

// More than two arguments: a syntax error (AUTH alone: the wrong-arguments error).
TEST_F(IntegrationAuth, AuthThreeArgumentsAsRedis) {
  RedisClient c = ConnectWithPassword();
  ASSERT_TRUE(c.connected());
  EXPECT_EQ(c.Call({"AUTH", "default", kPassword, "extra"}), Err("ERR syntax error"));
}

// Row 25 of the malformed-input table.
TEST_F(IntegrationAuth, AuthWithoutPasswordConfigured) {
  RedisClient c = ConnectWithoutPassword();
  ASSERT_TRUE(c.connected());
  EXPECT_EQ(c.Call({"AUTH", "x"}),
            Err("ERR AUTH <password> called without any password configured for the default "
                "user. Are you sure your configuration is correct?"));
  EXPECT_EQ(c.Call({"AUTH"}), WrongArgs("auth"));
  EXPECT_EQ(c.Call({"PING"}), Status("PONG"));
  EXPECT_EQ(c.Call({"SET", "auth:d", "4"}), Status("OK"));
}

// Without requirepass Redis's default user has no password (`nopass`): AUTH default <any>
// and HELLO 2 AUTH default <any> succeed, another user gets WRONGPASS, and three arguments
// are a syntax error.
TEST_F(IntegrationAuth, AuthUserWithoutPasswordConfiguredAsRedis) {
  RedisClient c = ConnectWithoutPassword();
  ASSERT_TRUE(c.connected());
  EXPECT_EQ(c.Call({"AUTH", "default", "anything"}), Status("OK"));
  EXPECT_EQ(c.Call({"AUTH", "nobody", "anything"}), kWrongPass);
  EXPECT_EQ(c.Call({"AUTH", "a", "b", "c"}), Err("ERR syntax error"));
  EXPECT_EQ(c.Call({"HELLO", "2", "AUTH", "nobody", "anything"}), kWrongPass);
  ReplyPtr r = c.Command({"HELLO", "2", "AUTH", "default", "anything"});
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->type, REDIS_REPLY_ARRAY) << Encode(r.get());
}

}  // namespace
}  // namespace raftkv_it
