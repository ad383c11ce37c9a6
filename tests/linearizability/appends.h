// The lost/duplicated-append check: did every acknowledged APPEND land exactly once?
//
// A load that APPENDs a unique token to a key each time (e.g. "c3.17;": client 3's 17th
// append) and reads every key once at the end, after all of its operations returned, leaves a
// final value that must hold each acknowledged token exactly once. This is much cheaper than
// the linearizability search (linear in the history) and names the exact writes that were
// lost or applied twice, which is what a broken deduplication of retried requests produces.
//
// Per key that has at least one APPEND (an "append key"):
//  * Tokens: every APPEND's value is one token. A token is non-empty, ends with
//    kAppendTokenSeparator and holds no other separator; no two APPENDs of the history (on
//    any key) carry the same token. Anything else is rejected as bad input.
//  * The final read: among the key's GETs with status kOk whose call comes after the return
//    of every APPEND on the key whose status is not kUnknown, the one with the latest call.
//    (Other GETs do not count: reads change nothing, so they need not have returned.) An
//    append key without a final read is bad input. Its output nil reads as "".
//  * The final value is cut after each separator into pieces; a trailing piece without a
//    separator is a piece of its own.
//  * lost: tokens of kOk APPENDs that are not among the pieces.
//  * duplicated: distinct tokens found among the pieces more than once (whatever the status
//    of their APPEND).
//  * corrupt: pieces that are no token of a kOk or kUnknown APPEND on this key (never issued,
//    issued on another key, cut short, or the token of a kFailed APPEND, which must not have
//    been applied).
// kUnknown APPENDs may or may not be present: they are neither lost nor corrupt.
// An append key may have no SET, DEL or INCR (bad input): the check assumes append-only keys.
// Keys without APPENDs are ignored.
//
// Thread-safety: CheckAppends is a pure function.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "tests/linearizability/checker.h"

namespace linearizability {

inline constexpr char kAppendTokenSeparator = ';';

// The outcome for one append key.
struct AppendKeyReport {
  std::string key;
  std::string final_value;  // the output of the final read ("" for nil)
  int64_t ok_appends = 0;
  int64_t unknown_appends = 0;
  int64_t failed_appends = 0;
  int64_t pieces = 0;                   // how many pieces the final value holds
  std::vector<std::string> lost;        // in the order of the history
  std::vector<std::string> duplicated;  // in the order of their first occurrence
  std::vector<std::string> corrupt;     // in the order of the final value, each piece once
};

struct AppendCheckResult {
  std::vector<AppendKeyReport> keys;  // sorted by key
  // Sums over the keys.
  int64_t lost = 0;
  int64_t duplicated = 0;
  int64_t corrupt = 0;

  bool ok() const { return lost == 0 && duplicated == 0 && corrupt == 0; }
  // A few lines naming each key with a problem and its tokens (at most `max_tokens` of each
  // kind per key); empty when ok().
  std::string Explain(size_t max_tokens = 10) const;
};

// Runs the check on `history`. Returns InvalidArgument for histories it cannot judge (see
// above: malformed tokens, a token used twice, an append key with other writes or without a
// final read); then *result is unspecified.
common::Status CheckAppends(const std::vector<Operation>& history, AppendCheckResult* result);

}  // namespace linearizability
