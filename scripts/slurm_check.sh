#!/usr/bin/env bash
# A real Slurm check of `foldsweep slurm`, not a mock.
#
# Starts a single-node Slurm cluster on this machine (munged, slurmctld and slurmd on
# localhost, everything in a temp dir), writes the job scripts with `foldsweep slurm` for
# sweeps/quick.toml on the sample data, submits them exactly as `foldsweep slurm` says
# (job array, then the merge job with --dependency=afterany), waits, and checks that the
# merged database holds the same (config, fold) jobs, all done, as a single-machine
# `foldsweep run` of the same sweep. Prints PASS or FAIL; exits non-zero on failure.
#
# Needs root and Debian's slurm-wlm and munge (apt-get install slurm-wlm munge); no running
# system services are used or touched. Takes about 30 s on 2 cores.
#
#   cargo build --release && bash scripts/slurm_check.sh
#
# Environment: FOLDSWEEP (the binary; default target/release/foldsweep), SLURM_CHECK_TASKS
# (array tasks, default 3), SLURM_CHECK_TIMEOUT (seconds to wait for the jobs, default 600),
# SLURM_CHECK_KEEP=1 keeps the temp dir, SLURM_CHECK_PORT (slurmctld port; slurmd uses +1;
# default 6817).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
FOLDSWEEP="${FOLDSWEEP:-$REPO/target/release/foldsweep}"  # relative: to the caller's directory
if [[ -f "$FOLDSWEEP" ]]; then FOLDSWEEP="$(cd "$(dirname "$FOLDSWEEP")" && pwd)/$(basename "$FOLDSWEEP")"; fi
cd "$REPO"

TASKS="${SLURM_CHECK_TASKS:-3}"
TIMEOUT="${SLURM_CHECK_TIMEOUT:-600}"
PORT="${SLURM_CHECK_PORT:-6817}"
SWEEP=sweeps/quick.toml  # 20 configs x 5 folds on data/sample

fail() { echo "slurm_check: FAIL: $*" >&2; exit 1; }

[[ -x "$FOLDSWEEP" ]] || fail "no foldsweep binary at $FOLDSWEEP (cargo build --release, or set FOLDSWEEP)"
for tool in munged slurmctld slurmd sbatch scontrol sinfo python3; do
    command -v "$tool" >/dev/null || fail "$tool not found (apt-get install slurm-wlm munge)"
done
[[ $(id -u) == 0 ]] || fail "must run as root (the test cluster runs its daemons and jobs as root)"

T="$(mktemp -d /tmp/foldsweep-slurm.XXXXXX)"
chmod 700 "$T"
PIDS=()
cleanup() {
    local rc=$?
    set +e
    if [[ -n "${SLURM_CONF:-}" && -f "${SLURM_CONF:-}" ]]; then
        jobs_left=$(squeue -h -o %A 2>/dev/null)
        if [[ -n "$jobs_left" ]]; then
            scancel --quiet $jobs_left 2>/dev/null
            for _ in $(seq 50); do [[ -z "$(squeue -h -o %A 2>/dev/null)" ]] && break; sleep 0.2; done
        fi
    fi
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        kill "${PIDS[i]}" 2>/dev/null
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    if [[ $rc != 0 ]]; then
        echo "== logs (failure)" >&2
        for log in "$T"/log/*.log "$T"/work/sweep-out/slurm-*.out; do
            [[ -f "$log" ]] || continue
            echo "--- $log (last 30 lines)" >&2
            tail -n 30 "$log" >&2
        done
    fi
    if [[ "${SLURM_CHECK_KEEP:-0}" == 1 ]]; then
        echo "kept $T" >&2
    else
        rm -rf "$T"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

HOST="$(hostname -s)"
mkdir -p "$T/munge" "$T/log" "$T/state" "$T/spool/slurmd" "$T/etc" "$T/single"

echo "== munge"
dd if=/dev/urandom of="$T/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$T/munge/munge.key"
munged --foreground --force --socket="$T/munge/munge.sock" --key-file="$T/munge/munge.key" \
    --pid-file="$T/munge/munged.pid" --seed-file="$T/munge/munged.seed" --log-file="$T/log/munged.log" \
    >"$T/log/munged.out" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do [[ -S "$T/munge/munge.sock" ]] && break; sleep 0.1; done
munge --socket="$T/munge/munge.sock" -n | unmunge --socket="$T/munge/munge.sock" >/dev/null || fail "munged does not answer"

echo "== slurm.conf (single node $HOST, $(nproc) CPUs)"
export SLURM_CONF="$T/etc/slurm.conf"
cat >"$SLURM_CONF" <<EOF
ClusterName=foldsweep-check
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$T/munge/munge.sock
CredType=cred/munge
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool/slurmd
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/log/slurmctld.log
SlurmdLogFile=$T/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=3600
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF

echo "== slurmctld, slurmd"
slurmctld -D -c -f "$SLURM_CONF" >"$T/log/slurmctld.out" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.2; done
scontrol ping | grep -q UP || fail "slurmctld did not come up"
slurmd -D -f "$SLURM_CONF" >"$T/log/slurmd.out" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [[ "$(sinfo -h -n "$HOST" -o %t 2>/dev/null)" == idle ]] && break; sleep 0.2; done
sinfo
[[ "$(sinfo -h -n "$HOST" -o %t)" == idle ]] || fail "node $HOST is not idle"

# The sweep runs in its own folder, as a user's would: a copy of $SWEEP with the sample data's
# paths made absolute, and foldsweep slurm's default output folder (sweep-out, not there yet).
W="$T/work"
OUT="$W/sweep-out"
mkdir -p "$W"
sed "s|= \"data/|= \"$REPO/data/|" "$SWEEP" >"$W/sweep.toml"
[[ $(grep -c "\"$REPO/data/" "$W/sweep.toml") == 4 ]] || fail "could not point $W/sweep.toml at $REPO/data/sample"
cd "$W"

echo "== single-machine reference: foldsweep run sweep.toml ($SWEEP)"
start=$SECONDS
"$FOLDSWEEP" run sweep.toml --db "$T/single/results.db" --devices cpu >"$T/log/single.log" 2>&1 || { tail -n 20 "$T/log/single.log"; fail "single-machine run failed"; }
tail -n 1 "$T/log/single.log"
echo "   ($((SECONDS - start)) s)"

echo "== foldsweep slurm sweep.toml --tasks $TASKS"
"$FOLDSWEEP" slurm sweep.toml --tasks "$TASKS"
echo "--- job.sbatch"; cat job.sbatch
echo "--- job.merge.sbatch"; cat job.merge.sbatch

echo "== submit (as printed by foldsweep slurm)"
start=$SECONDS
jid=$(sbatch --parsable job.sbatch)
mid=$(sbatch --parsable --dependency=afterany:$jid job.merge.sbatch)
echo "array job $jid ($TASKS tasks), merge job $mid (afterany:$jid)"
squeue

echo "== wait for the merge job (timeout ${TIMEOUT}s)"
state() { scontrol show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | head -n 1; }
deadline=$((SECONDS + TIMEOUT))
while :; do
    s=$(state "$mid")
    case "$s" in
        COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE) break ;;
    esac
    ((SECONDS < deadline)) || fail "timed out waiting for merge job $mid (state $s)"
    sleep 1
done
echo "   merge job $mid: $s after $((SECONDS - start)) s"

echo "== evidence from slurmctld (scontrol show job)"
fields() { scontrol show job "$1" 2>&1 | tr ' ' '\n' | grep -E "^($2)=" | paste -sd' ' || true; }
for id in $(seq 1 "$TASKS"); do
    fields "${jid}_$id" 'JobId|ArrayJobId|ArrayTaskId|JobState|ExitCode|NodeList|RunTime|StdOut'
done
fields "$mid" 'JobId|JobState|ExitCode|Dependency|NodeList|RunTime|StdOut'
echo "--- output folder $OUT"
ls -l "$OUT" || true
for f in "$OUT"/slurm-*.out; do
    [[ -f "$f" ]] || continue
    echo "--- $(basename "$f") (last line)"
    tail -n 1 "$f"
done

echo "== check: every job went through Slurm and the merged database equals the single-machine run"
bad=0
for id in $(seq 1 "$TASKS"); do
    s=$(state "${jid}_$id")
    [[ "$s" == COMPLETED ]] || { echo "array task ${jid}_$id: $s (want COMPLETED)"; bad=1; }
    grep -q "jobs done, 0 failed" "$OUT/slurm-${jid}_$id.out" 2>/dev/null || { echo "array task ${jid}_$id: no 'jobs done, 0 failed' in its output file"; bad=1; }
done
s=$(state "$mid")
[[ "$s" == COMPLETED ]] || { echo "merge job $mid: $s (want COMPLETED)"; bad=1; }
if [[ ! -f "$OUT/results.db" ]]; then
    echo "slurmd's errors:"; grep -h "error: .*\(Could not\|failed\)" "$T/log/slurmd.log" | grep -v pmix | head -n 10 || true
    fail "no merged database $OUT/results.db"
fi
[[ -f "$OUT/results.db" ]] || fail "no merged database $OUT/results.db"
python3 - "$T/single/results.db" "$OUT/results.db" <<'EOF' || bad=1
import sqlite3, sys
def jobs(path):
    c = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    rows = c.execute("SELECT config_id, fold, status, host FROM jobs").fetchall()
    rmse = dict(((r[0], r[1]), r[2]) for r in c.execute(
        "SELECT j.config_id, j.fold, f.rmse FROM jobs j JOIN fold_results f ON f.job_id = j.id"))
    return rows, rmse
single, single_rmse = jobs(sys.argv[1])
merged, merged_rmse = jobs(sys.argv[2])
want = {(c, f) for c, f, s, _ in single if s == "done"}
got = {(c, f) for c, f, s, _ in merged if s == "done"}
print(f"single machine: {len(single)} jobs, {len(want)} done, {len({c for c, _ in want})} configs")
print(f"merged shards:  {len(merged)} jobs, {len(got)} done, hosts {sorted({h for *_, h in merged})}")
ok = len(single) == len(want) and len(merged) == len(got) and want == got and len(want) > 0
if want != got:
    print(f"only in single: {sorted(want - got)[:10]}")
    print(f"only in merged: {sorted(got - want)[:10]}")
missing = [k for k in got if k not in merged_rmse]
if missing:
    print(f"done jobs without fold results in the merged db: {missing[:10]}")
    ok = False
diff = max((abs(single_rmse[k] - merged_rmse[k]) for k in want & got if k in merged_rmse and k in single_rmse), default=0.0)
print(f"max |fold RMSE difference| single vs merged: {diff:.3g} (informational)")
sys.exit(0 if ok else 1)
EOF
"$FOLDSWEEP" results --db "$OUT/results.db" --top 3

if [[ $bad != 0 ]]; then
    fail "the Slurm run's merged results differ from the single-machine run (see above)"
fi
echo "slurm_check: PASS: $TASKS array tasks + merge on Slurm ($(sinfo -V)) gave the single-machine job set"
