// Config: everything a raftkv-server process is told at startup, and the parser that builds it
// from a redis.conf-style file and `--name value` flags, the way redis-server reads its own.
//
//   raftkv-server [/path/to/raftkv.conf] [--name value ...]
//
// File syntax (as redis.conf): one directive per line, `name arg...`; blank lines and lines
// whose first non-blank character is `#` are skipped (a `#` later on a line is an ordinary
// character). Arguments are split like Redis's sdssplitargs: on blanks, with "double quotes"
// (escapes \n \r \t \b \a \\ \" \xHH; any other escaped character stands for itself) and
// 'single quotes' (only \' is an escape); a closing quote must be followed by a blank or the
// end of the line. Keys are case-insensitive, and so are enumerated values (`no|yes|local`).
//
// Flags are appended to the file as if they were more lines, so they override it: `--name`
// starts a directive; the argument right after it is always its value (even when it starts
// with `--`, as in Redis 7), and further arguments up to the next `--...` are more values. A
// key given twice (in the file, on the command line or both) takes its last value, like
// Redis. Every key is described in docs/configuration.md and by ConfigUsage().
//
// Thread-safety: Config is a value. The functions are pure apart from ParseConfig reading the
// config file and the current directory; they may be called from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace server {

// The cluster secret used when none is configured. It is public (it is in the source), so it
// only keeps apart clusters that were never meant to talk: every real deployment sets its own
// `cluster-secret`. IsDevelopmentSecret tells the server when to warn about it.
inline constexpr std::string_view kDevelopmentClusterSecret = "raftkv-development-secret";

// The default local cluster: node i serves clients on 127.0.0.1:(B + i) and peers on
// 127.0.0.1:(B + kPeerPortOffset + i), with B read from kBasePortEnv (default kDefaultBasePort).
inline constexpr std::string_view kBasePortEnv = "RAFTKV_BASE_PORT";
inline constexpr int kDefaultBasePort = 7000;
inline constexpr int kPeerPortOffset = 10000;
inline constexpr int kDefaultClusterSize = 3;
inline constexpr int kMaxDefaultClusterSize = 7;

// Redis's log level names, most verbose first.
enum class LogLevel { kDebug, kVerbose, kNotice, kWarning };

// What a follower does with a client command (DESIGN.md, "Clients").
enum class FollowerMode {
  kForward,  // forward it to the leader and relay the reply
  kMoved,    // reply -MOVED <slot> <leader host>:<leader client port>
};

// Redis 7's enable-debug-command: whether the DEBUG / fault-injection commands exist.
enum class DebugCommand {
  kNo,     // refused for every client
  kYes,    // allowed for every client
  kLocal,  // allowed for clients connected over loopback only
};

// debug-unsafe: a deliberately broken node, to prove that the fault tests catch real bugs.
enum class DebugUnsafe {
  kNone,        // correct behaviour
  kStaleReads,  // a follower answers GET-like reads from its own state, without the leader
  kNoDedup,     // the leader proposes writes without their exactly-once session
};

// One member of the cluster: `id=host:client-port:peer-port` in the `cluster` key.
struct ClusterMember {
  uint64_t id = 0;           // the Raft node id, > 0, unique in the cluster
  std::string host;          // hostname, IPv4 or IPv6 address (without brackets)
  uint16_t client_port = 0;  // where this member serves Redis clients (-MOVED, CLUSTER replies)
  uint16_t peer_port = 0;    // where this member accepts connections from its peers

  bool operator==(const ClusterMember&) const = default;
};

// The effective configuration of one node. A Config returned by ParseConfig satisfies every
// rule documented here; one built by hand must be checked by the caller.
struct Config {
  // node-id: this node's Raft id; required. A member of `cluster`.
  uint64_t node_id = 0;

  // cluster: every member, sorted by id, this node included. Default (no `cluster` key): the
  // default local cluster of `cluster-size` members (ids 1..cluster-size, see kBasePortEnv).
  // No two members share an id, and no two ports on one host are the same.
  std::vector<ClusterMember> cluster;

  // cluster-id: a name every member must agree on; peers from another cluster are refused.
  // 1..64 characters from [A-Za-z0-9._-].
  std::string cluster_id = "raftkv";

  // cluster-secret: peers prove in their handshake that they hold it; it is never sent.
  // Never empty. The default is public: change it (see kDevelopmentClusterSecret).
  std::string cluster_secret = std::string(kDevelopmentClusterSecret);

  // dir: the data directory (LevelDB databases, snapshots), as an absolute, normalized path.
  // A relative path is taken from the current directory at startup. Default:
  // `<current directory>/raftkv-node<node-id>`. The parser neither creates nor checks it.
  std::string dir;

  // bind: the numeric IPv4 or IPv6 address both listeners (clients and peers) bind to.
  std::string bind = "127.0.0.1";

  // port: the client port this node listens on. Default: this node's client port in
  // `cluster`. Never equal to this node's peer port or to a port another member on the same
  // host uses.
  uint16_t port = 0;

  // loglevel: the least severe log messages written.
  LogLevel loglevel = LogLevel::kNotice;

  // logfile: the file log lines are appended to; empty: standard output.
  std::string logfile;

  // requirepass: the password clients must AUTH with; empty: no authentication.
  std::string requirepass;

  // follower-mode: forward (default) or moved.
  FollowerMode follower_mode = FollowerMode::kForward;

  // enable-debug-command: no (default), yes or local. Fault injection exists only when enabled.
  DebugCommand enable_debug_command = DebugCommand::kNo;

  // election-timeout-ms: a follower that hears no leader for a random time in
  // [election-timeout-ms, 2 * election-timeout-ms) starts an election.
  // Always >= 3 * heartbeat-ms.
  uint32_t election_timeout_ms = 300;

  // heartbeat-ms: how often a leader sends heartbeats; 1..60000.
  uint32_t heartbeat_ms = 50;

  // snapshot-entries: take a snapshot and compact the log once this many writes have been
  // applied since the last one (a batch entry counts its writes); 0: no write-count trigger (with
  // snapshot-log-bytes 0 as well, never automatically; RAFT.COMPACT still works).
  uint64_t snapshot_entries = 10000;

  // snapshot-keep-entries: how many applied writes the entries a compaction keeps in the log
  // hold, so that a follower that is a little behind catches up from the log rather than by
  // snapshot.
  uint64_t snapshot_keep_entries = 1000;

  // snapshot-log-bytes: also take a snapshot once the applied entries in the log hold this
  // many bytes (whichever of the two limits comes first), and keep at most half of it as the
  // tail for slow followers: the log's size in memory and on disk stays bounded whatever the
  // size of the entries. 0: no byte limit.
  uint64_t snapshot_log_bytes = uint64_t{64} << 20;
  // value-cache-bytes: the user values a node keeps in memory for reads (kv/value_cache.h);
  // 0: none.
  uint64_t value_cache_bytes = uint64_t{64} << 20;

  // snapshot-rate-bytes: the most bytes per second a leader sends in snapshot streams, all
  // followers together. 0: no limit.
  uint64_t snapshot_rate_bytes = uint64_t{64} << 20;

  // max-inflight-bytes: per follower, the most entry bytes sent and not yet acknowledged.
  uint64_t max_inflight_bytes = uint64_t{8} << 20;

  // max-uncommitted-bytes: the leader refuses writes (-TRYAGAIN) while its entries waiting to
  // commit hold more than this many bytes.
  uint64_t max_uncommitted_bytes = uint64_t{64} << 20;

  // max-apply-lag-bytes: the leader refuses writes (-TRYAGAIN) while its entries committed and
  // not yet applied hold more than this many bytes (a slow disk or state machine). 0: no limit.
  uint64_t max_apply_lag_bytes = uint64_t{64} << 20;

  // client-output-buffer-limit: a client connection holding more reply bytes than this is
  // closed (the hard limit of Redis's normal class). 0: no limit.
  uint64_t client_output_buffer_limit = uint64_t{256} << 20;

  // client-query-buffer-limit: a client connection holding more unparsed input than this is
  // closed, as in Redis (1 MiB before authentication when requirepass is set).
  uint64_t client_query_buffer_limit = uint64_t{1} << 30;

  // debug-unsafe: none, or a way to break the node on purpose (tests only; needs
  // enable-debug-command yes or local).
  DebugUnsafe debug_unsafe = DebugUnsafe::kNone;

  // request-timeout-ms: a request whose outcome is still unknown after this long (a write
  // proposed but not applied, a read whose read point is not confirmed) is answered -TIMEOUT.
  uint32_t request_timeout_ms = 5000;

  // max-entry-bytes: the largest encoded command one write may propose (reliability plan
  // §4.3); larger ones are refused before proposing. 1024..64 MiB.
  uint64_t max_entry_bytes = 1572864;

  // min-free-disk-mb: writes are refused with -MISCONF while the file system holding `dir` has
  // less free space than this many MiB (never proposed). 0: no check.
  uint64_t min_free_disk_mb = 256;

  // maxclients: the most client connections served at once; more are refused with Redis's
  // "-ERR max number of clients reached". Peer connections do not count.
  uint32_t maxclients = 10000;

  // timeout: close a client connection idle for this many seconds; 0: never.
  uint32_t timeout_seconds = 0;

  // This node's entry in `cluster`. REQUIRES: node_id is a member of cluster.
  const ClusterMember& self() const;

  bool operator==(const Config&) const = default;
};

// Looks up an environment variable: its value, or nullopt when it is unset.
using GetEnvFn = std::function<std::optional<std::string>(std::string_view name)>;

// GetEnvFn for the process environment (::getenv).
std::optional<std::string> GetProcessEnv(std::string_view name);

// Builds the configuration from the program's arguments (argv without argv[0]), like
// redis-server: an optional first argument that does not start with `--` names a config file,
// read first; then `--name value...` flags, applied after it. Keys left unset take their
// defaults; `getenv` is asked for kBasePortEnv only when the default cluster is built (an
// empty value counts as unset).
//
// On success stores the configuration in *out and returns OK. Otherwise *out is unchanged and
// the result is:
//  - IOError naming the file when the config file cannot be read (or exceeds 1 MiB);
//  - InvalidArgument for anything wrong in what was read: an unknown key, a wrong number of
//    arguments, unbalanced quotes, a value out of range or not among the allowed ones, a
//    malformed `cluster` (bad syntax, duplicate id, two ports clashing on one host), a node
//    that is not a member of the cluster, `port` clashing, election-timeout-ms below
//    3 * heartbeat-ms, a missing node-id. The message names the key, where it came from
//    ("line N of 'file'" or "the command line") and the offending text:
//      line 3 of 'raftkv.conf' >>> 'port 99999': port must be between 1 and 65535 inclusive
common::Status ParseConfig(const std::vector<std::string>& args, const GetEnvFn& getenv,
                           Config* out);

// Every key with its allowed values and default, one per line, for `raftkv-server --help`.
std::string ConfigUsage();

// The effective configuration as (key, value) pairs in the order of ConfigUsage, values
// unquoted (as CONFIG GET returns them). `cluster` is always explicit; `cluster-size` is not
// listed (it only shapes the default cluster). Includes the secrets (cluster-secret,
// requirepass) as they are.
std::vector<std::pair<std::string, std::string>> ConfigEntries(const Config& config);

// The effective configuration as redis.conf lines, values quoted where needed. For a Config
// returned by ParseConfig, parsing the text again (from a file) yields an equal Config.
// Includes the secrets as they are: the caller decides who may see it.
std::string RenderConfig(const Config& config);

// Names as written in the configuration ("notice", "moved", "local", ...).
std::string_view LogLevelName(LogLevel level);
std::string_view FollowerModeName(FollowerMode mode);
std::string_view DebugCommandName(DebugCommand mode);
std::string_view DebugUnsafeName(DebugUnsafe mode);

// Whether `config` still uses the public development secret (the server warns at startup).
inline bool IsDevelopmentSecret(const Config& config) {
  return config.cluster_secret == kDevelopmentClusterSecret;
}

}  // namespace server
