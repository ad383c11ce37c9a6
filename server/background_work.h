// BackgroundWork: where the loop thread sends work too slow to do between two events (reading
// or writing a snapshot chunk of a megabyte), and how the outcome comes back to it.
//
//   Run(work, done): `work` runs on some other thread; then `done` runs on the loop thread.
//
// Works handed over one after the other may run at the same time, on different threads: a
// caller that needs an order (the chunks of one stream) hands over the next piece only from
// the previous one's `done`. `work` must touch only what it carries (captured by value or
// shared), never the caller's members: the caller may go on, or be gone, while it runs.
//
// InlineBackgroundWork runs both at once on the calling thread, for drivers without a loop
// (and `done` then runs inside Run: callers must allow for that). UvBackgroundWork
// (uv_background_work.h) runs work on libuv's thread pool.
//
// Thread-safety: Run from the loop thread only.
#pragma once

#include <functional>

namespace server {

class BackgroundWork {
 public:
  virtual ~BackgroundWork() = default;
  virtual void Run(std::function<void()> work, std::function<void()> done) = 0;
};

class InlineBackgroundWork : public BackgroundWork {
 public:
  void Run(std::function<void()> work, std::function<void()> done) override {
    work();
    done();
  }
};

}  // namespace server
