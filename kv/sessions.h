// SessionTable: the state machine's exactly-once sessions (the client-session table).
//
// A session is a client identity whose writes are numbered requests. A client opens one with
// a log entry (RAFT.SESSION OPEN); its id is that entry's index, so ids are unique and the same
// on every node. It then sends each write as request `seq` = 1, 2, ... together with `acked`:
// the number below which it holds every reply. The table keeps the results of requests acked
// .. acked + kSessionWindow - 1, so one session may have that many requests in flight, and a
// retry of any of them (on any node, after any leader change) gets the first execution's
// results without being applied again. A request below acked is refused (the client said it
// has its reply); one at or beyond acked + kSessionWindow is refused unapplied.
//
// Expiry is by cluster time, never by a node's clock: every command carries the proposing
// leader's clock (Command::time_ms); applying keeps the largest time seen. A session unused for
// its timeout of cluster time expires while an entry is applied, identically on every node. A
// request in an unknown or expired session is refused unapplied (SESSIONEXPIRED), except the
// first request (acked 1) of a node's own forwarding session, which creates it; a node whose
// session expired starts a new one.
//
// Bounds: at most kMaxSessions sessions, each holding at most kSessionWindow results.
//
// The table lives in the state database (layout in kv/keys.h) and changes only through the
// WriteBatch of the entry being applied; it reads the state as of the entries before that one
// (kv/pending_writes.h). The counters it keeps in memory are rebuilt by Load.
//
// Thread-safety: the state machine's apply thread only.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "common/status.h"
#include "kv/state_machine.h"

namespace leveldb {
class DB;
class WriteBatch;
}  // namespace leveldb

namespace kv {
class PendingWrites;
}  // namespace kv

namespace kv {

inline constexpr uint64_t kSessionWindow = 4096;
inline constexpr uint64_t kMaxSessions = 65536;
inline constexpr uint64_t kDefaultSessionTimeoutMs = 3600ull * 1000;
inline constexpr uint64_t kMaxSessionTimeoutMs = 7ull * 24 * 3600 * 1000;
// One entry expires at most this many sessions (the rest go with the following entries), so
// that a jump in cluster time never makes one apply unboundedly long.
inline constexpr uint64_t kMaxExpiriesPerEntry = 256;

class SessionTable {
 public:
  // Reads cluster time and counts the sessions of `db` (at open, and after a snapshot install).
  common::Status Load(leveldb::DB* db);

  uint64_t count() const { return count_; }
  uint64_t cluster_time_ms() const { return time_ms_; }

  // Starts an entry stamped `time_ms` (call it first for every entry): moves cluster time forward
  // to it (never back) and expires every session whose time is up.
  common::Status Advance(PendingWrites* db, uint64_t time_ms, leveldb::WriteBatch* batch);

  // kSessionOpen in the entry at `index`: a session with id `index`, or TRYAGAIN when the
  // table is full.
  OpResult Open(uint64_t index, uint64_t timeout_ms, leveldb::WriteBatch* batch);
  // kSessionClose: forgets the session; SESSIONEXPIRED if it is unknown or expired.
  common::Status Close(PendingWrites* db, uint64_t id, leveldb::WriteBatch* batch, OpResult* out);

  struct Request {
    uint64_t session = 0;
    uint64_t seq = 0;
    uint64_t acked = 0;
    bool create = false;  // a node's forwarding session: create it if missing
  };
  enum class Verdict {
    kApply,      // run the ops, then Finish with their results
    kDuplicate,  // *results holds the first execution's results; apply nothing
    kRefused,    // *results holds one error; apply nothing
  };
  // Decides what to do with request `r` (session != 0), recording its use of the session.
  common::Status Begin(PendingWrites* db, const Request& r, leveldb::WriteBatch* batch,
                       Verdict* verdict, std::vector<OpResult>* results);
  // Records the results of a request Begin answered kApply.
  void Finish(const Request& r, const std::vector<OpResult>& results, leveldb::WriteBatch* batch);

 private:
  struct Meta {
    uint64_t timeout_ms = 0;
    uint64_t last_used_ms = 0;
    uint64_t acked = 1;
    uint64_t expires() const { return last_used_ms + timeout_ms; }
  };
  // The live session `id`: *found is false when it is unknown or its time is up; *stored (if
  // given) says whether its record exists, live or not (then *meta holds it).
  common::Status Read(PendingWrites* db, uint64_t id, Meta* meta, bool* found,
                      bool* stored = nullptr);
  void Write(uint64_t id, const Meta& meta, leveldb::WriteBatch* batch);
  // Deletes the session, its results and its expiry key.
  common::Status Erase(PendingWrites* db, uint64_t id, const Meta& meta,
                       leveldb::WriteBatch* batch);

  uint64_t time_ms_ = 0;
  uint64_t count_ = 0;
  // Sessions erased by the entry being applied (its batch not yet written): at most
  // kMaxExpiriesPerEntry, plus one per command of the entry.
  std::vector<uint64_t> erased_;
  // No session expires before this cluster time (a lower bound: Advance looks again then).
  uint64_t next_expiry_ms_ = std::numeric_limits<uint64_t>::max();
};

}  // namespace kv
