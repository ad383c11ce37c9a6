// DurableEnv: the leveldb::Env each of a node's databases opens with. Over the Env it wraps it
// adds three things:
//
// - It syncs a write-ahead log ("*.log") before closing it. LevelDB closes a write-ahead log
//   without syncing it when it switches to a new one (memtable full), and a synced write syncs
//   only the current log. Without this, a synced write could be durable while unsynced writes
//   before it, in the old log, are lost in a crash: a state machine whose applied index runs
//   ahead of its data. With it, every write-ahead log is durable before the next one gets a
//   byte, so a synced write covers everything before it.
// - A table written by a flush or a compaction reaches the disk a little at a time as it is
//   written (writeback started every 256 KiB, as RocksDB's bytes_per_sync does), not megabytes at
//   once when LevelDB syncs it at the end, which made every write-ahead log's fdatasync on the
//   same disk wait behind it.
// - Background work (the memtable flushes and compactions LevelDB schedules) runs on a thread of
//   this Env's own instead of the one thread the default Env shares among every database of
//   the process. LevelDB lets a memtable flush cut into a running compaction of the same
//   database, but not into another database's: on the shared thread, the Raft log's flush
//   waited behind a long compaction of the state, and a write to the log that found its
//   memtable full stalled the storage thread (and every acknowledgement) for that long. The
//   thread starts with the first task and is joined when the Env is destroyed, after its
//   databases (which wait for their own background work when they close).
//
// Thread-safety: as the wrapped Env; Schedule may be called from any thread.
#pragma once

#include <leveldb/env.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

namespace kv {

class DurableEnv : public leveldb::EnvWrapper {
 public:
  explicit DurableEnv(leveldb::Env* base) : leveldb::EnvWrapper(base) {}
  ~DurableEnv() override;

  DurableEnv(const DurableEnv&) = delete;
  DurableEnv& operator=(const DurableEnv&) = delete;

  leveldb::Status NewWritableFile(const std::string& fname,
                                  leveldb::WritableFile** result) override;
  leveldb::Status NewAppendableFile(const std::string& fname,
                                    leveldb::WritableFile** result) override;

  // Runs function(arg) on this Env's background thread, after every task scheduled before it.
  void Schedule(void (*function)(void*), void* arg) override;

  // How many times the writeback of part of a table was started (none over an in-memory Env).
  uint64_t writebacks_started() const {
    return writebacks_started_.load(std::memory_order_relaxed);
  }

 private:
  void RunBackground();

  std::mutex mu_;
  std::condition_variable work_;
  std::deque<std::pair<void (*)(void*), void*>> tasks_;  // guarded by mu_
  bool stopping_ = false;                                // guarded by mu_
  std::thread background_;                               // started by the first Schedule
  std::atomic<uint64_t> writebacks_started_{0};
};

}  // namespace kv
