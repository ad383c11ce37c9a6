#!/usr/bin/env bash
# End-to-end snapshot catch-up: three raftkv-server processes on 127.0.0.1 with
# --snapshot-entries 10 --snapshot-keep-entries 5 (the writes of a pipeline share entries, so
# it makes few), driven with redis-cli.
#  1. A follower F is killed; 2000 keys of 3 KiB are written; the leader compacts its log past
#     everything F holds, so F can only catch up by a snapshot.
#  2. F restarts and catches up: a snapshot of about 6 MiB, streamed in more chunks than the
#     window of unacknowledged ones, then the log. Both ends log the stream.
#  3. The other follower O is killed: the leader and F alone serve every key and take a write.
#  4. The leader and F are killed; F and O restart. F, whose log holds the last write that O
#     lacks, must lead, and serve every key from its own disk: the install survived a restart.
# Every process is stopped by PID; every wait is bounded.
#   snapshot_test.sh <path to raftkv-server>
set -euo pipefail
server=$1
command -v redis-cli >/dev/null || { echo "redis-cli missing (scripts/setup.sh installs redis-tools)"; exit 1; }
work=$(mktemp -d)
# Client ports base+1..3, peer ports base+10001..3: apart from the other e2e tests' ports, and
# all below 32768, where Linux's ephemeral ports begin (an outgoing connection holding one would
# make a listener fail with "address already in use").
base=$((14000 + (RANDOM % 600) * 10))
export RAFTKV_BASE_PORT=$base
keys=2000
pad=$(printf 'x%.0s' $(seq 3000))
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; for i in 1 2 3; do echo "--- node $i"; tail -8 "$work/n$i.log" || true; done; exit 1; }
# Prints the reply, or nothing when the node does not answer (the callers check what they get).
cli() { timeout 5 redis-cli -p "$1" "${@:2}" 2>/dev/null | tr -d '\r' || true; }
field() { cli $((base + $1)) INFO | sed -n "s/^$2://p"; }
start() {
  "$server" --node-id "$1" --dir "$work/node$1" --snapshot-entries 10 \
    --snapshot-keep-entries 5 >>"$work/n$1.log" 2>&1 &
  pids[$1]=$!
}
kill9() {
  kill -KILL "${pids[$1]}" 2>/dev/null || fail "node $1 had stopped on its own"
  wait "${pids[$1]}" 2>/dev/null || true
}
leader() {
  for i in 1 2 3; do
    [ "$(field "$i" raft_role)" = "leader" ] && { echo "$i"; return 0; }
  done
  return 1
}
wait_leader() {
  for _ in $(seq 150); do leader && return 0; sleep 0.1; done
  return 1
}
# wait_for <tenths of a second> <command...>: until the command succeeds.
wait_for() {
  local n=$1
  shift
  for _ in $(seq "$n"); do "$@" && return 0; sleep 0.1; done
  return 1
}
at_least() { local v; v=$(field "$1" "$2"); [ -n "$v" ] && [ "$v" -ge "$3" ]; }
check_keys() {
  local port=$((base + $1))
  for k in 1 2 99 100 101 777 1000 1999 "$keys"; do
    [ "$(cli "$port" GET "key:$k")" = "value-$k-$pad" ] || fail "node $1: GET key:$k is wrong"
  done
}

for i in 1 2 3; do start "$i"; done
L=$(wait_leader) || fail "no leader within 15 s"
F=$((L % 3 + 1))
O=$((F % 3 + 1))
[ "$(cli $((base + L)) SET before-kill 1)" = "OK" ] || fail "SET on the leader"
wait_for 50 at_least "$F" raft_applied_index 2 || fail "node $F never applied the first write"
f_last=$(field "$F" raft_last_index)
kill9 "$F"

# 1. Writes while F is down, pipelined in one connection.
awk -v n="$keys" -v pad="$pad" 'BEGIN {
  for (k = 1; k <= n; k++) {
    key = "key:" k; value = "value-" k "-" pad
    printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(key), key, length(value), value
  }
}' >"$work/load.resp"
piped=$(timeout 60 redis-cli -p $((base + L)) --pipe <"$work/load.resp" 2>&1 | tr -d '\r' | tail -1 || true)
[[ "$piped" == *"errors: 0, replies: $keys"* ]] || fail "pipelined writes: $piped"
wait_for 100 at_least "$L" raft_snapshot_index $((f_last + 1)) ||
  fail "the leader's log was not compacted past node $F's last index $f_last"
l_snap=$(field "$L" raft_snapshot_index)
target=$(field "$L" raft_applied_index)

# 2. F catches up: only a snapshot can bring it past the leader's compacted log.
start "$F"
wait_for 300 at_least "$F" raft_applied_index "$target" ||
  fail "node $F did not catch up to $target within 30 s (at $(field "$F" raft_applied_index))"
at_least "$F" raft_snapshot_index "$l_snap" ||
  fail "node $F's snapshot index $(field "$F" raft_snapshot_index) is below the leader's $l_snap"
grep -q "installed snapshot" "$work/n$F.log" || fail "node $F logged no snapshot install"
chunks=$(sed -n "s/.*sent snapshot .* to node $F: \([0-9]*\) chunks.*/\1/p" "$work/n$L.log" | tail -1)
[ -n "$chunks" ] && [ "$chunks" -gt 4 ] || fail "the leader logged no stream of more than 4 chunks to node $F"

# 3. Without O, the leader needs F for every read and write.
kill9 "$O"
[ "$(leader)" = "$L" ] || fail "node $L no longer leads"
check_keys "$L"
[ "$(cli $((base + L)) SET after-snapshot yes)" = "OK" ] || fail "SET with only nodes $L and $F up"

# 4. F restarts from its own disk, with O: F holds the last write, so F must lead.
kill9 "$L"
kill9 "$F"
start "$F"
start "$O"
L2=$(wait_leader) || fail "no leader among nodes $F and $O within 15 s"
[ "$L2" = "$F" ] || fail "node $L2 leads, not node $F which holds the last write"
check_keys "$F"
[ "$(cli $((base + F)) GET after-snapshot)" = "yes" ] || fail "node $F lost the write made after its install"
at_least "$F" raft_snapshot_index 1 || fail "node $F restarted without its snapshot"
for i in "$F" "$O"; do kill -TERM "${pids[$i]}"; done
for i in "$F" "$O"; do
  for _ in $(seq 50); do kill -0 "${pids[$i]}" 2>/dev/null || break; sleep 0.1; done
  kill -0 "${pids[$i]}" 2>/dev/null && fail "node $i did not stop on SIGTERM"
  wait "${pids[$i]}" || fail "node $i exited with status $?"
done
echo "snapshot: node $F caught up past the leader's snapshot $l_snap to $target, served with node $L, and kept it over a restart"
