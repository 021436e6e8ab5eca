#!/usr/bin/env bash
# A bounded load check of `foldsweep serve`, against 127.0.0.1 only: REQUESTS requests
# (default 400) from CLIENTS parallel clients (default 4) over every page and API endpoint.
# Prints the request count, errors and p50/p99/max latency, overall and per endpoint.
#   scripts/load_serve.sh           a sweep writes meanwhile (scripts/serve_fixture.sh); also
#                                   checks that no job stalled (every job done, none much
#                                   slower than the median, no "database is locked")
#   DB=big.db SWEEP=big scripts/load_serve.sh
#                                   serves that database as it is, e.g. the 10,000-config one
#                                   of `cargo run --release --example serve_load_db -- big.db`
# Needs target/release/foldsweep (or FOLDSWEEP), curl and python3. Exits 1 on any error, and
# with P99_MS set, when some endpoint's p99 is over it.
set -euo pipefail
requests=${REQUESTS:-400}
clients=${CLIENTS:-4}
command -v python3 >/dev/null || { echo "needs python3" >&2; exit 2; }

if [[ -n ${DB:-} ]]; then
    root=$(cd "$(dirname "$0")/.." && pwd)
    foldsweep=${FOLDSWEEP:-$root/target/release/foldsweep}
    sweep=${SWEEP:-big}
    work=$(mktemp -d)
    serve_pid=""
    trap '[[ -n $serve_pid ]] && kill "$serve_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
    "$foldsweep" serve --db "$DB" --addr 127.0.0.1:0 >"$work/serve.log" 2>"$work/serve.err" &
    serve_pid=$!
    for _ in $(seq 100); do
        [[ -s $work/serve.log && $(wc -l <"$work/serve.log") -ge 2 ]] && break
        sleep 0.1
    done
    port=$(head -1 "$work/serve.log" | sed -E 's#.*http://127\.0\.0\.1:([0-9]+)/.*#\1#')
    token=$(sed -n 2p "$work/serve.log" | sed -E 's#.*\?token=##')
    sweep_pid=""
else
    sweep=live
    source "$(dirname "$0")/serve_fixture.sh"
    # Start once some results exist, so every endpoint has work to do.
    for _ in $(seq 1200); do
        [[ $(progress_field done) -ge 2 ]] 2>/dev/null && break
        sleep 0.1
    done
fi

python3 - "$port" "$token" "$sweep" "$requests" "$clients" "${P99_MS:-}" <<'PY'
import collections, http.client, json, random, sys, threading, time
from urllib.parse import quote
port, token, sweep = int(sys.argv[1]), sys.argv[2], sys.argv[3]
total, clients, p99_limit = int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
headers = {"Authorization": f"Bearer {token}"}

def get(path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    started = time.perf_counter()
    conn.request("GET", path, headers=headers)
    reply = conn.getresponse()
    body = reply.read()
    conn.close()
    return reply.status, time.perf_counter() - started, body

name = quote(sweep, safe="")
rows = json.loads(get(f"/api/sweeps/{name}/results")[2])["results"]
ids = [r["id"] for r in rows]
random.seed(1)
some = random.sample(ids, min(len(ids), 50))
pages = max(1, (len(ids) + 99) // 100)
paths = [
    ("index", lambda: "/"),
    ("api sweeps", lambda: "/api/sweeps"),
    ("sweep page", lambda: f"/sweeps/{name}"),
    ("sweep page, last page", lambda: f"/sweeps/{name}?page={pages}"),
    ("sweep page, filtered", lambda: f"/sweeps/{name}?state=done&sort=macro"),
    ("sweep page, live refresh", lambda: f"/sweeps/{name}?page=2"),
    ("api results, 100 rows", lambda: f"/api/sweeps/{name}/results?sort=macro&offset=200&limit=100"),
    ("api progress", lambda: f"/api/sweeps/{name}/progress"),
    ("config page", lambda: f"/configs/{random.choice(some)}"),
    ("api config", lambda: f"/api/configs/{random.choice(some)}"),
]
# One warm-up round: the first read of a large database comes from disk.
for _, path in paths:
    get(path())
latencies, errors, lock = collections.defaultdict(list), [], threading.Lock()

def client(k):
    for i in range(k, total, clients):
        label, path = paths[i % len(paths)]
        path = path()
        try:
            status, seconds, _ = get(path)
        except Exception as e:  # a timeout or a reset counts as an error
            status, seconds = repr(e), float("nan")
        with lock:
            latencies[label].append(seconds)
            if status != 200:
                errors.append((path, status))

before = json.loads(get(f"/api/sweeps/{name}/progress")[2])["jobs"]
started = time.perf_counter()
threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
for t in threads: t.start()
for t in threads: t.join()
wall = time.perf_counter() - started
jobs = json.loads(get(f"/api/sweeps/{name}/progress")[2])["jobs"]

def pct(ms, q):
    return ms[min(len(ms) - 1, int(q * len(ms)))]

everything = sorted(1000 * s for v in latencies.values() for s in v if s == s)
print(f"{len(ids)} configs; requests {len(everything)} from {clients} clients in {wall:.1f}s, "
      f"errors {len(errors)} {errors[:5]}")
print(f"latency ms, all: p50 {pct(everything, 0.5):.1f}  p99 {pct(everything, 0.99):.1f}  "
      f"max {everything[-1]:.1f}")
over = []
for label, _ in paths:
    ms = sorted(1000 * s for s in latencies[label] if s == s)
    if not ms:
        continue
    print(f"  {label:26} n {len(ms):4}  p50 {pct(ms, 0.5):7.1f}  p99 {pct(ms, 0.99):7.1f}  max {ms[-1]:7.1f}")
    if p99_limit and pct(ms, 0.99) > float(p99_limit):
        over.append(label)
print(f"sweep during the load: done {before['done']} -> {jobs['done']} of {jobs['total']}")
if over:
    print(f"p99 over {p99_limit} ms: {over}")
sys.exit(1 if errors or over else 0)
PY

[[ -z ${sweep_pid:-} ]] && exit 0
# The sweep goes on to the end: every job must finish, none stalled.
wait "$sweep_pid" && sweep_status=0 || sweep_status=$?
sweep_pid=""
python3 - "$port" "$token" "$sweep_status" "$work/sweep.log" <<'PY'
import http.client, json, statistics, sys
port, token, status, log = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), open(sys.argv[4]).read()
def get(path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    return json.loads(conn.getresponse().read())
jobs = get("/api/sweeps/live/progress")["jobs"]
seconds = []
for row in get("/api/sweeps/live/results")["results"]:
    for fold in get(f"/api/configs/{row['id']}")["folds"]:
        seconds.append(fold["finished_at"] - fold["started_at"])
median, worst = statistics.median(seconds), max(seconds)
print(f"sweep exit {status}: {jobs['done']}/{jobs['total']} jobs done, {jobs['failed']} failed; "
      f"job wall time median {median:.2f}s, max {worst:.2f}s; 'locked' in its log: {'locked' in log}")
stalled = status != 0 or jobs["done"] != jobs["total"] or worst > 5 * median or "locked" in log
print("no job stalled" if not stalled else "A JOB STALLED OR FAILED")
sys.exit(1 if stalled else 0)
PY
if [[ -s $work/serve.err ]]; then
    echo "serve reported errors:" >&2
    cat "$work/serve.err" >&2
    exit 1
fi
