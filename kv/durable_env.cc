#include "kv/durable_env.h"

namespace kv {

namespace {

bool IsWriteAheadLog(const std::string& fname) {
  return fname.size() > 4 && fname.compare(fname.size() - 4, 4, ".log") == 0;
}

// Syncs before closing.
class SyncOnClose : public leveldb::WritableFile {
 public:
  explicit SyncOnClose(leveldb::WritableFile* base) : base_(base) {}
  // LevelDB may delete a log without closing it first: sync then too.
  ~SyncOnClose() override {
    if (!closed_) base_->Sync();
  }
  leveldb::Status Append(const leveldb::Slice& data) override { return base_->Append(data); }
  leveldb::Status Flush() override { return base_->Flush(); }
  leveldb::Status Sync() override { return base_->Sync(); }
  leveldb::Status Close() override {
    closed_ = true;
    leveldb::Status s = base_->Sync();
    leveldb::Status c = base_->Close();
    return s.ok() ? c : s;
  }

 private:
  std::unique_ptr<leveldb::WritableFile> base_;
  bool closed_ = false;
};

}  // namespace

DurableEnv::~DurableEnv() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  work_.notify_one();
  if (background_.joinable()) background_.join();
}

void DurableEnv::Schedule(void (*function)(void*), void* arg) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!background_.joinable()) background_ = std::thread([this] { RunBackground(); });
    tasks_.emplace_back(function, arg);
  }
  work_.notify_one();
}

void DurableEnv::RunBackground() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    work_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
    // What was scheduled runs even when the Env is going away: a database waits for its
    // background work before it closes, so nothing is left here then, and if something were,
    // dropping it could leave a database waiting for ever.
    if (tasks_.empty()) return;
    auto [function, arg] = tasks_.front();
    tasks_.pop_front();
    lock.unlock();
    function(arg);
    lock.lock();
  }
}

leveldb::Status DurableEnv::NewWritableFile(const std::string& fname,
                                            leveldb::WritableFile** result) {
  leveldb::Status s = target()->NewWritableFile(fname, result);
  if (s.ok() && IsWriteAheadLog(fname)) *result = new SyncOnClose(*result);
  return s;
}

leveldb::Status DurableEnv::NewAppendableFile(const std::string& fname,
                                              leveldb::WritableFile** result) {
  leveldb::Status s = target()->NewAppendableFile(fname, result);
  if (s.ok() && IsWriteAheadLog(fname)) *result = new SyncOnClose(*result);
  return s;
}

}  // namespace kv
