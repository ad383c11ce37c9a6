// StorageThread: steps are written in order and reported durable in order; steps queued while
// a sync runs share the next one (group commit); a failure stops all writing.
#include "server/storage_thread.h"

#include <gtest/gtest.h>
#include <leveldb/env.h>
#include <leveldb/helpers/memenv.h>

#include <atomic>
#include <future>
#include <memory>

#include "kv/fault_env.h"

namespace server {
namespace {

raft::Entry E(raft::Index index, raft::Term term) {
  return {term, index, raft::EntryType::kNormal, "v" + std::to_string(index)};
}

class StorageThreadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    mem_.reset(leveldb::NewMemEnv(leveldb::Env::Default()));
    env_ = std::make_unique<kv::FaultInjectionEnv>(mem_.get());
    kv::LogStore::Options o;
    o.env = env_.get();
    ASSERT_TRUE(kv::LogStore::Open("/log", o, &log_).ok());
  }
  // Records every report; wakes waiters.
  void OnDone(uint64_t id, const common::Status& s) {
    std::lock_guard<std::mutex> lock(mu_);
    reports_.push_back({id, s});
    cv_.notify_all();
  }
  // Waits until a report covers `id` or an error arrives.
  void WaitFor(uint64_t id) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] {
      return !reports_.empty() && (reports_.back().first >= id || !reports_.back().second.ok());
    });
  }

  std::unique_ptr<leveldb::Env> mem_;
  std::unique_ptr<kv::FaultInjectionEnv> env_;
  std::unique_ptr<kv::LogStore> log_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<uint64_t, common::Status>> reports_;
};

TEST_F(StorageThreadTest, StepsAreDurableAndReportedInOrder) {
  StorageThread st(log_.get(), [this](uint64_t id, const common::Status& s) { OnDone(id, s); });
  for (uint64_t i = 1; i <= 20; i++) {
    StorageThread::Step step;
    step.id = i;
    step.hard_state = raft::HardState{1, 1, 0};
    step.entries = {E(i, 1)};
    step.must_sync = true;
    st.Submit(std::move(step));
  }
  WaitFor(20);
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t prev = 0;
  for (const auto& [id, s] : reports_) {
    EXPECT_TRUE(s.ok()) << s.ToString();
    EXPECT_GT(id, prev);
    prev = id;
  }
  EXPECT_EQ(log_->last_index(), 20u);
}

TEST_F(StorageThreadTest, StepsQueuedDuringASyncShareTheNextOne) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> started;
  StorageThread st(log_.get(), [this](uint64_t id, const common::Status& s) { OnDone(id, s); });
  // The first step's work holds the thread, as a slow fsync would.
  StorageThread::Step first;
  first.id = 1;
  first.entries = {E(1, 1)};
  first.hard_state = raft::HardState{1, 1, 0};
  first.must_sync = true;
  first.before = [&] {
    started.set_value();
    released.wait();
    return common::Status::OK();
  };
  st.Submit(std::move(first));
  started.get_future().wait();
  for (uint64_t i = 2; i <= 101; i++) {
    StorageThread::Step step;
    step.id = i;
    step.entries = {E(i, 1)};
    step.must_sync = true;
    st.Submit(std::move(step));
  }
  release.set_value();
  WaitFor(101);
  StorageThread::Stats stats = st.stats();
  EXPECT_EQ(stats.steps, 101u);
  EXPECT_EQ(stats.syncs, 2u) << "100 steps queued behind one sync take one more";
  EXPECT_EQ(log_->syncs(), 2u);
  EXPECT_EQ(log_->last_index(), 101u);
}

TEST_F(StorageThreadTest, AFailedSyncStopsAllWriting) {
  auto st = std::make_unique<StorageThread>(
      log_.get(), [this](uint64_t id, const common::Status& s) { OnDone(id, s); });
  StorageThread::Step a;
  a.id = 1;
  a.entries = {E(1, 1)};
  a.hard_state = raft::HardState{1, 1, 0};
  a.must_sync = true;
  st->Submit(std::move(a));
  WaitFor(1);
  env_->SetSyncError(true);
  StorageThread::Step b;
  b.id = 2;
  b.entries = {E(2, 1)};
  b.must_sync = true;
  st->Submit(std::move(b));
  WaitFor(2);
  {
    std::lock_guard<std::mutex> lock(mu_);
    ASSERT_FALSE(reports_.back().second.ok());
    EXPECT_EQ(reports_.back().first, 1u) << "only step 1 is durable";
  }
  env_->SetSyncError(false);
  StorageThread::Step c;
  c.id = 3;
  c.entries = {E(2, 1)};
  c.must_sync = true;
  st->Submit(std::move(c));
  st.reset();  // drains the queue and joins: step 3 has been dealt with
  // Nothing more was written or reported.
  std::lock_guard<std::mutex> lock(mu_);
  EXPECT_EQ(reports_.size(), 2u);
  EXPECT_EQ(log_->last_index(), 1u);
}

TEST_F(StorageThreadTest, StopWritesWhatIsQueued) {
  std::atomic<uint64_t> last{0};
  {
    StorageThread st(log_.get(), [&](uint64_t id, const common::Status&) { last = id; });
    for (uint64_t i = 1; i <= 50; i++) {
      StorageThread::Step step;
      step.id = i;
      step.entries = {E(i, 1)};
      step.hard_state = raft::HardState{1, 1, 0};
      step.must_sync = true;
      st.Submit(std::move(step));
    }
  }
  EXPECT_EQ(last.load(), 50u);
  EXPECT_EQ(log_->last_index(), 50u);
}

}  // namespace
}  // namespace server
