#include "server/raft_driver.h"

#include "common/check.h"

namespace server {

RaftDriver::RaftDriver(raft::Config config, kv::NodeStorage* storage, Transport* transport,
                       std::function<void()> wakeup)
    : config_(std::move(config)),
      storage_(storage),
      transport_(transport),
      wakeup_(std::move(wakeup)) {}

RaftDriver::~RaftDriver() {
  storage_thread_.reset();  // writes what is queued; its reports are no longer needed
}

common::Status RaftDriver::Start() {
  raft::PersistentState state;
  raft::Index applied;
  common::Status s = storage_->Load(&state, &applied);
  if (!s.ok()) return s;
  config_.applied = applied;
  node_ = std::make_unique<raft::Node>(config_, state);
  storage_thread_ = std::make_unique<StorageThread>(storage_->log(),
                                                    [this](uint64_t id, const common::Status& st) {
                                                      {
                                                        std::lock_guard<std::mutex> lock(news_mu_);
                                                        news_durable_id_ = id;
                                                        if (!st.ok() && news_status_.ok())
                                                          news_status_ = st;
                                                      }
                                                      wakeup_();
                                                    });
  return common::Status::OK();
}

void RaftDriver::Fail(const common::Status& s) {
  if (!failure_.ok()) return;
  failure_ = s;
  // Nothing more is acknowledged: every waiter learns it now.
  auto proposals = std::move(proposals_);
  proposals_.clear();
  for (auto& [_, p] : proposals) p.cb(Outcome::kFailed, nullptr);
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
  if (failed()) return;
  ticks_++;
  node_->Tick();
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
    ProposeCallback cb = std::move(it->second.cb);
    it = proposals_.erase(it);
    cb(Outcome::kUnknown, nullptr);
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
  if (failed()) return;
  node_->Step(m);
}

void RaftDriver::Propose(std::string command, ProposeCallback cb) {
  if (failed()) {
    cb(Outcome::kFailed, nullptr);
    return;
  }
  raft::Index index;
  raft::Term term;
  common::Status s = node_->Propose(std::move(command), &index, &term);
  if (!s.ok()) {
    // Never proposed: another node leads, or a transfer or back-pressure holds proposals.
    cb(s.code() == common::Status::Code::kBusy ? Outcome::kBusy : Outcome::kNotLeader, nullptr);
    return;
  }
  // An earlier proposal waiting at this index was overwritten: it may or may not have been
  // applied elsewhere.
  auto it = proposals_.find(index);
  if (it != proposals_.end()) {
    it->second.cb(Outcome::kUnknown, nullptr);
    proposals_.erase(it);
  }
  proposals_.emplace(index, PendingProposal{term, Deadline(), std::move(cb)});
}

void RaftDriver::Read(ReadCallback cb) {
  if (failed()) {
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
  } else {
    transport_->Send(m);
  }
}

void RaftDriver::Apply(const std::vector<raft::Entry>& entries) {
  for (const raft::Entry& e : entries) {
    kv::ApplyResult result;
    common::Status s = storage_->state()->Apply(e, &result);
    if (!s.ok()) {
      Fail(s);
      return;
    }
    auto it = proposals_.find(e.index);
    if (it == proposals_.end()) continue;
    if (it->second.term == e.term) {
      it->second.cb(Outcome::kApplied, &result);
    } else {
      it->second.cb(Outcome::kUnknown, nullptr);
    }
    proposals_.erase(it);
  }
}

void RaftDriver::AnswerReads() {
  raft::Index applied = storage_->state()->applied_index();
  std::vector<PendingRead> still;
  for (PendingRead& r : reads_ready_) {
    if (r.index <= applied) {
      r.cb(Outcome::kApplied);
    } else {
      still.push_back(std::move(r));
    }
  }
  reads_ready_ = std::move(still);
}

void RaftDriver::Flush() {
  while (!failed() && node_->HasReady()) {
    raft::Ready rd = node_->TakeReady();
    CHECK(!rd.snapshot.has_value()) << "snapshot installs between processes are not wired yet";
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
    node_->Advance();
    AnswerReads();
  }
}

void RaftDriver::OnStorageNews() {
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
    if (p.last_index != 0) node_->OnPersisted(p.last_index, p.last_term);
    for (const raft::Message& m : p.after_persist) Send(m);
  }
  steps_.erase(steps_.begin(), steps_.begin() + static_cast<long>(done));
  if (!status.ok()) {
    Fail(status);
    return;
  }
  Flush();
}

}  // namespace server
