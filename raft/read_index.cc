// Node: linearizable reads by ReadIndex (thesis §6.4) and leadership transfer (thesis §3.10).
//
// ReadIndex: the leader records its commit index as the read point, then confirms it is still
// leader by hearing from a majority in one heartbeat round. Reads that arrive while a round is
// in flight wait for the next round, so one round serves many reads. No read is answered
// before the leader has committed an entry of its own term (its no-op).
#include <algorithm>

#include "common/check.h"
#include "raft/node.h"

namespace raft {

bool Node::CommittedInCurrentTerm() const { return log_.TermAt(log_.committed()) == term_; }

common::Status Node::ReadIndex(uint64_t ctx) {
  if (role_ != Role::kLeader) return common::Status::InvalidArgument("not leader");
  if (!CommittedInCurrentTerm()) {
    reads_before_commit_.push_back(ctx);
  } else if (Quorum() == 1) {
    read_states_.push_back({ctx, log_.committed(), true});
  } else {
    reads_next_round_.push_back({ctx, log_.committed()});
    if (read_round_ == 0) StartReadRound();
  }
  AfterInput();
  return common::Status::OK();
}

void Node::StartReadRound() {
  // Swapped, not moved: both keep their capacity, and a busy leader allocates nothing per round.
  reads_in_round_.clear();
  reads_in_round_.swap(reads_next_round_);
  read_round_ = ++last_read_round_;
  read_acks_.clear();
  // A round needs the answers of a quorum only: it goes to the followers that completed the
  // last one. Should one of them not answer, the next heartbeat, which carries the round in
  // flight to every follower, completes it with the others' answers.
  bool subset = !read_quorum_peers_.empty();
  for (NodeId peer : read_quorum_peers_) subset = subset && progress_.count(peer) != 0;
  if (!subset) {
    BroadcastHeartbeat();
    return;
  }
  for (NodeId peer : read_quorum_peers_) SendHeartbeat(peer, progress_.at(peer));
}

void Node::HandleReadAck(NodeId from, uint64_t round) {
  // Only an answer to a heartbeat sent after the round began confirms leadership for it.
  if (round != read_round_ || read_round_ == 0) return;
  read_acks_[from] = true;
  if (read_acks_.size() + 1 < Quorum()) return;
  read_quorum_peers_.clear();
  for (const auto& [peer, _] : read_acks_) read_quorum_peers_.push_back(peer);
  for (const PendingRead& r : reads_in_round_) read_states_.push_back({r.ctx, r.index, true});
  reads_in_round_.clear();
  read_round_ = 0;
  if (!reads_next_round_.empty()) StartReadRound();
}

void Node::ReleasePendingReads() {
  std::vector<uint64_t> waiting = std::move(reads_before_commit_);
  reads_before_commit_.clear();
  for (uint64_t ctx : waiting) {
    if (Quorum() == 1) {
      read_states_.push_back({ctx, log_.committed(), true});
    } else {
      reads_next_round_.push_back({ctx, log_.committed()});
    }
  }
  if (!reads_next_round_.empty() && read_round_ == 0) StartReadRound();
}

void Node::FailAllReads() {
  for (uint64_t ctx : reads_before_commit_) read_states_.push_back({ctx, 0, false});
  for (const PendingRead& r : reads_in_round_) read_states_.push_back({r.ctx, 0, false});
  for (const PendingRead& r : reads_next_round_) read_states_.push_back({r.ctx, 0, false});
  reads_before_commit_.clear();
  reads_in_round_.clear();
  reads_next_round_.clear();
  read_round_ = 0;
  read_acks_.clear();
  read_quorum_peers_.clear();
}

common::Status Node::TransferLeadership(NodeId target) {
  if (role_ != Role::kLeader) return common::Status::InvalidArgument("not leader");
  if (!IsVoter(target)) return common::Status::InvalidArgument("unknown node id");
  if (target == id_) return common::Status::OK();
  if (target != lead_transferee_) {
    lead_transferee_ = target;
    transfer_elapsed_ = 0;
  }
  // Asked again for the same target: send again (the first TimeoutNow may have been lost).
  Progress& pr = progress_.at(target);
  if (pr.match == log_.last_index()) {
    SendTimeoutNow(target);
  } else {
    MaybeSendAppend(target, true);
  }
  AfterInput();
  return common::Status::OK();
}

void Node::SendTimeoutNow(NodeId to) {
  Message m;
  m.type = MessageType::kTimeoutNow;
  m.to = to;
  Send(std::move(m));
}

void Node::AbortTransfer() {
  lead_transferee_ = kNoNode;
  transfer_elapsed_ = 0;
}

}  // namespace raft
