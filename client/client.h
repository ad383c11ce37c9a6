// raftkv::client::Client: a C++ client of a raftkv cluster that finds the leader, retries, and
// runs every write exactly once through the server's exactly-once sessions.
//
//   raftkv::client::Options options;
//   CHECK(raftkv::client::ParseEndpoints("127.0.0.1:7001,127.0.0.1:7002", &options.nodes).ok());
//   raftkv::client::Client client(options);
//   if (!client.Open().ok()) ...;                         // RAFT.SESSION OPEN
//   raftkv::client::Result r = client.Append("k", "x");   // RAFT.REQUEST <session> <seq> ...
//   if (r.outcome == raftkv::client::Outcome::kOk) ... r.reply.integer ...;
//
// Outcomes. Every call ends in one of three outcomes, and says so honestly:
//  * kOk: the command ran (a write exactly once) and `reply` is its reply.
//  * kFailed: the command definitely did not take effect. Either it was refused by the command
//    itself (an error reply such as "ERR value is not an integer or out of range" or
//    "WRONGTYPE ...": `reply` holds it; with the session, a retry's error reply is the first
//    execution's, so it is definite too), or the client gave up and no attempt could have been
//    applied (every attempt ended in a definite refusal: -CLUSTERDOWN, -TRYAGAIN, -LOADING,
//    -MOVED, -MISCONF, -NOAUTH/-WRONGPASS on AUTH, or a failed connect before anything was
//    sent).
//  * kUnknown: the client gave up after at least one ambiguous attempt (-TIMEOUT, no reply
//    within attempt_timeout, a connection that broke after the command was sent, a reply
//    dropped by drop_reply_percent): the write may have been applied once, or not at all.
//
// Retry rules (the same for Write and Read; Read sends the plain command):
//  * A write is sent as `RAFT.REQUEST <session> <seq> <acked> <args...>` with seq the next
//    number of the session and acked = seq (the client is single-threaded: every earlier request
//    has been answered or abandoned). Every attempt of one call resends the SAME seq, so the
//    server applies it at most once, whichever node gets it, across leader changes.
//  * Retried, after a pause (retry_backoff, doubling per attempt up to 10x): -TIMEOUT,
//    -CLUSTERDOWN, -TRYAGAIN, -LOADING, -MOVED (the next attempt goes at once to the named node
//    when it is one of `nodes`, else, after the pause, to another node), connect failures,
//    connections that break,
//    attempts without a reply within attempt_timeout. After -TIMEOUT, -CLUSTERDOWN, -LOADING
//    and any connection trouble the next attempt goes to another node (with prefer_leader, the
//    leader is looked up again); after -TRYAGAIN it stays.
//  * Not retried: -MISCONF, -NOAUTH/-WRONGPASS (answers to AUTH), "-ERR request <seq> of
//    session <id> was already acknowledged": the call gives up at once (kFailed, or kUnknown
//    after an ambiguous attempt). Any other error reply is the command's own: kFailed with
//    `reply` holding the error.
//  * -SESSIONEXPIRED: the session is gone; this call gives up (kUnknown after an ambiguous
//    attempt, else kFailed) and the next write opens a new session first.
//  * op_timeout bounds every call, Open() included: no attempt starts, and no wait lasts, past
//    the call's deadline.
//  * A write issued before Open() (or after the session expired) opens the session first,
//    within the same op_timeout; if that fails the write is kFailed (nothing was sent).
//
// Connections: one per node, opened on demand (connect timeout: attempt_timeout), with AUTH
// first when `password` is set; a connection is closed after any I/O error or lost reply, and
// one the node closed since its last use is replaced before sending (a definite failure if the
// node is down, not an ambiguous one). The client never raises SIGPIPE: it blocks the signal
// on its own thread around socket writes and discards a SIGPIPE its writes raised.
//
// Thread-safety: none. One Client per thread; distinct Clients are independent.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace raftkv::client {

using Millis = std::chrono::milliseconds;

struct Endpoint {
  std::string host = "127.0.0.1";
  uint16_t port = 0;

  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

// Parses "host:port,host:port,..." (e.g. "127.0.0.1:7001,127.0.0.1:7002") into *out (replaced).
// Spaces around entries are allowed; the host may not be empty, the port is 1..65535. Returns
// InvalidArgument naming the bad entry for an empty list, an empty entry, a missing or bad port.
common::Status ParseEndpoints(std::string_view list, std::vector<Endpoint>* out);

// "host:port".
std::string EndpointName(const Endpoint& endpoint);

enum class Outcome { kOk, kFailed, kUnknown };
// "ok" "failed" "unknown"
const char* OutcomeName(Outcome o);

// One Redis reply (RESP2).
struct Reply {
  enum class Type { kStatus, kError, kInteger, kBulk, kNil, kArray };
  Type type = Type::kNil;
  std::string str;  // status, error or bulk text (an error without its leading '-')
  int64_t integer = 0;
  std::vector<Reply> elements;

  bool is_error() const { return type == Type::kError; }
};

struct Result {
  Outcome outcome = Outcome::kUnknown;
  Reply reply;        // kOk: the command's reply. kFailed: the error reply (or empty)
  std::string error;  // kFailed/kUnknown: why (last error seen)
  int attempts = 0;   // attempts made: each time the command was sent or a node was tried
};

struct Options {
  std::vector<Endpoint> nodes;   // the only nodes this client talks to (may be a subset)
  std::string password;          // AUTH on every new connection when non-empty
  Millis op_timeout{10000};      // give up on one operation after this long
  Millis attempt_timeout{1000};  // wait this long for one reply, then the attempt is lost
  Millis retry_backoff{20};      // pause between attempts (grows to at most 10x)
  bool prefer_leader = true;     // true: find the leader (CLUSTER SLOTS) among `nodes` and use it;
                                 // false: stick to nodes[0], move to the next only on errors
  uint32_t session_timeout_s = 0;  // RAFT.SESSION OPEN's timeout; 0: the server's default
  // Testing aid: with this probability (0..100) an attempt's reply is read and then discarded,
  // and the attempt treated as lost (connection closed, retried) -- exercises exactly-once.
  int drop_reply_percent = 0;
  uint64_t seed = 1;  // for the node choice and drop_reply_percent
};

class Client {  // not thread-safe: one per thread
 public:
  // REQUIRES: !options.nodes.empty().
  explicit Client(Options options);
  // Close()s.
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Opens the exactly-once session (RAFT.SESSION OPEN), retrying until op_timeout. Replaces a
  // session already open (without closing it). Returns IOError saying why when no session could
  // be opened in time, InvalidArgument when the server refused the command itself.
  common::Status Open();
  // The open session's id; 0 when none is open.
  uint64_t session() const;

  Result Get(std::string_view key);
  Result Set(std::string_view key, std::string_view value);
  Result Append(std::string_view key, std::string_view value);
  Result Del(std::string_view key);
  Result Incr(std::string_view key);
  // Any write command, run exactly once through RAFT.REQUEST; any read command, run directly.
  // REQUIRES: !args.empty().
  Result Write(const std::vector<std::string>& args);
  Result Read(const std::vector<std::string>& args);

  // Closes the session (best effort: one RAFT.SESSION CLOSE attempt, bounded by
  // attempt_timeout) and the connections. The client may be used again afterwards (a write then
  // opens a new session).
  void Close();

  // The node the next attempt goes to (index into options.nodes).
  size_t current_node() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace raftkv::client
