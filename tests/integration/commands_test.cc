// Every command of today's command table (server/server.cc), sent to the leader of a 3-node
// cluster: its normal replies and its error replies, byte for byte. Where Redis 7.0 has a
// reply, the expected bytes are Redis's (checked against redis-server 7.0.15); raftkv's own
// replies (expiry refused, COMMAND, RAFT.STATUS, ...) are as docs/commands.md describes.
//
// Tests named ...AsRedis pin down Redis's exact texts where raftkv once answered otherwise.
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "tests/integration/cluster.h"

namespace raftkv_it {
namespace {

class IntegrationCommands : public ::testing::Test {
 protected:
  // One cluster for the suite (a CTest entry runs one test, so it starts one per entry).
  static void SetUpTestSuite() {
    cluster_ = new TestCluster(3);
    ::testing::AssertionResult started = cluster_->Start();
    start_error_ = started ? "" : started.message();
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }

  void SetUp() override {
    ASSERT_EQ(start_error_, "");
    ASSERT_TRUE(cluster_->WaitLeader(Millis(20000), &leader_));
    c_ = cluster_->Connect(leader_);
    ASSERT_TRUE(c_.connected()) << c_.error();
  }

  // A second connection to the leader.
  RedisClient Another() {
    RedisClient c = cluster_->Connect(leader_);
    EXPECT_TRUE(c.connected()) << c.error();
    return c;
  }

  static TestCluster* cluster_;
  static std::string start_error_;
  int leader_ = 0;
  RedisClient c_;
};

TestCluster* IntegrationCommands::cluster_ = nullptr;
std::string IntegrationCommands::start_error_;

const std::string kNotInteger = Err("ERR value is not an integer or out of range");
const std::string kOverflow = Err("ERR increment or decrement would overflow");
const std::string kNotFloat = Err("ERR value is not a valid float");
const std::string kSyntax = Err("ERR syntax error");

// ---- Connection commands ----

TEST_F(IntegrationCommands, Ping) {
  EXPECT_EQ(c_.Call({"PING"}), Status("PONG"));
  EXPECT_EQ(c_.Call({"ping"}), Status("PONG"));
  EXPECT_EQ(c_.Call({"PING", "hello world"}), Bulk("hello world"));
  EXPECT_EQ(c_.Call({"PING", ""}), Bulk(""));
  EXPECT_EQ(c_.Call({"PING", "a", "b"}), WrongArgs("ping"));
}

TEST_F(IntegrationCommands, Echo) {
  EXPECT_EQ(c_.Call({"ECHO", "hello"}), Bulk("hello"));
  EXPECT_EQ(c_.Call({"ECHO", std::string("a\0b\r\nc", 6)}), Bulk(std::string("a\0b\r\nc", 6)));
  EXPECT_EQ(c_.Call({"ECHO", ""}), Bulk(""));
  EXPECT_EQ(c_.Call({"ECHO"}), WrongArgs("echo"));
  EXPECT_EQ(c_.Call({"ECHO", "a", "b"}), WrongArgs("echo"));
}

TEST_F(IntegrationCommands, QuitRepliesOkThenCloses) {
  // Nothing after QUIT is answered.
  RawConnection raw(cluster_->Port(leader_), Millis(5000));
  ASSERT_TRUE(raw.ok()) << raw.error();
  ASSERT_TRUE(raw.Send(Request({"QUIT"}) + Request({"PING"})));
  EXPECT_TRUE(raw.ReadUntilClosed(Millis(10000)));
  EXPECT_EQ(raw.received(), Status("OK"));

  RawConnection extra(cluster_->Port(leader_), Millis(5000));
  ASSERT_TRUE(extra.ok()) << extra.error();
  ASSERT_TRUE(extra.Send(Request({"QUIT", "extra", "arguments"})));
  EXPECT_TRUE(extra.ReadUntilClosed(Millis(10000)));
  EXPECT_EQ(extra.received(), Status("OK"));
}

TEST_F(IntegrationCommands, Select) {
  EXPECT_EQ(c_.Call({"SELECT", "0"}), Status("OK"));
  // Redis with one database (`databases 1`) gives the same text.
  EXPECT_EQ(c_.Call({"SELECT", "1"}), Err("ERR DB index is out of range"));
  EXPECT_EQ(c_.Call({"SELECT", "15"}), Err("ERR DB index is out of range"));
  EXPECT_EQ(c_.Call({"SELECT"}), WrongArgs("select"));
  EXPECT_EQ(c_.Call({"SELECT", "0", "1"}), WrongArgs("select"));
  EXPECT_EQ(c_.Call({"PING"}), Status("PONG"));
}

// Redis reads an int first: not a number, then beyond an int, then a database that is not 0.
TEST_F(IntegrationCommands, SelectNotANumberAsRedis) {
  EXPECT_EQ(c_.Call({"SELECT", "abc"}), kNotInteger);
  EXPECT_EQ(c_.Call({"SELECT", "00"}), kNotInteger);
  EXPECT_EQ(c_.Call({"SELECT", "2147483648"}),
            Err("ERR value is out of range, value must between -2147483648 and 2147483647"));
  EXPECT_EQ(c_.Call({"SELECT", "-1"}), Err("ERR DB index is out of range"));
}

TEST_F(IntegrationCommands, ClientSubcommands) {
  EXPECT_EQ(c_.Call({"CLIENT", "GETNAME"}), Nil());
  EXPECT_EQ(c_.Call({"CLIENT", "SETNAME", "conn-a"}), Status("OK"));
  EXPECT_EQ(c_.Call({"CLIENT", "GETNAME"}), Bulk("conn-a"));
  EXPECT_EQ(c_.Call({"client", "setname", "conn-b"}), Status("OK"));
  EXPECT_EQ(c_.Call({"client", "getname"}), Bulk("conn-b"));
  EXPECT_EQ(c_.Call({"CLIENT", "SETINFO", "lib-name", "raftkv-it"}), Status("OK"));
  EXPECT_EQ(c_.Call({"CLIENT", "SETINFO", "lib-ver", "1.0"}), Status("OK"));

  ReplyPtr id = c_.Command({"CLIENT", "ID"});
  ASSERT_NE(id, nullptr);
  ASSERT_EQ(id->type, REDIS_REPLY_INTEGER);
  EXPECT_GT(id->integer, 0);
  RedisClient other = Another();
  ReplyPtr other_id = other.Command({"CLIENT", "ID"});
  ASSERT_NE(other_id, nullptr);
  ASSERT_EQ(other_id->type, REDIS_REPLY_INTEGER);
  EXPECT_NE(other_id->integer, id->integer);
  // Names belong to their connection.
  EXPECT_EQ(other.Call({"CLIENT", "GETNAME"}), Nil());
}

// Bad CLIENT calls are refused (not proposed). Their exact texts: see the test below.
TEST_F(IntegrationCommands, ClientErrorsAreErrors) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"CLIENT"}, {"CLIENT", "FOO"}, {"CLIENT", "SETNAME"}, {"CLIENT", "GETNAME", "x"}}) {
    EXPECT_EQ(c_.Call(args).rfind("-ERR ", 0), 0u) << args.size() << " " << args.back();
  }
  EXPECT_EQ(c_.Call({"PING"}), Status("PONG"));
}

TEST_F(IntegrationCommands, ClientErrorsAsRedis) {
  EXPECT_EQ(c_.Call({"CLIENT"}), WrongArgs("client"));
  EXPECT_EQ(c_.Call({"CLIENT", "FOO"}), Err("ERR unknown subcommand 'FOO'. Try CLIENT HELP."));
  EXPECT_EQ(c_.Call({"CLIENT", "SETNAME"}), WrongArgs("client|setname"));
  EXPECT_EQ(c_.Call({"CLIENT", "SETNAME", "a", "b"}), WrongArgs("client|setname"));
  EXPECT_EQ(c_.Call({"CLIENT", "GETNAME", "x"}), WrongArgs("client|getname"));
  EXPECT_EQ(c_.Call({"CLIENT", "ID", "x"}), WrongArgs("client|id"));
  EXPECT_EQ(c_.Call({"CLIENT", "SETNAME", "a b"}),
            Err("ERR Client names cannot contain spaces, newlines or special characters."));
  EXPECT_EQ(c_.Call({"HELLO", "2", "SETNAME", "a\nb"}),
            Err("ERR Client names cannot contain spaces, newlines or special characters."));
  EXPECT_EQ(c_.Call({"CLIENT", "GETNAME"}), Nil());
  // An empty name clears the name.
  EXPECT_EQ(c_.Call({"CLIENT", "SETNAME", "n"}), Status("OK"));
  EXPECT_EQ(c_.Call({"CLIENT", "SETNAME", ""}), Status("OK"));
  EXPECT_EQ(c_.Call({"CLIENT", "GETNAME"}), Nil());
}

// CLIENT LIST and CLIENT INFO: a line per connection in Redis's key=value layout, with the
// connection's name and MULTI state; TYPE and ID filter.
TEST_F(IntegrationCommands, ClientListAndInfo) {
  ASSERT_EQ(c_.Call({"CLIENT", "SETNAME", "lister"}), Status("OK"));
  RedisClient other = Another();
  ReplyPtr other_id = other.Command({"CLIENT", "ID"});
  ASSERT_NE(other_id, nullptr);
  ASSERT_EQ(other_id->type, REDIS_REPLY_INTEGER);
  const std::string other_field = "id=" + std::to_string(other_id->integer) + " ";
  ASSERT_EQ(other.Call({"MULTI"}), Status("OK"));
  ASSERT_EQ(other.Call({"SET", "queued-key", "v"}), Status("QUEUED"));

  // Every line of a bulk reply, by the connection id it starts with.
  auto lines_of = [](const ReplyPtr& r) {
    std::map<std::string, std::string> by_id;
    EXPECT_EQ(r->type, REDIS_REPLY_STRING) << Encode(r.get());
    const std::string text(r->str, r->len);
    size_t at = 0;
    while (at < text.size()) {
      size_t end = text.find('\n', at);
      EXPECT_NE(end, std::string::npos) << "every line ends in \\n: " << text;
      if (end == std::string::npos) break;
      const std::string line = text.substr(at, end - at);
      by_id[line.substr(0, line.find(' ') + 1)] = line;
      at = end + 1;
    }
    return by_id;
  };
  ReplyPtr info = c_.Command({"CLIENT", "INFO"});
  ASSERT_NE(info, nullptr);
  auto mine = lines_of(info);
  ASSERT_EQ(mine.size(), 1u);
  const std::string my_field = mine.begin()->first;
  const std::string my_line = mine.begin()->second;
  EXPECT_EQ(my_line.rfind(my_field + "addr=127.0.0.1:", 0), 0u) << my_line;
  EXPECT_NE(my_line.find(" name=lister "), std::string::npos) << my_line;
  EXPECT_NE(my_line.find(" flags=N "), std::string::npos) << my_line;
  EXPECT_NE(my_line.find(" multi=-1 "), std::string::npos) << my_line;

  ReplyPtr list = c_.Command({"CLIENT", "LIST"});
  ASSERT_NE(list, nullptr);
  auto all = lines_of(list);
  ASSERT_TRUE(all.count(my_field)) << Encode(list.get());
  ASSERT_TRUE(all.count(other_field)) << Encode(list.get());
  EXPECT_NE(all[other_field].find(" name= "), std::string::npos) << all[other_field];
  EXPECT_NE(all[other_field].find(" flags=x "), std::string::npos) << all[other_field];
  EXPECT_NE(all[other_field].find(" multi=1 "), std::string::npos) << all[other_field];

  ReplyPtr one = c_.Command({"client", "list", "ID", std::to_string(other_id->integer)});
  ASSERT_NE(one, nullptr);
  auto only = lines_of(one);
  ASSERT_EQ(only.size(), 1u);
  EXPECT_EQ(only.begin()->first, other_field);
  ReplyPtr normal = c_.Command({"CLIENT", "LIST", "TYPE", "normal"});
  ASSERT_NE(normal, nullptr);
  EXPECT_TRUE(lines_of(normal).count(other_field));
  EXPECT_EQ(c_.Call({"CLIENT", "LIST", "TYPE", "pubsub"}), Bulk(""));
  EXPECT_EQ(c_.Call({"CLIENT", "LIST", "TYPE", "nosuch"}), Err("ERR Unknown client type 'nosuch'"));
  EXPECT_EQ(c_.Call({"CLIENT", "LIST", "ID", "x"}), Err("ERR Invalid client ID"));
  EXPECT_EQ(c_.Call({"CLIENT", "LIST", "bogus"}), kSyntax);
  EXPECT_EQ(c_.Call({"CLIENT", "INFO", "x"}), WrongArgs("client|info"));
  EXPECT_EQ(other.Call({"DISCARD"}), Status("OK"));
}

// HELP lists the subcommands raftkv has, in Redis's layout.
TEST_F(IntegrationCommands, ContainerHelp) {
  EXPECT_EQ(c_.Call({"config", "help"}),
            Array({Status("CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"),
                   Status("GET <pattern> [<pattern> ...]"),
                   Status("    Return parameters matching the glob-like <pattern>s and their "
                          "values."),
                   Status("HELP"), Status("    Prints this help.")}));
  for (const char* command : {"CLIENT", "CLUSTER", "MEMORY"}) {
    ReplyPtr r = c_.Command({command, "HELP"});
    ASSERT_NE(r, nullptr);
    ASSERT_EQ(r->type, REDIS_REPLY_ARRAY) << Encode(r.get());
    EXPECT_EQ(
        Encode(r->element[0]),
        Status(std::string(command) + " <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"));
    EXPECT_EQ(Encode(r->element[r->elements - 1]), Status("    Prints this help."));
  }
  EXPECT_EQ(c_.Call({"CLIENT", "HELP", "x"}), WrongArgs("client|help"));
}

// MEMORY USAGE (what redis-cli --memkeys asks of every key): the bytes of the key's record in
// the state, on the leader and through a follower; nil for a missing key.
TEST_F(IntegrationCommands, MemoryUsage) {
  ASSERT_EQ(c_.Call({"SET", "mem-key", std::string(100, 'v')}), Status("OK"));
  const std::string expected = Int(1 + 7 + 100 + 8);
  EXPECT_EQ(c_.Call({"MEMORY", "USAGE", "mem-key"}), expected);
  EXPECT_EQ(c_.Call({"memory", "usage", "mem-key", "SAMPLES", "0"}), expected);
  EXPECT_EQ(c_.Call({"MEMORY", "USAGE", "no-such-key"}), Nil());
  EXPECT_EQ(c_.Call({"MEMORY", "USAGE", "mem-key", "SAMPLES", "x"}), kSyntax);
  EXPECT_EQ(c_.Call({"MEMORY", "USAGE", "mem-key", "SAMPLES"}), kSyntax);
  EXPECT_EQ(c_.Call({"MEMORY", "USAGE"}), WrongArgs("memory|usage"));
  EXPECT_EQ(c_.Call({"MEMORY", "DOCTOR"}),
            Err("ERR unknown subcommand 'DOCTOR'. Try MEMORY HELP."));
  RedisClient follower = cluster_->Connect(leader_ % cluster_->size() + 1);
  EXPECT_EQ(follower.Call({"MEMORY", "USAGE", "mem-key"}), expected);
}

TEST_F(IntegrationCommands, CommandIsAnEmptyArray) { EXPECT_EQ(c_.Call({"COMMAND"}), "*0\r\n"); }

TEST_F(IntegrationCommands, ConfigGet) {
  EXPECT_EQ(c_.Call({"CONFIG", "GET", "save"}), Array({Bulk("save"), Bulk("")}));
  EXPECT_EQ(c_.Call({"config", "get", "appendonly"}), Array({Bulk("appendonly"), Bulk("no")}));
  EXPECT_EQ(c_.Call({"CONFIG", "GET", "no-such-parameter"}), "*0\r\n");
  EXPECT_EQ(c_.Call({"CONFIG", "GET"}).rfind("-ERR ", 0), 0u);
  EXPECT_EQ(c_.Call({"CONFIG"}).rfind("-ERR ", 0), 0u);
}

// CONFIG GET takes several patterns (Redis 7); each key comes once, in the order the patterns
// first match (Redis's order is its hash table's).
TEST_F(IntegrationCommands, ConfigAsRedis) {
  EXPECT_EQ(c_.Call({"CONFIG", "GET"}), WrongArgs("config|get"));
  EXPECT_EQ(c_.Call({"CONFIG"}), WrongArgs("config"));
  EXPECT_EQ(c_.Call({"CONFIG", "FOO"}), Err("ERR unknown subcommand 'FOO'. Try CONFIG HELP."));
  EXPECT_EQ(c_.Call({"CONFIG", "GET", "save", "appendonly"}),
            Array({Bulk("save"), Bulk(""), Bulk("appendonly"), Bulk("no")}));
  EXPECT_EQ(c_.Call({"CONFIG", "GET", "save", "sav*", "SAVE"}), Array({Bulk("save"), Bulk("")}));
  EXPECT_EQ(c_.Call({"CONFIG", "GET", "no-such", "databases"}),
            Array({Bulk("databases"), Bulk("1")}));
}

TEST_F(IntegrationCommands, InfoHasTheRaftSection) {
  ReplyPtr r = c_.Command({"INFO"});
  ASSERT_NE(r, nullptr);
  ASSERT_EQ(r->type, REDIS_REPLY_STRING);
  std::string info(r->str, r->len);
  EXPECT_NE(info.find("# Server\r\n"), std::string::npos) << info;
  EXPECT_NE(info.find("# Raft\r\n"), std::string::npos) << info;
  EXPECT_NE(info.find("\r\nredis_version:"), std::string::npos) << info;

  InfoMap m = cluster_->Info(leader_);
  EXPECT_EQ(m["raft_node_id"], std::to_string(leader_));
  EXPECT_EQ(m["raft_role"], "leader");
  EXPECT_EQ(m["raft_leader_id"], std::to_string(leader_));
  EXPECT_EQ(m["raft_leader_addr"], "127.0.0.1:" + std::to_string(cluster_->Port(leader_)));
  for (const char* key :
       {"raft_term", "raft_commit_index", "raft_applied_index", "raft_last_index",
        "raft_snapshot_index", "raft_log_entries", "raft_log_bytes", "raft_uncommitted_bytes",
        "raft_apply_lag_bytes", "raft_apply_paused", "raft_apply_pauses",
        "raft_log_reclaimed_index", "raft_snapshots_installed", "raft_snapshots_sent"}) {
    ASSERT_TRUE(m.count(key)) << key;
    EXPECT_FALSE(m[key].empty()) << key;
    EXPECT_EQ(m[key].find_first_not_of("0123456789"), std::string::npos) << key << "=" << m[key];
  }
  EXPECT_GE(std::stoull(m["raft_term"]), 1u);
  EXPECT_LE(std::stoull(m["raft_commit_index"]), std::stoull(m["raft_last_index"]));
  // The log holds entries past the snapshot (the leader's no-op at least), each counted with
  // its 24 bytes of metadata.
  EXPECT_EQ(std::stoull(m["raft_log_entries"]),
            std::stoull(m["raft_last_index"]) - std::stoull(m["raft_snapshot_index"]));
  EXPECT_GE(std::stoull(m["raft_log_bytes"]), 24 * std::stoull(m["raft_log_entries"]));
  for (int id = 1; id <= cluster_->size(); id++) {
    std::string key = "raft_peer" + std::to_string(id);
    if (id == leader_) {
      EXPECT_EQ(m.count(key), 0u) << key;
      continue;
    }
    ASSERT_TRUE(m.count(key)) << key;
    const std::string& peer = m[key];
    EXPECT_EQ(peer.rfind("id=" + std::to_string(id) +
                             ",addr=127.0.0.1:" + std::to_string(cluster_->Port(id)) + ",state=",
                         0),
              0u)
        << peer;
    for (const char* field : {",match=", ",next=", ",lag_entries=", ",lag_bytes="}) {
      EXPECT_NE(peer.find(field), std::string::npos) << key << ": " << peer;
    }
  }
  // INFO is answered by every node; a follower names the leader.
  int follower = leader_ % cluster_->size() + 1;
  InfoMap f = cluster_->Info(follower);
  EXPECT_EQ(f["raft_node_id"], std::to_string(follower));
  EXPECT_NE(f["raft_role"], "leader");
}

// The value cache serves repeated reads (INFO value_cache_*), and INFO names the allocator the
// build chose.
TEST_F(IntegrationCommands, InfoShowsTheValueCacheAndTheAllocator) {
  InfoMap before = cluster_->Info(leader_);
  EXPECT_EQ(before["value_cache_capacity"], "67108864");
  ASSERT_EQ(c_.Call({"SET", "cached-key", "v"}), Status("OK"));
  for (int i = 0; i < 3; i++) ASSERT_EQ(c_.Call({"GET", "cached-key"}), Bulk("v"));
  ASSERT_EQ(c_.Call({"GET", "never-set"}), Nil());
  ASSERT_EQ(c_.Call({"GET", "never-set"}), Nil());
  InfoMap after = cluster_->Info(leader_);
  // The three GETs of the written key and the second of the absent one are hits.
  EXPECT_GE(std::stoull(after["value_cache_hits"]), std::stoull(before["value_cache_hits"]) + 4);
  EXPECT_GT(std::stoull(after["value_cache_bytes"]), 0u);
#ifdef RAFTKV_EXPECT_JEMALLOC
  EXPECT_EQ(after["mem_allocator"].rfind("jemalloc-", 0), 0u) << after["mem_allocator"];
#else
  EXPECT_EQ(after["mem_allocator"], "libc");
#endif
}

// INFO memory has what redis-cli --stat and monitoring read: used_memory (the allocator's
// figure; a server without it made redis-cli --stat print a negative size) and the RSS.
TEST_F(IntegrationCommands, InfoMemoryHasUsedMemory) {
  ReplyPtr r = c_.Command({"INFO", "memory"});
  ASSERT_NE(r, nullptr);
  ASSERT_EQ(r->type, REDIS_REPLY_STRING) << Encode(r.get());
  const std::string text(r->str, r->len);
  EXPECT_EQ(text.rfind("# Memory\r\n", 0), 0u) << text;
  std::map<std::string, std::string> fields;
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find("\r\n", at);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(at, end - at);
    const size_t colon = line.find(':');
    if (colon != std::string::npos) fields[line.substr(0, colon)] = line.substr(colon + 1);
    at = end + 2;
  }
  for (const char* key : {"used_memory", "used_memory_human", "used_memory_rss",
                          "used_memory_rss_human", "maxmemory", "mem_allocator"}) {
    EXPECT_EQ(fields.count(key), 1u) << key << " missing: " << text;
  }
  // A running server has allocated something (about 1.5 MiB when idle), and less than its
  // 24 GiB machine.
  const uint64_t used = std::stoull(fields["used_memory"]);
  EXPECT_GT(used, uint64_t{64} << 10);
  EXPECT_LT(used, uint64_t{24} << 30);
  EXPECT_GT(std::stoull(fields["used_memory_rss"]), uint64_t{1} << 20);
  const std::string human = fields["used_memory_human"];
  ASSERT_FALSE(human.empty());
  EXPECT_NE(std::string("KMG").find(human.back()), std::string::npos) << human;
  EXPECT_EQ(fields.count("redis_version"), 0u) << "only the memory section was asked for";
}

TEST_F(IntegrationCommands, RaftStatus) {
  // Field-value pairs; at least the role, the term and the leader.
  InfoMap m = cluster_->Info(leader_);
  ASSERT_EQ(m["raft_role"], "leader");
  ReplyPtr r = c_.Command({"RAFT.STATUS"});
  ASSERT_NE(r, nullptr);
  ASSERT_EQ(r->type, REDIS_REPLY_ARRAY) << Encode(r.get());
  ASSERT_EQ(r->elements % 2, 0u);
  std::map<std::string, std::string> fields;
  for (size_t i = 0; i + 1 < r->elements; i += 2) {
    ASSERT_EQ(r->element[i]->type, REDIS_REPLY_STRING);
    fields[std::string(r->element[i]->str, r->element[i]->len)] = Encode(r->element[i + 1]);
  }
  EXPECT_EQ(fields["role"], Bulk("leader"));
  EXPECT_EQ(fields["term"], Int(std::stoll(m["raft_term"])));
  EXPECT_EQ(fields["leader"], Int(leader_));
}

TEST_F(IntegrationCommands, RaftStatusWrongArguments) {
  EXPECT_EQ(c_.Call({"RAFT.STATUS", "x"}), WrongArgs("raft.status"));
}

// The Raft id as a Redis Cluster node name: 40 hex digits.
std::string NodeName(int id) {
  char buf[41];
  std::snprintf(buf, sizeof(buf), "%040x", static_cast<unsigned>(id));
  return buf;
}

TEST_F(IntegrationCommands, ClusterSlotsShardsNodes) {
  std::vector<int> others;
  for (int id = 1; id <= cluster_->size(); id++) {
    if (id != leader_) others.push_back(id);
  }
  auto slots_node = [this](int id) {
    return Array({Bulk("127.0.0.1"), Int(cluster_->Port(id)), Bulk(NodeName(id))});
  };
  std::vector<std::string> range = {Int(0), Int(16383), slots_node(leader_)};
  for (int id : others) range.push_back(slots_node(id));
  EXPECT_EQ(c_.Call({"CLUSTER", "SLOTS"}), Array({Array(range)}));

  auto shard_node = [this](int id, bool leader) {
    return Array({Bulk("id"), Bulk(NodeName(id)), Bulk("port"), Int(cluster_->Port(id)), Bulk("ip"),
                  Bulk("127.0.0.1"), Bulk("endpoint"), Bulk("127.0.0.1"), Bulk("role"),
                  Bulk(leader ? "master" : "replica"), Bulk("replication-offset"), Int(0),
                  Bulk("health"), Bulk("online")});
  };
  std::vector<std::string> nodes = {shard_node(leader_, true)};
  for (int id : others) nodes.push_back(shard_node(id, false));
  EXPECT_EQ(
      c_.Call({"cluster", "shards"}),
      Array({Array({Bulk("slots"), Array({Int(0), Int(16383)}), Bulk("nodes"), Array(nodes)})}));

  const std::string term = cluster_->Info(leader_)["raft_term"];
  std::string text;
  for (int id = 1; id <= cluster_->size(); id++) {
    text += NodeName(id) + " 127.0.0.1:" + std::to_string(cluster_->Port(id)) + "@" +
            std::to_string(cluster_->PeerPort(id)) + " " + (id == leader_ ? "myself," : "") +
            (id == leader_ ? "master - " : "slave " + NodeName(leader_) + " ") + "0 0 " + term +
            " connected" + (id == leader_ ? " 0-16383" : "") + "\n";
  }
  EXPECT_EQ(c_.Call({"CLUSTER", "NODES"}), Bulk(text));
}

TEST_F(IntegrationCommands, ClusterInfoMyIdKeySlot) {
  ReplyPtr info = c_.Command({"CLUSTER", "INFO"});
  ASSERT_NE(info, nullptr);
  ASSERT_EQ(info->type, REDIS_REPLY_STRING) << Encode(info.get());
  const std::string text(info->str, info->len);
  for (const char* line :
       {"cluster_enabled:1\r\n", "cluster_state:ok\r\n", "cluster_slots_assigned:16384\r\n",
        "cluster_slots_ok:16384\r\n", "cluster_known_nodes:3\r\n", "cluster_size:1\r\n"}) {
    EXPECT_NE(text.find(line), std::string::npos) << line << " in " << text;
  }
  EXPECT_EQ(c_.Call({"CLUSTER", "MYID"}), Bulk(NodeName(leader_)));
  // Slots as Redis Cluster computes them (checked against redis-server --cluster-enabled yes).
  EXPECT_EQ(c_.Call({"CLUSTER", "KEYSLOT", "123456789"}), Int(12739));
  EXPECT_EQ(c_.Call({"CLUSTER", "KEYSLOT", "foo"}), Int(12182));
  EXPECT_EQ(c_.Call({"CLUSTER", "KEYSLOT", "{user1000}.following"}), Int(3443));
  EXPECT_EQ(c_.Call({"CLUSTER", "KEYSLOT", "user1000"}), Int(3443));
  EXPECT_EQ(c_.Call({"CLUSTER", "KEYSLOT", "foo{}{bar}"}), Int(8363));
  EXPECT_EQ(c_.Call({"CLUSTER", "KEYSLOT", "foo{{bar}}zap"}), Int(4015));
  EXPECT_EQ(c_.Call({"CLUSTER", "KEYSLOT", "foo{bar}{zap}"}), Int(5061));
  EXPECT_EQ(c_.Call({"CLUSTER", "FOO"}).rfind("-ERR ", 0), 0u);
  EXPECT_EQ(c_.Call({"CLUSTER", "KEYSLOT"}).rfind("-ERR ", 0), 0u);
}

// Redis in cluster mode.
TEST_F(IntegrationCommands, ClusterErrorsAsRedis) {
  EXPECT_EQ(c_.Call({"CLUSTER", "FOO"}), Err("ERR unknown subcommand 'FOO'. Try CLUSTER HELP."));
  EXPECT_EQ(c_.Call({"CLUSTER"}), WrongArgs("cluster"));
  EXPECT_EQ(c_.Call({"CLUSTER", "KEYSLOT"}), WrongArgs("cluster|keyslot"));
  EXPECT_EQ(c_.Call({"CLUSTER", "SLOTS", "x"}), WrongArgs("cluster|slots"));
}

TEST_F(IntegrationCommands, RaftTransferLeader) {
  EXPECT_EQ(c_.Call({"RAFT.TRANSFER-LEADER"}), WrongArgs("raft.transfer-leader"));
  EXPECT_EQ(c_.Call({"RAFT.TRANSFER-LEADER", "abc"}), Err("ERR invalid node id 'abc'"));
  EXPECT_EQ(c_.Call({"RAFT.TRANSFER-LEADER", "0"}), Err("ERR invalid node id '0'"));
  EXPECT_EQ(c_.Call({"RAFT.TRANSFER-LEADER", "99"}), Err("ERR unknown node id 99"));
  EXPECT_EQ(c_.Call({"RAFT.TRANSFER-LEADER", std::to_string(leader_)}), Status("OK"));

  const int target = leader_ % cluster_->size() + 1;
  EXPECT_EQ(c_.Call({"SET", "tl:before", "1"}), Status("OK"));
  EXPECT_EQ(c_.Call({"RAFT.TRANSFER-LEADER", std::to_string(target)}), Status("OK"));
  int leader = 0;
  ASSERT_TRUE(cluster_->WaitLeader(Millis(10000), &leader));
  EXPECT_EQ(leader, target);
  RedisClient c = cluster_->Connect(leader);
  EXPECT_EQ(c.Call({"GET", "tl:before"}), Bulk("1"));
  EXPECT_EQ(c.Call({"SET", "tl:after", "2"}), Status("OK"));
}

TEST_F(IntegrationCommands, ConfigGetOwnKeys) {
  EXPECT_EQ(c_.Call({"CONFIG", "GET", "databases"}), Array({Bulk("databases"), Bulk("1")}));
  EXPECT_EQ(c_.Call({"CONFIG", "GET", "node-id"}),
            Array({Bulk("node-id"), Bulk(std::to_string(leader_))}));
  EXPECT_EQ(c_.Call({"CONFIG", "GET", "*clients"}), Array({Bulk("maxclients"), Bulk("10000")}));
  // Never the secrets.
  EXPECT_EQ(c_.Call({"CONFIG", "GET", "requirepass"}), "*0\r\n");
  EXPECT_EQ(c_.Call({"CONFIG", "GET", "cluster-secret"}), "*0\r\n");
  ReplyPtr all = c_.Command({"CONFIG", "GET", "*"});
  ASSERT_NE(all, nullptr);
  ASSERT_EQ(all->type, REDIS_REPLY_ARRAY);
  EXPECT_EQ(all->elements % 2, 0u);
  std::map<std::string, std::string> keys;
  for (size_t i = 0; i + 1 < all->elements; i += 2) {
    keys[std::string(all->element[i]->str, all->element[i]->len)] =
        std::string(all->element[i + 1]->str, all->element[i + 1]->len);
  }
  EXPECT_EQ(keys.count("requirepass"), 0u);
  EXPECT_EQ(keys.count("cluster-secret"), 0u);
  EXPECT_EQ(keys["save"], "");
  EXPECT_EQ(keys["appendonly"], "no");
  EXPECT_EQ(keys["port"], std::to_string(cluster_->Port(leader_)));
}

TEST_F(IntegrationCommands, InfoSections) {
  auto info = [this](const std::vector<std::string>& args) {
    ReplyPtr r = c_.Command(args);
    if (!r || r->type != REDIS_REPLY_STRING) return std::string("<not a bulk string>");
    return std::string(r->str, r->len);
  };
  const std::string raft = info({"INFO", "raft"});
  EXPECT_EQ(raft.rfind("# Raft\r\n", 0), 0u) << raft;
  EXPECT_EQ(raft.find("# Server"), std::string::npos) << raft;
  const std::string two = info({"INFO", "server", "CLIENTS"});
  EXPECT_EQ(two.rfind("# Server\r\n", 0), 0u) << two;
  EXPECT_NE(two.find("\r\n# Clients\r\n"), std::string::npos) << two;
  EXPECT_NE(two.find("\r\nmaxclients:10000\r\n"), std::string::npos) << two;
  EXPECT_EQ(two.find("# Raft"), std::string::npos) << two;
  EXPECT_EQ(c_.Call({"SET", "info:k", "v"}), Status("OK"));
  const std::string keyspace = info({"INFO", "keyspace"});
  EXPECT_EQ(keyspace.rfind("# Keyspace\r\ndb0:keys=", 0), 0u) << keyspace;
  const std::string all = info({"INFO", "all"});
  for (const char* section :
       {"# Server", "# Clients", "# Persistence", "# Stats", "# Raft", "# Keyspace"}) {
    EXPECT_NE(all.find(section), std::string::npos) << section;
  }
}

TEST_F(IntegrationCommands, Hello) {
  ReplyPtr r = c_.Command({"HELLO"});
  ASSERT_NE(r, nullptr);
  ASSERT_EQ(r->type, REDIS_REPLY_ARRAY);
  ASSERT_EQ(r->elements, 14u);
  ReplyPtr id = c_.Command({"CLIENT", "ID"});
  ASSERT_NE(id, nullptr);
  std::vector<std::string> got;
  for (size_t i = 0; i < r->elements; i++) got.push_back(Encode(r->element[i]));
  EXPECT_EQ(got[0], Bulk("server"));
  EXPECT_EQ(got[1], Bulk("redis"));
  EXPECT_EQ(got[2], Bulk("version"));
  EXPECT_EQ(got[3].rfind("$", 0), 0u);
  EXPECT_EQ(got[4], Bulk("proto"));
  EXPECT_EQ(got[5], Int(2));
  EXPECT_EQ(got[6], Bulk("id"));
  EXPECT_EQ(got[7], Int(id->integer));
  EXPECT_EQ(got[8], Bulk("mode"));
  EXPECT_EQ(got[9], Bulk("standalone"));
  EXPECT_EQ(got[10], Bulk("role"));
  EXPECT_EQ(got[11], Bulk("master"));
  EXPECT_EQ(got[12], Bulk("modules"));
  EXPECT_EQ(got[13], "*0\r\n");

  ReplyPtr two = c_.Command({"HELLO", "2", "SETNAME", "hello-name"});
  ASSERT_NE(two, nullptr);
  ASSERT_EQ(two->type, REDIS_REPLY_ARRAY);
  EXPECT_EQ(two->elements, 14u);
  EXPECT_EQ(c_.Call({"CLIENT", "GETNAME"}), Bulk("hello-name"));

  // RESP3 is refused (docs/commands.md); the connection stays on RESP2.
  EXPECT_EQ(c_.Call({"HELLO", "3"}).rfind("-NOPROTO ", 0), 0u);
  EXPECT_EQ(c_.Call({"HELLO", "2", "FOO"}), Err("ERR Syntax error in HELLO option 'FOO'"));
  EXPECT_EQ(c_.Call({"HELLO", "2", "AUTH", "default"}),
            Err("ERR Syntax error in HELLO option 'AUTH'"));
  EXPECT_EQ(c_.Call({"HELLO", "2", "SETNAME"}), Err("ERR Syntax error in HELLO option 'SETNAME'"));
  EXPECT_EQ(c_.Call({"PING"}), Status("PONG"));
}

TEST_F(IntegrationCommands, HelloErrorsAsRedis) {
  EXPECT_EQ(c_.Call({"HELLO", "4"}), Err("NOPROTO unsupported protocol version"));
  EXPECT_EQ(c_.Call({"HELLO", "1"}), Err("NOPROTO unsupported protocol version"));
  EXPECT_EQ(c_.Call({"HELLO", "abc"}),
            Err("ERR Protocol version is not an integer or out of range"));
  EXPECT_EQ(c_.Call({"HELLO", "02"}),
            Err("ERR Protocol version is not an integer or out of range"));
  // RESP3, which raftkv does not speak, gets the same -NOPROTO.
  EXPECT_EQ(c_.Call({"HELLO", "3"}), Err("NOPROTO unsupported protocol version"));
}

TEST_F(IntegrationCommands, UnknownCommand) {
  EXPECT_EQ(c_.Call({"FOO", "a", "b"}),
            Err("ERR unknown command 'FOO', with args beginning with: 'a' 'b' "));
  EXPECT_EQ(c_.Call({"foo"}), Err("ERR unknown command 'foo', with args beginning with: "));
  // Newlines in an argument cannot break the reply line.
  EXPECT_EQ(c_.Call({"FOO", "a\r\nb"}),
            Err("ERR unknown command 'FOO', with args beginning with: 'a  b' "));
  EXPECT_EQ(c_.Call({"PING"}), Status("PONG"));
}

// Redis lists arguments until they take 128 characters (cutting the last one), and cuts the
// command name at 128.
TEST_F(IntegrationCommands, UnknownCommandLongArgumentsAsRedis) {
  std::vector<std::string> args = {"foo"};
  for (char ch = 'a'; ch <= 'z'; ch++) args.push_back(std::string(1, ch));
  args.push_back(std::string(112, 'a'));
  args.push_back(std::string(28, 'b'));
  EXPECT_EQ(c_.Call(args),
            Err("ERR unknown command 'foo', with args beginning with: 'a' 'b' 'c' 'd' 'e' 'f' "
                "'g' 'h' 'i' 'j' 'k' 'l' 'm' 'n' 'o' 'p' 'q' 'r' 's' 't' 'u' 'v' 'w' 'x' 'y' "
                "'z' '" +
                std::string(24, 'a') + "' "));
  std::string name(200, 'x');
  EXPECT_EQ(c_.Call({name}),
            Err("ERR unknown command '" + std::string(128, 'x') + "', with args beginning with: "));
}

// ---- Strings: reads and writes ----

TEST_F(IntegrationCommands, SetGet) {
  EXPECT_EQ(c_.Call({"SET", "sg:k", "v1"}), Status("OK"));
  EXPECT_EQ(c_.Call({"GET", "sg:k"}), Bulk("v1"));
  EXPECT_EQ(c_.Call({"set", "sg:k", "v2"}), Status("OK"));
  EXPECT_EQ(c_.Call({"get", "sg:k"}), Bulk("v2"));
  EXPECT_EQ(c_.Call({"GET", "sg:missing"}), Nil());
  // Binary-safe keys and values, empty values, a large value.
  const std::string binary("\0\r\n\xff\x01 x", 7);
  EXPECT_EQ(c_.Call({"SET", binary, binary}), Status("OK"));
  EXPECT_EQ(c_.Call({"GET", binary}), Bulk(binary));
  EXPECT_EQ(c_.Call({"SET", "sg:empty", ""}), Status("OK"));
  EXPECT_EQ(c_.Call({"GET", "sg:empty"}), Bulk(""));
  const std::string large(100000, 'L');
  EXPECT_EQ(c_.Call({"SET", "sg:large", large}), Status("OK"));
  EXPECT_EQ(c_.Call({"GET", "sg:large"}), Bulk(large));
  // Another connection sees the writes.
  RedisClient other = Another();
  EXPECT_EQ(other.Call({"GET", "sg:k"}), Bulk("v2"));

  EXPECT_EQ(c_.Call({"SET"}), WrongArgs("set"));
  EXPECT_EQ(c_.Call({"SET", "sg:k"}), WrongArgs("set"));
  EXPECT_EQ(c_.Call({"GET"}), WrongArgs("get"));
  EXPECT_EQ(c_.Call({"GET", "a", "b"}), WrongArgs("get"));
  EXPECT_EQ(c_.Call({"GET", "sg:k"}), Bulk("v2"));
}

TEST_F(IntegrationCommands, SetOptions) {
  EXPECT_EQ(c_.Call({"SET", "so:a", "1", "NX"}), Status("OK"));
  EXPECT_EQ(c_.Call({"SET", "so:a", "2", "NX"}), Nil());
  EXPECT_EQ(c_.Call({"GET", "so:a"}), Bulk("1"));
  EXPECT_EQ(c_.Call({"SET", "so:b", "1", "XX"}), Nil());
  EXPECT_EQ(c_.Call({"EXISTS", "so:b"}), Int(0));
  EXPECT_EQ(c_.Call({"SET", "so:a", "3", "xx"}), Status("OK"));
  EXPECT_EQ(c_.Call({"GET", "so:a"}), Bulk("3"));
  // GET: the old value (nil if none), and the write happens.
  EXPECT_EQ(c_.Call({"SET", "so:a", "4", "GET"}), Bulk("3"));
  EXPECT_EQ(c_.Call({"SET", "so:c", "1", "get"}), Nil());
  EXPECT_EQ(c_.Call({"GET", "so:c"}), Bulk("1"));
  // NX GET (Redis 7.0): the old value, and no write when there is one.
  EXPECT_EQ(c_.Call({"SET", "so:a", "5", "NX", "GET"}), Bulk("4"));
  EXPECT_EQ(c_.Call({"GET", "so:a"}), Bulk("4"));
  EXPECT_EQ(c_.Call({"SET", "so:d", "1", "NX", "GET"}), Nil());
  EXPECT_EQ(c_.Call({"GET", "so:d"}), Bulk("1"));
  EXPECT_EQ(c_.Call({"SET", "so:e", "1", "XX", "GET"}), Nil());
  EXPECT_EQ(c_.Call({"EXISTS", "so:e"}), Int(0));
  EXPECT_EQ(c_.Call({"SET", "so:a", "6", "Xx", "gEt"}), Bulk("4"));
  EXPECT_EQ(c_.Call({"GET", "so:a"}), Bulk("6"));
  // Repeating an option is allowed, as in Redis.
  EXPECT_EQ(c_.Call({"SET", "so:a", "7", "XX", "XX"}), Status("OK"));
  EXPECT_EQ(c_.Call({"SET", "so:a", "8", "GET", "GET"}), Bulk("7"));

  EXPECT_EQ(c_.Call({"SET", "so:a", "9", "NX", "XX"}), kSyntax);
  EXPECT_EQ(c_.Call({"SET", "so:a", "9", "XX", "NX"}), kSyntax);
  EXPECT_EQ(c_.Call({"SET", "so:a", "9", "FOO"}), kSyntax);
  EXPECT_EQ(c_.Call({"GET", "so:a"}), Bulk("8"));
}

TEST_F(IntegrationCommands, SetWithExpiryIsRefused) {
  const std::string refused = Err("ERR expiry is not supported: keys in raftkv do not expire");
  EXPECT_EQ(c_.Call({"SET", "ex:k", "v"}), Status("OK"));
  EXPECT_EQ(c_.Call({"SET", "ex:k", "w", "EX", "10"}), refused);
  EXPECT_EQ(c_.Call({"SET", "ex:k", "w", "px", "100"}), refused);
  EXPECT_EQ(c_.Call({"SET", "ex:k", "w", "EXAT", "4102444800"}), refused);
  EXPECT_EQ(c_.Call({"SET", "ex:k", "w", "PXAT", "4102444800000"}), refused);
  EXPECT_EQ(c_.Call({"SET", "ex:k", "w", "KEEPTTL"}), refused);
  EXPECT_EQ(c_.Call({"SET", "ex:k", "w", "NX", "EX", "10"}), refused);
  EXPECT_EQ(c_.Call({"SET", "ex:new", "w", "EX", "10"}), refused);
  // Never proposed: nothing changed.
  EXPECT_EQ(c_.Call({"GET", "ex:k"}), Bulk("v"));
  EXPECT_EQ(c_.Call({"EXISTS", "ex:new"}), Int(0));
}

TEST_F(IntegrationCommands, PutIsSet) {
  EXPECT_EQ(c_.Call({"PUT", "put:k", "v"}), Status("OK"));
  EXPECT_EQ(c_.Call({"GET", "put:k"}), Bulk("v"));
  EXPECT_EQ(c_.Call({"PUT", "put:k", "w", "NX"}), Nil());
  EXPECT_EQ(c_.Call({"put", "put:k", "w", "GET"}), Bulk("v"));
  EXPECT_EQ(c_.Call({"GET", "put:k"}), Bulk("w"));
  EXPECT_EQ(c_.Call({"PUT", "put:k"}), WrongArgs("put"));
  EXPECT_EQ(c_.Call({"PUT", "put:k", "x", "BAD"}), kSyntax);
}

TEST_F(IntegrationCommands, SetNx) {
  EXPECT_EQ(c_.Call({"SETNX", "snx:k", "1"}), Int(1));
  EXPECT_EQ(c_.Call({"SETNX", "snx:k", "2"}), Int(0));
  EXPECT_EQ(c_.Call({"GET", "snx:k"}), Bulk("1"));
  EXPECT_EQ(c_.Call({"SETNX", "snx:k"}), WrongArgs("setnx"));
  EXPECT_EQ(c_.Call({"SETNX", "snx:k", "1", "2"}), WrongArgs("setnx"));
}

TEST_F(IntegrationCommands, GetSet) {
  EXPECT_EQ(c_.Call({"GETSET", "gs:k", "1"}), Nil());
  EXPECT_EQ(c_.Call({"GETSET", "gs:k", "2"}), Bulk("1"));
  EXPECT_EQ(c_.Call({"GET", "gs:k"}), Bulk("2"));
  EXPECT_EQ(c_.Call({"GETSET", "gs:k"}), WrongArgs("getset"));
  EXPECT_EQ(c_.Call({"GETSET", "gs:k", "1", "2"}), WrongArgs("getset"));
}

TEST_F(IntegrationCommands, GetDel) {
  EXPECT_EQ(c_.Call({"GETDEL", "gd:k"}), Nil());
  EXPECT_EQ(c_.Call({"SET", "gd:k", "x"}), Status("OK"));
  EXPECT_EQ(c_.Call({"GETDEL", "gd:k"}), Bulk("x"));
  EXPECT_EQ(c_.Call({"GET", "gd:k"}), Nil());
  EXPECT_EQ(c_.Call({"GETDEL"}), WrongArgs("getdel"));
  EXPECT_EQ(c_.Call({"GETDEL", "a", "b"}), WrongArgs("getdel"));
}

TEST_F(IntegrationCommands, MSetMGet) {
  EXPECT_EQ(c_.Call({"MSET", "mm:a", "1", "mm:b", "2"}), Status("OK"));
  EXPECT_EQ(c_.Call({"MGET", "mm:a", "mm:b", "mm:missing", "mm:a"}),
            Array({Bulk("1"), Bulk("2"), Nil(), Bulk("1")}));
  // The last value of a repeated key wins.
  EXPECT_EQ(c_.Call({"MSET", "mm:c", "1", "mm:c", "2"}), Status("OK"));
  EXPECT_EQ(c_.Call({"MGET", "mm:c"}), Array({Bulk("2")}));
  EXPECT_EQ(c_.Call({"MSET"}), WrongArgs("mset"));
  EXPECT_EQ(c_.Call({"MSET", "mm:a"}), WrongArgs("mset"));
  EXPECT_EQ(c_.Call({"MSET", "mm:a", "9", "mm:b"}), WrongArgs("mset"));
  EXPECT_EQ(c_.Call({"MGET"}), WrongArgs("mget"));
  EXPECT_EQ(c_.Call({"GET", "mm:a"}), Bulk("1"));
}

TEST_F(IntegrationCommands, Del) {
  EXPECT_EQ(c_.Call({"DEL", "del:missing"}), Int(0));
  EXPECT_EQ(c_.Call({"MSET", "del:a", "1", "del:b", "2"}), Status("OK"));
  EXPECT_EQ(c_.Call({"DEL", "del:a", "del:b", "del:c"}), Int(2));
  EXPECT_EQ(c_.Call({"MGET", "del:a", "del:b"}), Array({Nil(), Nil()}));
  EXPECT_EQ(c_.Call({"SET", "del:a", "1"}), Status("OK"));
  EXPECT_EQ(c_.Call({"DEL", "del:a", "del:a"}), Int(1));
  EXPECT_EQ(c_.Call({"DEL"}), WrongArgs("del"));
}

TEST_F(IntegrationCommands, Exists) {
  EXPECT_EQ(c_.Call({"EXISTS", "ex2:a"}), Int(0));
  EXPECT_EQ(c_.Call({"SET", "ex2:a", "1"}), Status("OK"));
  EXPECT_EQ(c_.Call({"EXISTS", "ex2:a"}), Int(1));
  // Counted once per argument, as Redis counts.
  EXPECT_EQ(c_.Call({"EXISTS", "ex2:a", "ex2:a", "ex2:b"}), Int(2));
  EXPECT_EQ(c_.Call({"EXISTS"}), WrongArgs("exists"));
}

TEST_F(IntegrationCommands, Append) {
  EXPECT_EQ(c_.Call({"APPEND", "ap:k", "xy"}), Int(2));
  EXPECT_EQ(c_.Call({"APPEND", "ap:k", "z"}), Int(3));
  EXPECT_EQ(c_.Call({"APPEND", "ap:k", ""}), Int(3));
  EXPECT_EQ(c_.Call({"GET", "ap:k"}), Bulk("xyz"));
  EXPECT_EQ(c_.Call({"APPEND", "ap:k"}), WrongArgs("append"));
  EXPECT_EQ(c_.Call({"APPEND", "ap:k", "a", "b"}), WrongArgs("append"));
}

TEST_F(IntegrationCommands, Strlen) {
  EXPECT_EQ(c_.Call({"STRLEN", "sl:missing"}), Int(0));
  EXPECT_EQ(c_.Call({"SET", "sl:k", "hello"}), Status("OK"));
  EXPECT_EQ(c_.Call({"STRLEN", "sl:k"}), Int(5));
  EXPECT_EQ(c_.Call({"STRLEN"}), WrongArgs("strlen"));
  EXPECT_EQ(c_.Call({"STRLEN", "a", "b"}), WrongArgs("strlen"));
}

TEST_F(IntegrationCommands, Type) {
  EXPECT_EQ(c_.Call({"TYPE", "ty:missing"}), Status("none"));
  EXPECT_EQ(c_.Call({"SET", "ty:k", "1"}), Status("OK"));
  EXPECT_EQ(c_.Call({"TYPE", "ty:k"}), Status("string"));
  EXPECT_EQ(c_.Call({"TYPE"}), WrongArgs("type"));
  EXPECT_EQ(c_.Call({"TYPE", "a", "b"}), WrongArgs("type"));
}

TEST_F(IntegrationCommands, DbSizeAndFlushAll) {
  EXPECT_EQ(c_.Call({"MSET", "fa:a", "1", "fa:b", "2", "fa:c", "3"}), Status("OK"));
  EXPECT_EQ(c_.Call({"FLUSHALL"}), Status("OK"));
  EXPECT_EQ(c_.Call({"DBSIZE"}), Int(0));
  EXPECT_EQ(c_.Call({"MGET", "fa:a", "fa:b"}), Array({Nil(), Nil()}));
  EXPECT_EQ(c_.Call({"MSET", "fa:a", "1", "fa:b", "2", "fa:c", "3"}), Status("OK"));
  EXPECT_EQ(c_.Call({"DBSIZE"}), Int(3));
  EXPECT_EQ(c_.Call({"FLUSHDB"}), Status("OK"));
  EXPECT_EQ(c_.Call({"DBSIZE"}), Int(0));
  EXPECT_EQ(c_.Call({"SET", "fa:a", "1"}), Status("OK"));
  EXPECT_EQ(c_.Call({"FLUSHALL", "ASYNC"}), Status("OK"));
  EXPECT_EQ(c_.Call({"DBSIZE"}), Int(0));
  EXPECT_EQ(c_.Call({"SET", "fa:a", "1"}), Status("OK"));
  EXPECT_EQ(c_.Call({"flushdb", "sync"}), Status("OK"));
  EXPECT_EQ(c_.Call({"DBSIZE"}), Int(0));
  EXPECT_EQ(c_.Call({"DBSIZE", "x"}), WrongArgs("dbsize"));
}

TEST_F(IntegrationCommands, FlushAllRefusesABadArgument) {
  EXPECT_EQ(c_.Call({"SET", "fx:a", "1"}), Status("OK"));
  EXPECT_EQ(c_.Call({"FLUSHALL", "x"}), kSyntax);
  EXPECT_EQ(c_.Call({"FLUSHDB", "x"}), kSyntax);
  EXPECT_EQ(c_.Call({"GET", "fx:a"}), Bulk("1"));
}

// Two arguments: a syntax error, as any argument but one SYNC or ASYNC.
TEST_F(IntegrationCommands, FlushAllTwoArgumentsAsRedis) {
  EXPECT_EQ(c_.Call({"FLUSHALL", "ASYNC", "SYNC"}), kSyntax);
  EXPECT_EQ(c_.Call({"FLUSHDB", "SYNC", "SYNC"}), kSyntax);
}

TEST_F(IntegrationCommands, Unlink) {
  EXPECT_EQ(c_.Call({"MSET", "ul:a", "1", "ul:b", "2"}), Status("OK"));
  EXPECT_EQ(c_.Call({"UNLINK", "ul:a", "ul:b", "ul:c"}), Int(2));
  EXPECT_EQ(c_.Call({"EXISTS", "ul:a", "ul:b"}), Int(0));
  EXPECT_EQ(c_.Call({"UNLINK"}), WrongArgs("unlink"));
}

// Keys never expire: TTL and friends say so, and every way to set an expiry is refused.
TEST_F(IntegrationCommands, TtlOfKeysThatNeverExpire) {
  EXPECT_EQ(c_.Call({"SET", "ttl:k", "v"}), Status("OK"));
  for (const char* cmd : {"TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"}) {
    EXPECT_EQ(c_.Call({cmd, "ttl:k"}), Int(-1)) << cmd;
    EXPECT_EQ(c_.Call({cmd, "ttl:missing"}), Int(-2)) << cmd;
  }
  EXPECT_EQ(c_.Call({"PERSIST", "ttl:k"}), Int(0));
  EXPECT_EQ(c_.Call({"PERSIST", "ttl:missing"}), Int(0));
  EXPECT_EQ(c_.Call({"TTL"}), WrongArgs("ttl"));
  EXPECT_EQ(c_.Call({"PTTL", "a", "b"}), WrongArgs("pttl"));
  EXPECT_EQ(c_.Call({"PERSIST"}), WrongArgs("persist"));
}

TEST_F(IntegrationCommands, ExpiryCommandsAreRefused) {
  const std::string refused = Err("ERR expiry is not supported: keys in raftkv do not expire");
  EXPECT_EQ(c_.Call({"SET", "exp:k", "v"}), Status("OK"));
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"SETEX", "exp:k", "10", "w"},
                                             {"PSETEX", "exp:k", "100", "w"},
                                             {"GETEX", "exp:k", "EX", "10"},
                                             {"EXPIRE", "exp:k", "10"},
                                             {"PEXPIRE", "exp:k", "100"},
                                             {"EXPIREAT", "exp:k", "4102444800"},
                                             {"PEXPIREAT", "exp:k", "4102444800000"},
                                             {"SETEX", "exp:new", "10", "w"}}) {
    EXPECT_EQ(c_.Call(args), refused) << args[0];
  }
  EXPECT_EQ(c_.Call({"GET", "exp:k"}), Bulk("v"));
  EXPECT_EQ(c_.Call({"TTL", "exp:k"}), Int(-1));
  EXPECT_EQ(c_.Call({"EXISTS", "exp:new"}), Int(0));
}

TEST_F(IntegrationCommands, Keys) {
  EXPECT_EQ(c_.Call({"MSET", "kp:b", "1", "kp:a", "1", "kp:c", "1", "kp:ab", "1"}), Status("OK"));
  // In key order (docs/commands.md).
  EXPECT_EQ(c_.Call({"KEYS", "kp:*"}),
            Array({Bulk("kp:a"), Bulk("kp:ab"), Bulk("kp:b"), Bulk("kp:c")}));
  EXPECT_EQ(c_.Call({"KEYS", "kp:?"}), Array({Bulk("kp:a"), Bulk("kp:b"), Bulk("kp:c")}));
  EXPECT_EQ(c_.Call({"KEYS", "kp:[ab]"}), Array({Bulk("kp:a"), Bulk("kp:b")}));
  EXPECT_EQ(c_.Call({"KEYS", "kp:[^a]"}), Array({Bulk("kp:b"), Bulk("kp:c")}));
  EXPECT_EQ(c_.Call({"KEYS", "kp:a*"}), Array({Bulk("kp:a"), Bulk("kp:ab")}));
  EXPECT_EQ(c_.Call({"KEYS", "kp\\:c"}), Array({Bulk("kp:c")}));
  EXPECT_EQ(c_.Call({"KEYS", "no-such-prefix:*"}), "*0\r\n");
  EXPECT_EQ(c_.Call({"KEYS"}), WrongArgs("keys"));
  EXPECT_EQ(c_.Call({"KEYS", "a", "b"}), WrongArgs("keys"));
}

TEST_F(IntegrationCommands, Scan) {
  std::vector<std::string> mset = {"MSET"};
  for (int i = 0; i < 25; i++) {
    mset.push_back("sc:" + std::to_string(i));
    mset.push_back("v");
  }
  ASSERT_EQ(c_.Call(mset), Status("OK"));
  std::map<std::string, int> seen;
  std::string cursor = "0";
  int calls = 0;
  do {
    ReplyPtr r = c_.Command({"SCAN", cursor, "MATCH", "sc:*", "COUNT", "7"});
    ASSERT_NE(r, nullptr) << c_.error();
    ASSERT_EQ(r->type, REDIS_REPLY_ARRAY) << Encode(r.get());
    ASSERT_EQ(r->elements, 2u);
    ASSERT_EQ(r->element[0]->type, REDIS_REPLY_STRING);
    cursor.assign(r->element[0]->str, r->element[0]->len);
    for (size_t i = 0; i < r->element[1]->elements; i++) {
      seen[std::string(r->element[1]->element[i]->str, r->element[1]->element[i]->len)]++;
    }
    ASSERT_LT(++calls, 10000) << "SCAN does not end";
  } while (cursor != "0");
  EXPECT_EQ(seen.size(), 25u);
  for (const auto& [key, times] : seen) {
    EXPECT_EQ(key.rfind("sc:", 0), 0u) << key;
    EXPECT_EQ(times, 1) << key;
  }
  // TYPE string finds strings; any other type finds nothing.
  ReplyPtr all = c_.Command({"SCAN", "0", "MATCH", "sc:1?", "COUNT", "100000", "TYPE", "string"});
  ASSERT_NE(all, nullptr);
  EXPECT_EQ(Encode(all.get()),
            Array({Bulk("0"), Array({Bulk("sc:10"), Bulk("sc:11"), Bulk("sc:12"), Bulk("sc:13"),
                                     Bulk("sc:14"), Bulk("sc:15"), Bulk("sc:16"), Bulk("sc:17"),
                                     Bulk("sc:18"), Bulk("sc:19")})}));
  EXPECT_EQ(c_.Call({"SCAN", "0", "MATCH", "sc:*", "COUNT", "100000", "TYPE", "hash"}),
            Array({Bulk("0"), "*0\r\n"}));

  EXPECT_EQ(c_.Call({"SCAN"}), WrongArgs("scan"));
  EXPECT_EQ(c_.Call({"SCAN", "abc"}), Err("ERR invalid cursor"));
  EXPECT_EQ(c_.Call({"SCAN", "18446744073709551616"}), Err("ERR invalid cursor"));
  EXPECT_EQ(c_.Call({"SCAN", "0", "COUNT", "0"}), kSyntax);
  EXPECT_EQ(c_.Call({"SCAN", "0", "COUNT", "abc"}), kNotInteger);
  EXPECT_EQ(c_.Call({"SCAN", "0", "FOO", "bar"}), kSyntax);
  EXPECT_EQ(c_.Call({"SCAN", "0", "MATCH"}), kSyntax);
  // A cursor this leader never issued.
  EXPECT_EQ(c_.Call({"SCAN", "987654321987"}).rfind("-ERR invalid cursor", 0), 0u);
}

TEST_F(IntegrationCommands, MultiExec) {
  EXPECT_EQ(c_.Call({"MULTI"}), Status("OK"));
  EXPECT_EQ(c_.Call({"SET", "mx:a", "1"}), Status("QUEUED"));
  EXPECT_EQ(c_.Call({"INCR", "mx:a"}), Status("QUEUED"));
  EXPECT_EQ(c_.Call({"GET", "mx:a"}), Status("QUEUED"));
  EXPECT_EQ(c_.Call({"MGET", "mx:a", "mx:none"}), Status("QUEUED"));
  EXPECT_EQ(c_.Call({"DEL", "mx:none"}), Status("QUEUED"));
  // Reads in the transaction see the writes queued before them.
  EXPECT_EQ(c_.Call({"EXEC"}),
            Array({Status("OK"), Int(2), Bulk("2"), Array({Bulk("2"), Nil()}), Int(0)}));
  EXPECT_EQ(c_.Call({"GET", "mx:a"}), Bulk("2"));

  // A command failing at run time gets its error in the array; the others apply.
  EXPECT_EQ(c_.Call({"SET", "mx:s", "abc"}), Status("OK"));
  EXPECT_EQ(c_.Call({"MULTI"}), Status("OK"));
  EXPECT_EQ(c_.Call({"INCR", "mx:s"}), Status("QUEUED"));
  EXPECT_EQ(c_.Call({"SET", "mx:t", "v"}), Status("QUEUED"));
  EXPECT_EQ(c_.Call({"EXEC"}), Array({kNotInteger, Status("OK")}));
  EXPECT_EQ(c_.Call({"GET", "mx:t"}), Bulk("v"));

  // An empty transaction.
  EXPECT_EQ(c_.Call({"MULTI"}), Status("OK"));
  EXPECT_EQ(c_.Call({"EXEC"}), "*0\r\n");

  // A nested MULTI is refused without aborting the transaction.
  EXPECT_EQ(c_.Call({"MULTI"}), Status("OK"));
  EXPECT_EQ(c_.Call({"MULTI"}), Err("ERR MULTI calls can not be nested"));
  EXPECT_EQ(c_.Call({"SET", "mx:n", "1"}), Status("QUEUED"));
  EXPECT_EQ(c_.Call({"EXEC"}), Array({Status("OK")}));
}

TEST_F(IntegrationCommands, MultiDiscardAndAbort) {
  EXPECT_EQ(c_.Call({"MULTI"}), Status("OK"));
  EXPECT_EQ(c_.Call({"SET", "md:d", "1"}), Status("QUEUED"));
  EXPECT_EQ(c_.Call({"DISCARD"}), Status("OK"));
  EXPECT_EQ(c_.Call({"GET", "md:d"}), Nil());

  const std::string abort = Err("EXECABORT Transaction discarded because of previous errors.");
  EXPECT_EQ(c_.Call({"MULTI"}), Status("OK"));
  EXPECT_EQ(c_.Call({"SET", "md:e"}), WrongArgs("set"));
  EXPECT_EQ(c_.Call({"SET", "md:f", "1"}), Status("QUEUED"));
  EXPECT_EQ(c_.Call({"EXEC"}), abort);
  EXPECT_EQ(c_.Call({"GET", "md:f"}), Nil());

  EXPECT_EQ(c_.Call({"MULTI"}), Status("OK"));
  EXPECT_EQ(c_.Call({"FOO"}).rfind("-ERR ", 0), 0u);
  EXPECT_EQ(c_.Call({"EXEC"}), abort);

  // KEYS, SCAN and DBSIZE cannot be queued (docs/commands.md).
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"KEYS", "*"}, {"SCAN", "0"}, {"DBSIZE"}}) {
    EXPECT_EQ(c_.Call({"MULTI"}), Status("OK"));
    EXPECT_EQ(c_.Call(args).rfind("-ERR ", 0), 0u) << args[0];
    EXPECT_EQ(c_.Call({"EXEC"}), abort) << args[0];
  }

  EXPECT_EQ(c_.Call({"EXEC"}), Err("ERR EXEC without MULTI"));
  EXPECT_EQ(c_.Call({"DISCARD"}), Err("ERR DISCARD without MULTI"));
  EXPECT_EQ(c_.Call({"MULTI", "x"}), WrongArgs("multi"));
  EXPECT_EQ(c_.Call({"PING"}), Status("PONG"));
}

TEST_F(IntegrationCommands, WatchIsRefused) {
  EXPECT_EQ(c_.Call({"WATCH", "w:k"}).rfind("-ERR WATCH is not supported", 0), 0u);
  EXPECT_EQ(c_.Call({"WATCH"}), WrongArgs("watch"));
  EXPECT_EQ(c_.Call({"UNWATCH"}), Status("OK"));
  EXPECT_EQ(c_.Call({"MULTI"}), Status("OK"));
  EXPECT_EQ(c_.Call({"WATCH", "w:k"}), Err("ERR WATCH inside MULTI is not allowed"));
  EXPECT_EQ(c_.Call({"DISCARD"}), Status("OK"));
}

// Inside MULTI an unknown command or a wrong number of arguments gets Redis's text and marks
// the transaction: EXEC aborts. An EXEC with arguments discards the transaction.
TEST_F(IntegrationCommands, MultiErrorsAsRedis) {
  const std::string abort = Err("EXECABORT Transaction discarded because of previous errors.");
  EXPECT_EQ(c_.Call({"MULTI"}), Status("OK"));
  EXPECT_EQ(c_.Call({"FOO", "a"}),
            Err("ERR unknown command 'FOO', with args beginning with: 'a' "));
  EXPECT_EQ(c_.Call({"DISCARD"}), Status("OK"));
  EXPECT_EQ(c_.Call({"UNWATCH", "x"}), WrongArgs("unwatch"));

  EXPECT_EQ(c_.Call({"MULTI"}), Status("OK"));
  EXPECT_EQ(c_.Call({"SET", "me:a", "1"}), Status("QUEUED"));
  EXPECT_EQ(c_.Call({"FOO", "a"}),
            Err("ERR unknown command 'FOO', with args beginning with: 'a' "));
  EXPECT_EQ(c_.Call({"EXEC"}), abort);
  EXPECT_EQ(c_.Call({"GET", "me:a"}), Nil());

  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"UNWATCH", "x"}, {"WATCH"}, {"MULTI", "x"}, {"DISCARD", "x"}, {"CLIENT", "FOO"}}) {
    EXPECT_EQ(c_.Call({"MULTI"}), Status("OK"));
    EXPECT_EQ(c_.Call(args).rfind("-ERR ", 0), 0u) << args[0];
    EXPECT_EQ(c_.Call({"EXEC"}), abort) << args[0];
  }

  EXPECT_EQ(c_.Call({"MULTI"}), Status("OK"));
  EXPECT_EQ(c_.Call({"SET", "me:b", "1"}), Status("QUEUED"));
  EXPECT_EQ(c_.Call({"EXEC", "x"}),
            Err("EXECABORT Transaction discarded because of: wrong number of arguments for "
                "'exec' command"));
  EXPECT_EQ(c_.Call({"EXEC"}), Err("ERR EXEC without MULTI"));
  EXPECT_EQ(c_.Call({"GET", "me:b"}), Nil());
}

// Connection commands inside MULTI: Redis queues them and runs them at EXEC; raftkv refuses
// them (docs/commands.md) and the transaction aborts.
TEST_F(IntegrationCommands, ConnectionCommandsAreRefusedInsideMulti) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"ping"}, {"echo", "x"}, {"unwatch"}, {"client", "ID"}, {"select", "0"}}) {
    EXPECT_EQ(c_.Call({"MULTI"}), Status("OK"));
    EXPECT_EQ(c_.Call(args), Err("ERR '" + args[0] + "' is not supported inside MULTI")) << args[0];
    EXPECT_EQ(c_.Call({"EXEC"}), Err("EXECABORT Transaction discarded because of previous errors."))
        << args[0];
  }
}

// ---- Counters ----

TEST_F(IntegrationCommands, IncrDecr) {
  EXPECT_EQ(c_.Call({"INCR", "n:a"}), Int(1));
  EXPECT_EQ(c_.Call({"INCR", "n:a"}), Int(2));
  EXPECT_EQ(c_.Call({"DECR", "n:a"}), Int(1));
  EXPECT_EQ(c_.Call({"INCRBY", "n:a", "10"}), Int(11));
  EXPECT_EQ(c_.Call({"DECRBY", "n:a", "5"}), Int(6));
  EXPECT_EQ(c_.Call({"INCRBY", "n:a", "-10"}), Int(-4));
  EXPECT_EQ(c_.Call({"DECRBY", "n:a", "-4"}), Int(0));
  EXPECT_EQ(c_.Call({"DECR", "n:b"}), Int(-1));
  EXPECT_EQ(c_.Call({"GET", "n:a"}), Bulk("0"));
  EXPECT_EQ(c_.Call({"SET", "n:c", "-7"}), Status("OK"));
  EXPECT_EQ(c_.Call({"INCR", "n:c"}), Int(-6));
  EXPECT_EQ(c_.Call({"GET", "n:c"}), Bulk("-6"));

  EXPECT_EQ(c_.Call({"INCR"}), WrongArgs("incr"));
  EXPECT_EQ(c_.Call({"INCR", "a", "b"}), WrongArgs("incr"));
  EXPECT_EQ(c_.Call({"DECR"}), WrongArgs("decr"));
  EXPECT_EQ(c_.Call({"INCRBY", "n:a"}), WrongArgs("incrby"));
  EXPECT_EQ(c_.Call({"INCRBY", "n:a", "1", "2"}), WrongArgs("incrby"));
  EXPECT_EQ(c_.Call({"DECRBY", "n:a"}), WrongArgs("decrby"));
}

TEST_F(IntegrationCommands, IncrOfANonInteger) {
  for (const char* value : {"abc", "1.0", " 1", "1 ", "01", "+1", "-0", "", "1e3",
                            "9223372036854775808", "-9223372036854775809"}) {
    EXPECT_EQ(c_.Call({"SET", "ni:k", value}), Status("OK"));
    EXPECT_EQ(c_.Call({"INCR", "ni:k"}), kNotInteger) << "'" << value << "'";
    EXPECT_EQ(c_.Call({"DECRBY", "ni:k", "2"}), kNotInteger) << "'" << value << "'";
    EXPECT_EQ(c_.Call({"GET", "ni:k"}), Bulk(value));
  }
  EXPECT_EQ(c_.Call({"SET", "ni:k", "5"}), Status("OK"));
  for (const char* amount :
       {"abc", "1.5", "", "+1", "01", "-0", " 1", "99999999999999999999", "9223372036854775808"}) {
    EXPECT_EQ(c_.Call({"INCRBY", "ni:k", amount}), kNotInteger) << "'" << amount << "'";
    EXPECT_EQ(c_.Call({"DECRBY", "ni:k", amount}), kNotInteger) << "'" << amount << "'";
  }
  EXPECT_EQ(c_.Call({"GET", "ni:k"}), Bulk("5"));
}

TEST_F(IntegrationCommands, IncrOverflow) {
  EXPECT_EQ(c_.Call({"SET", "of:max", "9223372036854775807"}), Status("OK"));
  EXPECT_EQ(c_.Call({"INCR", "of:max"}), kOverflow);
  EXPECT_EQ(c_.Call({"INCRBY", "of:max", "1"}), kOverflow);
  EXPECT_EQ(c_.Call({"DECRBY", "of:max", "-1"}), kOverflow);
  EXPECT_EQ(c_.Call({"GET", "of:max"}), Bulk("9223372036854775807"));
  EXPECT_EQ(c_.Call({"SET", "of:min", "-9223372036854775808"}), Status("OK"));
  EXPECT_EQ(c_.Call({"DECR", "of:min"}), kOverflow);
  EXPECT_EQ(c_.Call({"INCRBY", "of:min", "-1"}), kOverflow);
  EXPECT_EQ(c_.Call({"GET", "of:min"}), Bulk("-9223372036854775808"));
  EXPECT_EQ(c_.Call({"INCRBY", "of:min", "9223372036854775807"}), Int(-1));
  // The amount itself cannot be negated.
  EXPECT_EQ(c_.Call({"SET", "of:one", "1"}), Status("OK"));
  EXPECT_EQ(c_.Call({"DECRBY", "of:one", "-9223372036854775808"}),
            Err("ERR decrement would overflow"));
  EXPECT_EQ(c_.Call({"INCRBY", "of:one", "-9223372036854775808"}), Int(-9223372036854775807));
}

TEST_F(IntegrationCommands, IncrByFloat) {
  EXPECT_EQ(c_.Call({"INCRBYFLOAT", "fl:new", "3.14"}), Bulk("3.14"));
  EXPECT_EQ(c_.Call({"GET", "fl:new"}), Bulk("3.14"));
  struct Case {
    const char* value;
    const char* amount;
    const char* result;
  };
  for (const Case& c : {Case{"10.50", "0.1", "10.6"}, Case{"5.0e3", "2.0e2", "5200"},
                        Case{"1", "-1", "0"}, Case{"1.5", "1.5", "3"}, Case{"1", "1e3", "1001"},
                        Case{"3", "1.1e-10", "3.00000000011"}, Case{"-2", "0.5", "-1.5"}}) {
    EXPECT_EQ(c_.Call({"SET", "fl:k", c.value}), Status("OK"));
    EXPECT_EQ(c_.Call({"INCRBYFLOAT", "fl:k", c.amount}), Bulk(c.result))
        << c.value << " + " << c.amount;
    EXPECT_EQ(c_.Call({"GET", "fl:k"}), Bulk(c.result));
  }
  EXPECT_EQ(c_.Call({"SET", "fl:k", "1"}), Status("OK"));
  for (const char* amount : {"abc", "", "nan", "1.5x", " 1", "1 "}) {
    EXPECT_EQ(c_.Call({"INCRBYFLOAT", "fl:k", amount}), kNotFloat) << "'" << amount << "'";
  }
  EXPECT_EQ(c_.Call({"SET", "fl:bad", "abc"}), Status("OK"));
  EXPECT_EQ(c_.Call({"INCRBYFLOAT", "fl:bad", "1"}), kNotFloat);
  EXPECT_EQ(c_.Call({"GET", "fl:bad"}), Bulk("abc"));
  EXPECT_EQ(c_.Call({"GET", "fl:k"}), Bulk("1"));
  EXPECT_EQ(c_.Call({"INCRBYFLOAT", "fl:k"}), WrongArgs("incrbyfloat"));
  EXPECT_EQ(c_.Call({"INCRBYFLOAT", "fl:k", "1", "2"}), WrongArgs("incrbyfloat"));
}

// Numbers as Redis's strtold reads them: hexadecimal too; an infinite one is read, and the
// infinite result refused.
TEST_F(IntegrationCommands, IncrByFloatAsRedis) {
  EXPECT_EQ(c_.Call({"SET", "fi:k", "1"}), Status("OK"));
  EXPECT_EQ(c_.Call({"INCRBYFLOAT", "fi:k", "0x10"}), Bulk("17"));
  EXPECT_EQ(c_.Call({"INCRBYFLOAT", "fi:k", "inf"}),
            Err("ERR increment would produce NaN or Infinity"));
  EXPECT_EQ(c_.Call({"INCRBYFLOAT", "fi:k", "-inf"}),
            Err("ERR increment would produce NaN or Infinity"));
  EXPECT_EQ(c_.Call({"INCRBYFLOAT", "fi:k", "0x1p-1"}), Bulk("17.5"));
  EXPECT_EQ(c_.Call({"GET", "fi:k"}), Bulk("17.5"));
}

}  // namespace
}  // namespace raftkv_it
