#include "server/snapshot_stream.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "common/check.h"

namespace server {

namespace {

std::string Describe(const raft::SnapshotMeta& meta) {
  return "snapshot " + std::to_string(meta.index) + " (term " + std::to_string(meta.term) + ")";
}

raft::SnapshotMeta MetaOf(const protocol::SnapshotChunk& c) {
  return {c.snapshot_index, c.snapshot_term};
}

}  // namespace

// ---- SnapshotSender ----

struct SnapshotSender::ReadJob {
  std::unique_ptr<kv::StateMachine::SnapshotReader> reader;
  std::string chunk;
  bool last = false;
  common::Status status;
  int64_t charged = 0;  // taken from the budget when the read started
};

SnapshotSender::SnapshotSender(Options options, Hooks hooks, BackgroundWork* background)
    : options_(options), hooks_(std::move(hooks)), background_(background) {
  CHECK(options_.window_chunks >= 1 && options_.stall_ticks >= 1) << "bad snapshot options";
  // Far from overflowing the budget's int64_t, whatever the debt of a chunk of one large value.
  constexpr uint64_t kMaxBytes = uint64_t{1} << 60;
  CHECK(options_.max_bytes_per_tick < kMaxBytes &&
        (!throttling() || options_.chunk_bytes < kMaxBytes))
      << "bad snapshot throttle";
  budget_ = budget_cap();
  if (throttling()) {
    uint64_t fits = options_.max_bytes_per_tick * static_cast<uint64_t>(options_.stall_ticks) / 4;
    fits = std::max<uint64_t>(fits, kMinThrottledChunkBytes);
    options_.chunk_bytes = static_cast<size_t>(std::min<uint64_t>(options_.chunk_bytes, fits));
  }
}

void SnapshotSender::Refund(int64_t bytes) { budget_ = std::min(budget_ + bytes, budget_cap()); }

void SnapshotSender::Log(LogLevel level, const std::string& line) {
  if (hooks_.log) hooks_.log(level, line);
}

void SnapshotSender::Start(const raft::Message& m) {
  if (stopped_) return;
  auto it = streams_.find(m.to);
  if (it != streams_.end()) {
    if (it->second.term == m.term) return;  // under way: the core only re-armed its timeout
    Abandon(m.to, "term " + std::to_string(m.term) + " began", false);
  }
  std::unique_ptr<kv::StateMachine::SnapshotReader> reader =
      hooks_.open_reader(options_.chunk_bytes);
  if (reader == nullptr) {
    Log(LogLevel::kNotice, "cannot send a snapshot to node " + std::to_string(m.to) +
                               " now: this node's state is being replaced");
    hooks_.report_failure(m.to);
    return;
  }
  Stream s;
  s.id = ++next_id_;
  s.term = m.term;
  s.meta = reader->meta();
  s.reader = std::move(reader);
  // The core compacts its log only up to what the state machine has applied.
  CHECK(s.meta.index >= m.snapshot.index)
      << "state machine at " << s.meta.index << ", behind the log's snapshot " << m.snapshot.index;
  stats_.started++;
  Log(LogLevel::kNotice, "sending " + Describe(s.meta) + " to node " + std::to_string(m.to));
  streams_.emplace(m.to, std::move(s));
  Pump(m.to);
}

void SnapshotSender::Pump(raft::NodeId follower) {
  auto it = streams_.find(follower);
  if (it == streams_.end()) return;
  Stream& s = it->second;
  if (s.reading || s.read_all || s.unacked.size() >= options_.window_chunks) return;
  s.throttled = throttling() && budget_ <= 0;
  if (s.throttled) return;
  s.reading = true;
  auto job = std::make_shared<ReadJob>();
  job->reader = std::move(s.reader);
  if (throttling()) {
    // Charged before the read, so that no other stream spends the same budget meanwhile.
    job->charged = static_cast<int64_t>(options_.chunk_bytes);
    budget_ -= job->charged;
    last_read_ = follower;
  }
  uint64_t id = s.id;
  // `done` may run inside Run (InlineBackgroundWork): nothing here after it.
  background_->Run([job] { job->status = job->reader->Next(&job->chunk, &job->last); },
                   [this, follower, id, job] { OnRead(follower, id, job); });
}

void SnapshotSender::PumpThrottled() {
  if (!throttling()) return;
  std::vector<raft::NodeId> turn;
  for (auto it = streams_.upper_bound(last_read_); it != streams_.end(); ++it) {
    if (it->second.throttled) turn.push_back(it->first);
  }
  for (auto it = streams_.begin(); it != streams_.end() && it->first <= last_read_; ++it) {
    if (it->second.throttled) turn.push_back(it->first);
  }
  // By id: a read may finish inside Pump (InlineBackgroundWork) and end a stream.
  for (raft::NodeId follower : turn) {
    if (budget_ <= 0) break;
    Pump(follower);
  }
}

void SnapshotSender::OnRead(raft::NodeId follower, uint64_t id,
                            const std::shared_ptr<ReadJob>& job) {
  if (stopped_) return;
  auto it = streams_.find(follower);
  if (it == streams_.end() || it->second.id != id || !job->status.ok()) {
    // Nothing is sent: the budget gets its charge back.
    Refund(job->charged);
    if (it != streams_.end() && it->second.id == id) {
      Abandon(follower, "reading it failed: " + job->status.ToString(), true);
    }
    PumpThrottled();
    return;
  }
  Stream& s = it->second;
  s.reading = false;
  // After the last chunk the reader goes with the job, releasing its LevelDB snapshot.
  if (!job->last) s.reader = std::move(job->reader);
  size_t bytes = job->chunk.size();
  protocol::SnapshotChunk c;
  c.from = options_.self;
  c.to = follower;
  c.term = s.term;
  c.snapshot_index = s.meta.index;
  c.snapshot_term = s.meta.term;
  c.offset = s.sent;
  c.data = std::move(job->chunk);
  c.last = job->last;
  if (!hooks_.send_frame(follower, c)) {
    Refund(job->charged);
    Abandon(follower, "the transport did not take a chunk", true);
    PumpThrottled();
    return;
  }
  if (throttling()) {
    // The charge was an estimate: the chunk costs what it holds.
    int64_t actual = static_cast<int64_t>(bytes);
    if (actual > job->charged) {
      budget_ -= actual - job->charged;
    } else {
      Refund(job->charged - actual);
    }
  }
  s.sent += bytes;
  s.unacked.push_back(s.sent);
  s.read_all = job->last;
  s.chunks++;
  stats_.chunks_sent++;
  stats_.bytes_sent += bytes;
  // Streams waiting for budget go first: this one just had its turn.
  PumpThrottled();
  Pump(follower);
}

void SnapshotSender::OnAck(const protocol::SnapshotAck& ack) {
  if (stopped_) return;
  auto it = streams_.find(ack.from);
  if (it == streams_.end()) return;
  Stream& s = it->second;
  if (!(s.meta == raft::SnapshotMeta{ack.snapshot_index, ack.snapshot_term})) return;
  if (!ack.ok) {
    Abandon(ack.from, "node " + std::to_string(ack.from) + " refused it: " + ack.error, true);
    return;
  }
  // Beyond what this stream sent: an answer to an earlier stream of the same snapshot.
  if (ack.offset_received > s.sent || s.unacked.empty()) return;
  if (ack.offset_received < s.unacked.front()) {
    // The follower answers every chunk once, with the end of what it has written: an answer
    // short of the oldest chunk in flight means that chunk never reached it (frames dropped
    // with a connection, or the follower restarted). Chunks are not resent: start over. (A
    // late answer to an earlier stream can look the same; that costs one more stream.)
    Abandon(ack.from,
            "node " + std::to_string(ack.from) + " has only " +
                std::to_string(ack.offset_received) + " bytes of it: chunks were lost",
            true);
    return;
  }
  while (!s.unacked.empty() && s.unacked.front() <= ack.offset_received) s.unacked.pop_front();
  s.acked = ack.offset_received;
  s.idle_ticks = 0;
  if (s.read_all && s.unacked.empty()) {
    stats_.completed++;
    Log(LogLevel::kNotice, "sent " + Describe(s.meta) + " to node " + std::to_string(ack.from) +
                               ": " + std::to_string(s.chunks) + " chunks, " +
                               std::to_string(s.sent) + " bytes");
    streams_.erase(it);
    return;
  }
  Pump(ack.from);
}

void SnapshotSender::Tick(bool leader, raft::Term term) {
  if (stopped_) return;
  struct End {
    raft::NodeId follower;
    std::string why;
    bool report;
  };
  std::vector<End> ends;
  bool throttled = false;
  for (auto& [follower, s] : streams_) {
    s.elapsed_ticks++;
    throttled = throttled || s.throttled;
    if (!leader || s.term != term) {
      ends.push_back({follower, "this node no longer leads term " + std::to_string(s.term), false});
      continue;
    }
    // Only what the follower or the disk owes counts: waiting for budget is not stalling.
    if (s.unacked.empty() && !s.reading) continue;
    if (++s.idle_ticks >= options_.stall_ticks) {
      ends.push_back(
          {follower, "no chunk acknowledged in " + std::to_string(s.idle_ticks) + " ticks", true});
    }
  }
  if (throttled) stats_.throttled_ticks++;
  for (const End& e : ends) Abandon(e.follower, e.why, e.report);
  if (!throttling()) return;
  Refund(budget_cap());
  PumpThrottled();
}

std::vector<SnapshotSender::Progress> SnapshotSender::progress() const {
  std::vector<Progress> out;
  out.reserve(streams_.size());
  for (const auto& [follower, s] : streams_) {
    out.push_back({follower, s.meta, s.sent, s.acked, s.chunks, s.elapsed_ticks, s.throttled});
  }
  return out;
}

void SnapshotSender::Abandon(raft::NodeId follower, const std::string& why, bool report) {
  auto it = streams_.find(follower);
  if (it == streams_.end()) return;
  stats_.abandoned++;
  Log(report ? LogLevel::kWarning : LogLevel::kNotice, "abandoned sending " +
                                                           Describe(it->second.meta) + " to node " +
                                                           std::to_string(follower) + ": " + why);
  // A read in flight keeps its reader; its outcome finds no stream and is dropped.
  streams_.erase(it);
  if (report) hooks_.report_failure(follower);
}

void SnapshotSender::Stop() {
  stopped_ = true;
  streams_.clear();
}

// ---- SnapshotReceiver ----

struct SnapshotReceiver::WriteJob {
  protocol::SnapshotChunk header;  // the chunk without its data
  std::string data;
  size_t bytes = 0;
  bool new_stream = false;
  std::unique_ptr<kv::StateMachine::SnapshotWriter> old;  // closed first (same directory)
  std::unique_ptr<kv::StateMachine::SnapshotWriter> writer;
  common::Status status;
};

SnapshotReceiver::SnapshotReceiver(Options options, Hooks hooks, BackgroundWork* background)
    : options_(options), hooks_(std::move(hooks)), background_(background) {
  CHECK(options_.stall_ticks >= 1) << "bad snapshot options";
}

void SnapshotReceiver::Log(LogLevel level, const std::string& line) {
  if (hooks_.log) hooks_.log(level, line);
}

void SnapshotReceiver::Ack(const protocol::SnapshotChunk& chunk, uint64_t offset_received, bool ok,
                           const std::string& error) {
  protocol::SnapshotAck a;
  a.from = options_.self;
  a.to = chunk.from;
  a.snapshot_index = chunk.snapshot_index;
  a.snapshot_term = chunk.snapshot_term;
  a.offset_received = offset_received;
  a.ok = ok;
  a.error = error;
  // Best effort: a lost answer stalls the sender, which then starts over.
  (void)hooks_.send_frame(chunk.from, a);
}

bool SnapshotReceiver::Continues(const protocol::SnapshotChunk& chunk) const {
  return stream_.has_value() && writer_ != nullptr && chunk.from == stream_->from &&
         chunk.term == stream_->term && MetaOf(chunk) == stream_->meta &&
         chunk.offset == stream_->received;
}

void SnapshotReceiver::OnChunk(protocol::SnapshotChunk chunk) {
  if (stopped_) return;
  if (queue_.size() >= options_.max_queued_chunks) {
    stats_.chunks_skipped++;
    Log(LogLevel::kWarning, "dropped a snapshot chunk from node " + std::to_string(chunk.from) +
                                ": " + std::to_string(queue_.size()) + " are waiting");
    return;
  }
  queue_.push_back(std::move(chunk));
  Pump();
}

void SnapshotReceiver::Pump() {
  while (!busy_ && !stopped_ && !queue_.empty()) {
    protocol::SnapshotChunk c = std::move(queue_.front());
    queue_.pop_front();
    bool same_stream = stream_.has_value() && c.from == stream_->from && c.term == stream_->term &&
                       MetaOf(c) == stream_->meta;
    std::string why = hooks_.refusal(c);
    if (!why.empty()) {
      stats_.chunks_refused++;
      Ack(c, 0, false, why);
      if (same_stream) {
        stream_.reset();
        if (writer_ != nullptr) Discard(std::move(writer_));
      }
      continue;
    }
    if (c.offset == 0) {
      // A sender never resends a chunk within a stream: offset 0 is always a new stream.
      Write(std::move(c), true);
    } else if (Continues(c)) {
      Write(std::move(c), false);
    } else {
      // A repeat, a chunk after a hole, or the middle of a stream this node does not have:
      // say what it has; the sender decides.
      stats_.chunks_skipped++;
      Ack(c, same_stream ? stream_->received : 0, true, "");
    }
  }
}

void SnapshotReceiver::Write(protocol::SnapshotChunk chunk, bool new_stream) {
  auto job = std::make_shared<WriteJob>();
  job->data = std::move(chunk.data);
  job->bytes = job->data.size();
  chunk.data.clear();
  job->header = std::move(chunk);
  job->new_stream = new_stream;
  if (new_stream) {
    if (stream_.has_value()) {
      Log(LogLevel::kNotice, "dropped the incomplete " + Describe(stream_->meta) + " from node " +
                                 std::to_string(stream_->from) + ": a new stream began");
    }
    job->old = std::move(writer_);
    stream_ = Stream{job->header.from, job->header.term, MetaOf(job->header), 0, 0, 0};
    stats_.started++;
  } else {
    job->writer = std::move(writer_);
  }
  busy_ = true;
  // Copied: the work must not touch this object.
  auto new_writer = hooks_.new_writer;
  background_->Run(
      [job, new_writer] {
        job->old.reset();
        if (job->new_stream) {
          job->status = new_writer(&job->writer);
          if (!job->status.ok()) return;
        }
        job->status = job->writer->Add(job->data);
        raft::SnapshotMeta named = MetaOf(job->header);
        if (job->status.ok() && !(job->writer->meta() == named)) {
          job->status =
              common::Status::InvalidArgument("the chunk's frame names " + Describe(named) +
                                              ", its content " + Describe(job->writer->meta()));
        }
        job->data = std::string();  // the megabyte goes now, not with the job
      },
      [this, job] { OnWritten(job); });
}

void SnapshotReceiver::OnWritten(const std::shared_ptr<WriteJob>& job) {
  busy_ = false;
  if (stopped_) return;
  const protocol::SnapshotChunk& c = job->header;
  if (!job->status.ok()) {
    stream_.reset();
    bool fatal = job->status.code() == common::Status::Code::kIOError;
    if (!fatal) {
      stats_.chunks_refused++;
      Log(LogLevel::kWarning, "refused " + Describe(MetaOf(c)) + " from node " +
                                  std::to_string(c.from) + ": " + job->status.ToString());
      Ack(c, 0, false, job->status.ToString());
    }
    // The owner stops on a fatal error (Stop()) before anything else is taken from the queue.
    if (fatal) hooks_.on_fatal(job->status);
    if (job->writer != nullptr) Discard(std::move(job->writer));
    Pump();
    return;
  }
  writer_ = std::move(job->writer);
  stream_->received += job->bytes;
  stream_->idle_ticks = 0;
  stats_.chunks_written++;
  Ack(c, stream_->received, true, "");
  if (c.last) {
    Stream done = *stream_;
    stats_.completed++;
    Log(LogLevel::kNotice, "received " + Describe(done.meta) + " from node " +
                               std::to_string(done.from) + ": " + std::to_string(done.received) +
                               " bytes");
    completing_ = true;
    hooks_.on_complete(done.from, done.term, done.meta);
    completing_ = false;
    stream_.reset();
    if (stopped_) return;
    if (writer_ != nullptr) Discard(std::move(writer_));
  }
  Pump();
}

std::unique_ptr<kv::StateMachine::SnapshotWriter> SnapshotReceiver::TakeCompleted(
    const raft::SnapshotMeta& meta) {
  if (!completing_ || !stream_.has_value() || !(stream_->meta == meta)) return nullptr;
  return std::move(writer_);
}

void SnapshotReceiver::Discard(std::unique_ptr<kv::StateMachine::SnapshotWriter> writer) {
  busy_ = true;
  auto holder =
      std::make_shared<std::unique_ptr<kv::StateMachine::SnapshotWriter>>(std::move(writer));
  background_->Run([holder] { holder->reset(); },
                   [this] {
                     busy_ = false;
                     Pump();
                   });
}

void SnapshotReceiver::Tick() {
  if (stopped_ || !stream_.has_value()) return;
  stream_->elapsed_ticks++;
  if (busy_ || !queue_.empty()) return;
  if (++stream_->idle_ticks < options_.stall_ticks) return;
  Log(LogLevel::kNotice, "dropped the incomplete " + Describe(stream_->meta) + " from node " +
                             std::to_string(stream_->from) + ": nothing came for " +
                             std::to_string(stream_->idle_ticks) + " ticks");
  stream_.reset();
  if (writer_ != nullptr) Discard(std::move(writer_));
}

std::optional<SnapshotReceiver::ReceiveProgress> SnapshotReceiver::progress() const {
  if (!stream_.has_value()) return std::nullopt;
  return ReceiveProgress{stream_->from, stream_->meta, stream_->received, stream_->elapsed_ticks};
}

void SnapshotReceiver::Stop() {
  stopped_ = true;
  queue_.clear();
  stream_.reset();
}

}  // namespace server
