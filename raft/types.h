// Plain value types of the Raft core: log entries, hard state, snapshot metadata, messages and
// the Ready a Node hands to its driver. Nothing here does I/O; the wire and disk encodings of
// these structs live in protocol/ and kv/.
//
// Thread-safety: plain values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace raft {

using NodeId = uint64_t;
using Term = uint64_t;
using Index = uint64_t;

// No node: used for "voted for nobody" and "leader unknown". Real ids start at 1.
inline constexpr NodeId kNoNode = 0;

enum class EntryType : uint8_t {
  kNormal = 0,  // a command of the state machine
  kNoop = 1,    // appended by a new leader at the start of its term (paper §8); not a command
};

// One log entry. The first index of a log is 1.
struct Entry {
  Term term = 0;
  Index index = 0;
  EntryType type = EntryType::kNormal;
  std::string data;

  bool operator==(const Entry&) const = default;
};

// Bytes an entry counts for in flow control and message-size limits.
inline size_t EntryPayloadBytes(const Entry& e) { return e.data.size() + 24; }

// What must be on disk before a node may vote or acknowledge (Figure 2, "Persistent state").
// `commit` is stored too so that a restart knows what was committed; losing it is harmless.
struct HardState {
  Term term = 0;          // current_term
  NodeId vote = kNoNode;  // voted_for in `term`
  Index commit = 0;       // commit_index when this state was handed out

  bool operator==(const HardState&) const = default;
};

// Identifies a snapshot: it covers every entry up to and including `index`, whose term was
// `term`. The snapshot's bytes never pass through the core.
struct SnapshotMeta {
  Index index = 0;
  Term term = 0;

  bool operator==(const SnapshotMeta&) const = default;
};

enum class MessageType : uint8_t {
  kPreVote,            // pre-vote request (thesis §9.6): would you vote for me at `term`?
  kPreVoteResponse,    //
  kVote,               // RequestVote
  kVoteResponse,       //
  kAppend,             // AppendEntries
  kAppendResponse,     //
  kHeartbeat,          // empty AppendEntries that also confirms leadership for ReadIndex
  kHeartbeatResponse,  //
  kSnapshot,           // InstallSnapshot, metadata only; the bytes travel beside it
  kTimeoutNow,         // leadership transfer: start an election now (thesis §3.10)
};

const char* MessageTypeName(MessageType type);
bool IsResponse(MessageType type);

// `context` value of a kVote that comes from a leadership transfer: voters grant it even while
// they believe a leader is alive (check-quorum lease).
inline constexpr uint64_t kContextTransfer = 1;

// A message between nodes. Field use by type:
//   kPreVote, kVote:            index/log_term = candidate's last log index/term; context.
//   k(Pre)VoteResponse:         reject.
//   kAppend:                    index/log_term = prev_log_index/prev_log_term; entries; commit.
//   kAppendResponse:            accepted: index = last index now known to match the leader's;
//                               rejected: index = the rejected prev_log_index, reject_hint and
//                               log_term = the follower's hint (last index whose term is
//                               <= the leader's log_term there), for fast back-up.
//   kHeartbeat:                 commit; context = ReadIndex round (0: none).
//   kHeartbeatResponse:         context echoed.
//   kSnapshot:                  snapshot. The leader's core names its log snapshot; the driver
//                               streams the state machine's current snapshot instead (at or
//                               above that index) and sets `snapshot` to what it streams, so
//                               the follower installs and acknowledges exactly that.
//   kTimeoutNow:                nothing else.
struct Message {
  MessageType type = MessageType::kHeartbeat;
  NodeId from = kNoNode;
  NodeId to = kNoNode;
  Term term = 0;
  Term log_term = 0;
  Index index = 0;
  std::vector<Entry> entries;
  Index commit = 0;
  bool reject = false;
  Index reject_hint = 0;
  uint64_t context = 0;
  SnapshotMeta snapshot;
};

// Approximate encoded size of a message, used by tests that bound network bytes.
size_t MessageBytes(const Message& m);

// The answer to ReadIndex(ctx): the read may be served once the state machine has applied
// `index`. `ok == false` means leadership was lost before the read was confirmed: the read was
// not served and may be retried elsewhere.
struct ReadState {
  uint64_t ctx = 0;
  Index index = 0;
  bool ok = true;
};

enum class Role : uint8_t { kFollower, kPreCandidate, kCandidate, kLeader };
const char* RoleName(Role role);

// What a Node asks its driver to do, in this order (DESIGN.md, "The Ready pipeline"):
//  1. Persistence, as one step on a FIFO persistence queue: if `snapshot` is set, install the
//     snapshot the driver received for it (data durable, then metadata, then drop log entries
//     it covers); then write `hard_state` (if set) and `entries` (which replace any stored
//     entries from entries.front().index on) in one batch, synced when `must_sync`.
//  2. Send `messages` at once: they do not depend on this step being durable.
//  3. When step 1 is durable: call OnSnapshotInstalled(snapshot) if a snapshot was installed,
//     OnPersisted(last entry's index, term) if entries were written, then send
//     `messages_after_persist` (votes, AppendEntries replies).
//  4. Apply `committed_entries` in order, answer `read_states` once applied up to their index,
//     then call Advance().
// A message whose `to` is the node itself is not sent: the driver Steps it back into the node
// (a candidate's own vote, counted only once its term and vote are durable).
struct Ready {
  std::optional<HardState> hard_state;
  std::vector<Entry> entries;
  std::optional<SnapshotMeta> snapshot;
  bool must_sync = false;
  std::vector<Message> messages;
  std::vector<Message> messages_after_persist;
  std::vector<Entry> committed_entries;
  std::vector<ReadState> read_states;

  // True when the persistence step has nothing to write.
  bool PersistenceEmpty() const { return !hard_state && entries.empty() && !snapshot; }
};

// What a node loads from its storage to restart (raft::LogStorage::Load).
struct PersistentState {
  HardState hard_state;
  SnapshotMeta snapshot;       // {0, 0} when there is none
  std::vector<Entry> entries;  // contiguous, from snapshot.index + 1
};

}  // namespace raft
