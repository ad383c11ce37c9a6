// FaultInjectionEnv: a leveldb::Env that wraps another Env (usually leveldb::NewMemEnv, or
// Env::Default() on a real directory) and injects the disk faults of the reliability plan:
//
//   - an OS crash or power loss that drops every byte not protected by a successful Sync(),
//     optionally tearing the unsynced tail (SimulateCrash);
//   - a file system that refuses all writes while the "machine" is down (SetCrashed);
//   - fsync failing with EIO (SetSyncError);
//   - a full disk, ENOSPC, after a byte budget (SetNoSpaceAfter);
//   - one flipped bit in a file at rest (FlipBit).
//
// What it models. Every file opened for writing through NewWritableFile or NewAppendableFile
// is tracked by name with two sizes: the bytes appended so far and the bytes known durable,
// which is the size at the last successful Sync(). A file created and never synced is durable
// up to 0 bytes; a file opened with NewAppendableFile that was not tracked before is durable up
// to its size at that moment. RenameFile moves the tracking to the new name (and drops any
// tracking of the file it replaces); RemoveFile drops it. Files this Env did not open for
// writing, the info log (NewLogger) and the lock file are never changed by a crash.
//
// What it does not model: directory entries. A file created, renamed or removed before a crash
// stays so after it, as if every directory operation were durable at once; a never-synced file
// survives a crash as an empty file rather than vanishing. Data read back between a write and a
// crash is the data written, as with a page cache.
//
// The same shape as LevelDB's own db/fault_injection_test.cc, which "keeps track of the
// information it needs to drop all data that was not protected by a sync".
//
// Thread-safety: safe for concurrent use (LevelDB writes its log from the caller's thread and
// its tables from a background thread). One mutex guards the bookkeeping; it is held across
// the base Append so a file's tracked size always matches its content, but not across the base
// Sync. Each WritableFile it returns, like any LevelDB WritableFile, is used by one thread at a
// time.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "leveldb/env.h"
#include "leveldb/status.h"

namespace kv {

class FaultInjectionEnv : public leveldb::EnvWrapper {
 public:
  // The block size of LevelDB's log format (kBlockSize in db/log_format.h), used by
  // MANIFEST-* and *.log files. A torn tail never zero-fills across one of its boundaries.
  static constexpr uint64_t kLogBlockSize = 32 * 1024;
  // The unit a disk writes atomically: a torn write keeps whole sectors.
  static constexpr uint64_t kSectorSize = 512;

  // REQUIRES: base outlives this Env. base is not owned.
  explicit FaultInjectionEnv(leveldb::Env* base);
  // REQUIRES: every WritableFile this Env returned has been deleted.
  ~FaultInjectionEnv() override;

  FaultInjectionEnv(const FaultInjectionEnv&) = delete;
  FaultInjectionEnv& operator=(const FaultInjectionEnv&) = delete;

  // leveldb::Env. Each fails with an IOError and changes nothing while crashed (SetCrashed);
  // otherwise it forwards to the base Env and, on success, updates the tracking above.

  // Starts tracking fname as a new, empty file: nothing of it is durable.
  leveldb::Status NewWritableFile(const std::string& fname,
                                  leveldb::WritableFile** result) override;
  // Keeps fname's tracking if it has one; otherwise starts tracking it with its current size
  // durable. Returns NotSupported if the base Env cannot append (LevelDB copes with that).
  leveldb::Status NewAppendableFile(const std::string& fname,
                                    leveldb::WritableFile** result) override;
  leveldb::Status RemoveFile(const std::string& fname) override;
  leveldb::Status RenameFile(const std::string& src, const std::string& dst) override;
  leveldb::Status CreateDir(const std::string& dirname) override;
  leveldb::Status RemoveDir(const std::string& dirname) override;
  // The info log is passed through and not tracked; only its creation is refused while
  // crashed.
  leveldb::Status NewLogger(const std::string& fname, leveldb::Logger** result) override;

  // The WritableFile returned above forwards to the base file, and:
  //   Append: fails while crashed, or with "No space left on device (ENOSPC)" when it would
  //           take the bytes appended since SetNoSpaceAfter past the budget; a failed Append
  //           writes nothing of its data.
  //   Sync:   fails while crashed, or with "Input/output error (EIO)" while SetSyncError is on;
  //           on failure nothing more becomes durable. On success everything appended before
  //           the call is durable and syncs() grows by one.
  //   Flush:  fails while crashed.
  //   Close:  always forwards (it releases the file; it adds no data beyond what was appended).

  // Models an OS crash or power loss. Every tracked file is cut back to its durable size.
  // With tear, each file instead keeps its durable bytes plus a prefix of its unsynced bytes
  // that ends at the durable size, at a kSectorSize boundary or at the end (drawn from seed:
  // a disk writes whole sectors); if that prefix ends inside a kLogBlockSize block, the rest of
  // the unsynced bytes up to the end of that block are replaced by zeros, as a device does
  // that allocated the blocks but never wrote them. Never does a file end up longer than what
  // was appended, nor hold a byte that was not written or zero. Files are visited in name
  // order and each draws from the same seeded generator, so a seed replays exactly. Files are
  // rewritten through the base Env (read, recreate, append, sync); a tracked file that no
  // longer exists there is forgotten. Afterwards every tracked file is durable up to its new
  // size. The fault settings (SetCrashed, SetSyncError, SetNoSpaceAfter) are left as they are.
  // REQUIRES: no tracked file is open for writing, i.e. the DB using this Env has been deleted
  // (SetCrashed(true) first, so that nothing more reaches the disk while it closes). Aborts if
  // a tracked file is open, or if the base Env fails to read or rewrite one.
  void SimulateCrash(uint64_t seed, bool tear);

  // While crashed, every write, sync, flush, rename, remove and file or directory creation
  // through this Env fails with an IOError and changes nothing. Reads still work.
  void SetCrashed(bool crashed);
  bool crashed() const;
  // With n >= 0: the next n mutating operations (append, sync, flush, rename, remove, create)
  // succeed, then the Env crashes (as SetCrashed(true)) before the one after: a crash in the
  // middle of whatever is running. With n < 0: off.
  void CrashAfterWrites(int64_t n);

  // While on, Sync() fails with an IOError "Input/output error (EIO)" and the data appended
  // stays not durable. (This LevelDB's Env has no directory sync to fail.)
  void SetSyncError(bool on);

  // With bytes >= 0: from now on, an Append that would take the total appended through this
  // Env since this call past bytes fails with an IOError "No space left on device (ENOSPC)"
  // and writes nothing of its data; smaller Appends that still fit succeed. With bytes < 0:
  // no limit.
  void SetNoSpaceAfter(int64_t bytes);

  // Flips bit (0 = least significant) of the byte at byte_offset of fname, as corruption at
  // rest would, by rewriting the file through the base Env. Tracking is unchanged.
  // Returns InvalidArgument if bit is not in [0, 8), byte_offset is not inside the file, or
  // fname is open for writing through this Env; the base Env's error if the file cannot be read
  // or rewritten.
  leveldb::Status FlipBit(const std::string& fname, uint64_t byte_offset, int bit);

  // Total bytes successfully appended through this Env since it was created.
  int64_t bytes_written() const;
  // Number of successful Sync() calls through this Env since it was created.
  int64_t syncs() const;
  // Bytes appended to fname since its last successful Sync(); 0 if fname is not tracked.
  uint64_t UnsyncedBytes(const std::string& fname) const;

 private:
  class TrackedFile;

  // What a crash would keep of one file. Shared by the tracking map and the open
  // TrackedFiles writing it, so a file removed or renamed while open stays consistent.
  struct FileState {
    uint64_t size = 0;     // bytes appended so far (plus the size it had when opened to append)
    uint64_t durable = 0;  // size at the last successful Sync(); <= size
    int open_writers = 0;  // TrackedFiles on this state neither closed nor deleted
  };

  // Returns an IOError for fname if crashed_, counting down CrashAfterWrites first.
  // REQUIRES: mutex_ held.
  leveldb::Status CheckNotCrashed(const std::string& fname);

  mutable std::mutex mutex_;
  // Tracked files by name. GUARDED_BY(mutex_), as are all the fields below.
  std::map<std::string, std::shared_ptr<FileState>> files_;
  bool crashed_ = false;
  int64_t crash_countdown_ = -1;  // CrashAfterWrites; < 0 means off
  bool sync_error_ = false;
  int64_t no_space_after_ = -1;       // byte budget for Append; < 0 means none
  int64_t appended_since_limit_ = 0;  // bytes appended since SetNoSpaceAfter
  int64_t bytes_written_ = 0;
  int64_t syncs_ = 0;
};

}  // namespace kv
