// Command planning: hash slots, glob patterns, SCAN cursors and the plans of data commands.
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
