#!/usr/bin/env bash
# A bounded load check of `foldsweep serve` while a sweep writes: REQUESTS requests (default
# 400) from CLIENTS parallel clients (default 4), over every page and API endpoint, against
# 127.0.0.1 only. Prints the request count, errors, p50/p99/max latency, and whether any
# job stalled (every job done, none much slower than the median, no "database is locked").
#   scripts/load_serve.sh            (needs target/release/foldsweep, curl and python3)
set -euo pipefail
requests=${REQUESTS:-400}
clients=${CLIENTS:-4}
command -v python3 >/dev/null || { echo "needs python3" >&2; exit 2; }

source "$(dirname "$0")/serve_fixture.sh"

# Start once some results exist, so every endpoint has work to do.
for _ in $(seq 1200); do
    [[ $(progress_field done) -ge 2 ]] 2>/dev/null && break
    sleep 0.1
done

python3 - "$port" "$requests" "$clients" <<'PY'
import http.client, json, statistics, sys, threading, time
port, total, clients = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])

def get(path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    started = time.perf_counter()
    conn.request("GET", path)
    reply = conn.getresponse()
    body = reply.read()
    conn.close()
    return reply.status, time.perf_counter() - started, body

best = json.loads(get("/api/sweeps")[2])["sweeps"][0]["best"]["id"]
paths = ["/api/sweeps", "/api/sweeps/live/progress", "/api/sweeps/live/results?sort=macro",
         "/sweeps/live", "/", f"/api/configs/{best}", f"/configs/{best}"]
latencies, errors, lock = [], [], threading.Lock()

def client(k):
    for i in range(k, total, clients):
        path = paths[i % len(paths)]
        try:
            status, seconds, _ = get(path)
        except Exception as e:  # a timeout or a reset counts as an error
            status, seconds = repr(e), float("nan")
        with lock:
            latencies.append(seconds)
            if status != 200:
                errors.append((path, status))

left_before = json.loads(get("/api/sweeps/live/progress")[2])["jobs"]
started = time.perf_counter()
threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
for t in threads: t.start()
for t in threads: t.join()
wall = time.perf_counter() - started
jobs = json.loads(get("/api/sweeps/live/progress")[2])["jobs"]
ms = sorted(1000 * s for s in latencies if s == s)
pct = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]
print(f"requests {len(latencies)} from {clients} clients in {wall:.1f}s, errors {len(errors)} {errors[:5]}")
print(f"latency ms: p50 {pct(0.50):.1f}  p99 {pct(0.99):.1f}  max {ms[-1]:.1f}")
print(f"sweep during the load: done {left_before['done']} -> {jobs['done']} of {jobs['total']}, "
      f"still running or left at the end: {jobs['running'] + jobs['left']}")
sys.exit(1 if errors else 0)
PY

# The sweep goes on to the end: every job must finish, none stalled.
wait "$sweep_pid" && sweep_status=0 || sweep_status=$?
sweep_pid=""
python3 - "$port" "$sweep_status" "$work/sweep.log" <<'PY'
import http.client, json, statistics, sys
port, status, log = int(sys.argv[1]), int(sys.argv[2]), open(sys.argv[3]).read()
def get(path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path)
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
