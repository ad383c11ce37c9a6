// The KV lab's test suite (raft-lab-scenarios.md §3.4 and §3.5, the 23 tests of
// kvraft/test_test.go) on real raftkv-server processes on 127.0.0.1, one TEST per lab test:
// KvLab.<lab name without "Test" and without the 3A/3B suffix>, except the two speed tests.
//
// How the lab's knobs map onto processes (harness.h):
// - nservers: a TestCluster of that many raftkv-server processes (node ids 1..n, every node
//   started with --enable-debug-command yes for RAFT.FAULT). Clerks talk to every node, in a
//   shuffled order, unless the scenario pins them to some; any node serves any command
//   (followers forward to the leader). In GenericTest half the clerks find the leader and the
//   others stay with their first node (as the lab's clerks start at a random server), so
//   followers forwarding, and any node answering a read it must not, are exercised too.
// - Clerk: raftkv::client::Client with an exactly-once session per clerk (a fresh one per
//   clerk and iteration, as the lab's fresh clerks), an op timeout of 60 s (the lab's clerk
//   never gives up). An op that still ends unknown is logged as unknown for the checker and its
//   clerk stops; an op that definitely did not take effect is left out of the history.
// - unreliable: `RAFT.FAULT UNRELIABLE 10 26` on every node (10% of peer frames dropped, the
//   rest delayed 0-26 ms), and the clients discard 10% of replies and retry
//   (drop_reply_percent 10), as labrpc also loses replies of requests that were executed.
// - partition(g0, g1): on every node, `RAFT.FAULT UNBLOCK` of the peers of its own group and
//   `RAFT.FAULT BLOCK` of the peers of the other group. It cuts peer traffic only: a clerk
//   still reaches every node it is configured with, as in the lab (clerk links are separate).
//   A node cut off from the leader cannot forward to it, so its clients' ops wait and retry.
//   ConnectAll: `RAFT.FAULT UNBLOCK` of every peer on every node (unreliable stays).
// - crash (ShutdownServer / StartServer of every server): SIGKILL every process, sleep 1 s,
//   start every process again on its data directory; the clerks keep retrying through it.
//   Nodes start healed, so unreliable is set again.
// - maxraftstate 1000: --snapshot-entries 20 --snapshot-keep-entries 0 (a snapshot, which
//   trims the log entirely, every 20 applied entries). "logs were not trimmed": on every node
//   INFO raft_last_index - raft_snapshot_index <= 8 * 20 + 20 (the slack: one more interval
//   applied while a snapshot is being written on the storage thread).
//   maxraftstate -1: --snapshot-entries 0, and every node's raft_snapshot_index stays 0.
//   SnapshotSize() <= 500 bytes: our snapshot is the state database itself (LevelDB: the keys
//   and the session table), so "the snapshot holds only the KV map and compact duplicate
//   state" becomes: DBSIZE is the test's key count and INFO raft_sessions (open sessions)
//   does not grow with the number of operations.
// - electionTimeout and heartbeats: the server's defaults (election-timeout-ms 1000, heartbeat
//   100 ms); the tester's 1 s sleeps stay 1 s.
// - Wall-clock bounds: ops in a minority must not complete within 1 s (a safety property);
//   the pending minority Put must complete within 9 s of the heal (3x the lab's 3 s); the
//   speed tests allow 100 s for 1000 appends (3x the lab's 33.3 s) and print ops/s and the
//   mean, p50 and p99 latency.
// - The linearizability check runs on the whole history with a 30 s budget: a violation fails
//   the test, a timeout passes with a note, as in the lab.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/kvlab/harness.h"

namespace kvlab {
namespace {

using raftkv::client::Outcome;

// Get through `ck` must complete and read `want`.
::testing::AssertionResult Check(Clerk& ck, const std::string& key, const std::string& want) {
  std::string v;
  Outcome o = ck.Get(key, &v);
  if (o != Outcome::kOk) {
    return ::testing::AssertionFailure()
           << "Get(" << key << ") did not complete: " << ck.last_error();
  }
  if (v != want) {
    return ::testing::AssertionFailure() << "Get(" << key << "): expected:\n"
                                         << want << "\nreceived:\n"
                                         << v;
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult Put(Clerk& ck, const std::string& key, const std::string& value) {
  Outcome o = ck.Put(key, value);
  if (o != Outcome::kOk) {
    return ::testing::AssertionFailure()
           << "Put(" << key << ", " << value << ") did not complete: " << ck.last_error();
  }
  return ::testing::AssertionSuccess();
}

uint64_t Seed() {
  return static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
}

// ---- 3A ----

TEST(KvLab, Basic) { GenericTest({.nclients = 1, .nservers = 5}); }

TEST(KvLab, Speed3A) { GenericTestSpeed(kNoSnapshots); }

TEST(KvLab, Concurrent) { GenericTest({.nclients = 5, .nservers = 5}); }

TEST(KvLab, Unreliable) { GenericTest({.nclients = 5, .nservers = 5, .unreliable = true}); }

// Concurrent appends to one key over an unreliable network: duplicate suppression.
TEST(KvLab, UnreliableOneKey) {
  constexpr int kClients = 5;
  constexpr int kAppends = 10;
  LabCluster lab({.nservers = 3, .unreliable = true});
  ASSERT_TRUE(lab.Start());
  std::unique_ptr<Clerk> ck = lab.MakeClerk({}, nullptr, 0, Seed());
  ASSERT_NE(ck, nullptr);
  ASSERT_TRUE(Put(*ck, "k", ""));

  std::vector<int> counts(kClients, 0);
  std::vector<std::thread> clients;
  for (int me = 0; me < kClients; me++) {
    clients.emplace_back([&lab, &counts, me] {
      std::unique_ptr<Clerk> c = lab.MakeClerk({}, nullptr, me + 1, Seed() + me);
      if (c == nullptr) return;
      for (int n = 0; n < kAppends; n++) {
        const std::string nv = "x " + std::to_string(me) + " " + std::to_string(n) + " y";
        Outcome o = c->Append("k", nv);
        if (o != Outcome::kOk) {
          ADD_FAILURE() << "client " << me << ": Append(k, " << nv
                        << ") did not complete: " << c->last_error();
          return;
        }
        counts[static_cast<size_t>(me)]++;
      }
    });
  }
  for (std::thread& t : clients) t.join();
  std::string v;
  ASSERT_EQ(ck->Get("k", &v), Outcome::kOk) << ck->last_error();
  EXPECT_TRUE(CheckConcurrentAppends(v, counts));
  std::cout << "kvlab: " << kClients * kAppends + 2 << " ops\n";
  ::testing::Test::RecordProperty("ops", std::to_string(kClients * kAppends + 2));
}

// Progress in the majority, none in the minority (not even a read at the old leader), and
// the minority's pending Put completes once after the heal.
TEST(KvLab, OnePartition) {
  LabCluster lab({.nservers = 5});
  ASSERT_TRUE(lab.Start());
  std::unique_ptr<Clerk> ck = lab.MakeClerk({}, nullptr, 0, Seed());
  ASSERT_NE(ck, nullptr);
  ASSERT_TRUE(Put(*ck, "1", "13"));

  // make_partition: the current leader and one more node in the minority p2, three in p1.
  int leader = 0;
  ASSERT_TRUE(lab.cluster().WaitLeader(Millis(20000), &leader));
  std::vector<int> p1, p2 = {leader};
  for (int id = 1; id <= lab.size(); id++) {
    if (id != leader) (p2.size() < 2 ? p2 : p1).push_back(id);
  }
  // Our clerks open their exactly-once session through the log, which a minority cannot do;
  // the lab's clerks need no registration. So every clerk opens its session first.
  std::unique_ptr<Clerk> ckp1 = lab.MakeClerk(p1, nullptr, 1, Seed() + 1);
  std::unique_ptr<Clerk> ckp2a = lab.MakeClerk(p2, nullptr, 2, Seed() + 2);
  std::unique_ptr<Clerk> ckp2b = lab.MakeClerk(p2, nullptr, 3, Seed() + 3);
  ASSERT_TRUE(ckp1 != nullptr && ckp2a != nullptr && ckp2b != nullptr);

  std::cout << "kvlab: Test: progress in majority (leader " << leader << " in the minority)\n";
  lab.Partition(p1, p2);
  ASSERT_TRUE(Put(*ckp1, "1", "14"));
  ASSERT_TRUE(Check(*ckp1, "1", "14"));

  std::cout << "kvlab: Test: no progress in minority\n";
  std::string get_value;
  std::future<Outcome> put = std::async(std::launch::async, [&] { return ckp2a->Put("1", "15"); });
  std::future<Outcome> get =
      std::async(std::launch::async, [&] { return ckp2b->Get("1", &get_value); });
  // Neither may complete within 1 s: the old leader must not answer the read from its own
  // state, and no write may commit without a majority.
  const Clock::time_point minority_start = Clock::now();
  const bool put_done = put.wait_until(minority_start + Millis(1000)) == std::future_status::ready;
  const bool get_done = get.wait_until(minority_start + Millis(1000)) == std::future_status::ready;
  EXPECT_FALSE(put_done) << "Put in minority completed (" << raftkv::client::OutcomeName(put.get())
                         << ")";
  EXPECT_FALSE(get_done) << "Get in minority completed (" << raftkv::client::OutcomeName(get.get())
                         << ", value \"" << get_value << "\")";
  ASSERT_FALSE(put_done || get_done);
  ASSERT_TRUE(Check(*ckp1, "1", "14"));
  ASSERT_TRUE(Put(*ckp1, "1", "16"));
  ASSERT_TRUE(Check(*ckp1, "1", "16"));

  std::cout << "kvlab: Test: completion after heal\n";
  // The lab also connects ckp2a and ckp2b to every server; here their nodes rejoin the
  // cluster and forward to the leader, which serves them the same way.
  lab.ConnectAll();
  const Clock::time_point heal = Clock::now();
  std::this_thread::sleep_for(Millis(1000));
  ASSERT_EQ(put.wait_until(heal + Millis(9000)), std::future_status::ready)
      << "Put did not complete within 9 s of the heal";
  const Outcome put_outcome = put.get();
  EXPECT_EQ(put_outcome, Outcome::kOk) << ckp2a->last_error();
  // As in the lab, the Get need not complete; if it did, it read one of the values written
  // since it was called.
  if (get.wait_for(Millis(0)) == std::future_status::ready) {
    if (get.get() == Outcome::kOk) {
      EXPECT_TRUE(get_value == "14" || get_value == "15" || get_value == "16") << get_value;
    }
  } else {
    std::cout << "kvlab: the minority's Get had not completed by then\n";
  }
  EXPECT_TRUE(Check(*ck, "1", "15"));
  ::testing::Test::RecordProperty("ops", "9");
  std::cout << "kvlab: 9 ops\n";
}

TEST(KvLab, ManyPartitionsOneClient) {
  GenericTest({.nclients = 1, .nservers = 5, .partitions = true});
}

TEST(KvLab, ManyPartitionsManyClients) {
  GenericTest({.nclients = 5, .nservers = 5, .partitions = true});
}

TEST(KvLab, PersistOneClient) { GenericTest({.nclients = 1, .nservers = 5, .crash = true}); }

TEST(KvLab, PersistConcurrent) { GenericTest({.nclients = 5, .nservers = 5, .crash = true}); }

TEST(KvLab, PersistConcurrentUnreliable) {
  GenericTest({.nclients = 5, .nservers = 5, .unreliable = true, .crash = true});
}

TEST(KvLab, PersistPartition) {
  GenericTest({.nclients = 5, .nservers = 5, .crash = true, .partitions = true});
}

TEST(KvLab, PersistPartitionUnreliable) {
  GenericTest(
      {.nclients = 5, .nservers = 5, .unreliable = true, .crash = true, .partitions = true});
}

TEST(KvLab, PersistPartitionUnreliableLinearizable) {
  GenericTest({.nclients = 15,
               .nservers = 7,
               .unreliable = true,
               .crash = true,
               .partitions = true,
               .randomkeys = true});
}

// ---- 3B ----

// A majority compacts its log while a follower is cut off; that follower then catches up by
// snapshot.
TEST(KvLab, SnapshotRPC) {
  LabCluster lab({.nservers = 3, .maxraftstate = kMaxRaftState});
  ASSERT_TRUE(lab.Start());
  std::unique_ptr<Clerk> ck = lab.MakeClerk({}, nullptr, 0, Seed());
  ASSERT_NE(ck, nullptr);
  ASSERT_TRUE(Put(*ck, "a", "A"));
  ASSERT_TRUE(Check(*ck, "a", "A"));
  int ops = 2;

  // A bunch of puts into the majority partition.
  lab.Partition({1, 2}, {3});
  {
    std::unique_ptr<Clerk> ck1 = lab.MakeClerk({1, 2}, nullptr, 1, Seed() + 1);
    ASSERT_NE(ck1, nullptr);
    for (int i = 0; i < 50; i++) ASSERT_TRUE(Put(*ck1, std::to_string(i), std::to_string(i)));
    std::this_thread::sleep_for(Millis(1000));
    ASSERT_TRUE(Put(*ck1, "b", "B"));
    ops += 51;
  }
  // Check that the majority has thrown away most of its log: it compacts although node 3 is
  // far behind.
  lab.CheckLogSize();
  for (int id : {1, 2}) {
    EXPECT_GT(raftkv_it::InfoNumber(lab.cluster().Info(id), "raft_snapshot_index"), 0u)
        << "node " << id << " kept its whole log while node 3 was cut off";
  }
  const uint64_t behind = raftkv_it::InfoNumber(lab.cluster().Info(3), "raft_applied_index");

  // Now make a group that requires node 3 (far behind) to catch up by snapshot.
  lab.Partition({1, 3}, {2});
  {
    std::unique_ptr<Clerk> ck1 = lab.MakeClerk({1, 3}, nullptr, 2, Seed() + 2);
    ASSERT_NE(ck1, nullptr);
    ASSERT_TRUE(Put(*ck1, "c", "C"));
    ASSERT_TRUE(Put(*ck1, "d", "D"));
    ASSERT_TRUE(Check(*ck1, "a", "A"));
    ASSERT_TRUE(Check(*ck1, "b", "B"));
    ASSERT_TRUE(Check(*ck1, "1", "1"));
    ASSERT_TRUE(Check(*ck1, "49", "49"));
    ops += 6;
  }
  raftkv_it::InfoMap info3 = lab.cluster().Info(3);
  std::cout << "kvlab: node 3 was at applied index " << behind << ", now applied "
            << info3["raft_applied_index"] << ", snapshot " << info3["raft_snapshot_index"] << "\n";
  EXPECT_GT(raftkv_it::InfoNumber(info3, "raft_snapshot_index"), behind);

  // Now everybody.
  lab.ConnectAll();
  ASSERT_TRUE(Put(*ck, "e", "E"));
  ASSERT_TRUE(Check(*ck, "c", "C"));
  ASSERT_TRUE(Check(*ck, "e", "E"));
  ASSERT_TRUE(Check(*ck, "1", "1"));
  ops += 4;
  std::cout << "kvlab: " << ops << " ops\n";
  ::testing::Test::RecordProperty("ops", std::to_string(ops));
}

// The state a snapshot holds stays small: the keys and a compact session table.
TEST(KvLab, SnapshotSize) {
  LabCluster lab({.nservers = 3, .maxraftstate = kMaxRaftState});
  ASSERT_TRUE(lab.Start());
  std::unique_ptr<Clerk> ck = lab.MakeClerk({}, nullptr, 0, Seed());
  ASSERT_NE(ck, nullptr);
  const Clock::time_point start = Clock::now();
  for (int i = 0; i < 200; i++) {
    ASSERT_TRUE(Put(*ck, "x", "0"));
    ASSERT_TRUE(Check(*ck, "x", "0"));
    ASSERT_TRUE(Put(*ck, "x", "1"));
    ASSERT_TRUE(Check(*ck, "x", "1"));
  }
  std::cout << "kvlab: 800 ops in " << std::chrono::duration<double>(Clock::now() - start).count()
            << " s\n";
  ::testing::Test::RecordProperty("ops", "800");

  // Check that servers have thrown away most of their log entries.
  lab.CheckLogSize();
  // Check that the snapshots are not unreasonably large: the snapshot is the state database,
  // which must hold the one key and a handful of sessions (this clerk's, and the sessions the
  // followers forward writes in), not anything that grows with the 800 operations.
  raftkv_it::RedisClient c = lab.cluster().Connect(1);
  ASSERT_TRUE(c.connected()) << c.error();
  EXPECT_EQ(c.Call({"DBSIZE"}), raftkv_it::Int(1));
  for (int id = 1; id <= lab.size(); id++) {
    raftkv_it::InfoMap info = lab.cluster().Info(id);
    std::cout << "kvlab: node " << id << ": raft_sessions " << info["raft_sessions"]
              << ", raft_snapshot_index " << info["raft_snapshot_index"] << ", raft_last_index "
              << info["raft_last_index"] << "\n";
    ASSERT_EQ(info.count("raft_sessions"), 1u) << "node " << id << " reports no raft_sessions";
    EXPECT_LE(raftkv_it::InfoNumber(info, "raft_sessions"), 4u) << "node " << id;
    EXPECT_GT(raftkv_it::InfoNumber(info, "raft_snapshot_index"), 0u) << "node " << id;
  }
}

TEST(KvLab, Speed3B) { GenericTestSpeed(kMaxRaftState); }

TEST(KvLab, SnapshotRecover) {
  GenericTest({.nclients = 1, .nservers = 5, .crash = true, .maxraftstate = kMaxRaftState});
}

TEST(KvLab, SnapshotRecoverManyClients) {
  GenericTest({.nclients = 20, .nservers = 5, .crash = true, .maxraftstate = kMaxRaftState});
}

TEST(KvLab, SnapshotUnreliable) {
  GenericTest({.nclients = 5, .nservers = 5, .unreliable = true, .maxraftstate = kMaxRaftState});
}

TEST(KvLab, SnapshotUnreliableRecover) {
  GenericTest({.nclients = 5,
               .nservers = 5,
               .unreliable = true,
               .crash = true,
               .maxraftstate = kMaxRaftState});
}

TEST(KvLab, SnapshotUnreliableRecoverConcurrentPartition) {
  GenericTest({.nclients = 5,
               .nservers = 5,
               .unreliable = true,
               .crash = true,
               .partitions = true,
               .maxraftstate = kMaxRaftState});
}

TEST(KvLab, SnapshotUnreliableRecoverConcurrentPartitionLinearizable) {
  GenericTest({.nclients = 15,
               .nservers = 7,
               .unreliable = true,
               .crash = true,
               .partitions = true,
               .maxraftstate = kMaxRaftState,
               .randomkeys = true});
}

}  // namespace
}  // namespace kvlab
