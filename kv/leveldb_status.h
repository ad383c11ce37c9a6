// Converting LevelDB's Status into ours, with what was being done.
#pragma once

#include <leveldb/status.h>

#include <string>

#include "common/status.h"

namespace kv {

// OK stays OK; Corruption and NotFound keep their kind; every other failure is an IOError.
inline common::Status FromLevelDB(const leveldb::Status& s, const std::string& context) {
  if (s.ok()) return common::Status::OK();
  if (s.IsCorruption()) return common::Status::Corruption(context + ": " + s.ToString());
  if (s.IsNotFound()) return common::Status::NotFound(context + ": " + s.ToString());
  return common::Status::IOError(context + ": " + s.ToString());
}

}  // namespace kv
