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
