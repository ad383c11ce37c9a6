#include "server/raft_driver.h"

#include <algorithm>

#include "common/check.h"
#include "protocol/command.h"

namespace server {

namespace {

// The `before` work of the storage step that installs a received snapshot.
std::function<common::Status()> InstallTask(
    kv::NodeStorage* storage, std::unique_ptr<kv::StateMachine::SnapshotWriter> writer,
    const raft::SnapshotMeta& meta) {
  std::shared_ptr<kv::StateMachine::SnapshotWriter> w(std::move(writer));
  return [storage, w, meta]() -> common::Status {
    // Data durable, the state switched, then the log's metadata in a synced batch dropping the
    // entries it covers (kv/node_storage.h).
    raft::SnapshotMeta installed;
    common::Status s = storage->FinishInstall(w.get(), &installed);
    if (!s.ok()) return s;
    if (!(installed == meta)) {
      return common::Status::Corruption("installed snapshot " + std::to_string(installed.index) +
                                        " (term " + std::to_string(installed.term) +
                                        "), expected " + std::to_string(meta.index) + " (term " +
                                        std::to_string(meta.term) + ")");
    }
    return common::Status::OK();
  };
}

}  // namespace

RaftDriver::RaftDriver(raft::Config config, kv::NodeStorage* storage, Transport* transport,
                       std::function<void()> wakeup, Options options)
    : config_(std::move(config)),
      storage_(storage),
      transport_(transport),
      wakeup_(std::move(wakeup)),
      options_(std::move(options)),
      background_(std::move(options_.background)) {
  if (background_ == nullptr) background_ = std::make_unique<InlineBackgroundWork>();
  if (options_.snapshot_stall_ticks <= 0) {
    options_.snapshot_stall_ticks = 4 * std::max(1, config_.election_ticks);
  }
}

RaftDriver::RaftDriver(raft::Config config, kv::NodeStorage* storage, Transport* transport,
                       std::function<void()> wakeup)
    : RaftDriver(std::move(config), storage, transport, std::move(wakeup), Options()) {}

RaftDriver::~RaftDriver() {
  storage_thread_.reset();  // writes what is queued; its reports are no longer needed
}

void RaftDriver::Log(LogLevel level, const std::string& line) {
  if (options_.log) options_.log(level, line);
}

common::Status RaftDriver::Start() {
  raft::PersistentState state;
  raft::Index applied;
  common::Status s = storage_->Load(&state, &applied);
  if (!s.ok()) return s;
  config_.applied = applied;
  applied_ = applied;
  key_count_ = storage_->state()->key_count();
  session_count_ = storage_->state()->session_count();
  node_ = std::make_unique<raft::Node>(config_, state);
  compact_target_ = state.snapshot.index;
  // Applied before this process: one command per entry (CommandCounts' rule).
  commands_since_compaction_ = applied > state.snapshot.index ? applied - state.snapshot.index : 0;
  storage_thread_ = std::make_unique<StorageThread>(
      storage_->log(), [this](uint64_t id, const common::Status& st) { OnStorageDone(id, st); });

  SnapshotSender::Options so;
  so.self = config_.id;
  so.chunk_bytes = options_.snapshot_chunk_bytes;
  so.window_chunks = options_.snapshot_window_chunks;
  so.stall_ticks = options_.snapshot_stall_ticks;
  so.max_bytes_per_tick = options_.snapshot_bytes_per_tick;
  SnapshotSender::Hooks sh;
  sh.open_reader = [this](size_t chunk_bytes) -> std::unique_ptr<kv::StateMachine::SnapshotReader> {
    if (installing_) return nullptr;
    return storage_->state()->NewSnapshotReader(chunk_bytes);
  };
  sh.send_frame = [this](raft::NodeId peer, const protocol::PeerFrame& frame) {
    return transport_->SendFrame(peer, frame);
  };
  sh.report_failure = [this](raft::NodeId follower) { node_->ReportSnapshotFailure(follower); };
  sh.log = options_.log;
  sender_ = std::make_unique<SnapshotSender>(so, std::move(sh), background_.get());

  SnapshotReceiver::Options ro;
  ro.self = config_.id;
  ro.stall_ticks = options_.snapshot_stall_ticks;
  SnapshotReceiver::Hooks rh;
  rh.refusal = [this](const protocol::SnapshotChunk& c) -> std::string {
    // One generation is built at a time, and an install switches the state under it.
    if (installing_) return "this node is installing another snapshot";
    if (c.term < node_->term()) {
      return "stale term " + std::to_string(c.term) + " (this node is in term " +
             std::to_string(node_->term()) + ")";
    }
    return "";
  };
  kv::StateMachine* sm = storage_->state();
  rh.new_writer = [sm](std::unique_ptr<kv::StateMachine::SnapshotWriter>* out) {
    return sm->NewSnapshotWriter(out);
  };
  rh.send_frame = [this](raft::NodeId peer, const protocol::PeerFrame& frame) {
    return transport_->SendFrame(peer, frame);
  };
  rh.on_complete = [this](raft::NodeId from, raft::Term term, const raft::SnapshotMeta& meta) {
    OnSnapshotReceived(from, term, meta);
  };
  rh.on_fatal = [this](const common::Status& st) { Fail(st); };
  rh.log = options_.log;
  receiver_ = std::make_unique<SnapshotReceiver>(ro, std::move(rh), background_.get());
  return common::Status::OK();
}

void RaftDriver::OnStorageDone(uint64_t id, const common::Status& status) {
  // Under the lock, so that once Stop() returns no wakeup is under way.
  std::lock_guard<std::mutex> lock(news_mu_);
  news_durable_id_ = id;
  if (!status.ok() && news_status_.ok()) news_status_ = status;
  if (!news_stopped_) wakeup_();
}

void RaftDriver::Stop() {
  stopped_ = true;
  if (sender_) sender_->Stop();
  if (receiver_) receiver_->Stop();
  std::lock_guard<std::mutex> lock(news_mu_);
  news_stopped_ = true;
}

void RaftDriver::AnswerAll(std::vector<ProposeCallback>* cbs, Outcome outcome) {
  for (ProposeCallback& cb : *cbs) cb(outcome, nullptr);
}

void RaftDriver::Fail(const common::Status& s) {
  if (!failure_.ok()) return;
  failure_ = s;
  // A failed node sends and writes nothing more.
  if (sender_) sender_->Stop();
  if (receiver_) receiver_->Stop();
  // Nothing more is acknowledged: every waiter learns it now.
  auto proposals = std::move(proposals_);
  proposals_.clear();
  std::vector<ProposeCallback> queued;
  queued.swap(queued_cbs_);
  queued_.clear();
  queued_bytes_ = 0;
  for (auto& [_, p] : proposals) AnswerAll(&p.cbs, Outcome::kFailed);
  AnswerAll(&queued, Outcome::kFailed);
  auto waiting = std::move(reads_waiting_);
  reads_waiting_.clear();
  for (auto& [_, w] : waiting) w.cb(Outcome::kFailed);
  auto ready = std::move(reads_ready_);
  reads_ready_.clear();
  for (auto& r : ready) r.cb(Outcome::kFailed);
}

uint64_t RaftDriver::Deadline() const {
  return request_timeout_ticks_ == 0 ? UINT64_MAX : ticks_ + request_timeout_ticks_;
}

void RaftDriver::Tick() {
  if (!active()) return;
  ticks_++;
  node_->Tick();
  ReleaseHeldIfNotLeader();
  CheckApplyBlocked();
  sender_->Tick(node_->role() == raft::Role::kLeader, node_->term());
  receiver_->Tick();
  ExpireRequests();
}

void RaftDriver::ExpireRequests() {
  // Proposals are keyed by index, which grows with time except after a leader change
  // truncated the log; one pass over the map is cheap next to a tick.
  for (auto it = proposals_.begin(); it != proposals_.end();) {
    if (it->second.deadline > ticks_) {
      ++it;
      continue;
    }
    std::vector<ProposeCallback> cbs = std::move(it->second.cbs);
    it = proposals_.erase(it);
    AnswerAll(&cbs, Outcome::kUnknown);
  }
  // Read contexts grow with time: the expired ones come first.
  while (!reads_waiting_.empty() && reads_waiting_.begin()->second.deadline <= ticks_) {
    ReadCallback cb = std::move(reads_waiting_.begin()->second.cb);
    reads_waiting_.erase(reads_waiting_.begin());
    cb(Outcome::kUnknown);
  }
  std::vector<PendingRead> still;
  for (PendingRead& r : reads_ready_) {
    if (r.deadline <= ticks_) {
      r.cb(Outcome::kUnknown);
    } else {
      still.push_back(std::move(r));
    }
  }
  reads_ready_ = std::move(still);
}

void RaftDriver::Step(const raft::Message& m) {
  if (!active() || m.type == raft::MessageType::kSnapshot) return;
  node_->Step(m);
  ReleaseHeldIfNotLeader();
}

void RaftDriver::CheckApplyBlocked() {
  // During an install the state machine belongs to the storage thread: not asked.
  if (!options_.apply_would_block || installing_) return;
  const bool blocked = options_.apply_would_block();
  if (blocked == node_->apply_paused()) return;
  node_->set_apply_paused(blocked);
  if (blocked) {
    apply_pauses_++;
    Log(LogLevel::kVerbose, "applying paused: the state's storage would stall writes");
  } else {
    Log(LogLevel::kVerbose, "applying resumed");
    wakeup_();  // what committed meanwhile is handed out at once
  }
}

void RaftDriver::ReleaseHeldIfNotLeader() {
  // Held writes are answered now (kNotLeader), before any later request of their connections
  // is routed elsewhere: a pipeline's writes reach the new leader in the order they came.
  if (!queued_.empty() && node_->role() != raft::Role::kLeader) ProposeQueued();
}

common::Status RaftDriver::TransferLeadership(raft::NodeId target) {
  if (!active()) return common::Status::InvalidArgument("not leader");
  // The writes held so far are proposed first: they came before the transfer.
  ProposeQueued();
  return node_->TransferLeadership(target);
}

void RaftDriver::OnSnapshotChunk(protocol::SnapshotChunk chunk) {
  if (!active()) return;
  receiver_->OnChunk(std::move(chunk));
}

void RaftDriver::OnSnapshotAck(const protocol::SnapshotAck& ack) {
  if (!active()) return;
  sender_->OnAck(ack);
}

void RaftDriver::OnSnapshotReceived(raft::NodeId from, raft::Term term,
                                    const raft::SnapshotMeta& meta) {
  if (!active()) return;
  // The message the chunks stand for (raft/types.h: the leader's driver replaced the core's
  // snapshot metadata with what it streamed).
  raft::Message m;
  m.type = raft::MessageType::kSnapshot;
  m.from = from;
  m.to = config_.id;
  m.term = term;
  m.snapshot = meta;
  node_->Step(m);
  ReleaseHeldIfNotLeader();
  // If the node takes it, this Ready carries it: Flush takes the writer now. Otherwise (stale,
  // or already covered by the log) the receiver discards it.
  Flush();
}

void RaftDriver::Propose(std::string command, ProposeCallback cb, bool batchable) {
  if (!active()) {
    cb(Outcome::kFailed, nullptr);
    return;
  }
  // What a batch adds to each command (its table, length and alignment) and, once, to all of
  // them (its own table and vector: counted in queued_bytes_ from the start), so that a batch
  // of max_batch_bytes stays under it.
  constexpr size_t kBatchOverhead = 32;
  constexpr size_t kBatchHeader = 64;
  const size_t bytes = command.size() + kBatchOverhead;
  if (batchable && kBatchHeader + bytes <= options_.max_batch_bytes &&
      node_->role() == raft::Role::kLeader) {
    if (queued_bytes_ + bytes > options_.max_batch_bytes) ProposeQueued();
    if (queued_.empty()) queued_bytes_ = kBatchHeader;
    queued_bytes_ += bytes;
    queued_.push_back(std::move(command));
    queued_cbs_.push_back(std::move(cb));
    return;
  }
  ProposeQueued();  // those before it first
  std::vector<ProposeCallback> cbs;
  cbs.push_back(std::move(cb));
  ProposeEntry(std::move(command), std::move(cbs));
}

void RaftDriver::ProposeQueued() {
  if (queued_.empty()) return;
  std::vector<std::string> commands;
  commands.swap(queued_);
  std::vector<ProposeCallback> cbs;
  cbs.swap(queued_cbs_);
  queued_bytes_ = 0;
  std::string data =
      commands.size() == 1 ? std::move(commands[0]) : protocol::EncodeBatch(commands);
  ProposeEntry(std::move(data), std::move(cbs));
}

void RaftDriver::ProposeEntry(std::string data, std::vector<ProposeCallback> cbs) {
  if (!active()) {
    AnswerAll(&cbs, Outcome::kFailed);
    return;
  }
  raft::Index index;
  raft::Term term;
  common::Status s = node_->Propose(std::move(data), &index, &term);
  if (!s.ok()) {
    // Never proposed: another node leads, or a transfer or back-pressure holds proposals.
    if (s.code() == common::Status::Code::kBusy) busy_reason_ = s.message();
    AnswerAll(&cbs, s.code() == common::Status::Code::kBusy ? Outcome::kBusy : Outcome::kNotLeader);
    return;
  }
  // An earlier proposal waiting at this index was overwritten: it may or may not have been
  // applied elsewhere. The new proposal is in place before its callbacks run.
  std::vector<ProposeCallback> overwritten;
  auto it = proposals_.find(index);
  if (it != proposals_.end()) {
    overwritten = std::move(it->second.cbs);
    it->second = PendingProposal{term, Deadline(), std::move(cbs)};
  } else {
    proposals_.emplace(index, PendingProposal{term, Deadline(), std::move(cbs)});
  }
  AnswerAll(&overwritten, Outcome::kUnknown);
}

void RaftDriver::Read(ReadCallback cb) {
  if (!active()) {
    cb(Outcome::kFailed);
    return;
  }
  uint64_t ctx = ++next_read_ctx_;
  if (!node_->ReadIndex(ctx).ok()) {
    cb(Outcome::kNotLeader);
    return;
  }
  reads_waiting_.emplace(ctx, WaitingRead{Deadline(), std::move(cb)});
}

void RaftDriver::Send(const raft::Message& m) {
  if (m.to == config_.id) {
    node_->Step(m);  // a candidate's own vote, now durable
  } else if (m.type == raft::MessageType::kSnapshot) {
    sender_->Start(m);  // the bytes travel as chunks; the message itself is never sent
  } else {
    transport_->Send(m);
  }
}

void RaftDriver::SendAfterPersist(std::vector<raft::Message>* messages) {
  // A follower whose storage thread made several Readys durable in one sync has an
  // AppendEntries success for each. A success says that the log matches the leader's up to its
  // index, so a later one in the same term says all an earlier one does: only the last is
  // sent. Everything else goes out in order, and a held success to a peer leaves before any
  // other message to that peer.
  for (raft::Message& m : *messages) {
    bool ack = m.type == raft::MessageType::kAppendResponse && !m.reject && m.to != config_.id;
    auto held = std::find_if(held_acks_.begin(), held_acks_.end(),
                             [&](const raft::Message& h) { return h.to == m.to; });
    if (ack && held != held_acks_.end() && held->term == m.term && held->index <= m.index) {
      *held = std::move(m);
      acks_superseded_++;
    } else if (ack) {
      SendHeldAcks(m.to);
      held_acks_.push_back(std::move(m));
    } else {
      SendHeldAcks(m.to);
      Send(m);
    }
  }
}

void RaftDriver::SendHeldAcks(raft::NodeId peer) {
  // kNoNode: every peer's.
  for (auto it = held_acks_.begin(); it != held_acks_.end();) {
    if (peer != raft::kNoNode && it->to != peer) {
      ++it;
      continue;
    }
    Send(*it);
    it = held_acks_.erase(it);
  }
}

void RaftDriver::Apply(const std::vector<raft::Entry>& entries) {
  // The node hands out no entry while a snapshot it handed out is not installed.
  CHECK(entries.empty() || !installing_) << "applying during a snapshot install";
  if (entries.empty()) return;
  // One LevelDB write for the Ready's entries; the replies wait for it.
  std::vector<kv::ApplyResult> results;
  common::Status s = storage_->state()->ApplyAll(entries, &results);
  if (!s.ok()) {
    Fail(s);
    return;
  }
  applied_ = entries.back().index;
  for (size_t i = 0; i < entries.size(); i++) {
    const uint64_t commands = std::max<size_t>(results[i].batch.size(), 1);
    commands_.Add(entries[i].index, commands);
    commands_since_compaction_ += commands;
  }
  key_count_ = storage_->state()->key_count();
  session_count_ = storage_->state()->session_count();
  for (size_t i = 0; i < entries.size() && !proposals_.empty(); i++) {
    const raft::Entry& e = entries[i];
    auto it = proposals_.find(e.index);
    if (it == proposals_.end()) continue;
    std::vector<ProposeCallback> cbs = std::move(it->second.cbs);
    const bool ours = it->second.term == e.term;
    proposals_.erase(it);
    const std::vector<kv::ApplyResult>& batch = results[i].batch;
    if (!ours) {
      AnswerAll(&cbs, Outcome::kUnknown);
      continue;
    }
    for (size_t j = 0; j < cbs.size(); j++) {
      if (batch.size() == cbs.size()) {
        cbs[j](Outcome::kApplied, &batch[j]);
      } else {
        cbs[j](Outcome::kApplied, &results[i]);  // one command, or an undecodable entry's error
      }
    }
  }
}

void RaftDriver::AnswerReads() {
  if (installing_) return;  // the state is being replaced: answered once installed
  raft::Index applied = storage_->state()->applied_index();
  // In place, the callbacks after: the vectors keep their capacity (nothing allocated per read
  // round), and a callback never sees reads_ready_ half compacted.
  std::vector<ReadCallback> due;
  due.swap(answering_);
  size_t kept = 0;
  for (size_t i = 0; i < reads_ready_.size(); i++) {
    if (reads_ready_[i].index <= applied) {
      due.push_back(std::move(reads_ready_[i].cb));
    } else {
      if (kept != i) reads_ready_[kept] = std::move(reads_ready_[i]);
      kept++;
    }
  }
  reads_ready_.resize(kept);
  for (ReadCallback& cb : due) cb(Outcome::kApplied);
  due.clear();
  answering_.swap(due);
}

void RaftDriver::Flush() {
  bool applied = false;
  // The callbacks of what a Ready applies may propose more: those are proposed here too.
  while (active() && (node_->HasReady() || !queued_.empty())) {
    if (applied) {
      // The rest after the loop has been around its sockets and timers once.
      apply_yields_++;
      wakeup_();
      return;
    }
    ProposeQueued();
    if (!node_->HasReady()) continue;
    raft::Ready rd = node_->TakeReady();
    applied = !rd.committed_entries.empty();
    if (!rd.PersistenceEmpty() || !rd.messages_after_persist.empty()) {
      PendingStep pending;
      pending.id = ++next_step_id_;
      if (!rd.entries.empty()) {
        pending.last_index = rd.entries.back().index;
        pending.last_term = rd.entries.back().term;
      }
      pending.after_persist = std::move(rd.messages_after_persist);
      StorageThread::Step step;
      step.id = pending.id;
      step.hard_state = rd.hard_state;
      step.entries = std::move(rd.entries);
      step.must_sync = rd.must_sync;
      if (rd.snapshot.has_value()) {
        // Only the receiver's complete streams are stepped into the node as kSnapshot, and
        // this Flush runs while the receiver offers the stream's writer.
        std::unique_ptr<kv::StateMachine::SnapshotWriter> writer =
            receiver_->TakeCompleted(*rd.snapshot);
        CHECK(writer != nullptr) << "the node installs snapshot " << rd.snapshot->index
                                 << " that was not received";
        // Ahead of this Ready's writes and after every earlier step (raft::Ready, step 1).
        step.before = InstallTask(storage_, std::move(writer), *rd.snapshot);
        pending.installed = rd.snapshot;
        installing_ = true;
      }
      storage_thread_->Submit(std::move(step));
      steps_.push_back(std::move(pending));
    }
    // The leader's AppendEntries leave before its own copy is durable (thesis §10.2.1).
    for (const raft::Message& m : rd.messages) Send(m);
    Apply(rd.committed_entries);
    if (failed()) return;
    for (const raft::ReadState& r : rd.read_states) {
      auto it = reads_waiting_.find(r.ctx);
      if (it == reads_waiting_.end()) continue;
      if (r.ok) {
        reads_ready_.push_back({r.index, it->second.deadline, std::move(it->second.cb)});
      } else {
        it->second.cb(Outcome::kNotLeader);
      }
      reads_waiting_.erase(it);
    }
    node_->RecycleReadStates(std::move(rd.read_states));
    node_->Advance();
    AnswerReads();
    MaybeCompact();
  }
}

void RaftDriver::StartCompaction(raft::Index index) {
  if (index <= std::max(compact_target_, node_->log().snapshot().index)) return;
  compact_target_ = index;
  commands_.DropThrough(index);
  PendingStep pending;
  pending.id = ++next_step_id_;
  pending.compacted_to = index;
  StorageThread::Step step;
  step.id = pending.id;
  // Made now, on the loop thread: it syncs the state as applied up to here, which covers
  // `index`; every entry up to `index` is durable (applied entries are), so written by an
  // earlier step.
  step.before = storage_->CompactionTask(index);
  storage_thread_->Submit(std::move(step));
  steps_.push_back(std::move(pending));
}

void RaftDriver::MaybeCompact() {
  if (installing_ || !active()) return;
  const raft::RaftLog& log = node_->log();
  raft::Index applied = storage_->state()->applied_index();
  raft::Index done = std::max(compact_target_, log.snapshot().index);
  const uint64_t max_bytes = options_.snapshot_log_bytes;
  bool by_commands =
      options_.snapshot_entries > 0 && commands_since_compaction_ >= options_.snapshot_entries;
  bool by_bytes = max_bytes > 0 && log.BytesBetween(done, applied) >= max_bytes;
  if (!by_commands && !by_bytes) return;
  commands_since_compaction_ = 0;
  raft::Index to = commands_.TailStart(applied, options_.compact_keep_tail);
  if (max_bytes > 0 && log.BytesBetween(to, applied) > max_bytes / 2) {
    // The tail holds at most half the byte limit: the first index past which it fits.
    raft::Index lo = to, hi = applied;
    while (lo < hi) {
      raft::Index mid = lo + (hi - lo) / 2;
      if (log.BytesBetween(mid, applied) > max_bytes / 2) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    to = lo;
  }
  if (to > done) StartCompaction(to);
}

void RaftDriver::MaybeReclaim() {
  raft::Index dropped = node_->log().snapshot().index;
  if (reclaiming_ || !active() || dropped <= reclaimed_) return;
  reclaiming_ = true;
  background_->Run(storage_->log()->ReclaimTask(reclaimed_ + 1, dropped), [this, dropped] {
    reclaiming_ = false;
    if (!active()) return;
    reclaimed_ = dropped;
    log_reclaims_++;
    MaybeReclaim();
  });
}

common::Status RaftDriver::CompactNow(raft::Index* snapshot_index) {
  if (!failure_.ok()) return failure_;
  if (stopped_) return common::Status::Busy("the node is stopping");
  if (installing_) return common::Status::Busy("a snapshot install is under way");
  raft::Index applied = storage_->state()->applied_index();
  StartCompaction(applied);
  commands_since_compaction_ = 0;
  *snapshot_index = std::max(compact_target_, node_->log().snapshot().index);
  return common::Status::OK();
}

void RaftDriver::AfterInstall(const raft::SnapshotMeta& meta) {
  installing_ = false;
  applied_ = storage_->state()->applied_index();
  key_count_ = storage_->state()->key_count();
  session_count_ = storage_->state()->session_count();
  snapshots_installed_++;
  commands_.Clear();
  commands_since_compaction_ = 0;
  Log(LogLevel::kNotice, "installed snapshot " + std::to_string(meta.index) + " (term " +
                             std::to_string(meta.term) + ")");
  // Proposals at or below the snapshot were never applied here, so their outcome is unknown
  // on this node (they may have been applied elsewhere).
  auto end = proposals_.upper_bound(meta.index);
  std::vector<ProposeCallback> unknown;
  for (auto it = proposals_.begin(); it != end; ++it) {
    for (ProposeCallback& cb : it->second.cbs) unknown.push_back(std::move(cb));
  }
  proposals_.erase(proposals_.begin(), end);
  AnswerAll(&unknown, Outcome::kUnknown);
}

void RaftDriver::OnStorageNews() {
  if (stopped_) return;
  uint64_t durable;
  common::Status status;
  {
    std::lock_guard<std::mutex> lock(news_mu_);
    durable = news_durable_id_;
    status = news_status_;
  }
  // Steps up to `durable` are on disk: now the node may count them, and the messages that
  // depend on them may leave.
  size_t done = 0;
  for (; done < steps_.size() && steps_[done].id <= durable; done++) {
    PendingStep& p = steps_[done];
    if (p.installed.has_value()) {
      AfterInstall(*p.installed);
      node_->OnSnapshotInstalled(*p.installed);
    }
    if (p.compacted_to != 0) {
      // The state covering it is durable and the entries are gone from disk.
      common::Status st = node_->Compact(p.compacted_to);
      CHECK(st.ok()) << "compact to " << p.compacted_to << ": " << st.ToString();
    }
    if (p.compacted_to != 0 || p.installed.has_value()) MaybeReclaim();
    if (p.last_index != 0) node_->OnPersisted(p.last_index, p.last_term);
    SendAfterPersist(&p.after_persist);
  }
  SendHeldAcks(raft::kNoNode);
  steps_.erase(steps_.begin(), steps_.begin() + static_cast<long>(done));
  if (!status.ok()) {
    Fail(status);
    return;
  }
  Flush();
}

}  // namespace server
