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
size_t WalkRecords(const std::string& data, size_t* bad_end, bool* damaged_length, F on_record) {
  *damaged_length = false;
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
    if (end > data.size()) {
      // LevelDB reads a record that runs past the end of the file as a cut tail and drops it
      // silently. Usually it is one; but if some shorter payload matches the checksum, the
      // record is whole and its length field was damaged: report it.
      size_t available = std::min(data.size(), pos + left_in_block) - pos - kHeaderSize;
      char t = static_cast<char>(type);
      uint32_t crc = common::Crc32c(std::string_view(&t, 1));
      uint32_t want = Unmask(stored);
      for (size_t n = 0; n <= available; n++) {
        if (crc == want) {
          *damaged_length = true;
          *bad_end = pos + kHeaderSize + n;
          return pos;
        }
        if (n < available)
          crc = common::Crc32c(std::string_view(data.data() + pos + kHeaderSize + n, 1), crc);
      }
      return std::string::npos;  // a cut record at the end: LevelDB copes
    }
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

// Where a torn tail starts, or npos if the log is whole or bad in another way. Sets *damaged
// when the last record is whole but its length field is damaged (LevelDB would not see it).
size_t TornTailStart(const std::string& data, bool* damaged) {
  size_t end = 0;
  size_t pos = WalkRecords(data, &end, damaged, [](unsigned char, std::string_view) {});
  if (pos != std::string::npos && !*damaged) {
    // Only the last thing in the file can be torn.
    size_t after = end;
    while (after < data.size() && data[after] == '\0') after++;
    if (after != data.size()) return std::string::npos;
    // The first or a middle fragment of a record: the record never reached its last fragment,
    // so it was never synced. (Unless its type byte is what was damaged: a whole record or a
    // last fragment whose checksum matches under that type is a damaged synced record.)
    auto type = static_cast<unsigned char>(data[pos + 6]);
    if (type == 2 || type == 3) {
      std::string_view header(data.data() + pos, kHeaderSize);
      uint32_t stored;
      common::GetFixed32(&header, &stored);
      size_t length = end - pos - kHeaderSize;
      std::string_view payload(data.data() + pos + kHeaderSize, length);
      for (char complete : {'\x01', '\x04'}) {
        uint32_t crc = common::Crc32c(payload, common::Crc32c(std::string_view(&complete, 1)));
        if (Unmask(stored) == crc) return std::string::npos;
      }
      return pos;
    }
    // A whole record or a last fragment: torn if the file reads as zeros from a sector
    // boundary inside it on. A record we wrote never ends in zeros (the batch trailer of
    // kv/keys.h), so zeros there are the part of the write the disk never made.
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
  // Only the newest write-ahead log can end torn: every older one was synced before the next
  // one was written (DurableEnv). Names are equal-width numbers: the largest is the newest.
  std::string newest;
  for (const std::string& name : children) {
    if (IsLogFile(name) && (newest.empty() || name.size() > newest.size() ||
                            (name.size() == newest.size() && name > newest))) {
      newest = name;
    }
  }
  if (!newest.empty()) {
    std::string path = db_dir + "/" + newest;
    std::string data;
    leveldb::Status s = leveldb::ReadFileToString(env, path, &data);
    if (!s.ok()) return common::Status::IOError("read " + path + ": " + s.ToString());
    bool damaged = false;
    size_t start = TornTailStart(data, &damaged);
    if (damaged) {
      return common::Status::Corruption(path + ": the length of the record at offset " +
                                        std::to_string(start) + " is damaged");
    }
    if (start == std::string::npos) return common::Status::OK();
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
    bool damaged = false;
    size_t bad =
        WalkRecords(data, &end, &damaged, [&](unsigned char type, std::string_view payload) {
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
