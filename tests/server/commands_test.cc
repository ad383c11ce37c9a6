// The command table and command planning: hash slots, glob patterns, SCAN cursors, Redis's
// errors for unknown commands and argument counts, and the plans of data commands.
#include "server/commands.h"

#include <gtest/gtest.h>

namespace server {
namespace {

TEST(KeyHashSlot, MatchesRedisCluster) {
  // Values from Redis Cluster's specification and redis-cli CLUSTER KEYSLOT.
  EXPECT_EQ(KeyHashSlot("123456789"), 0x31C3 & 16383);
  EXPECT_EQ(KeyHashSlot("foo"), 12182);
  EXPECT_EQ(KeyHashSlot("bar"), 5061);
  EXPECT_EQ(KeyHashSlot(""), 0);
  // Hash tags: only the part between the first { and the next } counts, when not empty.
  EXPECT_EQ(KeyHashSlot("{user1000}.following"), KeyHashSlot("user1000"));
  EXPECT_EQ(KeyHashSlot("{user1000}.followers"), KeyHashSlot("{user1000}.following"));
  EXPECT_EQ(KeyHashSlot("foo{}{bar}"), KeyHashSlot("foo{}{bar}"));
  EXPECT_NE(KeyHashSlot("foo{}{bar}"), KeyHashSlot("bar"));
  EXPECT_EQ(KeyHashSlot("foo{{bar}}zap"), KeyHashSlot("{bar"));
  EXPECT_EQ(KeyHashSlot("foo{bar}{zap}"), KeyHashSlot("bar"));
}

TEST(GlobMatch, RedisPatterns) {
  struct Case {
    const char* pattern;
    const char* text;
    bool match;
  } cases[] = {
      {"*", "", true},
      {"*", "anything", true},
      {"h?llo", "hello", true},
      {"h?llo", "hllo", false},
      {"h*llo", "hllo", true},
      {"h*llo", "heeeello", true},
      {"h[ae]llo", "hallo", true},
      {"h[ae]llo", "hillo", false},
      {"h[^e]llo", "hallo", true},
      {"h[^e]llo", "hello", false},
      {"h[a-b]llo", "hbllo", true},
      {"h[a-b]llo", "hcllo", false},
      {"h[b-a]llo", "hallo", true},
      {"a\\*b", "a*b", true},
      {"a\\*b", "axb", false},
      {"*a*b*c*", "xxaxxbxxcxx", true},
      {"*a*b*c*", "xxaxxcxxbxx", false},
      {"user:*", "user:1", true},
      {"user:*", "users:1", false},
      {"", "", true},
      {"", "x", false},
      {"k[\\]]", "k]", true},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(GlobMatch(c.pattern, c.text), c.match) << c.pattern << " vs " << c.text;
  }
}

TEST(ScanCursors, ResumeKeysAndForgetTheOldest) {
  ScanCursors cursors(2, 7);
  uint64_t a = cursors.Save("a");
  uint64_t b = cursors.Save("b");
  EXPECT_NE(a, 0u);
  EXPECT_NE(a, b);
  std::string key;
  ASSERT_TRUE(cursors.Find(a, &key));
  EXPECT_EQ(key, "a");
  uint64_t c = cursors.Save("c");  // forgets a
  EXPECT_FALSE(cursors.Find(a, &key));
  ASSERT_TRUE(cursors.Find(b, &key));
  EXPECT_EQ(key, "b");
  ASSERT_TRUE(cursors.Find(c, &key));
  EXPECT_EQ(key, "c");
  EXPECT_FALSE(cursors.Find(12345678, &key));
}

std::string ErrorOf(const std::vector<std::string>& args) {
  Plan p = PlanCommand(args);
  return p.kind == Plan::Kind::kError ? p.error : "";
}

TEST(PlanCommand, ArgumentErrorsAreRedisTexts) {
  EXPECT_EQ(ErrorOf({"GET"}), "-ERR wrong number of arguments for 'get' command\r\n");
  EXPECT_EQ(ErrorOf({"SET", "k"}), "-ERR wrong number of arguments for 'set' command\r\n");
  EXPECT_EQ(ErrorOf({"SET", "k", "v", "NX", "XX"}), "-ERR syntax error\r\n");
  EXPECT_EQ(ErrorOf({"SET", "k", "v", "EX", "10"}),
            "-ERR expiry is not supported: keys in raftkv do not expire\r\n");
  EXPECT_EQ(ErrorOf({"INCRBY", "k", "1.5"}), "-ERR value is not an integer or out of range\r\n");
  EXPECT_EQ(ErrorOf({"DECRBY", "k", "-9223372036854775808"}), "-ERR decrement would overflow\r\n");
  EXPECT_EQ(ErrorOf({"MSET", "a", "1", "b"}),
            "-ERR wrong number of arguments for 'mset' command\r\n");
  EXPECT_EQ(ErrorOf({"SCAN", "x"}), "-ERR invalid cursor\r\n");
  EXPECT_EQ(ErrorOf({"SCAN", "0", "COUNT", "0"}), "-ERR syntax error\r\n");
  EXPECT_EQ(ErrorOf({"SCAN", "0", "COUNT"}), "-ERR syntax error\r\n");
  EXPECT_EQ(ErrorOf({"FLUSHALL", "NOW"}), "-ERR syntax error\r\n");
  EXPECT_EQ(ErrorOf({"RAFT.TRANSFER-LEADER", "x"}), "-ERR invalid node id 'x'\r\n");
  EXPECT_EQ(ErrorOf({"EXPIRE", "k", "10"}),
            "-ERR expiry is not supported: keys in raftkv do not expire\r\n");
  // The argument count before anything else, as Redis checks it.
  EXPECT_EQ(ErrorOf({"EXPIRE", "k"}), "-ERR wrong number of arguments for 'expire' command\r\n");
  EXPECT_EQ(ErrorOf({"FLUSHALL", "ASYNC", "SYNC"}), "-ERR syntax error\r\n");
  EXPECT_EQ(ErrorOf({"SCAN", "0", "MATCH"}), "-ERR syntax error\r\n");
  EXPECT_EQ(ErrorOf({"SCAN"}), "-ERR wrong number of arguments for 'scan' command\r\n");
}

// Checked against redis-server 7.0.15.
TEST(CheckCommand, ArityAndExistenceAsRedis) {
  EXPECT_EQ(CheckCommand({"GET", "k"}), "");
  EXPECT_EQ(CheckCommand({"get"}), "ERR wrong number of arguments for 'get' command");
  EXPECT_EQ(CheckCommand({"SET", "k", "v", "NX", "GET"}), "");
  EXPECT_EQ(CheckCommand({"UNWATCH", "x"}), "ERR wrong number of arguments for 'unwatch' command");
  EXPECT_EQ(CheckCommand({"EXEC", "x"}), "ERR wrong number of arguments for 'exec' command");
  EXPECT_EQ(CheckCommand({"PING", "a", "b"}), "");  // PING's own check: arity -1 in Redis
  EXPECT_EQ(CheckCommand({"QUIT", "a", "b"}), "");
  EXPECT_EQ(CheckCommand({"COMMAND", "DOCS"}), "");
  EXPECT_EQ(CheckCommand({"Raft.Transfer-Leader"}),
            "ERR wrong number of arguments for 'raft.transfer-leader' command");
  // Container commands: the subcommand's arity, under its full name.
  EXPECT_EQ(CheckCommand({"CLIENT"}), "ERR wrong number of arguments for 'client' command");
  EXPECT_EQ(CheckCommand({"client", "SetName"}),
            "ERR wrong number of arguments for 'client|setname' command");
  EXPECT_EQ(CheckCommand({"CLIENT", "SETNAME", "a"}), "");
  EXPECT_EQ(CheckCommand({"CONFIG", "GET"}),
            "ERR wrong number of arguments for 'config|get' command");
  EXPECT_EQ(CheckCommand({"CONFIG", "GET", "a", "b", "c"}), "");
  EXPECT_EQ(CheckCommand({"CLUSTER", "KEYSLOT"}),
            "ERR wrong number of arguments for 'cluster|keyslot' command");
  EXPECT_EQ(CheckCommand({"CLUSTER", "HELP", "x"}),
            "ERR wrong number of arguments for 'cluster|help' command");
  EXPECT_EQ(CheckCommand({"CLUSTER", "foo"}), "ERR unknown subcommand 'foo'. Try CLUSTER HELP.");
  EXPECT_EQ(CheckCommand({"config", "SET", "a", "b"}),
            "ERR unknown subcommand 'SET'. Try CONFIG HELP.");
  EXPECT_EQ(CheckCommand({"client", std::string(200, 'y')}),
            "ERR unknown subcommand '" + std::string(128, 'y') + "'. Try CLIENT HELP.");
  EXPECT_EQ(CheckCommand({"FOO", "a", "b"}),
            "ERR unknown command 'FOO', with args beginning with: 'a' 'b' ");
}

TEST(UnknownCommandError, TruncatesAsRedis) {
  EXPECT_EQ(UnknownCommandError({"foo"}), "ERR unknown command 'foo', with args beginning with: ");
  // Arguments while the list is shorter than 128 characters, the last one cut to what was left
  // of the 128 (checked against redis-server 7.0.15).
  std::vector<std::string> args = {"x", std::string(100, 'a'), std::string(100, 'b'), "c"};
  EXPECT_EQ(UnknownCommandError(args), "ERR unknown command 'x', with args beginning with: '" +
                                           std::string(100, 'a') + "' '" + std::string(25, 'b') +
                                           "' ");
  // The name is cut at 128; "%s" ends at a NUL byte.
  EXPECT_EQ(UnknownCommandError({std::string(200, 'n')}),
            "ERR unknown command '" + std::string(128, 'n') + "', with args beginning with: ");
  EXPECT_EQ(UnknownCommandError({std::string("ab\0cd", 5), std::string("x\0y", 3)}),
            "ERR unknown command 'ab', with args beginning with: 'x' ");
}

TEST(HelpReply, ListsTheSubcommandsAsRedisLaysThemOut) {
  EXPECT_EQ(HelpReply("config"),
            "*5\r\n"
            "+CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n"
            "+GET <pattern> [<pattern> ...]\r\n"
            "+    Return parameters matching the glob-like <pattern>s and their values.\r\n"
            "+HELP\r\n"
            "+    Prints this help.\r\n");
  EXPECT_EQ(HelpReply("Cluster").rfind("*17\r\n+CLUSTER <subcommand>", 0), 0u);
  EXPECT_EQ(HelpReply("CLIENT").rfind("*15\r\n+CLIENT <subcommand>", 0), 0u);
  EXPECT_EQ(HelpReply("GET"), "");
}

TEST(PlanCommand, RaftRequestPlansTheCommandItWrapsWithItsSession) {
  Plan w = PlanCommand({"RAFT.REQUEST", "7", "3", "2", "append", "bar", "x"});
  ASSERT_EQ(w.kind, Plan::Kind::kWrite);
  EXPECT_EQ(w.ops[0].code, protocol::OpCode::kAppend);
  EXPECT_EQ(w.slot, 5061);
  EXPECT_EQ(w.session.id, 7u);
  EXPECT_EQ(w.session.seq, 3u);
  EXPECT_EQ(w.session.acked, 2u);
  EXPECT_FALSE(w.session.create);
  Plan r = PlanCommand({"raft.request", "7", "4", "4", "GET", "bar"});
  EXPECT_EQ(r.kind, Plan::Kind::kRead);
  EXPECT_EQ(r.session.id, 0u);
  auto error = [](std::vector<std::string> args) { return PlanCommand(args).error; };
  EXPECT_EQ(error({"raft.request", "0", "1", "1", "SET", "k", "v"}),
            "-ERR invalid session id '0'\r\n");
  EXPECT_EQ(error({"raft.request", "7", "-1", "1", "SET", "k", "v"}),
            "-ERR invalid request number '-1'\r\n");
  EXPECT_EQ(error({"raft.request", "7", "1", "x", "SET", "k", "v"}),
            "-ERR invalid acknowledgement 'x'\r\n");
  EXPECT_EQ(error({"raft.request", "7", "1", "1", "SET", "k"}),
            "-ERR wrong number of arguments for 'set' command\r\n");
  EXPECT_EQ(error({"raft.request", "7", "1", "1", "PING"}),
            "-ERR RAFT.REQUEST cannot run 'PING'\r\n");
  EXPECT_EQ(error({"raft.request", "7", "1", "1", "raft.request", "7", "1", "1", "GET"}),
            "-ERR RAFT.REQUEST cannot run 'raft.request'\r\n");
  EXPECT_EQ(error({"raft.request", "7", "1", "1"}),
            "-ERR wrong number of arguments for 'raft.request' command\r\n");
  Plan open = PlanCommand({"RAFT.SESSION", "open", "30"});
  ASSERT_EQ(open.kind, Plan::Kind::kWrite);
  EXPECT_EQ(open.ops[0].code, protocol::OpCode::kSessionOpen);
  EXPECT_EQ(open.ops[0].incr, 30'000);
  EXPECT_EQ(PlanCommand({"RAFT.SESSION", "OPEN"}).ops[0].incr, 3'600'000);
  EXPECT_EQ(error({"RAFT.SESSION", "OPEN", "604801"}),
            "-ERR invalid session timeout '604801': seconds from 1 to 604800\r\n");
  EXPECT_EQ(PlanCommand({"RAFT.SESSION", "close", "9"}).ops[0].incr, 9);
  EXPECT_EQ(error({"RAFT.SESSION", "close", "-9"}), "-ERR invalid session id '-9'\r\n");
  EXPECT_TRUE(IsSessionCommand(open));
  EXPECT_TRUE(IsSessionCommand(PlanCommand({"RAFT.SESSION", "close", "9"})));
  EXPECT_FALSE(IsSessionCommand(w));
  EXPECT_FALSE(IsSessionCommand(r));
  EXPECT_FALSE(AllowedInMulti("raft.request"));
  EXPECT_FALSE(AllowedInMulti("raft.session"));
  EXPECT_TRUE(AllowedInMulti("set"));
}

TEST(PlanCommand, ReadsAndWritesCarryTheirOpsAndFirstKeySlot) {
  Plan get = PlanCommand({"get", "foo"});
  EXPECT_EQ(get.kind, Plan::Kind::kRead);
  ASSERT_EQ(get.ops.size(), 1u);
  EXPECT_EQ(get.ops[0].code, protocol::OpCode::kGet);
  EXPECT_EQ(get.slot, 12182);
  Plan mget = PlanCommand({"MGET", "a", "b", "c"});
  EXPECT_EQ(mget.ops.size(), 3u);
  Plan set = PlanCommand({"SET", "bar", "v", "nx", "get"});
  EXPECT_EQ(set.kind, Plan::Kind::kWrite);
  ASSERT_EQ(set.ops.size(), 1u);
  EXPECT_TRUE(set.ops[0].nx);
  EXPECT_TRUE(set.ops[0].get);
  EXPECT_EQ(set.slot, 5061);
  EXPECT_EQ(PlanCommand({"keys", "*"}).kind, Plan::Kind::kKeyspace);
  EXPECT_EQ(PlanCommand({"dbsize"}).kind, Plan::Kind::kKeyspace);
  Plan transfer = PlanCommand({"raft.transfer-leader", "3"});
  EXPECT_EQ(transfer.kind, Plan::Kind::kTransfer);
  EXPECT_EQ(transfer.transfer_target, 3u);
}

TEST(PlanCommand, FormatsRepliesFromResults) {
  std::vector<kv::OpResult> results(3);
  results[0].kind = kv::OpResult::Kind::kBulk;
  results[0].bulk = "abc";
  results[1].kind = kv::OpResult::Kind::kNil;
  results[2].kind = kv::OpResult::Kind::kBulk;
  results[2].bulk = "";
  std::string out;
  PlanCommand({"MGET", "a", "b", "c"}).format(results, &out);
  EXPECT_EQ(out, "*3\r\n$3\r\nabc\r\n$-1\r\n$0\r\n\r\n");
  out.clear();
  PlanCommand({"EXISTS", "a", "b", "c"}).format(results, &out);
  EXPECT_EQ(out, ":2\r\n");
  out.clear();
  PlanCommand({"STRLEN", "a"}).format(std::span(results).first(1), &out);
  EXPECT_EQ(out, ":3\r\n");
  out.clear();
  PlanCommand({"TYPE", "b"}).format(std::span(results).subspan(1, 1), &out);
  EXPECT_EQ(out, "+none\r\n");
  out.clear();
  PlanCommand({"TTL", "b"}).format(std::span(results).subspan(1, 1), &out);
  EXPECT_EQ(out, ":-2\r\n");
  out.clear();
  PlanCommand({"TTL", "a"}).format(std::span(results).first(1), &out);
  EXPECT_EQ(out, ":-1\r\n");
  std::vector<kv::OpResult> ok(1);
  out.clear();
  PlanCommand({"SETNX", "a", "1"}).format(ok, &out);
  EXPECT_EQ(out, ":1\r\n");
}

}  // namespace
}  // namespace server
