// Config: everything a raft::Node needs to know at construction. Time is in ticks; the driver
// decides how long a tick is. Randomness comes from `seed` only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "raft/types.h"

namespace raft {

// Known Raft bugs that can be switched on to prove the simulator and the lab suite catch them.
// Never set outside tests.
enum Bug : uint32_t {
  kBugNone = 0,
  // Commit an entry of an earlier term by counting replicas (violates Figure 8 / §5.4.2).
  kBugCommitPreviousTerm = 1u << 0,
  // Grant a vote even after voting for another candidate in the same term.
  kBugDoubleVote = 1u << 1,
  // Send AppendEntries replies and votes before the data they depend on is durable.
  kBugReplyBeforePersist = 1u << 2,
  // Grant votes without the election restriction (candidate's log at least as up-to-date, §5.4.1).
  kBugNoElectionRestriction = 1u << 3,
};

struct Config {
  NodeId id = kNoNode;
  std::vector<NodeId> voters;  // every member, including `id`

  // A follower that hears no leader for a random number of ticks in
  // [election_ticks, 2 * election_ticks) starts an election. REQUIRES: heartbeat_ticks <
  // election_ticks.
  int election_ticks = 10;
  int heartbeat_ticks = 1;

  uint64_t seed = 1;  // seeds the election-timeout randomization

  bool pre_vote = true;      // thesis §9.6
  bool check_quorum = true;  // thesis §6.2: a leader that cannot hear a majority steps down

  // Batching and pipelining: at most this many entry bytes in one AppendEntries, and at most
  // `max_inflight_msgs` unacknowledged AppendEntries or `max_inflight_bytes` of entries per
  // follower.
  size_t max_msg_bytes = 1 << 20;
  size_t max_inflight_msgs = 64;
  size_t max_inflight_bytes = 8 << 20;

  // A leader refuses proposals (Busy) while the entries it appended and has not yet committed
  // exceed this many bytes: back-pressure instead of unbounded growth when followers lag.
  size_t max_uncommitted_bytes = 64 << 20;
  // A leader refuses proposals (Busy) while the entries it has committed and not yet applied
  // exceed this many bytes: a state machine or a disk that falls behind holds back new writes
  // instead of letting the log grow in memory. 0: no limit.
  size_t max_apply_lag_bytes = 64 << 20;

  // A node hears no leader for a random number of ticks in [1, election_ticks] before its
  // first election after it starts, instead of [election_ticks, 2 * election_ticks): a cluster
  // restarted as a whole elects a leader sooner (etcd's initial-election-tick-advance). With
  // pre_vote and check_quorum this disturbs no live cluster: the peers of a restarted node
  // still hear from their leader and refuse its pre-vote.
  bool fast_first_election = false;

  // A follower that neither acknowledges nor refuses a snapshot within this many ticks is
  // probed again (the stream was lost).
  int snapshot_timeout_ticks = 40;

  // The state machine's applied index at restart (it resumes from there, not from 0).
  Index applied = 0;

  // Check the node's invariants after every input (abort on violation).
#ifdef NDEBUG
  bool check_invariants = false;
#else
  bool check_invariants = true;
#endif

  uint32_t bugs = kBugNone;  // see Bug
};

}  // namespace raft
