#!/usr/bin/env bash
# Benchmarks raftkv side by side with the system a user would pick instead, a single
# redis-server with appendfsync always (and, with --etcd, a 3-member etcd cluster); measures
# failover under a write load; draws the plots and the results of docs/benchmarks.md from the
# saved data.
#
#   scripts/bench.sh                      throughput: redis-benchmark SET and GET, with and
#                                         without -P 16, 3 repetitions (about 3-5 minutes)
#   scripts/bench.sh --etcd               the same, and a 3-member etcd cluster measured in the
#                                         same repetitions: wrk over etcd's JSON gateway
#                                         (scripts/bench-etcd.lua), SET and GET, no -P 16
#   scripts/bench.sh --failover           kill -9 the leader 20 times under a write load; the
#                                         time from each kill to the first acknowledged write
#   scripts/bench.sh --profile            what a request costs each process: CPU time and
#                                         syscalls, fsyncs, context switches (perf stat)
#   scripts/bench.sh --report             plots (docs/bench/*.svg) and the results part of
#                                         docs/benchmarks.md from docs/bench/*.csv
#   scripts/bench.sh --save ...           also copy the results into docs/bench/ for --report
#
# Each measuring mode starts its own fresh 3-node cluster (scripts/cluster.sh, base port 7600)
# in a run directory (with --etcd also a fresh etcd cluster, client ports 23791-23793), and
# stops every process it started, by pid, on exit.
# Run `scripts/bench.sh --help` for the options and exit statuses; docs/benchmarks.md has the
# method and the latest results.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cluster=$root/scripts/cluster.sh
build=${RAFTKV_BUILD:-build}
[[ $build == /* ]] || build=$root/$build
export RAFTKV_BUILD=$build
base=${RAFTKV_BASE_PORT:-7600}
export RAFTKV_BASE_PORT=$base
redis_port=${BENCH_REDIS_PORT:-17390}
etcd_base=${BENCH_ETCD_PORT:-23790}
etcd_seconds=${BENCH_ETCD_SECONDS:-10}
bench_lock=${BENCH_LOCK:-/tmp/bench.lock}
docs_bench=$root/docs/bench
docs_md=$root/docs/benchmarks.md

# The load of every throughput run (the issue's, and the reviewer's side-by-side script's).
readonly requests=100000 clients=50 value_bytes=64 keyspace=100000
readonly pipelines="1 16"
readonly tests="set get"

readonly leader_timeout_s=30       # for a leader after a start or a restart
readonly converge_timeout_s=60     # for every node to reach the leader's applied index
readonly cluster_cmd_timeout_s=60  # any one cluster.sh command
readonly bench_timeout_s=300       # one redis-benchmark run
readonly lock_wait_s=900           # for another benchmark holding the lock
readonly failover_give_up_s=30     # a kill with no acknowledged write by then counts as lost
readonly probe_timeout_ms=100      # the probe's socket timeout; it reconnects after one
readonly load_clients=10           # the steady write load during --failover
readonly fsync_probe_s=2           # the disk's fsync rate, measured before the runs
readonly etcd_start_timeout_s=30   # for the etcd cluster to be healthy and have a leader
readonly etcd_preload_timeout_s=120 # for the preload of every key into etcd
readonly etcd_preload_conns=8      # the preload's concurrent transactions
readonly wrk_grace_s=60            # a wrk run's limit beyond its duration

usage() {
  cat <<'EOF'
usage: scripts/bench.sh [--etcd] [--reps N] [--save] [--dir DIR] [--keep]
       scripts/bench.sh --failover [--kills N] [--save] [--dir DIR] [--keep]
       scripts/bench.sh --profile [--save] [--dir DIR] [--keep]
       scripts/bench.sh --report

Throughput (the default): a fresh 3-node raftkv cluster (scripts/cluster.sh, the defaults a
user gets: fsync on, election timeout 300 ms) and a single redis-server 7 with AOF on,
appendfsync always, no RDB saves, both on 127.0.0.1. redis-benchmark runs against each the
same way: -t set and -t get, -n 100000 -c 50 -d 64 -r 100000, without and with -P 16. Per
repetition, every (test, pipeline) is run once on each of: raftkv's leader, redis-server,
raftkv through a follower (which forwards to the leader); the order of the three rotates
from one repetition to the next, so a slow spell of the shared machine does not fall on one
system only. The table shows, per system x test x pipeline, the medians over the repetitions
of requests/s, p50 and p99 (ms), and the ratio to redis-server's median; the issue's targets
beside raftkv's leader rows. The raft term on the leader is shown before and after: a change
means an election happened during the runs.

--etcd: the throughput runs with a fourth system in the same repetitions and the same
table: a fresh 3-member etcd 3.4 cluster (Debian's etcd-server; etcd's defaults but for the
addresses, data directories and logging: heartbeat 100 ms, election timeout 1000 ms, every
write synced), on 127.0.0.1, its data in the run directory. Before the runs every key
key:000000000000 .. key:000000099999 is written once (transactions of 100 puts), so that every
GET finds its key. The client is wrk over etcd's v3 JSON gateway (HTTP/1.1) with the script
scripts/bench-etcd.lua, aimed at the leader: 1 thread, 50 connections, 64-byte values,
random keys among 100000 named like redis-benchmark's; SET is POST /v3/kv/put, GET is POST
/v3/kv/range, a linearizable read (ReadIndex, etcd's default). wrk runs for a time
(BENCH_ETCD_SECONDS, default 10 s) instead of a number of requests. wrk sends one request at
a time per connection, so etcd has no -P 16 rows (the table says n/a). The script counts
the replies that are not 200 and the GETs that miss; the summary warns when there are any.
etcd's rows are named etcd; its raft term is shown before and after, like raftkv's.

--failover: a fresh cluster; N times (default 20): a write load (redis-benchmark SET, 10
clients) on one follower and a probe (one connection, one SET at a time, 100 ms socket
timeout, reconnect on error) on the other; kill -9 the leader; the time from the kill to the
probe's first acknowledged write sent after it. Then the killed node is restarted and the
next round waits for an agreed leader and every node caught up. Ends with the line
  failover: kills=N median_ms=... p99_ms=... max_ms=... lost=...
(p99 is nearest-rank; lost counts kills with no acknowledged write within 30 s).

--profile: a fresh cluster and redis-server; each test (SET, GET, without and with -P 16) is
run once on raftkv's leader and once on redis-server while `perf stat` counts, on every
process, its CPU time (task-clock), syscalls (and among them fdatasync + fsync, write, read,
epoll_ctl, futex) and context switches, and /proc/PID/io the bytes it had written to the
disk; the table shows each per request, per process, and for raftkv summed over its three
nodes. Each run waits first until the processes are idle (LevelDB compactions of the last). Needs perf (Debian: linux-perf) allowed to count
syscall tracepoints (root, or kernel.perf_event_paranoid <= -1).

--report: from docs/bench/latest.csv and docs/bench/failover.csv (written by --save), draws
docs/bench/throughput.svg, p99.svg and failover.svg with gnuplot, and rewrites the parts of
docs/benchmarks.md between the marker comments <!-- bench:NAME --> and <!-- /bench:NAME -->
(machine, table, failover, and profile from docs/bench/profile.csv).

Options:
  --reps N      repetitions of the throughput runs (default 3; 1..20)
  --failover    the failover measurement instead of throughput
  --profile     the per-request profile instead of throughput
  --kills N     kills of the failover measurement (default 20; 1..200)
  --save        also copy the results into docs/bench/ (latest.csv, failover.csv or
                profile.csv); without
                it they stay in the run directory only
  --report      plots and docs/benchmarks.md from docs/bench/; starts nothing
  --etcd        add a 3-member etcd cluster to the throughput runs (see above); needs
                etcd, etcdctl and wrk (scripts/setup.sh installs etcd-server, etcd-client
                and wrk)
  --dir DIR     the run directory (default: ${TMPDIR:-/tmp}/raftkv-bench-<date>); it must be
                new, empty, or one an earlier bench run made. It always keeps the results
                (results.csv, failover.csv or profile.csv, each redis-benchmark's
                and wrk's output, the servers' logs, bench.log)
  --keep        also keep the nodes', redis-server's and etcd's data directories
  -h, --help    this text

Exit status: 0 when the measurement completed (whatever the figures); 2 on bad usage
(including --etcd with --failover, --profile or --report, and a bad BENCH_ETCD_PORT or
BENCH_ETCD_SECONDS); 3 when it could not complete (no build, a cluster, redis-server or etcd
cluster that does not start, no leader, a missing program, an etcd preload that fails,
another benchmark holding the lock too long).

Environment:
  RAFTKV_BASE_PORT   node i serves clients on 127.0.0.1:(B+i), peers on B+10000+i
                     (default 7600)
  BENCH_REDIS_PORT   redis-server's port (default 17390)
  BENCH_ETCD_PORT    --etcd: member i serves clients on 127.0.0.1:(E+i) and peers on
                     127.0.0.1:(E+10+i) (default 23790: clients 23791-23793, peers
                     23801-23803)
  BENCH_ETCD_SECONDS --etcd: the length of each wrk run in seconds (default 10; 1..60)
  RAFTKV_BUILD       build directory (default: build); raftkv-server is built or brought up
                     to date there first
  RAFTKV_EXTRA_FLAGS more server flags for every node (scripts/cluster.sh); recorded in the
                     results, since the figures are no longer the defaults'
  BENCH_LOCK         lock file held while measuring, shared with the other benchmark scripts
                     of this machine (default /tmp/bench.lock; "none": no lock)
EOF
}

usage_error() {
  echo "bench.sh: $*" >&2
  echo "run 'scripts/bench.sh --help' for usage" >&2
  exit 2
}

# Whether $1 is a decimal integer between $2 and $3.
in_range() {
  [[ $1 =~ ^[1-9][0-9]{0,5}$ ]] && [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]
}

# ---- Arguments ----

mode=throughput reps=3 kills=20 save=0 keep=0 run="" etcd=0
while [ $# -gt 0 ]; do
  case $1 in
    --failover) mode=failover ;;
    --profile) mode=profile ;;
    --report) mode=report ;;
    --etcd) etcd=1 ;;
    --save) save=1 ;;
    --keep) keep=1 ;;
    --reps | --kills | --dir)
      [ $# -ge 2 ] || usage_error "$1 needs a value"
      case $1 in
        --reps) reps=$2 ;;
        --kills) kills=$2 ;;
        --dir) run=$2 ;;
      esac
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
in_range "$reps" 1 20 || usage_error "--reps must be between 1 and 20, not '$reps'"
in_range "$kills" 1 200 || usage_error "--kills must be between 1 and 200, not '$kills'"
if [ "$etcd" = 1 ]; then
  [ "$mode" = throughput ] ||
    usage_error "--etcd adds etcd to the throughput runs; it does not go with --$mode"
  # Member 3's peer port is the highest: base + 13.
  in_range "$etcd_base" 1024 65500 ||
    usage_error "BENCH_ETCD_PORT must be between 1024 and 65500, not '$etcd_base'"
  in_range "$etcd_seconds" 1 60 ||
    usage_error "BENCH_ETCD_SECONDS must be between 1 and 60, not '$etcd_seconds'"
fi

# ---- The Python helpers: the probe, the fsync rate, the summaries and the report ----

# One program with a subcommand per job, run with `python3 -c`. python3 is installed by
# scripts/setup.sh. Results files are CSV with a header row; lines starting with '#' before
# the header are `# key=value` facts about the run (machine, terms, flags).
# shellcheck disable=SC2016  # Python source, not shell
read -r -d '' py_code <<'PYTHON' || true
import base64, csv, http.client, json, math, os, re, signal, socket, statistics, sys, threading, time

def facts(path):
    out = {}
    with open(path) as f:
        for line in f:
            if line.startswith('# ') and '=' in line:
                k, v = line[2:].rstrip('\n').split('=', 1)
                out[k.strip()] = v.strip()
    return out

def rows(path):
    with open(path) as f:
        return list(csv.DictReader(l for l in f if l.strip() and not l.startswith('#')))

def probe(host, port, out, kill_file, give_up_s, timeout_ms):
    """SETs in a loop over one connection, one at a time; each acknowledged write appends
    '<sent_ns> <acked_ns>' (CLOCK_REALTIME) to out. A reply later than timeout_ms, or any
    socket error, closes the connection and opens a new one (a late reply is never taken
    for the next request's); an error reply is retried after 1 ms. Once kill_file holds the
    time of the kill (ns), exits 0 at the first acknowledged write sent after it, or 1
    give_up_s after the kill; after 600 s in any case. Its counts go to stderr at exit."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    count = dict(acked=0, error_replies=0, timeouts=0, connection_errors=0)
    deadline = time.monotonic() + 600
    sock, n, kill_ns = None, 0, None
    try:
        with open(out, 'w') as f:
            while time.monotonic() < deadline:
                if kill_ns is None and os.path.exists(kill_file):
                    with open(kill_file) as k:
                        kill_ns = int(k.read().strip())
                    deadline = min(deadline, kill_ns / 1e9 - time.time() + time.monotonic() + give_up_s)
                try:
                    if sock is None:
                        sock = socket.create_connection((host, port), timeout=timeout_ms / 1000)
                        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    n += 1
                    val = str(n).encode()
                    req = b'*3\r\n$3\r\nSET\r\n$14\r\nfailover:probe\r\n$%d\r\n%s\r\n' % (len(val), val)
                    sent = time.time_ns()
                    sock.sendall(req)
                    reply = b''
                    while not reply.endswith(b'\r\n'):
                        chunk = sock.recv(512)
                        if not chunk:
                            raise ConnectionError('closed')
                        reply += chunk
                    acked = time.time_ns()
                    if reply.startswith(b'+OK'):
                        count['acked'] += 1
                        f.write('%d %d\n' % (sent, acked))
                        f.flush()
                        if kill_ns is not None and sent > kill_ns:
                            return 0
                    else:
                        count['error_replies'] += 1
                        time.sleep(0.001)
                except OSError as e:
                    count['timeouts' if isinstance(e, socket.timeout) else 'connection_errors'] += 1
                    if sock is not None:
                        sock.close()
                    sock = None
                    time.sleep(0.005)
        return 1
    finally:
        print('probe: ' + ' '.join('%s=%d' % kv for kv in count.items()), file=sys.stderr)

def first_ack_after(path, kill_ns):
    """Prints the ack time of the first write sent after kill_ns, or nothing."""
    try:
        with open(path) as f:
            for line in f:
                p = line.split()
                if len(p) == 2 and int(p[0]) > kill_ns:
                    print(p[1])
                    return
    except FileNotFoundError:
        pass

def fsync_rate(directory, seconds):
    """Appends 64 bytes and fsyncs, in a loop, for `seconds`; prints fsyncs per second."""
    path = os.path.join(directory, 'fsync-probe.tmp')
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        n, t0 = 0, time.monotonic()
        while time.monotonic() - t0 < seconds:
            os.write(fd, b'x' * 64)
            os.fsync(fd)
            n += 1
        print('%.0f' % (n / (time.monotonic() - t0)))
    finally:
        os.close(fd)
        os.unlink(path)

def etcd_preload(url, keys, value_bytes, conns, deadline_s):
    """Writes every key key:%012d below `keys` once into etcd through its v3 JSON gateway at
    url (http://host:port), in transactions of 100 puts sent over `conns` connections, each
    retried (at most 3 times) until etcd answers 200. Then counts the keys with a range
    request (count_only) and prints one line; exits 1 unless all are there."""
    host, port = url.split('//', 1)[1].rsplit(':', 1)
    b64 = lambda b: base64.b64encode(b).decode()
    value = b64(b'x' * value_bytes)
    batches = list(range(0, keys, 100))
    lock, count = threading.Lock(), dict(txns=0, retries=0, failed=0)
    t0 = time.monotonic()
    deadline = t0 + deadline_s

    def post(conn, path, body):
        conn.request('POST', path, json.dumps(body), {'Content-Type': 'application/json'})
        r = conn.getresponse()
        data = r.read()
        return r.status, json.loads(data) if data else {}

    def worker():
        conn = None
        while time.monotonic() < deadline:
            with lock:
                if not batches:
                    break
                first = batches.pop()
            puts = [{'requestPut': {'key': b64(b'key:%012d' % k), 'value': value}}
                    for k in range(first, min(first + 100, keys))]
            for attempt in range(3):
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection(host, int(port), timeout=10)
                    status, reply = post(conn, '/v3/kv/txn', {'success': puts})
                    if status == 200 and reply.get('succeeded'):
                        with lock:
                            count['txns'] += 1
                        break
                except (OSError, http.client.HTTPException, ValueError):
                    if conn is not None:
                        conn.close()
                    conn = None
                with lock:
                    count['retries'] += 1
                time.sleep(0.1)
            else:
                with lock:
                    count['failed'] += 1
        if conn is not None:
            conn.close()

    workers = [threading.Thread(target=worker, daemon=True) for _ in range(conns)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(max(0.0, deadline - time.monotonic()) + 15)
    found = -1
    try:
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        status, reply = post(conn, '/v3/kv/range', {'key': b64(b'key:'), 'range_end': b64(b'key;'),
                                                    'count_only': True})
        if status == 200:
            found = int(reply.get('count', 0))
    except (OSError, http.client.HTTPException, ValueError):
        pass
    print('preloaded=%d keys=%d txns=%d retries=%d failed=%d unsent=%d secs=%.1f' % (
        found, keys, count['txns'], count['retries'], count['failed'], len(batches),
        time.monotonic() - t0))
    return 0 if found == keys else 1

SYSTEMS = ['redis-always', 'raftkv-leader', 'raftkv-follower', 'etcd']
LABELS = {'redis-always': 'redis-server (appendfsync always)', 'raftkv-leader': 'raftkv at the leader',
          'raftkv-follower': 'raftkv through a follower', 'etcd': 'etcd at the leader (wrk, JSON gateway)'}
COLORS = {'redis-always': '#b03a2e', 'raftkv-leader': '#1f618d', 'raftkv-follower': '#7fb3d5',
          'etcd': '#7d8c2e'}
TESTS = [('SET', '1'), ('SET', '16'), ('GET', '1'), ('GET', '16')]
# The issue's targets for raftkv against redis-server appendfsync always, measured at the
# leader: requests/s ratio, and SET's p99 at most twice redis-server's.
RPS_TARGET = {('SET', '1'): 1.0, ('SET', '16'): 0.5, ('GET', '1'): 0.8, ('GET', '16'): 0.5}
P99_TARGET = {('SET', '1'): 2.0}

def summary(path):
    """Per system x test x pipeline, the medians over the repetitions. etcd, measured
    without pipelining only (wrk over HTTP/1.1 has no equivalent of -P 16), gets an entry
    with na=True where a row of it would be, when the file has etcd rows at all."""
    groups = {}
    for r in rows(path):
        groups.setdefault((r['system'], r['test'], r['pipeline']), []).append(r)
    med = lambda g, k: statistics.median(float(r[k]) for r in g)
    has_etcd = any(k[0] == 'etcd' for k in groups)
    out = []
    for test, p in TESTS:
        base = groups.get(('redis-always', test, p))
        for s in SYSTEMS:
            g = groups.get((s, test, p))
            if not g:
                if s == 'etcd' and has_etcd and p != '1':
                    out.append(dict(system=s, test=test, pipeline=p, reps=0, rps=None, p50=None,
                                    p99=None, ratio=None, p99_ratio=None, target=None,
                                    p99_target=None, na=True))
                continue
            e = dict(system=s, test=test, pipeline=p, reps=len(g), rps=med(g, 'rps'),
                     p50=med(g, 'p50_ms'), p99=med(g, 'p99_ms'), ratio=None, p99_ratio=None,
                     target=None, p99_target=None)
            if base and s != 'redis-always':
                e['ratio'] = e['rps'] / med(base, 'rps')
                bp99 = med(base, 'p99_ms')
                e['p99_ratio'] = e['p99'] / bp99 if bp99 > 0 else None
                if s == 'raftkv-leader':
                    e['target'] = RPS_TARGET.get((test, p))
                    e['p99_target'] = P99_TARGET.get((test, p))
            out.append(e)
    return out

def verdict(value, target, at_least):
    if value is None or target is None:
        return ''
    ok = value >= target if at_least else value <= target
    return 'met' if ok else 'missed'

def fmt_ratio(x):
    return '-' if x is None else '%.2fx' % x

def table(path, markdown):
    es = summary(path)
    head = ['system', 'test', 'P', 'reps', 'requests/s', 'p50 ms', 'p99 ms', 'vs redis',
            'target', 'p99 vs redis', 'p99 target']
    body = []
    for e in es:
        if e.get('na'):
            body.append([e['system'], e['test'], e['pipeline'], '-', 'n/a', 'n/a', 'n/a', 'n/a', '',
                         'n/a', ''])
            continue
        t = '' if e['target'] is None else '>= %.1fx %s' % (e['target'], verdict(e['ratio'], e['target'], True))
        pt = '' if e['p99_target'] is None else '<= %.1fx %s' % (e['p99_target'], verdict(e['p99_ratio'], e['p99_target'], False))
        body.append([e['system'], e['test'], e['pipeline'], str(e['reps']), '%.0f' % e['rps'],
                     '%.3f' % e['p50'], '%.3f' % e['p99'], fmt_ratio(e['ratio']), t,
                     fmt_ratio(e['p99_ratio']), pt])
    if markdown:
        print('| ' + ' | '.join(head) + ' |')
        print('|' + '|'.join('---:' if i >= 3 and i != 8 and i != 10 else '---' for i in range(len(head))) + '|')
        for b in body:
            print('| ' + ' | '.join(c if c else ' ' for c in b) + ' |')
        return
    w = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]
    for b in [head] + body:
        print('  '.join(c.ljust(w[i]) if i in (0, 1, 8, 10) else c.rjust(w[i]) for i, c in enumerate(b)).rstrip())

def plotted_systems(path):
    """The systems of SYSTEMS that the file has rows of, in that order."""
    present = {r['system'] for r in rows(path)}
    return [s for s in SYSTEMS if s in present]

def plot_data(path, field):
    """Tab-separated: label, then one column per system of the file (NaN where missing: no
    pipelined etcd runs)."""
    es = {(e['system'], e['test'], e['pipeline']): e for e in summary(path)}
    systems = plotted_systems(path)
    for test, p in TESTS:
        label = test + ('' if p == '1' else ' -P' + p)
        vals = [es.get((s, test, p), {}).get(field) for s in systems]
        print('"%s"\t' % label + '\t'.join('NaN' if v is None else '%g' % v for v in vals))

def plot_command(path, data):
    """gnuplot's plot command for plot_data's file `data`: one series per system. With etcd's
    (longer) label the key goes below the plot, where it covers no bar."""
    parts = []
    systems = plotted_systems(path)
    if 'etcd' in systems:
        print('set key below')
    for i, s in enumerate(systems):
        title = LABELS[s] + (', no -P16' if s == 'etcd' else '')
        parts.append('%s using %d%s title "%s" lc rgb "%s"' % (
            '"%s"' % data if i == 0 else '""', i + 2, ':xtic(1)' if i == 0 else '', title, COLORS[s]))
    print('plot ' + ', \\\n     '.join(parts))

def failover_times(path):
    """(all kills, the times in ms of those with an acknowledged write)."""
    rs = rows(path)
    return rs, [float(r['failover_ms']) for r in rs if r['failover_ms'] not in ('', 'lost')]

def nearest_rank(xs, q):
    xs = sorted(xs)
    return xs[max(0, math.ceil(q * len(xs)) - 1)]

def failover_line(path):
    rs, ms = failover_times(path)
    if not ms:
        print('failover: kills=%d median_ms=- p99_ms=- max_ms=- lost=%d' % (len(rs), len(rs)))
        return
    print('failover: kills=%d median_ms=%.0f p99_ms=%.0f max_ms=%.0f lost=%d' % (
        len(rs), statistics.median(ms), nearest_rank(ms, 0.99), max(ms), len(rs) - len(ms)))

def failover_markdown(path):
    rs, ms = failover_times(path)
    f = facts(path)
    print('```')
    failover_line(path)
    print('```')
    print()
    if ms:
        print('Targets: median <= 500 ms (%s), max <= 1000 ms (%s).' % (
            'met' if statistics.median(ms) <= 500 else 'missed', 'met' if max(ms) <= 1000 else 'missed'))
        print()
    print('Per kill, in order (ms): ' + ', '.join(r['failover_ms'] for r in rs) + '.')
    print()
    print('Measured %s, %s kills, election timeout %s ms (the default), write load of %s '
          'redis-benchmark clients on a follower.' % (f.get('date', '?'), len(rs),
          f.get('election_timeout_ms', '?'), f.get('load_clients', '?')))

def failover_plot_data(path):
    rs, _ = failover_times(path)
    for r in rs:
        print('%s\t%s' % (r['kill'], 'NaN' if r['failover_ms'] in ('', 'lost') else r['failover_ms']))

def machine_markdown(path):
    f = facts(path)
    keys = [('cpu', 'CPU'), ('nproc', 'cores (nproc)'), ('memory', 'memory'), ('kernel', 'kernel'),
            ('fsync_per_s', 'fsyncs/s of the disk (64-byte appends, %s s)' % f.get('fsync_probe_s', '?')),
            ('redis_version', 'redis-server and redis-benchmark'), ('etcd_version', 'etcd'),
            ('wrk_version', 'wrk'), ('commit', 'raftkv commit'),
            ('date', 'measured'), ('extra_flags', 'extra server flags')]
    print('| | |')
    print('|---|---|')
    for k, label in keys:
        if f.get(k):
            print('| %s | %s |' % (label, f[k]))

def load_range(path):
    loads = [float(r['loadavg1']) for r in rows(path) if r.get('loadavg1')]
    return '%.1f-%.1f' % (min(loads), max(loads)) if loads else '?'

def throughput_markdown(path):
    f = facts(path)
    table(path, True)
    print()
    print('The 1-minute load average of the machine before each run: %s (%s cores).' % (
        load_range(path), f.get('nproc', '?')))
    print()
    print('Medians of %s repetitions; the ratios divide medians. Raft term on the leader: %s '
          'before the runs, %s after%s.' % (f.get('reps', '?'), f.get('term_before', '?'),
          f.get('term_after', '?'), '' if f.get('term_before') == f.get('term_after')
          else ' (an election happened during the runs)'))
    if f.get('etcd_term_before'):
        print()
        print('etcd: %s s of wrk per run (%s), no pipelined runs (n/a: wrk sends one request at '
              'a time per connection). Raft term of etcd\'s leader: %s before the runs, %s '
              'after%s. %s' % (f.get('etcd_seconds', '?'), f.get('etcd_load', '?'),
              f.get('etcd_term_before', '?'), f.get('etcd_term_after', '?'),
              '' if f.get('etcd_term_before') == f.get('etcd_term_after')
              and f.get('etcd_leader') == f.get('etcd_leader_after')
              else ' (an election happened during the runs)', f.get('etcd_checks', '')))

def etcd_checks(path, runs):
    """One sentence on etcd's replies over all runs (the checks file bench.sh writes: rep,
    test, requests, ok, non200, sockerr, hits, misses; `runs` wrk runs were made): a result
    from every run, all 200, every GET a hit?"""
    rs = rows(path)
    n = lambda k, t=None: sum(int(r[k]) for r in rs if t is None or r['test'] == t)
    problems = []
    if len(rs) < runs:
        problems.append('no result from %d of its %d runs' % (runs - len(rs), runs))
    if n('non200'):
        problems.append('%d replies not 200' % n('non200'))
    if n('sockerr'):
        problems.append('%d socket errors or timeouts' % n('sockerr'))
    if n('misses', 'GET'):
        problems.append('%d GETs without their key' % n('misses', 'GET'))
    if problems:
        print('WARNING: etcd had ' + ', '.join(problems) + ' (%d requests in all)' % n('requests'))
    else:
        print('All %d of etcd\'s replies were 200 and all %d GETs found their key.' % (
            n('requests'), n('hits', 'GET')))

# The issue's figures from before this script (raftkv at the leader over redis-server
# appendfsync always), shown beside the targets and the latest measurement.
PREVIOUS = {('SET', '1'): '0.30x', ('SET', '16'): '0.12x', ('GET', '1'): '0.75x', ('GET', '16'): '0.28x'}

def targets_markdown(latest, fo):
    """One row per target of the issue: previous figure, target, latest measurement, met or
    missed. Either file may be '-' (not measured)."""
    es = {}
    if latest != '-' and os.path.exists(latest):
        es = {(e['test'], e['pipeline']): e for e in summary(latest) if e['system'] == 'raftkv-leader'}
    print('| what (raftkv at the leader) | before | target | latest | |')
    print('|---|---:|---:|---:|---|')
    for test, p in TESTS:
        e = es.get((test, p))
        name = '%s%s requests/s vs redis' % (test, '' if p == '1' else ' -P16')
        got = fmt_ratio(e['ratio']) if e else 'not measured'
        print('| %s | %s | >= %.1fx | %s | %s |' % (name, PREVIOUS[(test, p)], RPS_TARGET[(test, p)], got,
              verdict(e['ratio'], RPS_TARGET[(test, p)], True) if e else ''))
    e = es.get(('SET', '1'))
    print('| SET p99 vs redis | | <= 2.0x | %s | %s |' % (fmt_ratio(e['p99_ratio']) if e else 'not measured',
          verdict(e['p99_ratio'], 2.0, False) if e else ''))
    ms, n = [], 0
    if fo != '-' and os.path.exists(fo):
        rs, ms = failover_times(fo)
        n = len(rs)
    lost = n - len(ms)
    med = '%.0f ms' % statistics.median(ms) if ms else 'not measured'
    mx = ('%.0f ms' % max(ms) if ms else 'not measured') + (' (%d lost)' % lost if lost else '')
    print('| failover median, kill -9 to first write | | <= 500 ms | %s | %s |' % (
        med, ('met' if statistics.median(ms) <= 500 else 'missed') if ms else ''))
    print('| failover max | | <= 1000 ms | %s | %s |' % (
        mx, ('met' if max(ms) <= 1000 and not lost else 'missed') if ms else ''))

PROFILE_COLS = [('cpu_us', 'CPU µs', '%.1f'), ('syscalls', 'syscalls', '%.2f'),
                ('fsyncs', 'fsyncs', '%.3f'), ('disk_bytes', 'disk bytes', '%.0f'),
                ('writes', 'write', '%.2f'), ('reads', 'read', '%.2f'),
                ('epoll_ctls', 'epoll_ctl', '%.2f'), ('futexes', 'futex', '%.2f'),
                ('context_switches', 'ctx switches', '%.2f')]

def profile_table(path, markdown):
    """Per request, per process, and for raftkv the sum over its three nodes."""
    head = ['system', 'test', 'P', 'process', 'requests/s'] + [c[1] for c in PROFILE_COLS]
    body, groups = [], {}
    for r in rows(path):
        groups.setdefault((r['system'], r['test'], r['pipeline']), []).append(r)
    for (sysname, test, p), rs in groups.items():
        for r in rs:
            body.append([sysname, test, p, r['process'], '%.0f' % float(r['rps'])] +
                        [f % float(r[k]) for k, _, f in PROFILE_COLS])
        if len(rs) > 1:
            body.append([sysname, test, p, 'all nodes', '%.0f' % float(rs[0]['rps'])] +
                        [f % sum(float(r[k]) for r in rs) for k, _, f in PROFILE_COLS])
    if markdown:
        print('| ' + ' | '.join(head) + ' |')
        print('|' + '|'.join('---' if i < 4 else '---:' for i in range(len(head))) + '|')
        for b in body:
            print('| ' + ' | '.join(b) + ' |')
        return
    w = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]
    for b in [head] + body:
        print('  '.join(c.ljust(w[i]) if i < 4 else c.rjust(w[i]) for i, c in enumerate(b)).rstrip())

def replace_markers(md, name, content_file):
    with open(md) as f:
        text = f.read()
    with open(content_file) as f:
        content = f.read().rstrip('\n')
    begin, end = '<!-- bench:%s -->' % name, '<!-- /bench:%s -->' % name
    pat = re.compile(re.escape(begin) + '.*?' + re.escape(end), re.S)
    if not pat.search(text):
        sys.exit('%s has no %s ... %s' % (md, begin, end))
    text = pat.sub(lambda m: begin + '\n' + content + '\n' + end, text, count=1)
    with open(md + '.tmp', 'w') as f:
        f.write(text)
    os.replace(md + '.tmp', md)

cmd, args = sys.argv[1], sys.argv[2:]
if cmd == 'probe':
    sys.exit(probe(args[0], int(args[1]), args[2], args[3], float(args[4]), float(args[5])))
elif cmd == 'first-ack-after':
    first_ack_after(args[0], int(args[1]))
elif cmd == 'fsync-rate':
    fsync_rate(args[0], float(args[1]))
elif cmd == 'table':
    table(args[0], False)
    print('\n1-minute load average before each run: %s' % load_range(args[0]))
elif cmd == 'plot-data':
    plot_data(args[0], args[1])
elif cmd == 'plot-command':
    plot_command(args[0], args[1])
elif cmd == 'etcd-preload':
    sys.exit(etcd_preload(args[0], int(args[1]), int(args[2]), int(args[3]), float(args[4])))
elif cmd == 'etcd-checks':
    etcd_checks(args[0], int(args[1]))
elif cmd == 'profile-table':
    profile_table(args[0], False)
elif cmd == 'profile-markdown':
    profile_table(args[0], True)
elif cmd == 'failover-line':
    failover_line(args[0])
elif cmd == 'failover-plot-data':
    failover_plot_data(args[0])
elif cmd == 'markdown':
    {'machine': machine_markdown, 'table': throughput_markdown,
     'failover': failover_markdown}[args[0]](args[1])
elif cmd == 'targets':
    targets_markdown(args[0], args[1])
elif cmd == 'replace':
    replace_markers(args[0], args[1], args[2])
else:
    sys.exit('unknown helper ' + cmd)
PYTHON

py() { python3 -c "$py_code" "$@"; }

command -v python3 >/dev/null || { echo "bench.sh: python3 is missing (scripts/setup.sh installs it)" >&2; exit 3; }

# ---- --report: plots and docs/benchmarks.md from docs/bench/ ----

# Draws a clustered bar chart of field $3 (rps or p99) of results file $1, one bar per system
# of the file in each test's cluster, into $4 with title $5 and y label $6; $2 is a scratch
# directory.
bars() {
  py plot-data "$1" "$3" >"$2/$3.dat"
  gnuplot <<EOF
set terminal svg size 820,440 dynamic font "sans,12" background rgb "white"
set output "$4"
set title "$5"
set ylabel "$6"
set datafile separator "\t"
set datafile missing "NaN"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set xrange [-0.5:3.5]
set yrange [0:*]
set grid ytics
set key top left
$(py plot-command "$1" "$2/$3.dat")
EOF
}

report() {
  local latest=$docs_bench/latest.csv fo=$docs_bench/failover.csv tmp
  command -v gnuplot >/dev/null || { echo "bench.sh: gnuplot is missing (scripts/setup.sh installs gnuplot-nox)" >&2; exit 3; }
  [ -f "$docs_md" ] || { echo "bench.sh: $docs_md is missing" >&2; exit 3; }
  [ -f "$latest" ] || [ -f "$fo" ] || [ -f "$docs_bench/profile.csv" ] || { echo "bench.sh: no $latest, $fo nor $docs_bench/profile.csv: run scripts/bench.sh --save (--failover --save, --profile --save) first" >&2; exit 3; }
  tmp=$(mktemp -d)
  # shellcheck disable=SC2064  # expand now: tmp is local
  trap "rm -rf '$tmp'" EXIT
  if [ -f "$latest" ]; then
    local load="(redis-benchmark -n 100000 -c 50 -d 64 -r 100000)"
    # etcd's rows come from wrk with the same connections, value size and keys (a second
    # line of the title: "\n" is gnuplot's).
    if grep -q '^[0-9]*,etcd,' "$latest"; then
      load="\\n(redis-benchmark -n 100000 -c 50 -d 64 -r 100000; etcd: wrk -c 50, JSON gateway)"
    fi
    bars "$latest" "$tmp" rps "$docs_bench/throughput.svg" \
      "Throughput, median of the repetitions $load" "requests/s"
    bars "$latest" "$tmp" p99 "$docs_bench/p99.svg" "p99 latency, median of the repetitions" "ms"
    py markdown machine "$latest" >"$tmp/machine.md"
    py markdown table "$latest" >"$tmp/table.md"
    py replace "$docs_md" machine "$tmp/machine.md"
    py replace "$docs_md" table "$tmp/table.md"
    echo "bench.sh: docs/bench/throughput.svg, docs/bench/p99.svg and the table of docs/benchmarks.md from $latest"
  fi
  if [ -f "$docs_bench/profile.csv" ]; then
    py profile-markdown "$docs_bench/profile.csv" >"$tmp/profile.md"
    py replace "$docs_md" profile "$tmp/profile.md"
    echo "bench.sh: the profile table of docs/benchmarks.md from $docs_bench/profile.csv"
  fi
  py targets "$([ -f "$latest" ] && echo "$latest" || echo -)" "$([ -f "$fo" ] && echo "$fo" || echo -)" >"$tmp/targets.md"
  py replace "$docs_md" targets "$tmp/targets.md"
  if [ -f "$fo" ]; then
    py failover-plot-data "$fo" >"$tmp/failover.dat"
    gnuplot <<EOF
set terminal svg size 820,400 dynamic font "sans,12" background rgb "white"
set output "$docs_bench/failover.svg"
set title "kill -9 of the leader to the first acknowledged write through a follower"
set xlabel "kill"
set ylabel "ms"
set datafile separator "\t"
set style fill solid 0.85 border -1
set boxwidth 0.7
set xrange [0:$(($(wc -l <"$tmp/failover.dat") + 1))]
set yrange [0:*]
set grid ytics
set key below horizontal
plot "$tmp/failover.dat" using 1:2 with boxes title "time to the first write" lc rgb "#1f618d", \
     500 with lines dt 2 lc rgb "#b03a2e" title "target: median <= 500 ms", \
     1000 with lines dt 3 lc rgb "#6e2c00" title "target: max <= 1000 ms"
EOF
    py markdown failover "$fo" >"$tmp/failover.md"
    py replace "$docs_md" failover "$tmp/failover.md"
    echo "bench.sh: docs/bench/failover.svg and the failover part of docs/benchmarks.md from $fo"
  fi
}

if [ "$mode" = report ]; then
  report
  exit 0
fi

# ---- The run directory ----

readonly marker=.raftkv-bench # in every run directory this script makes
if [ -z "$run" ]; then
  run=${TMPDIR:-/tmp}/raftkv-bench-$(date '+%Y%m%d-%H%M%S')
fi
[[ $run == /* ]] || run=$(pwd)/$run
run=${run%/}
if [ -e "$run" ]; then
  [ -d "$run" ] || usage_error "--dir $run is not a directory"
  if [ ! -e "$run/$marker" ] && [ -n "$(ls -A "$run")" ]; then
    usage_error "--dir $run is not empty and no bench run made it; refusing to use it"
  fi
fi
mkdir -p "$run"
: >"$run/$marker"
log_file=$run/bench.log
: >"$log_file"
t_start=$SECONDS

now() { date -u '+%H:%M:%S'; }

# A progress line on stderr and in bench.log.
log() {
  echo "$(now) bench: $*" >>"$log_file"
  echo "$(now) bench: $*" >&2
}

fatal() {
  log "error: $*"
  exit 3
}

# ---- Cleaning up ----

bg_pids=()         # processes started in the background (redis-server, etcd, probe, load), by pid
cluster_dir=""     # the RAFTKV_DIR of the running cluster, stopped on exit

# Stops process $1: SIGTERM, SIGKILL after 10 s.
stop_pid() {
  local pid=$1 deadline=$((SECONDS + 10))
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.05; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# Stops background process $1 and forgets it.
stop_bg() {
  local p rest=()
  stop_pid "$1"
  for p in "${bg_pids[@]}"; do [ "$p" = "$1" ] || rest+=("$p"); done
  bg_pids=("${rest[@]}")
}

finished=0
# shellcheck disable=SC2317  # run by the EXIT trap
on_exit() {
  local rc=$? pid
  trap - EXIT INT TERM
  set +e
  for pid in "${bg_pids[@]}"; do stop_pid "$pid"; done
  if [ -n "$cluster_dir" ]; then
    RAFTKV_DIR=$cluster_dir timeout "$cluster_cmd_timeout_s" "$cluster" stop >>"$log_file" 2>&1 ||
      echo "bench.sh: warning: 'cluster.sh stop' failed for $cluster_dir" >&2
  fi
  # The servers' logs stay in the run directory (etcd writes its own there); their data
  # only with --keep.
  local d
  for d in "$run"/cluster/node*; do
    [ -f "$d/server.log" ] && cp "$d/server.log" "$run/server-${d##*/}.log"
  done
  [ -f "$run/redis-data/redis.log" ] && cp "$run/redis-data/redis.log" "$run/redis-server.log"
  if [ "$keep" = 0 ]; then
    rm -rf "$run/cluster" "$run/redis-data" "$run/etcd-data"
  fi
  [ "$finished" = 1 ] || echo "run directory: $run" >&2
  [ "$rc" -ne 0 ] || [ "$finished" = 1 ] || rc=3
  exit "$rc"
}
trap on_exit EXIT
trap 'log "interrupted"; exit 130' INT TERM

# ---- Programs and the lock ----

for p in redis-cli redis-benchmark redis-server; do
  command -v "$p" >/dev/null || fatal "$p is missing (scripts/setup.sh installs redis-tools and redis-server)"
done
command -v cmake >/dev/null || fatal "cmake is missing (scripts/setup.sh installs it)"
etcd_lua=$root/scripts/bench-etcd.lua
if [ "$etcd" = 1 ]; then
  for p in etcd etcdctl wrk; do
    command -v "$p" >/dev/null || fatal "$p is missing (scripts/setup.sh installs etcd-server, etcd-client and wrk)"
  done
  [ -f "$etcd_lua" ] || fatal "$etcd_lua is missing"
fi
log "building raftkv-server in $build (when not up to date)"
if { [ -f "$build/CMakeCache.txt" ] ||
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >>"$log_file" 2>&1; } &&
  cmake --build "$build" -j2 --target raftkv-server >>"$log_file" 2>&1; then
  :
elif [ -x "$build/bin/raftkv-server" ]; then
  log "warning: the build failed (see $log_file); using the raftkv-server already in $build/bin"
else
  fatal "cannot build raftkv-server in $build (see $log_file)"
fi

# Other benchmark scripts of this machine take the same lock: two measurements never overlap.
# Fd 8 holds it; every process started from here gets 8>&- so none keeps it after we exit.
if [ "$bench_lock" != none ]; then
  exec 8>>"$bench_lock"
  log "waiting for the lock $bench_lock (at most ${lock_wait_s} s)"
  flock -w "$lock_wait_s" 8 || fatal "another benchmark holds $bench_lock"
fi

# ---- Cluster helpers ----

port_of() { echo $((base + $1)); }

# Runs cluster.sh on the cluster, bounded; its output to bench.log. Returns its status.
cl() {
  local rc=0
  timeout "$cluster_cmd_timeout_s" "$cluster" "$@" >>"$log_file" 2>&1 8>&- || rc=$?
  [ "$rc" -eq 0 ] || log "cluster.sh $* exited $rc"
  return "$rc"
}

# redis-cli against port $1 with a limit of $2 seconds; the reply without carriage returns.
cli_port() {
  timeout "$2" redis-cli -h 127.0.0.1 -p "$1" "${@:3}" 2>/dev/null 8>&- | tr -d '\r' || true
}

# The value of field $2 of `INFO raft` on node $1; empty when it does not answer.
raft_field() {
  cli_port "$(port_of "$1")" 2 INFO raft | sed -n "s/^$2://p" || true
}

# Starts a fresh 3-node cluster in $run/cluster and waits for a leader; sets `leader`.
leader=""
start_cluster() {
  export RAFTKV_DIR=$run/cluster
  rm -rf "$RAFTKV_DIR"
  cluster_dir=$RAFTKV_DIR
  cl start -n 3 || fatal "cluster.sh start failed (see $log_file and $RAFTKV_DIR/node*/server.log)"
  wait_leader
}

wait_leader() {
  local deadline=$((SECONDS + leader_timeout_s))
  until leader=$(timeout 10 "$cluster" leader 2>/dev/null 8>&-); do
    [ "$SECONDS" -lt "$deadline" ] || fatal "no leader within ${leader_timeout_s} s in $RAFTKV_DIR"
    sleep 0.1
  done
}

# Waits until every node's raft_applied_index equals the leader's (and its commit index).
wait_converged() {
  local deadline=$((SECONDS + converge_timeout_s)) a b c l
  while :; do
    a=$(raft_field 1 raft_applied_index) b=$(raft_field 2 raft_applied_index)
    c=$(raft_field 3 raft_applied_index) l=$(raft_field "$leader" raft_commit_index)
    if [ -n "$a" ] && [ "$a" = "$b" ] && [ "$b" = "$c" ] && [ "$a" = "$l" ]; then
      return 0
    fi
    [ "$SECONDS" -lt "$deadline" ] || fatal "applied indexes still differ after ${converge_timeout_s} s: $a $b $c (leader commit $l)"
    sleep 0.1
  done
}

# The two nodes other than the leader, in order; sets follower1 and follower2.
follower1="" follower2=""
pick_followers() {
  local i f=()
  for i in 1 2 3; do [ "$i" = "$leader" ] || f+=("$i"); done
  follower1=${f[0]} follower2=${f[1]}
}

# Writes the machine facts as `# key=value` lines (the report's machine table).
machine_facts() {
  local mem
  mem=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
  echo "# date=$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "# cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
  echo "# nproc=$(nproc)"
  echo "# memory=$mem"
  echo "# kernel=$(uname -sr)"
  echo "# redis_version=$(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')"
  echo "# commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "# extra_flags=${RAFTKV_EXTRA_FLAGS:-}"
}

# Starts redis-server: AOF always, no RDB saves, no automatic AOF rewrite (it would land inside
# a run); in the foreground of a background job, stopped by pid. Sets started_redis_pid.
started_redis_pid=""
# Whether something accepts connections on 127.0.0.1 port $1.
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start_redis() {
  mkdir -p "$run/redis-data"
  ! port_in_use "$redis_port" || fatal "port $redis_port is in use; set BENCH_REDIS_PORT"
  redis-server --port "$redis_port" --bind 127.0.0.1 --daemonize no --dir "$run/redis-data" \
    --logfile "$run/redis-data/redis.log" --save '' --appendonly yes --appendfsync always \
    --auto-aof-rewrite-percentage 0 8>&- &
  started_redis_pid=$!
  bg_pids+=("$started_redis_pid")
  local i
  for i in $(seq 1 100); do
    [ "$(cli_port "$redis_port" 1 PING)" = PONG ] && break
    kill -0 "$started_redis_pid" 2>/dev/null || fatal "redis-server exited (see $run/redis-data/redis.log)"
    [ "$i" -lt 100 ] || fatal "redis-server does not answer on port $redis_port"
    sleep 0.1
  done
  log "redis-server $started_redis_pid on port $redis_port, appendfsync always"
}

# A first write on each system so that neither pays for its start inside a measurement.
warm_up() {
  [ "$(cli_port "$(port_of "$leader")" 5 SET bench:warmup 1)" = OK ] || fatal "the leader does not accept a SET"
  [ "$(cli_port "$redis_port" 5 SET bench:warmup 1)" = OK ] || fatal "redis-server does not accept a SET"
  wait_leader
}

# ---- etcd (--etcd) ----

# Member i (m1..m3) serves clients on etcd_base+i and its peers on etcd_base+10+i.
etcd_client_url() { echo "http://127.0.0.1:$((etcd_base + $1))"; }
etcd_peer_url() { echo "http://127.0.0.1:$((etcd_base + 10 + $1))"; }
etcd_endpoints="$(etcd_client_url 1),$(etcd_client_url 2),$(etcd_client_url 3)"
etcd_pids=()

# etcdctl on the three members, bounded. (API 3 is etcdctl 3.4's default; set in case the
# environment says otherwise.)
ectl() {
  timeout 20 env ETCDCTL_API=3 etcdctl --endpoints="$etcd_endpoints" --dial-timeout=2s \
    --command-timeout=5s "$@" 8>&-
}

# Sets etcd_leader_url, etcd_leader_name (m1..m3) and etcd_term from the member that says it
# is the leader in `etcdctl endpoint status`; returns 1 when none answers that it is.
etcd_leader_url="" etcd_leader_name="" etcd_term=""
etcd_leader() {
  local line
  # -w simple: endpoint, ID, version, DB size, is leader, is learner, raft term, raft index, ...
  line=$(ectl endpoint status -w simple 2>/dev/null | awk -F', ' '$5 == "true" { print $1, $7; exit }') || true
  [[ $line =~ ^http://127\.0\.0\.1:[0-9]+\ [0-9]+$ ]] || return 1
  etcd_leader_url=${line%% *} etcd_term=${line##* }
  etcd_leader_name=m$((${etcd_leader_url##*:} - etcd_base))
}

# Starts a fresh 3-member etcd cluster (data in $run/etcd-data, logs $run/etcd-m*.log) with
# etcd's defaults but for the addresses, the data directories and the log; waits until every
# member is healthy and one is the leader; then writes every key of the load once, so that
# every GET finds its key. Sets etcd_preload (the preload's summary).
etcd_preload=""
start_etcd() {
  local i port pid members="" deadline
  for i in 1 2 3; do
    for port in $((etcd_base + i)) $((etcd_base + 10 + i)); do
      ! port_in_use "$port" || fatal "port $port is in use; set BENCH_ETCD_PORT"
    done
    members+="${members:+,}m$i=$(etcd_peer_url "$i")"
  done
  rm -rf "$run/etcd-data"
  mkdir -p "$run/etcd-data"
  for i in 1 2 3; do
    etcd --name "m$i" --data-dir "$run/etcd-data/m$i" \
      --listen-client-urls "$(etcd_client_url "$i")" --advertise-client-urls "$(etcd_client_url "$i")" \
      --listen-peer-urls "$(etcd_peer_url "$i")" --initial-advertise-peer-urls "$(etcd_peer_url "$i")" \
      --initial-cluster "$members" --initial-cluster-state new \
      --initial-cluster-token "raftkv-bench-$$" \
      --logger zap --log-outputs stderr >"$run/etcd-m$i.log" 2>&1 8>&- &
    etcd_pids+=("$!")
    bg_pids+=("$!")
  done
  deadline=$((SECONDS + etcd_start_timeout_s))
  until ectl endpoint health >/dev/null 2>&1 && etcd_leader; do
    for pid in "${etcd_pids[@]}"; do
      kill -0 "$pid" 2>/dev/null || fatal "etcd member pid $pid exited (see $run/etcd-m*.log)"
    done
    [ "$SECONDS" -lt "$deadline" ] ||
      fatal "the etcd cluster is not healthy with a leader after ${etcd_start_timeout_s} s (see $run/etcd-m*.log)"
    sleep 0.2
  done
  log "etcd $(etcd --version | sed -n 's/^etcd Version: //p'): members ${etcd_pids[*]} on $etcd_endpoints, leader $etcd_leader_name ($etcd_leader_url), term $etcd_term"
  log "etcd: writing the $keyspace keys once, 100 per transaction (at most ${etcd_preload_timeout_s} s)"
  # python3 itself (not through the function py), bounded by timeout.
  if etcd_preload=$(timeout $((etcd_preload_timeout_s + 30)) python3 -c "$py_code" etcd-preload \
    "$etcd_leader_url" "$keyspace" "$value_bytes" "$etcd_preload_conns" "$etcd_preload_timeout_s" \
    2>>"$log_file" 8>&-); then
    log "etcd preload: $etcd_preload"
  else
    fatal "etcd did not take the preload: ${etcd_preload:-no answer}"
  fi
}

# Stops the etcd members by pid.
stop_etcd() {
  local pid
  for pid in "${etcd_pids[@]}"; do stop_bg "$pid"; done
  etcd_pids=()
}

# Runs wrk with scripts/bench-etcd.lua on etcd's leader: test $1 (set|get), repetition $2;
# appends one row to results.csv (the columns of redis-benchmark's rows) and one to
# etcd-checks.csv (the counts that tell a broken run).
bench_etcd_one() {
  local t=$1 rep=$2 out line load port=${etcd_leader_url##*:} kv f
  local -a kvs=()
  local -A v=()
  out=$raw_dir/etcd-$t-P1-rep$rep
  load=$(cut -d' ' -f1 /proc/loadavg)
  timeout $((etcd_seconds + wrk_grace_s)) wrk -t1 -c"$clients" -d"${etcd_seconds}s" --timeout 5s \
    -s "$etcd_lua" "$etcd_leader_url" -- "$t" "$keyspace" "$value_bytes" >"$out.txt" 2>"$out.err" 8>&- ||
    log "warning: wrk etcd $t exited $? (see $out.err)"
  [ ! -s "$out.err" ] || log "warning: wrk etcd $t wrote errors (see $out.err)"
  line=$(grep '^etcd-result ' "$out.txt" | tail -n 1) || true
  read -r -a kvs <<<"${line#etcd-result }"
  for kv in "${kvs[@]}"; do v[${kv%%=*}]=${kv#*=}; done
  for f in requests rps avg_ms min_ms p50_ms p95_ms p99_ms max_ms ok non200 sockerr hits misses; do
    if ! [[ ${v[$f]:-} =~ ^[0-9]+(\.[0-9]+)?$ ]]; then
      log "warning: no result from wrk etcd $t (see $out.txt, $out.err)"
      return 0
    fi
  done
  echo "$rep,etcd,$port,${t^^},1,${v[rps]},${v[avg_ms]},${v[min_ms]},${v[p50_ms]},${v[p95_ms]},${v[p99_ms]},${v[max_ms]},$load" >>"$results"
  echo "$rep,${t^^},${v[requests]},${v[ok]},${v[non200]},${v[sockerr]},${v[hits]},${v[misses]}" >>"$etcd_checks"
  log "rep $rep etcd ${t^^} -P 1: ${v[rps]} requests/s, p50 ${v[p50_ms]} ms, p99 ${v[p99_ms]} ms; ${v[requests]} requests, ${v[non200]} not 200, ${v[sockerr]} socket errors$([ "$t" != get ] || echo ", ${v[hits]} hits, ${v[misses]} misses")"
}

# ---- Throughput ----

raw_dir=$run/redis-benchmark # and wrk's output with --etcd

# Inserts the `# key=value` lines read from stdin into results file $1, before the line of
# its column names.
insert_facts() {
  local facts
  facts=$(cat)
  awk -v facts="$facts" '/^rep,system,/ && !done { print facts; done = 1 } { print }' "$1" >"$1.tmp"
  mv "$1.tmp" "$1"
}

# Runs redis-benchmark: system $1 (name for the results), port $2, test $3 (set|get),
# pipeline $4, repetition $5; appends one row to results.csv.
bench_one() {
  local sys=$1 port=$2 t=$3 p=$4 rep=$5 out line load
  out=$raw_dir/$sys-$t-P$p-rep$rep
  load=$(cut -d' ' -f1 /proc/loadavg)
  timeout "$bench_timeout_s" redis-benchmark -h 127.0.0.1 -p "$port" -t "$t" -n "$requests" \
    -c "$clients" -d "$value_bytes" -r "$keyspace" -P "$p" --csv >"$out.csv" 2>"$out.err" 8>&- ||
    log "warning: redis-benchmark $sys $t -P $p exited $? (see $out.err)"
  [ ! -s "$out.err" ] || log "warning: redis-benchmark $sys $t -P $p wrote errors (see $out.err)"
  # Debian 12's redis-benchmark 7.0 --csv:
  # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
  line=$(grep -v '^"test"' "$out.csv" | tr -d '"\r' | tail -n 1)
  if ! [[ $line =~ ^[A-Z]+(,[0-9.]+){7}$ ]]; then
    log "warning: no result from redis-benchmark $sys $t -P $p (see $out.csv, $out.err)"
    return 0
  fi
  echo "$rep,$sys,$port,${line%%,*},$p,${line#*,},$load" >>"$results"
  log "rep $rep $sys ${line%%,*} -P $p: $(echo "$line" | cut -d, -f2) requests/s, p50 $(echo "$line" | cut -d, -f5) ms, p99 $(echo "$line" | cut -d, -f7) ms"
}

throughput() {
  results=$run/results.csv
  mkdir -p "$raw_dir"

  log "the disk's fsync rate (${fsync_probe_s} s of 64-byte appends in $run)"
  local fsyncs
  fsyncs=$(py fsync-rate "$run" "$fsync_probe_s" 2>>"$log_file") || fsyncs=""
  log "fsyncs/s: ${fsyncs:-?}"

  start_cluster
  log "cluster in $RAFTKV_DIR (ports $(port_of 1)-$(port_of 3)), leader: node $leader"
  start_redis
  local redis_pid=$started_redis_pid
  [ "$etcd" = 0 ] || start_etcd
  warm_up
  pick_followers
  local term_before term_after leader_after
  term_before=$(raft_field "$leader" raft_term)
  log "leader node $leader (port $(port_of "$leader")), follower node $follower1 (port $(port_of "$follower1")), term $term_before"
  local etcd_term_before="" etcd_leader_before="" etcd_leader_after etcd_summary
  if [ "$etcd" = 1 ]; then
    etcd_leader || fatal "no etcd leader after the preload"
    etcd_term_before=$etcd_term etcd_leader_before=$etcd_leader_name
    etcd_checks=$run/etcd-checks.csv
    echo "rep,test,requests,ok,non200,sockerr,hits,misses" >"$etcd_checks"
  fi

  {
    machine_facts
    echo "# fsync_per_s=$fsyncs"
    echo "# fsync_probe_s=$fsync_probe_s"
    echo "# reps=$reps"
    echo "# load=-n $requests -c $clients -d $value_bytes -r $keyspace"
    echo "# leader=$leader"
    echo "# follower=$follower1"
    echo "# term_before=$term_before"
    if [ "$etcd" = 1 ]; then
      echo "# etcd_version=$(etcd --version | sed -n 's/^etcd Version: //p')"
      echo "# wrk_version=$(wrk -v 2>&1 | sed -n '1s/^wrk \([^ ]*\).*/\1/p')"
      echo "# etcd_load=wrk -t1 -c $clients, $value_bytes-byte values, $keyspace keys, linearizable GET"
      echo "# etcd_seconds=$etcd_seconds"
      echo "# etcd_preload=$etcd_preload"
      echo "# etcd_leader=$etcd_leader_before"
      echo "# etcd_term_before=$etcd_term_before"
    fi
    echo "rep,system,port,test,pipeline,rps,avg_ms,min_ms,p50_ms,p95_ms,p99_ms,max_ms,loadavg1"
  } >"$results"

  # The systems in an order that rotates with the repetition.
  local names=(raftkv-leader redis-always raftkv-follower)
  local ports=("$(port_of "$leader")" "$redis_port" "$(port_of "$follower1")")
  [ "$etcd" = 0 ] || names+=(etcd)
  local n=${#names[@]} rep t p k j
  for rep in $(seq 1 "$reps"); do
    for t in $tests; do
      for p in $pipelines; do
        for ((k = 0; k < n; k++)); do
          j=$(((k + rep - 1) % n))
          if [ "${names[j]}" = etcd ]; then
            # wrk sends one request at a time per connection: etcd has no pipelined runs.
            [ "$p" != 1 ] || bench_etcd_one "$t" "$rep"
          else
            bench_one "${names[j]}" "${ports[j]}" "$t" "$p" "$rep"
          fi
        done
      done
    done
  done

  term_after=$(raft_field "$leader" raft_term)
  leader_after=$(timeout 10 "$cluster" leader 2>/dev/null 8>&-) || leader_after="none"
  if [ "$etcd" = 1 ]; then
    etcd_term="" etcd_leader_after=none
    if etcd_leader; then etcd_leader_after=$etcd_leader_name; fi
    # One run per repetition of each test without pipelining.
    etcd_summary=$(py etcd-checks "$etcd_checks" $((reps * $(wc -w <<<"$tests"))))
  fi
  # The facts after the runs go into the header, before the column names.
  {
    echo "# term_after=$term_after"
    echo "# leader_after=$leader_after"
    if [ "$etcd" = 1 ]; then
      echo "# etcd_term_after=$etcd_term"
      echo "# etcd_leader_after=$etcd_leader_after"
      echo "# etcd_checks=$etcd_summary"
    fi
  } | insert_facts "$results"

  stop_bg "$redis_pid"
  [ "$etcd" = 0 ] || stop_etcd
  cl stop || true
  cluster_dir=""

  echo
  echo "raftkv (3 nodes, leader node $leader) vs redis-server appendfsync always;" \
    "redis-benchmark -n $requests -c $clients -d $value_bytes -r $keyspace; median of $reps"
  if [ "$etcd" = 1 ]; then
    echo "etcd (3 members, leader $etcd_leader_before): wrk -t1 -c $clients over the JSON gateway," \
      "$etcd_seconds s per run, same keys and values; no -P 16 (n/a: one request at a time per connection)"
  fi
  py table "$results"
  echo
  if [ "$term_before" = "$term_after" ] && [ "$leader_after" = "$leader" ]; then
    echo "raft term on the leader: $term_before before, $term_after after (no election)"
  else
    echo "WARNING: raft term on node $leader: $term_before before, $term_after after; leader now $leader_after: an election happened during the runs"
  fi
  if [ "$etcd" = 1 ]; then
    if [ "$etcd_term_before" = "$etcd_term" ] && [ "$etcd_leader_after" = "$etcd_leader_before" ]; then
      echo "etcd raft term on the leader: $etcd_term_before before, $etcd_term after (no election)"
    else
      echo "WARNING: etcd raft term: $etcd_term_before before (leader $etcd_leader_before), ${etcd_term:-?} after (leader $etcd_leader_after): an election happened during the runs"
    fi
    echo "etcd: $etcd_summary"
  fi
  if [ "$save" = 1 ]; then
    mkdir -p "$docs_bench"
    cp "$results" "$docs_bench/latest.csv"
    echo "saved: docs/bench/latest.csv (scripts/bench.sh --report draws it)"
  fi
  echo "results: $results ($((SECONDS - t_start)) s)"
}

# ---- Profile: what one request costs each process ----

# Counted by `perf stat` on each process for the length of one redis-benchmark run.
readonly profile_events=task-clock,context-switches,raw_syscalls:sys_enter,syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync,syscalls:sys_enter_write,syscalls:sys_enter_read,syscalls:sys_enter_epoll_ctl,syscalls:sys_enter_futex

# The bytes process $1 has caused to be written to storage (/proc/PID/io write_bytes).
written_bytes() {
  awk '/^write_bytes:/ { print $2 }' "/proc/$1/io" 2>/dev/null || echo 0
}

# The CPU clock ticks process $1 has used; 0 when it is gone.
cpu_ticks() {
  awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# Waits (at most 30 s) until the processes "$1" (pid:role pairs) use under 5 % of a CPU
# over half a second: LevelDB compactions left by a write run would otherwise be counted as
# the cost of the next run's requests.
settle() {
  local deadline=$((SECONDS + 30)) pr before after
  while [ "$SECONDS" -lt "$deadline" ]; do
    before=0 after=0
    for pr in $1; do before=$((before + $(cpu_ticks "${pr%%:*}"))); done
    sleep 0.5
    for pr in $1; do after=$((after + $(cpu_ticks "${pr%%:*}"))); done
    # Clock ticks (1/100 s): under 5 % of one CPU in 0.5 s.
    [ $((after - before)) -le 2 ] && return 0
  done
  log "warning: the processes still busy after 30 s; measuring anyway"
}

# Runs redis-benchmark test $3, pipeline $4 against port $2 of system $1 while perf counts the
# processes "$5" (pid:role pairs); appends one row per process to profile.csv.
profile_one() {
  local sys=$1 port=$2 t=$3 p=$4 procs=$5 out pr pid role perf_pids=() line rps
  out=$raw_dir/profile-$sys-$t-P$p
  settle "$procs"
  local -A written=()
  for pr in $procs; do
    pid=${pr%%:*}
    written[$pid]=$(written_bytes "$pid")
    perf stat -x, -e "$profile_events" -p "$pid" -o "$out.perf-$pid" 8>&- 2>>"$log_file" &
    perf_pids+=("$!")
    bg_pids+=("$!")
  done
  sleep 0.5 # perf attaches
  timeout "$bench_timeout_s" redis-benchmark -h 127.0.0.1 -p "$port" -t "$t" -n "$requests" \
    -c "$clients" -d "$value_bytes" -r "$keyspace" -P "$p" --csv >"$out.csv" 2>"$out.err" 8>&- ||
    log "warning: redis-benchmark $sys $t -P $p exited $? (see $out.err)"
  # perf stat writes its counts when interrupted: give it up to 5 s before stop_bg's SIGTERM.
  local deadline=$((SECONDS + 5))
  for pid in "${perf_pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  for pid in "${perf_pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.05; done
    stop_bg "$pid"
  done
  line=$(grep -v '^"test"' "$out.csv" | tr -d '"\r' | tail -n 1)
  rps=$(echo "$line" | cut -d, -f2)
  [ -n "$rps" ] || { log "warning: no result from redis-benchmark $sys $t -P $p"; return 0; }
  for pr in $procs; do
    pid=${pr%%:*} role=${pr#*:}
    if ! grep -q ',task-clock,' "$out.perf-$pid" 2>/dev/null; then
      log "warning: no counts from perf for $role (pid $pid; see $out.perf-$pid): row left out"
      continue
    fi
    # perf stat -x,: value,unit,event,...
    awk -F, -v sys="$sys" -v t="$t" -v p="$p" -v role="$role" -v rps="$rps" -v n="$requests" \
      -v disk=$(($(written_bytes "$pid") - written[$pid])) '
      $3 != "" && $1 ~ /^[0-9.]+$/ { v[$3] = $1 }
      END {
        fs = v["syscalls:sys_enter_fdatasync"] + v["syscalls:sys_enter_fsync"]
        printf "%s,%s,%d,%s,%s,%.1f,%.2f,%.4f,%.0f,%.2f,%.2f,%.2f,%.2f,%.2f\n", sys, toupper(t), p, role, rps,
          v["task-clock"] * 1000 / n, v["raw_syscalls:sys_enter"] / n, fs / n, disk / n,
          v["syscalls:sys_enter_write"] / n, v["syscalls:sys_enter_read"] / n,
          v["syscalls:sys_enter_epoll_ctl"] / n, v["syscalls:sys_enter_futex"] / n,
          v["context-switches"] / n
      }' "$out.perf-$pid" >>"$profile_results"
  done
  log "profile $sys ${t^^} -P $p: $rps requests/s"
}

profile() {
  command -v perf >/dev/null || fatal "perf is missing (scripts/setup.sh installs linux-perf)"
  perf stat -e raw_syscalls:sys_enter -- true >/dev/null 2>&1 ||
    fatal "perf cannot count syscall tracepoints here (needs root or kernel.perf_event_paranoid <= -1)"
  profile_results=$run/profile.csv
  mkdir -p "$raw_dir"
  start_cluster
  start_redis
  local redis_pid=$started_redis_pid
  warm_up
  pick_followers
  local procs="" i role
  for i in 1 2 3; do
    role=follower
    [ "$i" = "$leader" ] && role=leader
    procs="$procs $(cat "$RAFTKV_DIR/node$i/server.pid"):node$i-$role"
  done
  {
    machine_facts
    echo "# load=-n $requests -c $clients -d $value_bytes -r $keyspace"
    echo "# leader=$leader"
    echo "system,test,pipeline,process,rps,cpu_us,syscalls,fsyncs,disk_bytes,writes,reads,epoll_ctls,futexes,context_switches"
  } >"$profile_results"
  local t p
  for t in $tests; do
    for p in $pipelines; do
      profile_one raftkv "$(port_of "$leader")" "$t" "$p" "$procs"
      profile_one redis-always "$redis_port" "$t" "$p" "$redis_pid:redis-server"
    done
  done
  stop_bg "$redis_pid"
  cl stop || true
  cluster_dir=""
  echo
  echo "Per request (redis-benchmark -n $requests -c $clients -d $value_bytes -r $keyspace, raftkv at its leader): CPU time and counts of each process, summed over its threads"
  py profile-table "$profile_results"
  if [ "$save" = 1 ]; then
    mkdir -p "$docs_bench"
    cp "$profile_results" "$docs_bench/profile.csv"
    echo "saved: docs/bench/profile.csv (scripts/bench.sh --report shows it)"
  fi
  echo "results: $profile_results ($((SECONDS - t_start)) s)"
}

# ---- Failover ----

failover() {
  results=$run/failover.csv
  mkdir -p "$run/probe"
  start_cluster
  log "cluster in $RAFTKV_DIR (ports $(port_of 1)-$(port_of 3)), leader: node $leader"
  local timeout_ms
  # What the node runs with (CONFIG GET answers the key, then its value).
  timeout_ms=$(cli_port "$(port_of "$leader")" 2 CONFIG GET election-timeout-ms | sed -n 2p)
  {
    machine_facts
    echo "# election_timeout_ms=${timeout_ms:-unknown}"
    echo "# load_clients=$load_clients"
    echo "# probe_timeout_ms=$probe_timeout_ms"
    echo "kill,killed_node,probe_node,load_node,failover_ms,new_leader,term"
  } >"$results"

  local k i killed pid load_pid probe_pid probe_out kill_us kill_ns ack ms term
  local kill_file=$run/probe/kill_ns
  for k in $(seq 1 "$kills"); do
    wait_leader
    wait_converged
    pick_followers
    probe_out=$run/probe/kill$k.txt
    # The steady write load on one follower, the probe on the other: both survive the kill.
    timeout 600 redis-benchmark -h 127.0.0.1 -p "$(port_of "$follower2")" -t set -n 100000000 \
      -c "$load_clients" -d "$value_bytes" -r "$keyspace" -q >"$run/probe/load$k.out" 2>&1 8>&- &
    load_pid=$!
    bg_pids+=("$load_pid")
    rm -f "$kill_file"
    # python3 itself in the background (not through the function py), so that $! is its pid.
    python3 -c "$py_code" probe 127.0.0.1 "$(port_of "$follower1")" "$probe_out" "$kill_file" \
      "$failover_give_up_s" "$probe_timeout_ms" 2>"$probe_out.err" 8>&- &
    probe_pid=$!
    bg_pids+=("$probe_pid")
    # A second of steady state: the probe is acknowledged and the load is running (on a
    # machine busy with other work, the probe's first acknowledgement may take longer).
    sleep 1
    for i in $(seq 1 100); do
      [ ! -s "$probe_out" ] || break
      [ "$i" -lt 100 ] || fatal "round $k: the probe on node $follower1 has no acknowledged write in 11 s (see $probe_out.err)"
      sleep 0.1
    done
    killed=$leader
    pid=$(cat "$RAFTKV_DIR/node$killed/server.pid" 2>/dev/null || true)
    if ! [[ $pid =~ ^[0-9]+$ ]] ||
      [[ $(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | head -n 1) != *raftkv-server ]]; then
      fatal "round $k: no raftkv-server process for leader node $killed (pid '$pid')"
    fi
    # The kill's time, from the clock the probe uses (CLOCK_REALTIME, in microseconds here),
    # read without a fork as soon as kill(2) has returned: read before it, a busy machine may
    # deschedule this shell between the two, and a write the old leader still commits in
    # that gap would count as sent after the kill. The probe learns the time from kill_file
    # and exits at its first acknowledged write sent after it (or gives up after 30 s).
    kill -KILL "$pid"
    kill_us=$EPOCHREALTIME
    kill_us=${kill_us//[!0-9]/}
    kill_ns=$((kill_us * 1000))
    echo "$kill_ns" >"$kill_file.tmp"
    mv "$kill_file.tmp" "$kill_file"
    wait "$probe_pid" || true
    stop_bg "$probe_pid"
    ack=$(py first-ack-after "$probe_out" "$kill_ns")
    stop_bg "$load_pid"
    if [ -n "$ack" ]; then
      ms=$(awk -v a="$ack" -v b="$kill_ns" 'BEGIN { printf "%.1f", (a - b) / 1e6 }')
    else
      ms=lost
    fi
    wait_leader
    term=$(raft_field "$leader" raft_term)
    echo "$k,$killed,$follower1,$follower2,$ms,$leader,$term" >>"$results"
    log "kill $k: node $killed killed; first write through node $follower1 after $ms ms; new leader node $leader, term $term; $(cat "$probe_out.err" 2>/dev/null)"
    cl restart "$killed" || fatal "cluster.sh restart $killed failed"
  done
  wait_leader
  wait_converged
  cl stop || true
  cluster_dir=""

  echo
  echo "kill -9 of the leader to the first acknowledged write through a follower (ms):"
  awk -F, '!/^#/ && NR > 1 && $1 != "kill" { printf "%s%s", sep, $5; sep = " " } END { print "" }' "$results"
  py failover-line "$results"
  if [ "$save" = 1 ]; then
    mkdir -p "$docs_bench"
    cp "$results" "$docs_bench/failover.csv"
    echo "saved: docs/bench/failover.csv (scripts/bench.sh --report draws it)"
  fi
  echo "results: $results ($((SECONDS - t_start)) s)"
}

case $mode in
  throughput) throughput ;;
  failover) failover ;;
  profile) profile ;;
esac
finished=1
