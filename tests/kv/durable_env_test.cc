// DurableEnv's background thread: tasks run in order off the caller's thread, one database's
// background work never waits behind another's, and LevelDB's flushes and compactions run on it.
#include "kv/durable_env.h"

#include <gtest/gtest.h>
#include <leveldb/db.h>
#include <leveldb/helpers/memenv.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

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

TEST(DurableEnvTest, LevelDBFlushesAndCompactsOnIt) {
  std::unique_ptr<leveldb::Env> mem(leveldb::NewMemEnv(leveldb::Env::Default()));
  auto env = std::make_shared<DurableEnv>(mem.get());
  leveldb::Options o;
  o.env = env.get();
  o.create_if_missing = true;
  o.write_buffer_size = 64 << 10;  // many memtables, so many flushes and compactions
  leveldb::DB* raw = nullptr;
  ASSERT_TRUE(leveldb::DB::Open(o, "/db", &raw).ok());
  std::unique_ptr<leveldb::DB> db(raw);
  const std::string value(200, 'v');
  for (int i = 0; i < 5000; i++) {
    ASSERT_TRUE(
        db->Put(leveldb::WriteOptions(), "k" + std::to_string(i), value + std::to_string(i)).ok());
  }
  db->CompactRange(nullptr, nullptr);  // waits for the background thread to finish it
  std::string tables;
  ASSERT_TRUE(db->GetProperty("leveldb.num-files-at-level0", &tables));
  EXPECT_EQ(tables, "0");
  std::vector<std::string> children;
  ASSERT_TRUE(mem->GetChildren("/db", &children).ok());
  int ldb = 0;
  for (const std::string& c : children) ldb += c.size() > 4 && c.substr(c.size() - 4) == ".ldb";
  EXPECT_GT(ldb, 0);
  for (int i = 0; i < 5000; i += 499) {
    std::string got;
    ASSERT_TRUE(db->Get(leveldb::ReadOptions(), "k" + std::to_string(i), &got).ok());
    EXPECT_EQ(got, value + std::to_string(i));
  }
  db.reset();  // before the Env, as the node's databases do
}

}  // namespace
}  // namespace kv
