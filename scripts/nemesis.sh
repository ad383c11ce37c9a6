#!/usr/bin/env bash
# Runs a concurrent load on a local raftkv cluster while injecting process and network faults,
# then checks what the clients saw: linearizability (raftkv-lincheck) and lost or duplicated
# appends (raftkv-lincheck --appends).
#
#   scripts/nemesis.sh --nodes 3 --duration 30 --faults kill,pause,isolate,partition,restart \
#                      --clients 8 --seed 11
#
# The last line of output is always
#   nemesis: ops=<n> ok=<n> unknown=<n> violations=<v> lost=<l> duplicated=<d>
# and the line before it the run directory, which keeps the history and every log.
# Run `scripts/nemesis.sh --help` for the options and exit statuses; docs/operations.md has more.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cluster=$root/scripts/cluster.sh
build=${RAFTKV_BUILD:-build}
[[ $build == /* ]] || build=$root/$build
export RAFTKV_BUILD=$build
base=${RAFTKV_BASE_PORT:-7000}
export RAFTKV_BASE_PORT=$base

readonly all_faults="kill pause isolate partition restart"
readonly leader_timeout_s=30    # for a leader after start and after the faults are undone
readonly load_grace_s=55        # the load's last ops (10 s) and final reads (30 s), after --duration
readonly lincheck_budget_ms=30000  # linearizability check, all keys together
readonly cluster_cmd_timeout_s=60  # any one cluster.sh command

usage() {
  cat <<'EOF'
usage: scripts/nemesis.sh --nodes 3|5 --duration S --faults F[,F...] --clients N --seed K
                          [--unsafe stale-reads|no-dedup] [--drop-replies PCT] [--keys K]
                          [--keep]

Starts a cluster of --nodes nodes (scripts/cluster.sh), runs raftkv-load with --clients clients
for --duration seconds, and meanwhile, every 1-3 s, applies one fault picked from --faults to a
random minority of the nodes (1 node of 3; 1 or 2 of 5), holds it 1-4 s and undoes it:
  kill       SIGKILL, later restarted      pause      SIGSTOP, later SIGCONT
  isolate    each node cut off from all    partition  the minority vs the majority
  restart    SIGTERM and start again (cluster.sh restart); nothing to undo
Faults and hold times come from --seed (bash RANDOM), so a seed replays the same schedule. At
the end every fault is undone, the load's final reads complete, the cluster is stopped, and
the history is checked.

Options:
  --unsafe MODE       start the nodes with debug-unsafe MODE (a deliberately broken server:
                      stale-reads, no-dedup) to see the checks catch it
  --drop-replies PCT  the load's clients discard PCT% of replies and retry (0..100)
  --keys K            register keys r0.. and append keys a0.. (K each; default 3)
  --keep              keep the nodes' data after a clean run (a run that finds a problem
                      keeps everything anyway)

Output: progress and faults on stderr; then the run directory; then, last,
  nemesis: ops=<n> ok=<n> unknown=<n> violations=<v> lost=<l> duplicated=<d>
ops/ok/unknown: the load's operations (raftkv-load). violations: keys whose history is not
linearizable, plus corrupt tokens in the appended values. lost/duplicated: acknowledged appends
missing from, or tokens repeated in, the final values. A count that could not be determined is
-1. A line `check=timeout` means the linearizability search ran out of its budget on some key;
a line `nodes down without a fault` names nodes that exited on their own (they are started
again, and the run fails).

Exit status: 0 when violations, lost and duplicated are all 0, no node went down on its own and
every check completed; 1 when any of them is non-zero or a node went down on its own; 2 on bad
usage; 3 when the run could not complete or a check was inconclusive (setup failed, the load
failed, check=timeout).

Environment:
  RAFTKV_DIR        the run directory (default: a new directory under ${TMPDIR:-/tmp}); if
                    given, any cluster running there is stopped and its contents removed first
  RAFTKV_BASE_PORT  node i serves clients on 127.0.0.1:(B+i), peers on B+10000+i (default 7000)
  RAFTKV_BUILD      build directory (default: build); raftkv-server, raftkv-load and
                    raftkv-lincheck are built there, or brought up to date, first
  RAFTKV_EXTRA_FLAGS more server flags (scripts/cluster.sh); --unsafe adds to them
EOF
}

usage_error() {
  echo "nemesis.sh: $*" >&2
  echo "run 'scripts/nemesis.sh --help' for usage" >&2
  exit 2
}

# ---- Arguments ----

nodes="" duration="" faults="" clients="" seed="" unsafe="" drop_replies=0 keys=3 keep=0
while [ $# -gt 0 ]; do
  case $1 in
    --keep)
      keep=1
      shift
      continue
      ;;
    -h | --help)
      usage
      exit 0
      ;;
  esac
  [ $# -ge 2 ] || usage_error "$1 needs a value"
  case $1 in
    --nodes) nodes=$2 ;;
    --duration) duration=$2 ;;
    --faults) faults=$2 ;;
    --clients) clients=$2 ;;
    --seed) seed=$2 ;;
    --unsafe) unsafe=$2 ;;
    --drop-replies) drop_replies=$2 ;;
    --keys) keys=$2 ;;
    *) usage_error "unknown option '$1'" ;;
  esac
  shift 2
done

# Whether $1 is a decimal integer (no sign, no leading zero) between $2 and $3.
in_range() {
  [[ $1 =~ ^(0|[1-9][0-9]{0,8})$ ]] || return 1
  [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]
}
[ "$nodes" = 3 ] || [ "$nodes" = 5 ] || usage_error "--nodes must be 3 or 5"
in_range "$duration" 1 86400 || usage_error "--duration: seconds, 1..86400"
in_range "$clients" 1 1000 || usage_error "--clients: 1..1000"
in_range "$seed" 0 999999999 || usage_error "--seed: an integer, 0..999999999"
in_range "$drop_replies" 0 100 || usage_error "--drop-replies: 0..100"
in_range "$keys" 1 1000 || usage_error "--keys: 1..1000"
case $unsafe in
  "" | stale-reads | no-dedup) ;;
  *) usage_error "--unsafe: stale-reads or no-dedup, not '$unsafe'" ;;
esac
[ -n "$faults" ] || usage_error "--faults: a comma-separated list of: ${all_faults// /, }"
IFS=, read -r -a fault_list <<<"$faults"
for f in "${fault_list[@]}"; do
  [[ " $all_faults " == *" $f "* ]] || usage_error "--faults: unknown fault '$f' (known: ${all_faults// /, })"
done

# ---- The run directory ----

if [ -n "${RAFTKV_DIR:-}" ]; then
  run=$RAFTKV_DIR
  [[ $run == /* ]] || run=$(pwd)/$run
else
  run=$(mktemp -d "${TMPDIR:-/tmp}/raftkv-nemesis.XXXXXX")
fi
run=${run%/}
export RAFTKV_DIR=$run
log_file=$run/nemesis.log

# What this script and cluster.sh put in a run directory: the only entries it will remove.
is_run_entry() {
  case $1 in
    cluster.info | .lock | node[1-7] | nemesis.log | faults.log | history.jsonl | load.out | \
      load.log | lincheck.out | appends.out | keys) return 0 ;;
  esac
  return 1
}

# Empties a given run directory, after stopping any cluster in it. Refuses a directory holding
# anything this script does not make.
wipe_run_dir() {
  local entry name
  [ -e "$run" ] || return 0
  [ -d "$run" ] || { echo "nemesis.sh: RAFTKV_DIR $run is not a directory" >&2; exit 3; }
  for entry in "$run"/* "$run"/.[!.]*; do
    [ -e "$entry" ] || continue
    name=${entry##*/}
    if ! is_run_entry "$name"; then
      echo "nemesis.sh: RAFTKV_DIR $run holds '$name', which no run makes; refusing to wipe it" >&2
      exit 3
    fi
  done
  if [ -f "$run/cluster.info" ]; then
    timeout "$cluster_cmd_timeout_s" "$cluster" stop >/dev/null 2>&1 || true
  fi
  for entry in "$run"/* "$run"/.[!.]*; do
    [ -e "$entry" ] || continue
    rm -rf -- "$entry"
  done
}
wipe_run_dir
mkdir -p "$run"
: >"$log_file"

# ---- Logging and the end of a run ----

now() { date -u '+%H:%M:%S.%3N'; }

# A progress line on stderr and in nemesis.log.
log() {
  echo "$(now) nemesis: $*" >>"$log_file"
  echo "$(now) nemesis: $*" >&2
}

# A fault line: also in faults.log.
log_fault() {
  echo "$(now) $*" >>"$run/faults.log"
  log "$*"
}

# cluster.sh, bounded; its output goes to nemesis.log only. Returns its exit status.
cl() {
  local rc=0
  timeout "$cluster_cmd_timeout_s" "$cluster" "$@" >>"$log_file" 2>&1 || rc=$?
  [ "$rc" -eq 0 ] || echo "$(now) nemesis: cluster.sh $* exited $rc" >>"$log_file"
  return "$rc"
}

load_pid=""
cluster_started=0
finished=0

# Stops the load and every node (by pid, through cluster.sh stop, which also resumes paused
# nodes), whatever state the run is in.
stop_everything() {
  if [ -n "$load_pid" ]; then
    kill -TERM "$load_pid" 2>/dev/null || true
    local deadline=$((SECONDS + 5))
    while kill -0 "$load_pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
    kill -KILL "$load_pid" 2>/dev/null || true
    wait "$load_pid" 2>/dev/null || true
    load_pid=""
  fi
  if [ "$cluster_started" = 1 ]; then
    cl stop || true
    cluster_started=0
  fi
}

# The last two lines of a run that ended early: the run directory and the summary.
# shellcheck disable=SC2317  # run by the EXIT trap
on_exit() {
  local rc=$?
  trap - EXIT INT TERM
  stop_everything
  if [ "$finished" = 0 ]; then
    echo "run directory: $run"
    echo "nemesis: ops=-1 ok=-1 unknown=-1 violations=-1 lost=-1 duplicated=-1"
    [ "$rc" -ne 0 ] || rc=3
  fi
  exit "$rc"
}
trap on_exit EXIT
trap 'log "interrupted"; exit 130' INT TERM

fail() {
  log "error: $*"
  exit 3
}

# ---- Programs ----

server=$build/bin/raftkv-server
load=$build/bin/raftkv-load
lincheck=$build/bin/raftkv-lincheck
programs=(raftkv-server raftkv-load raftkv-lincheck)
# Built when missing, and brought up to date otherwise (a no-op when they are): a program left
# from an older checkout (say a raftkv-lincheck without --appends) would spoil the run. When the
# build fails but every program is there, the run goes on with them, with a warning.
command -v cmake >/dev/null || fail "cmake is missing (scripts/setup.sh installs it)"
log "building ${programs[*]} in $build (when not up to date)"
if { [ -f "$build/CMakeCache.txt" ] ||
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >>"$log_file" 2>&1; } &&
  cmake --build "$build" --target "${programs[@]}" -j2 >>"$log_file" 2>&1; then
  :
elif [ -x "$server" ] && [ -x "$load" ] && [ -x "$lincheck" ]; then
  log "warning: the build failed (see $log_file); using the programs already in $build/bin"
else
  fail "cannot build ${programs[*]} in $build (see $log_file)"
fi
command -v redis-cli >/dev/null || fail "redis-cli is missing (scripts/setup.sh installs redis-tools)"

# ---- Cluster helpers ----

# Waits at most $1 seconds for a leader; returns 1 when there is none.
wait_leader() {
  local deadline=$((SECONDS + $1)) id
  while :; do
    if id=$(timeout 5 "$cluster" leader 2>/dev/null); then
      log "leader: node $id"
      return 0
    fi
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

# Sets the array `states` (index: node id) to each node's state from cluster.sh status:
# running, stopped or paused.
declare -a states
read_states() {
  local line id st
  states=()
  while read -r line; do
    [[ $line =~ ^node=([0-9]+)\ .*state=([a-z]+) ]] || continue
    id=${BASH_REMATCH[1]}
    st=${BASH_REMATCH[2]}
    states[id]=$st
  done < <(timeout "$cluster_cmd_timeout_s" "$cluster" status 2>>"$log_file" || true)
}

# The nodes found down while no fault held them down (a crash, or a restart that failed), each
# with the time it was found: reported at the end, and they fail the run.
down_nodes=()

# Called while no fault holds a node down or paused: a node that is stopped exited on its own
# (or did not come back): it is logged, recorded in down_nodes and started again; a paused one
# is resumed.
check_nodes() {
  local i
  read_states
  for ((i = 1; i <= nodes; i++)); do
    case ${states[i]:-unknown} in
      stopped)
        log "warning: node $i is down though no fault holds it down (crashed? see $run/node$i/server.log); starting it"
        down_nodes+=("$i@$(now)")
        cl restart "$i" || true
        ;;
      paused)
        log "warning: node $i is still paused; resuming it"
        cl resume "$i" || true
        ;;
    esac
  done
}

# Undoes every fault: resumes paused nodes, starts stopped ones, heals the network.
undo_all() {
  local i
  check_nodes
  cl heal || true
  read_states
  for ((i = 1; i <= nodes; i++)); do
    [ "${states[i]:-unknown}" = running ] || log "warning: node $i is ${states[i]:-unknown} after undoing the faults"
  done
}

# Sets $1 to "<whole>.<millis>" seconds for a random time between $2 and $3 ms.
random_seconds() {
  local ms_=$(($2 + RANDOM % ($3 - $2 + 1)))
  printf -v "$1" '%d.%03d' $((ms_ / 1000)) $((ms_ % 1000))
}

# Sets the array `victims` to a random minority of the nodes (1 of 3; 1 or 2 of 5).
declare -a victims
pick_victims() {
  local count=$((1 + RANDOM % ((nodes - 1) / 2))) pool=() i k
  for ((i = 1; i <= nodes; i++)); do pool+=("$i"); done
  victims=()
  for ((i = 0; i < count; i++)); do
    k=$((RANDOM % ${#pool[@]}))
    victims+=("${pool[k]}")
    pool=("${pool[@]:0:k}" "${pool[@]:k+1}")
  done
}

# Applies fault $1 to the victims. Failures are logged, not fatal.
apply_fault() {
  local v rest=() i
  case $1 in
    kill) for v in "${victims[@]}"; do cl kill "$v" || true; done ;;
    pause) for v in "${victims[@]}"; do cl pause "$v" || true; done ;;
    isolate) for v in "${victims[@]}"; do cl isolate "$v" || true; done ;;
    partition)
      for ((i = 1; i <= nodes; i++)); do
        [[ " ${victims[*]} " == *" $i "* ]] || rest+=("$i")
      done
      local a b
      a=$(
        IFS=,
        echo "${victims[*]}"
      )
      b=$(
        IFS=,
        echo "${rest[*]}"
      )
      cl partition "$a/$b" || true
      ;;
    restart) for v in "${victims[@]}"; do cl restart "$v" || true; done ;;
  esac
}

undo_fault() {
  local v
  case $1 in
    kill) for v in "${victims[@]}"; do cl restart "$v" || true; done ;;
    pause) for v in "${victims[@]}"; do cl resume "$v" || true; done ;;
    isolate | partition) cl heal || true ;;
    restart) ;;
  esac
}

load_running() { [ -n "$load_pid" ] && kill -0 "$load_pid" 2>/dev/null; }

# ---- The run ----

log "run directory $run; nodes=$nodes duration=${duration}s faults=$faults clients=$clients seed=$seed${unsafe:+ unsafe=$unsafe} drop-replies=$drop_replies"
if [ -n "$unsafe" ]; then
  export RAFTKV_EXTRA_FLAGS="${RAFTKV_EXTRA_FLAGS:-} --debug-unsafe $unsafe"
fi
cluster_started=1
cl start -n "$nodes" || fail "cluster.sh start failed (see $log_file and $run/node*/server.log)"
wait_leader "$leader_timeout_s" || fail "no leader within ${leader_timeout_s}s of the start"

endpoints=""
for ((i = 1; i <= nodes; i++)); do endpoints+="${endpoints:+,}127.0.0.1:$((base + i))"; done
"$load" --nodes "$endpoints" --clients "$clients" --duration "$duration" --seed "$seed" \
  --keys "$keys" --drop-replies "$drop_replies" --final-timeout 30 --history "$run/history.jsonl" \
  >"$run/load.out" 2>"$run/load.log" &
load_pid=$!
log "load started (pid $load_pid)"

RANDOM=$seed
gap="" hold=""
end=$((SECONDS + duration))
while [ "$SECONDS" -lt "$end" ] && load_running; do
  random_seconds gap 1000 3000
  sleep "$gap"
  [ "$SECONDS" -lt "$end" ] || break
  fault=${fault_list[RANDOM % ${#fault_list[@]}]}
  pick_victims
  random_seconds hold 1000 4000
  victim_list=$(
    IFS=,
    echo "${victims[*]}"
  )
  if [ "$fault" = restart ]; then
    log_fault "fault=$fault nodes=$victim_list"
  else
    log_fault "fault=$fault nodes=$victim_list hold=${hold}s"
  fi
  apply_fault "$fault"
  if [ "$fault" != restart ]; then
    # Not held past the end of the load.
    left=$((end - SECONDS))
    [ "$left" -gt 0 ] || left=0
    if [ "${hold%.*}" -ge "$left" ]; then hold=$left; fi
    sleep "$hold"
    log_fault "undo=$fault nodes=$victim_list"
    undo_fault "$fault"
  fi
  check_nodes
done
log_fault "end of faults; undoing any that is left"
undo_all
wait_leader "$leader_timeout_s" || log "warning: no leader within ${leader_timeout_s}s of undoing the faults"

load_deadline=$((SECONDS + load_grace_s))
while load_running && [ "$SECONDS" -lt "$load_deadline" ]; do sleep 0.2; done
load_rc=0
if load_running; then
  log "error: the load did not finish within ${load_grace_s}s of the end of the faults; stopping it"
  kill -TERM "$load_pid" 2>/dev/null || true
  load_rc=124
fi
wait "$load_pid" || load_rc=$?
load_pid=""
log "load exited $load_rc: $(tail -n 1 "$run/load.out" 2>/dev/null)"
stop_everything

# ---- Checks ----

summary=$(tail -n 1 "$run/load.out" 2>/dev/null || true)
field() {
  local v
  v=$(sed -n "s/.*\b$1=\([0-9]*\).*/\1/p" <<<"$summary")
  echo "${v:--1}"
}
ops=$(field ops)
ok=$(field ok)
unknown=$(field unknown)
incomplete=0
[ "$load_rc" -eq 0 ] || incomplete=1

# Linearizability, key by key (each key's history is independent, and a count of the keys
# that fail says more than the first one), sharing one budget.
violations=0 timeouts=() errors=()
: >"$run/lincheck.out"
if [ -s "$run/history.jsonl" ]; then
  mkdir -p "$run/keys"
  mapfile -t key_names < <(grep -o '"key":"[^"\\]*"' "$run/history.jsonl" | sort -u | sed 's/^"key":"\(.*\)"$/\1/')
  started_ms=$(date +%s%3N)
  for ((k = 0; k < ${#key_names[@]}; k++)); do
    key=${key_names[k]}
    grep -F "\"key\":\"$key\"," "$run/history.jsonl" >"$run/keys/$key.jsonl" || true
    left_ms=$((lincheck_budget_ms - ($(date +%s%3N) - started_ms)))
    per_key_ms=$((left_ms / (${#key_names[@]} - k)))
    [ "$per_key_ms" -ge 1000 ] || per_key_ms=1000
    rc=0
    {
      echo "== key $key"
      timeout $((per_key_ms / 1000 + 10)) "$lincheck" --timeout-ms "$per_key_ms" "$run/keys/$key.jsonl" 2>&1
    } >>"$run/lincheck.out" || rc=$?
    case $rc in
      0) ;;
      1)
        violations=$((violations + 1))
        log "key $key: not linearizable (see $run/lincheck.out)"
        ;;
      2 | 124)
        timeouts+=("$key")
        log "key $key: the linearizability check ran out of its budget (${per_key_ms} ms)"
        ;;
      *)
        errors+=("$key")
        log "key $key: raftkv-lincheck exited $rc (see $run/lincheck.out)"
        ;;
    esac
  done
else
  log "error: the load recorded no history"
  incomplete=1
fi

lost=-1 duplicated=-1
rc=0
"$lincheck" --appends "$run/history.jsonl" >"$run/appends.out" 2>&1 || rc=$?
if [ "$rc" -le 1 ] && line=$(tail -n 1 "$run/appends.out") &&
  [[ $line =~ ^lost=([0-9]+)\ duplicated=([0-9]+)\ corrupt=([0-9]+)$ ]]; then
  lost=${BASH_REMATCH[1]}
  duplicated=${BASH_REMATCH[2]}
  corrupt=${BASH_REMATCH[3]}
  violations=$((violations + corrupt))
  [ "$rc" -eq 0 ] || log "append check: $line (see $run/appends.out)"
else
  log "error: the append check could not run (exit $rc): $(tail -n 1 "$run/appends.out")"
  incomplete=1
fi
if [ ${#errors[@]} -gt 0 ]; then
  incomplete=1
  violations=-1
fi

finished=1
if [ "$violations" -gt 0 ] || [ "$lost" -gt 0 ] || [ "$duplicated" -gt 0 ] ||
  [ ${#down_nodes[@]} -gt 0 ]; then
  status=1
elif [ "$violations" -lt 0 ] || [ "$lost" -lt 0 ] || [ "$duplicated" -lt 0 ] ||
  [ "$incomplete" = 1 ] || [ ${#timeouts[@]} -gt 0 ]; then
  status=3
else
  status=0
fi
if [ "$status" = 0 ] && [ "$keep" = 0 ]; then
  # A clean run: the nodes' data is not needed, their logs and configs stay.
  for d in "$run"/node[1-7]; do
    [ -d "$d" ] || continue
    find "$d" -mindepth 1 -maxdepth 1 ! -name server.log ! -name raftkv.conf -exec rm -rf {} +
  done
  rm -rf "$run/keys"
fi
[ ${#timeouts[@]} -eq 0 ] || echo "check=timeout keys=$(
  IFS=,
  echo "${timeouts[*]}"
)"
[ "$incomplete" = 0 ] || echo "check=incomplete (see $log_file)"
[ ${#down_nodes[@]} -eq 0 ] || echo "nodes down without a fault (node@time): ${down_nodes[*]}"
echo "run directory: $run"
line="nemesis: ops=$ops ok=$ok unknown=$unknown violations=$violations lost=$lost duplicated=$duplicated"
echo "$line" >>"$log_file"
echo "$line"
exit "$status"
