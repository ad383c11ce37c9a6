#include "tests/sim/cluster.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "common/check.h"

namespace sim {

namespace {

void PutU64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; i++) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

bool GetU64(const std::string& in, size_t* pos, uint64_t* v) {
  if (*pos + 8 > in.size()) return false;
  *v = 0;
  for (int i = 0; i < 8; i++) {
    *v |= static_cast<uint64_t>(static_cast<unsigned char>(in[*pos + i])) << (8 * i);
  }
  *pos += 8;
  return true;
}

}  // namespace

std::string EncodeSnapshot(const SmSnapshot& s) {
  std::string out;
  PutU64(&out, s.meta.index);
  PutU64(&out, s.meta.term);
  PutU64(&out, s.cmds.size());
  for (const std::string& c : s.cmds) {
    PutU64(&out, c.size());
    out += c;
  }
  return out;
}

bool DecodeSnapshot(const std::string& bytes, SmSnapshot* out) {
  size_t pos = 0;
  uint64_t index, term, count;
  if (!GetU64(bytes, &pos, &index) || !GetU64(bytes, &pos, &term) || !GetU64(bytes, &pos, &count)) {
    return false;
  }
  out->meta = {index, term};
  out->cmds.clear();
  for (uint64_t i = 0; i < count; i++) {
    uint64_t len;
    if (!GetU64(bytes, &pos, &len) || pos + len > bytes.size()) return false;
    out->cmds.push_back(bytes.substr(pos, len));
    pos += len;
  }
  return pos == bytes.size();
}

Cluster::Cluster(const ClusterOptions& options)
    : options_(options), rng_(options.seed), slots_(static_cast<size_t>(options.n)) {
  for (int i = 0; i < size(); i++) StartNode(i);
}

Cluster::~Cluster() = default;

void Cluster::Log(const std::string& line) const {
  if (!options_.verbose) return;
  std::fprintf(stderr, "[%9.3f ms] %s\n", static_cast<double>(now_) / kMs, line.c_str());
}

void Cluster::Violation(const std::string& what) {
  Log("VIOLATION: " + what);
  if (violations_.size() < 20) violations_.push_back(what);
}

void Cluster::Schedule(Time at, std::function<void()> fn) {
  events_.push(Event{at, seq_++, std::move(fn)});
}

void Cluster::RunFor(Time duration) {
  Time end = now_ + duration;
  while (!events_.empty() && events_.top().at <= end) {
    Event ev = events_.top();
    events_.pop();
    now_ = ev.at;
    ev.fn();
    AfterEvent();
  }
  now_ = end;
}

// ---- Nodes ----

void Cluster::StartNode(int i) {
  Slot& s = slots_[i];
  s.incarnation++;
  raft::Config config;
  config.id = static_cast<raft::NodeId>(i + 1);
  for (int j = 0; j < size(); j++) config.voters.push_back(static_cast<raft::NodeId>(j + 1));
  config.election_ticks = options_.election_ticks;
  config.heartbeat_ticks = options_.heartbeat_ticks;
  config.seed = rng_.Next();
  config.check_invariants = true;  // always, whatever the build type
  config.bugs = options_.bugs;
  config.applied = s.durable_snapshot.meta.index;
  config.max_msg_bytes = options_.max_msg_bytes;
  config.max_inflight_msgs = options_.max_inflight_msgs;
  config.max_uncommitted_bytes = options_.max_uncommitted_bytes;
  config.snapshot_timeout_ticks = options_.election_ticks * 2;
  raft::PersistentState state;
  CHECK(s.storage.Load(&state).ok());
  s.node = std::make_unique<raft::Node>(config, state);
  s.core_snapshot = s.durable_snapshot;
  s.cmds = s.durable_snapshot.cmds;
  s.applied_raft = s.durable_snapshot.meta.index;
  s.staged.clear();
  s.incoming.clear();
  s.last_role = raft::Role::kFollower;
  s.leader_term = 0;
  s.leader_last = 0;
  // The lab's start1: the tester's copy of the applied log restarts from the snapshot.
  if (s.durable_snapshot.meta.index > 0) {
    s.checker_log.clear();
    for (size_t k = 0; k < s.cmds.size(); k++)
      s.checker_log[static_cast<int64_t>(k + 1)] = s.cmds[k];
  }
  ScheduleTick(i, s.incarnation, now_ + rng_.Range(0, options_.tick - 1));
}

void Cluster::ScheduleTick(int i, uint64_t incarnation, Time at) {
  Schedule(at, [this, i, incarnation] {
    Slot& s = slots_[i];
    if (s.incarnation != incarnation || !s.node) return;
    s.node->Tick();
    Drive(i);
    ScheduleTick(i, incarnation, now_ + options_.tick);
  });
}

void Cluster::Crash(int i) {
  Slot& s = slots_[i];
  Log("crash " + std::to_string(i));
  s.node.reset();
  s.incarnation++;  // pending persistence, ticks and deliveries of the old instance die
  s.persist_busy_until = 0;
  s.connected = false;
}

void Cluster::Restart(int i) {
  if (slots_[i].node) Crash(i);
  Log("restart " + std::to_string(i));
  slots_[i].connected = false;
  StartNode(i);
}

void Cluster::Connect(int i) {
  Log("connect " + std::to_string(i));
  slots_[i].connected = true;
}

void Cluster::Disconnect(int i) {
  Log("disconnect " + std::to_string(i));
  slots_[i].connected = false;
}

void Cluster::SetGroups(const std::vector<int>& groups) {
  std::string line = "partition groups:";
  for (int g : groups) line += " " + std::to_string(g);
  Log(line);
  for (int i = 0; i < size(); i++) slots_[i].group = groups[static_cast<size_t>(i)];
}

bool Cluster::LinkUp(int a, int b) const {
  const Slot& x = slots_[a];
  const Slot& y = slots_[b];
  return x.node && y.node && x.connected && y.connected && x.group == y.group;
}

// ---- The driver: the Ready pipeline ----

void Cluster::Drive(int i) {
  Slot& s = slots_[i];
  while (s.node && s.node->HasReady()) {
    auto rd = std::make_shared<raft::Ready>(s.node->TakeReady());
    if (rd->snapshot) {
      auto it = s.staged.find({rd->snapshot->index, rd->snapshot->term});
      CHECK(it != s.staged.end()) << "core asked to install a snapshot that was not received";
      s.core_snapshot = it->second;
    }
    if (!rd->PersistenceEmpty() || !rd->messages_after_persist.empty()) {
      // FIFO persistence queue: a step is durable after every step queued before it.
      Time done = std::max(now_ + rng_.Range(0, options_.max_persist_delay), s.persist_busy_until);
      s.persist_busy_until = done;
      uint64_t inc = s.incarnation;
      Schedule(done, [this, i, inc, rd] { Persist(i, inc, rd); });
    }
    for (raft::Message& m : rd->messages) SendMessage(i, std::move(m));
    if (!rd->committed_entries.empty()) Apply(i, rd->committed_entries);
    for (const raft::ReadState& r : rd->read_states) {
      s.read_states.push_back(r);
      auto it = read_required_.find(r.ctx);
      if (it == read_required_.end()) continue;
      if (r.ok && r.index < it->second) {
        Violation("stale read: node " + std::to_string(i) + " gave read point " +
                  std::to_string(r.index) + " but index " + std::to_string(it->second) +
                  " was applied before the read was asked");
      }
      read_required_.erase(it);
    }
    if (!s.node) return;
    s.node->Advance();
    // The lab's applierSnap: snapshot the state machine every snapshot_interval commands.
    if (options_.snapshot_interval > 0 && !rd->committed_entries.empty()) {
      raft::Index last_snap = 0;
      for (const raft::Entry& e : rd->committed_entries) {
        int64_t cmd_index = CommandIndexOf(i, e.index);
        if (e.type == raft::EntryType::kNormal &&
            (cmd_index + 1) % options_.snapshot_interval == 0) {
          last_snap = e.index;
        }
      }
      if (last_snap > s.core_snapshot.meta.index) {
        SmSnapshot snap;
        snap.meta = {last_snap, *s.node->log().TermAt(last_snap)};
        int64_t n = CommandIndexOf(i, last_snap);
        snap.cmds.assign(s.cmds.begin(), s.cmds.begin() + n);
        s.durable_snapshot = snap;  // the snapshot is durable before the log is compacted
        s.core_snapshot = snap;
        CHECK(s.node->Compact(last_snap).ok());
        CHECK(s.storage.Compact(last_snap).ok());
      }
    }
  }
}

int64_t Cluster::CommandIndexOf(int i, raft::Index raft_index) const {
  const Slot& s = slots_[i];
  const raft::RaftLog& log = s.node->log();
  CHECK(s.core_snapshot.meta == log.snapshot()) << "state machine snapshot out of step";
  int64_t n = static_cast<int64_t>(s.core_snapshot.cmds.size());
  for (raft::Index k = log.first_index(); k <= raft_index && k <= log.last_index(); k++) {
    if (log.At(k).type == raft::EntryType::kNormal) n++;
  }
  return n;
}

void Cluster::Persist(int i, uint64_t incarnation, const std::shared_ptr<raft::Ready>& rd) {
  Slot& s = slots_[i];
  if (s.incarnation != incarnation || !s.node) return;  // crashed: never synced
  if (rd->snapshot) {
    // Install order: data durable, then metadata, then drop the entries it covers.
    const SmSnapshot& snap = s.staged.at({rd->snapshot->index, rd->snapshot->term});
    s.durable_snapshot = snap;
    CHECK(s.storage.ApplySnapshot(snap.meta).ok());
    s.cmds = snap.cmds;
    s.applied_raft = snap.meta.index;
    s.checker_log.clear();
    for (size_t k = 0; k < snap.cmds.size(); k++) {
      s.checker_log[static_cast<int64_t>(k + 1)] = snap.cmds[k];
      auto [it, inserted] = committed_cmds_.emplace(static_cast<int64_t>(k + 1), snap.cmds[k]);
      if (!inserted && it->second != snap.cmds[k]) {
        Violation("snapshot at node " + std::to_string(i) + " holds another command at " +
                  std::to_string(k + 1));
      }
    }
  }
  common::Status st = s.storage.Save(rd->hard_state, rd->entries, rd->must_sync);
  CHECK(st.ok()) << st.ToString();
  if (rd->snapshot) s.node->OnSnapshotInstalled(*rd->snapshot);
  if (!rd->entries.empty()) s.node->OnPersisted(rd->entries.back().index, rd->entries.back().term);
  for (const raft::Message& m : rd->messages_after_persist) SendMessage(i, m);
  Drive(i);
}

void Cluster::Apply(int i, const std::vector<raft::Entry>& entries) {
  Slot& s = slots_[i];
  for (const raft::Entry& e : entries) {
    if (e.index != s.applied_raft + 1) {
      Violation("node " + std::to_string(i) + " applied index " + std::to_string(e.index) +
                " after " + std::to_string(s.applied_raft));
    }
    s.applied_raft = e.index;
    if (options_.verbose) {
      Log("node " + std::to_string(i) + " applies " + std::to_string(e.index) + "/t" +
          std::to_string(e.term));
    }
    auto [it, inserted] = committed_.emplace(e.index, std::make_pair(e.term, e.data));
    if (!inserted && (it->second.first != e.term || it->second.second != e.data)) {
      Violation("State Machine Safety: node " + std::to_string(i) + " applied term " +
                std::to_string(e.term) + " at index " + std::to_string(e.index) +
                ", another node applied term " + std::to_string(it->second.first));
    }
    if (e.type != raft::EntryType::kNormal) continue;
    s.cmds.push_back(e.data);
    int64_t cmd_index = static_cast<int64_t>(s.cmds.size());
    // The lab's checkLogs: no two servers apply different commands at one command index.
    auto [ci, ins] = committed_cmds_.emplace(cmd_index, e.data);
    if (!ins && ci->second != e.data) {
      Violation("apply error: command index " + std::to_string(cmd_index) + " differs at node " +
                std::to_string(i));
    }
    if (cmd_index > 1 && !s.checker_log.empty() && !s.checker_log.count(cmd_index - 1)) {
      Violation("apply out of order at node " + std::to_string(i));
    }
    s.checker_log[cmd_index] = e.data;
  }
}

// ---- Network ----

void Cluster::SendMessage(int from, raft::Message m) {
  int to = static_cast<int>(m.to) - 1;
  if (to == from) {
    // A message to itself (a candidate's own vote) is stepped back, never sent.
    Slot& s = slots_[from];
    if (s.node) {
      s.node->Step(m);
      Drive(from);
    }
    return;
  }
  if (m.type == raft::MessageType::kSnapshot) {
    // Stream the state machine's durable snapshot in chunks; the message rides on the last.
    const SmSnapshot& snap = slots_[from].durable_snapshot;
    m.snapshot = snap.meta;
    std::string bytes = EncodeSnapshot(snap);
    uint32_t total = static_cast<uint32_t>((bytes.size() + options_.snapshot_chunk_bytes - 1) /
                                           options_.snapshot_chunk_bytes);
    for (uint32_t k = 0; k < total; k++) {
      Packet p;
      p.from = from;
      p.to = to;
      p.msg = m;
      p.chunk_seq = k;
      p.chunk_total = total;
      p.chunk = bytes.substr(k * options_.snapshot_chunk_bytes, options_.snapshot_chunk_bytes);
      SendPacket(std::move(p), false);
    }
    return;
  }
  bool response = raft::IsResponse(m.type);
  Packet p;
  p.from = from;
  p.to = to;
  p.msg = std::move(m);
  SendPacket(std::move(p), response);
}

void Cluster::SendPacket(Packet p, bool is_response) {
  total_bytes_ += static_cast<int64_t>(raft::MessageBytes(p.msg) + p.chunk.size());
  if (!LinkUp(p.from, p.to)) return;
  Time delay = rng_.Range(options_.min_delay, options_.max_delay);
  if (!reliable_) {
    if (rng_.Chance(options_.unreliable_drop)) return;
    delay = rng_.Range(0, options_.unreliable_max_delay);
  }
  if (long_reordering_ && is_response && rng_.Uniform(900) < 600) {
    // labrpc's long reordering: 200 ms to about 2.2 s, skewed towards short delays.
    delay = 200 * kMs + rng_.Range(0, rng_.Range(0, 2000)) * kMs;
  }
  int copies = (options_.duplicate_rate > 0 && rng_.Chance(options_.duplicate_rate)) ? 2 : 1;
  uint64_t inc_from = slots_[p.from].incarnation;
  for (int c = 0; c < copies; c++) {
    Time at = now_ + (c == 0 ? delay : rng_.Range(0, options_.unreliable_max_delay));
    auto shared = std::make_shared<Packet>(p);
    Schedule(at, [this, shared, inc_from] {
      // Replies of a killed or replaced instance are never delivered (labrpc).
      if (slots_[shared->from].incarnation != inc_from) return;
      Deliver(*shared);
    });
  }
}

void Cluster::Deliver(const Packet& p) {
  if (!LinkUp(p.from, p.to)) return;
  Slot& s = slots_[p.to];
  if (p.chunk_total > 0) {
    auto key = std::make_tuple(p.from, p.msg.snapshot.index, p.msg.snapshot.term);
    Assembly& a = s.incoming[key];
    a.total = p.chunk_total;
    a.chunks[p.chunk_seq] = p.chunk;
    if (a.chunks.size() < a.total) return;
    std::string bytes;
    for (auto& [_, c] : a.chunks) bytes += c;
    s.incoming.erase(key);
    SmSnapshot snap;
    CHECK(DecodeSnapshot(bytes, &snap)) << "snapshot stream corrupt";
    CHECK(snap.meta == p.msg.snapshot);
    s.staged[{snap.meta.index, snap.meta.term}] = std::move(snap);
  }
  if (!raft::IsResponse(p.msg.type)) s.rpc_count++;
  Log("deliver " + std::string(raft::MessageTypeName(p.msg.type)) + " " + std::to_string(p.from) +
      "->" + std::to_string(p.to) + " term " + std::to_string(p.msg.term) + " index " +
      std::to_string(p.msg.index) + " n=" + std::to_string(p.msg.entries.size()) +
      (p.msg.reject ? " reject" : ""));
  s.node->Step(p.msg);
  Drive(p.to);
}

int64_t Cluster::total_rpcs() const {
  int64_t n = 0;
  for (const Slot& s : slots_) n += s.rpc_count;
  return n;
}

Cluster::StartResult Cluster::Start(int i, const std::string& cmd) {
  StartResult r;
  Slot& s = slots_[i];
  if (!s.node) return r;
  raft::Index index;
  raft::Term term;
  if (!s.node->Propose(cmd, &index, &term).ok()) return r;
  r.ok = true;
  r.index = CommandIndexOf(i, index);
  r.term = term;
  // The driver flushes once per loop iteration: proposals made together travel together.
  uint64_t inc = s.incarnation;
  Schedule(now_, [this, i, inc] {
    if (slots_[i].incarnation == inc) Drive(i);
  });
  return r;
}

bool Cluster::ReadIndex(int i, uint64_t ctx) {
  Slot& s = slots_[i];
  if (!s.node || !s.node->ReadIndex(ctx).ok()) return false;
  read_required_[ctx] = committed_.empty() ? 0 : committed_.rbegin()->first;
  uint64_t inc = s.incarnation;
  Schedule(now_, [this, i, inc] {
    if (slots_[i].incarnation == inc) Drive(i);
  });
  return true;
}

// ---- Invariants ----

void Cluster::CheckNode(int i) {
  Slot& s = slots_[i];
  raft::Node& n = *s.node;
  std::string v = n.CheckInvariants();
  if (!v.empty()) Violation("node " + std::to_string(i) + ": " + v);
  if (options_.verbose && (n.role() != s.last_role || n.term() != s.last_term)) {
    Log("node " + std::to_string(i) + " is " + raft::RoleName(n.role()) + " in term " +
        std::to_string(n.term()) + ", log last " + std::to_string(n.log().last_index()) + "/t" +
        std::to_string(n.log().last_term()) + ", commit " + std::to_string(n.log().committed()));
  }
  s.last_term = n.term();
  if (n.role() == raft::Role::kLeader) {
    // Election Safety: at most one leader per term.
    auto [it, inserted] = leaders_.emplace(n.term(), i);
    if (!inserted && it->second != i) {
      Violation("Election Safety: nodes " + std::to_string(it->second) + " and " +
                std::to_string(i) + " both led term " + std::to_string(n.term()));
    }
    bool new_leader = s.last_role != raft::Role::kLeader || s.leader_term != n.term();
    if (new_leader) {
      // Leader Completeness: a leader holds every entry committed before its term.
      for (const auto& [index, te] : committed_) {
        if (index <= n.log().snapshot().index) continue;
        std::optional<raft::Term> t = n.log().TermAt(index);
        if (!t || *t != te.first) {
          Violation("Leader Completeness: leader " + std::to_string(i) + " of term " +
                    std::to_string(n.term()) + " lacks committed index " + std::to_string(index));
          break;
        }
      }
      s.leader_term = n.term();
      s.leader_last = n.log().last_index();
    } else {
      // Leader Append-Only: a leader never overwrites or deletes entries in its log.
      if (n.log().last_index() < s.leader_last) {
        Violation("Leader Append-Only: leader " + std::to_string(i) + " log shrank");
      }
      s.leader_last = n.log().last_index();
    }
  }
  s.last_role = n.role();
}

void Cluster::AfterEvent() {
  events_run_++;
  for (int i = 0; i < size(); i++) {
    if (slots_[i].node) CheckNode(i);
  }
  if (events_run_ % 64 == 0) CheckLogMatching();
}

void Cluster::CheckLogMatching() {
  // Log Matching: if two logs hold an entry with the same index and term, they are identical
  // in all entries up to that index.
  for (int a = 0; a < size(); a++) {
    for (int b = a + 1; b < size(); b++) {
      if (!slots_[a].node || !slots_[b].node) continue;
      const raft::RaftLog& x = slots_[a].node->log();
      const raft::RaftLog& y = slots_[b].node->log();
      raft::Index lo = std::max(x.first_index(), y.first_index());
      raft::Index hi = std::min(x.last_index(), y.last_index());
      raft::Index top = 0;
      for (raft::Index k = hi; k >= lo && k > 0; k--) {
        if (x.At(k).term == y.At(k).term) {
          top = k;
          break;
        }
      }
      for (raft::Index k = lo; k <= top; k++) {
        if (!(x.At(k) == y.At(k))) {
          Violation("Log Matching: nodes " + std::to_string(a) + " and " + std::to_string(b) +
                    " agree at " + std::to_string(top) + " but differ at " + std::to_string(k));
          return;
        }
      }
    }
  }
}

}  // namespace sim
