#include "kv/durable_env.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>

namespace kv {

namespace {

bool EndsWith(const std::string& fname, const char* suffix, size_t n) {
  return fname.size() > n && fname.compare(fname.size() - n, n, suffix) == 0;
}

bool IsWriteAheadLog(const std::string& fname) { return EndsWith(fname, ".log", 4); }

bool IsTable(const std::string& fname) { return EndsWith(fname, ".ldb", 4); }

// How much of a table may wait in the page cache before its writeback is started.
constexpr uint64_t kWriteBehindBytes = 256 << 10;

// A table written by a flush or a compaction (megabytes) reaches the disk as it is written, a
// little at a time, instead of all at once when LevelDB syncs it at the end: a write-ahead
// log's fdatasync on the same disk then waits behind a few hundred kilobytes, not behind
// megabytes. The writeback is only started here (sync_file_range with SYNC_FILE_RANGE_WRITE,
// on a descriptor of its own); durability is still LevelDB's Sync. Over an Env whose files are
// not on the local file system (an in-memory Env), the file does not open and nothing is done.
class WriteBehind : public leveldb::WritableFile {
 public:
  WriteBehind(leveldb::WritableFile* base, const std::string& fname,
              std::atomic<uint64_t>* started_count)
      : base_(base),
        fd_(::open(fname.c_str(), O_RDONLY | O_CLOEXEC)),
        started_count_(started_count) {}
  ~WriteBehind() override {
    if (fd_ >= 0) ::close(fd_);
  }
  leveldb::Status Append(const leveldb::Slice& data) override {
    appended_ += data.size();
    return base_->Append(data);
  }
  leveldb::Status Flush() override {
    leveldb::Status s = base_->Flush();
    if (s.ok() && fd_ >= 0 && appended_ - started_ >= kWriteBehindBytes) {
      // Advisory: an error here is the kernel's to report again at LevelDB's Sync.
      ::sync_file_range(fd_, static_cast<off_t>(started_), static_cast<off_t>(appended_ - started_),
                        SYNC_FILE_RANGE_WRITE);
      started_ = appended_;
      started_count_->fetch_add(1, std::memory_order_relaxed);
    }
    return s;
  }
  leveldb::Status Sync() override { return base_->Sync(); }
  leveldb::Status Close() override { return base_->Close(); }

 private:
  std::unique_ptr<leveldb::WritableFile> base_;
  int fd_;
  std::atomic<uint64_t>* started_count_;
  uint64_t appended_ = 0;  // bytes handed to the file; after a Flush, all in the page cache
  uint64_t started_ = 0;   // bytes whose writeback has been started
};

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
  if (s.ok() && IsTable(fname)) *result = new WriteBehind(*result, fname, &writebacks_started_);
  return s;
}

leveldb::Status DurableEnv::NewAppendableFile(const std::string& fname,
                                              leveldb::WritableFile** result) {
  leveldb::Status s = target()->NewAppendableFile(fname, result);
  if (s.ok() && IsWriteAheadLog(fname)) *result = new SyncOnClose(*result);
  return s;
}

}  // namespace kv
