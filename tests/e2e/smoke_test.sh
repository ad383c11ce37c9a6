#!/usr/bin/env bash
# End-to-end smoke test: three raftkv-server processes on 127.0.0.1, driven with redis-cli.
# A leader is elected; writes and linearizable reads work through it and through a follower;
# after SIGKILL of the leader another one takes over with the data; SIGTERM stops every node.
# Every process is stopped by PID; every wait is bounded.
#   smoke_test.sh <path to raftkv-server>
set -euo pipefail
server=$1
command -v redis-cli >/dev/null || { echo "redis-cli missing (scripts/setup.sh installs redis-tools)"; exit 1; }
work=$(mktemp -d)
base=$((11000 + (RANDOM % 100) * 10))
export RAFTKV_BASE_PORT=$base
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; for i in 1 2 3; do echo "--- node $i"; tail -5 "$work/n$i.log" || true; done; exit 1; }
cli() { timeout 5 redis-cli -p "$1" "${@:2}" 2>/dev/null | tr -d '\r'; }
leader() {
  for i in 1 2 3; do
    [ "$(cli $((base + i)) INFO | grep '^raft_role:')" = "raft_role:leader" ] && { echo "$i"; return 0; }
  done
  return 1
}
wait_leader() {
  for _ in $(seq 100); do leader && return 0; sleep 0.1; done
  return 1
}

for i in 1 2 3; do
  "$server" --node-id "$i" --dir "$work/node$i" >"$work/n$i.log" 2>&1 &
  pids[$i]=$!
done
L=$(wait_leader) || fail "no leader within 10 s"
[ "$(cli $((base + L)) SET greeting hello)" = "OK" ] || fail "SET on the leader"
[ "$(cli $((base + L)) GET greeting)" = "hello" ] || fail "GET on the leader"
[ "$(cli $((base + L)) INCR n)" = "1" ] || fail "INCR"
F=$((L % 3 + 1))
[ "$(cli $((base + F)) GET greeting)" = "hello" ] || fail "GET through follower $F (forwarded)"
[ "$(cli $((base + F)) SET via follower)" = "OK" ] || fail "SET through follower $F (forwarded)"
kill -KILL "${pids[$L]}"
wait "${pids[$L]}" 2>/dev/null || true
L2=""
for _ in $(seq 100); do L2=$(leader) && [ "$L2" != "$L" ] && break; L2=""; sleep 0.1; done
[ -n "$L2" ] || fail "no new leader within 10 s of killing node $L"
[ "$(cli $((base + L2)) GET greeting)" = "hello" ] || fail "the new leader lost the write"
[ "$(cli $((base + L2)) INCR n)" = "2" ] || fail "INCR on the new leader"
for i in 1 2 3; do [ "$i" = "$L" ] || kill -TERM "${pids[$i]}"; done
for i in 1 2 3; do
  [ "$i" = "$L" ] && continue
  for _ in $(seq 50); do kill -0 "${pids[$i]}" 2>/dev/null || break; sleep 0.1; done
  kill -0 "${pids[$i]}" 2>/dev/null && fail "node $i did not stop on SIGTERM"
  wait "${pids[$i]}" || fail "node $i exited with status $?"
done
echo "smoke: leader $L, then $L2 after SIGKILL; writes, reads, redirects and shutdown ok"
