// LabHarness: the helpers of the MIT 6.824 Raft tester (raft/config.go), on sim::Cluster with
// virtual time: checkOneLeader, checkTerms, checkNoLeader, nCommitted, wait, one, crash1,
// start1, connect, disconnect, setunreliable, setlongreordering. Sleeps advance the virtual
// clock. A fatal check reports a GoogleTest failure and ends the test (LabFatal).
//
// Indexes are command indexes, as the lab's: the k-th client command is index k, whatever
// no-ops the leaders appended.
//
// RAFTKV_LAB_VERBOSE=1 prints the simulator's trace (elections, deliveries, faults).
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "tests/sim/cluster.h"

namespace sim {

struct LabFatal {};

class LabHarness {
 public:
  // `reliable == false` turns on labrpc's unreliable network. `snapshot` turns on the lab's
  // applierSnap (a snapshot every 10 commands).
  LabHarness(int n, bool reliable, bool snapshot, uint64_t seed);
  ~LabHarness();

  Cluster& cluster() { return *cluster_; }
  int n() const { return n_; }
  Rng& rng() { return rng_; }

  void Sleep(Time t);
  [[noreturn]] void Fatal(const std::string& what);

  int CheckOneLeader();
  raft::Term CheckTerms();
  void CheckNoLeader();
  // How many servers applied command index `index`; the command they applied.
  int NCommitted(int64_t index, std::string* cmd = nullptr);
  // Polls NCommitted with backoff; returns the command, or "" when some term passed
  // start_term (start_term >= 0). Fatal if fewer than n servers committed in time.
  std::string Wait(int64_t index, int n, int64_t start_term, bool* term_moved);
  int64_t One(const std::string& cmd, int expected_servers, bool retry);

  void Disconnect(int i) { cluster_->Disconnect(i); }
  void Connect(int i) { cluster_->Connect(i); }
  void Crash(int i) { cluster_->Crash(i); }
  void Restart(int i) { cluster_->Restart(i); }
  void SetUnreliable(bool on) { cluster_->SetReliable(!on); }
  void SetLongReordering(bool on) { cluster_->SetLongReordering(on); }
  Cluster::StartResult Start(int i, const std::string& cmd) { return cluster_->Start(i, cmd); }
  bool IsLeader(int i);
  raft::Term TermOf(int i);

  // Largest persisted Raft state over all servers (lab LogSize).
  size_t LogSize() const;
  std::string RandCmd() { return std::to_string(rng_.Uniform(1000000000)); }
  std::string RandString(size_t n);

 private:
  void CheckViolations();

  int n_;
  Rng rng_;
  std::unique_ptr<Cluster> cluster_;
};

}  // namespace sim
