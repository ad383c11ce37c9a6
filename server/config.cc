#include "server/config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <system_error>

#include "common/check.h"
#include "common/strings.h"

namespace server {
namespace {

constexpr size_t kMaxConfigFileBytes = 1 << 20;
constexpr size_t kMaxClusterIdChars = 64;
constexpr size_t kMaxHostChars = 253;

// ---- Text helpers ----

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return common::AsciiLower(a) == common::AsciiLower(b);
}

bool IsBlank(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsBlank(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsBlank(s.back())) s.remove_suffix(1);
  return s;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Splits a configuration line into arguments with the rules of Redis's sdssplitargs (see
// config.h). Returns false on an unterminated quote or a closing quote followed by something
// other than a blank.
bool SplitArgs(std::string_view line, std::vector<std::string>* out) {
  out->clear();
  size_t i = 0;
  const size_t n = line.size();
  while (true) {
    while (i < n && IsBlank(line[i])) ++i;
    if (i == n) return true;
    std::string current;
    enum class Quote { kNone, kDouble, kSingle } quote = Quote::kNone;
    bool done = false;
    while (!done) {
      if (quote == Quote::kDouble) {
        if (i == n) return false;  // unterminated
        char c = line[i];
        if (c == '\\' && i + 3 < n && line[i + 1] == 'x' && HexValue(line[i + 2]) >= 0 &&
            HexValue(line[i + 3]) >= 0) {
          current.push_back(static_cast<char>(HexValue(line[i + 2]) * 16 + HexValue(line[i + 3])));
          i += 4;
        } else if (c == '\\' && i + 1 < n) {
          char e = line[i + 1];
          switch (e) {
            case 'n':
              e = '\n';
              break;
            case 'r':
              e = '\r';
              break;
            case 't':
              e = '\t';
              break;
            case 'b':
              e = '\b';
              break;
            case 'a':
              e = '\a';
              break;
            default:
              break;
          }
          current.push_back(e);
          i += 2;
        } else if (c == '"') {
          ++i;
          if (i < n && !IsBlank(line[i])) return false;  // "foo"bar
          done = true;
        } else {
          current.push_back(c);
          ++i;
        }
      } else if (quote == Quote::kSingle) {
        if (i == n) return false;
        char c = line[i];
        if (c == '\\' && i + 1 < n && line[i + 1] == '\'') {
          current.push_back('\'');
          i += 2;
        } else if (c == '\'') {
          ++i;
          if (i < n && !IsBlank(line[i])) return false;
          done = true;
        } else {
          current.push_back(c);
          ++i;
        }
      } else {
        if (i == n || IsBlank(line[i])) {
          done = true;
        } else if (line[i] == '"') {
          quote = Quote::kDouble;
          ++i;
        } else if (line[i] == '\'') {
          quote = Quote::kSingle;
          ++i;
        } else {
          current.push_back(line[i]);
          ++i;
        }
      }
    }
    out->push_back(std::move(current));
  }
}

// Quotes `s` for a configuration line when it would not read back as one argument as is
// (empty, blanks, quotes, backslashes, unprintable bytes): double quotes with escapes.
std::string QuoteArg(std::string_view s) {
  bool plain = !s.empty();
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= ' ' || u >= 0x7f || c == '"' || c == '\'' || c == '\\') plain = false;
  }
  if (plain) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\a':
        out += "\\a";
        break;
      case '\b':
        out += "\\b";
        break;
      default:
        if (u < ' ' || u >= 0x7f) {
          constexpr char kHex[] = "0123456789abcdef";
          out += "\\x";
          out.push_back(kHex[u >> 4]);
          out.push_back(kHex[u & 0xf]);
        } else {
          out.push_back(c);
        }
    }
  }
  out += "\"";
  return out;
}

std::string JoinQuoted(std::string_view head, const std::vector<std::string>& args) {
  std::string out(head);
  for (const std::string& a : args) {
    out += ' ';
    out += QuoteArg(a);
  }
  return out;
}

// ---- Value parsers: each returns "" on success or why the value is refused ----

std::string ParseUint(std::string_view key, std::string_view text, uint64_t min, uint64_t max,
                      uint64_t* out) {
  const std::string range = std::string(key) + " must be between " + std::to_string(min) + " and " +
                            std::to_string(max) + " inclusive";
  std::string_view digits = text;
  if (!digits.empty() && digits.front() == '-') {
    digits.remove_prefix(1);
    // A negative number is a number out of range, not garbage.
    if (!digits.empty() && std::all_of(digits.begin(), digits.end(), [](char c) {
          return std::isdigit(static_cast<unsigned char>(c));
        })) {
      return range;
    }
    return std::string(key) + " must be an integer, not '" + std::string(text) + "'";
  }
  uint64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec == std::errc::invalid_argument || ptr != end) {
    return std::string(key) + " must be an integer, not '" + std::string(text) + "'";
  }
  if (ec == std::errc::result_out_of_range || value < min || value > max) return range;
  *out = value;
  return "";
}

template <typename T>
std::string ParseNumber(std::string_view key, std::string_view text, uint64_t min, uint64_t max,
                        T* out) {
  uint64_t value = 0;
  std::string err = ParseUint(key, text, min, max, &value);
  if (err.empty()) *out = static_cast<T>(value);
  return err;
}

// ParseNumber for a limit that 0 turns off: 0, or min..max.
std::string ParseLimitOrZero(std::string_view key, std::string_view text, uint64_t min,
                             uint64_t max, uint64_t* out) {
  uint64_t value = 0;
  std::string err = ParseUint(key, text, 0, max, &value);
  if (!err.empty() && err.find(" must be between ") == std::string::npos) return err;
  if (!err.empty() || (value != 0 && value < min)) {
    return std::string(key) + " must be 0 (no limit) or between " + std::to_string(min) + " and " +
           std::to_string(max) + " inclusive";
  }
  *out = value;
  return "";
}

template <typename E>
struct EnumName {
  E value;
  std::string_view name;
};

constexpr EnumName<LogLevel> kLogLevels[] = {{LogLevel::kDebug, "debug"},
                                             {LogLevel::kVerbose, "verbose"},
                                             {LogLevel::kNotice, "notice"},
                                             {LogLevel::kWarning, "warning"}};
constexpr EnumName<FollowerMode> kFollowerModes[] = {{FollowerMode::kForward, "forward"},
                                                     {FollowerMode::kMoved, "moved"}};
constexpr EnumName<DebugCommand> kDebugCommands[] = {
    {DebugCommand::kNo, "no"}, {DebugCommand::kYes, "yes"}, {DebugCommand::kLocal, "local"}};
constexpr EnumName<DebugUnsafe> kDebugUnsafeModes[] = {{DebugUnsafe::kNone, "none"},
                                                       {DebugUnsafe::kStaleReads, "stale-reads"},
                                                       {DebugUnsafe::kNoDedup, "no-dedup"}};

template <typename E, size_t N>
std::string ParseEnum(std::string_view key, std::string_view text, const EnumName<E> (&names)[N],
                      E* out) {
  std::string allowed;
  for (const auto& n : names) {
    if (EqualsIgnoreCase(text, n.name)) {
      *out = n.value;
      return "";
    }
    if (!allowed.empty()) allowed += ", ";
    allowed += n.name;
  }
  return std::string(key) + " must be one of " + allowed + ", not '" + std::string(text) + "'";
}

template <typename E, size_t N>
std::string_view EnumToName(E value, const EnumName<E> (&names)[N]) {
  for (const auto& n : names) {
    if (n.value == value) return n.name;
  }
  PANIC() << "enum value " << static_cast<int>(value) << " has no name";
  return "";
}

bool IsIPv4(const std::string& s) {
  in_addr a{};
  return inet_pton(AF_INET, s.c_str(), &a) == 1;
}

bool IsIPv6(const std::string& s) {
  in6_addr a{};
  return inet_pton(AF_INET6, s.c_str(), &a) == 1;
}

// A host in `cluster`: a hostname or IPv4 address (letters, digits, '-', '.'; no empty label),
// or an IPv6 address (given in brackets, stored without).
bool IsValidHost(const std::string& host) {
  if (host.empty() || host.size() > kMaxHostChars) return false;
  if (host.find(':') != std::string::npos) return IsIPv6(host);
  bool numeric = true;
  char prev = '.';
  for (char c : host) {
    const bool alnum = std::isalnum(static_cast<unsigned char>(c)) != 0;
    if (!alnum && c != '-' && c != '.') return false;
    if (c == '.' && prev == '.') return false;  // empty label
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '-') numeric = false;
    prev = c;
  }
  if (prev == '.') return false;
  return !numeric || IsIPv4(host);
}

std::string FormatHostPort(const std::string& host, uint16_t port) {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string FormatMember(const ClusterMember& m) {
  return std::to_string(m.id) + "=" + FormatHostPort(m.host, m.client_port) + ":" +
         std::to_string(m.peer_port);
}

std::string FormatCluster(const std::vector<ClusterMember>& members) {
  std::string out;
  for (const ClusterMember& m : members) {
    if (!out.empty()) out += ',';
    out += FormatMember(m);
  }
  return out;
}

std::string MemberIds(const std::vector<ClusterMember>& members) {
  std::string out;
  for (const ClusterMember& m : members) {
    if (!out.empty()) out += ", ";
    out += std::to_string(m.id);
  }
  return out;
}

// Parses one `id=host:client-port:peer-port` item of `cluster`.
std::string ParseMember(std::string_view item, ClusterMember* out) {
  const std::string quoted = "'" + std::string(item) + "'";
  const std::string form = " (expected id=host:client-port:peer-port)";
  const size_t eq = item.find('=');
  if (eq == std::string_view::npos) return "cluster member " + quoted + " has no '='" + form;
  std::string err = ParseUint("cluster member id", item.substr(0, eq), 1,
                              std::numeric_limits<uint64_t>::max(), &out->id);
  if (!err.empty()) return err + " in " + quoted;
  std::string_view rest = item.substr(eq + 1);
  std::string_view ports;
  if (!rest.empty() && rest.front() == '[') {
    const size_t close = rest.find(']');
    if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
      return "cluster member " + quoted + " has an unterminated [IPv6 address]" + form;
    }
    out->host = std::string(rest.substr(1, close - 1));
    if (!IsIPv6(out->host)) {
      return "cluster member " + quoted + " has an invalid IPv6 address '" + out->host + "'";
    }
    ports = rest.substr(close + 2);
  } else {
    const size_t colon = rest.find(':');
    if (colon == std::string_view::npos) return "cluster member " + quoted + " has no ports" + form;
    out->host = std::string(rest.substr(0, colon));
    if (!IsValidHost(out->host)) {
      return "cluster member " + quoted + " has an invalid host '" + out->host + "'";
    }
    ports = rest.substr(colon + 1);
  }
  const size_t colon = ports.find(':');
  if (colon == std::string_view::npos) {
    return "cluster member " + quoted + " has no peer port" + form;
  }
  err = ParseNumber("cluster client port", ports.substr(0, colon), 1, 65535, &out->client_port);
  if (err.empty()) {
    err = ParseNumber("cluster peer port", ports.substr(colon + 1), 1, 65535, &out->peer_port);
  }
  if (!err.empty()) return err + " in " + quoted;
  return "";
}

// Refuses two members with one id, and two ports (client or peer, of any members) on one host.
std::string CheckMembers(const std::vector<ClusterMember>& members) {
  std::set<uint64_t> ids;
  std::map<std::pair<std::string, uint16_t>, std::string> used;  // (host, port) -> user
  for (const ClusterMember& m : members) {
    if (!ids.insert(m.id).second) return "cluster lists node id " + std::to_string(m.id) + " twice";
    const std::string host = common::AsciiLower(m.host);
    const std::pair<uint16_t, const char*> ports[] = {{m.client_port, "client"},
                                                      {m.peer_port, "peer"}};
    for (const auto& [port, kind] : ports) {
      const std::string user = "the " + std::string(kind) + " port of node " + std::to_string(m.id);
      auto [it, inserted] = used.emplace(std::make_pair(host, port), user);
      if (!inserted) {
        return "cluster uses " + FormatHostPort(m.host, port) + " twice: " + it->second + " and " +
               user;
      }
    }
  }
  return "";
}

std::string ParseClusterValue(const std::vector<std::string>& args,
                              std::vector<ClusterMember>* out) {
  std::vector<ClusterMember> members;
  for (const std::string& arg : args) {
    size_t start = 0;
    while (true) {
      const size_t comma = arg.find(',', start);
      const std::string_view item = std::string_view(arg).substr(
          start, comma == std::string::npos ? arg.size() - start : comma - start);
      if (item.empty()) return "cluster has an empty member in '" + arg + "'";
      ClusterMember m;
      std::string err = ParseMember(item, &m);
      if (!err.empty()) return err;
      members.push_back(std::move(m));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  std::string err = CheckMembers(members);
  if (!err.empty()) return err;
  std::sort(members.begin(), members.end(),
            [](const ClusterMember& a, const ClusterMember& b) { return a.id < b.id; });
  *out = std::move(members);
  return "";
}

// ---- The keys ----

// Where a directive came from, for error messages.
struct Origin {
  std::string where;  // "line 3 of 'raftkv.conf'" or "the command line"
  std::string text;   // the line as written, or the flag with its values
};

std::string Describe(const Origin& origin) { return origin.where + " >>> '" + origin.text + "'"; }

// The configuration while it is being read: values so far, plus which keys were given and
// where (the defaults that depend on other keys are filled in by Resolve).
struct Pending {
  Config config;
  int cluster_size = kDefaultClusterSize;
  std::map<std::string, Origin, std::less<>> origins;
};

using Args = std::vector<std::string>;

struct KeySpec {
  std::string_view name;
  std::string_view placeholder;  // for ConfigUsage
  std::string_view default_text;
  std::string_view help;
  bool many_args;  // takes one or more arguments (else exactly one)
  std::string (*apply)(const Args& args, Pending* p);
};

std::string NonEmpty(std::string_view key, const std::string& value, std::string* out) {
  if (value.empty()) return std::string(key) + " must not be empty";
  *out = value;
  return "";
}

const KeySpec kKeys[] = {
    {"node-id", "<id>", "(required)",
     "this node's id: a member of cluster (1..cluster-size in the default cluster)", false,
     [](const Args& a, Pending* p) {
       return ParseUint("node-id", a[0], 1, std::numeric_limits<uint64_t>::max(),
                        &p->config.node_id);
     }},
    {"cluster", "<id=host:client-port:peer-port,...>", "(the default local cluster)",
     "every member of the cluster, this node included", true,
     [](const Args& a, Pending* p) { return ParseClusterValue(a, &p->config.cluster); }},
    {"cluster-size", "<1..7>", "3",
     "members of the default cluster (when cluster is not set): ids 1..N on 127.0.0.1, "
     "client ports B+id, peer ports B+10000+id, B = $RAFTKV_BASE_PORT or 7000",
     false,
     [](const Args& a, Pending* p) {
       return ParseNumber("cluster-size", a[0], 1, kMaxDefaultClusterSize, &p->cluster_size);
     }},
    {"cluster-id", "<name>", "raftkv", "the cluster's name; peers must agree on it", false,
     [](const Args& a, Pending* p) -> std::string {
       const std::string& v = a[0];
       const bool ok_chars = std::all_of(v.begin(), v.end(), [](char c) {
         return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
       });
       if (v.empty() || v.size() > kMaxClusterIdChars || !ok_chars) {
         return "cluster-id must be 1 to 64 characters from A-Z a-z 0-9 . _ -, not '" + v + "'";
       }
       p->config.cluster_id = v;
       return "";
     }},
    {"cluster-secret", "<secret>", "raftkv-development-secret (public: change it)",
     "the secret peers prove they hold in their handshake; never sent", false,
     [](const Args& a, Pending* p) {
       return NonEmpty("cluster-secret", a[0], &p->config.cluster_secret);
     }},
    {"dir", "<path>", "<current directory>/raftkv-node<node-id>",
     "the data directory; a relative path is taken from the current directory", false,
     [](const Args& a, Pending* p) { return NonEmpty("dir", a[0], &p->config.dir); }},
    {"bind", "<address>", "127.0.0.1",
     "the numeric IPv4 or IPv6 address the client and peer listeners bind to", false,
     [](const Args& a, Pending* p) -> std::string {
       if (!IsIPv4(a[0]) && !IsIPv6(a[0])) {
         return "bind must be a numeric IPv4 or IPv6 address, not '" + a[0] + "'";
       }
       p->config.bind = a[0];
       return "";
     }},
    {"port", "<1..65535>", "(this node's client port in cluster)",
     "the port this node serves Redis clients on", false,
     [](const Args& a, Pending* p) {
       return ParseNumber("port", a[0], 1, 65535, &p->config.port);
     }},
    {"loglevel", "<debug|verbose|notice|warning>", "notice", "the least severe messages logged",
     false,
     [](const Args& a, Pending* p) {
       return ParseEnum("loglevel", a[0], kLogLevels, &p->config.loglevel);
     }},
    {"logfile", "<path>", "\"\" (standard output)", "the file log lines are appended to", false,
     [](const Args& a, Pending* p) -> std::string {
       p->config.logfile = a[0];
       return "";
     }},
    {"requirepass", "<password>", "\"\" (no authentication)", "the password clients must AUTH with",
     false,
     [](const Args& a, Pending* p) -> std::string {
       p->config.requirepass = a[0];
       return "";
     }},
    {"follower-mode", "<forward|moved>", "forward",
     "a follower forwards commands to the leader, or replies -MOVED", false,
     [](const Args& a, Pending* p) {
       return ParseEnum("follower-mode", a[0], kFollowerModes, &p->config.follower_mode);
     }},
    {"enable-debug-command", "<no|yes|local>", "no",
     "the DEBUG and fault-injection commands: off, for every client, or loopback clients only",
     false,
     [](const Args& a, Pending* p) {
       return ParseEnum("enable-debug-command", a[0], kDebugCommands,
                        &p->config.enable_debug_command);
     }},
    {"election-timeout-ms", "<3..3600000>", "300",
     "a follower hearing no leader for this long (randomized up to 2x) starts an election; "
     ">= 3 * heartbeat-ms",
     false,
     [](const Args& a, Pending* p) {
       return ParseNumber("election-timeout-ms", a[0], 3, 3600000, &p->config.election_timeout_ms);
     }},
    {"heartbeat-ms", "<1..60000>", "50", "how often a leader sends heartbeats", false,
     [](const Args& a, Pending* p) {
       return ParseNumber("heartbeat-ms", a[0], 1, 60000, &p->config.heartbeat_ms);
     }},
    {"snapshot-entries", "<n>", "10000",
     "snapshot and compact the log after this many applied writes; 0: no write-count trigger",
     false,
     [](const Args& a, Pending* p) {
       return ParseNumber("snapshot-entries", a[0], 0, std::numeric_limits<uint64_t>::max(),
                          &p->config.snapshot_entries);
     }},
    {"snapshot-keep-entries", "<n>", "1000",
     "how many applied writes a compaction leaves in the log for followers a little behind", false,
     [](const Args& a, Pending* p) {
       return ParseNumber("snapshot-keep-entries", a[0], 0, std::numeric_limits<uint64_t>::max(),
                          &p->config.snapshot_keep_entries);
     }},
    {"snapshot-log-bytes", "<bytes>", "67108864",
     "also snapshot once the applied entries in the log hold this many bytes, keeping at most "
     "half as the tail; 0: no byte limit",
     false,
     [](const Args& a, Pending* p) {
       return ParseLimitOrZero("snapshot-log-bytes", a[0], uint64_t{1} << 20, uint64_t{1} << 40,
                               &p->config.snapshot_log_bytes);
     }},
    {"snapshot-rate-bytes", "<bytes/s>", "67108864",
     "the most bytes per second a leader sends in snapshots, all followers together; 0: no limit",
     false,
     [](const Args& a, Pending* p) {
       return ParseLimitOrZero("snapshot-rate-bytes", a[0], 65536, uint64_t{1} << 40,
                               &p->config.snapshot_rate_bytes);
     }},
    {"max-inflight-bytes", "<bytes>", "8388608",
     "per follower, the most entry bytes sent and not yet acknowledged", false,
     [](const Args& a, Pending* p) {
       return ParseNumber("max-inflight-bytes", a[0], 65536, uint64_t{1} << 32,
                          &p->config.max_inflight_bytes);
     }},
    {"max-uncommitted-bytes", "<bytes>", "67108864",
     "refuse writes with -TRYAGAIN while the leader's uncommitted entries hold more", false,
     [](const Args& a, Pending* p) {
       return ParseNumber("max-uncommitted-bytes", a[0], 65536, uint64_t{1} << 40,
                          &p->config.max_uncommitted_bytes);
     }},
    {"max-apply-lag-bytes", "<bytes>", "67108864",
     "refuse writes with -TRYAGAIN while the leader's committed, unapplied entries hold more; "
     "0: no limit",
     false,
     [](const Args& a, Pending* p) {
       return ParseNumber("max-apply-lag-bytes", a[0], 0, uint64_t{1} << 40,
                          &p->config.max_apply_lag_bytes);
     }},
    {"value-cache-bytes", "<bytes>", "67108864",
     "keep the most recently used values in memory, up to this many bytes, so that reads of "
     "them skip the disk's tables; 0: no cache",
     false,
     [](const Args& a, Pending* p) {
       return ParseNumber("value-cache-bytes", a[0], 0, uint64_t{1} << 40,
                          &p->config.value_cache_bytes);
     }},
    {"client-output-buffer-limit", "<bytes>", "268435456",
     "close a client holding more reply bytes than this; 0: no limit", false,
     [](const Args& a, Pending* p) {
       return ParseNumber("client-output-buffer-limit", a[0], 0, uint64_t{1} << 40,
                          &p->config.client_output_buffer_limit);
     }},
    {"client-query-buffer-limit", "<bytes>", "1073741824",
     "close a client holding more unparsed input than this", false,
     [](const Args& a, Pending* p) {
       return ParseNumber("client-query-buffer-limit", a[0], 1 << 20, uint64_t{1} << 40,
                          &p->config.client_query_buffer_limit);
     }},
    {"debug-unsafe", "<none|stale-reads|no-dedup>", "none",
     "break the node on purpose, for fault tests only: followers serve reads from their own "
     "state, or writes lose their exactly-once session; needs enable-debug-command",
     false,
     [](const Args& a, Pending* p) {
       return ParseEnum("debug-unsafe", a[0], kDebugUnsafeModes, &p->config.debug_unsafe);
     }},
    {"request-timeout-ms", "<100..3600000>", "5000",
     "answer -TIMEOUT to a request whose outcome is still unknown after this long", false,
     [](const Args& a, Pending* p) {
       return ParseNumber("request-timeout-ms", a[0], 100, 3600000, &p->config.request_timeout_ms);
     }},
    {"max-entry-bytes", "<bytes>", "1572864",
     "largest command (one log entry) a write may propose; larger ones are refused", false,
     [](const Args& a, Pending* p) {
       return ParseNumber("max-entry-bytes", a[0], 1024, uint64_t{64} << 20,
                          &p->config.max_entry_bytes);
     }},
    {"min-free-disk-mb", "<MiB>", "256",
     "refuse writes with -MISCONF below this much free space in dir; 0: no check", false,
     [](const Args& a, Pending* p) {
       return ParseNumber("min-free-disk-mb", a[0], 0, uint64_t{1} << 40,
                          &p->config.min_free_disk_mb);
     }},
    {"maxclients", "<1..1000000>", "10000", "the most client connections at once", false,
     [](const Args& a, Pending* p) {
       return ParseNumber("maxclients", a[0], 1, 1000000, &p->config.maxclients);
     }},
    {"timeout", "<seconds>", "0", "close a client idle this long; 0: never", false,
     [](const Args& a, Pending* p) {
       return ParseNumber("timeout", a[0], 0, std::numeric_limits<int32_t>::max(),
                          &p->config.timeout_seconds);
     }},
};

const KeySpec* FindKey(std::string_view lower_name) {
  for (const KeySpec& k : kKeys) {
    if (k.name == lower_name) return &k;
  }
  return nullptr;
}

common::Status Invalid(const Origin& origin, std::string_view reason) {
  return common::Status::InvalidArgument(Describe(origin) + ": " + std::string(reason));
}

// Applies one directive `name args...` (a file line or a flag).
common::Status ApplyDirective(std::string_view name, const Args& args, Origin origin, Pending* p) {
  const std::string key = common::AsciiLower(name);
  const KeySpec* spec = FindKey(key);
  if (spec == nullptr) {
    return Invalid(origin, "unknown key '" + std::string(name) + "' (see --help)");
  }
  if (args.empty() || (!spec->many_args && args.size() != 1)) {
    return Invalid(origin, "wrong number of arguments for '" + key + "': expected " +
                               (spec->many_args ? "at least 1" : "1") + ", got " +
                               std::to_string(args.size()));
  }
  std::string err = spec->apply(args, p);
  if (!err.empty()) return Invalid(origin, err);
  p->origins.insert_or_assign(key, std::move(origin));
  return common::Status::OK();
}

common::Status ReadConfigFile(const std::string& path, Pending* p) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return common::Status::IOError("cannot read config file '" + path + "': it is a directory");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return common::Status::IOError("cannot open config file '" + path +
                                   "': " + std::generic_category().message(errno));
  }
  std::string text;
  char buf[8192];
  while (in.read(buf, sizeof(buf)) || in.gcount() > 0) {
    text.append(buf, static_cast<size_t>(in.gcount()));
    if (text.size() > kMaxConfigFileBytes) {
      return common::Status::IOError("config file '" + path + "' is larger than 1 MiB");
    }
  }
  if (in.bad()) return common::Status::IOError("cannot read config file '" + path + "'");

  size_t line_number = 0;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    ++line_number;
    const std::string_view line = Trim(std::string_view(text).substr(start, end - start));
    start = end + 1;
    if (line.empty() || line.front() == '#') continue;
    Origin origin{"line " + std::to_string(line_number) + " of '" + path + "'", std::string(line)};
    std::vector<std::string> words;
    if (!SplitArgs(line, &words)) return Invalid(origin, "unbalanced quotes");
    if (words.empty()) continue;
    const std::string name = words.front();
    words.erase(words.begin());
    common::Status s = ApplyDirective(name, words, std::move(origin), p);
    if (!s.ok()) return s;
  }
  return common::Status::OK();
}

bool IsFlag(const std::string& arg) { return arg.size() >= 2 && arg[0] == '-' && arg[1] == '-'; }

// Absolute and lexically normal, without a trailing separator.
common::Status AbsoluteDir(const std::string& dir, std::string* out) {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::absolute(dir, ec);
  if (ec) {
    return common::Status::IOError("cannot make dir '" + dir + "' absolute: " + ec.message());
  }
  p = p.lexically_normal();
  if (!p.has_filename() && p.has_relative_path()) p = p.parent_path();
  *out = p.string();
  return common::Status::OK();
}

// The default local cluster of `size` members on 127.0.0.1.
common::Status DefaultCluster(int size, const GetEnvFn& getenv, std::vector<ClusterMember>* out) {
  int base = kDefaultBasePort;
  std::optional<std::string> env = getenv ? getenv(kBasePortEnv) : std::nullopt;
  if (env.has_value() && !env->empty()) {
    const int max_base = 65535 - kPeerPortOffset - size;
    std::string err = ParseNumber(kBasePortEnv, *env, 0, static_cast<uint64_t>(max_base), &base);
    if (!err.empty()) {
      return common::Status::InvalidArgument(
          "environment >>> '" + std::string(kBasePortEnv) + "=" + *env + "': " + err +
          " (the default cluster of " + std::to_string(size) + " nodes needs ports up to base + " +
          std::to_string(kPeerPortOffset + size) + ")");
    }
  }
  out->clear();
  for (int i = 1; i <= size; ++i) {
    ClusterMember m;
    m.id = static_cast<uint64_t>(i);
    m.host = "127.0.0.1";
    m.client_port = static_cast<uint16_t>(base + i);
    m.peer_port = static_cast<uint16_t>(base + kPeerPortOffset + i);
    out->push_back(std::move(m));
  }
  return common::Status::OK();
}

// Fills in the defaults that depend on other keys and checks the rules that span keys.
common::Status Resolve(const GetEnvFn& getenv, Pending* p) {
  Config& c = p->config;
  const auto origin_of = [p](std::string_view key) -> const Origin* {
    auto it = p->origins.find(key);
    return it == p->origins.end() ? nullptr : &it->second;
  };

  const Origin* node_origin = origin_of("node-id");
  if (node_origin == nullptr) {
    return common::Status::InvalidArgument(
        "node-id is required: set it in the config file or pass --node-id <id>");
  }

  if (const Origin* cluster_origin = origin_of("cluster")) {
    const Origin* size_origin = origin_of("cluster-size");
    if (size_origin != nullptr && static_cast<size_t>(p->cluster_size) != c.cluster.size()) {
      return Invalid(*size_origin, "cluster-size " + std::to_string(p->cluster_size) +
                                       " does not match the " + std::to_string(c.cluster.size()) +
                                       " members of cluster (" + Describe(*cluster_origin) +
                                       "); cluster-size only shapes the default cluster");
    }
    const bool member = std::any_of(c.cluster.begin(), c.cluster.end(),
                                    [&c](const ClusterMember& m) { return m.id == c.node_id; });
    if (!member) {
      return Invalid(*node_origin, "node " + std::to_string(c.node_id) +
                                       " is not a member of cluster (ids " + MemberIds(c.cluster) +
                                       ")");
    }
  } else {
    if (c.node_id > static_cast<uint64_t>(p->cluster_size)) {
      return Invalid(*node_origin, "node " + std::to_string(c.node_id) +
                                       " is not a member of the default local cluster of " +
                                       std::to_string(p->cluster_size) + " nodes (ids 1.." +
                                       std::to_string(p->cluster_size) +
                                       "); set cluster-size (up to " +
                                       std::to_string(kMaxDefaultClusterSize) + ") or cluster");
    }
    common::Status s = DefaultCluster(p->cluster_size, getenv, &c.cluster);
    if (!s.ok()) return s;
  }
  const ClusterMember& self = c.self();

  if (const Origin* port_origin = origin_of("port")) {
    for (const ClusterMember& m : c.cluster) {
      if (!EqualsIgnoreCase(m.host, self.host)) continue;
      const bool own_client_port = m.id == self.id && c.port == m.client_port;
      if (!own_client_port && (c.port == m.client_port || c.port == m.peer_port)) {
        return Invalid(*port_origin, "port " + std::to_string(c.port) + " clashes with the " +
                                         (c.port == m.peer_port ? "peer" : "client") +
                                         " port of node " + std::to_string(m.id) + " (" +
                                         FormatMember(m) + ")");
      }
    }
  } else {
    c.port = self.client_port;
  }

  std::string dir = origin_of("dir") != nullptr ? c.dir : "raftkv-node" + std::to_string(c.node_id);
  common::Status s = AbsoluteDir(dir, &c.dir);
  if (!s.ok()) return s;

  if (static_cast<uint64_t>(c.election_timeout_ms) < 3 * static_cast<uint64_t>(c.heartbeat_ms)) {
    const Origin* o = origin_of("election-timeout-ms");
    if (o == nullptr) o = origin_of("heartbeat-ms");
    CHECK(o != nullptr) << "the defaults break election-timeout-ms >= 3 * heartbeat-ms";
    return Invalid(*o, "election-timeout-ms (" + std::to_string(c.election_timeout_ms) +
                           ") must be at least 3 * heartbeat-ms (3 * " +
                           std::to_string(c.heartbeat_ms) + ")");
  }
  if (c.debug_unsafe != DebugUnsafe::kNone && c.enable_debug_command == DebugCommand::kNo) {
    return Invalid(*origin_of("debug-unsafe"), "debug-unsafe " +
                                                   std::string(DebugUnsafeName(c.debug_unsafe)) +
                                                   " needs enable-debug-command yes or local");
  }
  return common::Status::OK();
}

}  // namespace

const ClusterMember& Config::self() const {
  for (const ClusterMember& m : cluster) {
    if (m.id == node_id) return m;
  }
  PANIC() << "node " << node_id << " is not a member of its cluster";
  return cluster.front();
}

std::optional<std::string> GetProcessEnv(std::string_view name) {
  const char* v = std::getenv(std::string(name).c_str());
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

common::Status ParseConfig(const std::vector<std::string>& args, const GetEnvFn& getenv,
                           Config* out) {
  Pending p;
  size_t i = 0;
  if (!args.empty() && !IsFlag(args[0])) {
    common::Status s = ReadConfigFile(args[0], &p);
    if (!s.ok()) return s;
    i = 1;
  }
  while (i < args.size()) {
    const std::string& flag = args[i];
    if (!IsFlag(flag) || flag.size() == 2) {
      return Invalid(Origin{"the command line", flag},
                     "expected --name value (only the first argument may name a config file)");
    }
    ++i;
    Args values;
    // As in Redis 7, the argument right after a flag is its value even if it starts with --.
    if (i < args.size()) values.push_back(args[i++]);
    while (i < args.size() && !IsFlag(args[i])) values.push_back(args[i++]);
    Origin origin{"the command line", JoinQuoted(flag, values)};
    common::Status s =
        ApplyDirective(std::string_view(flag).substr(2), values, std::move(origin), &p);
    if (!s.ok()) return s;
  }
  common::Status s = Resolve(getenv, &p);
  if (!s.ok()) return s;
  *out = std::move(p.config);
  return common::Status::OK();
}

std::string ConfigUsage() {
  std::string out =
      "Usage: raftkv-server [/path/to/raftkv.conf] [--name value ...]\n"
      "Flags override the file; a key given twice takes its last value.\n"
      "Keys (file: `name value`, command line: `--name value`):\n";
  for (const KeySpec& k : kKeys) {
    out += "  " + std::string(k.name) + " " + std::string(k.placeholder) + "\n";
    out += "      " + std::string(k.help) + "\n";
    out += "      default: " + std::string(k.default_text) + "\n";
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> ConfigEntries(const Config& c) {
  return {
      {"node-id", std::to_string(c.node_id)},
      {"cluster", FormatCluster(c.cluster)},
      {"cluster-id", c.cluster_id},
      {"cluster-secret", c.cluster_secret},
      {"dir", c.dir},
      {"bind", c.bind},
      {"port", std::to_string(c.port)},
      {"loglevel", std::string(LogLevelName(c.loglevel))},
      {"logfile", c.logfile},
      {"requirepass", c.requirepass},
      {"follower-mode", std::string(FollowerModeName(c.follower_mode))},
      {"enable-debug-command", std::string(DebugCommandName(c.enable_debug_command))},
      {"election-timeout-ms", std::to_string(c.election_timeout_ms)},
      {"heartbeat-ms", std::to_string(c.heartbeat_ms)},
      {"snapshot-entries", std::to_string(c.snapshot_entries)},
      {"snapshot-keep-entries", std::to_string(c.snapshot_keep_entries)},
      {"snapshot-log-bytes", std::to_string(c.snapshot_log_bytes)},
      {"snapshot-rate-bytes", std::to_string(c.snapshot_rate_bytes)},
      {"max-inflight-bytes", std::to_string(c.max_inflight_bytes)},
      {"max-uncommitted-bytes", std::to_string(c.max_uncommitted_bytes)},
      {"max-apply-lag-bytes", std::to_string(c.max_apply_lag_bytes)},
      {"value-cache-bytes", std::to_string(c.value_cache_bytes)},
      {"client-output-buffer-limit", std::to_string(c.client_output_buffer_limit)},
      {"client-query-buffer-limit", std::to_string(c.client_query_buffer_limit)},
      {"debug-unsafe", std::string(DebugUnsafeName(c.debug_unsafe))},
      {"request-timeout-ms", std::to_string(c.request_timeout_ms)},
      {"max-entry-bytes", std::to_string(c.max_entry_bytes)},
      {"min-free-disk-mb", std::to_string(c.min_free_disk_mb)},
      {"maxclients", std::to_string(c.maxclients)},
      {"timeout", std::to_string(c.timeout_seconds)},
  };
}

std::string RenderConfig(const Config& config) {
  std::string out;
  for (const auto& [key, value] : ConfigEntries(config)) {
    out += key + " " + QuoteArg(value) + "\n";
  }
  return out;
}

std::string_view LogLevelName(LogLevel level) { return EnumToName(level, kLogLevels); }
std::string_view FollowerModeName(FollowerMode mode) { return EnumToName(mode, kFollowerModes); }
std::string_view DebugCommandName(DebugCommand mode) { return EnumToName(mode, kDebugCommands); }
std::string_view DebugUnsafeName(DebugUnsafe mode) { return EnumToName(mode, kDebugUnsafeModes); }

}  // namespace server
