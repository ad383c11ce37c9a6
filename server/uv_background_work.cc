#include "server/uv_background_work.h"

#include "common/check.h"

namespace server {

namespace {

struct Request {
  uv_work_t req;
  std::function<void()> work;
  std::function<void()> done;
  std::shared_ptr<bool> alive;
};

}  // namespace

UvBackgroundWork::UvBackgroundWork(uv_loop_t* loop)
    : loop_(loop), alive_(std::make_shared<bool>(true)) {}

UvBackgroundWork::~UvBackgroundWork() { *alive_ = false; }

void UvBackgroundWork::Run(std::function<void()> work, std::function<void()> done) {
  auto* r = new Request{{}, std::move(work), std::move(done), alive_};
  r->req.data = r;
  int rc = uv_queue_work(
      loop_, &r->req, [](uv_work_t* req) { static_cast<Request*>(req->data)->work(); },
      [](uv_work_t* req, int status) {
        std::unique_ptr<Request> owned(static_cast<Request*>(req->data));
        // UV_ECANCELED only if someone called uv_cancel on it, which nothing here does.
        if (*owned->alive && status == 0) owned->done();
      });
  // uv_queue_work fails only without a work callback.
  CHECK(rc == 0) << "uv_queue_work: " << uv_strerror(rc);
}

}  // namespace server
