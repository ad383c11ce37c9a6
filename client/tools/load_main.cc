// raftkv-load: a concurrent load on a raftkv cluster that records every operation in a history
// for the linearizability checker and the lost/duplicated-append check (raftkv-lincheck).
//
//   raftkv-load --nodes H:P,H:P,... --clients N --duration S --seed K --history FILE
//               [--keys K] [--password P] [--op-timeout-ms MS] [--drop-replies PCT]
//               [--final-timeout S]
//
// N threads, each with its own Client (exactly-once session opened at the start, closed at the
// end). Client i (0-based) sticks to one node, node i mod n of --nodes, and moves on only on
// errors (prefer_leader = false), so the clients are spread over every node and the reads a
// follower serves are part of the history. Two disjoint sets of keys (K each, default 3):
//  * register keys r0..r{K-1}: GET (50%) and SET (50%) of a unique value "c<i>.<n>";
//  * append keys a0..a{K-1}: GET (30%) and APPEND (70%) of a unique token "c<i>.<n>;"
// (n counts client i's writes). Each operation's call and return times (steady clock, ns) and
// outcome are recorded as one JSON line in FILE (client/history.h), unknown ones included.
//
// After S seconds the threads stop issuing and finish the operation they are in (bounded by
// --op-timeout-ms, default 10000). Then a fresh client (client id N, leader preferred) reads
// every key, retrying each until a read succeeds, all within --final-timeout seconds (default
// 60); these final reads are recorded too: they are what the append check compares against.
//
// --drop-replies PCT makes each load client discard PCT% of its replies and retry (testing aid:
// every retry of a write must be deduplicated by the server's session).
//
// Prints one line on stdout:
//   ops=<n> ok=<n> failed=<n> unknown=<n> final_reads=<keys read>/<keys>
// (the counts are the load's operations, the final reads not included), and a progress line on
// stderr every 5 s. Exit status: 0 when every final read completed and the history was written;
// 1 when a final read did not complete in time or the history could not be written; 2 on bad
// usage.
#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "client/client.h"
#include "client/history.h"

namespace raftkv::client {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kMaxClients = 1000;
constexpr int kMaxKeys = 1000;
constexpr auto kProgressInterval = std::chrono::seconds(5);

struct LoadFlags {
  std::vector<Endpoint> nodes;
  int clients = 0;
  int64_t duration_s = -1;
  uint64_t seed = 0;
  bool seed_given = false;
  std::string history;
  int keys = 3;
  std::string password;
  int64_t op_timeout_ms = 10000;
  int drop_replies_percent = 0;
  int64_t final_timeout_s = 60;
};

// Counts of the load's outcomes, shared by the threads.
struct Counters {
  std::atomic<int64_t> ops{0}, ok{0}, failed{0}, unknown{0};

  void Add(Outcome outcome) {
    ops++;
    switch (outcome) {
      case Outcome::kOk:
        ok++;
        break;
      case Outcome::kFailed:
        failed++;
        break;
      case Outcome::kUnknown:
        unknown++;
        break;
    }
  }
  std::string Format() const {
    return "ops=" + std::to_string(ops.load()) + " ok=" + std::to_string(ok.load()) +
           " failed=" + std::to_string(failed.load()) +
           " unknown=" + std::to_string(unknown.load());
  }
};

int Usage(std::string_view problem) {
  std::cerr << "raftkv-load: " << problem << "\n"
            << "usage: raftkv-load --nodes H:P,H:P,... --clients N --duration S --seed K\n"
               "                   --history FILE [--keys K] [--password P]\n"
               "                   [--op-timeout-ms MS] [--drop-replies PCT] [--final-timeout S]\n";
  return 2;
}

// Parses a decimal integer in [lo, hi].
bool ParseInt(std::string_view text, int64_t lo, int64_t hi, int64_t* out) {
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || v < lo || v > hi) return false;
  *out = v;
  return true;
}

// Returns 0 on success, else the exit status of a usage error (after printing it).
int ParseFlags(int argc, char** argv, LoadFlags* flags) {
  bool nodes_given = false, duration_given = false;
  for (int i = 1; i < argc; i++) {
    const std::string_view name(argv[i]);
    if (i + 1 >= argc) return Usage("missing value after " + std::string(name));
    const std::string_view value(argv[++i]);
    int64_t n = 0;
    if (name == "--nodes") {
      common::Status s = ParseEndpoints(value, &flags->nodes);
      if (!s.ok()) return Usage("--nodes: " + s.ToString());
      nodes_given = true;
    } else if (name == "--clients") {
      if (!ParseInt(value, 1, kMaxClients, &n))
        return Usage("--clients: 1.." + std::to_string(kMaxClients));
      flags->clients = static_cast<int>(n);
    } else if (name == "--duration") {
      if (!ParseInt(value, 0, 86400, &n)) return Usage("--duration: seconds, 0..86400");
      flags->duration_s = n;
      duration_given = true;
    } else if (name == "--seed") {
      if (!ParseInt(value, 0, INT64_MAX, &n)) return Usage("--seed: a non-negative integer");
      flags->seed = static_cast<uint64_t>(n);
      flags->seed_given = true;
    } else if (name == "--history") {
      if (value.empty()) return Usage("--history: a file name");
      flags->history = value;
    } else if (name == "--keys") {
      if (!ParseInt(value, 1, kMaxKeys, &n)) return Usage("--keys: 1.." + std::to_string(kMaxKeys));
      flags->keys = static_cast<int>(n);
    } else if (name == "--password") {
      flags->password = value;
    } else if (name == "--op-timeout-ms") {
      if (!ParseInt(value, 1, 3600000, &n)) return Usage("--op-timeout-ms: 1..3600000");
      flags->op_timeout_ms = n;
    } else if (name == "--drop-replies") {
      if (!ParseInt(value, 0, 100, &n)) return Usage("--drop-replies: a percentage, 0..100");
      flags->drop_replies_percent = static_cast<int>(n);
    } else if (name == "--final-timeout") {
      if (!ParseInt(value, 1, 86400, &n)) return Usage("--final-timeout: seconds, 1..86400");
      flags->final_timeout_s = n;
    } else {
      return Usage("unknown flag " + std::string(name));
    }
  }
  if (!nodes_given || flags->clients == 0 || !duration_given || !flags->seed_given ||
      flags->history.empty()) {
    return Usage("--nodes, --clients, --duration, --seed and --history are required");
  }
  return 0;
}

// One load thread: client `id` issues random operations until `stop`.
void RunLoadClient(const LoadFlags& flags, int id, Clock::time_point stop,
                   HistoryRecorder* recorder, Counters* counters) {
  Options options;
  const size_t n = flags.nodes.size();
  for (size_t k = 0; k < n; k++) options.nodes.push_back(flags.nodes[(id + k) % n]);
  options.prefer_leader = false;
  options.password = flags.password;
  options.op_timeout = Millis(flags.op_timeout_ms);
  options.drop_reply_percent = flags.drop_replies_percent;
  options.seed = flags.seed * 1000003 + static_cast<uint64_t>(id) + 1;
  Client client(options);
  // A write opens the session itself when this fails, so a failure here is not fatal.
  common::Status s = client.Open();
  if (!s.ok()) {
    std::cerr << "raftkv-load: client " << id << ": cannot open a session yet: " << s.ToString()
              << "\n";
  }

  std::mt19937_64 rng(options.seed);
  auto percent = [&rng] { return std::uniform_int_distribution<int>(0, 99)(rng); };
  std::uniform_int_distribution<int> pick_key(0, flags.keys - 1);
  int64_t writes = 0;
  while (Clock::now() < stop) {
    HistoryOp op;
    op.client = id;
    const bool append_key = percent() < 50;
    op.key = (append_key ? "a" : "r") + std::to_string(pick_key(rng));
    const int p = percent();
    const bool write = append_key ? p < 70 : p < 50;
    if (write) {
      op.op = append_key ? "append" : "set";
      op.value = "c" + std::to_string(id) + "." + std::to_string(writes++);
      if (append_key) op.value->push_back(';');
    } else {
      op.op = "get";
    }
    op.call = NowNanos();
    const Result r = !write       ? client.Get(op.key)
                     : append_key ? client.Append(op.key, *op.value)
                                  : client.Set(op.key, *op.value);
    op.ret = NowNanos();
    FillFromResult(r, &op);
    recorder->Record(op);
    counters->Add(r.outcome);
  }
  client.Close();
}

// Reads every key once with a fresh client, retrying each until it succeeds or `deadline`.
// Records every attempt. Returns the number of keys read.
int FinalReads(const LoadFlags& flags, Clock::time_point deadline, HistoryRecorder* recorder) {
  Options options;
  options.nodes = flags.nodes;
  options.password = flags.password;
  options.prefer_leader = true;
  options.op_timeout = Millis(std::min(flags.op_timeout_ms, flags.final_timeout_s * 1000));
  options.seed = flags.seed * 1000003;
  Client client(options);
  std::vector<std::string> keys;
  for (int k = 0; k < flags.keys; k++) keys.push_back("r" + std::to_string(k));
  for (int k = 0; k < flags.keys; k++) keys.push_back("a" + std::to_string(k));
  int read = 0;
  for (const std::string& key : keys) {
    bool done = false;
    std::string last_error = "no time left";
    while (!done && Clock::now() < deadline) {
      HistoryOp op;
      op.client = flags.clients;
      op.op = "get";
      op.key = key;
      op.call = NowNanos();
      const Result r = client.Get(key);
      op.ret = NowNanos();
      FillFromResult(r, &op);
      recorder->Record(op);
      done = r.outcome == Outcome::kOk;
      if (!done) {
        last_error = r.error.empty() ? r.reply.str : r.error;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
    if (!done) {
      std::cerr << "raftkv-load: the final read of " << key
                << " did not succeed in time; last error: " << last_error << "\n";
      continue;
    }
    read++;
  }
  client.Close();
  return read;
}

int Run(int argc, char** argv) {
  LoadFlags flags;
  if (int rc = ParseFlags(argc, argv, &flags); rc != 0) return rc;

  std::unique_ptr<HistoryRecorder> recorder;
  common::Status s = HistoryRecorder::Open(flags.history, &recorder);
  if (!s.ok()) {
    std::cerr << "raftkv-load: " << s.ToString() << "\n";
    return 1;
  }

  Counters counters;
  const Clock::time_point start = Clock::now();
  const Clock::time_point stop = start + std::chrono::seconds(flags.duration_s);
  std::atomic<int> running{flags.clients};
  std::vector<std::thread> threads;
  for (int id = 0; id < flags.clients; id++) {
    threads.emplace_back([&, id] {
      RunLoadClient(flags, id, stop, recorder.get(), &counters);
      running--;
    });
  }
  Clock::time_point next_progress = start + kProgressInterval;
  while (running.load() > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (Clock::now() >= next_progress) {
      const auto elapsed =
          std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - start).count();
      std::cerr << "raftkv-load: t=" << elapsed << "s " << counters.Format() << "\n";
      next_progress += kProgressInterval;
    }
  }
  for (std::thread& t : threads) t.join();

  const int keys = 2 * flags.keys;
  const int read =
      FinalReads(flags, Clock::now() + std::chrono::seconds(flags.final_timeout_s), recorder.get());
  s = recorder->Close();
  if (!s.ok())
    std::cerr << "raftkv-load: writing " << flags.history << ": " << s.ToString() << "\n";

  std::cout << counters.Format() << " final_reads=" << read << "/" << keys << std::endl;
  return read == keys && s.ok() ? 0 : 1;
}

}  // namespace
}  // namespace raftkv::client

int main(int argc, char** argv) { return raftkv::client::Run(argc, argv); }
