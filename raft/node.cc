// Node: construction, roles, elections (§5.2, pre-vote thesis §9.6, check-quorum §6.2), the
// term rules common to every message (Figure 2, "Rules for Servers: All Servers"), and the
// Ready pipeline.
#include "raft/node.h"

#include <algorithm>

#include "common/check.h"

namespace raft {

Node::Node(const Config& config, const PersistentState& state)
    : config_(config),
      id_(config.id),
      rng_state_(config.seed ^ (config.id * 0x9E3779B97F4A7C15ull)) {
  CHECK(IsVoter(id_)) << "node " << id_ << " is not among the voters";
  CHECK(config_.heartbeat_ticks > 0 && config_.heartbeat_ticks < config_.election_ticks);
  log_.Restore(state.snapshot, state.entries);
  term_ = state.hard_state.term;
  vote_ = state.hard_state.vote;
  Index commit = std::max(state.hard_state.commit, config_.applied);
  log_.CommitTo(std::min(commit, log_.last_index()));
  Index applied = std::max(config_.applied, log_.snapshot().index);
  CHECK(applied <= log_.committed()) << "applied " << applied << " beyond commit";
  log_.SetApplied(applied);
  handed_hard_state_ = {term_, vote_, log_.committed()};
  BecomeFollower(term_, kNoNode);
  if (config_.fast_first_election) election_elapsed_ = config_.election_ticks - 1;
  checked_term_ = term_;
  checked_commit_ = log_.committed();
}

bool Node::IsVoter(NodeId id) const {
  return std::find(config_.voters.begin(), config_.voters.end(), id) != config_.voters.end();
}

uint64_t Node::NextRandom() {
  // splitmix64: small, fast and fully determined by the seed.
  uint64_t z = (rng_state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void Node::ResetRandomizedElectionTimeout() {
  randomized_election_timeout_ =
      config_.election_ticks +
      static_cast<int>(NextRandom() % static_cast<uint64_t>(config_.election_ticks));
}

void Node::Send(Message m) {
  m.from = id_;
  if (m.term == 0) m.term = term_;
  msgs_.push_back(std::move(m));
}

void Node::SendAfterPersist(Message m) {
  m.from = id_;
  if (m.term == 0) m.term = term_;
  if (config_.bugs & kBugReplyBeforePersist) {
    msgs_.push_back(std::move(m));
  } else {
    msgs_after_persist_.push_back(std::move(m));
  }
}

void Node::AfterInput() {
  if (!config_.check_invariants) return;
  std::string violation = CheckInvariants();
  CHECK(violation.empty()) << "node " << id_ << ": " << violation;
}

// ---- Roles ----

void Node::Reset(Term term) {
  if (term_ != term) {
    term_ = term;
    vote_ = kNoNode;
  }
  lead_ = kNoNode;
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  ResetRandomizedElectionTimeout();
  AbortTransfer();
  votes_.clear();
  progress_.clear();
  broadcast_pending_ = false;
  commit_broadcast_pending_ = false;
  uncommitted_bytes_ = 0;
  FailAllReads();
}

void Node::BecomeFollower(Term term, NodeId lead) {
  Reset(term);
  role_ = Role::kFollower;
  lead_ = lead;
}

void Node::BecomePreCandidate() {
  CHECK(role_ != Role::kLeader) << "leader cannot become pre-candidate";
  // A pre-candidate changes neither its term nor its vote (thesis §9.6).
  Reset(term_);
  role_ = Role::kPreCandidate;
}

void Node::BecomeCandidate() {
  CHECK(role_ != Role::kLeader) << "leader cannot become candidate";
  Reset(term_ + 1);
  vote_ = id_;
  role_ = Role::kCandidate;
}

void Node::BecomeLeader() {
  CHECK(role_ == Role::kCandidate) << "only a candidate becomes leader";
  Reset(term_);
  role_ = Role::kLeader;
  lead_ = id_;
  for (NodeId peer : config_.voters) {
    if (peer == id_) continue;
    auto [it, _] =
        progress_.emplace(peer, Progress(config_.max_inflight_msgs, config_.max_inflight_bytes));
    it->second.next = log_.last_index() + 1;
    it->second.recent_active = true;
  }
  // §8: "each leader commit a blank no-op entry into the log at the start of its term".
  AppendEntry(EntryType::kNoop, "");
}

// ---- Elections ----

bool Node::InLease() const {
  return config_.check_quorum && lead_ != kNoNode && election_elapsed_ < config_.election_ticks;
}

void Node::Campaign(CampaignType type) {
  Term vote_term;
  MessageType request;
  if (type == CampaignType::kPreElection) {
    BecomePreCandidate();
    request = MessageType::kPreVote;
    vote_term = term_ + 1;  // the term it would campaign in; its own term does not change
  } else {
    BecomeCandidate();
    request = MessageType::kVote;
    vote_term = term_;
  }
  // Its own vote: counted once durable, like everyone else's (it comes back through the
  // driver). A pre-vote changes nothing, so it counts at once.
  Message self;
  self.type = type == CampaignType::kPreElection ? MessageType::kPreVoteResponse
                                                 : MessageType::kVoteResponse;
  self.to = id_;
  self.term = vote_term;
  if (type == CampaignType::kPreElection) {
    self.from = id_;
    HandleVoteResponse(self);
    if (role_ != Role::kPreCandidate) return;  // a single node wins at once
  } else {
    msgs_after_persist_.push_back(self);
    msgs_after_persist_.back().from = id_;
  }
  for (NodeId peer : config_.voters) {
    if (peer == id_) continue;
    Message m;
    m.type = request;
    m.to = peer;
    m.term = vote_term;
    m.index = log_.last_index();
    m.log_term = log_.last_term();
    if (type == CampaignType::kTransfer) m.context = kContextTransfer;
    // A vote request carries the new term: it must be durable first (a candidate that forgot
    // its term after a crash could vote twice in it). Pre-votes change nothing.
    if (request == MessageType::kPreVote) {
      Send(std::move(m));
    } else {
      SendAfterPersist(std::move(m));
    }
  }
}

void Node::HandleVoteRequest(const Message& m) {
  // Figure 2, RequestVote: grant if votedFor is null or candidateId, and the candidate's log is
  // at least as up-to-date as ours. A pre-vote for a later term is granted on the log alone.
  bool can_vote = vote_ == m.from || (vote_ == kNoNode && lead_ == kNoNode) ||
                  (m.type == MessageType::kPreVote && m.term > term_);
  // The bug: a follower forgets whom it voted for (a candidate still votes only for itself).
  if ((config_.bugs & kBugDoubleVote) && role_ == Role::kFollower) can_vote = true;
  bool up_to_date = log_.IsUpToDate(m.index, m.log_term);
  if (config_.bugs & kBugNoElectionRestriction) up_to_date = true;
  Message resp;
  resp.to = m.from;
  if (m.type == MessageType::kPreVote) {
    resp.type = MessageType::kPreVoteResponse;
    resp.reject = !(can_vote && up_to_date);
    // A granted pre-vote answers in the candidate's future term, a refusal in ours.
    resp.term = resp.reject ? term_ : m.term;
    Send(std::move(resp));
    return;
  }
  resp.type = MessageType::kVoteResponse;
  resp.reject = !(can_vote && up_to_date);
  if (!resp.reject) {
    vote_ = m.from;
    election_elapsed_ = 0;
  }
  SendAfterPersist(std::move(resp));
}

void Node::HandleVoteResponse(const Message& m) {
  MessageType expected =
      role_ == Role::kPreCandidate ? MessageType::kPreVoteResponse : MessageType::kVoteResponse;
  if (m.type != expected) return;
  votes_.emplace(m.from, !m.reject);
  size_t granted = 0, rejected = 0;
  for (const auto& [_, g] : votes_) (g ? granted : rejected)++;
  if (granted >= Quorum()) {
    if (role_ == Role::kPreCandidate) {
      Campaign(CampaignType::kElection);
    } else {
      BecomeLeader();
    }
  } else if (rejected >= Quorum()) {
    BecomeFollower(term_, kNoNode);
  }
}

void Node::TickElection() {
  election_elapsed_++;
  if (election_elapsed_ >= randomized_election_timeout_) {
    election_elapsed_ = 0;
    Campaign(config_.pre_vote ? CampaignType::kPreElection : CampaignType::kElection);
  }
}

void Node::TickHeartbeat() {
  heartbeat_elapsed_++;
  election_elapsed_++;
  if (election_elapsed_ >= config_.election_ticks) {
    election_elapsed_ = 0;
    if (config_.check_quorum) {
      // Thesis §6.2: a leader that has not heard from a majority in an election timeout steps
      // down, so that clients can find the real leader.
      size_t active = 1;
      for (auto& [_, pr] : progress_) {
        if (pr.recent_active) active++;
        pr.recent_active = false;
      }
      if (active < Quorum()) {
        BecomeFollower(term_, kNoNode);
        return;
      }
    }
  }
  if (lead_transferee_ != kNoNode && ++transfer_elapsed_ >= config_.election_ticks) AbortTransfer();
  for (auto& [peer, pr] : progress_) {
    if (pr.state == Progress::State::kSnapshot &&
        ++pr.snapshot_elapsed >= config_.snapshot_timeout_ticks) {
      // Neither acknowledged nor refused: the stream was lost. Probe again from its match.
      pr.pending_snapshot = 0;
      pr.BecomeProbe();
    }
  }
  if (heartbeat_elapsed_ >= config_.heartbeat_ticks) {
    heartbeat_elapsed_ = 0;
    BroadcastHeartbeat();
  }
}

void Node::Tick() {
  if (role_ == Role::kLeader) {
    TickHeartbeat();
  } else {
    TickElection();
  }
  AfterInput();
}

// ---- Step: the term rules, then dispatch ----

void Node::Step(const Message& m) {
  if (!IsVoter(m.from)) return;
  if (m.term > term_) {
    bool vote_request = m.type == MessageType::kVote || m.type == MessageType::kPreVote;
    if (vote_request && m.context != kContextTransfer && InLease()) {
      // Thesis §4.2.3: a node that heard from a leader within the minimum election timeout
      // ignores requests to vote, so a rejoining node cannot depose a healthy leader.
      AfterInput();
      return;
    }
    if (m.type == MessageType::kPreVote) {
      // Never change term on a pre-vote.
    } else if (m.type == MessageType::kPreVoteResponse && !m.reject) {
      // Our own future term, granted: counted below.
    } else if (m.type == MessageType::kAppend || m.type == MessageType::kHeartbeat ||
               m.type == MessageType::kSnapshot) {
      BecomeFollower(m.term, m.from);
    } else {
      BecomeFollower(m.term, kNoNode);
    }
  } else if (m.term < term_) {
    if ((config_.check_quorum || config_.pre_vote) &&
        (m.type == MessageType::kAppend || m.type == MessageType::kHeartbeat)) {
      // A stale leader (e.g. one that was partitioned away): answer so it learns our term and
      // steps down; otherwise it may never hear of the new term.
      Message resp;
      resp.type = MessageType::kAppendResponse;
      resp.to = m.from;
      resp.index = 0;
      resp.reject = true;
      Send(std::move(resp));
    } else if (m.type == MessageType::kPreVote) {
      Message resp;
      resp.type = MessageType::kPreVoteResponse;
      resp.to = m.from;
      resp.reject = true;
      Send(std::move(resp));
    }
    AfterInput();
    return;
  }

  switch (m.type) {
    case MessageType::kPreVote:
    case MessageType::kVote:
      HandleVoteRequest(m);
      break;
    case MessageType::kPreVoteResponse:
    case MessageType::kVoteResponse:
      if (role_ == Role::kPreCandidate || role_ == Role::kCandidate) HandleVoteResponse(m);
      break;
    case MessageType::kAppend:
    case MessageType::kHeartbeat:
    case MessageType::kSnapshot:
      if (role_ == Role::kLeader) {
        // Two leaders in one term would break Election Safety.
        PANIC() << "leader " << id_ << " got " << MessageTypeName(m.type) << " from " << m.from
                << " in its own term " << term_;
      }
      if (role_ != Role::kFollower) BecomeFollower(m.term, m.from);
      lead_ = m.from;
      election_elapsed_ = 0;
      if (m.type == MessageType::kAppend) {
        HandleAppend(m);
      } else if (m.type == MessageType::kHeartbeat) {
        HandleHeartbeat(m);
      } else {
        HandleSnapshot(m);
      }
      break;
    case MessageType::kTimeoutNow:
      if (role_ != Role::kLeader) Campaign(CampaignType::kTransfer);
      break;
    case MessageType::kAppendResponse:
    case MessageType::kHeartbeatResponse:
      if (role_ == Role::kLeader) StepLeader(m);
      break;
  }
  AfterInput();
}

// ---- Ready pipeline ----

bool Node::HasReady() const {
  HardState hs{term_, vote_, log_.committed()};
  return broadcast_pending_ || commit_broadcast_pending_ || !msgs_.empty() ||
         !msgs_after_persist_.empty() || !read_states_.empty() || snapshot_to_install_ ||
         log_.HasUnpersisted() || (!apply_paused_ && log_.HasCommitted()) ||
         !(hs == handed_hard_state_);
}

Ready Node::TakeReady() {
  if (role_ == Role::kLeader && (broadcast_pending_ || commit_broadcast_pending_)) {
    BroadcastAppend(commit_broadcast_pending_);
  }
  broadcast_pending_ = commit_broadcast_pending_ = false;
  Ready rd;
  rd.snapshot = snapshot_to_install_;
  snapshot_to_install_.reset();
  rd.entries = log_.TakeUnpersisted();
  HardState hs{term_, vote_, log_.committed()};
  if (!(hs == handed_hard_state_)) {
    rd.hard_state = hs;
    rd.must_sync = hs.term != handed_hard_state_.term || hs.vote != handed_hard_state_.vote;
    handed_hard_state_ = hs;
  }
  rd.must_sync = rd.must_sync || !rd.entries.empty() || rd.snapshot.has_value();
  rd.messages = std::move(msgs_);
  rd.messages_after_persist = std::move(msgs_after_persist_);
  msgs_.clear();
  msgs_after_persist_.clear();
  if (!apply_paused_) rd.committed_entries = log_.TakeCommitted(config_.max_msg_bytes);
  rd.read_states = std::move(read_states_);
  read_states_.clear();
  return rd;
}

void Node::RecycleReadStates(std::vector<ReadState>&& used) {
  if (!read_states_.empty() || used.capacity() <= read_states_.capacity()) return;
  used.clear();
  read_states_.swap(used);
}

void Node::Advance() {
  log_.AppliedAll();
  AfterInput();
}

void Node::OnPersisted(Index index, Term term) {
  if (snapshot_installing_ && index <= snapshot_installing_->index) return;
  log_.PersistedTo(index, term);
  if (role_ == Role::kLeader && MaybeCommit()) commit_broadcast_pending_ = true;
  AfterInput();
}

void Node::OnSnapshotInstalled(const SnapshotMeta& meta) {
  if (!snapshot_installing_ || !(*snapshot_installing_ == meta)) {
    AfterInput();
    return;
  }
  snapshot_installing_.reset();
  if (log_.snapshot() == meta) {
    log_.SetPersisted(std::max(log_.persisted(), meta.index));
    log_.SetApplied(meta.index);
  }
  if (snapshot_from_ != kNoNode) {
    Message resp;
    resp.type = MessageType::kAppendResponse;
    resp.to = lead_ != kNoNode ? lead_ : snapshot_from_;
    resp.index = meta.index;
    Send(std::move(resp));
    snapshot_from_ = kNoNode;
  }
  AfterInput();
}

common::Status Node::Compact(Index index) {
  if (index <= log_.snapshot().index) return common::Status::OK();
  if (index > log_.applied() || index > log_.last_index()) {
    return common::Status::InvalidArgument("compact beyond applied index");
  }
  log_.Compact(index);
  AfterInput();
  return common::Status::OK();
}

const Progress* Node::progress(NodeId id) const {
  auto it = progress_.find(id);
  return it == progress_.end() ? nullptr : &it->second;
}

std::string Node::CheckInvariants() const {
  std::string s = log_.CheckInvariants();
  if (!s.empty()) return s;
  if (term_ < checked_term_) return "term went backwards";
  if (log_.committed() < checked_commit_) return "commit index went backwards";
  if (log_.last_term() > term_) return "log holds a term above the current term";
  if (role_ == Role::kLeader) {
    if (lead_ != id_) return "leader does not name itself leader";
    if (vote_ != id_) return "leader did not vote for itself";
    for (const auto& [peer, pr] : progress_) {
      if (pr.match > log_.last_index()) return "follower match beyond leader's last index";
      if (pr.next <= pr.match) return "next index not above match index";
    }
  } else if (!progress_.empty()) {
    return "non-leader keeps progress";
  }
  if (role_ == Role::kCandidate && vote_ != id_) return "candidate did not vote for itself";
  checked_term_ = term_;
  checked_commit_ = log_.committed();
  return "";
}

}  // namespace raft
