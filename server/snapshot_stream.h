// Snapshot streams between processes (DESIGN.md, "Snapshots"; docs/raft.md, "Snapshots between
// processes"). The Raft core only decides that a follower needs a snapshot and learns that one
// was installed; these two classes move the bytes.
//
// SnapshotSender (the leader's side) reads the state machine through a LevelDB snapshot, one
// chunk at a time, and sends each as a protocol::SnapshotChunk frame: offsets count the bytes
// of the stream, `last` marks its end. At most `window_chunks` chunks are sent and not yet
// acknowledged; the next one is read only when the window has room, so a slow follower holds
// no more than a window of memory. One stream per follower at a time.
//
// SnapshotReceiver (the follower's side) writes the chunks of one stream, in order, through a
// kv::StateMachine::SnapshotWriter into a new state generation, and answers each chunk with a
// protocol::SnapshotAck whose offset_received is the end of what it has written. A chunk at
// offset 0 starts a new stream (dropping any other); a chunk that does not continue the current
// stream at its end (a repeat, one after a gap, one of another stream) is not written, and the
// answer says what it has. When the last chunk is written, the stream is complete: its owner
// (RaftDriver) hands the kSnapshot message to the core and takes the writer to install.
//
// Failure. Chunks are never resent within a stream: a stream with a hole starts over. The
// sender abandons a stream when the follower refuses it (ok = false), when an acknowledgement
// shows a chunk did not arrive (the connection dropped frames, or the follower restarted),
// when no chunk is acknowledged for `stall_ticks` ticks, when a chunk cannot be read or queued,
// or when this node no longer leads the stream's term; except in the last case it asks the core
// to probe the follower again (raft::Node::ReportSnapshotFailure), which then sends a new
// kSnapshot and a new stream starts. The receiver drops an incomplete stream that has been idle
// for `stall_ticks` ticks. A write error other than a bad chunk is fatal (fail-stop).
//
// Throttle. A sender with `max_bytes_per_tick` = N > 0 shares one token bucket among all its
// streams, so that N is this node's whole snapshot send rate. The bucket holds a budget in
// bytes, which starts at N; each Tick adds N, up to a cap of N. A read may start while the
// budget is positive, and charges `chunk_bytes` (C) at once, so that streams reading in
// parallel cannot all overdraw it; when the chunk is read, the charge is corrected to its
// actual size (a chunk of one large value costs all of it, the short last chunk less), and a
// chunk that is not sent is refunded. So the budget never exceeds N and, while chunks hold at
// most C bytes, never falls below 1 - C: a chunk larger than a tick's budget still goes out,
// and the debt it leaves delays the next read. Every byte read is charged and the bucket gains
// at most N a tick, so the bytes read between the end of one Tick and the end of the W-th
// after it (or from construction to the end of the W-th Tick) are at most
// (W + 1) * N + C - 1: the long-run average is at most N a tick, and a burst at most one
// tick's budget plus one chunk. The bucket refills only up to N, so time in which no stream
// could use it is not saved up; a stream that is always ready to read loses no refill and
// gets the whole N. The next chunk is read only when the budget allows, so a throttled stream
// holds no more memory than an unthrottled one.
//
// Streams take turns: when the bucket refills, the streams waiting for it start their reads in
// round-robin order of follower id, beginning after the one that started a read last. The
// budget is positive only while no stream waits, so a stream whose window opens meanwhile
// finds it spent and waits its turn with the others.
//
// A stream waiting for budget with nothing in flight is not stalled: `stall_ticks` counts only
// ticks in which a chunk is sent and not acknowledged or a read is under way, the two things
// the follower or the disk owes it. The core's own snapshot timeout may run out meanwhile; it
// then asks again (Start in the same term), which lets the stream go on.
//
// Neither class reads or writes a chunk on the loop thread: each piece of work goes to a
// BackgroundWork, one at a time per stream, and its outcome comes back on the loop thread.
// Time is counted in ticks, passed in, so that tests decide when a stream has stalled.
//
// Thread-safety: the loop thread only. The work handed to BackgroundWork touches only the
// reader or writer it carries.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "kv/state_machine.h"
#include "protocol/peer.h"
#include "raft/types.h"
#include "server/background_work.h"
#include "server/config.h"

namespace server {

// Sends a snapshot frame to `peer`; returns whether it was queued.
using SendFrameFn = std::function<bool(raft::NodeId peer, const protocol::PeerFrame& frame)>;
using LogFn = std::function<void(LogLevel level, std::string_view line)>;

class SnapshotSender {
 public:
  static constexpr size_t kMinThrottledChunkBytes = 1024;
  struct Options {
    raft::NodeId self = raft::kNoNode;
    // About this many bytes of state per chunk (a chunk holds whole keys: one large value can
    // make it larger). Throttled, chunks are cut smaller when needed, to a quarter of
    // stall_ticks' worth of budget (at least kMinThrottledChunkBytes): the next chunk then
    // arrives well before the receiver, which waits as long, takes the stream for a dead one.
    size_t chunk_bytes = 1 << 20;
    // Chunks sent and not yet acknowledged, per stream. REQUIRES: >= 1.
    size_t window_chunks = 4;
    // Ticks without an acknowledged chunk, while one is in flight or being read, after which a
    // stream is abandoned. REQUIRES: >= 1.
    int stall_ticks = 40;
    // Bytes of snapshot data all streams together may read per tick on average (the throttle
    // above), or 0 for no limit. REQUIRES: < 2^60, and chunk_bytes < 2^60 when it is not 0.
    uint64_t max_bytes_per_tick = 0;
  };
  struct Hooks {
    // A reader of the state machine's current state, or nullptr when none may be opened now
    // (the state is being replaced by an install).
    std::function<std::unique_ptr<kv::StateMachine::SnapshotReader>(size_t chunk_bytes)>
        open_reader;
    SendFrameFn send_frame;
    // The stream to `follower` failed: the core must probe it again.
    std::function<void(raft::NodeId follower)> report_failure;
    LogFn log;  // may be empty
  };
  struct Stats {
    uint64_t started = 0;
    uint64_t completed = 0;  // every chunk acknowledged
    uint64_t abandoned = 0;
    uint64_t chunks_sent = 0;
    uint64_t bytes_sent = 0;
    uint64_t throttled_ticks = 0;  // ticks in which some stream waited for budget
  };
  // One stream, for INFO.
  struct Progress {
    raft::NodeId follower = raft::kNoNode;
    raft::SnapshotMeta snapshot;  // what the stream carries
    uint64_t bytes_sent = 0;
    uint64_t bytes_acked = 0;  // the follower has written this much of it
    uint64_t chunks_sent = 0;
    uint64_t elapsed_ticks = 0;  // ticks since the stream started
    bool throttled = false;      // its next read waits for budget
  };

  // REQUIRES: `background` outlives this object, and calls no `done` after it is destroyed.
  SnapshotSender(Options options, Hooks hooks, BackgroundWork* background);

  SnapshotSender(const SnapshotSender&) = delete;
  SnapshotSender& operator=(const SnapshotSender&) = delete;

  // The core asks for a snapshot: `m` is a kSnapshot message from this node, the leader of
  // m.term, to m.to. Starts a stream of the state machine's current state (at or past the
  // core's m.snapshot: the chunks name what they carry, and the follower hands the core exactly
  // that). If a stream to m.to in m.term is under way, it goes on: the core asks again when its
  // snapshot timeout runs out, which a large snapshot may outlast.
  void Start(const raft::Message& m);

  // An acknowledgement from a follower (frames of no current stream are ignored).
  void OnAck(const protocol::SnapshotAck& ack);

  // One tick of logical time. `leader`, `term`: whether this node leads, and its term; streams
  // of another term end without a report to the core.
  void Tick(bool leader, raft::Term term);

  // Ends every stream, reporting nothing; later calls do nothing (the node stops).
  void Stop();

  bool streaming(raft::NodeId follower) const { return streams_.count(follower) > 0; }
  const Stats& stats() const { return stats_; }
  // The streams under way, in order of follower id.
  std::vector<Progress> progress() const;

 private:
  struct Stream {
    uint64_t id = 0;  // tells a stream from an earlier one to the same follower
    raft::Term term = 0;
    raft::SnapshotMeta meta;
    // Null while a read holds it, and once the last chunk is read.
    std::unique_ptr<kv::StateMachine::SnapshotReader> reader;
    bool reading = false;
    bool read_all = false;
    uint64_t sent = 0;             // bytes sent
    uint64_t acked = 0;            // bytes acknowledged
    std::deque<uint64_t> unacked;  // end offset of each chunk sent and not acknowledged
    uint64_t chunks = 0;
    int idle_ticks = 0;  // ticks without an acknowledgement while something was owed
    uint64_t elapsed_ticks = 0;
    bool throttled = false;  // the window has room, the budget has not
  };
  struct ReadJob;

  bool throttling() const { return options_.max_bytes_per_tick > 0; }
  int64_t budget_cap() const { return static_cast<int64_t>(options_.max_bytes_per_tick); }
  // Returns `bytes` of charge to the budget, up to its cap.
  void Refund(int64_t bytes);
  // Reads the next chunk if the window has room and the budget allows. Does nothing after
  // handing the read over.
  void Pump(raft::NodeId follower);
  // Pumps the streams waiting for budget, round-robin after the one that read last.
  void PumpThrottled();
  void OnRead(raft::NodeId follower, uint64_t id, const std::shared_ptr<ReadJob>& job);
  void Abandon(raft::NodeId follower, const std::string& why, bool report);
  void Log(LogLevel level, const std::string& line);

  Options options_;
  Hooks hooks_;
  BackgroundWork* background_;
  std::map<raft::NodeId, Stream> streams_;
  uint64_t next_id_ = 0;
  // The throttle's bucket, in bytes; at most budget_cap(), negative while in debt.
  int64_t budget_ = 0;
  raft::NodeId last_read_ = raft::kNoNode;  // the stream that started a read last
  bool stopped_ = false;
  Stats stats_;
};

class SnapshotReceiver {
 public:
  struct Options {
    raft::NodeId self = raft::kNoNode;
    // Ticks without a chunk after which an incomplete stream is dropped. REQUIRES: >= 1.
    int stall_ticks = 40;
    // Chunks waiting while one is written; more are dropped (a sender keeps a window far
    // smaller, so only a misbehaving one gets here, and its stream then has a hole).
    size_t max_queued_chunks = 64;
  };
  struct Hooks {
    // Why a chunk must be refused now, or "" to take it. Asked when the chunk's turn comes.
    std::function<std::string(const protocol::SnapshotChunk& chunk)> refusal;
    // Starts a writer for a new stream. Runs on a background thread.
    std::function<common::Status(std::unique_ptr<kv::StateMachine::SnapshotWriter>* out)>
        new_writer;
    SendFrameFn send_frame;
    // The stream of snapshot `meta` from `from` in `term` is complete. The hook may take its
    // writer (TakeCompleted) while it runs; a writer it does not take is discarded.
    std::function<void(raft::NodeId from, raft::Term term, const raft::SnapshotMeta& meta)>
        on_complete;
    // Writing failed other than by a bad chunk (a full disk, EIO): the node must stop.
    std::function<void(const common::Status& status)> on_fatal;
    LogFn log;  // may be empty
  };
  struct Stats {
    uint64_t started = 0;    // streams begun (chunks at offset 0 taken)
    uint64_t completed = 0;  // streams whose last chunk was written
    uint64_t chunks_written = 0;
    uint64_t chunks_refused = 0;  // answered ok = false
    uint64_t chunks_skipped = 0;  // out of place: answered with what it has, not written
  };
  // The stream being received, for INFO.
  struct ReceiveProgress {
    raft::NodeId from = raft::kNoNode;
    raft::SnapshotMeta snapshot;
    uint64_t bytes_received = 0;  // written
    uint64_t elapsed_ticks = 0;   // ticks since its first chunk was taken
  };

  // REQUIRES: `background` outlives this object, and calls no `done` after it is destroyed.
  SnapshotReceiver(Options options, Hooks hooks, BackgroundWork* background);

  SnapshotReceiver(const SnapshotReceiver&) = delete;
  SnapshotReceiver& operator=(const SnapshotReceiver&) = delete;

  // A chunk addressed to this node.
  void OnChunk(protocol::SnapshotChunk chunk);

  // From within on_complete only: the complete stream's writer if it is of `meta`, else null.
  std::unique_ptr<kv::StateMachine::SnapshotWriter> TakeCompleted(const raft::SnapshotMeta& meta);

  // One tick of logical time.
  void Tick();

  // Drops everything waiting; later calls do nothing (the node stops).
  void Stop();

  const Stats& stats() const { return stats_; }
  // The stream being received, if any.
  std::optional<ReceiveProgress> progress() const;

 private:
  struct Stream {
    raft::NodeId from = raft::kNoNode;
    raft::Term term = 0;
    raft::SnapshotMeta meta;
    uint64_t received = 0;  // bytes written
    int idle_ticks = 0;
    uint64_t elapsed_ticks = 0;
  };
  struct WriteJob;

  bool Continues(const protocol::SnapshotChunk& chunk) const;
  // Takes queued chunks until one needs background work.
  void Pump();
  void Write(protocol::SnapshotChunk chunk, bool new_stream);
  void OnWritten(const std::shared_ptr<WriteJob>& job);
  // Closes `writer` in the background (closing a LevelDB may wait for its compactions).
  void Discard(std::unique_ptr<kv::StateMachine::SnapshotWriter> writer);
  void Ack(const protocol::SnapshotChunk& chunk, uint64_t offset_received, bool ok,
           const std::string& error);
  void Log(LogLevel level, const std::string& line);

  Options options_;
  Hooks hooks_;
  BackgroundWork* background_;
  std::optional<Stream> stream_;
  // The current stream's writer; null while background work holds it.
  std::unique_ptr<kv::StateMachine::SnapshotWriter> writer_;
  std::deque<protocol::SnapshotChunk> queue_;
  bool busy_ = false;        // background work is under way: the next waits
  bool completing_ = false;  // inside on_complete
  bool stopped_ = false;
  Stats stats_;
};

}  // namespace server
