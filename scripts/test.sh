#!/usr/bin/env bash
# Builds raftkv and runs every check: unit and lab tests (ctest), the randomized cluster
# simulator, the same again under AddressSanitizer/UndefinedBehaviorSanitizer, and the
# formatting check. Installs missing build tools first (scripts/setup.sh).
#
# Environment:
#   RAFTKV_BUILD           build directory (default: build); the sanitizer build goes to
#                          "$RAFTKV_BUILD-asan"
#   RAFTKV_SIM_SEEDS       number of simulator seeds in the main run (default: 500)
#   RAFTKV_SKIP_SANITIZE   set to 1 to skip the sanitizer build and its tests
#   RAFTKV_NEMESIS_RUNS    number of scripts/nemesis.sh runs (default: 2; 0 skips them); run i
#                          uses 3 nodes when i is odd, 5 (and a snapshot every 2000 entries)
#                          when even, and seed i
#   RAFTKV_NEMESIS_DURATION  seconds of load and faults per nemesis run (default: 60)
#
# The lab's KV suite (ctest label `kvlab`) runs in the main build only: its processes keep
# real-time deadlines that the sanitizers' slowdown would stretch past the suite's bounds.
#
# Exits non-zero at the first failing step, naming it.
set -euo pipefail

cd "$(dirname "$0")/.."

B="${RAFTKV_BUILD:-build}"
SIM_SEEDS="${RAFTKV_SIM_SEEDS:-500}"
SIM_SEEDS_SANITIZE=50

# ---- Steps: a header, a timer, and a failure message that names the step ----

current_step=""
step_start_us=0

now_us() {
  local t="${EPOCHREALTIME//[.,]/}"
  echo "$((10#$t))"
}

format_us() {
  local us=$1
  printf '%d.%01ds' "$((us / 1000000))" "$(((us % 1000000) / 100000))"
}

on_exit() {
  local rc=$?
  if ((rc != 0)) && [[ -n $current_step ]]; then
    echo "test.sh: FAILED in step '$current_step' (exit $rc)" >&2
  fi
}
trap on_exit EXIT

fail() {
  echo "test.sh: $*" >&2
  exit 1
}

# step NAME COMMAND...: runs COMMAND as the step NAME; the script stops if it fails.
step() {
  current_step=$1
  shift
  echo
  echo "== $current_step =="
  step_start_us=$(now_us)
  "$@"
  echo "== $current_step: ok in $(format_us $(($(now_us) - step_start_us)))"
  current_step=""
}

# ---- What the steps do ----

build() {
  local dir=$1
  shift
  cmake -S . -B "$dir" -G Ninja "$@"
  cmake --build "$dir" -j2
}

run_ctest() {
  local dir=$1 timeout=$2
  shift 2
  ctest --test-dir "$dir" --output-on-failure --no-tests=error -j2 --timeout "$timeout" "$@"
}

# run_nemesis RUNS DURATION: scripts/nemesis.sh RUNS times against the main build, each with
# every fault; each must end with violations=0 lost=0 duplicated=0.
run_nemesis() {
  local runs=$1 duration=$2 i nodes last rc extra
  for ((i = 1; i <= runs; i++)); do
    nodes=$((i % 2 == 1 ? 3 : 5))
    # Every other run snapshots often, so that faults hit snapshot streams and installs too.
    extra=""
    ((i % 2 == 1)) || extra="--snapshot-entries 2000 --snapshot-keep-entries 200"
    local dir="$B/nemesis/run$i"
    rc=0
    last=$(RAFTKV_BUILD="$B" RAFTKV_DIR="$dir" RAFTKV_BASE_PORT=7700 RAFTKV_EXTRA_FLAGS="$extra" \
      timeout $((duration + 240)) scripts/nemesis.sh --nodes "$nodes" --duration "$duration" \
      --faults kill,pause,isolate,partition,restart --clients 8 --seed "$i" 2>"$dir.log" |
      tail -n 1) || rc=$?
    echo "run $i (nodes=$nodes seed=$i${extra:+ $extra}): $last"
    if ((rc != 0)) || ! grep -Eq 'violations=0 lost=0 duplicated=0$' <<<"$last"; then
      tail -n 30 "$dir.log" >&2 || true
      # A node that hung: the threads cluster.sh saved before killing it.
      find "$dir" -name 'stacks-*.txt' -exec head -n 150 {} + >&2 2>/dev/null || true
      fail "nemesis run $i (nodes=$nodes seed=$i) failed (exit $rc); history and logs in $dir"
    fi
  done
}

# run_sim BINARY SEEDS: runs the simulator over seeds 1..SEEDS; its last line must report no
# failures ("seeds=<n> failures=0 seconds=<s>").
run_sim() {
  local bin=$1 seeds=$2
  [[ -x $bin ]] || fail "$bin not found: the build did not produce the simulator"
  local log rc=0
  log="$(dirname "$(dirname "$bin")")/raftkv-sim.log"
  "$bin" --seeds "1-$seeds" | tee "$log" || rc=$?
  local last
  last="$(tail -n 1 "$log")"
  ((rc == 0)) || fail "raftkv-sim exited with status $rc (last line: '$last'); output in $log"
  grep -Eq '^seeds=[0-9]+ failures=0 ' <<<"$last" ||
    fail "raftkv-sim reported failures or no summary (last line: '$last'); output in $log"
}

check_format() {
  git rev-parse --is-inside-work-tree >/dev/null 2>&1 ||
    fail "not a git work tree: the formatting check covers tracked files only"
  local files=() unformatted=() f
  mapfile -d '' files < <(git ls-files -z -- '*.h' '*.cc')
  for f in "${files[@]}"; do
    [[ -f $f ]] || continue
    clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || unformatted+=("$f")
  done
  echo "checked ${#files[@]} tracked files"
  if ((${#unformatted[@]} > 0)); then
    echo "not formatted (fix with: clang-format -i FILE...):" >&2
    printf '  %s\n' "${unformatted[@]}" >&2
    fail "${#unformatted[@]} file(s) not formatted"
  fi
}

# ---- The run ----

total_start_us=$(now_us)

# setup.sh installs only what is missing and returns at once when nothing is.
step "setup" scripts/setup.sh

step "build ($B)" build "$B" -DCMAKE_BUILD_TYPE=RelWithDebInfo
step "ctest ($B)" run_ctest "$B" 300
step "raftkv-sim, $SIM_SEEDS seeds" run_sim "$B/bin/raftkv-sim" "$SIM_SEEDS"
NEMESIS_RUNS="${RAFTKV_NEMESIS_RUNS:-2}"
NEMESIS_DURATION="${RAFTKV_NEMESIS_DURATION:-60}"
if ((NEMESIS_RUNS > 0)); then
  mkdir -p "$B/nemesis"
  step "nemesis, $NEMESIS_RUNS runs of ${NEMESIS_DURATION}s" \
    run_nemesis "$NEMESIS_RUNS" "$NEMESIS_DURATION"
fi

if [[ ${RAFTKV_SKIP_SANITIZE:-0} == 1 ]]; then
  echo
  echo "== sanitizers: skipped (RAFTKV_SKIP_SANITIZE=1) =="
else
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
  step "build ($B-asan, ASan+UBSan)" build "$B-asan" -DRAFTKV_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
  step "ctest ($B-asan)" run_ctest "$B-asan" 600 -LE kvlab
  step "raftkv-sim ($B-asan), $SIM_SEEDS_SANITIZE seeds" \
    run_sim "$B-asan/bin/raftkv-sim" "$SIM_SEEDS_SANITIZE"
fi

step "format" check_format

echo
echo "test.sh: all passed ($(format_us $(($(now_us) - total_start_us))))"
