// ManualBackgroundWork: a BackgroundWork for tests that runs nothing until told, one piece at a
// time (its work, then its `done`, on the test's thread), in the order handed over. What runs
// "in the background" and when is the test's decision, so the outcome never depends on timing.
#pragma once

#include <deque>
#include <functional>
#include <utility>

#include "server/background_work.h"

namespace server {

class ManualBackgroundWork : public BackgroundWork {
 public:
  void Run(std::function<void()> work, std::function<void()> done) override {
    jobs_.push_back({std::move(work), std::move(done)});
  }
  size_t pending() const { return jobs_.size(); }
  // Runs the oldest piece. False if there is none.
  bool RunOne() {
    if (jobs_.empty()) return false;
    auto job = std::move(jobs_.front());
    jobs_.pop_front();
    job.first();
    job.second();
    return true;
  }
  // Runs pieces, including those handed over meanwhile, until none is left; returns how many.
  int RunAll() {
    int n = 0;
    while (RunOne()) n++;
    return n;
  }

 private:
  std::deque<std::pair<std::function<void()>, std::function<void()>>> jobs_;
};

}  // namespace server
