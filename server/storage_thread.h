// StorageThread: the one thread that writes a node's Raft log (DESIGN.md, "The Ready
// pipeline"). The loop thread submits each Ready's persistence step and goes on; the storage
// thread writes every step queued while the previous sync ran as one synced batch (group
// commit: many Readys, many client requests, one fsync), in submission order, and reports the
// steps done, in order, through a callback. The loop never waits on the disk.
//
// A step may carry work to run first, on the storage thread and in order with the writes (a
// snapshot install: data durable, then metadata, before the step's entries).
//
// After a failed write or sync the thread reports the error and writes nothing more
// (fail-stop): the node must stop acknowledging and exit.
//
// Thread-safety: Submit, Stop and stats from any one thread (the loop); the callback runs on
// the storage thread and must only hand the news over (e.g. uv_async_send).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "common/status.h"
#include "kv/log_store.h"

namespace server {

class StorageThread {
 public:
  struct Step {
    uint64_t id = 0;  // increasing, assigned by the caller
    std::optional<raft::HardState> hard_state;
    std::vector<raft::Entry> entries;
    bool must_sync = false;
    // Runs on the storage thread before this step's write, after every earlier step.
    std::function<common::Status()> before;
  };
  // Steps up to and including `last_id` are durable. With an error, that is how far the
  // writes got; the error is the first failure, and nothing after `last_id` is or will be
  // written.
  using Done = std::function<void(uint64_t last_id, const common::Status& status)>;

  struct Stats {
    uint64_t steps = 0;    // steps written
    uint64_t batches = 0;  // WriteBatches written (each synced if any of its steps needed it)
    uint64_t syncs = 0;
    uint64_t sync_micros_total = 0;
    uint64_t sync_micros_max = 0;
  };

  // Starts the thread. REQUIRES: `log` outlives this object and is used by no other thread.
  StorageThread(kv::LogStore* log, Done done);
  // Writes what is queued, then stops the thread.
  ~StorageThread();

  StorageThread(const StorageThread&) = delete;
  StorageThread& operator=(const StorageThread&) = delete;

  void Submit(Step step);
  Stats stats() const;

 private:
  void Run();
  // Writes `batch` (steps without `before` work) as one WriteSteps call.
  common::Status WriteBatch(std::vector<Step>& batch);

  kv::LogStore* log_;
  Done done_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Step> queue_;  // GUARDED_BY(mu_)
  bool stopping_ = false;   // GUARDED_BY(mu_)
  bool failed_ = false;     // storage thread only
  Stats stats_;             // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace server
