// PendingWrites: the writes of applied entries that are not yet in LevelDB, and the reads that
// must see them.
//
// The state machine applies a group of committed entries (those of one Ready) with one LevelDB
// write instead of one per entry: one write-ahead log record and one write(2) for the group.
// Each entry is applied as if the entries before it were already written: its point reads
// (Get) look at the group's writes first, then at LevelDB; a scan (NewIterator) first writes
// the group, which then holds whole entries only, so the state on disk is always that after
// some entry, never half of one. An entry of many commands (a batch) is applied command by
// command: each command's writes are staged for the reads of the next, and the entry is added
// whole at its end; a scan in the middle sees the entries before it only. Reads that reach LevelDB
// go through the state machine's ValueCache, and a successful Write() brings the cache up to date
// with what it wrote.
//
// Thread-safety: the state machine's apply thread only.
#pragma once

#include <leveldb/status.h>
#include <leveldb/write_batch.h>

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

namespace leveldb {
class DB;
class Iterator;
}  // namespace leveldb

namespace kv {

class ValueCache;

class PendingWrites {
 public:
  // `cache` (may be null) holds values the database holds; Write() brings it up to date.
  PendingWrites(leveldb::DB* db, ValueCache* cache) : db_(db), cache_(cache) {}

  PendingWrites(const PendingWrites&) = delete;
  PendingWrites& operator=(const PendingWrites&) = delete;

  // The value of raw key `key` after the entries added so far.
  leveldb::Status Get(const std::string& key, std::string* value);
  // An iterator over the state after the entries added so far: writes them first.
  leveldb::Status NewIterator(std::unique_ptr<leveldb::Iterator>* out);

  // Makes the writes of a part of the entry being applied visible to Get (not to NewIterator's
  // iterator) until the entry is added.
  void Stage(const leveldb::WriteBatch& part);
  // Adds the batch of one whole entry (its staged parts included). `read_later`: a later entry
  // of the group may read its keys (false for the group's last entry, whose writes need no
  // index).
  void Add(const leveldb::WriteBatch& entry, bool read_later);
  // Writes what was added (unsynced, with the batch trailer of kv/keys.h), if anything.
  leveldb::Status Write();
  // Writes that succeeded so far (by Write or NewIterator).
  uint64_t writes() const { return writes_; }

 private:
  leveldb::DB* db_;
  ValueCache* cache_;
  leveldb::WriteBatch batch_;
  bool empty_ = true;
  uint64_t writes_ = 0;
  // The group's writes, for the reads of later entries: the last value of each key, or nullopt
  // for a delete.
  std::unordered_map<std::string, std::optional<std::string>> written_;
  // The staged writes of the entry being applied, in the same form.
  std::unordered_map<std::string, std::optional<std::string>> staged_;
};

}  // namespace kv
