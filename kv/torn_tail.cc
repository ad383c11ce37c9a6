#include "kv/torn_tail.h"

#include <leveldb/env.h>

#include <algorithm>
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

// Walks the physical records of a log file. Calls on_record(type, payload) for each intact
// record; returns the offset of the first bad one (and its end in *bad_end), or npos.
template <typename F>
size_t WalkRecords(const std::string& data, size_t* bad_end, F on_record) {
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
      on_record(type, payload);
      pos = end;
      continue;
    }
    *bad_end = end;
    return pos;
  }
  return std::string::npos;
}

// Where a torn tail starts, or npos if the log is whole or bad in another way.
size_t TornTailStart(const std::string& data) {
  size_t end = 0;
  size_t pos = WalkRecords(data, &end, [](unsigned char, std::string_view) {});
  if (pos != std::string::npos) {
    // A bad record: torn only if the file reads as zeros from a sector boundary inside it on.
    size_t zeros = data.size();
    while (zeros > pos && data[zeros - 1] == '\0') zeros--;
    size_t boundary = (zeros + kSectorSize - 1) / kSectorSize * kSectorSize;
    if (boundary > pos && boundary <= end && boundary < data.size()) return pos;
  }
  return std::string::npos;
}

bool GetVarint32(std::string_view* in, uint32_t* v) {
  *v = 0;
  for (int shift = 0; shift <= 28 && !in->empty(); shift += 7) {
    auto byte = static_cast<unsigned char>((*in)[0]);
    in->remove_prefix(1);
    *v |= static_cast<uint32_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

// The Raft log indexes a WriteBatch writes ('e' keys), as far as it parses.
std::vector<uint64_t> EntryIndexesOf(std::string_view batch) {
  std::vector<uint64_t> out;
  if (batch.size() < 12) return out;
  batch.remove_prefix(12);  // sequence number, count
  while (!batch.empty()) {
    unsigned char tag = static_cast<unsigned char>(batch[0]);
    batch.remove_prefix(1);
    uint32_t len;
    if (tag > 1 || !GetVarint32(&batch, &len) || batch.size() < len) break;
    std::string_view key = batch.substr(0, len);
    batch.remove_prefix(len);
    if (key.size() == 9 && key[0] == 'e') {
      key.remove_prefix(1);
      uint64_t index;
      if (common::GetBigEndian64(&key, &index)) out.push_back(index);
    }
    if (tag == 1) {  // a value follows
      if (!GetVarint32(&batch, &len) || batch.size() < len) break;
      batch.remove_prefix(len);
    }
  }
  return out;
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

std::string LocateBadLogEntries(leveldb::Env* env, const std::string& db_dir) {
  std::vector<std::string> children;
  if (!env->GetChildren(db_dir, &children).ok()) return "";
  std::sort(children.begin(), children.end());  // older logs first: same-width numbers
  uint64_t last_good = 0;
  for (const std::string& name : children) {
    if (!IsLogFile(name)) continue;
    std::string data;
    if (!leveldb::ReadFileToString(env, db_dir + "/" + name, &data).ok()) continue;
    size_t end = 0;
    size_t bad = WalkRecords(data, &end, [&](unsigned char type, std::string_view payload) {
      if (type != 1) return;  // only whole (unfragmented) records are parsed
      for (uint64_t i : EntryIndexesOf(payload)) last_good = std::max(last_good, i);
    });
    if (bad == std::string::npos) continue;
    std::string_view record(data.data() + bad + kHeaderSize, end - bad - kHeaderSize);
    std::vector<uint64_t> in_bad = EntryIndexesOf(record);
    if (!in_bad.empty()) {
      auto [lo, hi] = std::minmax_element(in_bad.begin(), in_bad.end());
      if (*lo == *hi) return "index " + std::to_string(*lo);
      return "indexes " + std::to_string(*lo) + ".." + std::to_string(*hi);
    }
    return "an index after " + std::to_string(last_good);
  }
  return "";
}

}  // namespace kv
