#!/usr/bin/env bash
# End-to-end tests of scripts/cluster.sh against real raftkv-server processes, one subcommand
# per run:
#   cluster_sh_test.sh <path to raftkv-server> start|stop|status|leader|kill|restart|pause|resume|
#                      isolate|partition|unreliable|heal
# Each run has its own RAFTKV_DIR (mktemp -d) and a random RAFTKV_BASE_PORT in 17600-19990, step
# 10: client ports 17601-19997, peer ports 27601-29997. Both stay below the kernel's ephemeral
# range (32768 and up; a connect() to a peer that is not listening yet could otherwise be given
# that very port as its source and hold it), and apart from the default cluster (7001-7007,
# 17001-17007), the integration tests (10100-16899) and the smoke test (20001-23993,
# 30001-33993). A start that fails (a port in use) is retried with another base. Every wait is
# bounded; on exit the cluster is stopped and any process still running from the directory is
# killed by pid.
set -euo pipefail
server=$1
case_name=$2
root=$(cd "$(dirname "$0")/../.." && pwd)
cluster=$root/scripts/cluster.sh
command -v redis-cli >/dev/null || { echo "redis-cli missing (scripts/setup.sh installs redis-tools)"; exit 1; }
[ -x "$server" ] || { echo "no raftkv-server at $server"; exit 1; }

RAFTKV_BUILD=$(dirname "$(dirname "$server")")
RAFTKV_DIR=$(mktemp -d)
export RAFTKV_BUILD RAFTKV_DIR
base=0

# Processes whose command line names this test's directory: only nodes started from it.
our_pids() {
  local f pid
  for f in /proc/[0-9]*/cmdline; do
    pid=${f#/proc/}
    pid=${pid%/cmdline}
    tr '\0' ' ' 2>/dev/null <"$f" | grep -qF "$RAFTKV_DIR/node" && echo "$pid"
  done
  return 0
}

cleanup() {
  local rc=$? pid
  trap - EXIT
  timeout 30 "$cluster" stop >/dev/null 2>&1 || true
  for pid in $(our_pids); do
    kill -CONT "$pid" 2>/dev/null || true
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$RAFTKV_DIR"
  exit "$rc"
}
trap cleanup EXIT

fail() {
  echo "FAIL ($case_name): $*"
  echo "--- cluster.sh status"
  timeout 10 "$cluster" status 2>&1 || true
  echo "--- $RAFTKV_DIR"
  ls -la "$RAFTKV_DIR" "$RAFTKV_DIR"/node* 2>&1 || true
  local log
  for log in "$RAFTKV_DIR"/node*/server.log; do
    [ -f "$log" ] || continue
    echo "--- $log"
    tail -n 8 "$log"
  done
  exit 1
}

# cluster.sh, bounded.
cl() { timeout 60 "$cluster" "$@"; }

# redis-cli against node $1, bounded; the reply without carriage returns.
rcli() { timeout 5 redis-cli -h 127.0.0.1 -p $((base + $1)) "${@:2}" 2>/dev/null | tr -d '\r'; }

# Field $2 of node $1's INFO; empty when the node does not answer.
info() { rcli "$1" INFO raft | sed -n "s/^$2://p" || true; }

# Starts the cluster (`start` arguments in "$@") on a random base port, retried with another
# base when the start fails (a port may be busy). Sets base and start_out.
start_out=""
start_cluster() {
  local attempt
  for attempt in 1 2 3; do
    base=$((17600 + (RANDOM % 240) * 10))
    if start_out=$(RAFTKV_BASE_PORT=$base cl start "$@" 2>&1); then
      echo "$start_out"
      return 0
    fi
    echo "start with base port $base failed (attempt $attempt):"
    echo "$start_out"
    timeout 30 "$cluster" stop >/dev/null 2>&1 || true
  done
  fail "cannot start a cluster"
}

# The pid of node $1 from its pid file ("" when there is none).
pid_of() { cat "$RAFTKV_DIR/node$1/server.pid" 2>/dev/null || true; }

alive() { [ -d "/proc/$1" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }

# Waits (at most $1 s) until `cluster.sh leader` names a leader other than $2 (if given);
# prints it.
wait_leader() {
  local deadline=$((SECONDS + $1)) not=${2:-} l
  while [ "$SECONDS" -lt "$deadline" ]; do
    if l=$(cl leader 2>/dev/null) && [ "$l" != "$not" ]; then
      echo "$l"
      return 0
    fi
    sleep 0.2
  done
  return 1
}

# The status line of node $1.
status_of() { cl status | grep "^node=$1 " || true; }

# Runs a command and fails unless it ends within $1 seconds; its output goes to stdout and
# its status to $last_rc.
last_rc=0
within() {
  local limit=$1 start=$SECONDS
  shift
  set +e
  "$@"
  last_rc=$?
  set -e
  [ $((SECONDS - start)) -le "$limit" ] || fail "'$*' took $((SECONDS - start)) s (limit $limit s)"
}

# SET $1 $2 through the current leader, retried for up to 10 s (a new leader may not have
# committed its first entry yet).
write() {
  local deadline=$((SECONDS + 10)) l r
  while [ "$SECONDS" -lt "$deadline" ]; do
    if l=$(cl leader 2>/dev/null); then
      r=$(rcli "$l" SET "$1" "$2" || true)
      [ "$r" = OK ] && return 0
    fi
    sleep 0.2
  done
  fail "SET $1 $2 through the leader did not succeed within 10 s (last reply '${r:-}')"
}

# Fails unless GET $1 on the leader returns $2 within 10 s.
expect_value() {
  local deadline=$((SECONDS + 10)) l r=""
  while [ "$SECONDS" -lt "$deadline" ]; do
    if l=$(cl leader 2>/dev/null); then
      r=$(rcli "$l" GET "$1" || true)
      [ "$r" = "$2" ] && return 0
    fi
    sleep 0.2
  done
  fail "GET $1 on the leader: '$r', expected '$2'"
}

# RAFT.FAULT STATUS of node $1, on one line ("blocked 2,3 unreliable no drop_percent 0 ...").
fault_status() { rcli "$1" RAFT.FAULT STATUS | tr '\n' ' ' | sed 's/ $//'; }

# A reply to a write that is not OK and says the write could not be made: -TIMEOUT or
# -CLUSTERDOWN (redis-cli prints errors without the '-').
refused_write() { [[ $1 == TIMEOUT* || $1 == CLUSTERDOWN* ]]; }

# Waits (at most $1 s) until every node of $2 answers with one raft_commit_index, and at
# least $3; fails otherwise.
wait_converged() {
  local deadline=$((SECONDS + $1)) i c first ok
  while [ "$SECONDS" -lt "$deadline" ]; do
    ok=1 first=""
    for ((i = 1; i <= $2; i++)); do
      c=$(info "$i" raft_commit_index)
      [ -n "$first" ] || first=$c
      if [ -z "$c" ] || [ "$c" != "$first" ] || [ "$c" -lt "$3" ]; then ok=0; fi
    done
    [ "$ok" = 1 ] && return 0
    sleep 0.2
  done
  local all=""
  for ((i = 1; i <= $2; i++)); do all+=" node$i=$(info "$i" raft_commit_index)"; done
  fail "the nodes did not converge within $1 s (commit index:$all, want >= $3)"
}

readonly status_re='^node=[1-7] pid=([0-9]+|-) state=(running|stopped|paused) role=(leader|follower|candidate|precandidate|-) term=([0-9]+|-)$'

case $case_name in
  start)
    start_cluster -n 5
    [ "$(grep -c '^node=[1-5] pid=[0-9]' <<<"$start_out")" = 5 ] || fail "start did not list 5 nodes"
    [ "$(sed -n 's/^nodes //p' "$RAFTKV_DIR/cluster.info")" = 5 ] || fail "cluster.info does not record 5 nodes"
    my_sid=$(ps -o sid= -p $$ | tr -d ' ')
    for i in 1 2 3 4 5; do
      pid=$(pid_of "$i")
      alive "$pid" || fail "node $i (pid '$pid') is not running"
      grep -q raftkv-server "/proc/$pid/cmdline" || fail "pid $pid of node $i is not a raftkv-server"
      [ "$(ps -o sid= -p "$pid" | tr -d ' ')" != "$my_sid" ] || fail "node $i shares the caller's session"
      [ "$(rcli "$i" PING)" = PONG ] || fail "node $i does not answer PING on port $((base + i))"
      conf=$RAFTKV_DIR/node$i/raftkv.conf
      grep -qx 'enable-debug-command local' "$conf" || fail "$conf lacks enable-debug-command local"
      grep -qx "cluster 1=127.0.0.1:$((base + 1)):$((base + 10001)),.*,5=127.0.0.1:$((base + 5)):$((base + 10005))" "$conf" ||
        fail "$conf has no 5-member cluster line"
      [ -s "$RAFTKV_DIR/node$i/server.log" ] || fail "node $i has an empty server.log"
    done
    [ "$(info 4 raft_peer5 | cut -d, -f1)" = id=5 ] || fail "node 4 does not know peer 5"
    L=$(wait_leader 10) || fail "no leader among 5 nodes within 10 s"
    [ "$(info "$L" raft_role)" = leader ] || fail "node $L is named leader but is not"
    pids_before=$(cat "$RAFTKV_DIR"/node*/server.pid)
    # A second start of a running cluster fails and changes nothing.
    if out=$(cl start 2>&1); then fail "a second start succeeded: $out"; fi
    grep -q "running" <<<"$out" || fail "second start: unclear message '$out'"
    [ "$(cat "$RAFTKV_DIR"/node*/server.pid)" = "$pids_before" ] || fail "a failed start changed the pid files"
    # Bad sizes are refused (usage errors exit 2).
    for bad in 0 8 x; do
      set +e
      cl start -n "$bad" >/dev/null 2>&1
      rc=$?
      set -e
      [ "$rc" = 2 ] || fail "start -n $bad exited $rc, expected 2"
    done
    ;;

  stop)
    start_cluster
    pids=$(cat "$RAFTKV_DIR"/node*/server.pid)
    cl pause 2 >/dev/null || fail "pause 2"
    within 15 cl stop >"$RAFTKV_DIR/stop.out" || true
    [ "$last_rc" = 0 ] || fail "stop exited $last_rc"
    out=$(cat "$RAFTKV_DIR/stop.out")
    for i in 1 2 3; do
      grep -q "^node=$i stopped (pid [0-9]*, SIGTERM)" <<<"$out" ||
        fail "node $i was not stopped by SIGTERM: $out"
    done
    for pid in $pids; do ! alive "$pid" || fail "pid $pid survived stop"; done
    ! ls "$RAFTKV_DIR"/node*/server.pid >/dev/null 2>&1 || fail "stop left pid files"
    for i in 1 2 3; do
      [ "$(status_of "$i")" = "node=$i pid=- state=stopped role=- term=-" ] || fail "status after stop: $(status_of "$i")"
      grep -q 'signal 15' "$RAFTKV_DIR/node$i/server.log" || fail "node $i's log does not show SIGTERM"
    done
    cl stop >/dev/null || fail "stop of a stopped cluster fails"
    if cl stop extra >/dev/null 2>&1; then fail "stop with an argument succeeded"; fi
    ;;

  status)
    start_cluster
    L=$(wait_leader 10) || fail "no leader within 10 s"
    out=$(cl status) || fail "status exited non-zero"
    [ "$(wc -l <<<"$out")" = 3 ] || fail "status printed $(wc -l <<<"$out") lines: $out"
    while IFS= read -r line; do
      [[ $line =~ $status_re ]] || fail "bad status line '$line'"
      [[ $line == *" state=running role="[a-z]*" term="[0-9]* ]] || fail "not running: '$line'"
    done <<<"$out"
    for i in 1 2 3; do
      [[ "$(status_of "$i")" == "node=$i pid=$(pid_of "$i") state=running "* ]] || fail "status of node $i: $(status_of "$i")"
    done
    # Roles settle on one leader, the one `leader` names, with the term INFO reports.
    ok=0
    for _ in $(seq 25); do
      out=$(cl status)
      if [ "$(grep -c 'role=leader' <<<"$out")" = 1 ] && L=$(cl leader 2>/dev/null) &&
        grep -q "^node=$L .* role=leader term=$(info "$L" raft_term)$" <<<"$out"; then
        ok=1
        break
      fi
      sleep 0.2
    done
    [ "$ok" = 1 ] || fail "status does not show the leader: $out"
    F=$((L % 3 + 1))
    K=$((F % 3 + 1))
    cl kill "$K" >/dev/null || fail "kill $K"
    cl pause "$F" >/dev/null || fail "pause $F"
    within 3 cl status >"$RAFTKV_DIR/status.out"
    [ "$last_rc" = 0 ] || fail "status with a paused node exited $last_rc"
    out=$(cat "$RAFTKV_DIR/status.out")
    while IFS= read -r line; do [[ $line =~ $status_re ]] || fail "bad status line '$line'"; done <<<"$out"
    grep -qx "node=$K pid=- state=stopped role=- term=-" <<<"$out" || fail "killed node $K: $out"
    grep -qx "node=$F pid=$(pid_of "$F") state=paused role=- term=-" <<<"$out" || fail "paused node $F: $out"
    grep -q "^node=$L pid=$(pid_of "$L") state=running role=[a-z]* term=[0-9]*$" <<<"$out" || fail "node $L: $out"
    if cl status extra >/dev/null 2>&1; then fail "status with an argument succeeded"; fi
    if RAFTKV_DIR=$RAFTKV_DIR/nothing-here cl status >/dev/null 2>&1; then fail "status of no cluster succeeded"; fi
    ;;

  leader)
    start_cluster
    L=$(wait_leader 10) || fail "no leader within 10 s"
    [[ $L =~ ^[1-3]$ ]] || fail "leader printed '$L'"
    [ "$(info "$L" raft_role)" = leader ] || fail "node $L is named leader but says $(info "$L" raft_role)"
    for i in 1 2 3; do
      [ "$(info "$i" raft_leader_id)" = "$L" ] || [ "$i" = "$L" ] || fail "node $i does not follow $L"
    done
    # A paused leader neither hangs `leader` nor keeps the cluster from electing another one.
    cl pause "$L" >/dev/null || fail "pause $L"
    within 3 cl leader >/dev/null 2>&1
    L2=$(wait_leader 10 "$L") || fail "no new leader within 10 s of pausing node $L"
    [ "$(info "$L2" raft_role)" = leader ] || fail "node $L2 is named leader but is not"
    # One running node of three is no majority: exit 1, promptly.
    cl kill "$L2" >/dev/null || fail "kill $L2"
    within 3 cl leader >"$RAFTKV_DIR/leader.out" 2>&1
    [ "$last_rc" = 1 ] || fail "leader with 1 of 3 nodes exited $last_rc: $(cat "$RAFTKV_DIR/leader.out")"
    cl resume "$L" >/dev/null || fail "resume $L"
    cl restart "$L2" >/dev/null || fail "restart $L2"
    wait_leader 10 >/dev/null || fail "no leader within 10 s once all three run again"
    if cl leader extra >/dev/null 2>&1; then fail "leader with an argument succeeded"; fi
    ;;

  kill)
    start_cluster
    L=$(wait_leader 10) || fail "no leader within 10 s"
    write fruit apple
    pid=$(pid_of "$L")
    out=$(cl kill "$L") || fail "kill $L exited non-zero"
    [ "$out" = "node=$L killed (pid $pid)" ] || fail "kill printed '$out'"
    ! alive "$pid" || fail "pid $pid of node $L is still alive"
    [ ! -e "$RAFTKV_DIR/node$L/server.pid" ] || fail "kill left node $L's pid file"
    [ "$(status_of "$L")" = "node=$L pid=- state=stopped role=- term=-" ] || fail "status after kill: $(status_of "$L")"
    L2=$(wait_leader 10 "$L") || fail "no leader among the other two within 10 s"
    expect_value fruit apple
    write fruit banana
    expect_value fruit banana
    if cl kill "$L" >/dev/null 2>&1; then fail "kill of a stopped node succeeded"; fi
    for bad in 0 4 x; do
      if cl kill "$bad" >/dev/null 2>&1; then fail "kill $bad succeeded"; fi
    done
    if cl kill >/dev/null 2>&1; then fail "kill without a node id succeeded"; fi
    alive "$(pid_of "$L2")" || fail "the new leader died"
    ;;

  restart)
    # Flags given to start are kept by restart, which does not read RAFTKV_EXTRA_FLAGS itself.
    if out=$(RAFTKV_EXTRA_FLAGS="loglevel verbose" cl start 2>&1); then
      fail "start with a RAFTKV_EXTRA_FLAGS that is no flag succeeded: $out"
    fi
    grep -q "RAFTKV_EXTRA_FLAGS" <<<"$out" || fail "bad RAFTKV_EXTRA_FLAGS: unclear message '$out'"
    RAFTKV_EXTRA_FLAGS="--loglevel verbose" start_cluster
    L=$(wait_leader 10) || fail "no leader within 10 s"
    for i in 1 2 3; do
      [ "$(rcli "$i" CONFIG GET loglevel | sed -n 2p)" = verbose ] ||
        fail "node $i did not start with RAFTKV_EXTRA_FLAGS"
    done
    write k1 v1
    F=$((L % 3 + 1))
    old=$(pid_of "$F")
    out=$(cl restart "$F") || fail "restart $F exited non-zero"
    new=$(pid_of "$F")
    [ "$out" = "node=$F stopped (pid $old, SIGTERM)"$'\n'"node=$F pid=$new restarted" ] || fail "restart printed '$out'"
    if [ "$new" = "$old" ] || ! alive "$new" || alive "$old"; then fail "restart $F: old pid $old, new pid '$new'"; fi
    grep -q 'signal 15' "$RAFTKV_DIR/node$F/server.log" || fail "node $F was not stopped with SIGTERM"
    [ "$(rcli "$F" CONFIG GET loglevel | sed -n 2p)" = verbose ] ||
      fail "node $F lost its RAFTKV_EXTRA_FLAGS across restart"
    write k2 v2
    # The leader restarts too: the data lives in the nodes' directories.
    cl restart "$L" >/dev/null || fail "restart of leader $L"
    wait_leader 10 >/dev/null || fail "no leader within 10 s of restarting node $L"
    expect_value k1 v1
    expect_value k2 v2
    # Restart starts a killed node, and a paused one.
    K=$((F % 3 + 1))
    cl kill "$K" >/dev/null || fail "kill $K"
    cl restart "$K" >/dev/null || fail "restart of the killed node $K"
    [[ "$(status_of "$K")" == "node=$K pid=$(pid_of "$K") state=running "* ]] || fail "after restart: $(status_of "$K")"
    cl pause "$F" >/dev/null || fail "pause $F"
    old=$(pid_of "$F")
    within 15 cl restart "$F" >/dev/null
    [ "$last_rc" = 0 ] || fail "restart of the paused node $F exited $last_rc"
    ! alive "$old" || fail "the paused process $old survived restart"
    [[ "$(status_of "$F")" == "node=$F pid=$(pid_of "$F") state=running "* ]] || fail "after restart: $(status_of "$F")"
    # The whole cluster down and up again: all the writes are still there.
    cl stop >/dev/null || fail "stop"
    for i in 1 2 3; do cl restart "$i" >/dev/null || fail "restart $i of a stopped cluster"; done
    wait_leader 10 >/dev/null || fail "no leader within 10 s of restarting every node"
    expect_value k1 v1
    expect_value k2 v2
    if cl restart 9 >/dev/null 2>&1; then fail "restart 9 succeeded"; fi
    ;;

  pause)
    start_cluster
    L=$(wait_leader 10) || fail "no leader within 10 s"
    write color red
    pid=$(pid_of "$L")
    out=$(cl pause "$L") || fail "pause $L exited non-zero"
    [ "$out" = "node=$L pid=$pid paused" ] || fail "pause printed '$out'"
    [ "$(awk '{print $3}' "/proc/$pid/stat")" = T ] || fail "node $L is not stopped in /proc"
    [ "$(status_of "$L")" = "node=$L pid=$pid state=paused role=- term=-" ] || fail "status: $(status_of "$L")"
    within 3 cl leader >/dev/null 2>&1
    L2=$(wait_leader 10 "$L") || fail "no new leader within 10 s of pausing leader $L"
    expect_value color red
    write color green
    expect_value color green
    [ "$(cl pause "$L")" = "node=$L pid=$pid already paused" ] || fail "pausing twice"
    K=$((L2 % 3 + 1))
    [ "$K" != "$L" ] || K=$((K % 3 + 1))
    cl kill "$K" >/dev/null || fail "kill $K"
    if cl pause "$K" >/dev/null 2>&1; then fail "pause of a stopped node succeeded"; fi
    if cl pause 8 >/dev/null 2>&1; then fail "pause 8 succeeded"; fi
    alive "$pid" || fail "the paused process died"
    ;;

  resume)
    start_cluster
    L=$(wait_leader 10) || fail "no leader within 10 s"
    write animal cat
    pid=$(pid_of "$L")
    cl pause "$L" >/dev/null || fail "pause $L"
    L2=$(wait_leader 10 "$L") || fail "no new leader within 10 s of pausing leader $L"
    write animal dog
    commit=$(info "$L2" raft_commit_index)
    out=$(cl resume "$L") || fail "resume $L exited non-zero"
    [ "$out" = "node=$L pid=$pid resumed" ] || fail "resume printed '$out'"
    [ "$(awk '{print $3}' "/proc/$pid/stat")" != T ] || fail "node $L is still stopped in /proc"
    [[ "$(status_of "$L")" == "node=$L pid=$pid state=running "* ]] || fail "status: $(status_of "$L")"
    # The old leader steps down, follows the new one and catches up with the writes it missed.
    ok=0
    for _ in $(seq 50); do
      l=$(cl leader 2>/dev/null || true)
      if [ -n "$l" ] && [ "$(info "$L" raft_role)" = follower ] && [ "$(info "$L" raft_leader_id)" = "$l" ] &&
        [ "$(info "$L" raft_applied_index)" -ge "$commit" ] 2>/dev/null; then
        ok=1
        break
      fi
      sleep 0.2
    done
    [ "$ok" = 1 ] || fail "resumed node $L did not rejoin within 10 s (role $(info "$L" raft_role), applied $(info "$L" raft_applied_index), commit $commit)"
    expect_value animal dog
    [ "$(cl resume "$L")" = "node=$L pid=$pid is not paused" ] || fail "resuming a running node"
    cl kill "$L" >/dev/null || fail "kill $L"
    if cl resume "$L" >/dev/null 2>&1; then fail "resume of a stopped node succeeded"; fi
    if cl resume >/dev/null 2>&1; then fail "resume without a node id succeeded"; fi
    ;;

  isolate)
    start_cluster
    L=$(wait_leader 10) || fail "no leader within 10 s"
    write before isolate
    out=$(cl isolate "$L") || fail "isolate $L exited non-zero: $out"
    [ "$out" = "node=$L isolated" ] || fail "isolate printed '$out'"
    others=()
    for i in 1 2 3; do [ "$i" = "$L" ] || others+=("$i"); done
    [ "$(fault_status "$L")" = "blocked ${others[0]},${others[1]} unreliable no drop_percent 0 max_delay_ms 0" ] ||
      fail "node $L's faults: $(fault_status "$L")"
    for i in "${others[@]}"; do
      [ "$(fault_status "$i")" = "blocked $L unreliable no drop_percent 0 max_delay_ms 0" ] ||
        fail "node $i's faults: $(fault_status "$i")"
    done
    # The other two elect a leader and serve writes; the isolated node cannot make one.
    L2=$(wait_leader 15 "$L") || fail "no new leader within 15 s of isolating node $L"
    [ "$L2" != "$L" ] || fail "the isolated node $L is still named leader"
    write during isolate
    expect_value during isolate
    r=$(timeout 10 redis-cli -h 127.0.0.1 -p $((base + L)) SET lost write 2>/dev/null | tr -d '\r' || true)
    refused_write "$r" || fail "a write to the isolated node $L answered '$r'"
    # Still isolated: it neither leads nor learns the new leader's writes.
    [ "$(info "$L" raft_role)" != leader ] || [ "$(cl leader)" != "$L" ] || fail "node $L leads again"
    # Bad ids and usage.
    for bad in 0 4 x; do
      if cl isolate "$bad" >/dev/null 2>&1; then fail "isolate $bad succeeded"; fi
    done
    set +e
    cl isolate >/dev/null 2>&1
    rc=$?
    set -e
    [ "$rc" = 2 ] || fail "isolate without a node id exited $rc, expected 2"
    if RAFTKV_DIR=$RAFTKV_DIR/nothing-here cl isolate 1 >/dev/null 2>&1; then fail "isolate with no cluster succeeded"; fi
    ;;

  partition)
    start_cluster
    L=$(wait_leader 10) || fail "no leader within 10 s"
    write p 0
    A=$((L % 3 + 1))
    B=$((A % 3 + 1))
    # The leader alone on one side: the majority side elects one of its own and serves writes.
    out=$(cl partition "$L/$A,$B") || fail "partition $L/$A,$B exited non-zero: $out"
    [ "$out" = "partitioned: $L/$A,$B" ] || fail "partition printed '$out'"
    [[ "$(fault_status "$A")" == "blocked $L "* ]] || fail "node $A's faults: $(fault_status "$A")"
    L2=$(wait_leader 15 "$L") || fail "no leader on the majority side within 15 s"
    [ "$L2" = "$A" ] || [ "$L2" = "$B" ] || fail "leader $L2 is not on the majority side $A,$B"
    write p 1
    expect_value p 1
    r=$(timeout 10 redis-cli -h 127.0.0.1 -p $((base + L)) SET lost write 2>/dev/null | tr -d '\r' || true)
    refused_write "$r" || fail "a write on the minority side (node $L) answered '$r'"
    # Another partition replaces the first: now $L2 is alone, the other two (one of them cut off
    # from the other until now) make the majority.
    O=$((L2 == A ? B : A))
    out=$(cl partition "$O,$L/$L2") || fail "partition $O,$L/$L2 exited non-zero: $out"
    [[ "$(fault_status "$L")" == "blocked $L2 "* ]] || fail "node $L's faults: $(fault_status "$L")"
    L3=$(wait_leader 15 "$L2") || fail "no leader on the new majority side within 15 s"
    [ "$L3" = "$O" ] || [ "$L3" = "$L" ] || fail "leader $L3 is not on the majority side $O,$L"
    write p 2
    expect_value p 2
    # Errors: one group, a node left out or listed twice, an unknown id, bad syntax.
    for bad in "1,2,3" "1//2,3" "1,2/" "a/b" ""; do
      set +e
      cl partition "$bad" >/dev/null 2>&1
      rc=$?
      set -e
      [ "$rc" = 2 ] || fail "partition '$bad' exited $rc, expected 2"
    done
    for bad in "1/2" "1,1/2,3" "1/2,3,4" "0/1,2,3"; do
      set +e
      out=$(cl partition "$bad" 2>&1)
      rc=$?
      set -e
      [ "$rc" = 1 ] || fail "partition '$bad' exited $rc, expected 1: $out"
      [ -n "$out" ] || fail "partition '$bad' failed without a message"
    done
    # A failed partition changed nothing.
    [[ "$(fault_status "$L")" == "blocked $L2 "* ]] || fail "node $L's faults after bad partitions: $(fault_status "$L")"
    ;;

  unreliable)
    start_cluster
    L=$(wait_leader 10) || fail "no leader within 10 s"
    out=$(cl unreliable on) || fail "unreliable on exited non-zero: $out"
    [ "$out" = "unreliable on" ] || fail "unreliable on printed '$out'"
    for i in 1 2 3; do
      [ "$(fault_status "$i")" = "blocked  unreliable yes drop_percent 10 max_delay_ms 26" ] ||
        fail "node $i's faults: $(fault_status "$i")"
    done
    # Writes still succeed: 50 through the leader, each retried a few times (a request may
    # time out, or leadership move, when frames are lost), in bounded time.
    started=$SECONDS
    l=$L
    for k in $(seq 50); do
      r=""
      for _ in 1 2 3 4 5; do
        r=$(timeout 10 redis-cli -h 127.0.0.1 -p $((base + l)) SET "u$k" "v$k" 2>/dev/null | tr -d '\r' || true)
        [ "$r" = OK ] && break
        sleep 0.2
        l=$(wait_leader 10) || l=$L
      done
      [ "$r" = OK ] || fail "SET u$k on unreliable links: '$r' after 5 tries"
    done
    [ $((SECONDS - started)) -le 60 ] || fail "50 writes on unreliable links took $((SECONDS - started)) s"
    expect_value u50 v50
    out=$(cl unreliable off) || fail "unreliable off exited non-zero: $out"
    [ "$out" = "unreliable off" ] || fail "unreliable off printed '$out'"
    for i in 1 2 3; do
      [ "$(fault_status "$i")" = "blocked  unreliable no drop_percent 0 max_delay_ms 0" ] ||
        fail "node $i's faults: $(fault_status "$i")"
    done
    write after off
    expect_value after off
    for bad in maybe ""; do
      set +e
      cl unreliable $bad >/dev/null 2>&1
      rc=$?
      set -e
      [ "$rc" = 2 ] || fail "unreliable '$bad' exited $rc, expected 2"
    done
    ;;

  heal)
    start_cluster
    L=$(wait_leader 10) || fail "no leader within 10 s"
    cl isolate "$L" >/dev/null || fail "isolate $L"
    cl unreliable on >/dev/null || fail "unreliable on"
    L2=$(wait_leader 15 "$L") || fail "no new leader within 15 s of isolating node $L"
    write h 1
    commit=$(info "$L2" raft_commit_index)
    out=$(cl heal) || fail "heal exited non-zero: $out"
    [ "$out" = "healed" ] || fail "heal printed '$out'"
    for i in 1 2 3; do
      [ "$(fault_status "$i")" = "blocked  unreliable no drop_percent 0 max_delay_ms 0" ] ||
        fail "node $i's faults after heal: $(fault_status "$i")"
    done
    # Every node converges on one commit index, the isolated one included, and a write through
    # the formerly isolated node succeeds.
    wait_converged 15 3 "$commit"
    deadline=$((SECONDS + 10))
    r=""
    until [ "$r" = OK ]; do
      [ "$SECONDS" -lt "$deadline" ] || fail "SET through the healed node $L: '$r'"
      r=$(timeout 10 redis-cli -h 127.0.0.1 -p $((base + L)) SET h 2 2>/dev/null | tr -d '\r' || true)
      [ "$r" = OK ] || sleep 0.2
    done
    expect_value h 2
    # Heal skips stopped and paused nodes with a warning; a restarted node starts healed.
    F=$((L % 3 + 1))
    K=$((F % 3 + 1))
    cl isolate "$K" >/dev/null || fail "isolate $K"
    cl restart "$K" >/dev/null || fail "restart $K"
    [[ "$(fault_status "$K")" == "blocked  "* ]] || fail "node $K after restart: $(fault_status "$K")"
    cl pause "$F" >/dev/null || fail "pause $F"
    out=$(cl heal 2>&1) || fail "heal with a paused node exited non-zero: $out"
    grep -q "node $F is paused" <<<"$out" || fail "heal did not warn about the paused node: $out"
    cl resume "$F" >/dev/null || fail "resume $F"
    cl kill "$F" >/dev/null || fail "kill $F"
    out=$(cl heal 2>&1) || fail "heal with a stopped node exited non-zero: $out"
    grep -q "node $F is not running" <<<"$out" || fail "heal did not warn about the stopped node: $out"
    if cl heal extra >/dev/null 2>&1; then fail "heal with an argument succeeded"; fi
    if RAFTKV_DIR=$RAFTKV_DIR/nothing-here cl heal >/dev/null 2>&1; then fail "heal with no cluster succeeded"; fi
    ;;

  *)
    echo "unknown case '$case_name'"
    exit 2
    ;;
esac
echo "ClusterSh.$case_name: ok (base port $base)"
