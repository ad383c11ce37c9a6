// Swarm runs: one random fault schedule per seed on sim::Cluster (cluster size 1, 3 or 5;
// fault rates drawn per seed; clients proposing throughout), checked after every event, then
// healed and checked for liveness and convergence.
//
// RunSeeds runs each seed in a child process, so a seed that trips a CHECK in the core is a
// reported failure, not the end of the run.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sim {

struct SwarmResult {
  bool ok = true;
  std::string failure;  // what was violated, when !ok
  int nodes = 0;
  int64_t commands = 0;  // commands committed
  double virtual_seconds = 0;
};

// Runs one seed in this process. `bugs` is a raft::Bug mask.
SwarmResult RunSwarmSeed(uint64_t seed, uint32_t bugs, bool verbose);

struct SwarmSummary {
  int64_t seeds = 0;
  int64_t failures = 0;
  std::vector<uint64_t> failing_seeds;
  std::vector<std::string> messages;  // one per failing seed
};

// Runs seeds [first, last], `jobs` at a time, each in a child process. With
// `stop_at_first_failure`, starts no new seed once one has failed.
SwarmSummary RunSeeds(uint64_t first, uint64_t last, uint32_t bugs, int jobs,
                      bool stop_at_first_failure = false);

// Bug names accepted by --bug, and their raft::Bug bits. Returns 0 for an unknown name.
uint32_t BugFromName(const std::string& name);
std::vector<std::string> BugNames();

}  // namespace sim
