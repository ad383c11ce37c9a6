// Cluster: a hand-driven test fixture for raft::Node. It builds N nodes (ids 1..N), each with a
// MemoryStorage, and plays the driver of the Ready pipeline (raft/types.h) for them, while the
// test decides which messages are delivered, dropped or held, and when a node's Ready is
// processed. Nothing runs unless the test asks: no clock, no threads, no randomness beyond
// each node's Config::seed.
//
// A test that needs finer control than Process() gives (for example, to look at a Ready before
// its persistence step completes) calls node(id).TakeReady() itself.
//
// Thread-safety: none.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "raft/config.h"
#include "raft/memory_storage.h"
#include "raft/node.h"
#include "raft/types.h"

namespace raft::test {

using MessagePredicate = std::function<bool(const Message&)>;

// Predicates on messages, to combine with && in lambdas or use as they are.
MessagePredicate AnyMessage();
MessagePredicate OfType(MessageType type);
MessagePredicate Between(NodeId from, NodeId to);
MessagePredicate OfTypeTo(MessageType type, NodeId to);

// The messages of `msgs` that satisfy `pred`.
std::vector<Message> Select(const std::vector<Message>& msgs, const MessagePredicate& pred);
size_t Count(const std::vector<Message>& msgs, const MessagePredicate& pred);

// Entries first, first + 1, ... with the given terms; entry i carries data "e<i>".
std::vector<Entry> MakeEntries(Index first, const std::vector<Term>& terms);

// A persisted state: hard state {term, vote, commit}, entries from index 1 (or after
// `snapshot`).
PersistentState MakeState(Term term, NodeId vote, Index commit, std::vector<Entry> entries,
                          SnapshotMeta snapshot = {});

// A message with the fields every message has.
Message MakeMessage(MessageType type, NodeId from, NodeId to, Term term);

// The configuration the fixture uses: election_ticks 10, heartbeat_ticks 1, seed = id,
// voters 1..n, pre-vote and check-quorum on.
Config TestConfig(NodeId id, size_t n);

class Cluster {
 public:
  using ConfigTweak = std::function<void(Config*)>;

  // Nodes 1..n, empty storage.
  explicit Cluster(size_t n, const ConfigTweak& tweak = nullptr);
  // Node i + 1 restarts from states[i] (its storage holds exactly that state).
  explicit Cluster(const std::vector<PersistentState>& states, const ConfigTweak& tweak = nullptr);

  size_t size() const { return peers_.size(); }
  Node& node(NodeId id);
  MemoryStorage& storage(NodeId id);
  Config& config(NodeId id);
  // Entries applied by the driver, in order (Ready::committed_entries).
  const std::vector<Entry>& applied(NodeId id);
  // The state machine's applied index as the driver sees it (snapshots included).
  Index applied_index(NodeId id);
  // Read states handed out by the node, in order.
  const std::vector<ReadState>& read_states(NodeId id);

  // Acts on one Ready of node `id` as the driver must: (1) install the snapshot and save the
  // hard state and entries in storage, (2) send `messages`, (3) report the snapshot installed
  // and the entries persisted, then send `messages_after_persist`, (4) apply committed
  // entries, record read states, Advance(). Sending puts a message on the network; a message
  // to the node itself is stepped back into it at once. Returns the Ready for inspection.
  Ready Process(NodeId id);
  // The same for a Ready the test took itself with node(id).TakeReady().
  void Handle(NodeId id, const Ready& rd);
  // Processes every node that has a Ready. Returns whether any had one.
  bool ProcessAll();

  // Messages on the network, oldest first.
  std::vector<Message>& network() { return network_; }
  // Every message ever put on the network, oldest first.
  const std::vector<Message>& sent() const { return sent_; }
  // Puts `m` on the network (as if a node had sent it).
  void Send(const Message& m);

  // Delivers (Steps into the recipient) every message now on the network that satisfies
  // `pred`, oldest first; messages that the deliveries cause are queued, not delivered.
  // Messages from or to an isolated node are dropped instead. Returns how many were stepped.
  size_t Deliver(const MessagePredicate& pred = AnyMessage());
  // Removes the messages satisfying `pred` from the network. Returns how many.
  size_t Drop(const MessagePredicate& pred = AnyMessage());
  // ProcessAll and Deliver(pred) until neither does anything. Messages not satisfying `pred`
  // stay on the network.
  void Stabilize(const MessagePredicate& pred = AnyMessage());

  void Tick(NodeId id, int times = 1);
  // Ticks `id` until it leaves the follower role. Returns the number of ticks (0 on failure:
  // it did not campaign within 2 * election_ticks).
  int TickUntilCampaign(NodeId id);
  // Makes `id` campaign, then stabilizes. Returns whether `id` ended up leader.
  bool Elect(NodeId id);
  // Makes `id` campaign and delivers only election messages until `id` is leader; its no-op
  // is left unsent in its next Ready. Returns whether `id` became leader.
  bool ElectWithoutCommit(NodeId id);

  void Isolate(NodeId id);
  void Heal();

  // Throws away node `id` and builds it again from its storage, with Config::applied =
  // `applied`. Messages on the network are kept.
  void Restart(NodeId id, Index applied = 0);
  // Compacts node `id`'s log and storage up to `index`.
  common::Status Compact(NodeId id, Index index);

 private:
  struct Peer {
    Config config;
    std::unique_ptr<MemoryStorage> storage;
    std::unique_ptr<Node> node;
    std::vector<Entry> applied;
    Index applied_index = 0;
    std::vector<ReadState> read_states;
  };

  Peer& peer(NodeId id);
  void Build(size_t n, const ConfigTweak& tweak);
  void Emit(NodeId id, const std::vector<Message>& msgs);

  std::map<NodeId, Peer> peers_;
  std::vector<Message> network_;
  std::vector<Message> sent_;
  std::vector<NodeId> isolated_;
};

}  // namespace raft::test
