// ParseConfig, RenderConfig and ConfigUsage: defaults and the default local cluster, files
// and flags (and which wins), redis.conf quoting and comments, every refusal with the key,
// line and text it names, and the round trip through RenderConfig.
#include "server/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

namespace server {
namespace {

namespace fs = std::filesystem;

GetEnvFn EnvOf(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

const GetEnvFn kNoEnv = EnvOf({});

std::string CwdPath(const std::string& name) {
  return (fs::current_path() / name).lexically_normal().string();
}

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) /
           ("raftkv_config_test_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes `text` to a file in the test's directory and returns its path.
  std::string WriteFile(const std::string& name, const std::string& text) {
    const fs::path path = dir_ / name;
    std::ofstream out(path, std::ios::binary);
    out << text;
    out.close();
    EXPECT_TRUE(out.good()) << path;
    return path.string();
  }

  // Parses `args`, expecting success.
  Config MustParse(const std::vector<std::string>& args, const GetEnvFn& env = kNoEnv) {
    Config c;
    common::Status s = ParseConfig(args, env, &c);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return c;
  }

  fs::path dir_;
};

std::vector<ClusterMember> LocalCluster(int base, int size) {
  std::vector<ClusterMember> members;
  for (int i = 1; i <= size; ++i) {
    members.push_back({static_cast<uint64_t>(i), "127.0.0.1", static_cast<uint16_t>(base + i),
                       static_cast<uint16_t>(base + 10000 + i)});
  }
  return members;
}

TEST_F(ConfigTest, BareNodeIdJoinsTheDefaultLocalCluster) {
  Config c = MustParse({"--node-id", "2"});
  EXPECT_EQ(c.node_id, 2u);
  EXPECT_EQ(c.cluster, LocalCluster(7000, 3));
  EXPECT_EQ(c.self().client_port, 7002);
  EXPECT_EQ(c.self().peer_port, 17002);
  EXPECT_EQ(c.port, 7002);
  EXPECT_EQ(c.cluster_id, "raftkv");
  EXPECT_EQ(c.cluster_secret, kDevelopmentClusterSecret);
  EXPECT_TRUE(IsDevelopmentSecret(c));
  EXPECT_EQ(c.dir, CwdPath("raftkv-node2"));
  EXPECT_EQ(c.bind, "127.0.0.1");
  EXPECT_EQ(c.loglevel, LogLevel::kNotice);
  EXPECT_EQ(c.logfile, "");
  EXPECT_EQ(c.requirepass, "");
  EXPECT_EQ(c.follower_mode, FollowerMode::kForward);
  EXPECT_EQ(c.enable_debug_command, DebugCommand::kNo);
  EXPECT_EQ(c.election_timeout_ms, 300u);
  EXPECT_EQ(c.heartbeat_ms, 50u);
  EXPECT_EQ(c.snapshot_entries, 10000u);
  EXPECT_EQ(c.min_free_disk_mb, 256u);
  EXPECT_EQ(c.maxclients, 10000u);
  EXPECT_EQ(c.timeout_seconds, 0u);
}

TEST_F(ConfigTest, BasePortComesFromTheEnvironment) {
  Config c = MustParse({"--node-id", "2"}, EnvOf({{"RAFTKV_BASE_PORT", "8000"}}));
  EXPECT_EQ(c.cluster, LocalCluster(8000, 3));
  EXPECT_EQ(c.self().client_port, 8002);
  EXPECT_EQ(c.self().peer_port, 18002);
  EXPECT_EQ(c.port, 8002);

  // Empty counts as unset.
  Config d = MustParse({"--node-id", "1"}, EnvOf({{"RAFTKV_BASE_PORT", ""}}));
  EXPECT_EQ(d.cluster, LocalCluster(7000, 3));

  // An explicit cluster ignores it.
  Config e = MustParse({"--node-id", "1", "--cluster", "1=127.0.0.1:7001:17001"},
                       EnvOf({{"RAFTKV_BASE_PORT", "not a number"}}));
  EXPECT_EQ(e.cluster, LocalCluster(7000, 1));
}

TEST_F(ConfigTest, ClusterSizeShapesTheDefaultCluster) {
  Config c = MustParse({"--node-id", "5", "--cluster-size", "5"});
  EXPECT_EQ(c.cluster, LocalCluster(7000, 5));
  EXPECT_EQ(c.port, 7005);
  Config one = MustParse({"--node-id", "1", "--cluster-size", "1"});
  EXPECT_EQ(one.cluster, LocalCluster(7000, 1));
  Config seven =
      MustParse({"--node-id", "7", "--cluster-size", "7"}, EnvOf({{"RAFTKV_BASE_PORT", "20000"}}));
  EXPECT_EQ(seven.cluster, LocalCluster(20000, 7));
}

TEST_F(ConfigTest, FullFile) {
  const std::string path = WriteFile("full.conf",
                                     "# raftkv node 3\n"
                                     "node-id 3\n"
                                     "cluster 3=10.0.0.3:6379:16379,1=10.0.0.1:6379:16379,"
                                     "2=db-2.example.com:6380:16380\n"
                                     "cluster-id prod-eu.1\n"
                                     "cluster-secret s3cr3t\n"
                                     "dir /var/lib/raftkv/node3/\n"
                                     "bind 0.0.0.0\n"
                                     "port 6400\n"
                                     "loglevel warning\n"
                                     "logfile /var/log/raftkv.log\n"
                                     "requirepass hunter2\n"
                                     "follower-mode moved\n"
                                     "enable-debug-command local\n"
                                     "election-timeout-ms 1500\n"
                                     "heartbeat-ms 500\n"
                                     "snapshot-entries 0\n"
                                     "snapshot-log-bytes 1048576\n"
                                     "snapshot-rate-bytes 0\n"
                                     "max-inflight-bytes 65536\n"
                                     "max-uncommitted-bytes 4194304\n"
                                     "max-apply-lag-bytes 0\n"
                                     "value-cache-bytes 0\n"
                                     "client-output-buffer-limit 1000000\n"
                                     "client-query-buffer-limit 2097152\n"
                                     "min-free-disk-mb 0\n"
                                     "maxclients 64\n"
                                     "timeout 300\n");
  Config c = MustParse({path});
  EXPECT_EQ(c.node_id, 3u);
  ASSERT_EQ(c.cluster.size(), 3u);
  EXPECT_EQ(c.cluster[0], (ClusterMember{1, "10.0.0.1", 6379, 16379}));  // sorted by id
  EXPECT_EQ(c.cluster[1], (ClusterMember{2, "db-2.example.com", 6380, 16380}));
  EXPECT_EQ(c.cluster[2], (ClusterMember{3, "10.0.0.3", 6379, 16379}));
  EXPECT_EQ(c.self().host, "10.0.0.3");
  EXPECT_EQ(c.cluster_id, "prod-eu.1");
  EXPECT_EQ(c.cluster_secret, "s3cr3t");
  EXPECT_FALSE(IsDevelopmentSecret(c));
  EXPECT_EQ(c.dir, "/var/lib/raftkv/node3");
  EXPECT_EQ(c.bind, "0.0.0.0");
  EXPECT_EQ(c.port, 6400);
  EXPECT_EQ(c.loglevel, LogLevel::kWarning);
  EXPECT_EQ(c.logfile, "/var/log/raftkv.log");
  EXPECT_EQ(c.requirepass, "hunter2");
  EXPECT_EQ(c.follower_mode, FollowerMode::kMoved);
  EXPECT_EQ(c.enable_debug_command, DebugCommand::kLocal);
  EXPECT_EQ(c.election_timeout_ms, 1500u);
  EXPECT_EQ(c.heartbeat_ms, 500u);
  EXPECT_EQ(c.snapshot_entries, 0u);
  EXPECT_EQ(c.snapshot_log_bytes, 1048576u);
  EXPECT_EQ(c.snapshot_rate_bytes, 0u);
  EXPECT_EQ(c.max_inflight_bytes, 65536u);
  EXPECT_EQ(c.max_uncommitted_bytes, 4194304u);
  EXPECT_EQ(c.max_apply_lag_bytes, 0u);
  EXPECT_EQ(c.value_cache_bytes, 0u);
  EXPECT_EQ(c.client_output_buffer_limit, 1000000u);
  EXPECT_EQ(c.client_query_buffer_limit, 2097152u);
  EXPECT_EQ(c.min_free_disk_mb, 0u);
  EXPECT_EQ(c.maxclients, 64u);
  EXPECT_EQ(c.timeout_seconds, 300u);
}

TEST_F(ConfigTest, FlagsOverrideTheFileAndTheLastValueWins) {
  const std::string path = WriteFile("node.conf",
                                     "node-id 1\n"
                                     "loglevel debug\n"
                                     "loglevel verbose\n"  // a later line wins, as in Redis
                                     "port 7101\n"
                                     "dir relative/data\n");
  Config from_file = MustParse({path});
  EXPECT_EQ(from_file.loglevel, LogLevel::kVerbose);
  EXPECT_EQ(from_file.port, 7101);
  EXPECT_EQ(from_file.dir, CwdPath("relative/data"));

  Config c = MustParse(
      {path, "--node-id", "3", "--loglevel", "warning", "--port", "7200", "--port", "7300"});
  EXPECT_EQ(c.node_id, 3u);  // the default cluster follows the flag's node-id
  EXPECT_EQ(c.self().client_port, 7003);
  EXPECT_EQ(c.loglevel, LogLevel::kWarning);
  EXPECT_EQ(c.port, 7300);
  EXPECT_EQ(c.dir, CwdPath("relative/data"));
}

TEST_F(ConfigTest, FlagValues) {
  // A value right after its flag may start with --; a key may take several arguments.
  Config c = MustParse({"--requirepass", "--not-a-flag", "--node-id", "2", "--cluster",
                        "1=127.0.0.1:7001:17001,2=127.0.0.1:7002:17002", "3=127.0.0.1:7003:17003",
                        "--logfile", ""});
  EXPECT_EQ(c.requirepass, "--not-a-flag");
  EXPECT_EQ(c.cluster, LocalCluster(7000, 3));
  EXPECT_EQ(c.logfile, "");
}

TEST_F(ConfigTest, QuotingAndComments) {
  const std::string path =
      WriteFile("quotes.conf",
                "# a comment\n"
                "   # an indented comment\n"
                "\n"
                "\t \n"
                "node-id 1\r\n"  // CRLF line ends
                "requirepass \"pass word\\twith \\\"quotes\\\" \\x41\\n\"\n"
                "logfile 'it\\'s here.log'\n"
                "cluster-secret a#b\n"  // '#' only starts a comment line
                "dir   \"/tmp/with space\"   \n"
                "cluster-id x\"y\"\n");  // a quote may open inside a word, as in Redis
  Config c = MustParse({path});
  EXPECT_EQ(c.requirepass, "pass word\twith \"quotes\" A\n");
  EXPECT_EQ(c.logfile, "it's here.log");
  EXPECT_EQ(c.cluster_secret, "a#b");
  EXPECT_EQ(c.dir, "/tmp/with space");
  EXPECT_EQ(c.cluster_id, "xy");

  // Empty quoted values.
  const std::string empty = WriteFile("empty.conf", "node-id 1\nrequirepass \"\"\nlogfile ''\n");
  Config e = MustParse({empty, "--requirepass", "x"});
  EXPECT_EQ(e.requirepass, "x");
  EXPECT_EQ(MustParse({empty}).logfile, "");
}

TEST_F(ConfigTest, KeysAndNamedValuesAreCaseInsensitive) {
  const std::string path = WriteFile("case.conf",
                                     "NODE-ID 2\n"
                                     "LogLevel DEBUG\n"
                                     "Follower-Mode Moved\n"
                                     "ENABLE-DEBUG-COMMAND Yes\n");
  Config c = MustParse({path, "--HeartBeat-MS", "50"});
  EXPECT_EQ(c.node_id, 2u);
  EXPECT_EQ(c.loglevel, LogLevel::kDebug);
  EXPECT_EQ(c.follower_mode, FollowerMode::kMoved);
  EXPECT_EQ(c.enable_debug_command, DebugCommand::kYes);
  EXPECT_EQ(c.heartbeat_ms, 50u);
  // Free-form values keep their case.
  EXPECT_EQ(MustParse({"--node-id", "1", "--requirepass", "MiXeD"}).requirepass, "MiXeD");
}

TEST_F(ConfigTest, IPv6Members) {
  Config c = MustParse({"--node-id", "1", "--bind", "::1", "--cluster",
                        "1=[::1]:7001:17001,2=[::1]:7002:17002,3=[fe80::1]:7001:17001"});
  EXPECT_EQ(c.self().host, "::1");
  EXPECT_EQ(c.cluster[2].host, "fe80::1");
  EXPECT_EQ(c.bind, "::1");
  EXPECT_NE(RenderConfig(c).find("1=[::1]:7001:17001,"), std::string::npos);
}

TEST_F(ConfigTest, MissingFileIsAnIOErrorNamingIt) {
  const std::string path = (dir_ / "nope.conf").string();
  Config c;
  common::Status s = ParseConfig({path, "--node-id", "1"}, kNoEnv, &c);
  EXPECT_EQ(s.code(), common::Status::Code::kIOError);
  EXPECT_NE(s.message().find(path), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("No such file"), std::string::npos) << s.ToString();

  s = ParseConfig({dir_.string()}, kNoEnv, &c);
  EXPECT_EQ(s.code(), common::Status::Code::kIOError);
  EXPECT_NE(s.message().find("directory"), std::string::npos) << s.ToString();
}

TEST_F(ConfigTest, ErrorsLeaveTheOutputUnchanged) {
  Config c = MustParse({"--node-id", "1"});
  const Config before = c;
  EXPECT_FALSE(ParseConfig({"--node-id", "2", "--port", "0"}, kNoEnv, &c).ok());
  EXPECT_EQ(c, before);
}

// One refusal: the arguments (a file's path is written as FILE), the file's text if any, and
// fragments its message must contain.
struct BadCase {
  std::string name;
  std::vector<std::string> args;
  std::string file;
  std::vector<std::string> fragments;
  std::map<std::string, std::string> env = {};
};

void PrintTo(const BadCase& bad, std::ostream* os) { *os << bad.name; }

class ConfigErrorTest : public ConfigTest, public ::testing::WithParamInterface<BadCase> {};

TEST_P(ConfigErrorTest, IsRefusedWithAClearMessage) {
  const BadCase& bad = GetParam();
  std::vector<std::string> args = bad.args;
  std::string path;
  if (!bad.file.empty()) {
    path = WriteFile("bad.conf", bad.file);
    for (std::string& a : args) {
      if (a == "FILE") a = path;
    }
  }
  Config c;
  common::Status s = ParseConfig(args, EnvOf(bad.env), &c);
  ASSERT_FALSE(s.ok()) << RenderConfig(c);
  EXPECT_EQ(s.code(), common::Status::Code::kInvalidArgument) << s.ToString();
  for (std::string fragment : bad.fragments) {
    if (fragment.find("FILE") != std::string::npos)
      fragment.replace(fragment.find("FILE"), 4, path);
    EXPECT_NE(s.message().find(fragment), std::string::npos)
        << "missing '" << fragment << "' in: " << s.message();
  }
}

std::vector<BadCase> BadCases() {
  const std::vector<std::string> n1 = {"--node-id", "1"};
  auto with = [&n1](std::vector<std::string> more) {
    std::vector<std::string> all = n1;
    all.insert(all.end(), more.begin(), more.end());
    return all;
  };
  return {
      // Syntax.
      {"UnknownKeyInFile",
       {"FILE"},
       "node-id 1\n# comment\nfoo bar\n",
       {"line 3 of 'FILE' >>> 'foo bar'", "unknown key 'foo'"}},
      {"UnknownFlag",
       with({"--no-such-key", "1"}),
       "",
       {"the command line >>> '--no-such-key 1'", "unknown key 'no-such-key'"}},
      {"TooManyArguments",
       {"FILE"},
       "node-id 1\nport 7001 7002\n",
       {"line 2 of 'FILE' >>> 'port 7001 7002'", "wrong number of arguments for 'port'"}},
      {"KeyWithoutValueInFile", {"FILE"}, "node-id 1\nloglevel\n", {"line 2", "wrong number"}},
      {"FlagWithoutValue", {"--port", "7001", "--node-id"}, "", {"'--node-id'", "wrong number"}},
      {"UnterminatedQuote",
       {"FILE"},
       "node-id 1\nrequirepass \"abc\n",
       {"line 2 of 'FILE' >>> 'requirepass \"abc'", "unbalanced quotes"}},
      {"ClosingQuoteNotFollowedByBlank",
       {"FILE"},
       "requirepass 'a'b\n",
       {"line 1", "unbalanced quotes"}},
      {"DoubleQuoteFollowedByWord",
       {"FILE"},
       "node-id 1\nrequirepass \"a\"b\n",
       {"line 2 of 'FILE' >>> 'requirepass \"a\"b'", "unbalanced quotes"}},
      {"SecondPositionalArgument",
       {"FILE", "other.conf"},
       "node-id 1\n",
       {"'other.conf'", "only the first argument may name a config file"}},
      {"BareDoubleDash", {"--node-id", "1", "--", "x"}, "", {"expected --name value"}},
      // node-id.
      {"MissingNodeId", {"--port", "7001"}, "", {"node-id is required"}},
      {"NodeIdZero", {"--node-id", "0"}, "", {"node-id must be between 1 and"}},
      {"NodeIdNotANumber", {"--node-id", "two"}, "", {"'--node-id two'", "must be an integer"}},
      {"NodeIdNegative", {"--node-id", "-1"}, "", {"node-id must be between 1 and"}},
      {"NodeIdTrailingGarbage", {"--node-id", "1x"}, "", {"must be an integer, not '1x'"}},
      {"NodeOutsideTheDefaultCluster",
       {"--node-id", "4"},
       "",
       {"'--node-id 4'", "default local cluster of 3 nodes", "cluster-size"}},
      {"NodeOutsideTheSizedDefaultCluster",
       {"--node-id", "6", "--cluster-size", "5"},
       "",
       {"default local cluster of 5 nodes"}},
      {"NodeNotInCluster",
       {"--node-id", "9", "--cluster", "1=h:1:2,2=h:3:4,3=h:5:6"},
       "",
       {"'--node-id 9'", "node 9 is not a member of cluster (ids 1, 2, 3)"}},
      // cluster-size.
      {"ClusterSizeZero",
       {"--node-id", "1", "--cluster-size", "0"},
       "",
       {"cluster-size must be between 1 and 7"}},
      {"ClusterSizeEight",
       {"--node-id", "1", "--cluster-size", "8"},
       "",
       {"cluster-size must be between 1 and 7"}},
      {"ClusterSizeDisagreesWithCluster",
       {"FILE", "--cluster-size", "5"},
       "node-id 1\ncluster 1=h:1:2,2=h:3:4,3=h:5:6\n",
       {"'--cluster-size 5'", "does not match the 3 members of cluster", "line 2 of 'FILE'"}},
      // cluster syntax and consistency.
      {"ClusterMemberWithoutEquals",
       with({"--cluster", "1=h:1:2,2h:3:4"}),
       "",
       {"cluster member '2h:3:4' has no '='"}},
      {"ClusterMemberWithoutPorts", with({"--cluster", "1=h"}), "", {"'1=h' has no ports"}},
      {"ClusterMemberWithoutPeerPort",
       with({"--cluster", "1=h:7001"}),
       "",
       {"'1=h:7001' has no peer port"}},
      {"ClusterMemberIdZero",
       with({"--cluster", "0=h:1:2"}),
       "",
       {"cluster member id must be between 1 and"}},
      {"ClusterMemberIdNotANumber",
       with({"--cluster", "one=h:1:2"}),
       "",
       {"cluster member id must be an integer, not 'one'"}},
      {"ClusterPortOutOfRange",
       with({"--cluster", "1=h:70000:2"}),
       "",
       {"cluster client port must be between 1 and 65535 inclusive in '1=h:70000:2'"}},
      {"ClusterPeerPortNotANumber",
       with({"--cluster", "1=h:1:x"}),
       "",
       {"cluster peer port must be an integer, not 'x'"}},
      {"ClusterBadHost", with({"--cluster", "1=bad_host!:1:2"}), "", {"invalid host 'bad_host!'"}},
      {"ClusterBadIPv4", with({"--cluster", "1=300.1.2.3:1:2"}), "", {"invalid host '300.1.2.3'"}},
      {"ClusterEmptyHost", with({"--cluster", "1=:1:2"}), "", {"invalid host ''"}},
      {"ClusterBadIPv6",
       with({"--cluster", "1=[zz::1]:1:2"}),
       "",
       {"invalid IPv6 address 'zz::1'"}},
      {"ClusterUnterminatedIPv6",
       with({"--cluster", "1=[::1:1:2"}),
       "",
       {"unterminated [IPv6 address]"}},
      {"ClusterTrailingComma", with({"--cluster", "1=h:1:2,"}), "", {"empty member"}},
      {"ClusterDuplicateId",
       with({"--cluster", "1=h:1:2,1=g:3:4"}),
       "",
       {"'--cluster 1=h:1:2,1=g:3:4'", "cluster lists node id 1 twice"}},
      {"ClusterPortClash",
       {"FILE"},
       "node-id 1\ncluster 1=127.0.0.1:7001:17001,2=127.0.0.1:17001:17002\n",
       {"line 2 of 'FILE'", "cluster uses 127.0.0.1:17001 twice",
        "the peer port of node 1 and the client port of node 2"}},
      {"ClusterClientEqualsPeer",
       with({"--cluster", "1=h:5:5"}),
       "",
       {"cluster uses h:5 twice: the client port of node 1 and the peer port of node 1"}},
      // port.
      {"PortZero", with({"--port", "0"}), "", {"port must be between 1 and 65535 inclusive"}},
      {"PortTooLarge",
       {"FILE"},
       "node-id 1\n\nport 99999\n",
       {"line 3 of 'FILE' >>> 'port 99999': port must be between 1 and 65535 inclusive"}},
      {"PortClashesWithOwnPeerPort",
       with({"--port", "17001"}),
       "",
       {"'--port 17001'", "clashes with the peer port of node 1"}},
      {"ErrorNamesTheLastOccurrence",
       {"FILE", "--port", "17001"},
       "node-id 1\nport 7001\n",
       {"the command line >>> '--port 17001'", "clashes with the peer port of node 1"}},
      {"PortClashesWithAnotherNode",
       with({"--port", "7002"}),
       "",
       {"clashes with the client port of node 2 (2=127.0.0.1:7002:17002)"}},
      // Other values.
      {"EmptySecret", with({"--cluster-secret", ""}), "", {"cluster-secret must not be empty"}},
      {"EmptyClusterId", with({"--cluster-id", ""}), "", {"cluster-id must be 1 to 64"}},
      {"ClusterIdWithSpace", with({"--cluster-id", "a b"}), "", {"not 'a b'"}},
      {"EmptyDir", {"FILE"}, "node-id 1\ndir \"\"\n", {"line 2", "dir must not be empty"}},
      {"BindHostname",
       with({"--bind", "localhost"}),
       "",
       {"bind must be a numeric IPv4 or IPv6 address, not 'localhost'"}},
      {"BindTwoAddresses", with({"--bind", "127.0.0.1", "::1"}), "", {"wrong number"}},
      {"BadLogLevel",
       with({"--loglevel", "loud"}),
       "",
       {"loglevel must be one of debug, verbose, notice, warning, not 'loud'"}},
      {"BadFollowerMode",
       with({"--follower-mode", "proxy"}),
       "",
       {"follower-mode must be one of forward, moved"}},
      {"BadDebugCommand",
       with({"--enable-debug-command", "true"}),
       "",
       {"enable-debug-command must be one of no, yes, local, not 'true'"}},
      {"ElectionBelowThreeHeartbeats",
       with({"--election-timeout-ms", "250", "--heartbeat-ms", "100"}),
       "",
       {"'--election-timeout-ms 250'",
        "election-timeout-ms (250) must be at least 3 * "
        "heartbeat-ms (3 * 100)"}},
      {"HeartbeatAboveAThirdOfTheDefaultElection",
       with({"--heartbeat-ms", "400"}),
       "",
       {"'--heartbeat-ms 400'", "at least 3 * heartbeat-ms (3 * 400)"}},
      {"HeartbeatZero", with({"--heartbeat-ms", "0"}), "", {"heartbeat-ms must be between 1"}},
      {"ElectionTooLarge",
       with({"--election-timeout-ms", "99999999"}),
       "",
       {"election-timeout-ms must be between 3 and 3600000"}},
      {"SnapshotEntriesNotANumber",
       with({"--snapshot-entries", "lots"}),
       "",
       {"snapshot-entries must be an integer"}},
      {"DebugUnsafeUnknown",
       with({"--debug-unsafe", "sometimes", "--enable-debug-command", "yes"}),
       "",
       {"debug-unsafe"}},
      {"DebugUnsafeWithoutDebugCommands",
       with({"--debug-unsafe", "no-dedup"}),
       "",
       {"debug-unsafe no-dedup needs enable-debug-command yes or local"}},
      {"MinFreeDiskNegative",
       with({"--min-free-disk-mb", "-5"}),
       "",
       {"min-free-disk-mb must be between 0 and"}},
      {"MaxClientsZero", with({"--maxclients", "0"}), "", {"maxclients must be between 1"}},
      {"InflightBytesTooSmall",
       with({"--max-inflight-bytes", "100"}),
       "",
       {"max-inflight-bytes must be between 65536 and"}},
      {"UncommittedBytesZero",
       with({"--max-uncommitted-bytes", "0"}),
       "",
       {"max-uncommitted-bytes must be between 65536 and"}},
      {"QueryBufferLimitBelowRedisMinimum",
       with({"--client-query-buffer-limit", "1000"}),
       "",
       {"client-query-buffer-limit must be between 1048576 and"}},
      {"SnapshotRateTooSlow",
       with({"--snapshot-rate-bytes", "1000"}),
       "",
       {"snapshot-rate-bytes must be 0 (no limit) or between 65536 and 1099511627776 inclusive"}},
      {"SnapshotLogBytesTiny",
       with({"--snapshot-log-bytes", "1"}),
       "",
       {"snapshot-log-bytes must be 0 (no limit) or between 1048576 and"}},
      {"SnapshotLogBytesNegative",
       with({"--snapshot-log-bytes", "-1"}),
       "",
       {"snapshot-log-bytes must be 0 (no limit) or between 1048576 and"}},
      {"ValueCacheTooLarge",
       with({"--value-cache-bytes", "2199023255552"}),
       "",
       {"value-cache-bytes must be between 0 and 1099511627776"}},
      {"ValueCacheNotANumber",
       with({"--value-cache-bytes", "64mb"}),
       "",
       {"value-cache-bytes must be an integer"}},
      {"SnapshotRateNotANumber",
       with({"--snapshot-rate-bytes", "64mb"}),
       "",
       {"snapshot-rate-bytes must be an integer"}},
      {"TimeoutNegative", with({"--timeout", "-1"}), "", {"timeout must be between 0 and"}},
      // The environment.
      {"BasePortNotANumber",
       n1,
       "",
       {"RAFTKV_BASE_PORT=abc", "must be an integer"},
       {{"RAFTKV_BASE_PORT", "abc"}}},
      {"BasePortTooHigh",
       n1,
       "",
       {"RAFTKV_BASE_PORT=60000", "must be between 0 and 55532"},
       {{"RAFTKV_BASE_PORT", "60000"}}},
  };
}

INSTANTIATE_TEST_SUITE_P(Refusals, ConfigErrorTest, ::testing::ValuesIn(BadCases()),
                         [](const ::testing::TestParamInfo<BadCase>& param) {
                           return param.param.name;
                         });

TEST_F(ConfigTest, RenderConfigRoundTrips) {
  const std::string path = WriteFile("full.conf",
                                     "node-id 2\n"
                                     "cluster 1=[::1]:7001:17001,2=node-2:7002:17002,"
                                     "3=10.1.1.3:7003:17003\n"
                                     "cluster-secret 'sp ace \"q\" \\\\ #'\n"
                                     "requirepass \"\\x01\\xff\\n\\t\\a\\b\\r\"\n"
                                     "logfile ''\n"
                                     "dir data/two\n"
                                     "loglevel verbose\n"
                                     "follower-mode moved\n"
                                     "enable-debug-command local\n"
                                     "election-timeout-ms 3000\n"
                                     "heartbeat-ms 1000\n"
                                     "snapshot-entries 18446744073709551615\n"
                                     "min-free-disk-mb 1\n"
                                     "maxclients 1\n"
                                     "timeout 2147483647\n");
  const std::vector<Config> configs = {
      MustParse({path}),
      MustParse({"--node-id", "3"}, EnvOf({{"RAFTKV_BASE_PORT", "9000"}})),
      MustParse({"--node-id", "1", "--cluster-size", "7"}),
  };
  for (const Config& c : configs) {
    const std::string text = RenderConfig(c);
    const std::string rendered = WriteFile("rendered.conf", text);
    // The rendered cluster is explicit, so the environment no longer matters.
    Config again = MustParse({rendered}, EnvOf({{"RAFTKV_BASE_PORT", "1234"}}));
    EXPECT_EQ(again, c) << text;
    EXPECT_EQ(RenderConfig(again), text);
  }
  EXPECT_EQ(configs[0].requirepass, std::string("\x01\xff\n\t\a\b\r"));
  EXPECT_EQ(configs[0].cluster_secret, "sp ace \"q\" \\\\ #");  // no escapes in single quotes
}

TEST_F(ConfigTest, RenderConfigLines) {
  Config c = MustParse({"--node-id", "2", "--dir", "/data/n2"});
  EXPECT_EQ(RenderConfig(c),
            "node-id 2\n"
            "cluster 1=127.0.0.1:7001:17001,2=127.0.0.1:7002:17002,3=127.0.0.1:7003:17003\n"
            "cluster-id raftkv\n"
            "cluster-secret raftkv-development-secret\n"
            "dir /data/n2\n"
            "bind 127.0.0.1\n"
            "port 7002\n"
            "loglevel notice\n"
            "logfile \"\"\n"
            "requirepass \"\"\n"
            "follower-mode forward\n"
            "enable-debug-command no\n"
            "election-timeout-ms 300\n"
            "heartbeat-ms 50\n"
            "snapshot-entries 10000\n"
            "snapshot-keep-entries 1000\n"
            "snapshot-log-bytes 67108864\n"
            "snapshot-rate-bytes 67108864\n"
            "max-inflight-bytes 8388608\n"
            "max-uncommitted-bytes 67108864\n"
            "max-apply-lag-bytes 67108864\n"
            "value-cache-bytes 67108864\n"
            "client-output-buffer-limit 268435456\n"
            "client-query-buffer-limit 1073741824\n"
            "debug-unsafe none\n"
            "request-timeout-ms 5000\n"
            "max-entry-bytes 1572864\n"
            "min-free-disk-mb 256\n"
            "maxclients 10000\n"
            "timeout 0\n");
}

TEST_F(ConfigTest, UsageListsEveryKeyWithItsDefault) {
  const std::string usage = ConfigUsage();
  Config c = MustParse({"--node-id", "1"});
  for (const auto& [key, value] : ConfigEntries(c)) {
    EXPECT_NE(usage.find("  " + key + " "), std::string::npos) << key;
  }
  EXPECT_NE(usage.find("  cluster-size "), std::string::npos);
  for (const char* text :
       {"default: notice", "default: forward", "default: 300", "default: 50\n", "default: 10000\n",
        "default: 256", "default: 0", "default: 3", "default: raftkv", "default: 127.0.0.1",
        "default: (required)", "raftkv-node<node-id>"}) {
    EXPECT_NE(usage.find(text), std::string::npos) << text;
  }
}

}  // namespace
}  // namespace server
