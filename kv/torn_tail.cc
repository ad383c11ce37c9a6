#include "kv/torn_tail.h"

#include <leveldb/env.h>

#include <memory>
#include <string_view>
#include <vector>

#include "common/coding.h"

namespace kv {

namespace {

constexpr size_t kBlockSize = 32768;
constexpr size_t kHeaderSize = 7;
constexpr size_t kSectorSize = 512;
constexpr uint32_t kMaskDelta = 0xa282ead8u;

uint32_t Unmask(uint32_t masked) {
  uint32_t rot = masked - kMaskDelta;
  return (rot >> 17) | (rot << 15);
}

// Where a torn tail starts, or npos if the log is whole or bad in another way.
size_t TornTailStart(const std::string& data) {
  size_t pos = 0;
  while (pos < data.size()) {
    size_t left_in_block = kBlockSize - pos % kBlockSize;
    if (left_in_block < kHeaderSize) {
      pos += left_in_block;  // block trailer
      continue;
    }
    if (pos + kHeaderSize > data.size()) return std::string::npos;  // cut header: LevelDB copes
    std::string_view header(data.data() + pos, kHeaderSize);
    uint32_t stored;
    std::string_view h = header;
    common::GetFixed32(&h, &stored);
    size_t length = static_cast<unsigned char>(header[4]) |
                    (static_cast<size_t>(static_cast<unsigned char>(header[5])) << 8);
    unsigned char type = static_cast<unsigned char>(header[6]);
    if (type == 0 && length == 0) {
      pos += left_in_block;  // zero record: LevelDB skips the rest of the block
      continue;
    }
    size_t end = pos + kHeaderSize + length;
    if (end > data.size()) return std::string::npos;  // cut record at the end: LevelDB copes
    std::string_view payload(data.data() + pos + kHeaderSize, length);
    char t = static_cast<char>(type);
    uint32_t actual = common::Crc32c(payload, common::Crc32c(std::string_view(&t, 1)));
    if (Unmask(stored) == actual) {
      pos = end;
      continue;
    }
    // A bad record: torn only if the file reads as zeros from a sector boundary inside it on.
    size_t zeros = data.size();
    while (zeros > pos && data[zeros - 1] == '\0') zeros--;
    size_t boundary = (zeros + kSectorSize - 1) / kSectorSize * kSectorSize;
    if (boundary > pos && boundary <= end && boundary < data.size()) return pos;
    return std::string::npos;
  }
  return std::string::npos;
}

bool IsLogFile(const std::string& name) {
  if (name.size() <= 4 || name.compare(name.size() - 4, 4, ".log") != 0) return false;
  for (size_t i = 0; i + 4 < name.size(); i++) {
    if (name[i] < '0' || name[i] > '9') return false;
  }
  return true;
}

}  // namespace

common::Status TrimTornTails(leveldb::Env* env, const std::string& db_dir, int* trimmed) {
  *trimmed = 0;
  std::vector<std::string> children;
  if (!env->GetChildren(db_dir, &children).ok()) return common::Status::OK();
  for (const std::string& name : children) {
    if (!IsLogFile(name)) continue;
    std::string path = db_dir + "/" + name;
    std::string data;
    leveldb::Status s = leveldb::ReadFileToString(env, path, &data);
    if (!s.ok()) return common::Status::IOError("read " + path + ": " + s.ToString());
    size_t start = TornTailStart(data);
    if (start == std::string::npos) continue;
    // Write the cut log beside it and rename it over: a crash now keeps one or the other.
    std::string tmp = path + ".trim";
    leveldb::WritableFile* file = nullptr;
    s = env->NewWritableFile(tmp, &file);
    if (s.ok()) {
      std::unique_ptr<leveldb::WritableFile> f(file);
      s = f->Append(leveldb::Slice(data.data(), start));
      if (s.ok()) s = f->Sync();
      if (s.ok()) s = f->Close();
    }
    if (s.ok()) s = env->RenameFile(tmp, path);
    if (!s.ok()) return common::Status::IOError("cut torn tail of " + path + ": " + s.ToString());
    (*trimmed)++;
  }
  return common::Status::OK();
}

}  // namespace kv
