// RaftDriver: three nodes in one process, each with its own LevelDB storage (in memory) and
// storage thread, joined by an in-memory transport the test pumps. Proposals are applied with
// their results on every node, reads wait for the read point, a follower refuses writes, a
// restarted node catches up from its own disk, and many proposals share one fsync.
#include "server/raft_driver.h"

#include <gtest/gtest.h>
#include <leveldb/env.h>
#include <leveldb/helpers/memenv.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>

#include "protocol/command.h"

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

class Cluster : public RaftDriver::Transport {
 public:
  explicit Cluster(int n) : nodes_(static_cast<size_t>(n)) {
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
    n.news = std::make_shared<std::atomic<bool>>(false);
    auto news = n.news;
    n.driver = std::make_unique<RaftDriver>(config, n.storage.get(), this, [this, news] {
      news->store(true);
      std::lock_guard<std::mutex> lock(mu_);
      cv_.notify_all();
    });
    ASSERT_TRUE(n.driver->Start().ok());
  }
  void Stop(int i) {
    nodes_[i].driver.reset();
    nodes_[i].storage.reset();
  }

  void Send(const raft::Message& m) override { net_.push_back(m); }

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
    std::shared_ptr<std::atomic<bool>> news;
  };
  std::vector<Node> nodes_;
  std::deque<raft::Message> net_;
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

}  // namespace
}  // namespace server
