// Crash consistency of a node's storage (NodeStorage on FaultInjectionEnv): a random workload
// of appends (of single commands and of batches), truncations, commits, applies, compactions
// and snapshot installs, crashed at random points (between operations and in the middle of
// them, with and without a torn tail), each crash followed by a reopen that must succeed and
// find:
//   - everything a synced write acknowledged (hard state, log entries);
//   - term and vote as last synced;
//   - an applied index no further than what was applied, never behind what was made durable
//     or behind the log's snapshot, and exactly the data of that applied index.
// Plus the named regressions of the reliability plan that concern storage.
#include <gtest/gtest.h>
#include <leveldb/env.h>
#include <leveldb/helpers/memenv.h>

#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "kv/fault_env.h"
#include "kv/node_storage.h"
#include "protocol/command.h"

namespace kv {
namespace {

using raft::Entry;
using raft::Index;
using raft::Term;

using KvMap = std::map<std::string, std::string>;

// What the disk should hold, as far as the test knows.
struct Model {
  raft::HardState hs;
  raft::SnapshotMeta snapshot;
  std::vector<Entry> log;  // entries after the snapshot
  Index commit = 0;
  Index applied = 0;
  Index durable_applied = 0;  // applied index known to be synced
  Term term = 1;

  Index last() const { return snapshot.index + log.size(); }
  const Entry& at(Index i) const { return log[i - snapshot.index - 1]; }
};

class CrashTest {
 public:
  explicit CrashTest(uint64_t seed) : rng_(seed), seed_(seed) {
    mem_.reset(leveldb::NewMemEnv(leveldb::Env::Default()));
    env_ = std::make_unique<FaultInjectionEnv>(mem_.get());
    source_env_.reset(leveldb::NewMemEnv(leveldb::Env::Default()));
    Reopen();
  }

  int crashes() const { return crashes_; }

  // Runs `steps` random operations, crashing now and then. Returns "" or the first failure.
  std::string Run(int steps) {
    for (int step = 0; step < steps && failure_.empty(); step++) {
      Model before = m_;
      if (Chance(0.25)) env_->CrashAfterWrites(static_cast<int64_t>(Uniform(12)));
      DoRandomOp();
      bool crashed = env_->crashed();
      env_->CrashAfterWrites(-1);
      if (crashed || Chance(0.05)) {
        CrashAndCheck(before, m_);
      } else if (!op_status_.ok()) {
        return "operation failed without a crash: " + op_status_.ToString();
      }
    }
    return failure_;
  }

 private:
  bool Chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  uint64_t Uniform(uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng_); }

  void Reopen() {
    ns_.reset();
    NodeStorage::Options o;
    o.env = env_.get();
    common::Status s = NodeStorage::Open("/node", o, &ns_);
    if (!s.ok()) failure_ = "reopen failed: " + s.ToString();
  }

  std::string NewCommand() {
    protocol::Command c;
    protocol::Op op;
    op.code = Chance(0.8) ? protocol::OpCode::kSet : protocol::OpCode::kDel;
    op.keys = {"k" + std::to_string(Uniform(8))};
    if (op.code == protocol::OpCode::kSet) op.values = {"v" + std::to_string(next_value_++)};
    c.ops = {op};
    return protocol::EncodeCommand(c);
  }
  Entry NewEntry(Index index, Term term) {
    Entry e{term, index, raft::EntryType::kNormal, ""};
    if (Chance(0.1)) {
      e.type = raft::EntryType::kNoop;
    } else if (Chance(0.3)) {
      // A batch: the writes of a leader's loop pass, applied as one entry.
      std::vector<std::string> commands;
      for (uint64_t n = 2 + Uniform(3); commands.size() < n;) commands.push_back(NewCommand());
      e.data = protocol::EncodeBatch(commands);
    } else {
      e.data = NewCommand();
    }
    return e;
  }

  // The state after applying committed entries 1..index.
  KvMap StateAt(Index index) {
    KvMap kv;
    for (Index i = 1; i <= index; i++) {
      const Entry& e = committed_.at(i);
      if (e.type != raft::EntryType::kNormal) continue;
      std::vector<protocol::Command> commands;
      if (!protocol::DecodeEntry(e.data, &commands).ok()) continue;
      for (const protocol::Command& c : commands) {
        for (const protocol::Op& op : c.ops) {
          if (op.code == protocol::OpCode::kSet) kv[op.keys[0]] = op.values[0];
          if (op.code == protocol::OpCode::kDel) kv.erase(op.keys[0]);
        }
      }
    }
    return kv;
  }

  void Save(const std::vector<Entry>& entries) {
    if (m_.hs.term != m_.term) m_.hs.vote = Uniform(4);  // a vote in the new term, or none
    m_.hs.term = m_.term;
    m_.hs.commit = m_.commit;
    op_status_ = ns_->log()->Save(m_.hs, entries, true);
    if (!entries.empty()) {
      m_.log.resize(entries.front().index - m_.snapshot.index - 1);
      m_.log.insert(m_.log.end(), entries.begin(), entries.end());
    }
  }

  void DoRandomOp() {
    op_status_ = common::Status::OK();
    switch (Uniform(7)) {
      case 0:
      case 1: {  // append
        if (Chance(0.2)) m_.term++;
        std::vector<Entry> entries;
        Index n = 1 + Uniform(5);
        for (Index i = 0; i < n; i++) entries.push_back(NewEntry(m_.last() + 1 + i, m_.term));
        Save(entries);
        break;
      }
      case 2: {  // truncate an uncommitted suffix
        Index low = std::max(m_.commit, m_.snapshot.index) + 1;
        if (m_.last() < low) break;
        Index from = low + Uniform(m_.last() - low + 1);
        m_.term++;
        std::vector<Entry> entries;
        Index n = 1 + Uniform(3);
        for (Index i = 0; i < n; i++) entries.push_back(NewEntry(from + i, m_.term));
        Save(entries);
        break;
      }
      case 3: {  // commit
        if (m_.last() <= m_.commit) break;
        Index to = m_.commit + 1 + Uniform(m_.last() - m_.commit);
        for (Index i = m_.commit + 1; i <= to; i++) committed_[i] = m_.at(i);
        m_.commit = to;
        break;
      }
      case 4: {  // apply
        Index n = 1 + Uniform(5);
        for (Index k = 0; k < n && m_.applied < m_.commit; k++) {
          ApplyResult r;
          op_status_ = ns_->state()->Apply(m_.at(m_.applied + 1), &r);
          m_.applied++;  // the intended state, whether or not a crash let it land
          if (!op_status_.ok()) return;
        }
        break;
      }
      case 5: {  // compact
        Index tail = Uniform(4);
        Index to = m_.applied > tail ? std::min(m_.applied - tail, m_.last()) : 0;
        Index got;
        op_status_ = ns_->CompactLog(tail, &got);
        if (op_status_.ok() && got != std::max(to, m_.snapshot.index)) {
          failure_ = "compacted to " + std::to_string(got) + ", expected " + std::to_string(to);
          return;
        }
        if (to > m_.snapshot.index) {
          m_.durable_applied = m_.applied;  // CompactLog syncs the state before it compacts
          m_.log.erase(m_.log.begin(), m_.log.begin() + static_cast<long>(to - m_.snapshot.index));
          m_.snapshot = {to, committed_.at(to).term};
        }
        break;
      }
      case 6:
        Install();
        break;
    }
  }

  // A leader sends a snapshot at or past our commit index.
  void Install() {
    Index x = m_.commit + Uniform(6);
    if (x <= m_.applied || x == 0) return;
    bool diverge = Chance(0.5);
    if (diverge) m_.term++;
    for (Index i = m_.commit + 1; i <= x; i++) {
      committed_[i] = (!diverge && i <= m_.last()) ? m_.at(i) : NewEntry(i, m_.term);
    }
    // Build the leader's state on a separate, healthy disk.
    std::unique_ptr<StateMachine> source;
    StateMachine::Options so;
    so.env = source_env_.get();
    std::string dir = "/source" + std::to_string(installs_++);
    if (!StateMachine::Open(dir, so, &source).ok()) {
      failure_ = "cannot open source";
      return;
    }
    for (Index i = 1; i <= x; i++) {
      ApplyResult r;
      if (!source->Apply(committed_.at(i), &r).ok()) {
        failure_ = "source apply failed";
        return;
      }
    }
    auto reader = source->NewSnapshotReader(64 + Uniform(512));
    std::unique_ptr<StateMachine::SnapshotWriter> writer;
    op_status_ = ns_->state()->NewSnapshotWriter(&writer);
    if (!op_status_.ok()) return;
    bool done = false;
    while (!done) {
      std::string chunk;
      if (!reader->Next(&chunk, &done).ok()) {
        failure_ = "source read failed";
        return;
      }
      op_status_ = writer->Add(chunk);
      if (!op_status_.ok()) return;
    }
    raft::SnapshotMeta meta;
    op_status_ = ns_->FinishInstall(writer.get(), &meta);
    // The model takes the intended state whether or not a crash let it land.
    // What LogStore::ApplySnapshot does to the log.
    bool keep = x <= m_.last() && m_.at(x).term == committed_.at(x).term;
    if (keep) {
      m_.log.erase(m_.log.begin(), m_.log.begin() + static_cast<long>(x - m_.snapshot.index));
    } else {
      m_.log.clear();
    }
    m_.snapshot = {x, committed_.at(x).term};
    m_.commit = std::max(m_.commit, x);
    m_.applied = m_.durable_applied = x;
    // The Ready that carried the snapshot also carries the hard state of the leader's term.
    Save({});
  }

  bool LogMatches(const raft::PersistentState& st, const Model& c) {
    // The hard state is as written, or moved forward (no vote) to the term of a snapshot that
    // was installed before a crash took the hard state written after it.
    bool bumped = st.hard_state.term == st.snapshot.term && st.hard_state.vote == raft::kNoNode &&
                  st.hard_state.term >= c.hs.term;
    if (!(st.hard_state == c.hs) && !bumped) return false;
    Index last = st.snapshot.index + st.entries.size();
    if (last != c.last() && !(st.entries.empty() && st.snapshot.index > c.last())) return false;
    for (const Entry& e : st.entries) {
      if (e.index <= c.snapshot.index || e.index > c.last() || !(e == c.at(e.index))) return false;
    }
    return true;
  }

  void CrashAndCheck(const Model& before, const Model& after) {
    crashes_++;
    env_->SetCrashed(true);
    ns_.reset();
    env_->SimulateCrash(seed_ * 1000003 + static_cast<uint64_t>(crashes_), Chance(0.5));
    env_->SetCrashed(false);
    Reopen();
    if (!failure_.empty()) return;
    raft::PersistentState st;
    Index applied;
    common::Status s = ns_->Load(&st, &applied);
    if (!s.ok()) {
      failure_ = "load after crash: " + s.ToString();
      return;
    }
    const Model* match = nullptr;
    for (const Model* c : {&after, &before}) {
      if (LogMatches(st, *c)) {
        match = c;
        break;
      }
    }
    std::string at =
        " (crash " + std::to_string(crashes_) + ", seed " + std::to_string(seed_) + ")";
    if (match == nullptr) {
      failure_ = "log after crash matches neither the state before nor after the operation: term " +
                 std::to_string(st.hard_state.term) + " vote " +
                 std::to_string(st.hard_state.vote) + " snapshot " +
                 std::to_string(st.snapshot.index) + " last " +
                 std::to_string(st.snapshot.index + st.entries.size()) + "; expected last " +
                 std::to_string(after.last()) + " or " + std::to_string(before.last()) + at;
      return;
    }
    Index max_applied = std::max(before.applied, after.applied);
    Index min_durable = std::min(before.durable_applied, after.durable_applied);
    if (applied > max_applied) {
      failure_ = "applied index " + std::to_string(applied) + " ahead of what was applied" + at;
      return;
    }
    if (applied < min_durable || applied < st.snapshot.index) {
      failure_ = "applied index " + std::to_string(applied) + " behind durable state (durable " +
                 std::to_string(min_durable) + ", log snapshot " +
                 std::to_string(st.snapshot.index) + ")" + at;
      return;
    }
    std::vector<std::pair<std::string, std::string>> dump;
    if (!ns_->state()->Dump(&dump).ok()) {
      failure_ = "dump failed" + at;
      return;
    }
    KvMap want = StateAt(applied);
    if (KvMap(dump.begin(), dump.end()) != want) {
      failure_ = "data does not match applied index " + std::to_string(applied) + at;
      return;
    }
    // Go on from what the disk holds.
    m_ = *match;
    m_.snapshot = st.snapshot;
    m_.log = st.entries;
    m_.applied = m_.durable_applied = applied;
    m_.commit = std::max({m_.commit, applied, st.snapshot.index});
    m_.commit = std::min(m_.commit, std::max(m_.last(), applied));
    // Entries up to the commit index are committed whatever the disk says of it.
    for (Index i = st.snapshot.index + 1; i <= m_.commit && i <= m_.last(); i++) {
      if (!committed_.count(i)) committed_[i] = m_.at(i);
    }
  }

  std::mt19937_64 rng_;
  uint64_t seed_;
  std::unique_ptr<leveldb::Env> mem_;
  std::unique_ptr<FaultInjectionEnv> env_;
  std::unique_ptr<leveldb::Env> source_env_;
  std::unique_ptr<NodeStorage> ns_;
  Model m_;
  std::map<Index, Entry> committed_;
  common::Status op_status_;
  std::string failure_;
  int crashes_ = 0;
  int installs_ = 0;
  uint64_t next_value_ = 0;
};

TEST(StorageCrash, RandomCrashPointsNeverLoseSyncedStateOrMixStates) {
  int total = 0;
  for (uint64_t seed = 1; total < 1000; seed++) {
    CrashTest t(seed);
    std::string failure = t.Run(400);
    ASSERT_EQ(failure, "") << "seed " << seed;
    total += t.crashes();
  }
  std::printf("crash points: %d\n", total);
  EXPECT_GE(total, 1000);
}

}  // namespace
}  // namespace kv
