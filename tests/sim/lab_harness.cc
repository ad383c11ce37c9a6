#include "tests/sim/lab_harness.h"

#include <cstdlib>
#include <map>

namespace sim {

LabHarness::LabHarness(int n, bool reliable, bool snapshot, uint64_t seed)
    : n_(n), rng_(seed ^ 0x5eed) {
  ClusterOptions options;
  options.n = n;
  options.seed = seed;
  options.snapshot_interval = snapshot ? 10 : 0;
  options.verbose = std::getenv("RAFTKV_LAB_VERBOSE") != nullptr;
  cluster_ = std::make_unique<Cluster>(options);
  cluster_->SetReliable(reliable);
}

LabHarness::~LabHarness() = default;

void LabHarness::Fatal(const std::string& what) {
  ADD_FAILURE() << what << " (virtual time " << cluster_->now() / kMs << " ms)";
  throw LabFatal{};
}

void LabHarness::CheckViolations() {
  if (!cluster_->violations().empty()) Fatal("invariant violated: " + cluster_->violations()[0]);
}

void LabHarness::Sleep(Time t) {
  cluster_->RunFor(t);
  CheckViolations();
}

bool LabHarness::IsLeader(int i) {
  raft::Node* node = cluster_->node(i);
  return node != nullptr && node->role() == raft::Role::kLeader;
}

raft::Term LabHarness::TermOf(int i) {
  raft::Node* node = cluster_->node(i);
  return node == nullptr ? 0 : node->term();
}

int LabHarness::CheckOneLeader() {
  for (int iters = 0; iters < 10; iters++) {
    Sleep((450 + static_cast<Time>(rng_.Uniform(100))) * kMs);
    std::map<raft::Term, std::vector<int>> leaders;
    for (int i = 0; i < n_; i++) {
      if (cluster_->connected(i) && IsLeader(i)) leaders[TermOf(i)].push_back(i);
    }
    for (const auto& [term, ids] : leaders) {
      if (ids.size() > 1) Fatal("term " + std::to_string(term) + " has more than one leader");
    }
    if (!leaders.empty()) return leaders.rbegin()->second[0];
  }
  Fatal("expected one leader, got none");
}

raft::Term LabHarness::CheckTerms() {
  raft::Term term = 0;
  for (int i = 0; i < n_; i++) {
    if (!cluster_->connected(i) || !cluster_->alive(i)) continue;
    raft::Term t = TermOf(i);
    if (term == 0) {
      term = t;
    } else if (term != t) {
      Fatal("servers disagree on term");
    }
  }
  return term;
}

void LabHarness::CheckNoLeader() {
  for (int i = 0; i < n_; i++) {
    if (cluster_->connected(i) && IsLeader(i)) {
      Fatal("expected no leader among connected servers, but " + std::to_string(i) +
            " claims to be");
    }
  }
}

int LabHarness::NCommitted(int64_t index, std::string* cmd) {
  CheckViolations();
  int count = 0;
  std::string value;
  for (int i = 0; i < n_; i++) {
    const auto& log = cluster_->applied(i);
    auto it = log.find(index);
    if (it == log.end()) continue;
    if (count > 0 && it->second != value) {
      Fatal("committed values do not match: index " + std::to_string(index));
    }
    value = it->second;
    count++;
  }
  if (cmd != nullptr) *cmd = value;
  return count;
}

std::string LabHarness::Wait(int64_t index, int n, int64_t start_term, bool* term_moved) {
  Time to = 10 * kMs;
  *term_moved = false;
  for (int iters = 0; iters < 30; iters++) {
    if (NCommitted(index) >= n) break;
    Sleep(to);
    if (to < 1000 * kMs) to *= 2;
    if (start_term > -1) {
      for (int i = 0; i < n_; i++) {
        if (cluster_->alive(i) && static_cast<int64_t>(TermOf(i)) > start_term) {
          *term_moved = true;
          return "";
        }
      }
    }
  }
  std::string cmd;
  int nd = NCommitted(index, &cmd);
  if (nd < n) {
    Fatal("only " + std::to_string(nd) + " decided for index " + std::to_string(index) +
          "; wanted " + std::to_string(n));
  }
  return cmd;
}

int64_t LabHarness::One(const std::string& cmd, int expected_servers, bool retry) {
  Time t0 = cluster_->now();
  int starts = 0;
  while (cluster_->now() - t0 < 10000 * kMs) {
    // Try every server; maybe one is the leader.
    int64_t index = -1;
    for (int si = 0; si < n_; si++) {
      starts = (starts + 1) % n_;
      if (cluster_->connected(starts)) {
        Cluster::StartResult r = cluster_->Start(starts, cmd);
        if (r.ok) {
          index = r.index;
          break;
        }
      }
    }
    if (index != -1) {
      // Somebody claimed to be the leader and submitted the command; wait for agreement.
      Time t1 = cluster_->now();
      while (cluster_->now() - t1 < 2000 * kMs) {
        std::string got;
        int nd = NCommitted(index, &got);
        if (nd > 0 && nd >= expected_servers && got == cmd) return index;
        Sleep(20 * kMs);
      }
      if (!retry) Fatal("one(" + cmd.substr(0, 20) + ") failed to reach agreement");
    } else {
      Sleep(50 * kMs);
    }
  }
  Fatal("one(" + cmd.substr(0, 20) + ") failed to reach agreement");
}

size_t LabHarness::LogSize() const {
  size_t most = 0;
  for (int i = 0; i < n_; i++) most = std::max(most, cluster_->PersistedBytes(i));
  return most;
}

std::string LabHarness::RandString(size_t n) {
  static const char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string s(n, 'a');
  for (char& c : s) c = kAlphabet[rng_.Uniform(sizeof(kAlphabet) - 1)];
  return s;
}

}  // namespace sim
