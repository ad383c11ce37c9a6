#!/usr/bin/env bash
# Starts a local 3-node raftkv cluster in the foreground; Ctrl-C stops it.
#
#   scripts/run.sh            node i serves Redis clients on 127.0.0.1:(7000+i)
#   redis-cli -p 7001 SET k v
#
# Installs what is missing (scripts/setup.sh) and builds first. Data and logs live under
# $RAFTKV_DIR (default: data/cluster in the repository), one node<I>/ per node; ports start at
# $RAFTKV_BASE_PORT (default 7000; peers use base + 10000 + i).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
B=${RAFTKV_BUILD:-build}
dir=${RAFTKV_DIR:-$root/data/cluster}
base=${RAFTKV_BASE_PORT:-7000}
export RAFTKV_BASE_PORT=$base

scripts/setup.sh
cmake -S . -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$B" --target raftkv-server -j2

pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -f "$dir"/node*/server.pid
  echo "run.sh: cluster stopped"
}
trap 'stop; exit 0' INT TERM
trap stop EXIT

for i in 1 2 3; do
  mkdir -p "$dir/node$i"
  if [ -f "$dir/node$i/server.pid" ] && kill -0 "$(cat "$dir/node$i/server.pid")" 2>/dev/null; then
    echo "run.sh: node $i of $dir is already running (pid $(cat "$dir/node$i/server.pid"))" >&2
    exit 1
  fi
  "$B/bin/raftkv-server" --node-id "$i" --dir "$dir/node$i" >>"$dir/node$i/server.log" 2>&1 &
  pids+=($!)
  echo $! >"$dir/node$i/server.pid"
done
echo "run.sh: 3 nodes on 127.0.0.1:$((base + 1))-$((base + 3)) (data and logs in $dir); Ctrl-C stops them"
wait -n "${pids[@]}" || true
echo "run.sh: a node exited; see $dir/node*/server.log" >&2
exit 1
