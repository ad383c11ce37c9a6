// RaftDriver: drives one raft::Node through the Ready pipeline of DESIGN.md, on the loop
// thread: persistence steps to the storage thread (group commit), messages to a Transport
// (those that wait for durability only once their step is durable), committed entries to the
// state machine, and the answers to the proposals and reads waiting on them.
//
// It knows nothing of sockets or event loops: the server calls Tick() on its timer, Step() for
// each message from a peer, Flush() once per loop iteration, and OnStorageNews() when the
// `wakeup` callback (called on the storage thread) has woken the loop.
//
// Outcomes of a proposal follow DESIGN.md's reply table: kNotLeader and kBusy mean never
// proposed (definite); once proposed, kApplied (with the state machine's results) or kUnknown
// (the entry at its index turned out to be another one, or no outcome arrived within the
// request timeout: it may or may not have been applied). A read that gets no read point
// within the request timeout ends with kUnknown too. The timeout counts ticks, so it is as
// deterministic as the rest of the driver.
//
// Not yet here: log compaction and snapshot streaming between processes (the core may ask
// for a snapshot install only after a leader compacted its log, which no driver does yet).
//
// Thread-safety: everything on the loop thread, except the `wakeup` callback.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "kv/node_storage.h"
#include "raft/node.h"
#include "server/storage_thread.h"

namespace server {

class RaftDriver {
 public:
  class Transport {
   public:
    virtual ~Transport() = default;
    // Sends `m` to node m.to (never this node). Best effort: Raft copes with loss.
    virtual void Send(const raft::Message& m) = 0;
  };

  enum class Outcome { kApplied, kNotLeader, kBusy, kUnknown, kFailed };
  using ProposeCallback = std::function<void(Outcome, const kv::ApplyResult*)>;
  // Called with kApplied once the state machine may serve a linearizable read, or with
  // kNotLeader (this node cannot confirm leadership: retry elsewhere) or kFailed.
  using ReadCallback = std::function<void(Outcome)>;

  // REQUIRES: `storage` and `transport` outlive the driver; `storage` is used by no one else.
  RaftDriver(raft::Config config, kv::NodeStorage* storage, Transport* transport,
             std::function<void()> wakeup);
  ~RaftDriver();

  // Loads the persisted state, builds the node and starts the storage thread.
  common::Status Start();

  // Requests still waiting this many ticks after they were made end with kUnknown; 0 (the
  // default) waits forever.
  void set_request_timeout_ticks(uint64_t ticks) { request_timeout_ticks_ = ticks; }

  void Tick();
  void Step(const raft::Message& m);
  void Propose(std::string command, ProposeCallback cb);
  void Read(ReadCallback cb);
  // Acts on everything the node has to hand out.
  void Flush();
  // Takes what the storage thread reported, then Flush()es.
  void OnStorageNews();

  raft::Node& node() { return *node_; }
  // A write failed: the node acknowledges nothing more and must exit (fail-stop).
  bool failed() const { return !failure_.ok(); }
  const common::Status& failure() const { return failure_; }
  StorageThread::Stats storage_stats() const { return storage_thread_->stats(); }

 private:
  struct PendingStep {
    uint64_t id;
    raft::Index last_index = 0;  // of the step's entries (0: none)
    raft::Term last_term = 0;
    std::vector<raft::Message> after_persist;
  };
  struct PendingProposal {
    raft::Term term;
    uint64_t deadline;  // tick
    ProposeCallback cb;
  };
  struct WaitingRead {
    uint64_t deadline;  // tick
    ReadCallback cb;
  };
  struct PendingRead {
    raft::Index index;
    uint64_t deadline;  // tick
    ReadCallback cb;
  };

  void Send(const raft::Message& m);
  void Apply(const std::vector<raft::Entry>& entries);
  void AnswerReads();
  void Fail(const common::Status& s);
  void ExpireRequests();
  uint64_t Deadline() const;

  raft::Config config_;
  kv::NodeStorage* storage_;
  Transport* transport_;
  std::function<void()> wakeup_;
  std::unique_ptr<raft::Node> node_;
  std::unique_ptr<StorageThread> storage_thread_;

  uint64_t ticks_ = 0;
  uint64_t request_timeout_ticks_ = 0;
  uint64_t next_step_id_ = 0;
  std::vector<PendingStep> steps_;  // submitted, not yet durable, in order
  std::map<raft::Index, PendingProposal> proposals_;
  uint64_t next_read_ctx_ = 0;
  std::map<uint64_t, WaitingRead> reads_waiting_;  // asked, no read point yet
  std::vector<PendingRead> reads_ready_;           // read point known, waiting to apply
  common::Status failure_;

  std::mutex news_mu_;
  uint64_t news_durable_id_ = 0;  // GUARDED_BY(news_mu_)
  common::Status news_status_;    // GUARDED_BY(news_mu_)
};

}  // namespace server
