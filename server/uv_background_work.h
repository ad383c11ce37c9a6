// UvBackgroundWork: BackgroundWork (background_work.h) on libuv's thread pool: each work is a
// uv_queue_work request, and its `done` runs in the request's after-work callback, on the
// loop's thread.
//
// Lifetime. Destroying the object does not cancel anything: works already handed over still
// run, and what they carry is released on the loop thread afterwards, but their `done` is not
// called. They remain active requests of the loop, so uv_run returns only once they are over:
// whatever a work touches must outlive that last uv_run.
//
// Thread-safety: the loop's thread only.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>

#include "server/background_work.h"

namespace server {

class UvBackgroundWork : public BackgroundWork {
 public:
  // REQUIRES: `loop` outlives every work handed over (see above).
  explicit UvBackgroundWork(uv_loop_t* loop);
  ~UvBackgroundWork() override;

  UvBackgroundWork(const UvBackgroundWork&) = delete;
  UvBackgroundWork& operator=(const UvBackgroundWork&) = delete;

  void Run(std::function<void()> work, std::function<void()> done) override;

 private:
  uv_loop_t* loop_;
  // Shared with every request in flight; false once this object is gone.
  std::shared_ptr<bool> alive_;
};

}  // namespace server
