// raftkv-storage-bench: how fast kv::LogStore makes Raft log appends durable, and how much
// group commit (many entries per synced WriteBatch) buys over one entry per fsync.
//
// Each case appends to a fresh LogStore on a real directory. One iteration is one batch: a
// WriteSteps call with sync=true carrying `batch` consecutive entries of `entry_bytes` payload
// bytes each and a hard state, as the storage thread writes one group commit. Cases: entry
// sizes 64 B and 4 KiB x 1, 16 and 256 entries per batch, each run for at least 1 s.
//
// Flags:
//   --dir=PATH   put the scratch directory under PATH, to choose the filesystem (default:
//                $TMPDIR, else /tmp). A fresh subdirectory is made there and removed at exit.
//   --benchmark_*  Google Benchmark's own flags (--benchmark_filter=4096, --benchmark_out=F,
//                  --benchmark_out_format=json, ...). The console output is always the table.
// While it runs it holds an flock on $BENCH_LOCK (default /tmp/bench.lock, "none": no lock),
// as the scripts of the baseline benchmarks do, so two disk benchmarks never overlap.
//
// Reading the output:
//   raw fsync rate     4 KiB write + fdatasync (then + fsync) in a loop for 1 s on a scratch
//                      file in the same directory: the disk's ceiling for un-batched commits.
//   Time               wall time per batch (one synced WriteBatch).
//   entries_per_second log entries made durable per second.
//   bytes_per_second   entry payload bytes made durable per second, in binary units
//                      (M/s = MiB/s; keys, checksums and LevelDB's framing not counted).
//   fsyncs_per_second  synced batches per second (LevelDB syncs its log once per batch);
//                      with 1 entry per batch, compare it to the raw fsync rate.
//   summary            per entry size, entries/s at 256 per batch over entries/s at 1.
// Timings never pass or fail anything; small machines are noisy, so compare runs made side by
// side.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kv/log_store.h"

namespace {

constexpr int kEntryBytes[] = {64, 4096};
constexpr int kBatches[] = {1, 16, 256};

// "64B", "4KiB".
std::string SizeName(int bytes) {
  return bytes % 1024 == 0 ? std::to_string(bytes / 1024) + "KiB" : std::to_string(bytes) + "B";
}

std::string CaseName(int entry_bytes, int batch) {
  return "Append/entry_bytes:" + std::to_string(entry_bytes) + "/batch:" + std::to_string(batch);
}

// Appends `batch` entries per synced WriteSteps call to a new LogStore under `dir`.
void BM_Append(benchmark::State& state, const std::string& dir, int entry_bytes, int batch) {
  static int runs = 0;
  const std::string path = dir + "/run-" + std::to_string(runs++);
  std::unique_ptr<kv::LogStore> store;
  common::Status st = kv::LogStore::Open(path, {}, &store);
  if (!st.ok()) {
    state.SkipWithError(st.ToString().c_str());
    return;
  }
  kv::LogStore::Step step;
  step.hard_state = raft::HardState{1, 1, 0};
  step.entries.resize(batch,
                      raft::Entry{1, 0, raft::EntryType::kNormal, std::string(entry_bytes, 'x')});
  const std::vector<const kv::LogStore::Step*> steps = {&step};
  for (auto _ : state) {
    raft::Index last = store->last_index();
    for (raft::Entry& e : step.entries) e.index = ++last;
    step.hard_state->commit = last;
    st = store->WriteSteps(steps, /*sync=*/true);
    if (!st.ok()) {
      state.SkipWithError(st.ToString().c_str());
      break;
    }
  }
  const double entries = static_cast<double>(store->last_index());
  state.counters["entries_per_second"] = benchmark::Counter(entries, benchmark::Counter::kIsRate);
  state.counters["fsyncs_per_second"] =
      benchmark::Counter(static_cast<double>(store->syncs()), benchmark::Counter::kIsRate);
  state.SetBytesProcessed(static_cast<int64_t>(entries) * entry_bytes);
  store.reset();
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

// The console table, also keeping each case's entries/s for the summary.
class Reporter : public benchmark::ConsoleReporter {
 public:
  using ConsoleReporter::ConsoleReporter;

  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.run_type != Run::RT_Iteration || run.error_occurred) continue;
      auto it = run.counters.find("entries_per_second");
      if (it == run.counters.end()) continue;
      Mean& m = entries_per_second_[run.run_name.function_name];
      m.sum += it->second.value;  // averaged over --benchmark_repetitions
      m.n++;
    }
    ConsoleReporter::ReportRuns(runs);
  }

  // Mean entries/s of case `name`, or 0 if it did not run.
  double EntriesPerSecond(const std::string& name) const {
    auto it = entries_per_second_.find(name);
    return it == entries_per_second_.end() ? 0 : it->second.sum / it->second.n;
  }

 private:
  struct Mean {
    double sum = 0;
    int n = 0;
  };
  std::map<std::string, Mean> entries_per_second_;
};

// write() 4 KiB then fdatasync() (or fsync()) on a scratch file in `dir` for `seconds`.
// Returns syncs per second, or -1 after printing the error.
double RawSyncRate(const std::string& dir, bool fdatasync_only, double seconds) {
  const std::string path = dir + "/fsync-probe";
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    std::perror(path.c_str());
    return -1;
  }
  const std::string buf(4096, 'x');
  using Clock = std::chrono::steady_clock;
  const Clock::time_point start = Clock::now();
  std::chrono::duration<double> elapsed{0};
  long syncs = 0;
  while (elapsed.count() < seconds) {
    if (write(fd, buf.data(), buf.size()) != static_cast<ssize_t>(buf.size()) ||
        (fdatasync_only ? fdatasync(fd) : fsync(fd)) != 0) {
      std::perror(path.c_str());
      syncs = -1;
      break;
    }
    syncs++;
    elapsed = Clock::now() - start;
  }
  close(fd);
  unlink(path.c_str());
  return syncs < 0 ? -1 : syncs / elapsed.count();
}

// Holds an exclusive flock on $BENCH_LOCK (default /tmp/bench.lock) until exit.
void TakeBenchLock() {
  const char* env = std::getenv("BENCH_LOCK");
  const std::string lock = env != nullptr ? env : "/tmp/bench.lock";
  if (lock == "none") return;
  int fd = open(lock.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
  if (fd < 0) return;  // no lock to share: run anyway
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    std::fprintf(stderr, "waiting for %s (another benchmark is running)\n", lock.c_str());
    flock(fd, LOCK_EX);
  }
}

}  // namespace

int main(int argc, char** argv) {
  // Take --dir=PATH out of argv before Google Benchmark sees it.
  const char* tmpdir = std::getenv("TMPDIR");
  std::string parent = tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp";
  int kept = 1;
  for (int i = 1; i < argc; i++) {
    std::string_view arg = argv[i];
    if (arg.starts_with("--dir=")) {
      parent = arg.substr(6);
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

  TakeBenchLock();
  std::string dir = parent + "/raftkv-storage-bench.XXXXXX";
  std::error_code ec;
  if (mkdtemp(dir.data()) == nullptr) {
    std::perror(dir.c_str());
    return 1;
  }
  std::printf("scratch directory: %s\n", dir.c_str());
  const double fdatasync_rate = RawSyncRate(dir, /*fdatasync_only=*/true, 1.0);
  const double fsync_rate = fdatasync_rate < 0 ? -1 : RawSyncRate(dir, false, 1.0);
  if (fsync_rate < 0) {
    std::filesystem::remove_all(dir, ec);
    return 1;
  }
  std::printf("raw fsync rate: %.0f fsyncs/s (4 KiB write + fdatasync), %.0f fsyncs/s (fsync)\n",
              fdatasync_rate, fsync_rate);
  std::fflush(stdout);

  for (int entry_bytes : kEntryBytes) {
    for (int batch : kBatches) {
      benchmark::RegisterBenchmark(CaseName(entry_bytes, batch).c_str(), BM_Append, dir,
                                   entry_bytes, batch)
          ->MinTime(1.0)
          ->UseRealTime();
    }
  }
  const int color = isatty(STDOUT_FILENO) ? Reporter::OO_Color : Reporter::OO_None;
  Reporter reporter(static_cast<Reporter::OutputOptions>(color | Reporter::OO_Tabular));
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  std::filesystem::remove_all(dir, ec);

  for (int entry_bytes : kEntryBytes) {
    const double one = reporter.EntriesPerSecond(CaseName(entry_bytes, 1));
    const double many = reporter.EntriesPerSecond(CaseName(entry_bytes, 256));
    if (one <= 0 || many <= 0) continue;  // filtered out or failed
    std::printf("%s: 256/batch appends %.1fx more entries/s than 1/batch (%.0f vs %.0f)\n",
                SizeName(entry_bytes).c_str(), many / one, many, one);
  }
  return 0;
}
