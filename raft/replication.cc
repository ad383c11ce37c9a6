// Node: log replication (§5.3), the commit rule (§5.4.2), heartbeats, and snapshots as the
// leader sees them (§7): deciding that a follower needs one, and learning it was installed.
#include <algorithm>

#include "common/check.h"
#include "raft/node.h"

namespace raft {

common::Status Node::Propose(std::string data, Index* index, Term* term) {
  if (role_ != Role::kLeader) return common::Status::InvalidArgument("not leader");
  if (lead_transferee_ != kNoNode) {
    return common::Status::Busy("leadership transfer in progress");
  }
  size_t bytes = data.size() + 24;
  if (uncommitted_bytes_ > 0 && uncommitted_bytes_ + bytes > config_.max_uncommitted_bytes) {
    return common::Status::Busy("too much uncommitted data");
  }
  if (config_.max_apply_lag_bytes > 0 &&
      log_.BytesBetween(log_.applied(), log_.committed()) > config_.max_apply_lag_bytes) {
    return common::Status::Busy("applying lags too far behind the commit index");
  }
  AppendEntry(EntryType::kNormal, std::move(data));
  if (index != nullptr) *index = log_.last_index();
  if (term != nullptr) *term = term_;
  AfterInput();
  return common::Status::OK();
}

void Node::AppendEntry(EntryType type, std::string data) {
  Entry e;
  e.term = term_;
  e.index = log_.last_index() + 1;
  e.type = type;
  e.data = std::move(data);
  uncommitted_bytes_ += EntryPayloadBytes(e);
  log_.Append({std::move(e)});
  // Batching: everything proposed before the next TakeReady travels in one AppendEntries.
  broadcast_pending_ = true;
  // A single voter commits once its own copy is durable (OnPersisted).
}

bool Node::MaybeCommit() {
  // Figure 2, Rules for Leaders: "If there exists an N such that N > commitIndex, a majority
  // of matchIndex[i] >= N, and log[N].term == currentTerm: set commitIndex = N". The leader's
  // own copy counts only once durable.
  std::vector<Index> matches;
  matches.push_back(log_.persisted());
  for (const auto& [_, pr] : progress_) matches.push_back(pr.match);
  std::sort(matches.begin(), matches.end(), std::greater<Index>());
  Index n = matches[Quorum() - 1];
  if (n <= log_.committed()) return false;
  // §5.4.2: only entries of the current term are committed by counting replicas.
  if (!(config_.bugs & kBugCommitPreviousTerm) && log_.TermAt(n) != term_) return false;
  for (Index i = log_.committed() + 1; i <= n; i++) {
    if (log_.At(i).term != term_) continue;  // entries of earlier terms were never counted
    size_t b = EntryPayloadBytes(log_.At(i));
    uncommitted_bytes_ = uncommitted_bytes_ > b ? uncommitted_bytes_ - b : 0;
  }
  log_.CommitTo(n);
  if (reads_before_commit_.size() > 0 && CommittedInCurrentTerm()) ReleasePendingReads();
  return true;
}

void Node::ReportSnapshotFailure(NodeId follower) {
  auto it = progress_.find(follower);
  if (role_ == Role::kLeader && it != progress_.end() &&
      it->second.state == Progress::State::kSnapshot) {
    it->second.pending_snapshot = 0;  // it does not have it: probe from what it matched
    it->second.BecomeProbe();
  }
  AfterInput();
}

void Node::SendSnapshot(NodeId to, Progress& pr) {
  Message m;
  m.type = MessageType::kSnapshot;
  m.to = to;
  m.snapshot = log_.snapshot();
  pr.BecomeSnapshot(m.snapshot.index);
  Send(std::move(m));
}

bool Node::MaybeSendAppend(NodeId to, bool send_if_empty) {
  Progress& pr = progress_.at(to);
  if (pr.IsPaused()) return false;
  Index prev = pr.next - 1;
  std::optional<Term> prev_term = log_.TermAt(prev);
  if (!prev_term.has_value()) {
    // The entries this follower needs were compacted: it needs a snapshot.
    SendSnapshot(to, pr);
    return true;
  }
  std::vector<Entry> entries;
  if (pr.next <= log_.last_index())
    entries = log_.Slice(pr.next, log_.last_index() + 1, config_.max_msg_bytes);
  if (entries.empty() && !send_if_empty) return false;
  Message m;
  m.type = MessageType::kAppend;
  m.to = to;
  m.index = prev;
  m.log_term = *prev_term;
  m.commit = log_.committed();
  // The follower commits min(leaderCommit, last index of this message).
  pr.sent_commit = std::max(pr.sent_commit, std::min(m.commit, prev + entries.size()));
  if (!entries.empty()) {
    size_t bytes = 0;
    for (const Entry& e : entries) bytes += EntryPayloadBytes(e);
    Index last = entries.back().index;
    if (pr.state == Progress::State::kReplicate) {
      // Pipelining: assume success and go on with what follows.
      pr.next = last + 1;
      pr.inflights.Add(last, bytes);
    } else {
      pr.probe_sent = true;
    }
    m.entries = std::move(entries);
  } else if (pr.state == Progress::State::kProbe) {
    pr.probe_sent = true;
  }
  Send(std::move(m));
  return true;
}

void Node::BroadcastAppend(bool send_if_empty) {
  for (auto& [peer, _] : progress_) {
    bool sent = MaybeSendAppend(peer, send_if_empty);
    // In replicate state keep filling the window with whatever is left.
    while (sent && progress_.at(peer).state == Progress::State::kReplicate &&
           progress_.at(peer).next <= log_.last_index()) {
      sent = MaybeSendAppend(peer, false);
    }
  }
}

void Node::SendHeartbeat(NodeId peer, Progress& pr) {
  Message m;
  m.type = MessageType::kHeartbeat;
  m.to = peer;
  // Never tell a follower to commit beyond what it is known to hold.
  m.commit = std::min(pr.match, log_.committed());
  pr.sent_commit = std::max(pr.sent_commit, m.commit);
  m.context = read_round_;
  Send(std::move(m));
}

void Node::BroadcastHeartbeat() {
  for (auto& [peer, pr] : progress_) SendHeartbeat(peer, pr);
}

void Node::StepLeader(const Message& m) {
  auto it = progress_.find(m.from);
  if (it == progress_.end()) return;
  it->second.recent_active = true;
  if (m.type == MessageType::kAppendResponse) {
    HandleAppendResponse(m);
  } else {
    HandleHeartbeatResponse(m);
  }
}

void Node::HandleAppendResponse(const Message& m) {
  Progress& pr = progress_.at(m.from);
  if (m.reject) {
    // Fast back-up: skip every entry of a term the follower does not have.
    Index next_hint = m.reject_hint + 1;
    if (m.log_term > 0) next_hint = log_.FindConflictByTerm(m.reject_hint, m.log_term).first + 1;
    if (pr.MaybeDecrTo(m.index, next_hint)) {
      if (pr.state == Progress::State::kReplicate) pr.BecomeProbe();
      MaybeSendAppend(m.from, true);
    }
    return;
  }
  bool was_paused = pr.IsPaused();
  if (!pr.MaybeUpdate(m.index)) {
    // Not new; a stale acknowledgement may still free a window slot.
    if (pr.state == Progress::State::kReplicate) pr.inflights.FreeLE(m.index);
    return;
  }
  switch (pr.state) {
    case Progress::State::kProbe:
      pr.BecomeReplicate();
      break;
    case Progress::State::kSnapshot:
      if (pr.match >= pr.pending_snapshot) {
        pr.BecomeProbe();
        pr.BecomeReplicate();
      }
      break;
    case Progress::State::kReplicate:
      pr.inflights.FreeLE(m.index);
      break;
  }
  if (MaybeCommit()) {
    commit_broadcast_pending_ = true;
  } else if (pr.sent_commit < std::min(log_.committed(), pr.match)) {
    // A follower just brought up to date learns the commit index now, not at the next
    // heartbeat.
    MaybeSendAppend(m.from, true);
  } else if (was_paused) {
    MaybeSendAppend(m.from, false);
  }
  while (pr.next <= log_.last_index() && MaybeSendAppend(m.from, false)) {
  }
  if (m.from == lead_transferee_ && pr.match == log_.last_index()) SendTimeoutNow(m.from);
}

void Node::HandleHeartbeatResponse(const Message& m) {
  Progress& pr = progress_.at(m.from);
  // A transfer target that is caught up but did not start an election lost its TimeoutNow.
  if (m.from == lead_transferee_ && pr.match == log_.last_index()) SendTimeoutNow(m.from);
  if (pr.state == Progress::State::kReplicate && pr.inflights.Full()) pr.inflights.FreeFirst();
  if (pr.state == Progress::State::kProbe) pr.probe_sent = false;
  if (pr.match < log_.last_index()) MaybeSendAppend(m.from, true);
  if (m.context != 0) HandleReadAck(m.from, m.context);
}

// ---- Follower side ----

void Node::HandleAppend(const Message& m) {
  Message resp;
  resp.type = MessageType::kAppendResponse;
  resp.to = m.from;
  if (m.index < log_.committed()) {
    // Everything up to our commit index is settled; tell the leader where we are.
    resp.index = log_.committed();
    SendAfterPersist(std::move(resp));
    return;
  }
  if (log_.MatchTerm(m.index, m.log_term)) {
    Index last_new = m.index + m.entries.size();
    log_.Append(m.entries);
    // Figure 2: "If leaderCommit > commitIndex, set commitIndex = min(leaderCommit, index of
    // last new entry)".
    log_.CommitTo(std::min(m.commit, last_new));
    resp.index = last_new;
    SendAfterPersist(std::move(resp));
    return;
  }
  // Figure 2: "Reply false if log doesn't contain an entry at prevLogIndex whose term matches
  // prevLogTerm", with a hint: the last index at or below it whose term is <= the leader's.
  auto [hint_index, hint_term] =
      log_.FindConflictByTerm(std::min(m.index, log_.last_index()), m.log_term);
  resp.reject = true;
  resp.index = m.index;
  resp.reject_hint = hint_index;
  resp.log_term = hint_term;
  SendAfterPersist(std::move(resp));
}

void Node::HandleHeartbeat(const Message& m) {
  log_.CommitTo(std::min(m.commit, log_.last_index()));
  Message resp;
  resp.type = MessageType::kHeartbeatResponse;
  resp.to = m.from;
  resp.context = m.context;
  Send(std::move(resp));
}

void Node::HandleSnapshot(const Message& m) {
  const SnapshotMeta& s = m.snapshot;
  Message resp;
  resp.type = MessageType::kAppendResponse;
  resp.to = m.from;
  if (s.index <= log_.committed()) {
    resp.index = log_.committed();
    SendAfterPersist(std::move(resp));
    return;
  }
  if (log_.MatchTerm(s.index, s.term)) {
    // Figure 13, step 6: our log already holds the snapshot's last entry; keep what follows.
    log_.CommitTo(s.index);
    resp.index = s.index;
    SendAfterPersist(std::move(resp));
    return;
  }
  // Figure 13, steps 7-8: discard the log and take the snapshot. The driver installs its
  // bytes; the acknowledgement leaves once it reports the install (OnSnapshotInstalled).
  log_.RestoreSnapshot(s);
  snapshot_to_install_ = s;
  snapshot_installing_ = s;
  snapshot_from_ = m.from;
}

}  // namespace raft
