// raft::Node: the Raft algorithm (extended paper, Figure 2; Ongaro's thesis for pre-vote,
// check-quorum, ReadIndex and leadership transfer) as a deterministic state machine.
//
// It does no I/O: no sockets, files, clocks, threads or global randomness. Its inputs are
// Tick(), Step(message), Propose(data), ReadIndex(ctx), TransferLeadership(id), Compact(index)
// and the acknowledgements of the Ready pipeline (OnPersisted, OnSnapshotInstalled,
// Advance). Its output is a Ready (raft/types.h), which the driver acts on in order. The same
// inputs always give the same outputs.
//
// Durability contract: a Node never lets a vote or an AppendEntries acknowledgement leave
// before the state it depends on is durable (they travel in Ready::messages_after_persist),
// and a leader counts its own copy of an entry only after OnPersisted covers it.
//
// Thread-safety: none. One thread (the driver's loop) owns a Node.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "raft/config.h"
#include "raft/progress.h"
#include "raft/raft_log.h"
#include "raft/types.h"

namespace raft {

class Node {
 public:
  // Starts a node from what it persisted (empty for a new node).
  // REQUIRES: config.id is one of config.voters; state.entries contiguous after the snapshot.
  Node(const Config& config, const PersistentState& state);

  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Advances logical time by one tick: election timeouts, heartbeats, check-quorum.
  void Tick();

  // Handles a message from a peer (or from itself, see Ready).
  void Step(const Message& m);

  // Appends `data` as a new command. Returns OK with the entry's index and term when this node
  // is the leader; otherwise InvalidArgument ("not leader") or Busy (a leadership transfer is
  // in progress, more than Config::max_uncommitted_bytes are waiting to commit, or more than
  // Config::max_apply_lag_bytes are committed and not applied). Success means proposed, not
  // committed.
  common::Status Propose(std::string data, Index* index, Term* term);

  // Asks for a linearizable read point (thesis §6.4). The answer arrives later as a ReadState
  // with the same ctx: once it is applied up to ReadState::index, the state machine may serve
  // the read. Reads asked for while a round is in flight share the next heartbeat round.
  // Returns InvalidArgument when this node is not the leader.
  common::Status ReadIndex(uint64_t ctx);

  // Hands leadership to `target` (thesis §3.10): brings it up to date, then tells it to start
  // an election at once. Proposals are refused meanwhile; the transfer is abandoned after an
  // election timeout. Returns InvalidArgument if not leader or `target` is not a member.
  common::Status TransferLeadership(NodeId target);

  // While paused, Readys carry no committed entries: the state machine cannot take them now
  // without blocking the driver (its storage is stalled). Everything else goes on: messages,
  // persistence, commits. The apply lag grows meanwhile, and past
  // Config::max_apply_lag_bytes proposals are refused (Busy).
  void set_apply_paused(bool paused) { apply_paused_ = paused; }
  bool apply_paused() const { return apply_paused_; }

  // Whether TakeReady() has anything to hand out.
  bool HasReady() const;
  // Hands out what the driver must do next (see Ready) and marks it handed out.
  Ready TakeReady();
  // The committed entries handed out so far have been applied to the state machine.
  void Advance();
  // Optional: hands back a Ready's read_states once used, so that their memory serves the next
  // Readys (a busy leader answers hundreds of reads a round; nothing is allocated per round).
  void RecycleReadStates(std::vector<ReadState>&& used);

  // Entries up to (index, term) are durable. Ignored if the log no longer holds that entry.
  void OnPersisted(Index index, Term term);
  // The snapshot handed out in Ready::snapshot is installed and durable: the state machine
  // now holds everything up to meta.index.
  void OnSnapshotInstalled(const SnapshotMeta& meta);
  // The driver could not deliver the snapshot to `follower`: stop waiting for it and probe the
  // follower again at the next heartbeat answer.
  void ReportSnapshotFailure(NodeId follower);

  // The state machine has a durable snapshot covering everything up to `index`: entries up to
  // there may be dropped. REQUIRES-ish: index <= applied; returns InvalidArgument otherwise.
  common::Status Compact(Index index);

  NodeId id() const { return id_; }
  Role role() const { return role_; }
  Term term() const { return term_; }
  NodeId voted_for() const { return vote_; }
  NodeId leader() const { return lead_; }
  bool transferring() const { return lead_transferee_ != kNoNode; }
  const RaftLog& log() const { return log_; }
  const std::vector<NodeId>& voters() const { return config_.voters; }
  // A follower's progress as seen by this leader; nullptr if not leader or unknown id.
  const Progress* progress(NodeId id) const;

  // Checks this node's invariants (RaftLog's plus term/role/progress rules). Returns "" or a
  // description of the first violation. Called after every input when config.check_invariants.
  std::string CheckInvariants() const;

 private:
  enum class CampaignType { kPreElection, kElection, kTransfer };

  size_t Quorum() const { return config_.voters.size() / 2 + 1; }
  bool IsVoter(NodeId id) const;
  void Send(Message m);
  void SendAfterPersist(Message m);
  void AfterInput();

  // Roles (node.cc).
  void BecomeFollower(Term term, NodeId lead);
  void BecomePreCandidate();
  void BecomeCandidate();
  void BecomeLeader();
  void Reset(Term term);
  void ResetRandomizedElectionTimeout();
  void Campaign(CampaignType type);
  void TickElection();
  void TickHeartbeat();
  void HandleVoteRequest(const Message& m);
  void HandleVoteResponse(const Message& m);
  bool InLease() const;
  uint64_t NextRandom();

  // Replication (replication.cc).
  void StepLeader(const Message& m);
  void HandleAppend(const Message& m);
  void HandleHeartbeat(const Message& m);
  void HandleSnapshot(const Message& m);
  void HandleAppendResponse(const Message& m);
  void HandleHeartbeatResponse(const Message& m);
  bool MaybeSendAppend(NodeId to, bool send_if_empty);
  void SendSnapshot(NodeId to, Progress& pr);
  void BroadcastAppend(bool send_if_empty);
  void SendHeartbeat(NodeId peer, Progress& pr);
  void BroadcastHeartbeat();
  bool MaybeCommit();
  void AppendEntry(EntryType type, std::string data);

  // Reads and transfer (read_index.cc).
  void StartReadRound();
  void HandleReadAck(NodeId from, uint64_t round);
  void ReleasePendingReads();
  void FailAllReads();
  void AbortTransfer();
  void SendTimeoutNow(NodeId to);
  bool CommittedInCurrentTerm() const;

  Config config_;
  const NodeId id_;
  uint64_t rng_state_;

  // Persistent state (Figure 2), mirrored to storage through Ready::hard_state.
  Term term_ = 0;
  NodeId vote_ = kNoNode;
  RaftLog log_;

  Role role_ = Role::kFollower;
  NodeId lead_ = kNoNode;

  // Ticks since the last election timeout reset (followers, candidates) or since the last
  // check-quorum window began (leaders).
  int election_elapsed_ = 0;
  int heartbeat_elapsed_ = 0;
  int randomized_election_timeout_ = 0;

  // Candidates: votes received in this election, granted or not.
  std::map<NodeId, bool> votes_;

  // Leaders: one Progress per other voter.
  std::map<NodeId, Progress> progress_;
  size_t uncommitted_bytes_ = 0;           // payload of this term's entries not yet committed
  bool apply_paused_ = false;              // set_apply_paused
  bool broadcast_pending_ = false;         // new entries to send at the next TakeReady
  bool commit_broadcast_pending_ = false;  // the commit index moved: tell followers

  // Leadership transfer in progress (leaders).
  NodeId lead_transferee_ = kNoNode;
  int transfer_elapsed_ = 0;

  // ReadIndex (leaders): reads waiting for the first commit of the term, reads waiting for
  // the round in flight to finish, and the round in flight.
  struct PendingRead {
    uint64_t ctx;
    Index index;
  };
  std::vector<uint64_t> reads_before_commit_;
  std::vector<PendingRead> reads_next_round_;
  std::vector<PendingRead> reads_in_round_;
  uint64_t read_round_ = 0;       // id of the round in flight, 0 if none
  uint64_t last_read_round_ = 0;  // last round id used
  std::map<NodeId, bool> read_acks_;
  // The followers whose answers completed the last round: the next round asks them only.
  std::vector<NodeId> read_quorum_peers_;

  // Handed out in the next Ready.
  std::vector<Message> msgs_;
  std::vector<Message> msgs_after_persist_;
  std::vector<ReadState> read_states_;
  std::optional<SnapshotMeta> snapshot_to_install_;
  // A snapshot handed out and not yet reported installed.
  std::optional<SnapshotMeta> snapshot_installing_;
  NodeId snapshot_from_ = kNoNode;
  HardState handed_hard_state_;

  // For CheckInvariants: values seen at the previous check.
  mutable Term checked_term_ = 0;
  mutable Index checked_commit_ = 0;
};

}  // namespace raft
