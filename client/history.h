// The history recorder: one JSON line per client operation, in exactly the format that the
// linearizability checker reads (tests/linearizability/checker.h, "History files"):
//
//   {"client":1,"op":"set","key":"k","value":"v","output":null,"call":123,"return":456,
//    "status":"ok"}
//
// Fields are written in that order. `value` is the argument of set and append (null for the
// other ops); `output` is what get read (a string, or null for nil), the integer that incr /
// append / del returned, or null (set, or not recorded); an unknown op's `return` is null.
//
// Strings: '"' and '\' are escaped, bytes below 0x20 are written as \u00XX, valid UTF-8 is
// written as it is. A byte >= 0x80 that is not part of valid UTF-8 is written as \u00XX (its
// Latin-1 reading), which keeps the file valid UTF-8 JSON but does NOT round-trip: a reader
// gets back the two-byte UTF-8 encoding of U+00XX. So keys and values round-trip exactly only
// when they are ASCII or valid UTF-8 (the load tools use ASCII); lossy_lines() counts the lines
// that held such a string.
//
// Thread-safety: HistoryRecorder is thread-safe (Record from any number of threads; each line
// is written whole and flushed). NowNanos, FillFromResult and FormatHistoryLine are pure.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "client/client.h"
#include "common/status.h"

namespace raftkv::client {

// steady_clock nanoseconds: the history's time base (comparable across threads of a process).
int64_t NowNanos();

struct HistoryOp {
  int64_t client = 0;
  std::string op;  // "get" "set" "append" "del" "incr"
  std::string key;
  std::optional<std::string> value;   // set/append argument
  std::optional<std::string> output;  // get: value read (nullopt = nil)
  std::optional<int64_t> output_int;  // incr: new value; append: new length; del: count
  int64_t call = 0, ret = 0;
  Outcome status = Outcome::kOk;
};

// Fills op.status/output/output_int from a Result (by op kind) -- convenience for callers.
// kOk: get takes a bulk reply as output (nil or anything else: nullopt); incr/append/del take
// an integer reply as output_int. kFailed / kUnknown: both outputs cleared. op.call and op.ret
// are left to the caller.
void FillFromResult(const Result& r, HistoryOp* op);

// The JSON line for `op` (without the newline). For the five known ops, value and output are
// written as the checker requires whatever the optionals hold: set/append always get a string
// value ("" if none), the others null; get's output is a string or null, set's null, the
// integer ops' an integer or null. An unknown op name is written with what it holds.
// *lossy (if not null) is set to whether some string held invalid UTF-8 (see above).
std::string FormatHistoryLine(const HistoryOp& op, bool* lossy = nullptr);

class HistoryRecorder {  // thread-safe; one JSON line per Record, flushed
 public:
  // Creates (or truncates) the file at `path`. IOError if it cannot be opened.
  static common::Status Open(const std::string& path, std::unique_ptr<HistoryRecorder>* out);
  ~HistoryRecorder();
  HistoryRecorder(const HistoryRecorder&) = delete;
  HistoryRecorder& operator=(const HistoryRecorder&) = delete;

  // Appends one line and flushes it. A write error is kept and returned by Close(); lines
  // recorded after Close() are dropped.
  void Record(const HistoryOp& op);
  // Flushes and closes the file. Returns the first write error, if any.
  common::Status Close();

  // Lines written so far, and how many held strings that are not valid UTF-8.
  uint64_t lines() const;
  uint64_t lossy_lines() const;

 private:
  HistoryRecorder(std::FILE* file, std::string path);

  mutable std::mutex mu_;
  std::FILE* file_;  // null once closed
  std::string path_;
  common::Status error_;  // the first write error
  uint64_t lines_ = 0;
  uint64_t lossy_ = 0;
};

}  // namespace raftkv::client
