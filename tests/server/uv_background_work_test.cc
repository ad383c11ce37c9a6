// UvBackgroundWork: work runs on libuv's thread pool and its `done` on the loop's thread; once
// the object is gone, work still runs and is released, but no `done` is called.
#include "server/uv_background_work.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>

namespace server {
namespace {

TEST(UvBackgroundWork, WorkRunsElsewhereAndDoneOnTheLoopThread) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  std::thread::id loop_thread = std::this_thread::get_id();
  std::thread::id work_thread;
  std::thread::id done_thread;
  int order = 0;
  int work_at = 0;
  int done_at = 0;
  {
    UvBackgroundWork bg(&loop);
    bg.Run(
        [&] {
          work_thread = std::this_thread::get_id();
          work_at = ++order;
        },
        [&] {
          done_thread = std::this_thread::get_id();
          done_at = ++order;
        });
    // Returns once the request is over: it keeps the loop alive until then.
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  EXPECT_NE(work_thread, loop_thread);
  EXPECT_EQ(done_thread, loop_thread);
  EXPECT_EQ(work_at, 1);
  EXPECT_EQ(done_at, 2);
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

TEST(UvBackgroundWork, NoDoneAfterDestruction) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  std::atomic<bool> worked{false};
  bool done = false;
  auto carried = std::make_shared<int>(7);
  std::weak_ptr<int> watch = carried;
  {
    UvBackgroundWork bg(&loop);
    bg.Run([&worked, carried] { worked = *carried == 7; }, [&done] { done = true; });
    carried.reset();
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_TRUE(worked);
  EXPECT_FALSE(done);
  EXPECT_TRUE(watch.expired()) << "what the work carried is released";
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

}  // namespace
}  // namespace server
