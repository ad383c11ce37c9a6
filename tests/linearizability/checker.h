// A linearizability checker for histories of the KV model (GET, SET, APPEND, DEL, INCR).
//
// A history is linearizable if every operation can be given a single point inside its own
// [call, return] interval such that replaying the operations in that order through the
// sequential KV model yields exactly the outputs the clients saw.
//
// Algorithm (raft-lab-scenarios.md §5; Wing & Gong, Lowe, Horn & Kroening / Porcupine):
//  1. Partition by key. Every KV operation touches one key and keys are independent, so the
//     history is linearizable iff each key's sub-history is (locality, Herlihy & Wing).
//  2. Per key, each operation becomes a call entry and a return entry, sorted by time with
//     calls before returns on ties (touching intervals count as overlapping), in a doubly
//     linked list. The search scans from the head: a call entry is a candidate to linearize
//     now; if the model accepts it and (linearized set, state) is not in the memo cache, the op
//     is "lifted" out of the list (both entries, O(1)) and pushed on a stack, and the scan
//     restarts. Reaching a return entry means its op could not be placed before its return:
//     pop the last choice, "unlift" it and try the next candidate. An empty list means a
//     linearization was found; an empty stack at a return entry means there is none.
//  3. The memo cache holds (bitset of linearized ops, model state) pairs already explored
//     (Lowe): two paths that linearized the same set and reached the same state have the same
//     future. States are interned strings; bitsets are stored trimmed of their full leading
//     and empty trailing words, so the cache stays small on long histories.
//  4. Reads first: a GET that is a candidate and legal in the current state is placed at
//     once and not revisited on backtracking (it can always be moved to the front of any
//     linearization of the rest). This cuts the search on read-heavy histories tenfold.
//  Cost: a linearizable history of thousands of ops per key from ~10 clients checks in tens
//  of milliseconds; proving a violation explores every reachable (set, state) and takes
//  longer, and each pending unknown op multiplies that space, hence the budgets in Options.
//
// Outcomes:
//  * kOk: the op took effect exactly once between its call and its return.
//  * kFailed: the op definitely did not take effect (an error reply, e.g. INCR on a
//    non-integer); it is left out of the history altogether.
//  * kUnknown: the client gave up (timeout, lost connection). The op may have taken effect at
//    any point after its call, or never: its return time is +infinity and its output is not
//    checked. "Never" needs no special case: an op with an infinite return can always be
//    linearized after every other op, where nobody observes it. (An unknown GET has no effect
//    and checks nothing, so it is dropped.) An unknown INCR on a non-integer state is a no-op.
//
// Thread-safety: Check and the reader are pure functions; distinct calls may run concurrently.
#pragma once

#include <cstdint>
#include <istream>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace linearizability {

enum class OpKind { kGet, kSet, kAppend, kDel, kIncr };

enum class OpStatus {
  kOk,       // completed; the output is checked
  kFailed,   // definitely not applied; excluded from the history
  kUnknown,  // may have been applied at any point after call, or never; output not checked
};

// Return time of an operation whose return is +infinity (kUnknown ops are given this).
inline constexpr int64_t kInfiniteTime = std::numeric_limits<int64_t>::max();

// One client operation on one key. Times are from one monotonic clock (e.g. steady_clock
// nanoseconds); any integers work as long as they are comparable across clients.
struct Operation {
  int64_t client = 0;
  OpKind kind = OpKind::kGet;
  std::string key;
  std::string value;  // SET / APPEND argument; empty otherwise
  // GET: the value read; nullopt is nil. Ignored for other kinds.
  std::optional<std::string> output;
  // INCR: the new value returned. APPEND: the new length. DEL: the number of keys removed
  // (0 or 1). nullopt: not recorded, so not checked. Ignored for GET and SET.
  std::optional<int64_t> output_int;
  int64_t call = 0;
  int64_t ret = 0;  // REQUIRES: ret >= call unless status == kUnknown (then ignored)
  OpStatus status = OpStatus::kOk;

  friend bool operator==(const Operation&, const Operation&) = default;
};

struct Options {
  // Search steps allowed per key before giving up with kTimeout; 0 means no limit.
  int64_t max_steps_per_key = 0;
  // Wall-clock budget for the whole check in milliseconds; 0 means no limit.
  int64_t timeout_ms = 0;
};

enum class Verdict { kOk, kViolation, kTimeout };

struct CheckResult {
  Verdict verdict = Verdict::kOk;
  // The key that is not linearizable (kViolation) or whose search ran out of budget
  // (kTimeout). A violation is reported in preference to a timeout on another key.
  std::string key;
  // kViolation only, as indices into the history given to Check: the longest linearizable
  // prefix found, in linearization order, and the ops that were the candidates to come next
  // (every op whose call precedes the earliest pending return, that return's op included),
  // none of which could be placed after that prefix.
  std::vector<size_t> longest_prefix;
  std::vector<size_t> unplaceable;
  // Human-readable account of the above (several lines), empty when kOk.
  std::string explanation;
};

// Checks `history` against the KV model, key by key (in sorted key order), stopping at the
// first key that is not linearizable.
CheckResult Check(const std::vector<Operation>& history, const Options& options = {});

// "ok", "violation", "timeout".
const char* VerdictName(Verdict verdict);

// One-line description, e.g. `client 3 get("k") -> "v" [10, 20]`.
std::string DescribeOperation(const Operation& op);

// ---------------------------------------------------------------------------------------
// History files: JSON lines, one operation per line, one flat object per line:
//
//   {"client":1,"op":"set","key":"k","value":"v","output":null,"call":123,"return":456,
//    "status":"ok"}
//
// Fields (no others are allowed, none may repeat):
//   client  integer, required.
//   op      "get" | "set" | "append" | "del" | "incr", required.
//   key     string, required.
//   value   string, required for set and append; must be null or absent otherwise.
//   output  optional (absent = null). get: the string read, or null for nil.
//           incr / append / del: integer (new value / new length / count removed) or null
//           (not checked). set: null or any string (ignored).
//   call    integer, required.
//   return  integer >= call, required unless status is "unknown" (then ignored: +infinity;
//           may be null or absent).
//   status  "ok" | "failed" | "unknown", required.
// Values are strings (with \" \\ \/ \b \f \n \r \t and \uXXXX escapes, surrogate pairs
// joined into UTF-8), integers (64-bit, no fraction or exponent) or null; nothing else.
// Blank lines are skipped. Any other deviation is an error naming its line number.

// Parses a history. Returns InvalidArgument("line N: ...") on the first malformed line.
common::Status ReadHistory(std::istream& in, std::vector<Operation>* history);
common::Status ReadHistoryFromString(std::string_view text, std::vector<Operation>* history);

// Formats one operation as one JSON line (without the trailing newline) that ReadHistory
// reads back as the same operation (an unknown op's return is written as null).
std::string ToJsonLine(const Operation& op);

}  // namespace linearizability
