// sim::Cluster: a deterministic simulation of N raft::Nodes. One seed drives everything: a
// virtual clock, the network (drop, delay, reordering, duplication, "long reordering" of
// replies, partitions of any shape), persistence that completes later than the messages sent
// beside it, snapshots streamed in chunks over the simulated network, and crash/restart that
// keeps only what was synced.
//
// Each node plays the driver of DESIGN.md's Ready pipeline: a FIFO persistence queue on
// MemoryStorage, messages, apply, Advance. The state machine is the lab's: the list of
// commands applied, snapshotted every `snapshot_interval` commands.
//
// Nodes are numbered 0..n-1 here (raft ids are i+1). After every event the cluster checks its
// invariants (each node's own, Election Safety, Leader Append-Only, Leader Completeness, State
// Machine Safety, apply-once-in-order, and periodically Log Matching) and records violations.
//
// Thread-safety: none.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "raft/memory_storage.h"
#include "raft/node.h"
#include "tests/sim/rng.h"

namespace sim {

using Time = int64_t;  // virtual microseconds
inline constexpr Time kMs = 1000;

struct ClusterOptions {
  int n = 3;
  uint64_t seed = 1;
  Time tick = 10 * kMs;
  int election_ticks = 30;   // 300-600 ms
  int heartbeat_ticks = 10;  // 100 ms: at most 10 heartbeats a second per follower
  Time max_persist_delay = 2 * kMs;
  // Reliable network: each message takes this long, at random.
  Time min_delay = 100;
  Time max_delay = 1 * kMs;
  // Unreliable network (labrpc): 0-26 ms delay and 10% of messages lost.
  double unreliable_drop = 0.1;
  Time unreliable_max_delay = 26 * kMs;
  double duplicate_rate = 0;  // share of messages delivered twice
  // Snapshot after applying command k when (k + 1) % snapshot_interval == 0 (0: never).
  int snapshot_interval = 0;
  size_t snapshot_chunk_bytes = 512;
  // Flow control of the core (raft::Config).
  size_t max_msg_bytes = 1 << 20;
  size_t max_inflight_msgs = 32;
  size_t max_uncommitted_bytes = 64 << 20;
  uint32_t bugs = 0;
  bool verbose = false;
};

// The state machine's snapshot: the commands applied up to `meta.index`.
struct SmSnapshot {
  raft::SnapshotMeta meta;
  std::vector<std::string> cmds;
};

class Cluster {
 public:
  explicit Cluster(const ClusterOptions& options);
  ~Cluster();

  int size() const { return static_cast<int>(slots_.size()); }
  Time now() const { return now_; }
  Rng& rng() { return rng_; }

  // Runs events until virtual time has advanced by `duration`.
  void RunFor(Time duration);

  // Network. A link i-j is up when both ends are connected and in the same partition group.
  void Connect(int i);
  void Disconnect(int i);
  bool connected(int i) const { return slots_[i].connected; }
  // Assigns partition groups (one entry per node); all zeros heals every partition.
  void SetGroups(const std::vector<int>& groups);
  void SetReliable(bool reliable) {
    Log(reliable ? "network reliable" : "network unreliable");
    reliable_ = reliable;
  }
  void SetLongReordering(bool on) {
    Log(on ? "long reordering on" : "long reordering off");
    long_reordering_ = on;
  }
  void SetUnreliableRates(double drop, Time max_delay) {
    options_.unreliable_drop = drop;
    options_.unreliable_max_delay = max_delay;
  }
  void SetDuplicateRate(double rate) { options_.duplicate_rate = rate; }

  // Crash: the node stops; only what it had synced survives. Its links go down (lab crash1).
  void Crash(int i);
  // Restart from what was synced (crashing first if alive). Not connected (lab start1).
  void Restart(int i);
  bool alive(int i) const { return slots_[i].node != nullptr; }
  raft::Node* node(int i) { return slots_[i].node.get(); }

  // Proposes `cmd` at node i. Returns the command index (count of commands, no-ops excluded)
  // and term when node i is a live leader.
  struct StartResult {
    bool ok = false;
    int64_t index = 0;
    raft::Term term = 0;
  };
  StartResult Start(int i, const std::string& cmd);
  // Asks node i for a read index; `ctx` must be unique.
  bool ReadIndex(int i, uint64_t ctx);

  // What server i applied, by command index (kept across restarts, like the lab's logs[i]).
  const std::map<int64_t, std::string>& applied(int i) const { return slots_[i].checker_log; }
  // Read states received by node i.
  const std::vector<raft::ReadState>& read_states(int i) const { return slots_[i].read_states; }
  // Applied raft index of node i's state machine.
  raft::Index applied_index(int i) const { return slots_[i].applied_raft; }
  // Bytes of Raft state node i has persisted (lab RaftStateSize).
  size_t PersistedBytes(int i) const { return slots_[i].storage.Bytes(); }

  // Counters: requests delivered to node i (lab GetCount), total bytes sent.
  int64_t rpc_count(int i) const { return slots_[i].rpc_count; }
  int64_t total_rpcs() const;
  int64_t total_bytes() const { return total_bytes_; }

  // Invariant violations seen so far (empty: none).
  const std::vector<std::string>& violations() const { return violations_; }
  // Runs the O(log) Log Matching check now.
  void CheckLogMatching();

  // Every entry some node applied: raft index -> (term, data).
  const std::map<raft::Index, std::pair<raft::Term, std::string>>& committed() const {
    return committed_;
  }

 private:
  struct Packet {
    int from = 0;
    int to = 0;
    raft::Message msg;
    // Snapshot chunk fields (chunk_total > 0).
    uint32_t chunk_seq = 0;
    uint32_t chunk_total = 0;
    std::string chunk;
  };
  struct Assembly {
    uint32_t total = 0;
    std::map<uint32_t, std::string> chunks;
  };
  struct Slot {
    std::unique_ptr<raft::Node> node;
    raft::MemoryStorage storage;
    SmSnapshot durable_snapshot;  // the state machine's synced snapshot
    uint64_t incarnation = 0;
    Time persist_busy_until = 0;
    bool connected = true;
    int group = 0;
    // State machine.
    raft::Index applied_raft = 0;
    std::vector<std::string> cmds;
    SmSnapshot core_snapshot;  // matches the core's snapshot metadata
    std::map<std::pair<raft::Index, raft::Term>, SmSnapshot> staged;
    // Snapshot streams being received, by (sender, index, term): a retransmission of the same
    // snapshot fills the gaps a lost chunk left, so a broken stream resumes.
    std::map<std::tuple<int, raft::Index, raft::Term>, Assembly> incoming;
    std::map<int64_t, std::string> checker_log;
    std::vector<raft::ReadState> read_states;
    int64_t rpc_count = 0;
    // For invariant checks.
    raft::Role last_role = raft::Role::kFollower;
    raft::Term last_term = 0;
    raft::Term leader_term = 0;
    raft::Index leader_last = 0;
  };
  struct Event {
    Time at;
    uint64_t seq;
    std::function<void()> fn;
    bool operator>(const Event& o) const { return at != o.at ? at > o.at : seq > o.seq; }
  };

  void Schedule(Time at, std::function<void()> fn);
  void StartNode(int i);
  void ScheduleTick(int i, uint64_t incarnation, Time at);
  void Drive(int i);
  void Persist(int i, uint64_t incarnation, const std::shared_ptr<raft::Ready>& rd);
  void SendMessage(int from, raft::Message m);
  void SendPacket(Packet p, bool is_response);
  void Deliver(const Packet& p);
  void Apply(int i, const std::vector<raft::Entry>& entries);
  bool LinkUp(int a, int b) const;
  int64_t CommandIndexOf(int i, raft::Index raft_index) const;
  void AfterEvent();
  void CheckNode(int i);
  void Violation(const std::string& what);
  void Log(const std::string& line) const;

  ClusterOptions options_;
  Rng rng_;
  Time now_ = 0;
  uint64_t seq_ = 0;
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> events_;
  std::vector<Slot> slots_;
  bool reliable_ = true;
  bool long_reordering_ = false;
  int64_t total_bytes_ = 0;
  uint64_t events_run_ = 0;

  std::map<raft::Term, int> leaders_;  // term -> node that led it
  std::map<raft::Index, std::pair<raft::Term, std::string>> committed_;
  std::map<int64_t, std::string> committed_cmds_;  // command index -> command
  // ReadIndex: ctx -> the highest index applied anywhere when the read was asked; a read
  // point below it would be a stale read.
  std::map<uint64_t, raft::Index> read_required_;
  std::vector<std::string> violations_;
};

// Serialization of a state-machine snapshot for chunked transfer.
std::string EncodeSnapshot(const SmSnapshot& s);
bool DecodeSnapshot(const std::string& bytes, SmSnapshot* out);

}  // namespace sim
