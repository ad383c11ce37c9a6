// raftkv-lincheck: checks a JSON-lines history (format in checker.h) for linearizability, or
// for lost and duplicated appends.
//
//   raftkv-lincheck [--timeout-ms N] [--max-steps N] <history.jsonl>
//
// Prints "linearizable: yes|no|timeout" and, unless yes, the explanation. Exit status:
// 0 linearizable, 1 not linearizable, 2 timeout, 3 bad usage or unreadable history.
//
//   raftkv-lincheck --appends <history.jsonl>
//
// The lost/duplicated-append check of appends.h: prints each key with a problem and its
// tokens, then one last line `lost=<l> duplicated=<d> corrupt=<c>`. Exit status: 0 when all
// three are 0, 1 otherwise, 3 bad usage, an unreadable history or one the check cannot judge
// (e.g. an append key without a final read).
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string_view>
#include <vector>

#include "tests/linearizability/appends.h"
#include "tests/linearizability/checker.h"

namespace {

int Usage() {
  std::cerr << "usage: raftkv-lincheck [--timeout-ms N] [--max-steps N] <history.jsonl>\n"
               "       raftkv-lincheck --appends <history.jsonl>\n";
  return 3;
}

bool ParseFlagValue(const char* text, int64_t* out) {
  const std::string_view s(text);
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size() && *out >= 0;
}

// The --appends mode; returns the exit status.
int CheckAppends(const char* path, const std::vector<linearizability::Operation>& history) {
  linearizability::AppendCheckResult result;
  common::Status s = linearizability::CheckAppends(history, &result);
  if (!s.ok()) {
    std::cerr << "raftkv-lincheck: " << path << ": cannot check appends: " << s.ToString() << "\n";
    return 3;
  }
  std::cout << result.Explain() << "lost=" << result.lost << " duplicated=" << result.duplicated
            << " corrupt=" << result.corrupt << "\n";
  return result.ok() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  linearizability::Options options;
  const char* path = nullptr;
  bool appends = false;
  bool search_flags = false;
  for (int i = 1; i < argc; i++) {
    const std::string_view arg(argv[i]);
    if (arg == "--appends") {
      appends = true;
    } else if ((arg == "--timeout-ms" || arg == "--max-steps") && i + 1 < argc) {
      int64_t* target = arg == "--timeout-ms" ? &options.timeout_ms : &options.max_steps_per_key;
      if (!ParseFlagValue(argv[++i], target)) return Usage();
      search_flags = true;
    } else if (path == nullptr && !arg.starts_with("-")) {
      path = argv[i];
    } else {
      return Usage();
    }
  }
  if (path == nullptr || (appends && search_flags)) return Usage();

  std::ifstream in(path);
  if (!in) {
    std::cerr << "raftkv-lincheck: cannot open " << path << ": " << std::strerror(errno) << "\n";
    return 3;
  }
  std::vector<linearizability::Operation> history;
  common::Status s = linearizability::ReadHistory(in, &history);
  if (!s.ok()) {
    std::cerr << "raftkv-lincheck: " << path << ": " << s.ToString() << "\n";
    return 3;
  }

  if (appends) return CheckAppends(path, history);

  const linearizability::CheckResult result = linearizability::Check(history, options);
  switch (result.verdict) {
    case linearizability::Verdict::kOk:
      std::cout << "linearizable: yes\n";
      return 0;
    case linearizability::Verdict::kViolation:
      std::cout << "linearizable: no\n" << result.explanation;
      return 1;
    case linearizability::Verdict::kTimeout:
      std::cout << "linearizable: timeout\n" << result.explanation;
      return 2;
  }
  return 3;
}
