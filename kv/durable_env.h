// DurableEnv: a leveldb::Env wrapper that syncs a write-ahead log ("*.log") before closing it.
//
// LevelDB closes a write-ahead log without syncing it when it switches to a new one (memtable
// full), and a synced write syncs only the current log. Without this, a synced write could be
// durable while unsynced writes before it, in the old log, are lost in a crash: a state
// machine whose applied index runs ahead of its data. With it, every write-ahead log is
// durable before the next one gets a byte, so a synced write covers everything before it.
//
// Thread-safety: as the wrapped Env.
#pragma once

#include <leveldb/env.h>

#include <memory>
#include <string>

namespace kv {

class DurableEnv : public leveldb::EnvWrapper {
 public:
  explicit DurableEnv(leveldb::Env* base) : leveldb::EnvWrapper(base) {}

  leveldb::Status NewWritableFile(const std::string& fname,
                                  leveldb::WritableFile** result) override;
  leveldb::Status NewAppendableFile(const std::string& fname,
                                    leveldb::WritableFile** result) override;
};

}  // namespace kv
