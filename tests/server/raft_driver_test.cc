// RaftDriver: three nodes in one process, each with its own LevelDB storage (in memory) and
// storage thread, joined by an in-memory transport the test pumps, snapshot work run by the
// test (ManualBackgroundWork). Proposals are applied with their results on every node, reads
// wait for the read point, a follower refuses writes, a restarted node catches up from its own
// disk, and many proposals share one fsync. The log is compacted (keeping a tail, or all of it
// on CompactNow) and the node told; a follower behind the compacted log catches up by a
// streamed snapshot, installed durably, and a stream that loses a chunk starts over.
#include "server/raft_driver.h"

#include <gtest/gtest.h>
#include <leveldb/env.h>
#include <leveldb/helpers/memenv.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "protocol/command.h"
#include "tests/server/manual_background_work.h"

namespace server {
namespace {

std::string SetCommand(const std::string& key, const std::string& value) {
  protocol::Command c;
  protocol::Op op;
  op.code = protocol::OpCode::kSet;
  op.keys = {key};
  op.values = {value};
  c.ops = {op};
  return protocol::EncodeCommand(c);
}

struct ClusterOptions {
  uint64_t snapshot_entries = 0;
  raft::Index compact_keep_tail = 1000;
  uint64_t snapshot_log_bytes = 0;
  size_t snapshot_chunk_bytes = 1 << 20;
  uint64_t snapshot_bytes_per_tick = 0;
  size_t snapshot_window_chunks = 4;
  size_t max_msg_bytes = 0;  // 0: raft::Config's
  size_t max_batch_bytes = 0;
  // Options::apply_would_block of node i (0-based); null: none.
  std::function<bool(int)> apply_would_block;
};

class Cluster : public RaftDriver::Transport {
 public:
  explicit Cluster(int n, ClusterOptions options = {})
      : options_(options), nodes_(static_cast<size_t>(n)) {
    for (int i = 0; i < n; i++) {
      nodes_[i].env.reset(leveldb::NewMemEnv(leveldb::Env::Default()));
      Start(i);
    }
  }
  ~Cluster() override {
    for (auto& n : nodes_) {
      n.driver.reset();
      n.storage.reset();
    }
  }

  void Start(int i) {
    Node& n = nodes_[i];
    n.driver.reset();
    n.storage.reset();
    kv::NodeStorage::Options o;
    o.env = n.env.get();
    ASSERT_TRUE(kv::NodeStorage::Open("/node", o, &n.storage).ok());
    raft::Config config;
    config.id = static_cast<raft::NodeId>(i + 1);
    for (size_t j = 0; j < nodes_.size(); j++) config.voters.push_back(j + 1);
    config.election_ticks = 10;
    config.heartbeat_ticks = 1;
    config.seed = 7 + static_cast<uint64_t>(i);
    config.check_invariants = true;
    if (options_.max_msg_bytes > 0) config.max_msg_bytes = options_.max_msg_bytes;
    n.news = std::make_shared<std::atomic<bool>>(false);
    auto news = n.news;
    RaftDriver::Options d;
    d.snapshot_entries = options_.snapshot_entries;
    d.compact_keep_tail = options_.compact_keep_tail;
    d.snapshot_log_bytes = options_.snapshot_log_bytes;
    d.snapshot_chunk_bytes = options_.snapshot_chunk_bytes;
    d.snapshot_bytes_per_tick = options_.snapshot_bytes_per_tick;
    d.snapshot_window_chunks = options_.snapshot_window_chunks;
    d.max_batch_bytes = options_.max_batch_bytes;
    if (options_.apply_would_block) {
      d.apply_would_block = [this, i] { return options_.apply_would_block(i); };
    }
    auto background = std::make_unique<ManualBackgroundWork>();
    n.background = background.get();
    d.background = std::move(background);
    n.driver = std::make_unique<RaftDriver>(
        config, n.storage.get(), this,
        [this, news] {
          news->store(true);
          std::lock_guard<std::mutex> lock(mu_);
          cv_.notify_all();
        },
        std::move(d));
    ASSERT_TRUE(n.driver->Start().ok());
  }
  void Stop(int i) {
    nodes_[i].driver.reset();
    nodes_[i].storage.reset();
    nodes_[i].background = nullptr;
  }

  void Send(const raft::Message& m) override { net_.push_back(m); }
  bool SendFrame(uint64_t peer, const protocol::PeerFrame& frame) override {
    frames_.push_back({peer, frame});
    return true;
  }
  // Frames for which `drop` returns true are lost on the way.
  void set_drop_frame(std::function<bool(const protocol::PeerFrame&)> drop) {
    drop_frame_ = std::move(drop);
  }

  // The messages sent and not yet delivered, taken off the network.
  std::deque<raft::Message> TakeMessages() {
    std::deque<raft::Message> out;
    out.swap(net_);
    return out;
  }

  RaftDriver& driver(int i) { return *nodes_[i].driver; }
  kv::StateMachine& state(int i) { return *nodes_[i].storage->state(); }
  bool up(int i) const { return nodes_[i].driver != nullptr; }

  // Runs the loops until `done` or `max_rounds` rounds; a tick every `tick_every` rounds.
  bool RunUntil(const std::function<bool()>& done, int max_rounds = 20000, int tick_every = 20) {
    for (int round = 0; round < max_rounds; round++) {
      if (done()) return true;
      bool busy = false;
      for (size_t i = 0; i < nodes_.size(); i++) {
        if (up(static_cast<int>(i)) && nodes_[i].news->exchange(false)) {
          nodes_[i].driver->OnStorageNews();
          busy = true;
        }
      }
      std::deque<raft::Message> batch;
      batch.swap(net_);
      for (const raft::Message& m : batch) {
        int to = static_cast<int>(m.to) - 1;
        if (!up(to)) continue;
        nodes_[to].driver->Step(m);
        busy = true;
      }
      std::deque<std::pair<uint64_t, protocol::PeerFrame>> frames;
      frames.swap(frames_);
      for (const auto& [peer, frame] : frames) {
        int to = static_cast<int>(peer) - 1;
        if (!up(to) || (drop_frame_ && drop_frame_(frame))) continue;
        if (const auto* c = std::get_if<protocol::SnapshotChunk>(&frame)) {
          nodes_[to].driver->OnSnapshotChunk(*c);
        } else {
          nodes_[to].driver->OnSnapshotAck(std::get<protocol::SnapshotAck>(frame));
        }
        busy = true;
      }
      for (size_t i = 0; i < nodes_.size(); i++) {
        if (up(static_cast<int>(i)) && nodes_[i].background->RunAll() > 0) busy = true;
      }
      if (round % tick_every == 0) {
        for (size_t i = 0; i < nodes_.size(); i++) {
          if (up(static_cast<int>(i))) nodes_[i].driver->Tick();
        }
      }
      for (size_t i = 0; i < nodes_.size(); i++) {
        if (up(static_cast<int>(i))) nodes_[i].driver->Flush();
      }
      if (!busy) {
        // Give the storage threads a moment; how long never decides the outcome.
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait_for(lock, std::chrono::milliseconds(1));
      }
    }
    return done();
  }

  int Leader() {
    for (size_t i = 0; i < nodes_.size(); i++) {
      if (up(static_cast<int>(i)) && nodes_[i].driver->node().role() == raft::Role::kLeader) {
        return static_cast<int>(i);
      }
    }
    return -1;
  }

 private:
  struct Node {
    std::unique_ptr<leveldb::Env> env;
    std::unique_ptr<kv::NodeStorage> storage;
    std::unique_ptr<RaftDriver> driver;
    ManualBackgroundWork* background = nullptr;  // owned by the driver
    std::shared_ptr<std::atomic<bool>> news;
  };
  ClusterOptions options_;
  std::vector<Node> nodes_;
  std::deque<raft::Message> net_;
  std::deque<std::pair<uint64_t, protocol::PeerFrame>> frames_;
  std::function<bool(const protocol::PeerFrame&)> drop_frame_;
  std::mutex mu_;
  std::condition_variable cv_;
};

TEST(RaftDriver, ProposalsAreAppliedEverywhereWithTheirResults) {
  Cluster c(3);
  ASSERT_TRUE(c.RunUntil([&] { return c.Leader() >= 0; }));
  int leader = c.Leader();
  RaftDriver::Outcome outcome = RaftDriver::Outcome::kUnknown;
  bool answered = false;
  kv::OpResult result;
  c.driver(leader).Propose(SetCommand("k", "v"),
                           [&](RaftDriver::Outcome o, const kv::ApplyResult* r) {
                             answered = true;
                             outcome = o;
                             if (r != nullptr && !r->results.empty()) result = r->results[0];
                           });
  ASSERT_TRUE(c.RunUntil([&] { return answered; }));
  EXPECT_EQ(outcome, RaftDriver::Outcome::kApplied);
  EXPECT_EQ(result.kind, kv::OpResult::Kind::kOk);
  ASSERT_TRUE(c.RunUntil([&] {
    for (int i = 0; i < 3; i++) {
      std::string v;
      if (!c.state(i).Get("k", &v).ok() || v != "v") return false;
    }
    return true;
  }));
}

std::string IncrCommand(const std::string& key) {
  protocol::Command c;
  protocol::Op op;
  op.code = protocol::OpCode::kIncrBy;
  op.keys = {key};
  op.incr = 1;
  c.ops = {op};
  return protocol::EncodeCommand(c);
}

// Options under which a leader holds batchable proposals for its loop pass's entry.
ClusterOptions Batching() {
  ClusterOptions options;
  options.max_batch_bytes = 64 << 10;
  return options;
}

TEST(RaftDriver, BatchableProposalsOfALoopPassShareAnEntryInOrder) {
  Cluster c(3, Batching());
  ASSERT_TRUE(c.RunUntil([&] { return c.Leader() >= 0; }));
  const int leader = c.Leader();
  const int follower = (leader + 1) % 3;
  // Settled: the leader's no-op applied everywhere.
  ASSERT_TRUE(c.RunUntil([&] {
    for (int i = 0; i < 3; i++) {
      if (c.state(i).applied_index() != c.driver(leader).node().log().committed()) return false;
    }
    return c.state(leader).applied_index() > 0;
  }));
  const raft::Index before = c.state(leader).applied_index();
  // A follower does not hold a batchable proposal back: it is refused at once.
  bool refused = false;
  c.driver(follower).Propose(
      IncrCommand("n"),
      [&](RaftDriver::Outcome o, const kv::ApplyResult*) {
        refused = o == RaftDriver::Outcome::kNotLeader;
      },
      /*batchable=*/true);
  EXPECT_TRUE(refused);
  // 10 increments, a proposal that is not batchable, 5 increments: three entries.
  std::vector<int64_t> seen;
  int applied = 0;
  auto incr = [&](RaftDriver::Outcome o, const kv::ApplyResult* r) {
    if (o != RaftDriver::Outcome::kApplied || r == nullptr || r->results.size() != 1) {
      seen.push_back(-1);
      return;
    }
    seen.push_back(r->results[0].integer);
  };
  for (int i = 0; i < 10; i++) c.driver(leader).Propose(IncrCommand("n"), incr, true);
  c.driver(leader).Propose(
      SetCommand("alone", "1"),
      [&](RaftDriver::Outcome o, const kv::ApplyResult* r) {
        if (o == RaftDriver::Outcome::kApplied && r != nullptr && r->results.size() == 1) applied++;
      },
      /*batchable=*/false);
  for (int i = 0; i < 5; i++) c.driver(leader).Propose(IncrCommand("n"), incr, true);
  ASSERT_TRUE(c.RunUntil([&] { return seen.size() == 15 && applied == 1; }));
  std::vector<int64_t> in_order(15);
  for (int64_t i = 0; i < 15; i++) in_order[static_cast<size_t>(i)] = i + 1;
  EXPECT_EQ(seen, in_order);
  ASSERT_TRUE(c.RunUntil([&] {
    for (int i = 0; i < 3; i++) {
      std::string v;
      if (!c.state(i).Get("n", &v).ok() || v != "15") return false;
      if (c.state(i).applied_index() != before + 3) return false;
    }
    return true;
  }));
  EXPECT_EQ(c.state(leader).applied_index(), before + 3);
}

// A leader that steps down with writes held (not yet proposed) answers them kNotLeader at
// once, in order, before anything later could be routed to the new leader ahead of them.
TEST(RaftDriver, HeldWritesAreAnsweredAtOnceWhenTheLeaderStepsDown) {
  Cluster c(3, Batching());
  ASSERT_TRUE(c.RunUntil([&] { return c.Leader() >= 0; }));
  const int leader = c.Leader();
  std::vector<std::pair<int, RaftDriver::Outcome>> answers;
  for (int i = 0; i < 3; i++) {
    c.driver(leader).Propose(
        IncrCommand("n"),
        [&answers, i](RaftDriver::Outcome o, const kv::ApplyResult*) {
          answers.push_back({i, o});
        },
        /*batchable=*/true);
  }
  EXPECT_TRUE(answers.empty());  // held for the loop pass's Flush
  // A heartbeat of a later term from another node: this one is a follower now.
  raft::Message m;
  m.type = raft::MessageType::kHeartbeat;
  m.from = static_cast<raft::NodeId>((leader + 1) % 3 + 1);
  m.to = static_cast<raft::NodeId>(leader + 1);
  m.term = c.driver(leader).node().term() + 1;
  c.driver(leader).Step(m);
  ASSERT_NE(c.driver(leader).node().role(), raft::Role::kLeader);
  const std::vector<std::pair<int, RaftDriver::Outcome>> expected = {
      {0, RaftDriver::Outcome::kNotLeader},
      {1, RaftDriver::Outcome::kNotLeader},
      {2, RaftDriver::Outcome::kNotLeader}};
  EXPECT_EQ(answers, expected);
}

// Held writes are proposed before a leadership transfer starts (which refuses proposals).
TEST(RaftDriver, HeldWritesGoBeforeALeadershipTransfer) {
  Cluster c(3, Batching());
  ASSERT_TRUE(c.RunUntil([&] { return c.Leader() >= 0; }));
  const int leader = c.Leader();
  std::optional<RaftDriver::Outcome> outcome;
  c.driver(leader).Propose(
      IncrCommand("t"), [&](RaftDriver::Outcome o, const kv::ApplyResult*) { outcome = o; },
      /*batchable=*/true);
  ASSERT_TRUE(
      c.driver(leader).TransferLeadership(static_cast<raft::NodeId>((leader + 1) % 3 + 1)).ok());
  ASSERT_TRUE(c.RunUntil([&] { return outcome.has_value(); }));
  EXPECT_EQ(*outcome, RaftDriver::Outcome::kApplied);
}

// While a node's state machine would block an apply, it applies nothing, yet keeps
// replicating and leading; once it would not, it applies everything committed meanwhile.
TEST(RaftDriver, ApplyingWaitsWhileTheStateWouldStallAndTheNodeGoesOn) {
  std::vector<bool> blocked(3, false);
  ClusterOptions options;
  options.apply_would_block = [&blocked](int i) { return blocked[static_cast<size_t>(i)]; };
  Cluster c(3, options);
  ASSERT_TRUE(c.RunUntil([&] { return c.Leader() >= 0; }));
  const int leader = c.Leader();
  const int follower = (leader + 1) % 3;
  // Settled: the leader's no-op applied by all.
  ASSERT_TRUE(c.RunUntil([&] {
    const raft::Index committed = c.driver(leader).node().log().committed();
    return committed > 0 && c.state(0).applied_index() == committed &&
           c.state(1).applied_index() == committed && c.state(2).applied_index() == committed;
  }));
  const raft::Index before = c.state(follower).applied_index();
  blocked[static_cast<size_t>(follower)] = true;
  blocked[static_cast<size_t>(leader)] = true;
  ASSERT_TRUE(c.RunUntil(
      [&] { return c.driver(follower).apply_paused() && c.driver(leader).apply_paused(); }));
  int answered = 0;
  for (int i = 0; i < 5; i++) {
    c.driver(leader).Propose(SetCommand("p" + std::to_string(i), "v"),
                             [&](RaftDriver::Outcome, const kv::ApplyResult*) { answered++; });
  }
  // Committed everywhere, applied only by the node that is not held back; many ticks pass
  // (heartbeats go on: no election).
  const raft::Term term = c.driver(leader).node().term();
  ASSERT_TRUE(c.RunUntil([&] {
    return c.driver(follower).node().log().committed() == before + 5 &&
           c.state((leader + 2) % 3).applied_index() == before + 5;
  })) << "leader committed "
      << c.driver(leader).node().log().committed() << " last "
      << c.driver(leader).node().log().last_index() << "; follower committed "
      << c.driver(follower).node().log().committed() << "; other applied "
      << c.state((leader + 2) % 3).applied_index() << "; before " << before;
  c.RunUntil([] { return false; }, 2000);
  EXPECT_EQ(c.state(follower).applied_index(), before);
  EXPECT_EQ(c.state(leader).applied_index(), before);
  EXPECT_EQ(answered, 0);
  EXPECT_EQ(c.Leader(), leader);
  EXPECT_EQ(c.driver(leader).node().term(), term);
  EXPECT_EQ(c.driver(follower).apply_pauses(), 1u);
  blocked.assign(3, false);
  ASSERT_TRUE(c.RunUntil([&] {
    return answered == 5 && c.state(follower).applied_index() == before + 5 &&
           c.state(leader).applied_index() == before + 5;
  }));
  EXPECT_FALSE(c.driver(follower).apply_paused());
}

TEST(RaftDriver, FollowerRefusesAndLeaderServesReads) {
  Cluster c(3);
  ASSERT_TRUE(c.RunUntil([&] { return c.Leader() >= 0; }));
  int leader = c.Leader();
  int follower = (leader + 1) % 3;
  RaftDriver::Outcome refused = RaftDriver::Outcome::kApplied;
  c.driver(follower).Propose(SetCommand("k", "v"),
                             [&](RaftDriver::Outcome o, const kv::ApplyResult*) { refused = o; });
  EXPECT_EQ(refused, RaftDriver::Outcome::kNotLeader);
  bool written = false;
  c.driver(leader).Propose(SetCommand("k", "v1"),
                           [&](RaftDriver::Outcome, const kv::ApplyResult*) { written = true; });
  ASSERT_TRUE(c.RunUntil([&] { return written; }));
  RaftDriver::Outcome read = RaftDriver::Outcome::kUnknown;
  bool read_done = false;
  std::string seen;
  c.driver(leader).Read([&](RaftDriver::Outcome o) {
    read = o;
    read_done = true;
    EXPECT_TRUE(c.state(leader).Get("k", &seen).ok());
  });
  ASSERT_TRUE(c.RunUntil([&] { return read_done; }));
  EXPECT_EQ(read, RaftDriver::Outcome::kApplied);
  EXPECT_EQ(seen, "v1");
  RaftDriver::Outcome follower_read = RaftDriver::Outcome::kApplied;
  c.driver(follower).Read([&](RaftDriver::Outcome o) { follower_read = o; });
  EXPECT_EQ(follower_read, RaftDriver::Outcome::kNotLeader);
}

TEST(RaftDriver, ManyProposalsShareFsyncs) {
  Cluster c(3);
  ASSERT_TRUE(c.RunUntil([&] { return c.Leader() >= 0; }));
  int leader = c.Leader();
  StorageThread::Stats before = c.driver(leader).storage_stats();
  int applied = 0;
  for (int i = 0; i < 200; i++) {
    c.driver(leader).Propose(SetCommand("k" + std::to_string(i), "v"),
                             [&](RaftDriver::Outcome o, const kv::ApplyResult*) {
                               if (o == RaftDriver::Outcome::kApplied) applied++;
                             });
  }
  ASSERT_TRUE(c.RunUntil([&] { return applied == 200; }));
  StorageThread::Stats after = c.driver(leader).storage_stats();
  // 200 proposals made in one loop iteration travel in one Ready: far fewer syncs than
  // proposals.
  EXPECT_LT(after.syncs - before.syncs, 20u);
}

TEST(RaftDriver, AFollowerAcknowledgesOnceForTheStepsOneSyncMadeDurable) {
  Cluster c(3);
  ASSERT_TRUE(c.RunUntil([&] { return c.Leader() >= 0; }));
  const int leader = c.Leader();
  const int follower = (leader + 1) % 3;
  const raft::NodeId leader_id = static_cast<raft::NodeId>(leader + 1);
  // One write through first, so that the leader replicates to the follower freely (a new
  // leader probes with one message at a time).
  bool warm = false;
  c.driver(leader).Propose(SetCommand("warm", "v"),
                           [&](RaftDriver::Outcome, const kv::ApplyResult*) { warm = true; });
  ASSERT_TRUE(c.RunUntil([&] {
    return warm && c.state(follower).applied_index() == c.state(leader).applied_index();
  }));
  c.TakeMessages();
  const uint64_t steps_before = c.driver(follower).storage_stats().steps;
  int applied = 0;
  uint64_t stepped = 0;
  // Four proposals, each in its own loop iteration: at least four AppendEntries, each stepped
  // into the follower in its own iteration too, so a Ready, a step and a success to send each.
  for (int i = 0; i < 4; i++) {
    c.driver(leader).Propose(SetCommand("k" + std::to_string(i), "v"),
                             [&](RaftDriver::Outcome o, const kv::ApplyResult*) {
                               if (o == RaftDriver::Outcome::kApplied) applied++;
                             });
    c.driver(leader).Flush();
    for (const raft::Message& m : c.TakeMessages()) {
      if (m.to != static_cast<raft::NodeId>(follower + 1)) continue;
      ASSERT_EQ(m.type, raft::MessageType::kAppend);
      c.driver(follower).Step(m);
      c.driver(follower).Flush();
      stepped++;
    }
  }
  ASSERT_GE(stepped, 4u);
  // All four durable before the loop hears of any: one report for all of them.
  for (int i = 0; i < 10000 && c.driver(follower).storage_stats().steps < steps_before + stepped;
       i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_GE(c.driver(follower).storage_stats().steps, steps_before + stepped);
  const uint64_t superseded = c.driver(follower).acks_superseded();
  c.driver(follower).OnStorageNews();
  std::vector<raft::Message> acks;
  for (const raft::Message& m : c.TakeMessages()) {
    if (m.type == raft::MessageType::kAppendResponse) acks.push_back(m);
  }
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].to, leader_id);
  EXPECT_FALSE(acks[0].reject);
  EXPECT_EQ(acks[0].index, c.driver(follower).node().log().last_index());
  // Every success but the last (and any still waiting from before) was superseded.
  EXPECT_GE(c.driver(follower).acks_superseded(), superseded + stepped - 1);
  // The one success says enough: the leader commits all four.
  c.driver(leader).Step(acks[0]);
  ASSERT_TRUE(c.RunUntil([&] { return applied == 4; }));
}

TEST(RaftDriver, AFlushAppliesABoundedAmountAndComesBackForTheRest) {
  ClusterOptions o;
  o.max_msg_bytes = 1024;  // a Ready hands out about 1 KiB of committed entries, a Flush one Ready
  Cluster c(3, o);
  ASSERT_TRUE(c.RunUntil([&] { return c.Leader() >= 0; }));
  const int leader = c.Leader();
  const uint64_t yields_before = c.driver(leader).apply_yields();
  std::vector<int> order;
  // 200 proposals committed together: about 40 KiB for the leader to apply at once.
  for (int i = 0; i < 200; i++) {
    c.driver(leader).Propose(SetCommand("k" + std::to_string(i), std::string(100, 'v')),
                             [&order, i](RaftDriver::Outcome outcome, const kv::ApplyResult*) {
                               if (outcome == RaftDriver::Outcome::kApplied) order.push_back(i);
                             });
  }
  ASSERT_TRUE(c.RunUntil([&] {
    for (int n = 0; n < 3; n++) {
      if (c.state(n).applied_index() != c.state(leader).applied_index()) return false;
    }
    return order.size() == 200;
  }));
  EXPECT_GE(c.driver(leader).apply_yields(), yields_before + 10);
  for (int i = 0; i < 200; i++) EXPECT_EQ(order[static_cast<size_t>(i)], i);
  for (int n = 0; n < 3; n++) EXPECT_EQ(c.state(n).key_count(), 200u);
}

TEST(RaftDriver, RestartedNodeCatchesUpFromItsOwnDisk) {
  Cluster c(3);
  ASSERT_TRUE(c.RunUntil([&] { return c.Leader() >= 0; }));
  int leader = c.Leader();
  int victim = (leader + 1) % 3;
  int applied = 0;
  for (int i = 0; i < 20; i++) {
    c.driver(leader).Propose(SetCommand("a" + std::to_string(i), "1"),
                             [&](RaftDriver::Outcome, const kv::ApplyResult*) { applied++; });
  }
  ASSERT_TRUE(c.RunUntil([&] { return applied == 20; }));
  c.Stop(victim);
  for (int i = 0; i < 20; i++) {
    c.driver(leader).Propose(SetCommand("b" + std::to_string(i), "2"),
                             [&](RaftDriver::Outcome, const kv::ApplyResult*) { applied++; });
  }
  ASSERT_TRUE(c.RunUntil([&] { return applied == 40; }));
  c.Start(victim);
  raft::Index target = c.state(leader).applied_index();
  ASSERT_TRUE(c.RunUntil([&] { return c.state(victim).applied_index() >= target; }));
  std::string v;
  EXPECT_TRUE(c.state(victim).Get("a7", &v).ok());
  EXPECT_TRUE(c.state(victim).Get("b19", &v).ok());
}

TEST(RaftDriver, RequestsWithoutAnOutcomeTimeOutAsUnknown) {
  Cluster c(3);
  ASSERT_TRUE(c.RunUntil([&] { return c.Leader() >= 0; }));
  int leader = c.Leader();
  bool written = false;
  c.driver(leader).Propose(SetCommand("k", "v"),
                           [&](RaftDriver::Outcome, const kv::ApplyResult*) { written = true; });
  ASSERT_TRUE(c.RunUntil([&] { return written; }));  // the term's first commit is behind us
  // Cut the leader off: nothing it proposes can commit, no read point can be confirmed.
  for (int i = 0; i < 3; i++) {
    if (i != leader) c.Stop(i);
  }
  c.driver(leader).set_request_timeout_ticks(3);
  std::vector<RaftDriver::Outcome> outcomes;
  c.driver(leader).Propose(
      SetCommand("k", "lost"),
      [&](RaftDriver::Outcome o, const kv::ApplyResult*) { outcomes.push_back(o); });
  c.driver(leader).Read([&](RaftDriver::Outcome o) { outcomes.push_back(o); });
  c.driver(leader).Tick();
  c.driver(leader).Tick();
  EXPECT_TRUE(outcomes.empty()) << "answered before the timeout";
  c.driver(leader).Tick();
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_EQ(outcomes[0], RaftDriver::Outcome::kUnknown);
  EXPECT_EQ(outcomes[1], RaftDriver::Outcome::kUnknown);
}

// Proposes `n` SETs of key<first..first+n-1> (values of `bytes` bytes) at `node`; returns once
// all are applied there.
void Write(Cluster& c, int node, int first, int n, size_t bytes = 8) {
  int applied = 0;
  for (int i = first; i < first + n; i++) {
    c.driver(node).Propose(SetCommand("key" + std::to_string(i), std::string(bytes, 'v')),
                           [&](RaftDriver::Outcome o, const kv::ApplyResult*) {
                             EXPECT_EQ(o, RaftDriver::Outcome::kApplied);
                             applied++;
                           });
  }
  ASSERT_TRUE(c.RunUntil([&] { return applied == n; }));
}

TEST(RaftDriver, CompactionKeepsATailAndTellsTheNode) {
  ClusterOptions o;
  o.snapshot_entries = 10;
  o.compact_keep_tail = 5;
  Cluster c(3, o);
  ASSERT_TRUE(c.RunUntil([&] { return c.Leader() >= 0; }));
  int leader = c.Leader();
  Write(c, leader, 0, 60);
  raft::Index applied = c.state(leader).applied_index();
  // Every node compacts on its own, once the entries are durable in its state machine.
  ASSERT_TRUE(c.RunUntil([&] {
    for (int i = 0; i < 3; i++) {
      if (c.state(i).applied_index() < applied ||
          c.driver(i).node().log().snapshot().index + 5 + 10 < applied) {
        return false;
      }
    }
    return true;
  }));
  for (int i = 0; i < 3; i++) {
    raft::Index snap = c.driver(i).node().log().snapshot().index;
    EXPECT_LE(snap + 5, c.state(i).applied_index()) << "node " << i << " kept no tail";
  }
  // What the node was told is on disk: a restart starts from the compacted log.
  raft::Index before = c.driver(leader).node().log().snapshot().index;
  c.Stop(leader);
  c.Start(leader);
  EXPECT_EQ(c.driver(leader).node().log().snapshot().index, before);
  std::string v;
  EXPECT_TRUE(c.state(leader).Get("key0", &v).ok());
}

// A batch entry holds many writes, and compaction counts writes: 5 entries of 8 writes
// each are 40 writes, four times snapshot_entries, though fewer entries than it; and the
// tail of 5 writes keeps no whole entry of 8.
TEST(RaftDriver, CompactionCountsTheCommandsOfBatchEntries) {
  ClusterOptions o = Batching();
  o.snapshot_entries = 10;
  o.compact_keep_tail = 5;
  Cluster c(3, o);
  ASSERT_TRUE(c.RunUntil([&] { return c.Leader() >= 0; }));
  const int leader = c.Leader();
  const raft::Index first = c.driver(leader).node().log().last_index();
  int applied = 0;
  for (int round = 0; round < 5; round++) {
    for (int i = 0; i < 8; i++) {
      c.driver(leader).Propose(
          SetCommand("key" + std::to_string(round * 8 + i), "v"),
          [&](RaftDriver::Outcome outcome, const kv::ApplyResult*) {
            if (outcome == RaftDriver::Outcome::kApplied) applied++;
          },
          /*batchable=*/true);
    }
    // Applied everywhere before the next: each node decides its compactions as it applies.
    ASSERT_TRUE(c.RunUntil([&] {
      const raft::Index to = c.driver(leader).node().log().last_index();
      for (int i = 0; i < 3; i++) {
        if (c.state(i).applied_index() != to) return false;
      }
      return applied == (round + 1) * 8;
    }));
  }
  const raft::Index last = c.driver(leader).node().log().last_index();
  ASSERT_EQ(last, first + 5) << "one entry per round";
  // Compactions after the second and the fourth batch (10 writes each time), each up to the
  // applied index at the time.
  ASSERT_TRUE(c.RunUntil([&] {
    for (int i = 0; i < 3; i++) {
      if (c.driver(i).node().log().snapshot().index != first + 4) return false;
    }
    return true;
  }));
  std::string v;
  EXPECT_TRUE(c.state(leader).Get("key39", &v).ok());
}

// Entries large enough that the entry count alone would let the log grow: the byte limit
// compacts it, the tail keeps at most half the limit, and the dropped range is compacted in
// LevelDB afterwards.
TEST(RaftDriver, CompactionByLogBytesKeepsTheLogAndItsTailBounded) {
  ClusterOptions o;
  o.snapshot_entries = 0;  // no entry-count trigger
  o.compact_keep_tail = 1000;
  o.snapshot_log_bytes = 8000;
  Cluster c(3, o);
  ASSERT_TRUE(c.RunUntil([&] { return c.Leader() >= 0; }));
  int leader = c.Leader();
  // One entry at a time: right after the leader's log drops entries, what is left of its
  // applied part is the tail (plus at most the entry applied while the compaction was on the
  // storage thread).
  uint64_t largest = 0, largest_tail = 0;
  int compactions = 0;
  raft::Index snapshot = 0;
  for (int i = 0; i < 60; i++) {
    Write(c, leader, i, 1, 500);
    const raft::RaftLog& log = c.driver(leader).node().log();
    uint64_t applied_bytes = log.BytesBetween(log.snapshot().index, log.applied());
    largest = std::max(largest, applied_bytes);
    if (log.snapshot().index != snapshot) {
      snapshot = log.snapshot().index;
      compactions++;
      largest_tail = std::max(largest_tail, applied_bytes);
      EXPECT_GE(log.applied(), snapshot + 1) << "no tail kept";
    }
  }
  raft::Index applied = c.state(leader).applied_index();
  ASSERT_TRUE(c.RunUntil([&] {
    for (int i = 0; i < 3; i++) {
      const raft::RaftLog& log = c.driver(i).node().log();
      if (c.state(i).applied_index() < applied || log.snapshot().index == 0 ||
          c.driver(i).log_reclaimed_index() < log.snapshot().index) {
        return false;
      }
    }
    return true;
  }));
  // 60 entries of about 550 bytes: 33 KB went through a log never holding much more than
  // 8000 applied bytes, compacted several times, each time down to a tail of at most half of
  // it (4000 bytes, not 1000 entries).
  EXPECT_GE(compactions, 3);
  EXPECT_LE(largest, 8000u + 600u);
  EXPECT_LE(largest_tail, 4000u + 600u);
  for (int i = 0; i < 3; i++) {
    EXPECT_GT(c.driver(i).node().log().snapshot().index, 30u) << "node " << i;
    EXPECT_GE(c.driver(i).log_reclaims(), 1u) << "node " << i;
  }
}

TEST(RaftDriver, CompactNowCompactsEverythingApplied) {
  Cluster c(3);  // snapshot_entries 0: never on its own
  ASSERT_TRUE(c.RunUntil([&] { return c.Leader() >= 0; }));
  int leader = c.Leader();
  Write(c, leader, 0, 20);
  EXPECT_EQ(c.driver(leader).node().log().snapshot().index, 0u);
  raft::Index applied = c.state(leader).applied_index();
  raft::Index target = 0;
  ASSERT_TRUE(c.driver(leader).CompactNow(&target).ok());
  EXPECT_EQ(target, applied);
  ASSERT_TRUE(c.RunUntil([&] { return c.driver(leader).node().log().snapshot().index == target; }));
  raft::Index again = 0;
  ASSERT_TRUE(c.driver(leader).CompactNow(&again).ok());
  EXPECT_EQ(again, target);
  c.Stop(leader);
  c.Start(leader);
  EXPECT_EQ(c.driver(leader).node().log().snapshot().index, target);
  EXPECT_EQ(c.state(leader).applied_index(), applied);
}

// Stops `victim` after 5 writes, makes `writes` more of 100 bytes until the leader's log has
// dropped what the victim lacks, starts it again and waits until it has installed a snapshot
// and applied everything. Sets *victim_last to its last index before it stopped.
void CatchUpBySnapshot(Cluster& c, int leader, int victim, int writes, raft::Index* victim_last) {
  Write(c, leader, 0, 5);
  ASSERT_TRUE(c.RunUntil([&] { return c.state(victim).applied_index() >= 5; }));
  *victim_last = c.driver(victim).node().log().last_index();
  c.Stop(victim);
  Write(c, leader, 5, writes, 100);
  ASSERT_TRUE(
      c.RunUntil([&] { return c.driver(leader).node().log().snapshot().index > *victim_last; }));
  c.Start(victim);
  raft::Index target = c.state(leader).applied_index();
  // The state machine is the storage thread's during the install: look once it is reported.
  ASSERT_TRUE(c.RunUntil([&] {
    return c.driver(victim).snapshots_installed() > 0 && c.state(victim).applied_index() >= target;
  }));
}

TEST(RaftDriver, FollowerBehindTheCompactedLogCatchesUpBySnapshot) {
  ClusterOptions o;
  o.snapshot_entries = 10;
  o.compact_keep_tail = 5;
  o.snapshot_chunk_bytes = 512;
  o.snapshot_window_chunks = 2;
  Cluster c(3, o);
  ASSERT_TRUE(c.RunUntil([&] { return c.Leader() >= 0; }));
  int leader = c.Leader();
  int victim = (leader + 1) % 3;
  raft::Index victim_last = 0;
  ASSERT_NO_FATAL_FAILURE(CatchUpBySnapshot(c, leader, victim, 100, &victim_last));
  EXPECT_EQ(c.driver(victim).snapshots_installed(), 1u);
  EXPECT_GE(c.driver(victim).node().log().snapshot().index, victim_last);
  const SnapshotSender::Stats& sent = c.driver(leader).snapshot_send_stats();
  EXPECT_EQ(sent.completed, 1u);
  EXPECT_GT(sent.chunks_sent, 2u) << "more chunks than the window: flow control was exercised";
  for (int i = 0; i < 105; i += 13) {
    std::string v;
    EXPECT_TRUE(c.state(victim).Get("key" + std::to_string(i), &v).ok()) << i;
  }
  // The install is durable: the follower restarts from it, not from its old log.
  raft::Index installed = c.driver(victim).node().log().snapshot().index;
  c.Stop(victim);
  c.Start(victim);
  EXPECT_GE(c.state(victim).applied_index(), installed);
  EXPECT_GE(c.driver(victim).node().log().snapshot().index, installed);
  std::string v;
  EXPECT_TRUE(c.state(victim).Get("key104", &v).ok());
  // And it goes on replicating.
  Write(c, leader, 200, 3);
  ASSERT_TRUE(c.RunUntil([&] { return c.state(victim).Get("key202", &v).ok(); }));
}

// A throttle so slow that a chunk of the configured size would take longer than the
// receiver waits between chunks: the sender cuts smaller chunks, and the stream completes at
// the throttle's pace instead of being dropped and started over forever.
TEST(RaftDriver, ASlowThrottleSendsSmallerChunksInsteadOfStalling) {
  ClusterOptions o;
  o.snapshot_entries = 10;
  o.compact_keep_tail = 5;
  o.snapshot_chunk_bytes = 4096;   // at 40 bytes a tick: one chunk per 100 ticks
  o.snapshot_bytes_per_tick = 40;  // the receiver gives up after 40 ticks without one
  Cluster c(3, o);
  ASSERT_TRUE(c.RunUntil([&] { return c.Leader() >= 0; }));
  int leader = c.Leader();
  int victim = (leader + 1) % 3;
  raft::Index victim_last = 0;
  ASSERT_NO_FATAL_FAILURE(CatchUpBySnapshot(c, leader, victim, 60, &victim_last));
  const SnapshotSender::Stats& sent = c.driver(leader).snapshot_send_stats();
  EXPECT_EQ(sent.abandoned, 0u);
  EXPECT_EQ(sent.completed, 1u);
  // About 8 KB of state in chunks of 1 KiB (40 bytes a tick for a quarter of 40 ticks, raised
  // to the 1 KiB floor), each sent once.
  EXPECT_GE(sent.chunks_sent, 5u);
  EXPECT_LE(sent.bytes_sent / sent.chunks_sent, 1024u + 200u);
  EXPECT_GT(sent.throttled_ticks, 0u);
}

TEST(RaftDriver, AStreamThatLosesAChunkStartsOver) {
  ClusterOptions o;
  o.snapshot_entries = 10;
  o.compact_keep_tail = 5;
  o.snapshot_chunk_bytes = 512;
  o.snapshot_window_chunks = 2;
  Cluster c(3, o);
  ASSERT_TRUE(c.RunUntil([&] { return c.Leader() >= 0; }));
  int leader = c.Leader();
  int victim = (leader + 1) % 3;
  c.Stop(victim);
  Write(c, leader, 0, 100, 100);
  ASSERT_TRUE(c.RunUntil([&] { return c.driver(leader).node().log().snapshot().index > 1; }));
  // The second chunk of the first stream is lost (as with a dropped connection).
  bool dropped = false;
  c.set_drop_frame([&](const protocol::PeerFrame& f) {
    const auto* chunk = std::get_if<protocol::SnapshotChunk>(&f);
    if (dropped || chunk == nullptr || chunk->offset == 0) return false;
    dropped = true;
    return true;
  });
  c.Start(victim);
  raft::Index target = c.state(leader).applied_index();
  ASSERT_TRUE(c.RunUntil([&] {
    return c.driver(victim).snapshots_installed() > 0 && c.state(victim).applied_index() >= target;
  }));
  EXPECT_TRUE(dropped);
  const SnapshotSender::Stats& sent = c.driver(leader).snapshot_send_stats();
  EXPECT_EQ(sent.abandoned, 1u);
  EXPECT_EQ(sent.completed, 1u);
  EXPECT_EQ(c.driver(victim).snapshots_installed(), 1u);
}

TEST(RaftDriver, SnapshotMessagesWithoutTheirBytesAreDropped) {
  Cluster c(3);
  ASSERT_TRUE(c.RunUntil([&] { return c.Leader() >= 0; }));
  int leader = c.Leader();
  int follower = (leader + 1) % 3;
  raft::Message m;
  m.type = raft::MessageType::kSnapshot;
  m.from = static_cast<raft::NodeId>(leader + 1);
  m.to = static_cast<raft::NodeId>(follower + 1);
  m.term = c.driver(leader).node().term();
  m.snapshot = {1000, m.term};
  // Were it stepped, the node would ask to install a snapshot nobody sent.
  c.driver(follower).Step(m);
  c.driver(follower).Flush();
  EXPECT_EQ(c.driver(follower).node().log().snapshot().index, 0u);
  Write(c, leader, 0, 3);
}

}  // namespace
}  // namespace server
