#include "tests/sim/swarm.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstring>
#include <map>

#include "raft/config.h"
#include "tests/sim/cluster.h"

namespace sim {

namespace {

constexpr Time kFaultPhase = 10000 * kMs;
// Liveness: once healed, a leader must commit a new command on every node within this.
constexpr Time kLivenessBound = 30000 * kMs;  // 3,000 ticks of 10 ms

struct Faults {
  double drop = 0;
  Time max_delay = 0;
  Time mean_fault_interval = 0;
  double p_crash = 0, p_crash_leader = 0, p_isolate_leader = 0, p_power_cycle = 0, p_restart = 0,
         p_disconnect = 0, p_connect = 0, p_partition = 0, p_heal = 0, p_unreliable = 0, p_long = 0;
  Time mean_client_interval = 0;
  bool every_leader = false;    // clients propose to every node that claims to lead (Figure 8)
  double p_cut_new_leader = 0;  // a new leader is cut off within a few message delays
};

const char* NameOf(int n) {
  static const char* kRoles[] = {"follower", "precandidate", "candidate", "leader"};
  return kRoles[n];
}

}  // namespace

SwarmResult RunSwarmSeed(uint64_t seed, uint32_t bugs, bool verbose) {
  Rng r(seed * 0x2545F4914F6CDD1Dull + 7);
  ClusterOptions o;
  static const int kSizes[] = {1, 3, 3, 5, 5};
  o.n = kSizes[r.Uniform(5)];
  o.seed = r.Next();
  o.bugs = bugs;
  o.verbose = verbose;
  o.max_persist_delay = r.Range(0, 30) * kMs;
  o.min_delay = 100;
  o.max_delay = r.Range(1, 20) * kMs;
  o.snapshot_interval = r.Chance(0.6) ? static_cast<int>(r.Range(3, 40)) : 0;
  o.snapshot_chunk_bytes = static_cast<size_t>(r.Range(16, 1024));
  o.duplicate_rate = r.Chance(0.5) ? r.Real() * 0.1 : 0;
  o.heartbeat_ticks = static_cast<int>(r.Range(2, 10));
  // Small messages and windows on some seeds: entries of one batch then arrive apart.
  o.max_msg_bytes = r.Chance(0.5) ? static_cast<size_t>(r.Range(1, 80)) : (1 << 20);
  o.max_inflight_msgs = static_cast<size_t>(r.Range(1, 32));
  // Clients are refused (as a server would answer -TRYAGAIN) past this backlog, so that a
  // healed cluster has a bounded amount to catch up on.
  o.max_uncommitted_bytes = static_cast<size_t>(r.Range(256, 4096));
  Faults f;
  f.drop = r.Chance(0.3) ? 0 : r.Real() * 0.3;
  f.max_delay = r.Range(1, 60) * kMs;
  f.mean_fault_interval = r.Range(50, 1000) * kMs;
  f.p_crash = r.Real();
  f.p_crash_leader = r.Real();
  f.p_isolate_leader = r.Real();
  f.p_power_cycle = r.Real() * 0.3;
  f.p_restart = r.Real();
  f.p_disconnect = r.Real();
  f.p_connect = r.Real();
  f.p_partition = r.Real();
  f.p_heal = r.Real();
  f.p_unreliable = r.Real() * 0.5;
  f.p_long = r.Real() * 0.2;
  f.mean_client_interval = r.Range(1, 50) * kMs;
  if (r.Chance(0.5)) {
    // Figure 8's churn: leaders die every few milliseconds and come back soon after.
    if (o.n == 5 && r.Chance(0.5)) o.n = 3;
    // Slow links and small messages: a new leader takes many round trips to bring a follower
    // up to its no-op, which is when Figure 8's hazard lives.
    o.max_delay = r.Range(10, 60) * kMs;
    o.max_msg_bytes = static_cast<size_t>(r.Range(1, 80));
    o.max_inflight_msgs = static_cast<size_t>(r.Range(1, 4));
    f.mean_fault_interval = r.Range(5, 40) * kMs;
    f.p_crash_leader = 3 * r.Real();
    f.p_isolate_leader = 3 * r.Real();
    f.p_restart = 3;
    f.p_connect = 3;
    f.every_leader = true;
    f.p_cut_new_leader = r.Real();
    f.p_power_cycle = 0.05;
    f.mean_client_interval = r.Range(1, 10) * kMs;
  }

  Cluster c(o);
  c.SetUnreliableRates(f.drop, f.max_delay);
  c.SetReliable(r.Chance(0.5));
  SwarmResult res;
  res.nodes = o.n;
  if (verbose) {
    std::fprintf(stderr,
                 "seed %llu: nodes=%d persist<=%lldms delay<=%lldms snapshot_every=%d dup=%.3f "
                 "drop=%.3f fault_every~%lldms\n",
                 static_cast<unsigned long long>(seed), o.n,
                 static_cast<long long>(o.max_persist_delay / kMs),
                 static_cast<long long>(o.max_delay / kMs), o.snapshot_interval, o.duplicate_rate,
                 f.drop, static_cast<long long>(f.mean_fault_interval / kMs));
  }
  int64_t next_cmd = 0;
  uint64_t next_read = 1;
  auto propose = [&](int i) {
    std::string cmd = "c" + std::to_string(next_cmd);
    if (c.Start(i, cmd).ok) next_cmd++;
  };
  auto fail = [&](const std::string& what) {
    res.ok = false;
    res.failure = what;
    return res;
  };

  // Fault phase.
  Time next_fault = c.now() + r.Range(0, 2 * f.mean_fault_interval);
  Time next_client = c.now();
  constexpr Time kNever = INT64_MAX;
  Time next_cut = kNever;
  int cut_target = -1;
  raft::Term seen_leader_term = 0;
  while (c.now() < kFaultPhase) {
    Time step = std::min({next_fault, next_client, next_cut}) - c.now();
    c.RunFor(std::max<Time>(step, 100));
    if (!c.violations().empty()) return fail(c.violations()[0]);
    for (int i = 0; i < o.n && f.p_cut_new_leader > 0; i++) {
      raft::Node* n = c.node(i);
      if (n == nullptr || n->role() != raft::Role::kLeader || n->term() <= seen_leader_term)
        continue;
      seen_leader_term = n->term();
      if (next_cut == kNever && r.Chance(f.p_cut_new_leader)) {
        next_cut = c.now() + r.Range(0, 2 * o.max_delay);
        cut_target = i;
      }
    }
    if (c.now() >= next_cut) {
      next_cut = kNever;
      if (c.alive(cut_target) && c.node(cut_target)->role() == raft::Role::kLeader) {
        if (r.Chance(0.5)) {
          c.Disconnect(cut_target);
        } else {
          c.Crash(cut_target);
        }
      }
    }
    if (c.now() >= next_client) {
      next_client = c.now() + r.Range(0, 2 * f.mean_client_interval);
      // Clients mostly find the leader; sometimes they ask a random node.
      int target = static_cast<int>(r.Uniform(static_cast<uint64_t>(o.n)));
      for (int i = 0; i < o.n; i++) {
        if (c.alive(i) && c.node(i)->role() == raft::Role::kLeader && r.Chance(0.9)) target = i;
      }
      propose(target);
      if (f.every_leader) {
        for (int i = 0; i < o.n; i++) {
          if (i != target && c.alive(i) && c.node(i)->role() == raft::Role::kLeader) propose(i);
        }
      }
      if (r.Chance(0.2)) c.ReadIndex(target, next_read++);
    }
    if (c.now() >= next_fault) {
      next_fault = c.now() + r.Range(0, 2 * f.mean_fault_interval);
      double total = f.p_crash + f.p_crash_leader + f.p_isolate_leader + f.p_power_cycle +
                     f.p_restart + f.p_disconnect + f.p_connect + f.p_partition + f.p_heal +
                     f.p_unreliable + f.p_long;
      double x = r.Real() * total;
      int i = static_cast<int>(r.Uniform(static_cast<uint64_t>(o.n)));
      if ((x -= f.p_crash) < 0) {
        if (c.alive(i)) c.Crash(i);
      } else if ((x -= f.p_crash_leader) < 0) {
        // Figure 8's pattern: the leader dies right after taking proposals; maybe it comes
        // back at once.
        for (int k = 0; k < o.n; k++) {
          if (c.alive(k) && c.node(k)->role() == raft::Role::kLeader) {
            c.Crash(k);
            if (r.Chance(0.5)) {
              c.Restart(k);
              c.Connect(k);
            }
          }
        }
      } else if ((x -= f.p_isolate_leader) < 0) {
        // Cut the leader off; it keeps taking proposals until check-quorum deposes it.
        for (int k = 0; k < o.n; k++) {
          if (c.alive(k) && c.connected(k) && c.node(k)->role() == raft::Role::kLeader)
            c.Disconnect(k);
        }
      } else if ((x -= f.p_power_cycle) < 0) {
        // Every node loses power at once: only what each had synced survives.
        for (int k = 0; k < o.n; k++) {
          c.Restart(k);
          c.Connect(k);
        }
      } else if ((x -= f.p_restart) < 0) {
        if (!c.alive(i) || r.Chance(0.3)) {
          c.Restart(i);
          c.Connect(i);
        }
      } else if ((x -= f.p_disconnect) < 0) {
        c.Disconnect(i);
      } else if ((x -= f.p_connect) < 0) {
        c.Connect(i);
      } else if ((x -= f.p_partition) < 0) {
        std::vector<int> groups;
        int ngroups = static_cast<int>(r.Range(2, 3));
        for (int k = 0; k < o.n; k++)
          groups.push_back(static_cast<int>(r.Uniform(static_cast<uint64_t>(ngroups))));
        c.SetGroups(groups);
      } else if ((x -= f.p_heal) < 0) {
        c.SetGroups(std::vector<int>(static_cast<size_t>(o.n), 0));
      } else if ((x -= f.p_unreliable) < 0) {
        c.SetReliable(r.Chance(0.5));
      } else {
        c.SetLongReordering(r.Chance(0.3));
      }
    }
  }

  // Heal everything and check liveness.
  c.SetGroups(std::vector<int>(static_cast<size_t>(o.n), 0));
  c.SetReliable(true);
  c.SetLongReordering(false);
  c.SetDuplicateRate(0);
  for (int i = 0; i < o.n; i++) {
    if (!c.alive(i)) c.Restart(i);
    c.Connect(i);
  }
  Time healed = c.now();
  std::string final_cmd = "final";
  int64_t final_index = -1;
  raft::Term final_term = 0;
  bool done = false;
  while (c.now() - healed < kLivenessBound && !done) {
    c.RunFor(50 * kMs);
    if (!c.violations().empty()) return fail(c.violations()[0]);
    // (Re)propose the final command at the current leader if the last try's term is over.
    for (int i = 0; i < o.n; i++) {
      raft::Node* n = c.node(i);
      if (n->role() == raft::Role::kLeader && n->term() != final_term && !n->transferring()) {
        Cluster::StartResult s = c.Start(i, final_cmd);
        if (s.ok) {
          final_index = s.index;
          final_term = s.term;
        }
      }
    }
    if (final_index < 0) continue;
    done = true;
    for (int i = 0; i < o.n && done; i++) {
      auto it = c.applied(i).find(final_index);
      done = it != c.applied(i).end() && it->second == final_cmd;
    }
  }
  if (!done) {
    std::string roles;
    for (int i = 0; i < o.n; i++) {
      roles += " " + std::to_string(i) + ":" + NameOf(static_cast<int>(c.node(i)->role())) + "/t" +
               std::to_string(c.node(i)->term());
    }
    return fail("liveness: no command committed on every node within " +
                std::to_string(kLivenessBound / kMs) + " ms of healing;" + roles);
  }
  c.CheckLogMatching();
  if (!c.violations().empty()) return fail(c.violations()[0]);
  res.commands = final_index;
  res.virtual_seconds = static_cast<double>(c.now()) / kMs / 1000;
  return res;
}

SwarmSummary RunSeeds(uint64_t first, uint64_t last, uint32_t bugs, int jobs,
                      bool stop_at_first_failure) {
  SwarmSummary summary;
  struct Child {
    uint64_t seed;
    int fd;
  };
  std::map<pid_t, Child> running;
  uint64_t next = first;
  auto reap_one = [&]() {
    int status = 0;
    pid_t pid = waitpid(-1, &status, 0);
    if (pid <= 0) return;
    auto it = running.find(pid);
    if (it == running.end()) return;
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = read(it->second.fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
    close(it->second.fd);
    summary.seeds++;
    bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!ok) {
      if (WIFSIGNALED(status))
        out += " (killed by signal " + std::to_string(WTERMSIG(status)) + ")";
      while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
      summary.failures++;
      summary.failing_seeds.push_back(it->second.seed);
      summary.messages.push_back(out);
    }
    running.erase(it);
  };
  while (next <= last || !running.empty()) {
    if (stop_at_first_failure && summary.failures > 0) next = last + 1;
    while (next <= last && static_cast<int>(running.size()) < jobs) {
      int fds[2];
      if (pipe(fds) != 0) {
        std::perror("pipe");
        return summary;
      }
      std::fflush(nullptr);
      pid_t pid = fork();
      if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 2);
        SwarmResult r = RunSwarmSeed(next, bugs, false);
        if (!r.ok) {
          std::string msg = r.failure.substr(0, 2000);
          ssize_t w = write(2, msg.data(), msg.size());
          (void)w;
        }
        _exit(r.ok ? 0 : 1);
      }
      close(fds[1]);
      running[pid] = Child{next, fds[0]};
      next++;
    }
    reap_one();
  }
  return summary;
}

uint32_t BugFromName(const std::string& name) {
  if (name == "commit-previous-term") return raft::kBugCommitPreviousTerm;
  if (name == "double-vote") return raft::kBugDoubleVote;
  if (name == "reply-before-persist") return raft::kBugReplyBeforePersist;
  if (name == "no-election-restriction") return raft::kBugNoElectionRestriction;
  return 0;
}

std::vector<std::string> BugNames() {
  return {"commit-previous-term", "double-vote", "reply-before-persist", "no-election-restriction"};
}

}  // namespace sim
