// The harness of the KV lab suite (raft-lab-scenarios.md §3) on real raftkv-server processes:
// LabCluster (the lab's config: servers, network faults, crashes, log-size checks), Clerk (the
// lab's clerk on the client library, logging every operation into a History), the lab's
// value checks (checkClntAppends, checkConcurrentAppends), GenericTest and GenericTestSpeed.
// kvlab_test.cc describes how the lab's knobs map onto processes. The environment variable
// KVLAB_SERVER_FLAGS="key=value,..." adds flags to every node (to see the suite fail on a
// server broken on purpose, e.g. KVLAB_SERVER_FLAGS=debug-unsafe=no-dedup).
//
// Thread-safety: a LabCluster is driven from the test's thread, except Partition and
// ConnectAll, which only talk to the nodes over fresh connections and may run on another
// thread while the test's thread does not touch the cluster. A Clerk belongs to one thread. A
// History may be appended to from any thread.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "client/client.h"
#include "tests/integration/cluster.h"
#include "tests/linearizability/checker.h"

namespace kvlab {

using raftkv_it::Clock;
using raftkv_it::Millis;

// The lab's maxraftstate values.
inline constexpr int kNoSnapshots = -1;
inline constexpr int kMaxRaftState = 1000;
// maxraftstate 1000 maps to a snapshot every this many applied entries, keeping no tail.
inline constexpr uint64_t kSnapshotEntries = 20;
// "logs were not trimmed" allows 8 * maxraftstate: here 8 * kSnapshotEntries entries between
// a node's snapshot and its last entry, plus this slack: a snapshot is taken on the storage
// thread beside applying, so up to one interval more may have been applied (and appended)
// while the latest one was being written.
inline constexpr uint64_t kLogSlackEntries = kSnapshotEntries;
inline constexpr uint64_t kMaxLogEntries = 8 * kSnapshotEntries + kLogSlackEntries;

// The lab's clerk never gives up; ours gives up after this long (the op is then unknown).
inline constexpr Millis kOpTimeout(60000);

// The operations of one test, for the linearizability checker.
class History {
 public:
  void Add(linearizability::Operation op);
  size_t size() const;
  // Runs the checker (with a 30 s budget): fails the test on a violation, printing the
  // checker's explanation; on a timeout prints a note and passes, as the lab does.
  void Check() const;

 private:
  mutable std::mutex mu_;
  std::vector<linearizability::Operation> ops_;
};

// The lab's Clerk: Get, Put (SET) and Append on the client library, every operation logged
// into a History (if any) with its call and return times. An operation that did not complete
// within kOpTimeout is logged as unknown; one that definitely did not take effect is left out.
class Clerk {
 public:
  using Outcome = raftkv::client::Outcome;

  // `client_id` names the clerk in the history.
  Clerk(raftkv::client::Options options, History* history, int64_t client_id);
  Clerk(const Clerk&) = delete;
  Clerk& operator=(const Clerk&) = delete;

  // Opens the exactly-once session, retrying for up to 30 s.
  ::testing::AssertionResult Open();
  // A missing key reads as "" (the lab's model).
  Outcome Get(const std::string& key, std::string* value);
  Outcome Put(const std::string& key, const std::string& value);
  Outcome Append(const std::string& key, const std::string& value);

  // Why the last operation did not complete (kFailed / kUnknown).
  const std::string& last_error() const { return last_error_; }
  int64_t unknown_ops() const { return unknown_ops_; }
  int64_t failed_ops() const { return failed_ops_; }

 private:
  Outcome Finish(const raftkv::client::Result& result, linearizability::Operation op);

  raftkv::client::Client client_;
  History* history_;
  int64_t client_id_;
  std::string last_error_;
  int64_t unknown_ops_ = 0;
  int64_t failed_ops_ = 0;
};

struct LabOptions {
  int nservers = 3;
  bool unreliable = false;
  int maxraftstate = kNoSnapshots;  // kNoSnapshots or kMaxRaftState
};

class LabCluster {
 public:
  explicit LabCluster(LabOptions options);

  // Starts every node, waits for a leader, and makes the network unreliable if asked.
  ::testing::AssertionResult Start();

  int size() const { return options_.nservers; }
  raftkv_it::TestCluster& cluster() { return cluster_; }

  // The lab's partition(g0, g1): every node talks only to the nodes of its own group (node
  // ids, 1-based; every node in exactly one group). Keeps unreliable as it is.
  void Partition(const std::vector<int>& g0, const std::vector<int>& g1);
  // Every node talks to every other.
  void ConnectAll();
  // The lab's crash: SIGKILL every node, sleep 1 s, start every node again on its data, then
  // the network as before (unreliable if so; nodes start healed).
  ::testing::AssertionResult CrashAndRestartAll();

  // Client options for a clerk talking to `nodes` (all nodes if empty), in shuffled order.
  // With `prefer_leader` the client finds the leader among them; without, it sticks to the
  // first and moves on only after errors (as the lab's clerks, which start at a random server),
  // so its commands are forwarded by followers.
  raftkv::client::Options ClientOptions(std::vector<int> nodes, uint64_t seed,
                                        bool prefer_leader = true) const;
  // A clerk with those options, its session open (nullptr and a test failure if it cannot
  // open one).
  std::unique_ptr<Clerk> MakeClerk(std::vector<int> nodes, History* history, int64_t client_id,
                                   uint64_t seed, bool prefer_leader = true);

  // maxraftstate > 0: every node's log between its snapshot and its last entry holds at most
  // kMaxLogEntries ("logs were not trimmed"). maxraftstate < 0: no node has a snapshot.
  void CheckLogSize();

 private:
  // Sends RAFT.FAULT `args` to node `id`; fails the test unless it answers +OK.
  void Fault(int id, const std::vector<std::string>& args);
  void MakeUnreliable();

  LabOptions options_;
  raftkv_it::TestCluster cluster_;
  std::vector<uint16_t> ports_;  // client port of node i + 1, fixed once started
};

// The lab's checkClntAppends: every "x <clnt> <k> y" for k < count appears in `v` exactly once
// and in order. If `maybe_one_more`, "x <clnt> <count> y" (an append whose outcome is
// unknown) may appear once more after them.
::testing::AssertionResult CheckClntAppends(int clnt, const std::string& v, int count,
                                            bool maybe_one_more = false);
// The lab's checkConcurrentAppends: for every client i, "x <i> <k> y" for k < counts[i]
// appears exactly once, in that client's order.
::testing::AssertionResult CheckConcurrentAppends(const std::string& v,
                                                  const std::vector<int>& counts);

struct GenericArgs {
  int nclients = 1;
  int nservers = 5;
  bool unreliable = false;
  bool crash = false;
  bool partitions = false;
  int maxraftstate = kNoSnapshots;
  bool randomkeys = false;
};

// GenericTest (§3.2): 3 iterations of 5 s of clerks, partitions, crashes, then the value and
// log checks, and the linearizability check of the whole history.
void GenericTest(const GenericArgs& args);

// GenericTestSpeed (§3.3): 1000 sequential appends by one clerk on 3 servers.
void GenericTestSpeed(int maxraftstate);

}  // namespace kvlab
