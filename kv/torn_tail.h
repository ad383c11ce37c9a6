// Torn-tail recovery for LevelDB write-ahead logs, run before LevelDB opens a database.
//
// A crash can leave the last record of a write-ahead log half written: the sectors written
// before the power went keep their bytes, the rest read as zeros. LevelDB with
// paranoid_checks refuses such a log ("checksum mismatch"), which would leave the node
// unbootable although nothing it acknowledged is lost (an acknowledged write was synced, and
// a synced record is whole). TrimTornTails cuts such a tail off, and nothing else. Only the
// newest log can be torn (DurableEnv syncs each log before the next is written), and in it a
// record that fails its checksum counts as torn only when it is the last thing in the file
// (nothing but zeros after it) and either it is the first or a middle fragment of a record
// (which never reached its last fragment, so was never synced), or the file reads as zeros
// from a sector boundary inside it on (no record we write ends in zeros: kv/keys.h's batch
// trailer). Any other bad record (a bit flipped at rest, say) is left for LevelDB to report as
// Corruption, and the node does not start.
//
// Record format (LevelDB's log_format.h): 32 KiB blocks of records, each a 7-byte header
// (masked CRC-32C of type and payload, 2-byte length, 1-byte type) and its payload; a block
// tail shorter than a header is zero padding.
//
// Thread-safety: call before the database is opened, from one thread.
#pragma once

#include <string>

#include "common/status.h"

namespace leveldb {
class Env;
}

namespace kv {

// Cuts a torn tail off the newest write-ahead log ("*.log") of the database in `db_dir`. Sets
// *trimmed to the number of files cut. A missing directory is not an error. Returns Corruption
// for a last record that is whole but whose length field is damaged, which LevelDB would drop
// silently as a cut tail.
common::Status TrimTornTails(leveldb::Env* env, const std::string& db_dir, int* trimmed);

// For a Raft log database whose open failed on a bad write-ahead log record: the Raft log
// indexes that record held (read from its WriteBatch as far as it parses), or else the index
// after the last entry of the records before it. Returns e.g. "index 42", "indexes 40..47" or
// "an index after 39"; "" if no bad record is found.
std::string LocateBadLogEntries(leveldb::Env* env, const std::string& db_dir);

}  // namespace kv
