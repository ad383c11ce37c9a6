#include "server/storage_thread.h"

#include <chrono>

namespace server {

StorageThread::StorageThread(kv::LogStore* log, Done done)
    : log_(log), done_(std::move(done)), thread_([this] { Run(); }) {}

StorageThread::~StorageThread() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

void StorageThread::Submit(Step step) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(step));
  }
  cv_.notify_one();
}

StorageThread::Stats StorageThread::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

common::Status StorageThread::WriteBatch(std::vector<Step>& batch) {
  if (batch.empty()) return common::Status::OK();
  std::vector<const kv::LogStore::Step*> steps;
  std::vector<kv::LogStore::Step> converted;
  converted.reserve(batch.size());
  bool sync = false;
  for (Step& s : batch) {
    converted.push_back({s.hard_state, std::move(s.entries)});
    sync = sync || s.must_sync;
  }
  for (const kv::LogStore::Step& s : converted) steps.push_back(&s);
  auto t0 = std::chrono::steady_clock::now();
  common::Status st = log_->WriteSteps(steps, sync);
  auto micros = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
          .count());
  std::lock_guard<std::mutex> lock(mu_);
  stats_.batches++;
  if (st.ok()) stats_.steps += batch.size();
  if (sync) {
    stats_.syncs++;
    stats_.sync_micros_total += micros;
    if (micros > stats_.sync_micros_max) stats_.sync_micros_max = micros;
  }
  return st;
}

void StorageThread::Run() {
  uint64_t durable_id = 0;  // the last step known durable
  for (;;) {
    std::deque<Step> work;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and nothing left
      work.swap(queue_);
    }
    if (failed_) continue;  // fail-stop: nothing more is written or reported
    // Everything queued goes in one batch, split only where a step has work to run first.
    std::vector<Step> batch;
    common::Status st;
    auto flush = [&]() {
      uint64_t last = batch.empty() ? durable_id : batch.back().id;
      st = WriteBatch(batch);
      batch.clear();
      if (st.ok()) durable_id = last;
    };
    for (Step& step : work) {
      if (step.before) {
        flush();
        if (!st.ok()) break;
        st = step.before();
        if (!st.ok()) break;
      }
      batch.push_back(std::move(step));
    }
    if (st.ok()) flush();
    if (!st.ok()) failed_ = true;
    done_(durable_id, st);
  }
}

}  // namespace server
