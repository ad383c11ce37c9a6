// raftkv-sim: randomized swarm runs of the Raft core on the deterministic simulator.
//
//   raftkv-sim --seeds 1-10000 [--jobs 2] [--bug NAME ...]
//   raftkv-sim --seed N [--verbose] [--bug NAME ...]
//
// Prints each failing seed with its replay command and ends with exactly one summary line:
//   seeds=<n> failures=<f> seconds=<s>
// Exit status 0 only when failures=0.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tests/sim/swarm.h"

namespace {

void Usage() {
  std::fprintf(stderr,
               "usage: raftkv-sim --seeds A-B [--jobs J] [--bug NAME]...\n"
               "       raftkv-sim --seed N [--verbose] [--bug NAME]...\n"
               "bugs:");
  for (const std::string& b : sim::BugNames()) std::fprintf(stderr, " %s", b.c_str());
  std::fprintf(stderr, "\n");
}

bool ParseU64(const char* s, uint64_t* out) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0') return false;
  *out = v;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t first = 0, last = 0;
  bool have_range = false, single = false, verbose = false;
  uint32_t bugs = 0;
  std::string bug_flags;
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  int jobs = cpus > 0 ? static_cast<int>(cpus) : 1;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "raftkv-sim: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--seeds") {
      std::string v = value();
      size_t dash = v.find('-');
      if (dash == std::string::npos || !ParseU64(v.substr(0, dash).c_str(), &first) ||
          !ParseU64(v.substr(dash + 1).c_str(), &last) || first > last) {
        std::fprintf(stderr, "raftkv-sim: --seeds wants A-B with A <= B, got '%s'\n", v.c_str());
        return 2;
      }
      have_range = true;
    } else if (a == "--seed") {
      if (!ParseU64(value(), &first)) {
        std::fprintf(stderr, "raftkv-sim: --seed wants a number\n");
        return 2;
      }
      last = first;
      single = true;
    } else if (a == "--verbose") {
      verbose = true;
    } else if (a == "--jobs") {
      uint64_t j;
      if (!ParseU64(value(), &j) || j == 0 || j > 64) {
        std::fprintf(stderr, "raftkv-sim: --jobs wants 1..64\n");
        return 2;
      }
      jobs = static_cast<int>(j);
    } else if (a == "--bug") {
      std::string name = value();
      uint32_t b = sim::BugFromName(name);
      if (b == 0) {
        std::fprintf(stderr, "raftkv-sim: unknown bug '%s'\n", name.c_str());
        Usage();
        return 2;
      }
      bugs |= b;
      bug_flags += " --bug " + name;
    } else if (a == "--help" || a == "-h") {
      Usage();
      return 0;
    } else {
      std::fprintf(stderr, "raftkv-sim: unknown argument '%s'\n", a.c_str());
      Usage();
      return 2;
    }
  }
  if (have_range == single) {
    Usage();
    return 2;
  }
  auto t0 = std::chrono::steady_clock::now();
  int64_t seeds = 0, failures = 0;
  if (single && verbose) {
    // In-process, so the trace and any CHECK failure go straight to the terminal.
    sim::SwarmResult r = sim::RunSwarmSeed(first, bugs, true);
    seeds = 1;
    if (!r.ok) {
      failures = 1;
      std::printf("FAIL seed=%llu: %s\n", static_cast<unsigned long long>(first),
                  r.failure.c_str());
    } else {
      std::printf("ok seed=%llu nodes=%d commands=%lld virtual_seconds=%.1f\n",
                  static_cast<unsigned long long>(first), r.nodes,
                  static_cast<long long>(r.commands), r.virtual_seconds);
    }
  } else {
    sim::SwarmSummary s = sim::RunSeeds(first, last, bugs, jobs);
    seeds = s.seeds;
    failures = s.failures;
    for (size_t k = 0; k < s.failing_seeds.size(); k++) {
      std::printf("FAIL seed=%llu: %s\n  replay: raftkv-sim --seed %llu --verbose%s\n",
                  static_cast<unsigned long long>(s.failing_seeds[k]), s.messages[k].c_str(),
                  static_cast<unsigned long long>(s.failing_seeds[k]), bug_flags.c_str());
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("seeds=%lld failures=%lld seconds=%.1f\n", static_cast<long long>(seeds),
              static_cast<long long>(failures), secs);
  return failures == 0 ? 0 : 1;
}
