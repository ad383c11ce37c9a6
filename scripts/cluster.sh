#!/usr/bin/env bash
# Drives a local raftkv cluster of real raftkv-server processes in the background.
#
#   scripts/cluster.sh start [-n N]   start nodes 1..N (default 3; 1..7) and wait until each answers
#   scripts/cluster.sh status         one line per node: node=I pid=P state=S role=R term=T
#   scripts/cluster.sh leader         the id of the leader a majority agrees on (exit 1: none)
#   scripts/cluster.sh kill 2         SIGKILL node 2 (pause, resume, restart alike)
#   scripts/cluster.sh stop           SIGTERM every node, SIGKILL after a timeout
#   scripts/cluster.sh isolate 2      node 2 and the others stop hearing each other
#   scripts/cluster.sh partition 1,2/3,4,5   nodes in different groups cannot talk
#   scripts/cluster.sh unreliable on  every peer link drops ~10% of frames, delays 0-26 ms
#   scripts/cluster.sh heal           undo isolate, partition and unreliable
#
# The network faults go through each running node's RAFT.FAULT command (the nodes are started
# with enable-debug-command local); a node that is stopped or paused is skipped with a warning,
# and a node keeps no fault across a restart (it starts healed).
#
# Layout: $RAFTKV_DIR (default: data/cluster in the repository) holds `cluster.info` (the number
# of nodes and the base port of the last start, and the cluster secret made at the first) and
# one node<I>/ per node with its data, the config `raftkv.conf` the node is started with,
# `server.pid` and `server.log`. Node i serves
# clients on 127.0.0.1:(B+i) and peers on 127.0.0.1:(B+10000+i), B = $RAFTKV_BASE_PORT (default
# 7000) at `start`; `restart` keeps the ports of the last `start`. raftkv-server is taken from
# ${RAFTKV_BUILD:-build}/bin and built first when it is missing. Extra server flags in
# $RAFTKV_EXTRA_FLAGS at `start` (e.g. "--debug-unsafe no-dedup") become lines of each node's
# raftkv.conf, so `restart` keeps them.
#
# Exit status: 0 on success, 1 on failure (and `leader` when there is no leader), 2 on bad usage.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${RAFTKV_BUILD:-build}
[[ $build == /* ]] || build=$root/$build
server=$build/bin/raftkv-server
dir=${RAFTKV_DIR:-$root/data/cluster}
[[ $dir == /* ]] || dir=$(pwd)/$dir
info=$dir/cluster.info
tmp=""  # a scratch directory of status and leader, removed on exit
trap '[ -z "$tmp" ] || rm -rf "$tmp"' EXIT

readonly start_timeout_s=10  # each node must answer PING within this after it is started
readonly stop_timeout_s=10   # SIGTERM, then SIGKILL after this
readonly max_nodes=7
readonly peer_port_offset=10000

usage() {
  cat <<'EOF'
usage: scripts/cluster.sh <command> [arguments]

A local raftkv cluster of real raftkv-server processes, running in the background.

  start [-n N]  start nodes 1..N (N = 1..7; default: the size of the cluster already in
                $RAFTKV_DIR, else 3) and wait until each answers PING; fails if a node is running
  stop          stop every node: SIGTERM, then SIGKILL after 10 s
  status        one line per node: node=<I> pid=<pid|-> state=<running|stopped|paused>
                role=<role|-> term=<term|->
  leader        print the id of the leader that a majority of the nodes agrees on;
                exit 1 when there is none (paused and unreachable nodes do not count)
  kill I        SIGKILL node I
  restart I     stop node I (SIGTERM, SIGKILL after 10 s) if it runs, start it again with the
                same data and config, and wait until it answers PING
  pause I       SIGSTOP node I
  resume I      SIGCONT node I
  isolate I     node I drops all traffic with every other node, and they with it
  partition G/G[/G...]
                groups of node ids, e.g. 1,2/3,4,5: nodes in different groups drop all
                traffic with each other, nodes in the same group talk. Every node of the
                cluster must be listed exactly once, in one of at least two groups. Replaces
                any earlier isolate or partition (unreliable stays as it is)
  unreliable on|off
                on: every node drops 10% of the frames it sends to peers and delays the others
                by 0-26 ms; off: reliable links again (blocked links stay blocked)
  heal          undo isolate, partition and unreliable on every node
  help          this text

Network faults are sent to each running node (RAFT.FAULT); stopped and paused nodes are
skipped with a warning. A node keeps no fault across a restart: it starts healed.

Environment:
  RAFTKV_DIR        the cluster's directory (default: data/cluster in the repository)
  RAFTKV_BASE_PORT  at start: node i serves clients on 127.0.0.1:(B+i) and peers on
                    127.0.0.1:(B+10000+i) (default 7000)
  RAFTKV_BUILD      build directory holding bin/raftkv-server (default: build); built if missing
  RAFTKV_EXTRA_FLAGS
                    at start: more server flags for every node, `--name value ...` split on
                    blanks (no quoting), e.g. "--debug-unsafe no-dedup --loglevel debug". They
                    are written into each node's raftkv.conf after the generated lines (so
                    they override them, as flags would) and kept by restart; the next start
                    without them drops them.
EOF
}

die() {
  echo "cluster.sh: $*" >&2
  exit 1
}

usage_error() {
  echo "cluster.sh: $*" >&2
  echo "run 'scripts/cluster.sh help' for usage" >&2
  exit 2
}

# Whether $1 is a decimal integer (no sign, no leading zero) between $2 and $3.
in_range() {
  [[ $1 =~ ^(0|[1-9][0-9]{0,8})$ ]] || return 1
  [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]
}

# ---- Reading the cluster's directory ----

# The helpers below return values through a variable named by their first argument (printf
# -v), not on standard output: `leader` and `status` must stay fast on a busy machine, and
# every $(...) is a fork. Their locals end in _ and differ from their callers' (a local of the
# callee with the caller's name would capture the result).

# Sets $1 to the number of nodes recorded by the last start; empty when there is none. Without
# cluster.info (a directory run.sh made), the highest node<I>/ that holds Raft data.
recorded_nodes() {
  local key_ value_ i_
  printf -v "$1" '%s' ""
  if [ -f "$info" ]; then
    while read -r key_ value_; do
      if [ "$key_" = nodes ]; then
        printf -v "$1" '%s' "$value_"
        return 0
      fi
    done <"$info"
    return 0
  fi
  for ((i_ = max_nodes; i_ >= 1; i_--)); do
    if [ -d "$dir/node$i_/raft" ]; then
      printf -v "$1" '%s' "$i_"
      return 0
    fi
  done
}

# The cluster-secret of the directory, made once (at the first start) and kept in cluster.info.
cluster_secret() {
  local key value
  if [ -f "$info" ]; then
    while read -r key value; do
      if [ "$key" = cluster-secret ] && [ -n "$value" ]; then
        echo "$value"
        return 0
      fi
    done <"$info"
  fi
  od -An -N16 -tx1 /dev/urandom | tr -d ' \n'
}

# Sets $1 to the number of nodes of the cluster in $dir; fails when there is none.
cluster_size() {
  local n_
  recorded_nodes n_
  [ -n "$n_" ] || die "no cluster in $dir (run 'scripts/cluster.sh start' first)"
  in_range "$n_" 1 "$max_nodes" || die "$info is corrupt (nodes '$n_')"
  printf -v "$1" '%s' "$n_"
}

# Fails unless $1 is the id of a node of the cluster.
check_node_id() {
  local n
  cluster_size n
  in_range "$1" 1 "$n" || die "bad node id '$1': the cluster in $dir has nodes 1..$n"
}

# Sets $1 to the client port of node $2, from its config.
client_port() {
  local conf_=$dir/node$2/raftkv.conf key_ value_
  [ -f "$conf_" ] || die "node $2 has no config ($conf_); run 'scripts/cluster.sh start'"
  while read -r key_ value_; do
    if [ "$key_" = port ]; then
      printf -v "$1" '%s' "$value_"
      return 0
    fi
  done <"$conf_"
  die "$conf_ has no port line"
}

# Sets $1 to the one-letter state of process $2 (R, S, D, T, t, Z, ...); empty when there is
# no such process.
proc_state() {
  local stat_=""
  { read -r stat_ <"/proc/$2/stat"; } 2>/dev/null || stat_=""
  if [ -n "$stat_" ]; then
    stat_=${stat_##*) }  # after "pid (comm) "; comm may hold blanks and parentheses
    stat_=${stat_%% *}
  fi
  printf -v "$1" '%s' "$stat_"
}

# Whether process $1 is gone, or a zombie.
is_gone() {
  local st_
  proc_state st_ "$1"
  [ -z "$st_" ] || [ "$st_" = Z ] || [ "$st_" = X ]
}

# Sets $1 to the pid of node $2 when its raftkv-server process is alive (running or paused),
# else to "". The pid file alone is not trusted: the process must exist, not be a zombie, and
# be a raftkv-server (a pid may have been reused since).
node_pid() {
  local pidfile_=$dir/node$2/server.pid pid_="" argv0_=""
  printf -v "$1" '%s' ""
  { read -r pid_ <"$pidfile_"; } 2>/dev/null || return 0
  [[ $pid_ =~ ^[0-9]+$ ]] || return 0
  ! is_gone "$pid_" || return 0
  { read -r -d '' argv0_ <"/proc/$pid_/cmdline"; } 2>/dev/null || true
  [[ $argv0_ == *raftkv-server ]] || return 0
  printf -v "$1" '%s' "$pid_"
}

# Whether process $1 is stopped (SIGSTOP).
is_paused() {
  local st_
  proc_state st_ "$1"
  [ "$st_" = T ] || [ "$st_" = t ]
}

# Waits until process $1 is gone (or a zombie), at most $2 seconds; fails if it is still there.
wait_gone() {
  local deadline=$((SECONDS + $2))
  until is_gone "$1"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}

# Runs redis-cli against node $1 with a 1 s limit; prints the reply without carriage returns.
cli() {
  local port
  client_port port "$1"
  timeout 1 redis-cli -h 127.0.0.1 -p "$port" "${@:2}" 2>/dev/null | tr -d '\r'
}

# Sets $1 to the value of field $3 (e.g. raft_role) in the INFO reply saved in file $2; empty
# when the file or the field is missing.
info_field() {
  local line_
  printf -v "$1" '%s' ""
  [ -f "$2" ] || return 0
  while IFS= read -r line_; do
    line_=${line_%$'\r'}
    if [[ $line_ == "$3:"* ]]; then
      printf -v "$1" '%s' "${line_#*:}"
      return 0
    fi
  done <"$2"
}

# Starts `INFO raft` on every node of $2 that runs and is not paused, in the background, with
# a 1 s limit each; node I's reply goes to the file $1/I. The caller waits for them.
ask_info() {
  local ai_ apid_ aport_
  for ((ai_ = 1; ai_ <= $2; ai_++)); do
    node_pid apid_ "$ai_"
    if [ -n "$apid_" ] && ! is_paused "$apid_"; then
      client_port aport_ "$ai_"
      timeout 1 redis-cli -h 127.0.0.1 -p "$aport_" INFO raft >"$1/$ai_" 2>/dev/null &
    fi
  done
}

# ---- Starting and stopping processes ----

ensure_server() {
  [ -x "$server" ] && return 0
  echo "cluster.sh: $server is missing; building it" >&2
  command -v cmake >/dev/null || die "cmake is missing (scripts/setup.sh installs it)"
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null ||
    die "cannot configure $build"
  cmake --build "$build" --target raftkv-server -j2 >&2 || die "cannot build raftkv-server"
  [ -x "$server" ] || die "the build did not produce $server"
}

need_redis_cli() {
  command -v redis-cli >/dev/null || die "redis-cli is missing (scripts/setup.sh installs redis-tools)"
}

# A value quoted for a raftkv.conf line (double quotes, \ and " escaped).
conf_quote() {
  local s=${1//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}

# Sets $1 to the config lines for the flags in RAFTKV_EXTRA_FLAGS, read the way raftkv-server
# reads flags: `--name` starts a directive, the word right after it is always its value, further
# words up to the next `--...` are more values. Fails on words before the first flag.
extra_flag_lines() {
  local words_=() lines_="" line_="" k_=0
  read -r -a words_ <<<"${RAFTKV_EXTRA_FLAGS:-}"
  while [ "$k_" -lt ${#words_[@]} ]; do
    [[ ${words_[k_]} =~ ^--[A-Za-z0-9][A-Za-z0-9_-]*$ ]] ||
      die "RAFTKV_EXTRA_FLAGS: expected a flag like --name, not '${words_[k_]}'"
    line_=${words_[k_]#--}
    k_=$((k_ + 1))
    if [ "$k_" -lt ${#words_[@]} ]; then
      line_+=" $(conf_quote "${words_[k_]}")"
      k_=$((k_ + 1))
    fi
    while [ "$k_" -lt ${#words_[@]} ] && [[ ${words_[k_]} != --* ]]; do
      line_+=" $(conf_quote "${words_[k_]}")"
      k_=$((k_ + 1))
    done
    lines_+="$line_"$'\n'
  done
  printf -v "$1" '%s' "$lines_"
}

# Whether something accepts connections on 127.0.0.1:$1.
port_busy() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Warns when a port of the cluster (base $1, $2 nodes) is in the kernel's ephemeral range: a node
# that connects to a peer that is not listening yet may be given that very port as its source
# (TCP self-connect), and the peer then cannot listen on it.
warn_ephemeral() {
  local lo hi
  { read -r lo hi </proc/sys/net/ipv4/ip_local_port_range; } 2>/dev/null || return 0
  if [ $(($1 + peer_port_offset + $2)) -ge "$lo" ] && [ $(($1 + 1)) -le "$hi" ]; then
    echo "cluster.sh: warning: ports up to $(($1 + peer_port_offset + $2)) reach the kernel's ephemeral range ($lo-$hi): a node may find its port taken; choose RAFTKV_BASE_PORT below $((lo - peer_port_offset - max_nodes))" >&2
  fi
}

# Starts node $1 in the background from its config, detached from this script (own session,
# no terminal, SIGHUP ignored, output appended to server.log), and records its pid in
# server.pid and launched_pid.
launched_pid=""
launch_node() {
  local d
  d=$dir/node$1
  rm -f "$d/server.pid"
  echo "cluster.sh: starting node $1 at $(date '+%Y-%m-%d %H:%M:%S')" >>"$d/server.log"
  # fd 9 is the directory lock: the server must not inherit it.
  setsid nohup "$server" "$d/raftkv.conf" </dev/null >>"$d/server.log" 2>&1 9>&- &
  launched_pid=$!
  echo "$launched_pid" >"$d/server.pid"
}

# Waits until node $1 (pid $2) answers PING, at most start_timeout_s; fails with the end of its
# log when it exits or does not answer in time.
wait_ready() {
  local id=$1 pid=$2 deadline=$((SECONDS + start_timeout_s)) log
  log=$dir/node$id/server.log
  while :; do
    if is_gone "$pid"; then
      echo "cluster.sh: node $id (pid $pid) exited during startup; the end of $log:" >&2
      tail -n 5 "$log" >&2 || true
      return 1
    fi
    [ "$(cli "$id" PING || true)" = PONG ] && return 0
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "cluster.sh: node $id (pid $pid) does not answer PING after ${start_timeout_s} s; the end of $log:" >&2
      tail -n 5 "$log" >&2 || true
      return 1
    fi
    sleep 0.1
  done
}

# Stops process $1 of node $2: SIGTERM (and SIGCONT, so a paused node sees it), SIGKILL after
# $3 seconds. Prints how it ended.
# A node that does not stop on SIGTERM is hung, not slow: before it is killed, its threads'
# states and (with gdb installed) stacks go to node<I>/stacks-<pid>.txt, to find out why.
save_stacks() {
  local pid=$1 id=$2 out t
  out=$dir/node$2/stacks-$1.txt
  {
    date '+%F %T'
    for t in /proc/"$pid"/task/*; do
      echo "$t $(cut -d' ' -f2,3 "$t/stat" 2>/dev/null) wchan=$(cat "$t/wchan" 2>/dev/null)"
    done
    if command -v gdb >/dev/null; then
      timeout 30 gdb -p "$pid" -batch -ex 'thread apply all bt' 2>&1 || true
    fi
  } >"$out" 2>&1 || true
  echo "cluster.sh: node $id (pid $pid) did not stop on SIGTERM; its threads: $out" >&2
}

stop_pid() {
  local pid=$1 id=$2 timeout_s=$3
  kill -TERM "$pid" 2>/dev/null || true
  kill -CONT "$pid" 2>/dev/null || true
  if wait_gone "$pid" "$timeout_s"; then
    echo "node=$id stopped (pid $pid, SIGTERM)"
    return 0
  fi
  save_stacks "$pid" "$id"
  kill -KILL "$pid" 2>/dev/null || true
  wait_gone "$pid" 5 || die "node $id (pid $pid) survives SIGKILL"
  echo "node=$id stopped (pid $pid, SIGKILL after ${timeout_s} s)"
}

# Serializes the commands that start, stop or signal nodes of one directory.
lock_dir() {
  mkdir -p "$dir"
  exec 9>"$dir/.lock"
  flock -w 60 9 || die "another cluster.sh holds $dir/.lock"
}

# The node ids that may have a process: 1..max(recorded size, node<I>/ directories present).
known_nodes() {
  local n i last=0
  recorded_nodes n
  [[ $n =~ ^[0-9]+$ ]] && last=$n
  for ((i = 1; i <= max_nodes; i++)); do
    [ -d "$dir/node$i" ] && [ "$i" -gt "$last" ] && last=$i
  done
  for ((i = 1; i <= last; i++)); do echo "$i"; done
}

# ---- Subcommands ----

cmd_start() {
  local n="" base=${RAFTKV_BASE_PORT:-7000}
  while [ $# -gt 0 ]; do
    case $1 in
      -n)
        [ $# -ge 2 ] || usage_error "start: -n needs a number of nodes"
        n=$2
        shift 2
        ;;
      *) usage_error "start: unexpected argument '$1'" ;;
    esac
  done
  if [ -n "$n" ]; then
    in_range "$n" 1 "$max_nodes" ||
      usage_error "start: -n must be between 1 and $max_nodes, not '$n'"
  fi
  in_range "$base" 1 $((65535 - peer_port_offset - max_nodes)) ||
    die "RAFTKV_BASE_PORT must be an integer between 1 and $((65535 - peer_port_offset - max_nodes)), not '$base'"
  need_redis_cli
  local extra_lines
  extra_flag_lines extra_lines
  lock_dir

  local i j pid recorded
  for i in $(known_nodes); do
    node_pid pid "$i"
    [ -z "$pid" ] || die "node $i of $dir is running (pid $pid); run 'scripts/cluster.sh stop' first"
  done
  # The members of a cluster are fixed (there is no membership change): a directory that holds
  # the data of an N-node cluster must not be started with another size.
  recorded_nodes recorded
  if [ -n "$recorded" ] && [ -n "$n" ] && [ "$n" != "$recorded" ]; then
    for ((i = 1; i <= max_nodes; i++)); do
      [ -d "$dir/node$i/raft" ] &&
        die "$dir holds the data of a $recorded-node cluster; start it with -n $recorded, or remove $dir for a new cluster of $n"
    done
  fi
  [ -n "$n" ] || n=${recorded:-3}
  ensure_server

  local members="" port peer
  for ((i = 1; i <= n; i++)); do
    port=$((base + i))
    peer=$((base + peer_port_offset + i))
    port_busy "$port" && die "port $port (node $i's client port) is in use; choose another RAFTKV_BASE_PORT"
    port_busy "$peer" && die "port $peer (node $i's peer port) is in use; choose another RAFTKV_BASE_PORT"
    members+="${members:+,}$i=127.0.0.1:$port:$peer"
  done
  warn_ephemeral "$base" "$n"
  local secret
  secret=$(cluster_secret)
  [[ $secret =~ ^[0-9a-f]{32}$ ]] || die "cannot make a cluster secret (got '$secret')"
  install -m 600 /dev/null "$info"  # it holds the cluster secret
  printf 'nodes %s\nbase-port %s\ncluster-secret %s\n' "$n" "$base" "$secret" >"$info"

  local d
  for ((i = 1; i <= n; i++)); do
    d=$dir/node$i
    mkdir -p "$d"
    install -m 600 /dev/null "$d/raftkv.conf"
    {
      echo "# Written by scripts/cluster.sh start; rewritten at every start."
      echo "node-id $i"
      echo "cluster $members"
      echo "port $((base + i))"
      echo "bind 127.0.0.1"
      echo "dir $(conf_quote "$d")"
      echo "logfile $(conf_quote "$d/server.log")"
      echo "enable-debug-command local"
      echo "cluster-secret $secret"
      if [ -n "$extra_lines" ]; then
        echo "# From RAFTKV_EXTRA_FLAGS at start."
        printf '%s' "$extra_lines"
      fi
    } >"$d/raftkv.conf"
  done

  local pids=()
  for ((i = 1; i <= n; i++)); do
    launch_node "$i"
    pids[i]=$launched_pid
  done
  for ((i = 1; i <= n; i++)); do
    if ! wait_ready "$i" "${pids[i]}"; then
      # Leave nothing half-started behind.
      for ((j = 1; j <= n; j++)); do kill -KILL "${pids[j]}" 2>/dev/null || true; done
      for ((j = 1; j <= n; j++)); do
        wait_gone "${pids[j]}" 5 || true
        rm -f "$dir/node$j/server.pid"
      done
      die "start failed; every node of this start was killed"
    fi
  done
  for ((i = 1; i <= n; i++)); do
    echo "node=$i pid=${pids[i]} client=127.0.0.1:$((base + i)) peer=127.0.0.1:$((base + peer_port_offset + i)) dir=$dir/node$i"
  done
}

cmd_stop() {
  [ $# -eq 0 ] || usage_error "stop takes no arguments"
  if [ ! -d "$dir" ]; then
    echo "cluster.sh: no cluster in $dir; nothing to stop"
    return 0
  fi
  lock_dir
  local i pid ids=() pids=()
  for i in $(known_nodes); do
    node_pid pid "$i"
    if [ -n "$pid" ]; then
      ids+=("$i")
      pids+=("$pid")
      kill -TERM "$pid" 2>/dev/null || true
      kill -CONT "$pid" 2>/dev/null || true  # a paused node handles SIGTERM once it runs
    fi
  done
  # Every node got SIGTERM at once; each gets what is left of one shared timeout.
  local deadline=$((SECONDS + stop_timeout_s)) k left
  for k in "${!ids[@]}"; do
    left=$((deadline - SECONDS))
    [ "$left" -gt 0 ] || left=0
    stop_pid "${pids[k]}" "${ids[k]}" "$left"
  done
  for i in $(known_nodes); do rm -f "$dir/node$i/server.pid"; done
  [ ${#ids[@]} -gt 0 ] || echo "cluster.sh: no node of $dir is running"
}

cmd_status() {
  [ $# -eq 0 ] || usage_error "status takes no arguments"
  need_redis_cli
  local n i pid
  cluster_size n
  tmp=$(mktemp -d)
  ask_info "$tmp" "$n"
  wait || true
  local state role term
  for ((i = 1; i <= n; i++)); do
    node_pid pid "$i"
    role=- term=-
    if [ -z "$pid" ]; then
      state=stopped
      pid=-
    elif is_paused "$pid"; then
      state=paused
    else
      state=running
      info_field role "$tmp/$i" raft_role
      info_field term "$tmp/$i" raft_term
      [ -n "$role" ] || role=-
      [ -n "$term" ] || term=-
    fi
    echo "node=$i pid=$pid state=$state role=$role term=$term"
  done
  rm -rf "$tmp"
  tmp=""
}

cmd_leader() {
  [ $# -eq 0 ] || usage_error "leader takes no arguments"
  need_redis_cli
  local n i
  cluster_size n
  tmp=$(mktemp -d)
  # Paused nodes are skipped (they would not answer); the others are asked in parallel, each
  # with a 1 s limit, so this never takes much more than a second.
  ask_info "$tmp" "$n"
  wait || true
  local votes=() id
  for ((i = 1; i <= n; i++)); do
    info_field id "$tmp/$i" raft_leader_id
    in_range "$id" 1 "$n" || continue  # 0: no leader known
    votes[id]=$((${votes[id]:-0} + 1))
  done
  rm -rf "$tmp"
  tmp=""
  for id in "${!votes[@]}"; do
    if [ "${votes[id]}" -gt $((n / 2)) ]; then
      echo "$id"
      return 0
    fi
  done
  echo "cluster.sh: no leader that a majority of the $n nodes agrees on" >&2
  return 1
}

# Sets $1 to the pid of node $2; fails when it is not running.
running_pid() {
  node_pid "$1" "$2"
  [ -n "${!1}" ] || die "node $2 is not running"
}

cmd_kill() {
  [ $# -eq 1 ] || usage_error "usage: kill <node id>"
  check_node_id "$1"
  lock_dir
  local pid
  running_pid pid "$1"
  kill -KILL "$pid" 2>/dev/null || true
  wait_gone "$pid" 5 || die "node $1 (pid $pid) survives SIGKILL"
  rm -f "$dir/node$1/server.pid"
  echo "node=$1 killed (pid $pid)"
}

cmd_restart() {
  [ $# -eq 1 ] || usage_error "usage: restart <node id>"
  check_node_id "$1"
  need_redis_cli
  lock_dir
  local id=$1 pid d
  d=$dir/node$id
  [ -f "$d/raftkv.conf" ] || die "node $id has no config ($d/raftkv.conf); run 'scripts/cluster.sh start'"
  ensure_server
  node_pid pid "$id"
  [ -z "$pid" ] || stop_pid "$pid" "$id" "$stop_timeout_s"
  rm -f "$d/server.pid"
  local port
  client_port port "$id"
  # A process killed while one of its threads is inside a system call (a long fsync, say)
  # shows as gone before the kernel has closed its sockets: give the port a moment.
  local free_by=$((SECONDS + 5))
  while port_busy "$port"; do
    [ "$SECONDS" -lt "$free_by" ] || die "port $port (node $id's client port) is in use by another process"
    sleep 0.1
  done
  launch_node "$id"
  pid=$launched_pid
  if ! wait_ready "$id" "$pid"; then
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 5 || true
    rm -f "$d/server.pid"
    die "restart of node $id failed"
  fi
  echo "node=$id pid=$pid restarted"
}

cmd_pause() {
  [ $# -eq 1 ] || usage_error "usage: pause <node id>"
  check_node_id "$1"
  lock_dir
  local pid deadline=$((SECONDS + 5))
  running_pid pid "$1"
  if is_paused "$pid"; then
    echo "node=$1 pid=$pid already paused"
    return 0
  fi
  kill -STOP "$pid"
  until is_paused "$pid"; do
    [ "$SECONDS" -lt "$deadline" ] || die "node $1 (pid $pid) did not stop on SIGSTOP"
    sleep 0.05
  done
  echo "node=$1 pid=$pid paused"
}

cmd_resume() {
  [ $# -eq 1 ] || usage_error "usage: resume <node id>"
  check_node_id "$1"
  lock_dir
  local pid deadline=$((SECONDS + 5))
  running_pid pid "$1"
  if ! is_paused "$pid"; then
    echo "node=$1 pid=$pid is not paused"
    return 0
  fi
  kill -CONT "$pid"
  while is_paused "$pid"; do
    [ "$SECONDS" -lt "$deadline" ] || die "node $1 (pid $pid) did not continue on SIGCONT"
    sleep 0.05
  done
  echo "node=$1 pid=$pid resumed"
}

# ---- Network faults (RAFT.FAULT) ----

readonly unreliable_drop_percent=10
readonly unreliable_max_delay_ms=26

# Sends `RAFT.FAULT $2...` to node $1 when it runs and is not paused (else warns and skips it).
# Counts a reply other than OK in fault_failures, with a message.
fault_failures=0
fault_node() {
  local id=$1 pid reply
  node_pid pid "$id"
  if [ -z "$pid" ]; then
    echo "cluster.sh: warning: node $id is not running; skipped (a node starts healed)" >&2
    return 0
  fi
  if is_paused "$pid"; then
    echo "cluster.sh: warning: node $id is paused; skipped (it keeps the faults it had)" >&2
    return 0
  fi
  reply=$(cli "$id" RAFT.FAULT "${@:2}" || true)
  if [ "$reply" != OK ]; then
    echo "cluster.sh: node $id: RAFT.FAULT ${*:2}: ${reply:-no reply}" >&2
    fault_failures=$((fault_failures + 1))
  fi
}

# Exits 1 when a RAFT.FAULT failed; otherwise prints $1.
fault_done() {
  [ "$fault_failures" -eq 0 ] || die "$fault_failures node(s) did not take the fault"
  echo "$1"
}

cmd_isolate() {
  [ $# -eq 1 ] || usage_error "usage: isolate <node id>"
  check_node_id "$1"
  need_redis_cli
  local n i others=()
  cluster_size n
  [ "$n" -ge 2 ] || die "a cluster of one node has nobody to isolate it from"
  lock_dir
  for ((i = 1; i <= n; i++)); do
    [ "$i" -eq "$1" ] || others+=("$i")
  done
  fault_node "$1" BLOCK "${others[@]}"
  for i in "${others[@]}"; do fault_node "$i" BLOCK "$1"; done
  fault_done "node=$1 isolated"
}

cmd_partition() {
  [ $# -eq 1 ] || usage_error "usage: partition <ids>/<ids>[/<ids>...], e.g. 1,2/3,4,5"
  local spec=$1 n i g id
  cluster_size n
  [[ $spec =~ ^[0-9]+(,[0-9]+)*(/[0-9]+(,[0-9]+)*)+$ ]] ||
    usage_error "partition: '$spec' is not groups of node ids like 1,2/3,4,5 (at least two groups)"
  local groups=() group_of=()
  IFS=/ read -r -a groups <<<"$spec"
  for g in "${!groups[@]}"; do
    local ids=()
    IFS=, read -r -a ids <<<"${groups[g]}"
    for id in "${ids[@]}"; do
      in_range "$id" 1 "$n" || die "bad node id '$id': the cluster in $dir has nodes 1..$n"
      [ -z "${group_of[id]:-}" ] || die "partition: node $id is listed twice"
      group_of[id]=$g
    done
  done
  for ((i = 1; i <= n; i++)); do
    [ -n "${group_of[i]:-}" ] || die "partition: node $i is in no group (list every node 1..$n once)"
  done
  need_redis_cli
  lock_dir
  # Each node blocks the other groups first, then unblocks its own: a link that stays cut is
  # never open in between, and an earlier isolate or partition is replaced.
  local j blocked=() same=()
  for ((i = 1; i <= n; i++)); do
    blocked=() same=()
    for ((j = 1; j <= n; j++)); do
      [ "$j" -ne "$i" ] || continue
      if [ "${group_of[j]}" -eq "${group_of[i]}" ]; then
        same+=("$j")
      else
        blocked+=("$j")
      fi
    done
    fault_node "$i" BLOCK "${blocked[@]}"
    [ ${#same[@]} -eq 0 ] || fault_node "$i" UNBLOCK "${same[@]}"
  done
  fault_done "partitioned: $spec"
}

cmd_unreliable() {
  if [ $# -ne 1 ] || { [ "$1" != on ] && [ "$1" != off ]; }; then
    usage_error "usage: unreliable on|off"
  fi
  need_redis_cli
  local n i
  cluster_size n
  lock_dir
  for ((i = 1; i <= n; i++)); do
    if [ "$1" = on ]; then
      fault_node "$i" UNRELIABLE "$unreliable_drop_percent" "$unreliable_max_delay_ms"
    else
      fault_node "$i" RELIABLE
    fi
  done
  fault_done "unreliable $1"
}

cmd_heal() {
  [ $# -eq 0 ] || usage_error "heal takes no arguments"
  need_redis_cli
  local n i
  cluster_size n
  lock_dir
  for ((i = 1; i <= n; i++)); do fault_node "$i" HEAL; done
  fault_done "healed"
}

[ $# -gt 0 ] || {
  usage >&2
  exit 2
}
command=$1
shift
case $command in
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  status) cmd_status "$@" ;;
  leader) cmd_leader "$@" ;;
  kill) cmd_kill "$@" ;;
  restart) cmd_restart "$@" ;;
  pause) cmd_pause "$@" ;;
  resume) cmd_resume "$@" ;;
  isolate) cmd_isolate "$@" ;;
  partition) cmd_partition "$@" ;;
  unreliable) cmd_unreliable "$@" ;;
  heal) cmd_heal "$@" ;;
  help | -h | --help) usage ;;
  *) usage_error "unknown command '$command'" ;;
esac
