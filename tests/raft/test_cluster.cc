#include "tests/raft/test_cluster.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <utility>

namespace raft::test {

MessagePredicate AnyMessage() {
  return [](const Message&) { return true; };
}

MessagePredicate OfType(MessageType type) {
  return [type](const Message& m) { return m.type == type; };
}

MessagePredicate Between(NodeId from, NodeId to) {
  return [from, to](const Message& m) { return m.from == from && m.to == to; };
}

MessagePredicate OfTypeTo(MessageType type, NodeId to) {
  return [type, to](const Message& m) { return m.type == type && m.to == to; };
}

std::vector<Message> Select(const std::vector<Message>& msgs, const MessagePredicate& pred) {
  std::vector<Message> out;
  for (const Message& m : msgs) {
    if (pred(m)) out.push_back(m);
  }
  return out;
}

size_t Count(const std::vector<Message>& msgs, const MessagePredicate& pred) {
  return static_cast<size_t>(std::count_if(msgs.begin(), msgs.end(), pred));
}

std::vector<Entry> MakeEntries(Index first, const std::vector<Term>& terms) {
  std::vector<Entry> out;
  for (size_t i = 0; i < terms.size(); i++) {
    Entry e;
    e.index = first + i;
    e.term = terms[i];
    e.data = "e" + std::to_string(e.index);
    out.push_back(std::move(e));
  }
  return out;
}

PersistentState MakeState(Term term, NodeId vote, Index commit, std::vector<Entry> entries,
                          SnapshotMeta snapshot) {
  PersistentState s;
  s.hard_state = {term, vote, commit};
  s.snapshot = snapshot;
  s.entries = std::move(entries);
  return s;
}

Message MakeMessage(MessageType type, NodeId from, NodeId to, Term term) {
  Message m;
  m.type = type;
  m.from = from;
  m.to = to;
  m.term = term;
  return m;
}

Config TestConfig(NodeId id, size_t n) {
  Config c;
  c.id = id;
  for (NodeId v = 1; v <= n; v++) c.voters.push_back(v);
  c.election_ticks = 10;
  c.heartbeat_ticks = 1;
  c.seed = id;
  c.pre_vote = true;
  c.check_quorum = true;
  c.check_invariants = true;
  return c;
}

Cluster::Cluster(size_t n, const ConfigTweak& tweak) { Build(n, tweak); }

Cluster::Cluster(const std::vector<PersistentState>& states, const ConfigTweak& tweak) {
  for (size_t i = 0; i < states.size(); i++) {
    Peer& p = peers_[i + 1];
    p.storage = std::make_unique<MemoryStorage>();
    if (states[i].snapshot.index > 0) {
      // Stored snapshot first, then the entries after it.
      EXPECT_TRUE(p.storage
                      ->Save(std::nullopt,
                             MakeEntries(1, std::vector<Term>(states[i].snapshot.index,
                                                              states[i].snapshot.term)),
                             true)
                      .ok());
      EXPECT_TRUE(p.storage->Compact(states[i].snapshot.index).ok());
    }
    EXPECT_TRUE(p.storage->Save(states[i].hard_state, states[i].entries, true).ok());
  }
  Build(states.size(), tweak);
}

void Cluster::Build(size_t n, const ConfigTweak& tweak) {
  for (NodeId id = 1; id <= n; id++) {
    Peer& p = peers_[id];
    if (!p.storage) p.storage = std::make_unique<MemoryStorage>();
    p.config = TestConfig(id, n);
    if (tweak) tweak(&p.config);
    PersistentState state;
    EXPECT_TRUE(p.storage->Load(&state).ok());
    p.node = std::make_unique<Node>(p.config, state);
    p.applied_index = std::max(p.config.applied, state.snapshot.index);
  }
}

Cluster::Peer& Cluster::peer(NodeId id) {
  auto it = peers_.find(id);
  EXPECT_NE(it, peers_.end()) << "no node " << id;
  return it->second;
}

Node& Cluster::node(NodeId id) { return *peer(id).node; }
MemoryStorage& Cluster::storage(NodeId id) { return *peer(id).storage; }
Config& Cluster::config(NodeId id) { return peer(id).config; }
const std::vector<Entry>& Cluster::applied(NodeId id) { return peer(id).applied; }
Index Cluster::applied_index(NodeId id) { return peer(id).applied_index; }
const std::vector<ReadState>& Cluster::read_states(NodeId id) { return peer(id).read_states; }

void Cluster::Send(const Message& m) {
  network_.push_back(m);
  sent_.push_back(m);
}

void Cluster::Emit(NodeId id, const std::vector<Message>& msgs) {
  for (const Message& m : msgs) {
    EXPECT_EQ(m.from, id);
    if (m.to == id) {
      node(id).Step(m);  // a node's message to itself is stepped back, never sent
    } else {
      Send(m);
    }
  }
}

Ready Cluster::Process(NodeId id) {
  Ready rd = node(id).TakeReady();
  Handle(id, rd);
  return rd;
}

void Cluster::Handle(NodeId id, const Ready& rd) {
  Peer& p = peer(id);
  // 1. Persistence.
  if (rd.snapshot) {
    EXPECT_TRUE(p.storage->ApplySnapshot(*rd.snapshot).ok());
  }
  EXPECT_TRUE(p.storage->Save(rd.hard_state, rd.entries, rd.must_sync).ok());
  // 2. Messages that do not wait for it.
  Emit(id, rd.messages);
  // 3. Durable: acknowledge, then send what waited for it.
  if (rd.snapshot) {
    p.node->OnSnapshotInstalled(*rd.snapshot);
    p.applied_index = std::max(p.applied_index, rd.snapshot->index);
  }
  if (!rd.entries.empty()) p.node->OnPersisted(rd.entries.back().index, rd.entries.back().term);
  Emit(id, rd.messages_after_persist);
  // 4. Apply.
  for (const Entry& e : rd.committed_entries) {
    EXPECT_EQ(e.index, p.applied_index + 1) << "node " << id << " applies out of order";
    p.applied_index = e.index;
    p.applied.push_back(e);
  }
  for (const ReadState& rs : rd.read_states) p.read_states.push_back(rs);
  p.node->Advance();
}

bool Cluster::ProcessAll() {
  bool any = false;
  for (auto& [id, p] : peers_) {
    if (p.node->HasReady()) {
      Process(id);
      any = true;
    }
  }
  return any;
}

size_t Cluster::Deliver(const MessagePredicate& pred) {
  std::vector<Message> now;
  std::vector<Message> keep;
  for (Message& m : network_) (pred(m) ? now : keep).push_back(std::move(m));
  network_ = std::move(keep);
  size_t stepped = 0;
  for (const Message& m : now) {
    bool cut = std::find(isolated_.begin(), isolated_.end(), m.from) != isolated_.end() ||
               std::find(isolated_.begin(), isolated_.end(), m.to) != isolated_.end();
    if (cut || peers_.count(m.to) == 0) continue;
    node(m.to).Step(m);
    stepped++;
  }
  return stepped;
}

size_t Cluster::Drop(const MessagePredicate& pred) {
  size_t before = network_.size();
  std::erase_if(network_, pred);
  return before - network_.size();
}

void Cluster::Stabilize(const MessagePredicate& pred) {
  for (int round = 0; round < 10000; round++) {
    bool any = ProcessAll();
    bool deliverable = std::any_of(network_.begin(), network_.end(), pred);
    if (deliverable) Deliver(pred);
    if (!any && !deliverable) return;
  }
  ADD_FAILURE() << "cluster did not stabilize";
}

void Cluster::Tick(NodeId id, int times) {
  for (int i = 0; i < times; i++) node(id).Tick();
}

int Cluster::TickUntilCampaign(NodeId id) {
  Node& n = node(id);
  for (int ticks = 1; ticks <= 2 * peer(id).config.election_ticks; ticks++) {
    n.Tick();
    if (n.role() != Role::kFollower) return ticks;
  }
  return 0;
}

bool Cluster::Elect(NodeId id) {
  if (TickUntilCampaign(id) == 0) return false;
  Stabilize();
  return node(id).role() == Role::kLeader;
}

bool Cluster::ElectWithoutCommit(NodeId id) {
  if (TickUntilCampaign(id) == 0) return false;
  MessagePredicate election = [](const Message& m) {
    return m.type == MessageType::kPreVote || m.type == MessageType::kPreVoteResponse ||
           m.type == MessageType::kVote || m.type == MessageType::kVoteResponse;
  };
  for (int round = 0; round < 100 && node(id).role() != Role::kLeader; round++) {
    for (auto& [pid, p] : peers_) {
      if (pid != id && p.node->HasReady()) Process(pid);
    }
    // The candidate's own Ready (its vote requests and own vote) must be processed; stop as
    // soon as it is leader so that its no-op stays in its next Ready.
    if (node(id).HasReady() && node(id).role() != Role::kLeader) Process(id);
    Deliver(election);
  }
  return node(id).role() == Role::kLeader;
}

void Cluster::Isolate(NodeId id) { isolated_.push_back(id); }

void Cluster::Heal() { isolated_.clear(); }

void Cluster::Restart(NodeId id, Index applied) {
  Peer& p = peer(id);
  p.config.applied = applied;
  PersistentState state;
  EXPECT_TRUE(p.storage->Load(&state).ok());
  p.node = std::make_unique<Node>(p.config, state);
  p.applied.clear();
  p.applied_index = std::max(applied, state.snapshot.index);
  p.read_states.clear();
}

common::Status Cluster::Compact(NodeId id, Index index) {
  common::Status s = node(id).Compact(index);
  if (!s.ok()) return s;
  return storage(id).Compact(index);
}

}  // namespace raft::test
