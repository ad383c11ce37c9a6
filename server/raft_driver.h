// RaftDriver: drives one raft::Node through the Ready pipeline of DESIGN.md, on the loop
// thread: persistence steps to the storage thread (group commit), messages to a Transport
// (those that wait for durability only once their step is durable), committed entries to the
// state machine, and the answers to the proposals and reads waiting on them.
//
// It knows nothing of sockets or event loops: the server calls Tick() on its timer, Step() for
// each message from a peer, OnSnapshotChunk() and OnSnapshotAck() for snapshot frames, Flush()
// once per loop iteration, and OnStorageNews() when the `wakeup` callback (called on the
// storage thread) has woken the loop. Slow snapshot work goes to Options::background.
//
// Outcomes of a proposal follow DESIGN.md's reply table: kNotLeader and kBusy mean never
// proposed (definite); once proposed, kApplied (with the state machine's results) or kUnknown
// (the entry at its index turned out to be another one, a snapshot was installed over it, or
// no outcome arrived within the request timeout: it may or may not have been applied). A read
// that gets no read point within the request timeout ends with kUnknown too. The timeout
// counts ticks, so it is as deterministic as the rest of the driver.
//
// Log compaction. Once Options::snapshot_entries commands have been applied since the last
// compaction, or the applied entries in the log hold Options::snapshot_log_bytes, the log is
// compacted up to the applied index less a tail of entries holding Options::compact_keep_tail
// commands (kept so that a follower a little behind catches up from the log, not by a
// snapshot; at most half the byte limit). Commands, not entries: a batch entry holds many
// (CommandCounts);
// CompactNow() compacts up to the applied index itself. Compaction is a step on the storage
// thread, in order with the log writes: sync the state machine (everything applied before the
// step was made), then drop the entries; only then is the Node told (Node::Compact). The loop
// does not wait for the sync, though an apply that reaches the state's LevelDB while it runs
// waits for it (LevelDB queues writers behind a synced write): at worst one fsync per
// compaction. Once the Node's log has dropped entries (a compaction or a snapshot install),
// a range compaction of their LevelDB keys runs on Options::background (one at a time), so
// that their bytes leave the disk too (kv::LogStore::ReclaimTask).
//
// Snapshots between processes (docs/raft.md). A kSnapshot message from the Node is not sent:
// a SnapshotSender streams the state machine's current state to that follower in chunks. A
// kSnapshot never arrives through Step() either: a SnapshotReceiver writes the chunks of a
// stream, and when the last one is written the driver Steps the kSnapshot message the chunks
// describe. The Node then hands out Ready::snapshot, and the install is a storage step whose
// `before` work is kv::NodeStorage::FinishInstall (data durable, state switched, then the log's
// metadata in a synced batch dropping the entries it covers), ahead of the Ready's own writes;
// once durable, Node::OnSnapshotInstalled. While an install is under way nothing on the loop
// thread touches the state machine: no reads are answered, no compaction starts, no snapshot
// is read for a follower and no other stream is accepted.
//
// Thread-safety: everything on the loop thread, except the `wakeup` callback. The state
// machine is used by the loop thread, except during an install (the storage thread) and by the
// background work of snapshot streams (which touches only a reader or a new generation).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "kv/node_storage.h"
#include "protocol/peer.h"
#include "raft/node.h"
#include "server/background_work.h"
#include "server/command_counts.h"
#include "server/config.h"
#include "server/snapshot_stream.h"
#include "server/storage_thread.h"

namespace server {

class RaftDriver {
 public:
  class Transport {
   public:
    virtual ~Transport() = default;
    // Sends `m` to node m.to (never this node). Best effort: Raft copes with loss.
    virtual void Send(const raft::Message& m) = 0;
    // Sends a snapshot frame (protocol::SnapshotChunk or SnapshotAck) to `peer`; returns whether
    // it was queued. Best effort too. The default carries none: every snapshot stream through
    // such a transport fails, and the core keeps probing.
    virtual bool SendFrame(uint64_t /*peer*/, const protocol::PeerFrame& /*frame*/) {
      return false;
    }
  };

  struct Options {
    // Compact the log once this many commands have been applied since the last compaction
    // (the `snapshot-entries` configuration key; a batch entry counts its commands); 0: only
    // CompactNow() compacts.
    uint64_t snapshot_entries = 0;
    // The commands an automatic compaction keeps in the entries below the applied index, for
    // followers a little behind (etcd keeps 5000 of its default 100000; this is sized for
    // snapshot-entries' default of 10000).
    raft::Index compact_keep_tail = 1000;
    // Also compact once the applied entries in the log hold this many bytes (whichever limit
    // comes first), and keep at most half of it as the tail: the log stays bounded in bytes
    // whatever the size of its entries (the `snapshot-log-bytes` key). 0: no byte limit.
    uint64_t snapshot_log_bytes = 0;
    // Snapshot streams: about this many bytes per chunk, at most this many chunks sent and not
    // acknowledged per follower (4 MiB in flight by default, well under the transport's
    // 32 MiB queue and 8 MiB frame limits), and the ticks without progress after which a
    // stream is abandoned (0: 4 * election_ticks; raftkv-server asks for at least 4 s).
    size_t snapshot_chunk_bytes = 1 << 20;
    size_t snapshot_window_chunks = 4;
    int snapshot_stall_ticks = 0;
    // The snapshot send throttle, all followers together (SnapshotSender's
    // max_bytes_per_tick; the `snapshot-rate-bytes` key per tick). 0: no limit. A slow rate
    // cuts smaller chunks (SnapshotSender::Options::chunk_bytes).
    uint64_t snapshot_bytes_per_tick = 0;
    // Where snapshot chunks are read and written. Null: on the loop thread
    // (InlineBackgroundWork), for tests and tools without a loop.
    std::unique_ptr<BackgroundWork> background;
    // Batchable proposals made during one loop pass, up to about this many bytes together,
    // become one log entry (protocol::EncodeBatch) at the next Flush: one entry to write,
    // send and apply for many client requests. 0: every proposal is an entry of its own.
    size_t max_batch_bytes = 0;
    // Whether the state machine would block an apply now (kv::StateMachine::WritesWouldStall).
    // Asked every tick; while it says so, the node hands out no committed entries
    // (raft::Node::set_apply_paused) and the loop goes on serving peers and clients instead of
    // waiting in LevelDB. Null: never.
    std::function<bool()> apply_would_block;
    // Log lines (snapshot streams and installs). May be empty.
    std::function<void(LogLevel, std::string_view)> log;
  };

  enum class Outcome { kApplied, kNotLeader, kBusy, kUnknown, kFailed };
  using ProposeCallback = std::function<void(Outcome, const kv::ApplyResult*)>;
  // Called with kApplied once the state machine may serve a linearizable read, or with
  // kNotLeader (this node cannot confirm leadership: retry elsewhere) or kFailed.
  using ReadCallback = std::function<void(Outcome)>;

  // REQUIRES: `storage` and `transport` outlive the driver; `storage` is used by no one else.
  RaftDriver(raft::Config config, kv::NodeStorage* storage, Transport* transport,
             std::function<void()> wakeup, Options options);
  // With default Options.
  RaftDriver(raft::Config config, kv::NodeStorage* storage, Transport* transport,
             std::function<void()> wakeup);
  ~RaftDriver();

  // Loads the persisted state, builds the node and starts the storage thread.
  common::Status Start();

  // Requests still waiting this many ticks after they were made end with kUnknown; 0 (the
  // default) waits forever.
  void set_request_timeout_ticks(uint64_t ticks) { request_timeout_ticks_ = ticks; }

  // Stops acting: later calls do nothing, `wakeup` is no longer called, and the outcomes of
  // background work are dropped. The storage thread finishes what is queued when the driver
  // is destroyed. Call before closing what `wakeup` wakes.
  void Stop();

  void Tick();
  // A message from a peer. kSnapshot messages are dropped: a snapshot arrives only as a stream
  // of chunks (OnSnapshotChunk), which carries its bytes.
  void Step(const raft::Message& m);
  // Snapshot frames from a peer, addressed to this node.
  void OnSnapshotChunk(protocol::SnapshotChunk chunk);
  void OnSnapshotAck(const protocol::SnapshotAck& ack);
  // Proposes `command` (a protocol::EncodeCommand). A `batchable` one (protocol::Batchable) on
  // a leader waits for the loop pass's Flush, where it and the others of the pass are proposed
  // together, in the order they came; a proposal that is not batchable proposes them first.
  // Either way `cb` is called once, on this thread (unless the driver is stopped first). Held
  // proposals are answered kNotLeader as soon as the node stops leading (Step, Tick), before
  // anything later of theirs is routed elsewhere.
  void Propose(std::string command, ProposeCallback cb, bool batchable = false);
  // raft::Node::TransferLeadership, after proposing the writes held so far.
  common::Status TransferLeadership(raft::NodeId target);
  void Read(ReadCallback cb);
  // Acts on what the node has to hand out, applying at most one Ready's committed entries (the
  // node sizes them: raft::Config::max_msg_bytes). What is left waits for the next loop pass,
  // and `wakeup` is called so that one comes soon: after a stall a node may have
  // max-apply-lag-bytes to apply, and applying it in one go would hold its heartbeats, votes and
  // acknowledgements for seconds. The first Ready of a Flush is always handled.
  void Flush();
  // Takes what the storage thread reported, then Flush()es.
  void OnStorageNews();

  // Compacts the log up to the state machine's applied index, whatever snapshot_entries says
  // (RAFT.COMPACT), so that a follower behind it can catch up only by a snapshot. Sets
  // *snapshot_index to the index the log is compacted to: the Node's log (and INFO's
  // raft_snapshot_index) reaches it once the storage thread has written it, a sync later.
  // Returns Busy while a snapshot install is under way, and the failure once failed.
  common::Status CompactNow(raft::Index* snapshot_index);

  raft::Node& node() { return *node_; }
  // The state machine's applied index, key and session counts as of its last apply or snapshot
  // install, for INFO: the state machine itself may be replaced on the storage thread meanwhile.
  raft::Index applied_index() const { return applied_; }
  uint64_t key_count() const { return key_count_; }
  uint64_t session_count() const { return session_count_; }
  // A write failed: the node acknowledges nothing more and must exit (fail-stop).
  bool failed() const { return !failure_.ok(); }
  const common::Status& failure() const { return failure_; }
  StorageThread::Stats storage_stats() const { return storage_thread_->stats(); }
  const SnapshotSender::Stats& snapshot_send_stats() const { return sender_->stats(); }
  const SnapshotReceiver::Stats& snapshot_receive_stats() const { return receiver_->stats(); }
  std::vector<SnapshotSender::Progress> snapshots_sending() const { return sender_->progress(); }
  std::optional<SnapshotReceiver::ReceiveProgress> snapshot_receiving() const {
    return receiver_->progress();
  }
  // Snapshots installed (and durable) since Start.
  uint64_t snapshots_installed() const { return snapshots_installed_; }
  // Range compactions of the log's dropped entries (ReclaimTask) finished since Start, and the
  // index they reached.
  uint64_t log_reclaims() const { return log_reclaims_; }
  raft::Index log_reclaimed_index() const { return reclaimed_; }
  // AppendEntries successes not sent because a later one to the same peer, made durable by the
  // same sync, said more.
  uint64_t acks_superseded() const { return acks_superseded_; }
  // Flushes that stopped with committed entries left to apply.
  uint64_t apply_yields() const { return apply_yields_; }
  // Whether applying is held back now (Options::apply_would_block), and how many times it
  // has been since Start.
  bool apply_paused() const { return node_->apply_paused(); }
  uint64_t apply_pauses() const { return apply_pauses_; }
  // Why the last proposal answered kBusy was refused.
  const std::string& busy_reason() const { return busy_reason_; }

 private:
  struct PendingStep {
    uint64_t id;
    raft::Index last_index = 0;  // of the step's entries (0: none)
    raft::Term last_term = 0;
    std::vector<raft::Message> after_persist;
    std::optional<raft::SnapshotMeta> installed;  // the step installs this snapshot first
    raft::Index compacted_to = 0;                 // the step compacts the log to here (0: no)
  };
  struct PendingProposal {
    raft::Term term;
    uint64_t deadline;                 // tick
    std::vector<ProposeCallback> cbs;  // one per command of the entry, in order
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

  bool active() const { return failure_.ok() && !stopped_; }
  // The storage thread's report (on that thread): hands it over and wakes the loop.
  void OnStorageDone(uint64_t id, const common::Status& status);
  // Calls each of `cbs` with `outcome` and no result (every outcome but kApplied).
  static void AnswerAll(std::vector<ProposeCallback>* cbs, Outcome outcome);
  // Proposes one entry whose commands' callbacks are `cbs`.
  void ProposeEntry(std::string data, std::vector<ProposeCallback> cbs);
  // Proposes what Propose queued, as one entry.
  void ProposeQueued();
  // Proposes (so answers kNotLeader) what Propose queued, once the node no longer leads.
  void ReleaseHeldIfNotLeader();
  // Pauses or resumes applying as Options::apply_would_block says.
  void CheckApplyBlocked();
  void Send(const raft::Message& m);
  // Sends the messages that waited for a durable step, holding back an AppendEntries success
  // until the steps made durable with it have been gone through (OnStorageNews).
  void SendAfterPersist(std::vector<raft::Message>* messages);
  void SendHeldAcks(raft::NodeId peer);
  void Apply(const std::vector<raft::Entry>& entries);
  void AnswerReads();
  void Fail(const common::Status& s);
  void ExpireRequests();
  uint64_t Deadline() const;
  // Submits a compaction of the log to `index` unless one to there or beyond is on its way.
  void StartCompaction(raft::Index index);
  void MaybeCompact();
  // Gives back the disk space of entries dropped from the log, one range compaction at a time,
  // in the background.
  void MaybeReclaim();
  // The receiver completed a stream: hand its kSnapshot to the node.
  void OnSnapshotReceived(raft::NodeId from, raft::Term term, const raft::SnapshotMeta& meta);
  void AfterInstall(const raft::SnapshotMeta& meta);
  void Log(LogLevel level, const std::string& line);

  raft::Config config_;
  kv::NodeStorage* storage_;
  Transport* transport_;
  std::function<void()> wakeup_;
  Options options_;
  std::unique_ptr<raft::Node> node_;
  std::unique_ptr<StorageThread> storage_thread_;
  std::unique_ptr<SnapshotSender> sender_;
  std::unique_ptr<SnapshotReceiver> receiver_;
  // Declared after the streams, so destroyed before them: no `done` reaches a dead stream.
  std::unique_ptr<BackgroundWork> background_;
  bool stopped_ = false;
  // A snapshot install is on the storage thread: the loop leaves the state machine alone.
  bool installing_ = false;
  raft::Index applied_ = 0;
  uint64_t key_count_ = 0;
  uint64_t session_count_ = 0;
  uint64_t snapshots_installed_ = 0;
  // The commands of the applied entries the log holds past the last compaction target, and
  // how many were applied since the last compaction was decided (or a snapshot installed):
  // the next comes once that reaches snapshot_entries.
  CommandCounts commands_;
  uint64_t commands_since_compaction_ = 0;
  // The highest index a compaction was submitted for.
  raft::Index compact_target_ = 0;
  // Dropped entries up to here have had their range compacted; one such work at a time.
  raft::Index reclaimed_ = 0;
  bool reclaiming_ = false;
  uint64_t log_reclaims_ = 0;
  std::string busy_reason_;

  uint64_t ticks_ = 0;
  uint64_t request_timeout_ticks_ = 0;
  uint64_t next_step_id_ = 0;
  std::vector<PendingStep> steps_;  // submitted, not yet durable, in order
  std::map<raft::Index, PendingProposal> proposals_;
  // Batchable proposals waiting for the loop pass's Flush, their callbacks and their size
  // (with what a batch adds to each).
  std::vector<std::string> queued_;
  std::vector<ProposeCallback> queued_cbs_;
  size_t queued_bytes_ = 0;
  uint64_t next_read_ctx_ = 0;
  std::map<uint64_t, WaitingRead> reads_waiting_;  // asked, no read point yet
  std::vector<PendingRead> reads_ready_;           // read point known, waiting to apply
  std::vector<ReadCallback> answering_;            // AnswerReads' callbacks due, reused
  // OnStorageNews: per peer, the latest AppendEntries success not yet sent (see there).
  std::vector<raft::Message> held_acks_;
  uint64_t acks_superseded_ = 0;
  uint64_t apply_yields_ = 0;
  uint64_t apply_pauses_ = 0;
  common::Status failure_;

  std::mutex news_mu_;
  uint64_t news_durable_id_ = 0;  // GUARDED_BY(news_mu_)
  common::Status news_status_;    // GUARDED_BY(news_mu_)
  bool news_stopped_ = false;     // GUARDED_BY(news_mu_): wakeup_ is no longer called
};

}  // namespace server
