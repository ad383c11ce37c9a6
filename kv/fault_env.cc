#include "kv/fault_env.h"

#include <algorithm>
#include <utility>

#include "common/check.h"
#include "leveldb/slice.h"

namespace kv {

namespace {

// splitmix64: a tiny generator whose output is the same on every platform, so that a seed
// passed to SimulateCrash replays the same tear everywhere.
class CrashRng {
 public:
  explicit CrashRng(uint64_t seed) : state_(seed) {}

  // Uniform enough in [0, n). REQUIRES: n > 0.
  uint64_t Uniform(uint64_t n) {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (z ^ (z >> 31)) % n;
  }

 private:
  uint64_t state_;
};

leveldb::Status CrashedError(const std::string& fname) {
  return leveldb::Status::IOError(fname, "injected crash: the file system is down");
}

// Replaces the content of fname with data and syncs it, through env. Memenv cannot truncate a
// file, so recreating it is the one way to shorten it that works on every Env.
leveldb::Status RewriteFile(leveldb::Env* env, const std::string& fname, const std::string& data) {
  leveldb::WritableFile* file = nullptr;
  leveldb::Status s = env->NewWritableFile(fname, &file);
  if (!s.ok()) return s;
  s = file->Append(data);
  if (s.ok()) s = file->Sync();
  leveldb::Status close = file->Close();
  delete file;
  return s.ok() ? close : s;
}

}  // namespace

// The WritableFile handed to LevelDB: forwards to the base Env's file and keeps the FileState
// (shared with FaultInjectionEnv::files_) in step with what was appended and synced.
class FaultInjectionEnv::TrackedFile : public leveldb::WritableFile {
 public:
  // Takes ownership of base. REQUIRES: env->mutex_ held (the constructor counts a writer).
  TrackedFile(FaultInjectionEnv* env, std::string fname, std::shared_ptr<FileState> state,
              leveldb::WritableFile* base)
      : env_(env), fname_(std::move(fname)), state_(std::move(state)), base_(base) {
    ++state_->open_writers;
  }

  ~TrackedFile() override {
    MarkClosed();
    delete base_;
  }

  leveldb::Status Append(const leveldb::Slice& data) override {
    std::lock_guard<std::mutex> lock(env_->mutex_);
    leveldb::Status s = env_->CheckNotCrashed(fname_);
    if (!s.ok()) return s;
    const auto n = static_cast<int64_t>(data.size());
    if (env_->no_space_after_ >= 0 && env_->appended_since_limit_ + n > env_->no_space_after_) {
      return leveldb::Status::IOError(fname_, "No space left on device (ENOSPC)");
    }
    s = base_->Append(data);
    if (!s.ok()) return s;
    state_->size += data.size();
    env_->bytes_written_ += n;
    env_->appended_since_limit_ += n;
    return s;
  }

  leveldb::Status Close() override {
    leveldb::Status s = base_->Close();
    MarkClosed();
    return s;
  }

  leveldb::Status Flush() override {
    {
      std::lock_guard<std::mutex> lock(env_->mutex_);
      leveldb::Status s = env_->CheckNotCrashed(fname_);
      if (!s.ok()) return s;
    }
    return base_->Flush();
  }

  leveldb::Status Sync() override {
    uint64_t size;
    {
      std::lock_guard<std::mutex> lock(env_->mutex_);
      leveldb::Status s = env_->CheckNotCrashed(fname_);
      if (!s.ok()) return s;
      if (env_->sync_error_) return leveldb::Status::IOError(fname_, "Input/output error (EIO)");
      size = state_->size;
    }
    // Not under the mutex: an fsync on a real disk is slow, and the size to make durable was
    // fixed above (this file is not appended to concurrently).
    leveldb::Status s = base_->Sync();
    if (!s.ok()) return s;
    std::lock_guard<std::mutex> lock(env_->mutex_);
    state_->durable = std::max(state_->durable, size);
    ++env_->syncs_;
    return s;
  }

 private:
  void MarkClosed() {
    std::lock_guard<std::mutex> lock(env_->mutex_);
    if (closed_) return;
    closed_ = true;
    --state_->open_writers;
  }

  FaultInjectionEnv* const env_;
  const std::string fname_;  // the name it was opened under, for error messages
  const std::shared_ptr<FileState> state_;
  leveldb::WritableFile* const base_;  // owned
  bool closed_ = false;                // GUARDED_BY(env_->mutex_)
};

FaultInjectionEnv::FaultInjectionEnv(leveldb::Env* base) : leveldb::EnvWrapper(base) {}

FaultInjectionEnv::~FaultInjectionEnv() = default;

leveldb::Status FaultInjectionEnv::CheckNotCrashed(const std::string& fname) {
  if (crash_countdown_ == 0) {
    crashed_ = true;
    crash_countdown_ = -1;
  } else if (crash_countdown_ > 0) {
    crash_countdown_--;
  }
  return crashed_ ? CrashedError(fname) : leveldb::Status::OK();
}

leveldb::Status FaultInjectionEnv::NewWritableFile(const std::string& fname,
                                                   leveldb::WritableFile** result) {
  *result = nullptr;
  std::lock_guard<std::mutex> lock(mutex_);
  leveldb::Status s = CheckNotCrashed(fname);
  if (!s.ok()) return s;
  leveldb::WritableFile* base_file = nullptr;
  s = target()->NewWritableFile(fname, &base_file);
  if (!s.ok()) return s;
  auto state = std::make_shared<FileState>();
  files_[fname] = state;
  *result = new TrackedFile(this, fname, std::move(state), base_file);
  return s;
}

leveldb::Status FaultInjectionEnv::NewAppendableFile(const std::string& fname,
                                                     leveldb::WritableFile** result) {
  *result = nullptr;
  std::lock_guard<std::mutex> lock(mutex_);
  leveldb::Status s = CheckNotCrashed(fname);
  if (!s.ok()) return s;
  leveldb::WritableFile* base_file = nullptr;
  s = target()->NewAppendableFile(fname, &base_file);
  if (!s.ok()) return s;
  std::shared_ptr<FileState>& state = files_[fname];
  if (state == nullptr) {
    uint64_t size = 0;
    s = target()->GetFileSize(fname, &size);
    if (!s.ok()) {
      files_.erase(fname);
      delete base_file;
      return s;
    }
    state = std::make_shared<FileState>();
    state->size = size;
    state->durable = size;
  }
  *result = new TrackedFile(this, fname, state, base_file);
  return s;
}

leveldb::Status FaultInjectionEnv::RemoveFile(const std::string& fname) {
  std::lock_guard<std::mutex> lock(mutex_);
  leveldb::Status s = CheckNotCrashed(fname);
  if (!s.ok()) return s;
  s = target()->RemoveFile(fname);
  if (s.ok()) files_.erase(fname);
  return s;
}

leveldb::Status FaultInjectionEnv::RenameFile(const std::string& src, const std::string& dst) {
  std::lock_guard<std::mutex> lock(mutex_);
  leveldb::Status s = CheckNotCrashed(src);
  if (!s.ok()) return s;
  s = target()->RenameFile(src, dst);
  if (!s.ok()) return s;
  auto it = files_.find(src);
  if (it == files_.end()) {
    files_.erase(dst);  // dst now holds a file this Env did not write
  } else {
    std::shared_ptr<FileState> state = std::move(it->second);
    files_.erase(it);
    files_[dst] = std::move(state);
  }
  return s;
}

leveldb::Status FaultInjectionEnv::CreateDir(const std::string& dirname) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    leveldb::Status s = CheckNotCrashed(dirname);
    if (!s.ok()) return s;
  }
  return target()->CreateDir(dirname);
}

leveldb::Status FaultInjectionEnv::RemoveDir(const std::string& dirname) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    leveldb::Status s = CheckNotCrashed(dirname);
    if (!s.ok()) return s;
  }
  return target()->RemoveDir(dirname);
}

leveldb::Status FaultInjectionEnv::NewLogger(const std::string& fname, leveldb::Logger** result) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    leveldb::Status s = CheckNotCrashed(fname);
    if (!s.ok()) {
      *result = nullptr;
      return s;
    }
  }
  return target()->NewLogger(fname, result);
}

void FaultInjectionEnv::SimulateCrash(uint64_t seed, bool tear) {
  std::lock_guard<std::mutex> lock(mutex_);
  CrashRng rng(seed);
  for (auto it = files_.begin(); it != files_.end();) {
    const std::string& fname = it->first;
    FileState& state = *it->second;
    CHECK(state.open_writers == 0) << fname << " is still open for writing; delete the DB first";
    if (!target()->FileExists(fname)) {  // removed behind this Env's back
      it = files_.erase(it);
      continue;
    }
    std::string data;
    leveldb::Status s = leveldb::ReadFileToString(target(), fname, &data);
    CHECK(s.ok()) << s.ToString();
    const uint64_t current = data.size();
    const uint64_t durable = std::min(state.durable, current);
    uint64_t keep = durable;
    uint64_t end = durable;
    if (tear && current > durable) {
      // A disk writes whole sectors: what survives of the unsynced bytes ends at the durable
      // size, at a sector boundary, or at the end.
      const uint64_t first = (durable / kSectorSize + 1) * kSectorSize;
      const uint64_t boundaries = first < current ? (current - 1 - first) / kSectorSize + 1 : 0;
      const uint64_t pick = rng.Uniform(boundaries + 2);
      keep = pick == 0                ? durable
             : pick == boundaries + 1 ? current
                                      : first + (pick - 1) * kSectorSize;
      end = keep;
      if (keep < current && keep % kLogBlockSize != 0) {
        end = std::min(current, (keep / kLogBlockSize + 1) * kLogBlockSize);
      }
    }
    if (keep < current) {
      data.resize(keep);
      data.resize(end, '\0');
      s = RewriteFile(target(), fname, data);
      CHECK(s.ok()) << s.ToString();
    }
    state.size = end;
    state.durable = end;
    ++it;
  }
}

void FaultInjectionEnv::SetCrashed(bool crashed) {
  std::lock_guard<std::mutex> lock(mutex_);
  crashed_ = crashed;
}

bool FaultInjectionEnv::crashed() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return crashed_;
}

void FaultInjectionEnv::CrashAfterWrites(int64_t n) {
  std::lock_guard<std::mutex> lock(mutex_);
  crash_countdown_ = n < 0 ? -1 : n;
}

void FaultInjectionEnv::SetSyncError(bool on) {
  std::lock_guard<std::mutex> lock(mutex_);
  sync_error_ = on;
}

void FaultInjectionEnv::SetNoSpaceAfter(int64_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  no_space_after_ = bytes;
  appended_since_limit_ = 0;
}

leveldb::Status FaultInjectionEnv::FlipBit(const std::string& fname, uint64_t byte_offset,
                                           int bit) {
  if (bit < 0 || bit >= 8) return leveldb::Status::InvalidArgument(fname, "bit not in [0, 8)");
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = files_.find(fname);
  if (it != files_.end() && it->second->open_writers > 0) {
    return leveldb::Status::InvalidArgument(fname, "open for writing");
  }
  std::string data;
  leveldb::Status s = leveldb::ReadFileToString(target(), fname, &data);
  if (!s.ok()) return s;
  if (byte_offset >= data.size()) {
    return leveldb::Status::InvalidArgument(fname, "offset beyond the end of the file");
  }
  data[byte_offset] = static_cast<char>(data[byte_offset] ^ (1 << bit));
  return RewriteFile(target(), fname, data);
}

int64_t FaultInjectionEnv::bytes_written() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return bytes_written_;
}

int64_t FaultInjectionEnv::syncs() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return syncs_;
}

uint64_t FaultInjectionEnv::UnsyncedBytes(const std::string& fname) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = files_.find(fname);
  if (it == files_.end()) return 0;
  return it->second->size - it->second->durable;
}

}  // namespace kv
