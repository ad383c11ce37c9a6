// The search of checker.h: per key, Wing & Gong / Lowe backtracking over a linked list of
// call and return entries, memoized on (linearized bitset, model state).
#include "tests/linearizability/checker.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <limits>
#include <map>
#include <sstream>
#include <tuple>
#include <unordered_map>

#include "common/check.h"

namespace linearizability {
namespace {

using Clock = std::chrono::steady_clock;

// Parses `s` as Redis does for INCR: "0", or an optional '-' then [1-9][0-9]*, in int64.
bool ParseRedisInt64(const std::string& s, int64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  size_t digits = s[0] == '-' ? 1 : 0;
  if (digits == s.size()) return false;
  if (s[digits] == '0' && s.size() != 1) return false;  // leading zero, or "-0"
  for (size_t i = digits; i < s.size(); i++) {
    if (s[i] < '0' || s[i] > '9') return false;
  }
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

// Interned per-key model states, so a state is a small integer: id 0 is nil, every other
// id names one distinct string. Interning makes equal states compare in O(1), which keeps
// the memo cache cheap even when APPEND makes the values long.
class StateTable {
 public:
  static constexpr uint32_t kNil = 0;

  StateTable() { values_.push_back(nullptr); }

  uint32_t Intern(std::string s) {
    auto [it, inserted] = ids_.try_emplace(std::move(s), static_cast<uint32_t>(values_.size()));
    if (inserted) values_.push_back(&it->first);
    return it->second;
  }

  // REQUIRES: id != kNil.
  const std::string& Value(uint32_t id) const { return *values_[id]; }

  // The KV model for one key. Returns the state after `op` applied to `state`, or nullopt if
  // `op` cannot have produced its recorded output from `state`.
  std::optional<uint32_t> Step(const Operation& op, uint32_t state) {
    const bool checked = op.status == OpStatus::kOk;
    switch (op.kind) {
      case OpKind::kGet:
        if (!checked) return state;
        if (!op.output.has_value()) return state == kNil ? std::optional(state) : std::nullopt;
        if (state != kNil && Value(state) == *op.output) return state;
        return std::nullopt;
      case OpKind::kSet:
        return Intern(op.value);
      case OpKind::kAppend: {
        std::string next = state == kNil ? std::string() : Value(state);
        next += op.value;
        if (checked && op.output_int.has_value() &&
            *op.output_int != static_cast<int64_t>(next.size())) {
          return std::nullopt;
        }
        return Intern(std::move(next));
      }
      case OpKind::kDel:
        if (checked && op.output_int.has_value() && *op.output_int != (state == kNil ? 0 : 1)) {
          return std::nullopt;
        }
        return kNil;
      case OpKind::kIncr: {
        int64_t v = 0;
        if ((state != kNil && !ParseRedisInt64(Value(state), &v)) ||
            v == std::numeric_limits<int64_t>::max()) {
          // The command would have failed with an error and changed nothing: impossible for
          // an op that returned ok, a no-op for one of unknown outcome.
          if (checked) return std::nullopt;
          return state;
        }
        if (checked && op.output_int.has_value() && *op.output_int != v + 1) return std::nullopt;
        return Intern(std::to_string(v + 1));
      }
    }
    return std::nullopt;
  }

 private:
  std::unordered_map<std::string, uint32_t> ids_;
  std::vector<const std::string*> values_;  // by id; points at the keys of ids_
};

uint64_t SplitMix64(uint64_t* x) {
  uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

enum class SearchResult { kOk, kViolation, kTimeout };

// The search over one key's operations.
//
// Op ids inside the search are the positions of the ops sorted by (unknown last, return
// time): an op whose return entry the scan has passed is linearized, so the linearized set is
// always "every finite op up to some id, plus a few more", which the cache stores as the
// words between the full leading ones and the empty trailing ones. Unknown ops (return +inf)
// get their own word-aligned region at the end, stored whole.
class KeySearch {
 public:
  KeySearch(const std::vector<Operation>& history, std::vector<size_t> indices, int64_t max_steps,
            std::optional<Clock::time_point> deadline)
      : history_(history), max_steps_(max_steps), deadline_(deadline) {
    std::sort(indices.begin(), indices.end(), [&](size_t a, size_t b) {
      return std::make_tuple(Unknown(a), Return(a), history[a].call, a) <
             std::make_tuple(Unknown(b), Return(b), history[b].call, b);
    });
    index_ = std::move(indices);
    const size_t n = index_.size();
    finite_ = 0;
    while (finite_ < n && !Unknown(index_[finite_])) finite_++;
    finite_words_ = (finite_ + 63) / 64;
    unknown_words_ = (n - finite_ + 63) / 64;
    words_.assign(finite_words_ + unknown_words_, 0);
    fixed_.assign(n, StateTable::kNil);
    for (size_t i = 0; i < n; i++) {
      const Operation& op = history[index_[i]];
      if (op.kind == OpKind::kSet) fixed_[i] = states_.Intern(op.value);
      if (op.kind == OpKind::kGet && op.output.has_value()) fixed_[i] = states_.Intern(*op.output);
    }
    uint64_t seed = 0x5EEDull;
    zobrist_.resize(n);
    for (uint64_t& z : zobrist_) z = SplitMix64(&seed);

    // Entries: node 0 is the head; op i has call node 2i+1 and return node 2i+2.
    struct Event {
      int64_t time;
      int is_return;  // calls sort before returns at equal times
      uint32_t node;
    };
    std::vector<Event> events;
    events.reserve(2 * n);
    for (size_t i = 0; i < n; i++) {
      const Operation& op = history[index_[i]];
      events.push_back({op.call, 0, CallNode(i)});
      events.push_back({Return(index_[i]), 1, CallNode(i) + 1});
    }
    std::sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
      return std::tie(a.time, a.is_return, a.node) < std::tie(b.time, b.is_return, b.node);
    });
    next_.assign(2 * n + 1, kNone);
    prev_.assign(2 * n + 1, kNone);
    uint32_t last = kHead;
    for (const Event& e : events) {
      next_[last] = e.node;
      prev_[e.node] = last;
      last = e.node;
    }
  }

  SearchResult Run() {
    uint32_t state = StateTable::kNil;
    uint32_t entry = kHead;
    bool restart = true;  // scan again from the head of the list
    int64_t steps = 0;
    while (next_[kHead] != kNone) {
      steps++;
      if (max_steps_ > 0 && steps > max_steps_) return SearchResult::kTimeout;
      if (deadline_.has_value() && (steps & 4095) == 0 && Clock::now() > *deadline_) {
        return SearchResult::kTimeout;
      }
      if (restart) {
        restart = false;
        entry = next_[kHead];
        // Reads first. A GET that is a candidate (its call precedes every pending return)
        // and legal now can be linearized next without loss: in any linearization of the
        // rest it could be moved to the front, since it does not change the state and every
        // op that must precede it is already linearized. So it is placed at once and never
        // tried later on this branch (a "forced" choice).
        if (const uint32_t read = LegalReadCandidate(state); read != kNone) {
          SetBit(OpOf(read));
          if (CacheInsert(state)) {
            calls_.push_back({read, state, true});
            Lift(read);
            restart = true;
            continue;
          }
          ClearBit(OpOf(read));
          if (!recorded_) Record(state);
          if (!Backtrack(&state, &entry)) return SearchResult::kViolation;
          continue;
        }
      }
      if (IsCall(entry)) {
        const uint32_t id = OpOf(entry);
        const std::optional<uint32_t> after = Step(id, state);
        if (after.has_value()) {
          SetBit(id);
          if (CacheInsert(*after)) {
            calls_.push_back({entry, state, false});
            state = *after;
            Lift(entry);
            restart = true;
            continue;
          }
          ClearBit(id);
        }
        entry = next_[entry];
      } else {
        // The earliest pending return: its op could not be placed after this prefix.
        if (!recorded_ || calls_.size() > longest_prefix_.size()) Record(state);
        if (!Backtrack(&state, &entry)) return SearchResult::kViolation;
      }
    }
    return SearchResult::kOk;
  }

  // After kViolation: history indices of the longest prefix, in order, and of the ops that
  // could not come next; the model state after the prefix ("nil" or a quoted value).
  const std::vector<size_t>& longest_prefix() const { return longest_prefix_; }
  const std::vector<size_t>& unplaceable() const { return unplaceable_; }
  const std::string& state_after_prefix() const { return state_after_prefix_; }

 private:
  static constexpr uint32_t kHead = 0;
  static constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();

  // One op of the linearized prefix.
  struct Choice {
    uint32_t call;    // its call node
    uint32_t before;  // the state before it
    bool forced;      // a read placed first (see Run): no alternative to try on backtracking
  };

  struct CacheEntry {
    uint32_t state;
    uint32_t lo;      // first stored finite word
    uint32_t len;     // finite words stored
    uint64_t offset;  // into arena_: len finite words, then unknown_words_ words
  };

  bool Unknown(size_t index) const { return history_[index].status == OpStatus::kUnknown; }
  int64_t Return(size_t index) const {
    return Unknown(index) ? kInfiniteTime : history_[index].ret;
  }
  static uint32_t CallNode(size_t id) { return static_cast<uint32_t>(2 * id + 1); }
  static bool IsCall(uint32_t node) { return node % 2 == 1; }
  static uint32_t OpOf(uint32_t node) { return (node - 1) / 2; }

  // The model step of op `id` from `state`; see StateTable::Step.
  std::optional<uint32_t> Step(uint32_t id, uint32_t state) {
    const Operation& op = history_[index_[id]];
    switch (op.kind) {
      case OpKind::kGet:  // unknown GETs are not searched
        return state == fixed_[id] ? std::optional(state) : std::nullopt;
      case OpKind::kSet:
        return fixed_[id];
      default:
        return states_.Step(op, state);
    }
  }

  // Returns the call node of a GET that is a candidate and legal in `state`, or kNone.
  uint32_t LegalReadCandidate(uint32_t state) const {
    for (uint32_t node = next_[kHead]; node != kNone && IsCall(node); node = next_[node]) {
      const uint32_t id = OpOf(node);
      if (history_[index_[id]].kind == OpKind::kGet && fixed_[id] == state) return node;
    }
    return kNone;
  }

  // Undoes the last choice that has an alternative, restoring `state` and setting `entry` to
  // the next candidate to try. Returns false if there is none: the prefix cannot be extended.
  bool Backtrack(uint32_t* state, uint32_t* entry) {
    while (!calls_.empty()) {
      const Choice c = calls_.back();
      calls_.pop_back();
      *state = c.before;
      ClearBit(OpOf(c.call));
      Unlift(c.call);
      if (!c.forced) {
        *entry = next_[c.call];
        return true;
      }
    }
    return false;
  }

  // Unlinks op's call entry and its return entry (which comes later in the list).
  void Lift(uint32_t call) {
    const uint32_t ret = call + 1;
    next_[prev_[call]] = next_[call];
    prev_[next_[call]] = prev_[call];
    next_[prev_[ret]] = next_[ret];
    if (next_[ret] != kNone) prev_[next_[ret]] = prev_[ret];
  }

  // Undoes the matching Lift; lifts are undone in reverse order, so the neighbours recorded
  // in the entries are the right ones again.
  void Unlift(uint32_t call) {
    const uint32_t ret = call + 1;
    next_[prev_[ret]] = ret;
    if (next_[ret] != kNone) prev_[next_[ret]] = ret;
    next_[prev_[call]] = call;
    prev_[next_[call]] = call;
  }

  size_t WordOf(uint32_t id) const {
    return id < finite_ ? id / 64 : finite_words_ + (id - finite_) / 64;
  }
  uint64_t BitOf(uint32_t id) const {
    return uint64_t{1} << (id < finite_ ? id % 64 : (id - finite_) % 64);
  }
  uint64_t FullMask(size_t word) const {
    if (word + 1 < finite_words_ || finite_ % 64 == 0) return ~uint64_t{0};
    return (uint64_t{1} << (finite_ % 64)) - 1;
  }

  void SetBit(uint32_t id) {
    const size_t w = WordOf(id);
    words_[w] |= BitOf(id);
    hash_ ^= zobrist_[id];
    if (id >= finite_) return;
    hi_ = std::max(hi_, w + 1);
    while (lo_ < finite_words_ && words_[lo_] == FullMask(lo_)) lo_++;
  }

  void ClearBit(uint32_t id) {
    const size_t w = WordOf(id);
    words_[w] &= ~BitOf(id);
    hash_ ^= zobrist_[id];
    if (id >= finite_) return;
    lo_ = std::min(lo_, w);
    while (hi_ > 0 && words_[hi_ - 1] == 0) hi_--;
  }

  // Adds (current bitset, state) to the cache. Returns false if it was there already.
  bool CacheInsert(uint32_t state) {
    uint64_t mix = hash_ ^ (uint64_t{state} * 0xD6E8FEB86659FD93ull);
    const uint64_t key = SplitMix64(&mix);
    const uint32_t len = static_cast<uint32_t>(hi_ - lo_);
    const uint64_t* finite = words_.data() + lo_;
    const uint64_t* unknown = words_.data() + finite_words_;
    auto [begin, end] = cache_.equal_range(key);
    for (auto it = begin; it != end; ++it) {
      const CacheEntry& e = entries_[it->second];
      if (e.state != state || e.lo != lo_ || e.len != len) continue;
      const uint64_t* stored = arena_.data() + e.offset;
      if (std::equal(finite, finite + len, stored) &&
          std::equal(unknown, unknown + unknown_words_, stored + len)) {
        return false;
      }
    }
    entries_.push_back({state, static_cast<uint32_t>(lo_), len, arena_.size()});
    arena_.insert(arena_.end(), finite, finite + len);
    arena_.insert(arena_.end(), unknown, unknown + unknown_words_);
    cache_.emplace(key, static_cast<uint32_t>(entries_.size() - 1));
    return true;
  }

  // Remembers the current prefix as the longest one, with the candidates that follow it.
  void Record(uint32_t state) {
    recorded_ = true;
    longest_prefix_.clear();
    for (const Choice& c : calls_) longest_prefix_.push_back(index_[OpOf(c.call)]);
    unplaceable_.clear();
    for (uint32_t node = next_[kHead]; node != kNone && IsCall(node); node = next_[node]) {
      unplaceable_.push_back(index_[OpOf(node)]);
    }
    if (state == StateTable::kNil) {
      state_after_prefix_ = "nil";
    } else {
      const std::string& v = states_.Value(state);
      std::ostringstream out;
      out << '"' << v.substr(0, 80) << '"';
      if (v.size() > 80) out << "... (" << v.size() << " bytes)";
      state_after_prefix_ = out.str();
    }
  }

  const std::vector<Operation>& history_;
  const int64_t max_steps_;
  const std::optional<Clock::time_point> deadline_;

  std::vector<size_t> index_;  // op id -> index in history_
  size_t finite_ = 0;          // ids [0, finite_) have finite returns
  size_t finite_words_ = 0;
  size_t unknown_words_ = 0;

  std::vector<uint32_t> next_;  // the entry list, by node
  std::vector<uint32_t> prev_;

  StateTable states_;
  // By op id: for a GET, the state it read (interned); for a SET, the state it writes.
  std::vector<uint32_t> fixed_;
  std::vector<Choice> calls_;  // the linearized prefix, in order

  std::vector<uint64_t> words_;  // the linearized set
  std::vector<uint64_t> zobrist_;
  uint64_t hash_ = 0;  // XOR of zobrist_ over the linearized set
  size_t lo_ = 0;      // finite words [0, lo_) are full
  size_t hi_ = 0;      // finite words [hi_, finite_words_) are empty

  std::unordered_multimap<uint64_t, uint32_t> cache_;  // hash -> index in entries_
  std::vector<CacheEntry> entries_;
  std::vector<uint64_t> arena_;

  bool recorded_ = false;
  std::vector<size_t> longest_prefix_;
  std::vector<size_t> unplaceable_;
  std::string state_after_prefix_;
};

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s.substr(0, 80)) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
  if (s.size() > 80) out += "... (" + std::to_string(s.size()) + " bytes)";
  return out;
}

std::string Explain(const std::vector<Operation>& history, const std::string& key, size_t key_ops,
                    const KeySearch& search) {
  constexpr size_t kShownPrefix = 10;
  std::ostringstream out;
  const std::vector<size_t>& prefix = search.longest_prefix();
  out << "key " << Quote(key) << ": no linearization of its " << key_ops << " operations\n";
  out << "longest linearizable prefix: " << prefix.size() << " operations";
  if (prefix.size() > kShownPrefix) {
    out << " (the first " << prefix.size() - kShownPrefix << " not shown)";
  }
  out << "\n";
  for (size_t i = prefix.size() > kShownPrefix ? prefix.size() - kShownPrefix : 0;
       i < prefix.size(); i++) {
    out << "  #" << prefix[i] << " " << DescribeOperation(history[prefix[i]]) << "\n";
  }
  out << "state after it: " << search.state_after_prefix() << "\n";
  out << "could not be placed next:\n";
  for (size_t index : search.unplaceable()) {
    out << "  #" << index << " " << DescribeOperation(history[index]) << "\n";
  }
  return out.str();
}

}  // namespace

const char* VerdictName(Verdict verdict) {
  switch (verdict) {
    case Verdict::kOk:
      return "ok";
    case Verdict::kViolation:
      return "violation";
    case Verdict::kTimeout:
      return "timeout";
  }
  return "?";
}

std::string DescribeOperation(const Operation& op) {
  std::ostringstream out;
  out << "client " << op.client << " ";
  switch (op.kind) {
    case OpKind::kGet:
      out << "get(" << Quote(op.key) << ")";
      break;
    case OpKind::kSet:
      out << "set(" << Quote(op.key) << ", " << Quote(op.value) << ")";
      break;
    case OpKind::kAppend:
      out << "append(" << Quote(op.key) << ", " << Quote(op.value) << ")";
      break;
    case OpKind::kDel:
      out << "del(" << Quote(op.key) << ")";
      break;
    case OpKind::kIncr:
      out << "incr(" << Quote(op.key) << ")";
      break;
  }
  if (op.status == OpStatus::kOk) {
    if (op.kind == OpKind::kGet) {
      out << " -> " << (op.output.has_value() ? Quote(*op.output) : "nil");
    } else if (op.kind != OpKind::kSet && op.output_int.has_value()) {
      out << " -> " << *op.output_int;
    }
  }
  out << " [" << op.call << ", ";
  if (op.status == OpStatus::kUnknown) {
    out << "inf) unknown";
  } else {
    out << op.ret << "]";
    if (op.status == OpStatus::kFailed) out << " failed";
  }
  return out.str();
}

CheckResult Check(const std::vector<Operation>& history, const Options& options) {
  std::optional<Clock::time_point> deadline;
  if (options.timeout_ms > 0) {
    deadline = Clock::now() + std::chrono::milliseconds(options.timeout_ms);
  }
  std::map<std::string, std::vector<size_t>> by_key;
  for (size_t i = 0; i < history.size(); i++) {
    const Operation& op = history[i];
    if (op.status == OpStatus::kFailed) continue;
    // An unknown GET changes nothing and is checked against nothing.
    if (op.status == OpStatus::kUnknown && op.kind == OpKind::kGet) continue;
    CHECK(op.status == OpStatus::kUnknown || op.ret >= op.call)
        << "operation #" << i << " returns before its call: " << DescribeOperation(op);
    by_key[op.key].push_back(i);
  }

  CheckResult result;
  std::optional<std::string> timed_out;
  for (auto& [key, indices] : by_key) {
    if (deadline.has_value() && Clock::now() > *deadline) {
      if (!timed_out.has_value()) timed_out = key;
      break;
    }
    const size_t key_ops = indices.size();
    KeySearch search(history, std::move(indices), options.max_steps_per_key, deadline);
    switch (search.Run()) {
      case SearchResult::kOk:
        break;
      case SearchResult::kTimeout:
        if (!timed_out.has_value()) timed_out = key;
        break;
      case SearchResult::kViolation:
        result.verdict = Verdict::kViolation;
        result.key = key;
        result.longest_prefix = search.longest_prefix();
        result.unplaceable = search.unplaceable();
        result.explanation = Explain(history, key, key_ops, search);
        return result;
    }
  }
  if (timed_out.has_value()) {
    result.verdict = Verdict::kTimeout;
    result.key = *timed_out;
    result.explanation = "key " + Quote(*timed_out) + ": search budget exhausted\n";
  }
  return result;
}

}  // namespace linearizability
