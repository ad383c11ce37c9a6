// The lost/duplicated-append check of appends.h.
#include "tests/linearizability/appends.h"

#include <algorithm>
#include <limits>
#include <map>
#include <sstream>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

namespace linearizability {
namespace {

// Whether `token` is non-empty, ends with the separator and holds no other.
bool IsWellFormedToken(std::string_view token) {
  return !token.empty() && token.back() == kAppendTokenSeparator &&
         token.find(kAppendTokenSeparator) == token.size() - 1;
}

// Cuts `value` after each separator; a rest without one is a piece of its own.
std::vector<std::string_view> SplitPieces(std::string_view value) {
  std::vector<std::string_view> pieces;
  while (!value.empty()) {
    const size_t end = value.find(kAppendTokenSeparator);
    const size_t length = end == std::string_view::npos ? value.size() : end + 1;
    pieces.push_back(value.substr(0, length));
    value.remove_prefix(length);
  }
  return pieces;
}

// Quotes a token for a message; it may hold anything (a corrupt piece is arbitrary bytes).
std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[static_cast<unsigned char>(c) >> 4];
      out += kHex[static_cast<unsigned char>(c) & 0xf];
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

void ListTokens(std::ostringstream& out, const char* what, const std::vector<std::string>& tokens,
                size_t max_tokens) {
  if (tokens.empty()) return;
  out << "  " << what << " (" << tokens.size() << "):";
  for (size_t i = 0; i < tokens.size() && i < max_tokens; i++) out << " " << Quote(tokens[i]);
  if (tokens.size() > max_tokens) out << " ...";
  out << "\n";
}

// Checks one append key; `ops` are its operations' indices into `history`.
common::Status CheckKey(const std::vector<Operation>& history, const std::string& key,
                        const std::vector<size_t>& ops, AppendKeyReport* report) {
  report->key = key;
  int64_t last_return = std::numeric_limits<int64_t>::min();
  for (const size_t i : ops) {
    const Operation& op = history[i];
    switch (op.kind) {
      case OpKind::kGet:
        break;
      case OpKind::kAppend:
        if (op.status == OpStatus::kOk) report->ok_appends++;
        if (op.status == OpStatus::kUnknown) report->unknown_appends++;
        if (op.status == OpStatus::kFailed) report->failed_appends++;
        if (op.status != OpStatus::kUnknown) last_return = std::max(last_return, op.ret);
        break;
      default:
        return common::Status::InvalidArgument(
            "key " + Quote(key) + " has APPENDs and other writes: " + DescribeOperation(op));
    }
  }

  const Operation* final_read = nullptr;
  for (const size_t i : ops) {
    const Operation& op = history[i];
    if (op.kind != OpKind::kGet || op.status != OpStatus::kOk || op.call <= last_return) continue;
    if (final_read == nullptr || op.call > final_read->call) final_read = &op;
  }
  if (final_read == nullptr) {
    return common::Status::InvalidArgument(
        "key " + Quote(key) + " has no final read (an ok GET called after every APPEND returned)");
  }
  report->final_value = final_read->output.value_or("");

  // How often each piece occurs, and the order of first occurrence.
  std::unordered_map<std::string_view, int64_t> seen;
  std::vector<std::string_view> order;
  for (const std::string_view piece : SplitPieces(report->final_value)) {
    report->pieces++;
    if (seen[piece]++ == 0) order.push_back(piece);
  }

  std::unordered_set<std::string_view> may_be_present;  // tokens of ok and unknown APPENDs
  for (const size_t i : ops) {
    const Operation& op = history[i];
    if (op.kind != OpKind::kAppend || op.status == OpStatus::kFailed) continue;
    may_be_present.insert(op.value);
    if (op.status == OpStatus::kOk && !seen.contains(op.value)) report->lost.push_back(op.value);
  }
  for (const std::string_view piece : order) {
    if (seen[piece] > 1) report->duplicated.emplace_back(piece);
    if (!may_be_present.contains(piece)) report->corrupt.emplace_back(piece);
  }
  return common::Status::OK();
}

}  // namespace

std::string AppendCheckResult::Explain(size_t max_tokens) const {
  std::ostringstream out;
  for (const AppendKeyReport& key : keys) {
    if (key.lost.empty() && key.duplicated.empty() && key.corrupt.empty()) continue;
    out << "key " << Quote(key.key) << ": " << key.ok_appends << " ok, " << key.unknown_appends
        << " unknown, " << key.failed_appends << " failed APPENDs; the final read holds "
        << key.pieces << " tokens\n";
    ListTokens(out, "lost", key.lost, max_tokens);
    ListTokens(out, "duplicated", key.duplicated, max_tokens);
    ListTokens(out, "corrupt", key.corrupt, max_tokens);
  }
  return out.str();
}

common::Status CheckAppends(const std::vector<Operation>& history, AppendCheckResult* result) {
  *result = AppendCheckResult();
  std::map<std::string, std::vector<size_t>> by_key;  // sorted, for a stable report
  std::unordered_map<std::string_view, size_t> token_owner;
  for (size_t i = 0; i < history.size(); i++) {
    const Operation& op = history[i];
    by_key[op.key].push_back(i);
    if (op.kind != OpKind::kAppend) continue;
    if (!IsWellFormedToken(op.value)) {
      return common::Status::InvalidArgument(
          "operation #" + std::to_string(i) + " appends " + Quote(op.value) +
          ", which is not one token ending with '" + kAppendTokenSeparator + "'");
    }
    const auto [it, inserted] = token_owner.emplace(op.value, i);
    if (!inserted) {
      return common::Status::InvalidArgument("operations #" + std::to_string(it->second) +
                                             " and #" + std::to_string(i) + " append the same " +
                                             Quote(op.value));
    }
  }
  for (const auto& [key, ops] : by_key) {
    const bool has_append = std::any_of(
        ops.begin(), ops.end(), [&](size_t i) { return history[i].kind == OpKind::kAppend; });
    if (!has_append) continue;
    AppendKeyReport report;
    common::Status s = CheckKey(history, key, ops, &report);
    if (!s.ok()) return s;
    result->lost += static_cast<int64_t>(report.lost.size());
    result->duplicated += static_cast<int64_t>(report.duplicated.size());
    result->corrupt += static_cast<int64_t>(report.corrupt.size());
    result->keys.push_back(std::move(report));
  }
  return common::Status::OK();
}

}  // namespace linearizability
