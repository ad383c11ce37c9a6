#!/usr/bin/env bash
# Benchmarks raftkv side by side with the system a user would pick instead, a single
# redis-server with appendfsync always; measures failover under a write load; draws the plots
# and the results of docs/benchmarks.md from the saved data.
#
#   scripts/bench.sh                      throughput: redis-benchmark SET and GET, with and
#                                         without -P 16, 3 repetitions (about 3-5 minutes)
#   scripts/bench.sh --failover           kill -9 the leader 20 times under a write load; the
#                                         time from each kill to the first acknowledged write
#   scripts/bench.sh --profile            what a request costs each process: CPU time and
#                                         syscalls, fsyncs, context switches (perf stat)
#   scripts/bench.sh --report             plots (docs/bench/*.svg) and the results part of
#                                         docs/benchmarks.md from docs/bench/*.csv
#   scripts/bench.sh --save ...           also copy the results into docs/bench/ for --report
#
# Each measuring mode starts its own fresh 3-node cluster (scripts/cluster.sh, base port 7600)
# in a run directory, and stops every process it started, by pid, on exit.
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

usage() {
  cat <<'EOF'
usage: scripts/bench.sh [--reps N] [--save] [--dir DIR] [--keep]
       scripts/bench.sh --failover [--kills N] [--save] [--dir DIR] [--keep]
       scripts/bench.sh --profile [--save] [--dir DIR] [--keep]
       scripts/bench.sh --report
       scripts/bench.sh --etcd

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
  --etcd        the etcd comparison: not implemented (exits 2 with a message)
  --dir DIR     the run directory (default: ${TMPDIR:-/tmp}/raftkv-bench-<date>); it must be
                new, empty, or one an earlier bench run made. It always keeps the results
                (results.csv, failover.csv or profile.csv, each redis-benchmark's
                output, bench.log)
  --keep        also keep the nodes' and redis-server's data directories
  -h, --help    this text

Exit status: 0 when the measurement completed (whatever the figures); 2 on bad usage, and for
--etcd; 3 when it could not complete (no build, a cluster or redis-server that does not
start, no leader, a missing program, another benchmark holding the lock too long).

Environment:
  RAFTKV_BASE_PORT   node i serves clients on 127.0.0.1:(B+i), peers on B+10000+i
                     (default 7600)
  BENCH_REDIS_PORT   redis-server's port (default 17390)
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

mode=throughput reps=3 kills=20 save=0 keep=0 run=""
while [ $# -gt 0 ]; do
  case $1 in
    --failover) mode=failover ;;
    --profile) mode=profile ;;
    --report) mode=report ;;
    --etcd) mode=etcd ;;
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

if [ "$mode" = etcd ]; then
  if ! command -v etcd >/dev/null; then
    echo "bench.sh: etcd is not installed (Debian: etcd-server etcd-client); the etcd comparison is not implemented either" >&2
  else
    echo "bench.sh: the etcd comparison is not implemented (etcd is installed: $(command -v etcd))" >&2
  fi
  exit 2
fi

# ---- The Python helpers: the probe, the fsync rate, the summaries and the report ----

# One program with a subcommand per job, run with `python3 -c`. python3 is installed by
# scripts/setup.sh. Results files are CSV with a header row; lines starting with '#' before
# the header are `# key=value` facts about the run (machine, terms, flags).
# shellcheck disable=SC2016  # Python source, not shell
read -r -d '' py_code <<'PYTHON' || true
import csv, math, os, re, signal, socket, statistics, sys, time

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

SYSTEMS = ['redis-always', 'raftkv-leader', 'raftkv-follower']
LABELS = {'redis-always': 'redis-server (appendfsync always)', 'raftkv-leader': 'raftkv at the leader',
          'raftkv-follower': 'raftkv through a follower'}
TESTS = [('SET', '1'), ('SET', '16'), ('GET', '1'), ('GET', '16')]
# The issue's targets for raftkv against redis-server appendfsync always, measured at the
# leader: requests/s ratio, and SET's p99 at most twice redis-server's.
RPS_TARGET = {('SET', '1'): 1.0, ('SET', '16'): 0.5, ('GET', '1'): 0.8, ('GET', '16'): 0.5}
P99_TARGET = {('SET', '1'): 2.0}

def summary(path):
    groups = {}
    for r in rows(path):
        groups.setdefault((r['system'], r['test'], r['pipeline']), []).append(r)
    med = lambda g, k: statistics.median(float(r[k]) for r in g)
    out = []
    for test, p in TESTS:
        base = groups.get(('redis-always', test, p))
        for s in SYSTEMS:
            g = groups.get((s, test, p))
            if not g:
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

def plot_data(path, field):
    """Tab-separated: label, then one column per system (NaN where missing)."""
    es = {(e['system'], e['test'], e['pipeline']): e for e in summary(path)}
    for test, p in TESTS:
        label = test + ('' if p == '1' else ' -P' + p)
        vals = [es.get((s, test, p), {}).get(field) for s in SYSTEMS]
        print('"%s"\t' % label + '\t'.join('NaN' if v is None else '%g' % v for v in vals))

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
            ('redis_version', 'redis-server and redis-benchmark'), ('commit', 'raftkv commit'),
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

# Draws a clustered bar chart of column data file $1 (label, redis, leader, follower) into $2,
# with title $3 and y label $4.
bars() {
  gnuplot <<EOF
set terminal svg size 820,440 dynamic font "sans,12" background rgb "white"
set output "$2"
set title "$3"
set ylabel "$4"
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
plot "$1" using 2:xtic(1) title "redis-server (appendfsync always)" lc rgb "#b03a2e", \
     "" using 3 title "raftkv at the leader" lc rgb "#1f618d", \
     "" using 4 title "raftkv through a follower" lc rgb "#7fb3d5"
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
    py plot-data "$latest" rps >"$tmp/rps.dat"
    py plot-data "$latest" p99 >"$tmp/p99.dat"
    bars "$tmp/rps.dat" "$docs_bench/throughput.svg" \
      "Throughput, median of the repetitions (redis-benchmark -n 100000 -c 50 -d 64 -r 100000)" "requests/s"
    bars "$tmp/p99.dat" "$docs_bench/p99.svg" "p99 latency, median of the repetitions" "ms"
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

bg_pids=()         # processes started in the background (redis-server, probe, load), by pid
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
  # The servers' logs stay in the run directory; their data only with --keep.
  local d
  for d in "$run"/cluster/node*; do
    [ -f "$d/server.log" ] && cp "$d/server.log" "$run/server-${d##*/}.log"
  done
  [ -f "$run/redis-data/redis.log" ] && cp "$run/redis-data/redis.log" "$run/redis-server.log"
  if [ "$keep" = 0 ]; then
    rm -rf "$run/cluster" "$run/redis-data"
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
start_redis() {
  mkdir -p "$run/redis-data"
  if (exec 3<>"/dev/tcp/127.0.0.1/$redis_port") 2>/dev/null; then
    fatal "port $redis_port is in use; set BENCH_REDIS_PORT"
  fi
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

# ---- Throughput ----

raw_dir=$run/redis-benchmark

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
  warm_up
  pick_followers
  local term_before term_after leader_after
  term_before=$(raft_field "$leader" raft_term)
  log "leader node $leader (port $(port_of "$leader")), follower node $follower1 (port $(port_of "$follower1")), term $term_before"

  {
    machine_facts
    echo "# fsync_per_s=$fsyncs"
    echo "# fsync_probe_s=$fsync_probe_s"
    echo "# reps=$reps"
    echo "# load=-n $requests -c $clients -d $value_bytes -r $keyspace"
    echo "# leader=$leader"
    echo "# follower=$follower1"
    echo "# term_before=$term_before"
    echo "rep,system,port,test,pipeline,rps,avg_ms,min_ms,p50_ms,p95_ms,p99_ms,max_ms,loadavg1"
  } >"$results"

  # The three systems in an order that rotates with the repetition.
  local names=(raftkv-leader redis-always raftkv-follower)
  local ports=("$(port_of "$leader")" "$redis_port" "$(port_of "$follower1")")
  local rep t p k j
  for rep in $(seq 1 "$reps"); do
    for t in $tests; do
      for p in $pipelines; do
        for k in 0 1 2; do
          j=$(((k + rep - 1) % 3))
          bench_one "${names[j]}" "${ports[j]}" "$t" "$p" "$rep"
        done
      done
    done
  done

  term_after=$(raft_field "$leader" raft_term)
  leader_after=$(timeout 10 "$cluster" leader 2>/dev/null 8>&-) || leader_after="none"
  # The facts after the runs go into the header, before the column names.
  sed -i "s/^rep,system,/# term_after=$term_after\n# leader_after=$leader_after\n&/" "$results"

  stop_bg "$redis_pid"
  cl stop || true
  cluster_dir=""

  echo
  echo "raftkv (3 nodes, leader node $leader) vs redis-server appendfsync always;" \
    "redis-benchmark -n $requests -c $clients -d $value_bytes -r $keyspace; median of $reps"
  py table "$results"
  echo
  if [ "$term_before" = "$term_after" ] && [ "$leader_after" = "$leader" ]; then
    echo "raft term on the leader: $term_before before, $term_after after (no election)"
  else
    echo "WARNING: raft term on node $leader: $term_before before, $term_after after; leader now $leader_after: an election happened during the runs"
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
