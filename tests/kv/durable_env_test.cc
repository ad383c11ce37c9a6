// DurableEnv's background thread: tasks run in order off the caller's thread, one database's
// background work never waits behind another's, LevelDB's flushes and compactions run on it; and
// tables are written behind on a real directory.
#include "kv/durable_env.h"

#include <gtest/gtest.h>
#include <leveldb/db.h>
#include <leveldb/helpers/memenv.h>
#include <leveldb/options.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/kv/test_dir.h"

namespace kv {
namespace {

// What a task saw, and a way to wait for it: a deadline only turns a hang into a failure.
struct Recorder {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<int> order;
  std::vector<std::thread::id> threads;
  bool released = false;

  bool WaitFor(size_t n) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(30), [&] { return order.size() >= n; });
  }
};

struct Task {
  Recorder* rec;
  int id;
  bool block = false;  // holds its thread until the recorder is released
};

void RunTask(void* arg) {
  Task* t = static_cast<Task*>(arg);
  std::unique_lock<std::mutex> lock(t->rec->mu);
  if (t->block) t->rec->cv.wait(lock, [t] { return t->rec->released; });
  t->rec->order.push_back(t->id);
  t->rec->threads.push_back(std::this_thread::get_id());
  t->rec->cv.notify_all();
}

TEST(DurableEnvTest, RunsTasksInOrderOnItsOwnThread) {
  std::unique_ptr<leveldb::Env> mem(leveldb::NewMemEnv(leveldb::Env::Default()));
  Recorder rec;
  std::vector<Task> tasks;
  for (int i = 0; i < 50; i++) tasks.push_back({&rec, i});
  {
    DurableEnv env(mem.get());
    for (Task& t : tasks) env.Schedule(&RunTask, &t);
    ASSERT_TRUE(rec.WaitFor(tasks.size()));
  }
  for (int i = 0; i < 50; i++) EXPECT_EQ(rec.order[static_cast<size_t>(i)], i);
  for (std::thread::id id : rec.threads) {
    EXPECT_EQ(id, rec.threads.front());
    EXPECT_NE(id, std::this_thread::get_id());
  }
}

TEST(DurableEnvTest, OneEnvsTaskDoesNotWaitBehindAnothersBusyThread) {
  std::unique_ptr<leveldb::Env> mem(leveldb::NewMemEnv(leveldb::Env::Default()));
  Recorder rec;
  Task slow{&rec, 1, true};
  Task quick{&rec, 2};
  DurableEnv log_env(mem.get());
  DurableEnv state_env(mem.get());
  state_env.Schedule(&RunTask, &slow);  // a long compaction of the state, say
  log_env.Schedule(&RunTask, &quick);   // the log's memtable flush
  bool quick_ran_first = rec.WaitFor(1);
  {
    std::lock_guard<std::mutex> lock(rec.mu);
    rec.released = true;  // whatever happened, so that no thread is left waiting
  }
  rec.cv.notify_all();
  ASSERT_TRUE(rec.WaitFor(2));
  EXPECT_TRUE(quick_ran_first);
  EXPECT_EQ(rec.order, (std::vector<int>{2, 1}));
  EXPECT_NE(rec.threads[0], rec.threads[1]);
}

TEST(DurableEnvTest, WorkScheduledBeforeDestructionStillRuns) {
  std::unique_ptr<leveldb::Env> mem(leveldb::NewMemEnv(leveldb::Env::Default()));
  Recorder rec;
  Task first{&rec, 1, true};
  Task second{&rec, 2};
  std::thread release;
  {
    DurableEnv env(mem.get());
    env.Schedule(&RunTask, &first);
    env.Schedule(&RunTask, &second);
    release = std::thread([&rec] {
      std::lock_guard<std::mutex> lock(rec.mu);
      rec.released = true;
      rec.cv.notify_all();
    });
  }  // joins its thread only after both ran
  release.join();
  EXPECT_EQ(rec.order, (std::vector<int>{1, 2}));
}

// On a real directory and on an in-memory Env: LevelDB's flushes and compactions run on the
// Env's thread, and tables are written behind (only where they are real files).
class DurableEnvLevelDBTest : public ::testing::TestWithParam<bool> {};

TEST_P(DurableEnvLevelDBTest, FlushesCompactsAndWritesTablesBehind) {
  const bool real = GetParam();
  test::TestDir dir(real, "durable-env");
  auto env = std::make_shared<DurableEnv>(dir.env());
  leveldb::Options o;
  o.env = env.get();
  o.create_if_missing = true;
  o.compression = leveldb::kNoCompression;  // tables as large as what was written
  o.write_buffer_size = 1 << 20;            // several memtables, each table over 256 KiB
  leveldb::DB* raw = nullptr;
  ASSERT_TRUE(leveldb::DB::Open(o, dir.Path("/db"), &raw).ok());
  std::unique_ptr<leveldb::DB> db(raw);
  auto value = [](int i) {
    return std::string(400, static_cast<char>('a' + i % 26)) + std::to_string(i);
  };
  const int n = 10000;  // about 4 MB
  for (int i = 0; i < n; i++) {
    ASSERT_TRUE(db->Put(leveldb::WriteOptions(), "k" + std::to_string(i), value(i)).ok());
  }
  db->CompactRange(nullptr, nullptr);  // waits for the background thread to finish it
  std::string level0;
  ASSERT_TRUE(db->GetProperty("leveldb.num-files-at-level0", &level0));
  EXPECT_EQ(level0, "0");
  std::vector<std::string> children;
  ASSERT_TRUE(dir.env()->GetChildren(dir.Path("/db"), &children).ok());
  int tables = 0;
  for (const std::string& c : children) tables += c.size() > 4 && c.substr(c.size() - 4) == ".ldb";
  EXPECT_GT(tables, 0);
  if (real) {
    EXPECT_GT(env->writebacks_started(), 0u);
  } else {
    EXPECT_EQ(env->writebacks_started(), 0u);
  }
  for (int i = 0; i < n; i += 97) {
    std::string got;
    ASSERT_TRUE(db->Get(leveldb::ReadOptions(), "k" + std::to_string(i), &got).ok());
    EXPECT_EQ(got, value(i));
  }
  db.reset();  // before the Env, as the node's databases do
  // And what the tables hold reads back after a reopen, from the tables alone.
  ASSERT_TRUE(leveldb::DB::Open(o, dir.Path("/db"), &raw).ok());
  db.reset(raw);
  for (int i = 0; i < n; i += 89) {
    std::string got;
    ASSERT_TRUE(db->Get(leveldb::ReadOptions(), "k" + std::to_string(i), &got).ok());
    EXPECT_EQ(got, value(i));
  }
  db.reset();
}

INSTANTIATE_TEST_SUITE_P(Env, DurableEnvLevelDBTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& p) {
                           return p.param ? "RealDirectory" : "MemEnv";
                         });

}  // namespace
}  // namespace kv
