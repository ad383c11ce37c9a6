#!/usr/bin/env bash
# Soak test: long write loads, a follower catching up, restarts and a fault run on local
# clusters of real raftkv-server processes, measured against the bounds the project promises.
#
#   scripts/soak.sh                       every phase, full size (about 7-12 minutes)
#   scripts/soak.sh --quick               every count divided by 10, for development
#   scripts/soak.sh --only catchup,restart --keep
#
# Phases (each on a fresh 3-node cluster of scripts/cluster.sh in its own directory):
#   compaction  2,000,000 SETs of 100-byte values over 100,000 keys, once with redis-benchmark's
#               values and once with random ones that do not compress; every node's data
#               directory stays within 3 x live data + 64 MiB
#   catchup     1,000,000 SETs while a follower is paused; resumed under a write load, it
#               reaches the leader's applied index within 30 s; peak RSS per node within the
#               memory bound of docs/operations.md, connected clients within the C it assumes
#   restart     1,000,000 keys loaded; a restarted follower serves a correct read within 2 s;
#               the time for the whole restarted cluster is measured too
#   nemesis     scripts/nemesis.sh with frequent snapshots; the KV lab's snapshot tests (ctest)
#
# The output ends with one table, a row per measurement: name | measured | bound | result.
# Run `scripts/soak.sh --help` for the options and exit statuses; docs/operations.md
# ("Soak test") has more.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cluster=$root/scripts/cluster.sh
nemesis=$root/scripts/nemesis.sh
build=${RAFTKV_BUILD:-build}
[[ $build == /* ]] || build=$root/$build
export RAFTKV_BUILD=$build
base=${RAFTKV_BASE_PORT:-7300}
export RAFTKV_BASE_PORT=$base
readonly nemesis_base_port=7500
readonly all_phases="compaction catchup restart nemesis"

readonly leader_timeout_s=30        # for a leader after a start
readonly converge_timeout_s=120     # for every node to reach the leader's applied index
readonly cluster_cmd_timeout_s=60   # any one cluster.sh command
readonly bench_timeout_s=900        # one redis-benchmark run
readonly catchup_bound_s=30         # the follower must catch up within this
readonly catchup_give_up_s=90       # and is watched at most this long
readonly restart_bound_s=2          # restart to the first correct read
readonly restart_give_up_s=30
readonly dir_slack_kib=65536        # data directory bound: 3 x live + 64 MiB
readonly value_bytes=100
readonly catchup_clients=52         # C of the memory bound: 50 benchmark connections, 2 probes
readonly catchup_flags="--client-query-buffer-limit 1048576 --client-output-buffer-limit 1048576"

usage() {
  cat <<'EOF'
usage: scripts/soak.sh [--quick] [--only PHASE[,PHASE...]] [--dir DIR] [--keep]

Runs the soak phases, each on a fresh 3-node cluster (scripts/cluster.sh) in its own directory
under the run directory, and prints one table at the end: a row per measurement,
  name | measured | bound | result
with result PASS or FAIL, plus rows marked `info` (throughput, live data, the whole-cluster
restart) that pass or fail nothing.

Phases (default: all, in this order):
  compaction  2,000,000 SETs (redis-benchmark -t set -c 50 -P 16 -d 100 -r 100000) on the
              leader; once every node has applied everything, each node's data directory
              (du -sk) must be at most 3 x the live data (keys x (key + value bytes)) + 64 MiB.
              Then the same on a second cluster with 2,000,000 SETs of random 100-byte values
              that do not compress (base64 text), keys key:%012d drawn at random from 100,000,
              made by python3 and sent with redis-cli --pipe (skipped without python3)
  catchup     nodes started with --client-query-buffer-limit 1048576
              --client-output-buffer-limit 1048576; a follower paused during 1,000,000 SETs;
              then a write load on the leader, the follower resumed: it must reach the
              leader's applied index of the moment of resume (and install a snapshot, when
              INFO counts them) within 30 s. Also the leader's throughput during the catch-up,
              each node's peak RSS (VmHWM) against the memory bound of docs/operations.md
              ("Memory bound") for 52 clients (50 benchmark connections, 2 redis-cli probes),
              and the largest connected_clients seen against those 52
  restart     1,000,000 keys k:<n> of 100 bytes loaded (MSET of 1000 keys, redis-cli --pipe);
              a follower killed and restarted must answer GET correctly within 2 s of the
              restart; then all three killed and started again: the time until each answers
              is shown (info: it includes electing a leader)
  nemesis     scripts/nemesis.sh --nodes 3 --duration 60 --faults
              kill,pause,isolate,partition,restart --clients 8 --seed 41 with a snapshot every
              2000 entries (base port 7500), then the KV lab's snapshot tests
              (ctest -R 'KvLab\..*Snapshot')

Options:
  --quick        every count divided by 10 (SETs, keys, the nemesis duration); same bounds
  --only LIST    run only these phases (comma-separated)
  --dir DIR      the run directory (default: ${TMPDIR:-/tmp}/raftkv-soak-<date>); it must be
                 new, empty, or one an earlier soak run made
  --keep         keep the run directory (the nodes' data and logs); it is also kept when a row
                 fails
  -h, --help     this text

Exit status: 0 when every row passes; 1 when a row fails; 2 on bad usage; 3 when the run could
not complete (no build, a cluster that does not start, no leader).

Environment:
  RAFTKV_BASE_PORT   node i serves clients on 127.0.0.1:(B+i), peers on B+10000+i (default
                     7300; the nemesis phase uses 7500)
  RAFTKV_BUILD       build directory (default: build); raftkv-server (and, for the nemesis
                     phase, kvlab_test) are built there or brought up to date first
  RAFTKV_EXTRA_FLAGS more server flags for every node (scripts/cluster.sh); the memory
                     bound takes its limits from them (and from the catchup phase's own)
EOF
}

usage_error() {
  echo "soak.sh: $*" >&2
  echo "run 'scripts/soak.sh --help' for usage" >&2
  exit 2
}

# ---- Arguments ----

quick=0 keep=0 only="" run=""
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1 ;;
    --keep) keep=1 ;;
    --only | --dir)
      [ $# -ge 2 ] || usage_error "$1 needs a value"
      if [ "$1" = --only ]; then only=$2; else run=$2; fi
      shift
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    *) usage_error "unknown option '$1'" ;;
  esac
  shift
done

phases=()
if [ -n "$only" ]; then
  IFS=, read -r -a wanted <<<"$only"
  for p in $all_phases; do  # in the order of the run, each once
    for w in "${wanted[@]}"; do
      [[ " $all_phases " == *" $w "* ]] || usage_error "--only: unknown phase '$w' (known: ${all_phases// /, })"
      if [ "$w" = "$p" ]; then
        phases+=("$p")
        break
      fi
    done
  done
else
  read -r -a phases <<<"$all_phases"
fi
[ ${#phases[@]} -gt 0 ] || usage_error "--only: no phase given"

# Counts, divided by 10 with --quick.
scale=1
[ "$quick" = 0 ] || scale=10
compaction_sets=$((2000000 / scale))
catchup_sets=$((1000000 / scale))
bench_keys=$((100000 / scale))
restart_keys=$((1000000 / scale))
readonly mset_keys=1000 # keys per MSET: ~110 KiB an entry, far below max-entry-bytes
nemesis_duration=$((60 / scale))

# ---- The run directory ----

readonly marker=.raftkv-soak # in every run directory this script makes
if [ -z "$run" ]; then
  run=${TMPDIR:-/tmp}/raftkv-soak-$(date '+%Y%m%d-%H%M%S')
fi
[[ $run == /* ]] || run=$(pwd)/$run
run=${run%/}
if [ -e "$run" ]; then
  [ -d "$run" ] || usage_error "--dir $run is not a directory"
  if [ ! -e "$run/$marker" ] && [ -n "$(ls -A "$run")" ]; then
    usage_error "--dir $run is not empty and no soak run made it; refusing to use it"
  fi
fi
mkdir -p "$run"
: >"$run/$marker"
log_file=$run/soak.log
: >"$log_file"

now() { date -u '+%H:%M:%S'; }

# A progress line on stderr and in soak.log.
log() {
  echo "$(now) soak: $*" >>"$log_file"
  echo "$(now) soak: $*" >&2
}

fatal() {
  log "error: $*"
  exit 3
}

# ---- The table ----

row_names=() row_measured=() row_bounds=() row_results=()

# Adds a row: name, measured, bound, result (PASS, FAIL or info).
row() {
  row_names+=("$1")
  row_measured+=("$2")
  row_bounds+=("$3")
  row_results+=("$4")
  log "row: $1 | $2 | $3 | $4"
}

# PASS when the decimal $1 is at most $2 (FAIL when $1 is not a number).
at_most() {
  if awk -v a="$1" -v b="$2" 'BEGIN { exit !(a ~ /^[0-9.]+$/ && a + 0 <= b + 0) }'; then
    echo PASS
  else
    echo FAIL
  fi
}

print_table() {
  local i w1=11 w2=8 w3=5
  for i in "${!row_names[@]}"; do
    [ ${#row_names[i]} -le "$w1" ] || w1=${#row_names[i]}
    [ ${#row_measured[i]} -le "$w2" ] || w2=${#row_measured[i]}
    [ ${#row_bounds[i]} -le "$w3" ] || w3=${#row_bounds[i]}
  done
  printf '%-*s | %-*s | %-*s | %s\n' "$w1" measurement "$w2" measured "$w3" bound result
  printf '%s-+-%s-+-%s-+-%s\n' "$(printf '%*s' "$w1" '' | tr ' ' -)" \
    "$(printf '%*s' "$w2" '' | tr ' ' -)" "$(printf '%*s' "$w3" '' | tr ' ' -)" ------
  for i in "${!row_names[@]}"; do
    printf '%-*s | %-*s | %-*s | %s\n' "$w1" "${row_names[i]}" "$w2" "${row_measured[i]}" \
      "$w3" "${row_bounds[i]}" "${row_results[i]}"
  done
}

# ---- Cleaning up ----

# Processes this script started in the background (load, sampler, nemesis.sh, ctest), by pid.
bg_pids=()
current_cluster="" # the RAFTKV_DIR of the phase's running cluster, stopped on exit

# Stops process $1: SIGTERM, SIGKILL after 30 s (nemesis.sh needs some to stop its cluster).
stop_pid() {
  local pid=$1 deadline=$((SECONDS + 30))
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# Removes pid $1 from bg_pids.
forget_pid() {
  local p rest=()
  for p in "${bg_pids[@]}"; do [ "$p" = "$1" ] || rest+=("$p"); done
  bg_pids=("${rest[@]}")
}

# Waits for background process $1, which is in bg_pids, and forgets it; returns its status.
wait_bg() {
  local rc=0
  wait "$1" || rc=$?
  forget_pid "$1"
  return "$rc"
}

# Runs "${@:3}" in the background, its standard output to file $1 and standard error to file
# $2 (not redirected at the call: the traps may run inside this function, and must print to the
# script's own output), so that a signal reaches the trap at once and the EXIT trap can stop it;
# waits for it and returns its status.
run_waited() {
  "${@:3}" >"$1" 2>"$2" &
  bg_pids+=($!)
  wait_bg $!
}

stop_background() {
  local pid
  for pid in "${bg_pids[@]}"; do stop_pid "$pid"; done
  bg_pids=()
}

# Stops the phase's cluster (cluster.sh stop resumes a paused node first).
stop_cluster() {
  [ -n "$current_cluster" ] || return 0
  RAFTKV_DIR=$current_cluster timeout "$cluster_cmd_timeout_s" "$cluster" stop >>"$log_file" 2>&1 || true
  current_cluster=""
}

finished=0
# shellcheck disable=SC2317  # run by the EXIT trap
on_exit() {
  local rc=$?
  trap - EXIT INT TERM
  stop_background
  stop_cluster
  if [ "$finished" = 0 ]; then
    [ ${#row_names[@]} -eq 0 ] || print_table
    echo "run directory: $run (kept)"
    [ "$rc" -ne 0 ] || rc=3
  fi
  exit "$rc"
}
trap on_exit EXIT
trap 'log "interrupted"; exit 130' INT TERM

# ---- Programs ----

server=$build/bin/raftkv-server
command -v redis-cli >/dev/null || fatal "redis-cli is missing (scripts/setup.sh installs redis-tools)"
command -v redis-benchmark >/dev/null || fatal "redis-benchmark is missing (scripts/setup.sh installs redis-tools)"
command -v cmake >/dev/null || fatal "cmake is missing (scripts/setup.sh installs it)"
targets=(raftkv-server)
[[ " ${phases[*]} " != *" nemesis "* ]] || targets+=(kvlab_test)
# Built when missing, brought up to date otherwise; when the build fails but the server is
# there, the run goes on with it, with a warning.
log "building ${targets[*]} in $build (when not up to date)"
if { [ -f "$build/CMakeCache.txt" ] ||
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >>"$log_file" 2>&1; } &&
  cmake --build "$build" -j2 --target "${targets[@]}" >>"$log_file" 2>&1; then
  :
elif [ -x "$server" ]; then
  log "warning: the build failed (see $log_file); using the programs already in $build/bin"
else
  fatal "cannot build ${targets[*]} in $build (see $log_file)"
fi

# ---- Cluster helpers ----

port_of() { echo $((base + $1)); }

# Runs cluster.sh on the phase's cluster, bounded; output to soak.log. Returns its status.
cl() {
  local rc=0
  timeout "$cluster_cmd_timeout_s" "$cluster" "$@" >>"$log_file" 2>&1 || rc=$?
  [ "$rc" -eq 0 ] || log "cluster.sh $* exited $rc"
  return "$rc"
}

# redis-cli against node $1 with a limit of $2 seconds; the reply without carriage returns.
cli() {
  timeout "$2" redis-cli -h 127.0.0.1 -p "$(port_of "$1")" "${@:3}" 2>/dev/null | tr -d '\r' || true
}

# The value of INFO field $3 (section $2) on node $1; empty when it does not answer or has no
# such field.
info_field() {
  cli "$1" 2 INFO "$2" | sed -n "s/^$3://p" || true
}
applied() { info_field "$1" raft raft_applied_index; }

# The number of keys in node $1's own state (INFO keyspace: not forwarded to the leader).
local_keys() {
  local k
  k=$(info_field "$1" keyspace db0 | sed -n 's/^keys=\([0-9]*\).*/\1/p')
  echo "${k:-0}"
}

# Starts a fresh 3-node cluster in $run/$1 and waits for a leader; sets `leader`. The server
# flags $2, if any, come after RAFTKV_EXTRA_FLAGS's (cluster.sh writes both into every node's
# raftkv.conf at start; the last value of a key wins).
leader=""
start_cluster() {
  local d=$run/$1
  rm -rf "$d"
  export RAFTKV_DIR=$d
  current_cluster=$d
  RAFTKV_EXTRA_FLAGS="${RAFTKV_EXTRA_FLAGS:-}${2:+ $2}" cl start -n 3 || fatal "cluster.sh start failed in $d (see $log_file and $d/node*/server.log)"
  wait_leader
}

wait_leader() {
  local deadline=$((SECONDS + leader_timeout_s))
  until leader=$(timeout 10 "$cluster" leader 2>/dev/null); do
    [ "$SECONDS" -lt "$deadline" ] || fatal "no leader within ${leader_timeout_s} s in $RAFTKV_DIR"
    sleep 0.2
  done
  log "leader: node $leader"
}

# Waits until every node's raft_applied_index equals the leader's; returns 1 after
# converge_timeout_s.
wait_converged() {
  local deadline=$((SECONDS + converge_timeout_s)) a b c
  while :; do
    a=$(applied 1) b=$(applied 2) c=$(applied 3)
    if [ -n "$a" ] && [ "$a" = "$b" ] && [ "$b" = "$c" ] && [ "$a" = "$(applied "$leader")" ]; then
      log "every node applied index $a"
      return 0
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "warning: applied indexes still differ after ${converge_timeout_s} s: $a $b $c"
      return 1
    fi
    sleep 0.2
  done
}

# Runs the SET benchmark on the leader: $1 requests over $bench_keys keys; output to file $2.
# Sets `rps` to its requests per second (empty when it failed).
rps=""
bench() {
  local rc=0
  run_waited "$2" "$2.err" timeout "$bench_timeout_s" redis-benchmark -h 127.0.0.1 \
    -p "$(port_of "$leader")" -t set -n "$1" -c 50 -P 16 -d "$value_bytes" -r "$bench_keys" -q ||
    rc=$?
  rps=$(tr '\r' '\n' <"$2" | sed -n 's/^SET: \([0-9.]*\) requests per second.*/\1/p' | tail -n 1)
  [ "$rc" -eq 0 ] || log "redis-benchmark exited $rc (see $2)"
  log "redis-benchmark: $1 SETs at ${rps:-?} requests/s"
}

# Streams the RESP that "${@:3}" writes into redis-cli --pipe on the leader (bounded by
# bench_timeout_s; the summary in $RAFTKV_DIR/pipe.out, the generator's errors in pipe-in.err)
# and adds row $1: the summary must be `errors: 0, replies: $2`. Sets pipe_s to the seconds
# it took.
pipe_s=""
pipe_load() {
  local t0 pid rc=0 summary
  t0=$(now_s)
  "${@:3}" 2>"$RAFTKV_DIR/pipe-in.err" |
    timeout "$bench_timeout_s" redis-cli -h 127.0.0.1 -p "$(port_of "$leader")" --pipe \
      >"$RAFTKV_DIR/pipe.out" 2>&1 &
  pid=$! # timeout's: stopping it stops redis-cli, and the generator with it
  bg_pids+=("$pid")
  wait_bg "$pid" || rc=$?
  pipe_s=$(since "$t0")
  summary=$(tr -d '\r' <"$RAFTKV_DIR/pipe.out" | tail -n 1)
  [ "$rc" = 0 ] || log "redis-cli --pipe exited $rc (see $RAFTKV_DIR/pipe.out, pipe-in.err)"
  log "redis-cli --pipe: $summary (${pipe_s}s)"
  if [ "$summary" = "errors: 0, replies: $2" ]; then
    row "$1" "$summary" "errors: 0" PASS
  else
    row "$1" "${summary:-no summary}" "errors: 0, replies: $2" FAIL
  fi
}

# $1 per second of $2 seconds, rounded.
per_s() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }'; }

# The seconds since $1 (from now_s), with millisecond precision.
now_s() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now_s)" 'BEGIN { printf "%.3f", b - a }'; }

node_pid() { cat "$RAFTKV_DIR/node$1/server.pid" 2>/dev/null || true; }

# Field $2 (VmHWM, VmRSS) of process $1 in MiB; empty when it is gone.
proc_mib() {
  awk -v f="$2:" '$1 == f { printf "%d", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || true
}

# ---- The memory bound ----

readonly mib=1048576
readonly members=3 # N

# The value of server key $1 on nodes started with the flags $3 (`--key value ...`, split on
# blanks as cluster.sh splits RAFTKV_EXTRA_FLAGS; keys are case-insensitive and the last value
# wins), else its default $2.
server_limit() {
  local words=() k value=$2
  read -r -a words <<<"$3"
  for ((k = 0; k + 1 < ${#words[@]}; k++)); do
    if [ "${words[k],,}" = "--${1,,}" ]; then
      k=$((k + 1))
      value=${words[k]}
    fi
  done
  [[ $value =~ ^[0-9]+$ ]] || fatal "the server flags give $1 '$value', not a number of bytes"
  echo "$value"
}

# Bytes $1 in MiB, for the log.
in_mib() { awk -v b="$1" 'BEGIN { printf "%.10g", b / 1048576 }'; }

# Sets rss_bound to the largest resident set (MiB, rounded down) a node may reach by the formula
# of docs/operations.md, "Memory bound", with N members, $1 connected clients (C) and the limits
# of the server flags $2 (the server's defaults where they give none); empty when one of those
# limits is 0, that is no limit. Logs the formula with its numbers.
rss_bound=""
memory_bound() {
  local c=$1 l u a i q o v key
  l=$(server_limit snapshot-log-bytes 67108864 "$2")
  u=$(server_limit max-uncommitted-bytes 67108864 "$2")
  a=$(server_limit max-apply-lag-bytes 67108864 "$2")
  i=$(server_limit max-inflight-bytes 8388608 "$2")
  q=$(server_limit client-query-buffer-limit 1073741824 "$2")
  o=$(server_limit client-output-buffer-limit 268435456 "$2")
  v=$(server_limit value-cache-bytes 67108864 "$2")
  for key in "snapshot-log-bytes $l" "max-apply-lag-bytes $a" "client-output-buffer-limit $o"; do
    if [ "${key#* }" = 0 ]; then
      rss_bound=""
      log "memory bound: none (${key% *} 0: no limit)"
      return 0
    fi
  done
  rss_bound=$(((128 * mib + 3 * 16 * mib + 2 * (l + u + a) + (members - 1) * (i + 4 * mib) +
    64 * mib + v + c * (q + o)) / mib))
  log "memory bound: RSS <= 128 MiB + 3 x 16 MiB + 2 x (L $(in_mib "$l") + U $(in_mib "$u") + A $(in_mib "$a") MiB) + ($members - 1) x (I $(in_mib "$i") + 4 MiB) + 64 MiB + V $(in_mib "$v") MiB + C $c x (q $(in_mib "$q") + o $(in_mib "$o") MiB) = $rss_bound MiB"
}

# ---- Phase: compaction ----

# Once every node of the phase's cluster has applied everything (and 2 s more), compares the
# largest data directory with 3 x the live data + 64 MiB; $1 is added to the rows' names.
check_data_dirs() {
  wait_converged || true
  sleep 2
  local keys key key_len live_bytes live_kib i kib max_kib=0 max_node=0 sizes=""
  keys=$(cli "$leader" 5 DBSIZE)
  key=$(cli "$leader" 5 SCAN 0 COUNT 1 | sed -n 2p)
  key_len=${#key}
  [ "$key_len" = 16 ] || log "warning: a key is '$key' ($key_len bytes, expected 16)"
  [[ $keys =~ ^[0-9]+$ ]] || fatal "DBSIZE on node $leader answered '$keys'"
  live_bytes=$((keys * (key_len + value_bytes)))
  live_kib=$(((live_bytes + 1023) / 1024))
  for i in 1 2 3; do
    kib=$(du -sk "$RAFTKV_DIR/node$i" | cut -f1)
    sizes+="${sizes:+ }node$i=${kib}KiB"
    if [ "$kib" -gt "$max_kib" ]; then
      max_kib=$kib
      max_node=$i
    fi
  done
  log "compaction: $keys keys of $key_len+$value_bytes bytes = $live_kib KiB live; data dirs $sizes"
  local bound_kib=$((3 * live_kib + dir_slack_kib))
  row "largest data dir$1 (node$max_node)" "$max_kib KiB" "<= $bound_kib KiB" "$(at_most "$max_kib" "$bound_kib")"
  row "live data$1 ($keys keys)" "$live_kib KiB" "-" info
}

# Writes RESP for $1 SETs to standard output: keys key:%012d drawn at random from $2, each
# value fresh random bytes as base64 text cut to value_bytes (which LevelDB cannot compress
# much below 3/4 of its size). Streams: nothing is held beyond 1000 commands.
random_sets() {
  python3 - "$1" "$2" "$value_bytes" <<'EOF'
import base64, os, random, sys

count, keys, vlen = (int(a) for a in sys.argv[1:4])
raw = vlen * 3 // 4 + 3  # its base64 text has at least vlen characters
out = sys.stdout.buffer
batch = []
for _ in range(count):
    key = b"key:%012d" % random.randrange(keys)
    value = base64.b64encode(os.urandom(raw))[:vlen]
    batch.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key, vlen, value))
    if len(batch) == 1000:
        out.write(b"".join(batch))
        batch.clear()
out.write(b"".join(batch))
out.flush()
EOF
}

phase_compaction() {
  start_cluster compaction
  log "compaction: $compaction_sets SETs over $bench_keys keys on node $leader"
  bench "$compaction_sets" "$RAFTKV_DIR/bench.out"
  row "compaction write throughput" "${rps:-?} req/s" "-" info
  check_data_dirs ""
  stop_cluster

  # The same with values that do not compress, on a cluster of their own.
  if ! command -v python3 >/dev/null; then
    log "compaction: python3 is missing; no run with random values"
    row "largest data dir, random values" "skipped: python3 missing" "-" info
    return 0
  fi
  start_cluster compaction-random
  log "compaction: $compaction_sets SETs of random values over $bench_keys keys on node $leader (redis-cli --pipe)"
  pipe_load "load random values (--pipe)" "$compaction_sets" random_sets "$compaction_sets" "$bench_keys"
  row "compaction write throughput, random values" "$(per_s "$compaction_sets" "$pipe_s") req/s" "-" info
  check_data_dirs ", random values"
  stop_cluster
}

# ---- Phase: catchup ----

# Whether process $1 is stopped (SIGSTOP): a paused node is not asked anything, or the probes
# would queue on its listening socket and all connect at once when it resumes.
is_paused() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ $stat == [Tt]* ]]
}

phase_catchup() {
  memory_bound "$catchup_clients" "${RAFTKV_EXTRA_FLAGS:-} $catchup_flags"
  start_cluster catchup "$catchup_flags"
  local f=$((leader % 3 + 1)) i has_counter=0 snaps0 snaps=""
  # The follower's snapshot counter, when INFO has one (read now: it may install a snapshot as
  # soon as it resumes).
  snaps0=$(info_field "$f" raft raft_snapshots_installed)
  [ -z "$snaps0" ] || has_counter=1
  cl pause "$f" || fatal "cannot pause node $f"
  log "catchup: node $f paused; $catchup_sets SETs on node $leader"

  # Samples every node's VmRSS into rss.log while the phase runs (VmHWM is the peak), and its
  # connected_clients (INFO clients: one probe at a time) into clients.log, `-` while paused.
  (
    while :; do
      line=$(date -u '+%H:%M:%S')
      clients=$line
      for i in 1 2 3; do
        pid=$(node_pid "$i")
        line+=" node$i=$( [ -z "$pid" ] || proc_mib "$pid" VmRSS)MiB"
        n=-
        if [ -n "$pid" ] && ! is_paused "$pid"; then
          n=$(info_field "$i" clients connected_clients)
        fi
        clients+=" node$i=${n:-?}"
      done
      echo "$line"
      echo "$clients" >>"$RAFTKV_DIR/clients.log"
      sleep 0.5
    done
  ) >"$RAFTKV_DIR/rss.log" 2>/dev/null &
  bg_pids+=($!)

  bench "$catchup_sets" "$RAFTKV_DIR/bench.out"
  row "catchup write throughput (paused follower)" "${rps:-?} req/s" "-" info

  # A write load on the leader during the catch-up.
  timeout "$bench_timeout_s" redis-benchmark -h 127.0.0.1 -p "$(port_of "$leader")" -t set \
    -n 100000000 -c 50 -P 16 -d "$value_bytes" -r "$bench_keys" >"$RAFTKV_DIR/bg-bench.out" 2>&1 &
  local bg_bench=$!
  bg_pids+=("$bg_bench")
  sleep 1
  local target t0 a1
  target=$(applied "$leader")
  [ -n "$target" ] || fatal "node $leader does not answer INFO"
  t0=$(now_s)
  cl resume "$f" || fatal "cannot resume node $f"
  local caught=0 elapsed fa="" applied_s=""
  while :; do
    fa=$(applied "$f")
    elapsed=$(since "$t0")
    if [ -n "$fa" ] && [ "$fa" -ge "$target" ]; then
      [ -n "$applied_s" ] || applied_s=$elapsed
      if [ "$has_counter" = 0 ]; then
        caught=1
        break
      fi
      snaps=$(info_field "$f" raft raft_snapshots_installed)
      if [ -n "$snaps" ] && [ "$snaps" -gt "$snaps0" ]; then
        caught=1
        break
      fi
    fi
    awk -v e="$elapsed" -v g="$catchup_give_up_s" 'BEGIN { exit !(e < g) }' || break
    sleep 0.1
  done
  a1=$(applied "$leader")
  log "catchup: node $f applied ${fa:-?} (target $target) after ${elapsed}s; leader applied $target -> ${a1:-?}"
  if [ "$caught" = 1 ]; then
    row "follower catch-up time" "${elapsed} s" "<= $catchup_bound_s s" "$(at_most "$elapsed" "$catchup_bound_s")"
  elif [ -n "$applied_s" ]; then
    row "follower catch-up time" "> ${catchup_give_up_s} s (applied at $applied_s s, no snapshot)" \
      "<= $catchup_bound_s s" FAIL
  else
    row "follower catch-up time" "> ${catchup_give_up_s} s" "<= $catchup_bound_s s" FAIL
  fi
  if [ "$has_counter" = 1 ]; then
    row "follower snapshots installed" "${snaps0} -> ${snaps:-?}" "grows" \
      "$([ -n "$snaps" ] && [ "$snaps" -gt "$snaps0" ] && echo PASS || echo FAIL)"
  else
    row "follower snapshots installed" "n/a" "-" info
  fi
  local eps="?"
  if [ -n "$a1" ]; then
    eps=$(awk -v d=$((a1 - target)) -v e="$elapsed" 'BEGIN { printf "%.0f", (e > 0 ? d / e : 0) }')
  fi
  row "leader throughput during catch-up" "$eps entries/s" "-" info

  stop_pid "$bg_bench"
  forget_pid "$bg_bench"
  local bg_rps
  bg_rps=$(tr '\r' '\n' <"$RAFTKV_DIR/bg-bench.out" | sed -n 's/^SET: rps=[0-9.]* (overall: \([0-9.]*\)).*/\1/p' | tail -n 1)
  row "background load (whole run)" "${bg_rps:-?} req/s" "-" info

  local pid hwm
  for i in 1 2 3; do
    pid=$(node_pid "$i")
    hwm=""
    [ -z "$pid" ] || hwm=$(proc_mib "$pid" VmHWM)
    local name="peak RSS node$i"
    [ "$i" != "$f" ] || name+=" (follower)"
    [ "$i" != "$leader" ] || name+=" (leader)"
    if [ -n "$rss_bound" ]; then
      row "$name" "${hwm:-?} MiB" "<= $rss_bound MiB" "$(at_most "${hwm:-x}" "$rss_bound")"
    else
      row "$name" "${hwm:-?} MiB" "none (a limit is 0)" info
    fi
  done
  stop_background
  # The memory bound counts on at most C connections per node.
  local most
  most=$(awk '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[2] ~ /^[0-9]+$/ && kv[2] + 0 > m + 0) { m = kv[2]; at = kv[1] } } }
    END { if (m != "") print m " (" at ")" }' "$RAFTKV_DIR/clients.log" 2>/dev/null || true)
  row "clients (largest seen)" "${most:-?}" "<= $catchup_clients" "$(at_most "${most%% *}" "$catchup_clients")"
  stop_cluster
}

# ---- Phase: restart ----

# The value of key k:<n>: n, zero-padded to value_bytes digits.
value_of() { printf '%0*d' "$value_bytes" "$1"; }

# Waits until GET k:$2 on node $1 returns its value, polling every 50 ms; prints the seconds
# since $3, or nothing after restart_give_up_s.
first_read() {
  local want got
  want=$(value_of "$2")
  while :; do
    got=$(cli "$1" 1 GET "k:$2" || true)
    if [ "$got" = "$want" ]; then
      since "$3"
      return 0
    fi
    awk -v e="$(since "$3")" -v g="$restart_give_up_s" 'BEGIN { exit !(e < g) }' || return 0
    sleep 0.05
  done
}

# Writes RESP for MSET k:<n> <value> ... of mset_keys keys each, $1 keys in all, to standard
# output.
msets() {
  awk -v total="$1" -v per="$mset_keys" -v vlen="$value_bytes" 'BEGIN {
      for (n = 0; n < total; n += per) {
        m = (total - n < per) ? total - n : per
        printf "*%d\r\n$4\r\nMSET\r\n", 1 + 2 * m
        for (i = n; i < n + m; i++) {
          k = "k:" i
          printf "$%d\r\n%s\r\n$%d\r\n%0" vlen "d\r\n", length(k), k, vlen, i
        }
      }
    }'
}

phase_restart() {
  start_cluster restart
  log "restart: loading $restart_keys keys (MSET of $mset_keys, redis-cli --pipe) on node $leader"
  pipe_load "load $restart_keys keys (--pipe)" $(((restart_keys + mset_keys - 1) / mset_keys)) \
    msets "$restart_keys"
  row "load throughput" "$(per_s "$restart_keys" "$pipe_s") keys/s" "-" info
  wait_converged || true
  local i counts="" all=1 n
  for i in 1 2 3; do
    n=$(local_keys "$i")
    counts+="${counts:+ }node$i=$n"
    [ "$n" = "$restart_keys" ] || all=0
  done
  row "keys on every node" "$counts" "$restart_keys each" "$([ "$all" = 1 ] && echo PASS || echo FAIL)"

  # (a) One follower.
  local f=$((leader % 3 + 1)) probe=$((restart_keys * 123456 / 1000000)) took t0
  cl kill "$f" || fatal "cannot kill node $f"
  t0=$(now_s)
  cl restart "$f" || fatal "cannot restart node $f"
  local up
  up=$(since "$t0")
  took=$(first_read "$f" "$probe" "$t0")
  log "restart: node $f answered PING ${up} s and read k:$probe correctly ${took:-never} s after the restart began"
  if [ -n "$took" ]; then
    row "follower restart to first correct read" "$took s" "<= $restart_bound_s s" "$(at_most "$took" "$restart_bound_s")"
  else
    row "follower restart to first correct read" "> $restart_give_up_s s" "<= $restart_bound_s s" FAIL
  fi

  # (b) The whole cluster.
  for i in 1 2 3; do cl kill "$i" || fatal "cannot kill node $i"; done
  t0=$(now_s)
  cl start -n 3 || fatal "cluster.sh start failed after killing every node"
  up=$(since "$t0")
  local worst=0 times="" failed=0
  for i in 1 2 3; do
    took=$(first_read "$i" "$probe" "$t0")
    times+="${times:+ }node$i=${took:-never}"
    if [ -z "$took" ]; then
      failed=1
    elif awk -v a="$took" -v b="$worst" 'BEGIN { exit !(a > b) }'; then
      worst=$took
    fi
  done
  log "restart: whole cluster: every node answered PING ${up} s after the start began; first correct reads: $times"
  # No bound: the restart bound is for one node; a whole cluster must also elect a leader first
  # (up to one election timeout after the nodes start, more when a first election splits the
  # vote).
  local measured="$worst s"
  [ "$failed" = 0 ] || measured="> $restart_give_up_s s"
  row "cluster restart to correct read on all" "$measured" "- (includes an election: up to 0.3 s)" info
  wait_leader
  log "restart: leader after the whole-cluster restart: node $leader"
  stop_cluster
}

# ---- Phase: nemesis ----

phase_nemesis() {
  local d=$run/nemesis rc=0 line
  rm -rf "$d"
  log "nemesis: scripts/nemesis.sh for ${nemesis_duration}s on base port $nemesis_base_port (log: $d/nemesis.log)"
  RAFTKV_DIR=$d RAFTKV_BASE_PORT=$nemesis_base_port \
    RAFTKV_EXTRA_FLAGS="${RAFTKV_EXTRA_FLAGS:-} --snapshot-entries 2000 --snapshot-keep-entries 200" \
    run_waited "$run/nemesis.out" "$run/nemesis.err" timeout $((nemesis_duration + 300)) \
    "$nemesis" --nodes 3 --duration "$nemesis_duration" \
    --faults kill,pause,isolate,partition,restart --clients 8 --seed 41 || rc=$?
  line=$(tail -n 1 "$run/nemesis.out" 2>/dev/null || true)
  log "nemesis exited $rc: $line"
  local v="" l="" dup=""
  if [[ $line =~ violations=(-?[0-9]+)\ lost=(-?[0-9]+)\ duplicated=(-?[0-9]+) ]]; then
    v=${BASH_REMATCH[1]} l=${BASH_REMATCH[2]} dup=${BASH_REMATCH[3]}
  fi
  local ops
  ops=$(sed -n 's/.*ops=\([0-9-]*\).*/\1/p' <<<"$line")
  if [ "$rc" = 0 ] && [ "$v" = 0 ] && [ "$l" = 0 ] && [ "$dup" = 0 ]; then
    row "nemesis (ops=${ops:-?})" "violations=$v lost=$l duplicated=$dup" "all 0, exit 0" PASS
  else
    row "nemesis (ops=${ops:-?})" "violations=${v:-?} lost=${l:-?} duplicated=${dup:-?} exit=$rc" "all 0, exit 0" FAIL
  fi

  log "nemesis: ctest -R 'KvLab\\..*Snapshot' in $build"
  rc=0
  run_waited "$run/kvlab.out" "$run/kvlab.err" timeout 1800 \
    ctest --test-dir "$build" -R 'KvLab\..*Snapshot' --output-on-failure || rc=$?
  local total failed passed
  total=$(sed -n 's/.* tests failed out of \([0-9]*\).*/\1/p' "$run/kvlab.out" | tail -n 1)
  failed=$(sed -n 's/.*, \([0-9]*\) tests failed out of .*/\1/p' "$run/kvlab.out" | tail -n 1)
  if [ -n "$total" ] && [ -n "$failed" ]; then
    passed=$((total - failed))
    row "KV lab snapshot tests" "$passed/$total passed" "all" \
      "$([ "$rc" = 0 ] && [ "$failed" = 0 ] && [ "$total" -gt 0 ] && echo PASS || echo FAIL)"
  else
    row "KV lab snapshot tests" "no result (ctest exited $rc)" "all" FAIL
  fi
  log "ctest exited $rc (see $run/kvlab.out)"
}

# ---- The run ----

log "run directory $run; phases: ${phases[*]}; $([ "$quick" = 1 ] && echo quick || echo full size); base port $base"
phase_times=""
for p in "${phases[@]}"; do
  started=$SECONDS
  log "== phase $p"
  "phase_$p"
  phase_times+="${phase_times:+ }$p=$((SECONDS - started))s"
  log "== phase $p took $((SECONDS - started)) s"
done

finished=1
failures=0
for r in "${row_results[@]}"; do [ "$r" != FAIL ] || failures=$((failures + 1)); done
print_table
echo "phase times: $phase_times"
if [ "$failures" -gt 0 ] || [ "$keep" = 1 ]; then
  echo "run directory: $run (kept)"
else
  # Only what this script and the programs it runs made.
  for p in compaction compaction-random catchup restart nemesis; do rm -rf "${run:?}/$p"; done
  rm -f "$run"/{soak.log,nemesis.out,nemesis.err,kvlab.out,kvlab.err,"$marker"}
  rmdir "$run" 2>/dev/null || true
  echo "run directory: $run (removed)"
fi
[ "$failures" -eq 0 ] || exit 1
