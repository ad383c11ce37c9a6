// StateMachine: the replicated key-value state on LevelDB (layout in kv/keys.h). Applying an
// entry changes the user data, the applied index and the client-session table in one batch,
// so the applied index never runs ahead of the data; a restarted node resumes from its
// applied index. Applying is deterministic: the same entries give the same state and results
// on every node.
//
// Writes are not synced (the Raft log is): a crash may lose the last applies, never half of
// one. Sync() makes everything applied so far durable; the log may be compacted only up to a
// durably applied index. After a failed write (ENOSPC, EIO) every later write fails with the
// same error: the node must stop (fail-stop) and restart once the disk is healthy.
//
// Snapshots: NewSnapshotReader reads the state through a LevelDB snapshot as checksummed,
// size-bounded chunks; a SnapshotWriter builds a new state database from chunks and Finish
// switches to it atomically (a crash before the switch leaves the old state, after it the
// new one).
//
// Thread-safety: Apply, Get, Sync, NewSnapshotReader and SnapshotWriter::Finish on one thread
// at a time. Some work may run on another thread while that one goes on applying: reading a
// SnapshotReader, running a SyncTask, and NewSnapshotWriter and SnapshotWriter::Add (they touch
// only the new generation, not the live state). Finish switches the live state: nothing else
// may use the state machine while it runs.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "protocol/command.h"
#include "raft/types.h"

namespace leveldb {
class DB;
class Env;
class Snapshot;
class Iterator;
class WriteBatch;
}  // namespace leveldb

namespace kv {

class PendingWrites;
class SessionTable;
class ValueCache;

// The result of one operation, which the server turns into a reply.
struct OpResult {
  enum class Kind : uint8_t { kOk, kNil, kInt, kBulk, kError };
  Kind kind = Kind::kOk;
  int64_t integer = 0;
  std::string bulk;  // the value (kBulk) or the error text (kError)

  bool operator==(const OpResult&) const = default;
};

struct ApplyResult {
  bool duplicate = false;  // a retried request: these are its first application's results
  bool refused = false;    // refused unapplied (kv/sessions.h): results holds one error
  std::vector<OpResult> results;
  // A batch entry's (protocol::EncodeBatch): one result per command, in order; `results` is
  // then empty (unless the entry was undecodable: then it holds the one error).
  std::vector<ApplyResult> batch;
};

std::string EncodeResults(const std::vector<OpResult>& results);
bool DecodeResults(std::string_view bytes, std::vector<OpResult>* results);

class StateMachine {
 public:
  struct Options {
    leveldb::Env* env = nullptr;  // nullptr: leveldb::Env::Default()
    // The user values kept in memory for reads (kv/value_cache.h), in bytes; 0: none.
    size_t value_cache_bytes = 0;
  };

  // Opens the state in directory `dir` (created if missing).
  static common::Status Open(const std::string& dir, const Options& options,
                             std::unique_ptr<StateMachine>* out);
  ~StateMachine();

  // Applies a committed entry. REQUIRES: e.index == applied_index() + 1.
  common::Status Apply(const raft::Entry& e, ApplyResult* result);
  // Applies committed entries in order, each as if the ones before it were written, with one
  // LevelDB write for all of them (kv/pending_writes.h); *results gets one result per entry.
  // REQUIRES: consecutive indexes from applied_index() + 1.
  common::Status ApplyAll(std::span<const raft::Entry> entries, std::vector<ApplyResult>* results);
  raft::Index applied_index() const { return applied_index_; }
  raft::Term applied_term() const { return applied_term_; }
  // How many user keys the state holds (DBSIZE), kept up to date by Apply.
  uint64_t key_count() const { return key_count_; }
  // How many exactly-once sessions are open (kv/sessions.h), and the cluster time.
  uint64_t session_count() const;
  uint64_t cluster_time_ms() const;
  // The values kept in memory for reads; its figures may be read from any thread.
  const ValueCache& value_cache() const { return *cache_; }
  // The value of user key `key`; NotFound if absent.
  common::Status Get(std::string_view key, std::string* value);
  // Every user key and value, in key order (for tests and small tools).
  common::Status Dump(std::vector<std::pair<std::string, std::string>>* out);
  // Calls fn(key) for every user key >= `from`, in key order, until fn returns false
  // (KEYS, SCAN, DBSIZE).
  common::Status ForEachKey(std::string_view from,
                            const std::function<bool(std::string_view key)>& fn);
  // Whether an apply now would wait in LevelDB: its level-0 files have reached the count at
  // which LevelDB throttles writes (kL0_SlowdownWritesTrigger, 8; it stops them at 12) because
  // compaction is behind. The caller may hold its applies back until they drop.
  bool WritesWouldStall() const;
  // Makes everything applied so far durable.
  common::Status Sync();
  // The work of Sync() for another thread: makes durable everything applied before this call
  // (and possibly more), while this thread goes on applying. A synced LevelDB write covers
  // every write before it, and LevelDB orders writers, so no lock is needed; an Apply that
  // reaches LevelDB while the sync runs waits for it. The state machine does not learn of a
  // failure (the caller must stop: fail-stop), but LevelDB refuses every write after a failed
  // sync, so no later Apply succeeds either.
  std::function<common::Status()> SyncTask();

  class SnapshotReader {
   public:
    virtual ~SnapshotReader() = default;
    // The applied index and term the snapshot covers.
    virtual raft::SnapshotMeta meta() const = 0;
    // Fills `chunk` with the next chunk; sets *done after the last one.
    virtual common::Status Next(std::string* chunk, bool* done) = 0;
  };
  // A consistent view of the current state, read in chunks of about `chunk_bytes`.
  std::unique_ptr<SnapshotReader> NewSnapshotReader(size_t chunk_bytes);

  class SnapshotWriter {
   public:
    virtual ~SnapshotWriter() = default;
    // Adds one chunk: Corruption if its checksum fails, InvalidArgument if it does not continue
    // the stream (another snapshot, a repeated, missing or reordered chunk, or one after the
    // last). A writer that refused a chunk is of no further use: start a new one.
    virtual common::Status Add(std::string_view chunk) = 0;
    // Makes the new state durable and switches to it. Returns its metadata. InvalidArgument if
    // the last chunk has not arrived.
    virtual common::Status Finish(raft::SnapshotMeta* meta) = 0;
    // The snapshot the chunks added so far belong to ({0, 0} before the first).
    virtual raft::SnapshotMeta meta() const = 0;
  };
  // Starts building a new state from a snapshot stream. Only one at a time.
  common::Status NewSnapshotWriter(std::unique_ptr<SnapshotWriter>* out);

 private:
  class Reader;
  class Writer;
  StateMachine(std::string dir, leveldb::Env* env, size_t value_cache_bytes);
  common::Status OpenGeneration(uint64_t generation);
  // Apply's work, once its preconditions hold.
  // Adds its writes to `group`; `more`: later entries of the group may read them.
  common::Status ApplyEntry(const raft::Entry& e, ApplyResult* result, PendingWrites* group,
                            bool more);
  // One command of entry `index`: its writes go to `batch`, and *key_count follows them.
  common::Status ApplyCommand(const protocol::Command& cmd, raft::Index index, ApplyResult* result,
                              PendingWrites* group, leveldb::WriteBatch* batch,
                              uint64_t* key_count);
  common::Status SwitchTo(uint64_t generation);
  std::string GenerationPath(uint64_t generation) const;

  std::string dir_;
  leveldb::Env* base_env_;             // the Env given in Options
  std::shared_ptr<leveldb::Env> env_;  // DurableEnv over it; every DB holds a reference
  uint64_t generation_ = 0;
  std::shared_ptr<leveldb::DB> db_;
  raft::Index applied_index_ = 0;
  raft::Term applied_term_ = 0;
  uint64_t key_count_ = 0;
  std::unique_ptr<ValueCache> cache_;  // values of db_'s user keys
  std::unique_ptr<SessionTable> sessions_;
  std::vector<protocol::Command> commands_;  // the entry being applied (reused)
  common::Status failed_;                    // first write failure: every later write returns it
};

}  // namespace kv
