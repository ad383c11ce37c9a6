// StateMachine: applying commands, duplicate detection, restart from the applied index, and
// snapshots read in chunks and installed atomically.
#include "kv/state_machine.h"

#include <gtest/gtest.h>
#include <leveldb/db.h>
#include <leveldb/env.h>
#include <leveldb/helpers/memenv.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <random>
#include <span>

#include "kv/keys.h"
#include "kv/pending_writes.h"
#include "kv/sessions.h"
#include "tests/kv/test_dir.h"

namespace kv {
namespace {

using protocol::Command;
using protocol::Op;
using protocol::OpCode;

Op MakeOp(OpCode code, std::vector<std::string> keys, std::vector<std::string> values = {}) {
  Op op;
  op.code = code;
  op.keys = std::move(keys);
  op.values = std::move(values);
  return op;
}

// Each test runs on leveldb::NewMemEnv and on a real directory, without a value cache and
// with one small enough to evict (16 shards of 1 KiB: about ten values each).
struct Variant {
  bool real_dir;
  size_t cache_bytes;
};

void PrintTo(const Variant& v, std::ostream* os) {
  *os << (v.real_dir ? "real directory" : "memory env") << ", value cache " << v.cache_bytes;
}

std::string VariantName(const ::testing::TestParamInfo<Variant>& param) {
  return std::string(param.param.real_dir ? "RealDir" : "MemEnv") +
         (param.param.cache_bytes > 0 ? "Cached" : "");
}

class StateMachineTest : public ::testing::TestWithParam<Variant> {
 protected:
  void SetUp() override {
    dir_holder_ = std::make_unique<test::TestDir>(GetParam().real_dir, "state");
    env_ = dir_holder_->env();
    cache_bytes_ = GetParam().cache_bytes;
    Reopen();
  }
  void TearDown() override {
    sm_.reset();
    dir_holder_.reset();
  }
  std::string Path(const std::string& name) const { return dir_holder_->Path(name); }
  void Reopen() {
    sm_.reset();
    StateMachine::Options o;
    o.env = env_;
    o.value_cache_bytes = cache_bytes_;
    common::Status s = StateMachine::Open(Path("/node"), o, &sm_);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  // Applies `ops` as one command at the next index; returns the results.
  // A request in `session` (0: none) creates the session if needed, as a node's forwarding
  // session does; Apply takes the whole command.
  std::vector<OpResult> Run(std::vector<Op> ops, uint64_t session = 0, uint64_t seq = 0,
                            bool* duplicate = nullptr) {
    Command c;
    c.session = session;
    c.seq = seq;
    c.create_session = session != 0;
    c.ops = std::move(ops);
    return Apply(std::move(c), duplicate);
  }
  std::vector<OpResult> Apply(Command c, bool* duplicate = nullptr) {
    if (c.time_ms == 0) c.time_ms = time_ms_;
    raft::Entry e{3, sm_->applied_index() + 1, raft::EntryType::kNormal,
                  protocol::EncodeCommand(c)};
    ApplyResult r;
    common::Status s = sm_->Apply(e, &r);
    EXPECT_TRUE(s.ok()) << s.ToString();
    if (duplicate != nullptr) *duplicate = r.duplicate;
    return r.results;
  }
  std::string Value(const std::string& key) {
    std::string v;
    common::Status s = sm_->Get(key, &v);
    return s.ok() ? v : "<none>";
  }

  std::unique_ptr<test::TestDir> dir_holder_;
  leveldb::Env* env_ = nullptr;
  size_t cache_bytes_ = 0;
  std::unique_ptr<StateMachine> sm_;
  uint64_t time_ms_ = 1'000'000;  // the cluster time Apply stamps on commands
};

TEST_P(StateMachineTest, SetGetDelAppend) {
  auto r = Run({MakeOp(OpCode::kSet, {"a"}, {"1"})});
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].kind, OpResult::Kind::kOk);
  EXPECT_EQ(Value("a"), "1");
  r = Run({MakeOp(OpCode::kAppend, {"a"}, {"23"})});
  EXPECT_EQ(r[0].integer, 3);
  EXPECT_EQ(Value("a"), "123");
  r = Run({MakeOp(OpCode::kDel, {"a", "missing"})});
  EXPECT_EQ(r[0].kind, OpResult::Kind::kInt);
  EXPECT_EQ(r[0].integer, 1);
  EXPECT_EQ(Value("a"), "<none>");
  EXPECT_EQ(sm_->applied_index(), 3u);
}

TEST_P(StateMachineTest, SetNxXxAndGet) {
  Op nx = MakeOp(OpCode::kSet, {"k"}, {"v1"});
  nx.nx = true;
  EXPECT_EQ(Run({nx})[0].kind, OpResult::Kind::kOk);
  EXPECT_EQ(Run({nx})[0].kind, OpResult::Kind::kNil);  // exists: not set
  EXPECT_EQ(Value("k"), "v1");
  Op xx = MakeOp(OpCode::kSet, {"other"}, {"x"});
  xx.xx = true;
  EXPECT_EQ(Run({xx})[0].kind, OpResult::Kind::kNil);
  EXPECT_EQ(Value("other"), "<none>");
  Op get = MakeOp(OpCode::kSet, {"k"}, {"v2"});
  get.get = true;
  auto r = Run({get});
  EXPECT_EQ(r[0].kind, OpResult::Kind::kBulk);
  EXPECT_EQ(r[0].bulk, "v1");
  EXPECT_EQ(Value("k"), "v2");
}

TEST_P(StateMachineTest, IncrementsFollowRedis) {
  Op incr = MakeOp(OpCode::kIncrBy, {"n"});
  incr.incr = 5;
  EXPECT_EQ(Run({incr})[0].integer, 5);
  incr.incr = -7;
  EXPECT_EQ(Run({incr})[0].integer, -2);
  Run({MakeOp(OpCode::kSet, {"s"}, {"abc"})});
  Op bad = MakeOp(OpCode::kIncrBy, {"s"});
  bad.incr = 1;
  auto r = Run({bad});
  EXPECT_EQ(r[0].kind, OpResult::Kind::kError);
  EXPECT_EQ(r[0].bulk, "ERR value is not an integer or out of range");
  Run({MakeOp(OpCode::kSet, {"big"}, {"9223372036854775807"})});
  Op over = MakeOp(OpCode::kIncrBy, {"big"});
  over.incr = 1;
  EXPECT_EQ(Run({over})[0].bulk, "ERR increment or decrement would overflow");
  Run({MakeOp(OpCode::kSet, {"lead"}, {"007"})});
  Op lead = MakeOp(OpCode::kIncrBy, {"lead"});
  lead.incr = 1;
  EXPECT_EQ(Run({lead})[0].kind, OpResult::Kind::kError);  // Redis refuses leading zeros
  Run({MakeOp(OpCode::kSet, {"f"}, {"10.50"})});
  Op fl = MakeOp(OpCode::kIncrByFloat, {"f"}, {"0.1"});
  r = Run({fl});
  EXPECT_EQ(r[0].bulk, "10.6");
  EXPECT_EQ(Value("f"), "10.6");
  Op big = MakeOp(OpCode::kIncrByFloat, {"g"}, {"3e5"});
  EXPECT_EQ(Run({big})[0].bulk, "300000");
  Op inf = MakeOp(OpCode::kIncrByFloat, {"g"}, {"inf"});
  EXPECT_EQ(Run({inf})[0].kind, OpResult::Kind::kError);
  Op notfloat = MakeOp(OpCode::kIncrByFloat, {"s"}, {"1"});
  EXPECT_EQ(Run({notfloat})[0].bulk, "ERR value is not a valid float");
}

// INCRBYFLOAT reads numbers as Redis 7.0 does (strtold's syntax: hexadecimal, inf; no spaces,
// no NaN) and computes in doubles. Expected replies checked against redis-server 7.0.15.
TEST_P(StateMachineTest, IncrByFloatReadsNumbersAsRedis) {
  auto incr = [this](const std::string& value, const std::string& amount) {
    Run({MakeOp(OpCode::kSet, {"f"}, {value})});
    OpResult r = Run({MakeOp(OpCode::kIncrByFloat, {"f"}, {amount})})[0];
    return r.bulk;  // the new value, or the error text
  };
  const std::string not_float = "ERR value is not a valid float";
  const std::string infinite = "ERR increment would produce NaN or Infinity";
  EXPECT_EQ(incr("1", "0x10"), "17");
  EXPECT_EQ(incr("1", "0X1A"), "27");
  EXPECT_EQ(incr("1", "0x1p3"), "9");
  EXPECT_EQ(incr("0x10", "1"), "17");
  EXPECT_EQ(incr("1", "+1"), "2");
  EXPECT_EQ(incr("1", "1."), "2");
  EXPECT_EQ(incr("1", "-.5"), "0.5");
  EXPECT_EQ(incr("1", "1e-400"), "1");  // below a double's range: 0
  for (const char* amount : {"inf", "-inf", "INF", "Infinity", "1e400"}) {
    EXPECT_EQ(incr("1", amount), infinite) << amount;
  }
  EXPECT_EQ(incr("inf", "1"), infinite);
  for (const std::string& amount : std::vector<std::string>{
           "", "nan", "-nan", "NaN(1)", " 1", "1 ", "\t1", "1\n", "++1", ".", "1e", "0x", "0b1",
           "1_0", std::string("1\0x", 3), "abc", std::string(5120, '1')}) {
    EXPECT_EQ(incr("1", amount), not_float) << "'" << amount << "'";
  }
  EXPECT_EQ(incr(" 1", "1"), not_float);
  EXPECT_EQ(Value("f"), " 1");  // a refused increment writes nothing
}

TEST_P(StateMachineTest, MultiOpsSeeEarlierWritesAndApplyTogether) {
  Op incr = MakeOp(OpCode::kIncrBy, {"x"});
  incr.incr = 2;
  auto r = Run({MakeOp(OpCode::kSet, {"x"}, {"40"}), incr, MakeOp(OpCode::kGetDel, {"x"}),
                MakeOp(OpCode::kMSet, {"a", "b"}, {"1", "2"})});
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[1].integer, 42);
  EXPECT_EQ(r[2].bulk, "42");
  EXPECT_EQ(Value("x"), "<none>");
  EXPECT_EQ(Value("b"), "2");
  EXPECT_EQ(sm_->applied_index(), 1u);
}

TEST_P(StateMachineTest, GetInsideACommandSeesTheWritesBeforeIt) {
  Run({MakeOp(OpCode::kSet, {"k"}, {"old"})});
  auto r = Run({MakeOp(OpCode::kGet, {"k"}), MakeOp(OpCode::kSet, {"k"}, {"new"}),
                MakeOp(OpCode::kGet, {"k"}), MakeOp(OpCode::kGet, {"missing"})});
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[0].bulk, "old");
  EXPECT_EQ(r[2].bulk, "new");
  EXPECT_EQ(r[3].kind, OpResult::Kind::kNil);
  EXPECT_EQ(Value("k"), "new");
}

TEST_P(StateMachineTest, KeyCountFollowsEveryKindOfWrite) {
  EXPECT_EQ(sm_->key_count(), 0u);
  Run({MakeOp(OpCode::kMSet, {"a", "b", "a"}, {"1", "2", "3"})});
  EXPECT_EQ(sm_->key_count(), 2u);
  Run({MakeOp(OpCode::kSet, {"a"}, {"x"}), MakeOp(OpCode::kAppend, {"c"}, {"y"})});
  EXPECT_EQ(sm_->key_count(), 3u);
  Op incr = MakeOp(OpCode::kIncrBy, {"d"});
  incr.incr = 1;
  Run({incr, MakeOp(OpCode::kDel, {"a", "missing"}), MakeOp(OpCode::kGetDel, {"b"})});
  EXPECT_EQ(sm_->key_count(), 2u);  // c, d
  Run({MakeOp(OpCode::kDel, {"c"}), MakeOp(OpCode::kSet, {"c"}, {"back"})});
  EXPECT_EQ(sm_->key_count(), 2u);
  Run({MakeOp(OpCode::kSet, {"e"}, {"1"}), MakeOp(OpCode::kFlushAll, {}),
       MakeOp(OpCode::kSet, {"f"}, {"1"})});
  EXPECT_EQ(sm_->key_count(), 1u);
  std::vector<std::string> keys;
  ASSERT_TRUE(sm_->ForEachKey("",
                              [&](std::string_view k) {
                                keys.emplace_back(k);
                                return true;
                              })
                  .ok());
  EXPECT_EQ(keys, std::vector<std::string>{"f"});
  Run({MakeOp(OpCode::kSet, {"g"}, {"1"})});
  Reopen();  // read back from its record
  EXPECT_EQ(sm_->key_count(), 2u);
}

// A restart takes the key count from its record instead of reading every key; a state
// without the record (written before it was kept) has the keys counted.
TEST_P(StateMachineTest, RestartTakesTheKeyCountFromItsRecord) {
  Run({MakeOp(OpCode::kMSet, {"a", "b", "c"}, {"1", "2", "3"})});
  const raft::Index index = sm_->applied_index();
  sm_.reset();
  // No snapshot was installed: the first generation, with no STATE pointer yet.
  ASSERT_FALSE(env_->FileExists(Path("/node/STATE")));
  auto with_db = [&](const std::function<void(leveldb::DB*)>& fn) {
    leveldb::Options o;
    o.env = env_;
    leveldb::DB* raw = nullptr;
    ASSERT_TRUE(leveldb::DB::Open(o, Path("/node/state-0"), &raw).ok());
    std::unique_ptr<leveldb::DB> db(raw);
    fn(db.get());
  };
  // The stored count is what a restart reports, even when it is not what a count would give.
  with_db([](leveldb::DB* db) {
    ASSERT_TRUE(
        db->Put(leveldb::WriteOptions(), std::string(keys::kKeyCount), keys::EncodeKeyCount(1000))
            .ok());
  });
  Reopen();
  EXPECT_EQ(sm_->key_count(), 1000u);
  EXPECT_EQ(sm_->applied_index(), index);
  sm_.reset();
  // Without the record: counted.
  with_db([](leveldb::DB* db) {
    ASSERT_TRUE(db->Delete(leveldb::WriteOptions(), std::string(keys::kKeyCount)).ok());
  });
  Reopen();
  EXPECT_EQ(sm_->key_count(), 3u);
  // A write that changes the count records it again; one that does not leaves it right.
  Run({MakeOp(OpCode::kSet, {"d"}, {"4"})});
  Run({MakeOp(OpCode::kSet, {"d"}, {"5"})});
  Reopen();
  EXPECT_EQ(sm_->key_count(), 4u);
  // A damaged record stops the open, as every other damaged record does.
  sm_.reset();
  with_db([](leveldb::DB* db) {
    ASSERT_TRUE(db->Put(leveldb::WriteOptions(), std::string(keys::kKeyCount), "bad").ok());
  });
  StateMachine::Options o;
  o.env = env_;
  o.value_cache_bytes = cache_bytes_;
  common::Status st = StateMachine::Open(Path("/node"), o, &sm_);
  EXPECT_EQ(st.code(), common::Status::Code::kCorruption) << st.ToString();
  EXPECT_NE(st.ToString().find("key count"), std::string::npos) << st.ToString();
  sm_.reset();
  with_db([](leveldb::DB* db) {
    ASSERT_TRUE(db->Delete(leveldb::WriteOptions(), std::string(keys::kKeyCount)).ok());
  });
  Reopen();
}

TEST_P(StateMachineTest, FlushAllThenWritesInTheSameCommand) {
  Run({MakeOp(OpCode::kMSet, {"a", "b", "c"}, {"1", "2", "3"})});
  Run({MakeOp(OpCode::kFlushAll, {}), MakeOp(OpCode::kSet, {"b"}, {"new"})});
  std::vector<std::pair<std::string, std::string>> all;
  ASSERT_TRUE(sm_->Dump(&all).ok());
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].first, "b");
  EXPECT_EQ(all[0].second, "new");
}

TEST_P(StateMachineTest, RetriedRequestIsAppliedOnceAndAnsweredTheSame) {
  Op append = MakeOp(OpCode::kAppend, {"log"}, {"x"});
  bool dup = true;
  auto first = Run({append}, 9, 1, &dup);
  EXPECT_FALSE(dup);
  auto again = Run({append}, 9, 1, &dup);
  EXPECT_TRUE(dup);
  EXPECT_EQ(again, first);
  EXPECT_EQ(Value("log"), "x");
  Run({append}, 9, 2, &dup);
  EXPECT_FALSE(dup);
  EXPECT_EQ(Value("log"), "xx");
  // An older request than the last one is still answered from the window, not applied again.
  auto older = Run({append}, 9, 1, &dup);
  EXPECT_TRUE(dup);
  EXPECT_EQ(older, first);
  EXPECT_EQ(Value("log"), "xx");
  // The session table survives a restart.
  Reopen();
  Run({append}, 9, 2, &dup);
  EXPECT_TRUE(dup);
  EXPECT_EQ(Value("log"), "xx");
}

TEST_P(StateMachineTest, RestartResumesFromTheAppliedIndex) {
  Run({MakeOp(OpCode::kSet, {"a"}, {"1"})});
  ApplyResult r;
  ASSERT_TRUE(sm_->Apply({4, 2, raft::EntryType::kNoop, ""}, &r).ok());
  ASSERT_TRUE(sm_->Sync().ok());
  Reopen();
  EXPECT_EQ(sm_->applied_index(), 2u);
  EXPECT_EQ(sm_->applied_term(), 4u);
  EXPECT_EQ(Value("a"), "1");
}

TEST_P(StateMachineTest, UndecodableCommandIsAnErrorResultAndAdvances) {
  ApplyResult r;
  ASSERT_TRUE(sm_->Apply({1, 1, raft::EntryType::kNormal, "garbage"}, &r).ok());
  ASSERT_EQ(r.results.size(), 1u);
  EXPECT_EQ(r.results[0].kind, OpResult::Kind::kError);
  EXPECT_EQ(sm_->applied_index(), 1u);
}

TEST_P(StateMachineTest, SnapshotRoundTripsThroughChunks) {
  for (int i = 0; i < 200; i++) {
    Run({MakeOp(OpCode::kSet, {"key" + std::to_string(i)},
                {std::string(50, static_cast<char>('a' + i % 26))})},
        77, static_cast<uint64_t>(i + 1));
  }
  auto reader = sm_->NewSnapshotReader(512);
  EXPECT_EQ(reader->meta().index, 200u);
  // Applying goes on while the snapshot is read: the reader keeps its view.
  Run({MakeOp(OpCode::kSet, {"late"}, {"x"})});
  std::vector<std::string> chunks;
  bool done = false;
  while (!done) {
    std::string chunk;
    ASSERT_TRUE(reader->Next(&chunk, &done).ok());
    EXPECT_LE(chunk.size(), 512u + 200u);
    chunks.push_back(chunk);
  }
  EXPECT_GT(chunks.size(), 10u);
  reader.reset();

  std::unique_ptr<StateMachine> other;
  StateMachine::Options o;
  o.env = env_;
  o.value_cache_bytes = cache_bytes_;
  ASSERT_TRUE(StateMachine::Open(Path("/other"), o, &other).ok());
  std::unique_ptr<StateMachine::SnapshotWriter> w;
  ASSERT_TRUE(other->NewSnapshotWriter(&w).ok());
  EXPECT_EQ(w->meta(), (raft::SnapshotMeta{0, 0}));
  for (const std::string& c : chunks) ASSERT_TRUE(w->Add(c).ok());
  EXPECT_EQ(w->meta(), (raft::SnapshotMeta{200, 3}));
  raft::SnapshotMeta meta;
  ASSERT_TRUE(w->Finish(&meta).ok());
  EXPECT_EQ(meta.index, 200u);
  EXPECT_EQ(other->applied_index(), 200u);
  std::string v;
  ASSERT_TRUE(other->Get("key7", &v).ok());
  EXPECT_EQ(v, std::string(50, 'h'));
  EXPECT_FALSE(other->Get("late", &v).ok());
  // The installed state survives a restart, sessions included.
  other.reset();
  ASSERT_TRUE(StateMachine::Open(Path("/other"), o, &other).ok());
  EXPECT_EQ(other->applied_index(), 200u);
  Command dup;
  dup.session = 77;
  dup.seq = 200;
  dup.ops = {MakeOp(OpCode::kAppend, {"key199"}, {"!"})};
  ApplyResult r;
  ASSERT_TRUE(
      other->Apply({3, 201, raft::EntryType::kNormal, protocol::EncodeCommand(dup)}, &r).ok());
  EXPECT_TRUE(r.duplicate);
}

TEST_P(StateMachineTest, CorruptSnapshotChunkIsRefused) {
  Run({MakeOp(OpCode::kSet, {"a"}, {"1"})});
  auto reader = sm_->NewSnapshotReader(1024);
  std::string chunk;
  bool done = false;
  ASSERT_TRUE(reader->Next(&chunk, &done).ok());
  chunk[chunk.size() - 1] ^= 1;
  std::unique_ptr<StateMachine::SnapshotWriter> w;
  ASSERT_TRUE(sm_->NewSnapshotWriter(&w).ok());
  EXPECT_EQ(w->Add(chunk).code(), common::Status::Code::kCorruption);
}

TEST_P(StateMachineTest, SnapshotStreamMustBeOneWholeOrderedStream) {
  for (int i = 0; i < 50; i++) Run({MakeOp(OpCode::kSet, {"k" + std::to_string(i)}, {"v"})});
  auto read_all = [&](std::vector<std::string>* chunks) {
    auto reader = sm_->NewSnapshotReader(64);
    bool done = false;
    while (!done) {
      std::string chunk;
      ASSERT_TRUE(reader->Next(&chunk, &done).ok());
      chunks->push_back(chunk);
    }
  };
  std::vector<std::string> a;
  read_all(&a);
  ASSERT_GT(a.size(), 3u);
  Run({MakeOp(OpCode::kDel, {"k1"})});
  std::vector<std::string> b;  // a later snapshot
  read_all(&b);
  std::unique_ptr<StateMachine::SnapshotWriter> w;
  // A chunk skipped.
  w.reset();  // one writer at a time
  ASSERT_TRUE(sm_->NewSnapshotWriter(&w).ok());
  ASSERT_TRUE(w->Add(a[0]).ok());
  EXPECT_EQ(w->Add(a[2]).code(), common::Status::Code::kInvalidArgument);
  // Chunks of two snapshots mixed.
  w.reset();  // one writer at a time
  ASSERT_TRUE(sm_->NewSnapshotWriter(&w).ok());
  ASSERT_TRUE(w->Add(a[0]).ok());
  EXPECT_EQ(w->Add(b[1]).code(), common::Status::Code::kInvalidArgument);
  // The end never came.
  w.reset();  // one writer at a time
  ASSERT_TRUE(sm_->NewSnapshotWriter(&w).ok());
  for (size_t i = 0; i + 1 < a.size(); i++) ASSERT_TRUE(w->Add(a[i]).ok());
  raft::SnapshotMeta meta;
  EXPECT_EQ(w->Finish(&meta).code(), common::Status::Code::kInvalidArgument);
  // Whole and in order: installed.
  w.reset();  // one writer at a time
  ASSERT_TRUE(sm_->NewSnapshotWriter(&w).ok());
  for (const std::string& c : b) ASSERT_TRUE(w->Add(c).ok());
  ASSERT_TRUE(w->Finish(&meta).ok());
  EXPECT_EQ(meta.index, 51u);
}

TEST_P(StateMachineTest, InstallInterruptedBeforeTheSwitchKeepsTheOldState) {
  Run({MakeOp(OpCode::kSet, {"old"}, {"1"})});
  ASSERT_TRUE(sm_->Sync().ok());
  std::unique_ptr<StateMachine> source;
  StateMachine::Options o;
  o.env = env_;
  o.value_cache_bytes = cache_bytes_;
  ASSERT_TRUE(StateMachine::Open(Path("/source"), o, &source).ok());
  Command c;
  c.ops = {MakeOp(OpCode::kSet, {"new"}, {"2"})};
  ApplyResult r;
  for (raft::Index i = 1; i <= 5; i++) {
    ASSERT_TRUE(
        source->Apply({2, i, raft::EntryType::kNormal, protocol::EncodeCommand(c)}, &r).ok());
  }
  auto reader = source->NewSnapshotReader(64);
  std::unique_ptr<StateMachine::SnapshotWriter> w;
  ASSERT_TRUE(sm_->NewSnapshotWriter(&w).ok());
  std::string chunk;
  bool done = false;
  ASSERT_TRUE(reader->Next(&chunk, &done).ok());
  ASSERT_TRUE(w->Add(chunk).ok());
  w.reset();  // the node stops mid-install
  Reopen();
  EXPECT_EQ(sm_->applied_index(), 1u);
  EXPECT_EQ(Value("old"), "1");
  EXPECT_EQ(Value("new"), "<none>");
  std::vector<std::string> children;
  ASSERT_TRUE(env_->GetChildren(Path("/node"), &children).ok());
  for (const std::string& name : children) EXPECT_NE(name, "state-1") << "leftover install";
}

// ---- Exactly-once sessions (kv/sessions.h) ----

Op SessionOp(OpCode code, int64_t arg) {
  Op op;
  op.code = code;
  op.incr = arg;
  return op;
}

// A request of an opened client session (never created implicitly).
Command Request(uint64_t session, uint64_t seq, uint64_t acked, Op op) {
  Command c;
  c.session = session;
  c.seq = seq;
  c.acked = acked;
  c.ops = {std::move(op)};
  return c;
}

TEST_P(StateMachineTest, SessionOpensWithItsEntryIndexAndUnknownSessionsAreRefused) {
  Run({MakeOp(OpCode::kSet, {"k"}, {"v"})});
  auto opened = Run({SessionOp(OpCode::kSessionOpen, 60'000)});
  ASSERT_EQ(opened.size(), 1u);
  EXPECT_EQ(opened[0].kind, OpResult::Kind::kInt);
  EXPECT_EQ(opened[0].integer, 2);  // the index of its entry
  EXPECT_EQ(sm_->session_count(), 1u);
  auto r = Apply(Request(2, 1, 1, MakeOp(OpCode::kAppend, {"k"}, {"1"})));
  EXPECT_EQ(r[0].kind, OpResult::Kind::kInt);
  EXPECT_EQ(Value("k"), "v1");
  // A session nobody opened: refused, nothing applied, nothing created.
  r = Apply(Request(12345, 1, 1, MakeOp(OpCode::kAppend, {"k"}, {"2"})));
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].bulk, "SESSIONEXPIRED session 12345 is unknown or expired");
  EXPECT_EQ(Value("k"), "v1");
  EXPECT_EQ(sm_->session_count(), 1u);
}

TEST_P(StateMachineTest, SessionWindowAnswersRetriesUntilAcknowledged) {
  const uint64_t id = Run({SessionOp(OpCode::kSessionOpen, 60'000)})[0].integer;
  auto append = [](std::string token) { return MakeOp(OpCode::kAppend, {"log"}, {token}); };
  bool dup = true;
  // Three requests in flight, applied out of order: each once.
  auto r3 = Apply(Request(id, 3, 1, append("c")), &dup);
  EXPECT_FALSE(dup);
  auto r1 = Apply(Request(id, 1, 1, append("a")), &dup);
  EXPECT_FALSE(dup);
  auto r2 = Apply(Request(id, 2, 1, append("b")), &dup);
  EXPECT_FALSE(dup);
  EXPECT_EQ(Value("log"), "cab");
  // Retries of any of them: the first answers, nothing applied.
  EXPECT_EQ(Apply(Request(id, 1, 1, append("a")), &dup), r1);
  EXPECT_TRUE(dup);
  EXPECT_EQ(Apply(Request(id, 3, 1, append("c")), &dup), r3);
  EXPECT_TRUE(dup);
  EXPECT_EQ(Value("log"), "cab");
  // The client acknowledges 1 and 2 (acked 3): their results are forgotten, and a late copy
  // of request 1 is refused, not applied.
  EXPECT_EQ(Apply(Request(id, 3, 3, append("c")), &dup), r3);
  auto late = Apply(Request(id, 1, 1, append("a")), &dup);
  ASSERT_EQ(late.size(), 1u);
  EXPECT_EQ(late[0].bulk,
            "ERR request 1 of session " + std::to_string(id) + " was already acknowledged");
  EXPECT_EQ(Value("log"), "cab");
  // An acknowledgement never drops the request that carries it.
  auto r4 = Apply(Request(id, 4, 100, append("d")), &dup);
  EXPECT_EQ(Apply(Request(id, 4, 100, append("d")), &dup), r4);
  EXPECT_TRUE(dup);
  // Beyond the window: refused unapplied; inside it again once acknowledged.
  auto far = Apply(Request(id, 4 + kv::kSessionWindow, 4, append("z")), &dup);
  ASSERT_EQ(far.size(), 1u);
  EXPECT_TRUE(far[0].bulk.starts_with("TRYAGAIN request ")) << far[0].bulk;
  EXPECT_EQ(Value("log"), "cabd");
  Apply(Request(id, 4 + kv::kSessionWindow, 5, append("z")), &dup);
  EXPECT_FALSE(dup);
  EXPECT_EQ(Value("log"), "cabdz");
  // All of it survives a restart.
  Reopen();
  EXPECT_EQ(Apply(Request(id, 4 + kv::kSessionWindow, 5, append("z")), &dup)[0].integer, 5);
  EXPECT_TRUE(dup);
  EXPECT_EQ(Value("log"), "cabdz");
}

TEST_P(StateMachineTest, SessionsExpireByClusterTimeNotByClock) {
  time_ms_ = 10'000;
  const uint64_t a = Run({SessionOp(OpCode::kSessionOpen, 1'000)})[0].integer;
  const uint64_t b = Run({SessionOp(OpCode::kSessionOpen, 5'000)})[0].integer;
  EXPECT_EQ(sm_->session_count(), 2u);
  // Used at 10.9 s: lives until 11.9 s.
  time_ms_ = 10'900;
  Apply(Request(a, 1, 1, MakeOp(OpCode::kSet, {"k"}, {"1"})));
  // A command from a leader whose clock is behind does not move cluster time back.
  time_ms_ = 5'000;
  Run({MakeOp(OpCode::kSet, {"other"}, {"x"})});
  EXPECT_EQ(sm_->cluster_time_ms(), 10'900u);
  time_ms_ = 11'800;
  Run({MakeOp(OpCode::kSet, {"other"}, {"y"})});
  EXPECT_EQ(sm_->session_count(), 2u);
  // Any entry past 11.9 s expires `a`, on every node alike; `b` lives until 15 s.
  time_ms_ = 11'900;
  Run({MakeOp(OpCode::kSet, {"other"}, {"z"})});
  EXPECT_EQ(sm_->session_count(), 1u);
  auto r = Apply(Request(a, 1, 1, MakeOp(OpCode::kSet, {"k"}, {"1"})));
  EXPECT_EQ(r[0].bulk, "SESSIONEXPIRED session " + std::to_string(a) + " is unknown or expired");
  r = Apply(Request(b, 1, 1, MakeOp(OpCode::kSet, {"k"}, {"2"})));
  EXPECT_EQ(r[0].kind, OpResult::Kind::kOk);
  // Cluster time, the count and the next expiry survive a restart.
  Reopen();
  EXPECT_EQ(sm_->cluster_time_ms(), 11'900u);
  EXPECT_EQ(sm_->session_count(), 1u);
  time_ms_ = 16'900;  // b was last used at 11.9 s
  Run({MakeOp(OpCode::kSet, {"other"}, {"w"})});
  EXPECT_EQ(sm_->session_count(), 0u);
  EXPECT_EQ(Value("k"), "2");
}

TEST_P(StateMachineTest, SessionCloseForgetsTheSession) {
  const uint64_t id = Run({SessionOp(OpCode::kSessionOpen, 60'000)})[0].integer;
  Apply(Request(id, 1, 1, MakeOp(OpCode::kSet, {"k"}, {"1"})));
  auto closed = Run({SessionOp(OpCode::kSessionClose, static_cast<int64_t>(id))});
  EXPECT_EQ(closed[0].kind, OpResult::Kind::kOk);
  EXPECT_EQ(sm_->session_count(), 0u);
  auto r = Apply(Request(id, 1, 1, MakeOp(OpCode::kSet, {"k"}, {"2"})));
  EXPECT_EQ(r[0].kind, OpResult::Kind::kError);
  EXPECT_EQ(Value("k"), "1");
  auto again = Run({SessionOp(OpCode::kSessionClose, static_cast<int64_t>(id))});
  EXPECT_EQ(again[0].bulk,
            "SESSIONEXPIRED session " + std::to_string(id) + " is unknown or expired");
  // The count a restart makes from the state agrees.
  Reopen();
  EXPECT_EQ(sm_->session_count(), 0u);
}

// Applies `c` and returns the whole ApplyResult.
ApplyResult ApplyFull(StateMachine& sm, const Command& c) {
  raft::Entry e{3, sm.applied_index() + 1, raft::EntryType::kNormal, protocol::EncodeCommand(c)};
  ApplyResult r;
  EXPECT_TRUE(sm.Apply(e, &r).ok());
  return r;
}

TEST_P(StateMachineTest, ForwardingSessionIsCreatedByItsFirstRequestOnly) {
  bool dup = true;
  Command c = Request(uint64_t{1} << 63 | 7, 1, 1, MakeOp(OpCode::kAppend, {"k"}, {"x"}));
  c.create_session = true;
  Apply(c, &dup);
  EXPECT_FALSE(dup);
  EXPECT_EQ(sm_->session_count(), 1u);
  Apply(c, &dup);
  EXPECT_TRUE(dup);
  EXPECT_EQ(Value("k"), "x");
  // A later request of a session that is gone may have been applied before it went: it is
  // refused, never applied again, whatever create says.
  Command later = Request(99, 5, 5, MakeOp(OpCode::kAppend, {"k"}, {"y"}));
  later.create_session = true;
  ApplyResult r = ApplyFull(*sm_, later);
  EXPECT_TRUE(r.refused);
  ASSERT_EQ(r.results.size(), 1u);
  EXPECT_EQ(r.results[0].bulk, "SESSIONEXPIRED session 99 is unknown or expired");
  EXPECT_EQ(Value("k"), "x");
  EXPECT_EQ(sm_->session_count(), 1u);
}

TEST_P(StateMachineTest, RefusedRequestsAreMarkedRefused) {
  Op setnx = MakeOp(OpCode::kSet, {"k"}, {"v"});
  setnx.nx = true;
  Command c = Request(4242, 1, 1, setnx);
  ApplyResult r = ApplyFull(*sm_, c);
  EXPECT_TRUE(r.refused);
  EXPECT_FALSE(r.duplicate);
  EXPECT_EQ(r.results[0].kind, OpResult::Kind::kError);
  const uint64_t id = Run({SessionOp(OpCode::kSessionOpen, 60'000)})[0].integer;
  r = ApplyFull(*sm_, Request(id, 1, 1, MakeOp(OpCode::kSet, {"k"}, {"v"})));
  EXPECT_FALSE(r.refused);
  r = ApplyFull(*sm_, Request(id, 1, 1, MakeOp(OpCode::kSet, {"k"}, {"v"})));
  EXPECT_FALSE(r.refused);
  EXPECT_TRUE(r.duplicate);
}

TEST_P(StateMachineTest, ExpiryIsSpreadOverEntriesAndCountsStayExact) {
  const uint64_t per_entry = kv::kMaxExpiriesPerEntry;
  time_ms_ = 1'000;
  // A node's forwarding session (the default timeout, an hour), sessions of 1 s, and one of a
  // week.
  Command node = Request(uint64_t{1} << 63 | 1, 1, 1, MakeOp(OpCode::kAppend, {"k"}, {"x"}));
  node.create_session = true;
  Apply(node);
  for (uint64_t i = 0; i < 3 * per_entry + 43; i++) {
    Run({SessionOp(OpCode::kSessionOpen, 1'000)});
  }
  Run({SessionOp(OpCode::kSessionOpen, static_cast<int64_t>(kv::kMaxSessionTimeoutMs))});
  EXPECT_EQ(sm_->session_count(), 3 * per_entry + 45);
  // Hours later: each entry expires at most per_entry sessions, in expiry order (the node's
  // last).
  time_ms_ = 10'000'000;
  Run({MakeOp(OpCode::kSet, {"a"}, {"1"})});
  EXPECT_EQ(sm_->session_count(), 2 * per_entry + 45);
  // The node's session has expired: a later request of it (acked > 1) may have been applied in
  // it, so it is refused, not applied.
  Command later = node;
  later.seq = later.acked = 2;
  later.ops = {MakeOp(OpCode::kAppend, {"k"}, {"y"})};
  later.time_ms = time_ms_;
  ApplyResult r = ApplyFull(*sm_, later);
  EXPECT_TRUE(r.refused);
  EXPECT_EQ(Value("k"), "x");
  EXPECT_EQ(sm_->session_count(), per_entry + 45);
  // Its first request of a new life (acked 1), while its old record still waits for expiry:
  // the old one is erased and a new one created, not answered from the old one's results.
  bool dup = true;
  Apply(node, &dup);
  EXPECT_FALSE(dup);
  EXPECT_EQ(Value("k"), "xx");
  EXPECT_EQ(sm_->session_count(), 45u);
  Run({MakeOp(OpCode::kSet, {"a"}, {"2"})});
  EXPECT_EQ(sm_->session_count(), 2u);  // the week-long one and the node's new one
  Reopen();
  EXPECT_EQ(sm_->session_count(), 2u);
}

// A random mix of every kind of entry, applied one by one to one state machine and in groups
// of random sizes (ApplyAll) to another: every result and the final states are the same. Small
// key and session sets make later entries of a group read what earlier ones wrote; cluster time
// jumps expire sessions inside groups, and FLUSHALL scans the state (both write the group so
// far first).
// A random op on the keys `key` picks, for the tests that apply one stream of commands two
// ways: mostly writes of every kind, some reads, and a rare FLUSHALL if `flushall`.
Op RandomOp(const std::function<uint32_t(uint32_t)>& pick, const std::function<std::string()>& key,
            bool flushall) {
  const uint32_t code = pick(100);
  Op op;
  if (code < 35) {
    op = MakeOp(OpCode::kSet, {key()}, {std::to_string(pick(50))});
    op.nx = pick(5) == 0;
    op.xx = !op.nx && pick(5) == 0;
    op.get = pick(3) == 0;
  } else if (code < 45) {
    op = MakeOp(OpCode::kDel, {key(), key()});
  } else if (code < 55) {
    op = MakeOp(OpCode::kAppend, {key()}, {"x"});
  } else if (code < 70) {
    op = MakeOp(OpCode::kIncrBy, {key()});
    op.incr = pick(7);
  } else if (code < 78) {
    op = MakeOp(OpCode::kGetDel, {key()});
  } else if (code < 88) {
    op = MakeOp(OpCode::kMSet, {key(), key()}, {"m1", "m2"});
  } else if (code < 98 || !flushall) {
    op = MakeOp(OpCode::kGet, {key()});
  } else {
    op = MakeOp(OpCode::kFlushAll, {});
  }
  return op;
}

void ExpectSameResult(const ApplyResult& got, const ApplyResult& want) {
  EXPECT_EQ(got.duplicate, want.duplicate);
  EXPECT_EQ(got.refused, want.refused);
  EXPECT_EQ(got.results, want.results);
}

TEST_P(StateMachineTest, GroupsApplyExactlyAsEntriesOneByOne) {
  for (uint32_t seed = 1; seed <= 4; seed++) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::unique_ptr<StateMachine> single, grouped;
    // One by one without a value cache, grouped with the variant's: every read the grouped
    // one makes through its cache must see what the uncached one reads from LevelDB.
    StateMachine::Options uncached;
    uncached.env = env_;
    StateMachine::Options o = uncached;
    o.value_cache_bytes = cache_bytes_;
    ASSERT_TRUE(StateMachine::Open(Path("/single" + std::to_string(seed)), uncached, &single).ok());
    ASSERT_TRUE(StateMachine::Open(Path("/grouped" + std::to_string(seed)), o, &grouped).ok());
    std::mt19937 rng(seed);
    auto pick = [&](uint32_t n) { return static_cast<uint32_t>(rng() % n); };
    const std::vector<std::string> keys = {"a", "b", "c", "d", "e"};
    auto key = [&] { return keys[pick(static_cast<uint32_t>(keys.size()))]; };
    std::vector<uint64_t> sessions;         // opened (some expire or close later)
    std::map<uint64_t, uint64_t> next_seq;  // per session
    uint64_t time_ms = 1'000;
    std::vector<raft::Entry> entries;
    for (raft::Index index = 1; index <= 700; index++) {
      time_ms += pick(4) == 0 ? pick(3'000) : pick(20);
      raft::Entry e{2, index, raft::EntryType::kNormal, ""};
      Command c;
      c.time_ms = time_ms;
      const uint32_t kind = pick(100);
      if (kind < 3) {
        e.type = raft::EntryType::kNoop;
      } else if (kind < 4) {
        e.data = "not a command";
      } else if (kind < 10) {
        c.ops = {SessionOp(OpCode::kSessionOpen, 1'000 + pick(4'000))};
        sessions.push_back(index);
      } else if (kind < 12 && !sessions.empty()) {
        c.ops = {SessionOp(OpCode::kSessionClose,
                           static_cast<int64_t>(sessions[pick(sessions.size())]))};
      } else {
        c.ops = {RandomOp(pick, key, /*flushall=*/true)};
        if (pick(2) == 0) c.ops.push_back(MakeOp(OpCode::kGet, {key()}));
        if (!sessions.empty() && pick(2) == 0) {
          const uint64_t id = sessions[pick(sessions.size())];
          uint64_t& seq = next_seq[id];
          if (seq == 0) seq = 1;
          // Mostly the next request, sometimes a retry of the last one.
          c.session = id;
          c.seq = pick(5) == 0 && seq > 1 ? seq - 1 : seq++;
          c.acked = seq > 3 ? seq - 3 : 1;
        } else if (pick(20) == 0) {
          c.session = 5'000 + pick(3);  // a node's forwarding session, created on first use
          c.seq = 1;
          c.acked = 1;
          c.create_session = true;
        }
      }
      if (e.type == raft::EntryType::kNormal && e.data.empty()) e.data = protocol::EncodeCommand(c);
      entries.push_back(std::move(e));
    }
    std::vector<ApplyResult> expected(entries.size());
    for (size_t i = 0; i < entries.size(); i++) {
      ASSERT_TRUE(single->Apply(entries[i], &expected[i]).ok());
    }
    size_t groups = 0;
    for (size_t i = 0; i < entries.size();) {
      const size_t n = std::min<size_t>(1 + pick(30), entries.size() - i);
      std::vector<ApplyResult> got;
      ASSERT_TRUE(grouped->ApplyAll(std::span(entries).subspan(i, n), &got).ok());
      ASSERT_EQ(got.size(), n);
      for (size_t j = 0; j < n; j++) {
        SCOPED_TRACE("entry " + std::to_string(i + j + 1));
        ExpectSameResult(got[j], expected[i + j]);
      }
      i += n;
      groups++;
    }
    EXPECT_LT(groups, entries.size() / 4);
    EXPECT_EQ(grouped->applied_index(), single->applied_index());
    EXPECT_EQ(grouped->key_count(), single->key_count());
    EXPECT_EQ(grouped->session_count(), single->session_count());
    EXPECT_EQ(grouped->cluster_time_ms(), single->cluster_time_ms());
    std::vector<std::pair<std::string, std::string>> a, b;
    ASSERT_TRUE(single->Dump(&a).ok());
    ASSERT_TRUE(grouped->Dump(&b).ok());
    EXPECT_EQ(a, b);
    // Every record, the sessions' and their results' too: a snapshot reads them all, in key
    // order, in chunks that depend only on the contents.
    auto everything = [](StateMachine* sm) {
      std::unique_ptr<StateMachine::SnapshotReader> reader = sm->NewSnapshotReader(4096);
      std::string all;
      for (bool done = false; !done;) {
        std::string chunk;
        EXPECT_TRUE(reader->Next(&chunk, &done).ok());
        all += chunk;
      }
      return all;
    };
    EXPECT_TRUE(everything(single.get()) == everything(grouped.get()));
    // What was written reads back the same after a restart.
    grouped.reset();
    ASSERT_TRUE(StateMachine::Open(Path("/grouped" + std::to_string(seed)), o, &grouped).ok());
    EXPECT_EQ(grouped->applied_index(), single->applied_index());
    EXPECT_EQ(grouped->key_count(), single->key_count());
    EXPECT_EQ(grouped->session_count(), single->session_count());
  }
}

// Reads through the value cache (when the variant has one) against a model of the state: many
// keys, so the small cache evicts; values of up to 600 bytes, so some are too large to cache;
// deletes, appends, FLUSHALL and groups of entries that read what earlier ones wrote.
TEST_P(StateMachineTest, ReadsSeeTheLatestWriteWhateverTheCacheHolds) {
  std::mt19937 rng(7);
  auto pick = [&](uint32_t n) { return static_cast<uint32_t>(rng() % n); };
  std::map<std::string, std::string> model;
  auto key = [&] { return "key" + std::to_string(pick(300)); };
  for (int round = 0; round < 150; round++) {
    std::vector<raft::Entry> entries;
    std::vector<std::vector<OpResult>> expected;
    const uint32_t n = 1 + pick(8);
    for (uint32_t i = 0; i < n; i++) {
      Command c;
      c.time_ms = time_ms_;
      const std::string k = key();
      const uint32_t kind = pick(100);
      if (kind < 45) {
        std::string v(1 + pick(600), static_cast<char>('a' + pick(26)));
        c.ops = {MakeOp(OpCode::kSet, {k}, {v})};
        expected.push_back({OpResult{}});
        model[k] = v;
      } else if (kind < 60) {
        c.ops = {MakeOp(OpCode::kDel, {k})};
        expected.push_back({OpResult{OpResult::Kind::kInt, model.erase(k) ? 1 : 0, ""}});
      } else if (kind < 75) {
        c.ops = {MakeOp(OpCode::kAppend, {k}, {"+"})};
        model[k] += "+";
        expected.push_back(
            {OpResult{OpResult::Kind::kInt, static_cast<int64_t>(model[k].size()), ""}});
      } else if (kind < 99) {
        c.ops = {MakeOp(OpCode::kGet, {k})};
        auto it = model.find(k);
        expected.push_back({it == model.end() ? OpResult{OpResult::Kind::kNil, 0, ""}
                                              : OpResult{OpResult::Kind::kBulk, 0, it->second}});
      } else {
        c.ops = {MakeOp(OpCode::kFlushAll, {})};
        model.clear();
        expected.push_back({OpResult{}});
      }
      entries.push_back(
          {3, sm_->applied_index() + 1 + i, raft::EntryType::kNormal, protocol::EncodeCommand(c)});
    }
    std::vector<ApplyResult> got;
    ASSERT_TRUE(sm_->ApplyAll(entries, &got).ok());
    for (uint32_t i = 0; i < n; i++) {
      ASSERT_EQ(got[i].results, expected[i]) << "round " << round << " entry " << i;
    }
    ASSERT_EQ(sm_->key_count(), model.size()) << "round " << round;
    for (int probe = 0; probe < 20; probe++) {
      const std::string k = key();
      auto it = model.find(k);
      ASSERT_EQ(Value(k), it == model.end() ? "<none>" : it->second) << "round " << round;
    }
  }
  // What the cache held is gone with a restart; the database has the same.
  Reopen();
  for (const auto& [k, v] : model) ASSERT_EQ(Value(k), v);
  EXPECT_EQ(sm_->key_count(), model.size());
}

// An installed snapshot replaces the whole state: nothing read before it answers after it.
TEST_P(StateMachineTest, AnInstalledSnapshotReplacesWhatWasReadBefore) {
  Run({MakeOp(OpCode::kSet, {"a"}, {"old"})});
  Run({MakeOp(OpCode::kSet, {"gone"}, {"old"})});
  EXPECT_EQ(Value("a"), "old");  // read, so cached when there is a cache
  EXPECT_EQ(Value("gone"), "old");
  EXPECT_EQ(Value("fresh"), "<none>");  // cached as absent

  std::unique_ptr<StateMachine> source;
  StateMachine::Options o;
  o.env = env_;
  ASSERT_TRUE(StateMachine::Open(Path("/source-of-install"), o, &source).ok());
  for (raft::Index i = 1; i <= 5; i++) {
    Command c;
    c.time_ms = time_ms_;
    c.ops = {MakeOp(OpCode::kSet, {"a"}, {"new" + std::to_string(i)}),
             MakeOp(OpCode::kSet, {"fresh"}, {"yes"})};
    ApplyResult r;
    ASSERT_TRUE(
        source->Apply({4, i, raft::EntryType::kNormal, protocol::EncodeCommand(c)}, &r).ok());
  }
  std::unique_ptr<StateMachine::SnapshotReader> reader = source->NewSnapshotReader(4096);
  std::unique_ptr<StateMachine::SnapshotWriter> writer;
  ASSERT_TRUE(sm_->NewSnapshotWriter(&writer).ok());
  for (bool done = false; !done;) {
    std::string chunk;
    ASSERT_TRUE(reader->Next(&chunk, &done).ok());
    ASSERT_TRUE(writer->Add(chunk).ok());
  }
  raft::SnapshotMeta meta;
  ASSERT_TRUE(writer->Finish(&meta).ok());
  EXPECT_EQ(meta, (raft::SnapshotMeta{5, 4}));
  EXPECT_EQ(Value("a"), "new5");
  EXPECT_EQ(Value("gone"), "<none>");
  EXPECT_EQ(Value("fresh"), "yes");
  EXPECT_EQ(sm_->key_count(), 2u);
  // Applying goes on from the snapshot, reading what it installed.
  Command c;
  c.time_ms = time_ms_;
  c.ops = {MakeOp(OpCode::kAppend, {"a"}, {"!"})};
  ApplyResult r;
  ASSERT_TRUE(sm_->Apply({4, 6, raft::EntryType::kNormal, protocol::EncodeCommand(c)}, &r).ok());
  EXPECT_EQ(r.results[0].integer, 5);
  EXPECT_EQ(Value("a"), "new5!");
}

// Counts the flushes of write-ahead logs ("*.log"): LevelDB flushes a log once per physical
// record, and a record shorter than a 32 KiB block is one.
class LogFlushCountingEnv : public leveldb::EnvWrapper {
 public:
  explicit LogFlushCountingEnv(leveldb::Env* base) : leveldb::EnvWrapper(base) {}
  leveldb::Status NewWritableFile(const std::string& name, leveldb::WritableFile** out) override {
    leveldb::Status s = target()->NewWritableFile(name, out);
    if (s.ok() && name.ends_with(".log")) *out = new Counted(*out, &flushes);
    return s;
  }
  leveldb::Status NewAppendableFile(const std::string& name, leveldb::WritableFile** out) override {
    leveldb::Status s = target()->NewAppendableFile(name, out);
    if (s.ok() && name.ends_with(".log")) *out = new Counted(*out, &flushes);
    return s;
  }
  std::atomic<int> flushes{0};

 private:
  class Counted : public leveldb::WritableFile {
   public:
    Counted(leveldb::WritableFile* file, std::atomic<int>* flushes)
        : file_(file), flushes_(flushes) {}
    leveldb::Status Append(const leveldb::Slice& data) override { return file_->Append(data); }
    leveldb::Status Close() override { return file_->Close(); }
    leveldb::Status Flush() override {
      (*flushes_)++;
      return file_->Flush();
    }
    leveldb::Status Sync() override { return file_->Sync(); }

   private:
    std::unique_ptr<leveldb::WritableFile> file_;
    std::atomic<int>* flushes_;
  };
};

TEST_P(StateMachineTest, AGroupIsOneWriteUnlessAnEntryScans) {
  LogFlushCountingEnv counting(env_);
  std::unique_ptr<StateMachine> sm;
  StateMachine::Options o;
  o.env = &counting;
  ASSERT_TRUE(StateMachine::Open(Path("/counted"), o, &sm).ok());
  auto entry = [&](raft::Index index, std::vector<Op> ops) {
    Command c;
    c.time_ms = 1'000;
    c.ops = std::move(ops);
    return raft::Entry{1, index, raft::EntryType::kNormal, protocol::EncodeCommand(c)};
  };
  std::vector<raft::Entry> group;
  for (raft::Index i = 1; i <= 50; i++) {
    group.push_back(entry(i, {MakeOp(OpCode::kSet, {"k" + std::to_string(i % 7)}, {"v"})}));
  }
  std::vector<ApplyResult> results;
  int before = counting.flushes;
  ASSERT_TRUE(sm->ApplyAll(group, &results).ok());
  EXPECT_EQ(counting.flushes - before, 1);
  EXPECT_EQ(sm->applied_index(), 50u);
  EXPECT_EQ(sm->key_count(), 7u);
  // A FLUSHALL in the middle writes the entries before it first: two writes.
  group.clear();
  group.push_back(entry(51, {MakeOp(OpCode::kSet, {"x"}, {"1"})}));
  group.push_back(entry(52, {MakeOp(OpCode::kFlushAll, {})}));
  group.push_back(entry(53, {MakeOp(OpCode::kSet, {"y"}, {"2"})}));
  before = counting.flushes;
  ASSERT_TRUE(sm->ApplyAll(group, &results).ok());
  EXPECT_EQ(counting.flushes - before, 2);
  EXPECT_EQ(sm->key_count(), 1u);
  std::string v;
  EXPECT_TRUE(sm->Get("y", &v).ok());
  EXPECT_FALSE(sm->Get("x", &v).ok());
}

// A batch entry (protocol::EncodeBatch) applies its commands exactly as entries of their own
// would at the batch's time: the same results, the same state, sessions and retries included.
TEST_P(StateMachineTest, BatchesApplyExactlyAsTheirCommandsOneByOne) {
  for (uint32_t seed = 1; seed <= 4; seed++) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::unique_ptr<StateMachine> single, batched;
    StateMachine::Options o;
    o.env = env_;
    o.value_cache_bytes = cache_bytes_;
    ASSERT_TRUE(StateMachine::Open(Path("/one" + std::to_string(seed)), o, &single).ok());
    ASSERT_TRUE(StateMachine::Open(Path("/batch" + std::to_string(seed)), o, &batched).ok());
    std::mt19937 rng(seed);
    auto pick = [&](uint32_t n) { return static_cast<uint32_t>(rng() % n); };
    const std::vector<std::string> keys = {"a", "b", "c", "d", "e", "f"};
    auto key = [&] { return keys[pick(static_cast<uint32_t>(keys.size()))]; };
    uint64_t time_ms = 1'000;
    // Sessions open first, at the same indexes in both (a session is named by its entry).
    std::vector<uint64_t> sessions;
    for (raft::Index index = 1; index <= 6; index++) {
      Command c;
      c.time_ms = time_ms;
      c.ops = {SessionOp(OpCode::kSessionOpen, 2'000 + pick(6'000))};
      raft::Entry e{1, index, raft::EntryType::kNormal, protocol::EncodeCommand(c)};
      ApplyResult r;
      ASSERT_TRUE(single->Apply(e, &r).ok());
      ASSERT_TRUE(batched->Apply(e, &r).ok());
      sessions.push_back(index);
    }
    std::map<uint64_t, uint64_t> next_seq;
    std::vector<raft::Entry> one_by_one, batches;
    std::vector<size_t> per_entry;  // commands in each of `batches`
    while (one_by_one.size() < 600) {
      time_ms += pick(4) == 0 ? pick(2'500) : pick(20);
      const size_t n = 1 + pick(8);
      // A batch's commands carry times up to 2 ms apart, the latest anywhere among them; one
      // by one, each carries that latest time (the time the batch is applied at).
      const size_t latest = pick(static_cast<uint32_t>(n));
      std::vector<std::string> encoded;
      for (size_t i = 0; i < n; i++) {
        Command c;
        c.time_ms = time_ms;
        c.ops = {RandomOp(pick, key, /*flushall=*/false)};
        if (pick(3) == 0) c.ops.push_back(MakeOp(OpCode::kGet, {key()}));
        if (pick(2) == 0) {
          const uint64_t id = sessions[pick(sessions.size())];
          uint64_t& seq = next_seq[id];
          if (seq == 0) seq = 1;
          // Mostly the next request, sometimes a retry of the last one (in the same batch, at
          // times).
          c.session = id;
          c.seq = pick(4) == 0 && seq > 1 ? seq - 1 : seq++;
          c.acked = seq > 3 ? seq - 3 : 1;
        } else if (pick(10) == 0) {
          c.session = 9'000 + pick(2);  // a node's forwarding session, created on first use
          uint64_t& seq = next_seq[c.session];
          if (seq == 0) seq = 1;
          c.seq = seq++;
          c.acked = c.seq;
          c.create_session = true;
        }
        one_by_one.push_back(raft::Entry{1, 7 + one_by_one.size(), raft::EntryType::kNormal,
                                         protocol::EncodeCommand(c)});
        if (i != latest) c.time_ms -= 1 + pick(2);
        encoded.push_back(protocol::EncodeCommand(c));
      }
      batches.push_back(raft::Entry{1, 7 + batches.size(), raft::EntryType::kNormal,
                                    n == 1 ? encoded[0] : protocol::EncodeBatch(encoded)});
      per_entry.push_back(n);
    }
    std::vector<ApplyResult> expected(one_by_one.size());
    for (size_t i = 0; i < one_by_one.size(); i++) {
      ASSERT_TRUE(single->Apply(one_by_one[i], &expected[i]).ok());
    }
    // The batches go in groups too, as a Ready's entries do.
    size_t command = 0;
    for (size_t i = 0; i < batches.size();) {
      const size_t n = std::min<size_t>(1 + pick(5), batches.size() - i);
      std::vector<ApplyResult> got;
      ASSERT_TRUE(batched->ApplyAll(std::span(batches).subspan(i, n), &got).ok());
      ASSERT_EQ(got.size(), n);
      for (size_t j = 0; j < n; j++) {
        const size_t commands = per_entry[i + j];
        ASSERT_EQ(got[j].batch.size(), commands == 1 ? 0 : commands);
        for (size_t k = 0; k < commands; k++, command++) {
          SCOPED_TRACE("command " + std::to_string(command));
          ExpectSameResult(commands == 1 ? got[j] : got[j].batch[k], expected[command]);
        }
      }
      i += n;
    }
    EXPECT_EQ(batched->applied_index(), 6 + batches.size());
    EXPECT_LT(batches.size(), one_by_one.size() / 3);
    EXPECT_EQ(batched->key_count(), single->key_count());
    EXPECT_EQ(batched->session_count(), single->session_count());
    EXPECT_EQ(batched->cluster_time_ms(), single->cluster_time_ms());
    std::vector<std::pair<std::string, std::string>> a, b;
    ASSERT_TRUE(single->Dump(&a).ok());
    ASSERT_TRUE(batched->Dump(&b).ok());
    EXPECT_EQ(a, b);
    batched.reset();
    ASSERT_TRUE(StateMachine::Open(Path("/batch" + std::to_string(seed)), o, &batched).ok());
    EXPECT_EQ(batched->applied_index(), 6 + batches.size());
    EXPECT_EQ(batched->key_count(), single->key_count());
    EXPECT_EQ(batched->session_count(), single->session_count());
  }
}

TEST_P(StateMachineTest, AnUndecodableBatchIsOneErrorAndAppliesNothing) {
  Command flush;
  flush.ops = {MakeOp(OpCode::kFlushAll, {})};
  Command set;
  set.ops = {MakeOp(OpCode::kSet, {"k"}, {"v"})};
  // A FLUSHALL may not share an entry (protocol::Batchable): the entry is refused whole.
  std::vector<std::string> both = {protocol::EncodeCommand(set), protocol::EncodeCommand(flush)};
  raft::Entry e{1, 1, raft::EntryType::kNormal, protocol::EncodeBatch(both)};
  ApplyResult r;
  ASSERT_TRUE(sm_->Apply(e, &r).ok());
  EXPECT_TRUE(r.batch.empty());
  ASSERT_EQ(r.results.size(), 1u);
  EXPECT_EQ(r.results[0].kind, OpResult::Kind::kError);
  EXPECT_NE(r.results[0].bulk.find("undecodable"), std::string::npos) << r.results[0].bulk;
  EXPECT_EQ(Value("k"), "<none>");
  EXPECT_EQ(sm_->applied_index(), 1u);
  EXPECT_EQ(sm_->key_count(), 0u);
}

// The parts of an entry being applied are seen by reads at once, but a scan in the middle of
// the entry writes the whole entries before it only: never half of one on disk.
TEST(PendingWrites, StagedPartsAreReadButNeverWrittenBeforeTheirEntry) {
  std::unique_ptr<leveldb::Env> env(leveldb::NewMemEnv(leveldb::Env::Default()));
  leveldb::Options o;
  o.env = env.get();
  o.create_if_missing = true;
  leveldb::DB* raw = nullptr;
  ASSERT_TRUE(leveldb::DB::Open(o, "/pending", &raw).ok());
  std::unique_ptr<leveldb::DB> db(raw);
  PendingWrites group(db.get(), nullptr);
  leveldb::WriteBatch whole;
  whole.Put("a", "1");
  group.Add(whole, /*read_later=*/true);
  leveldb::WriteBatch part;
  part.Put("b", "2");
  part.Delete("a");
  group.Stage(part);
  std::string v;
  EXPECT_TRUE(group.Get("b", &v).ok());
  EXPECT_EQ(v, "2");
  EXPECT_TRUE(group.Get("a", &v).IsNotFound());  // the part deleted it
  // A scan now: the entry before is written, the part is not.
  std::unique_ptr<leveldb::Iterator> it;
  ASSERT_TRUE(group.NewIterator(&it).ok());
  std::vector<std::string> on_disk;
  for (it->SeekToFirst(); it->Valid(); it->Next()) on_disk.push_back(it->key().ToString());
  // (Beside the write's own trailer record, kv/keys.h.)
  EXPECT_NE(std::find(on_disk.begin(), on_disk.end(), "a"), on_disk.end());
  EXPECT_EQ(std::find(on_disk.begin(), on_disk.end(), "b"), on_disk.end());
  EXPECT_TRUE(group.Get("b", &v).ok()) << "still staged after the scan";
  // The entry, added whole (its part included), is what the next write puts on disk.
  leveldb::WriteBatch entry;
  entry.Append(part);
  entry.Put("c", "3");
  group.Add(entry, /*read_later=*/false);
  ASSERT_TRUE(group.Write().ok());
  EXPECT_TRUE(db->Get(leveldb::ReadOptions(), "b", &v).ok());
  EXPECT_TRUE(db->Get(leveldb::ReadOptions(), "a", &v).IsNotFound());
  EXPECT_TRUE(db->Get(leveldb::ReadOptions(), "c", &v).ok());
}

INSTANTIATE_TEST_SUITE_P(Env, StateMachineTest,
                         ::testing::Values(Variant{false, 0}, Variant{true, 0},
                                           Variant{false, 16 << 10}, Variant{true, 16 << 10}),
                         VariantName);

}  // namespace
}  // namespace kv
