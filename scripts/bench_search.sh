#!/usr/bin/env bash
# The search benchmark of issues 12 and 19: on one search space per problem, the exhaustive grid,
# random search and TPE without and with each pruner, each with three seeds; for each run the best
# objective found, the compute it used (job-epochs and wall time on this machine) and the trials
# pruned. Strategies: grid, grid-race (the grid with `prune = true`: forgiving racing), random,
# tpe-noprune (TPE alone), tpe (TPE with `prune = true`), tpe-ttest (t-test racing), tpe-asha
# (ASHA alone) and tpe-both (ASHA and forgiving racing).
#   scripts/bench_search.sh                     everything (about six minutes on 2 cores)
#   STRATEGIES=grid scripts/bench_search.sh     the grid only (no [search] section needed)
# Settings (environment): PROBLEMS ("sample synthetic"), STRATEGIES ("grid grid-race random
# tpe-noprune tpe tpe-ttest tpe-asha tpe-both"),
# SEEDS ("0 1 2"), TRIALS (trials of random and tpe, default 12), OUT (target/bench_search),
# BIN (the foldsweep binary; default: target/release/foldsweep, built first).
# Problems: `sample` is data/sample (400 records, 5 folds); `synthetic` is the larger problem of
# scripts/make_search_data.py (3000 records, 4 folds), generated into $OUT/data.
# Each run gets its own database; job-epochs are read from it (python3's sqlite3 module): the
# epochs_run of every job with a result plus the epoch rows of jobs without one (pruned,
# diverged). The objective is the pooled OOF RMSE (no probes), best over complete configs (all
# folds done; a pruned config's partial value does not count). Prints a markdown table and
# writes it to $OUT/results.md. Goal: TPE with pruning within 1% of the grid's best (at most
# 101% of it) using at most 35% of the grid's job-epochs.
set -euo pipefail
cd "$(dirname "$0")/.."
problems=${PROBLEMS:-sample synthetic}
strategies=${STRATEGIES:-grid grid-race random tpe-noprune tpe tpe-ttest tpe-asha tpe-both}
seeds=${SEEDS:-0 1 2}
trials=${TRIALS:-12}
out=${OUT:-target/bench_search}
bin=${BIN:-target/release/foldsweep}
mkdir -p "$out"
[[ -n ${BIN:-} ]] || cargo build --release -q
python3 scripts/make_search_data.py --out "$out/data" >/dev/null

# The data and model sections of a problem's sweep file (lr, hidden_dims and synthetic.ratio
# come from [grid]).
base() { # problem
    local data folds
    case $1 in
        sample) data=data/sample folds=5 ;;
        synthetic) data=$out/data folds=4 ;;
        *) echo "unknown problem $1" >&2; exit 2 ;;
    esac
    cat <<TOML
[data]
train = "$data/train_data.json"
test = "$data/test_data.json"
metric_names = "$data/metric_names.json"
metric_embeddings = "$data/metric_name_embeddings.npy"

[text]
encoder = "hashing"
dim = 256

[cv]
folds = $folds
seed = 42

[train]
model = "standard"
loss = "hybrid"
bilinear_dim = 16
bilinear_rank = 8
dropout = 0.2
batch_size = 32
epochs = 20
patience = 5
seed = 0
weighting = { temperature = 0.5, min_weight = 0.5, max_weight = 8.0, boost_high_scores = true }
synthetic = { ratio = 0.3, score_min = 0, score_max = 3 }

[resources]
devices = "cpu"
jobs_per_device = 2
max_attempts = 1
TOML
}

# The search space: every grid value of lr and synthetic.ratio lies in the ranges that random
# and tpe sample, so the grid's best point is inside their space.
space() { # strategy
    if [[ $1 == grid* ]]; then
        cat <<TOML
[grid]
lr = [3e-4, 1e-3, 3e-3, 1e-2, 3e-2]
hidden_dims = [[32], [128, 64]]
"synthetic.ratio" = [0.0, 0.3, 0.6]
TOML
    else
        cat <<TOML
[grid]
lr = { min = 3e-4, max = 3e-2, log = true }
hidden_dims = [[32], [128, 64]]
"synthetic.ratio" = { min = 0.0, max = 0.6 }
TOML
    fi
}

search() { # strategy seed
    local prune
    case $1 in
        grid) return ;;
        grid-race) printf '[search]\nprune = true\n'
            return ;;
        random) printf '[search]\nstrategy = "random"\ntrials = %s\nseed = %s\n' "$trials" "$2"
            return ;;
        tpe-noprune) prune= ;;
        tpe) prune='prune = true' ;;
        tpe-asha) prune='prune = { epochs = true, folds = false }' ;;
        tpe-both) prune='prune = { epochs = true }' ;;
        tpe-ttest) prune='prune = { race = "ttest" }' ;;
        *) echo "unknown strategy $1" >&2; exit 2 ;;
    esac
    # Five start-up trials (not TPE's default ten): with a dozen trials, ten random ones
    # would leave TPE almost nothing to decide.
    printf '[search]\nstrategy = "tpe"\ntrials = %s\nseed = %s\nstartup_trials = 5\n%s\n' \
        "$trials" "$2" "$prune"
}

# "best job_epochs pruned" of one run's database.
measure() { # db
    "$bin" results --db "$1" --format json >"$1.json"
    python3 - "$1" <<'PY'
import json, sqlite3, sys
db = sys.argv[1]
rows = json.load(open(db + ".json"))
complete = [r["oof_rmse"] for r in rows
            if r["oof_rmse"] is not None and r["folds_done"] == r["folds_total"]]
con = sqlite3.connect(db)
(epochs,) = con.execute(
    "SELECT COALESCE(SUM(COALESCE(f.epochs_run,"
    " (SELECT COUNT(*) FROM epochs e WHERE e.job_id = j.id))), 0)"
    " FROM jobs j LEFT JOIN fold_results f ON f.job_id = j.id").fetchone()
(pruned,) = con.execute(
    "SELECT COUNT(DISTINCT config_id) FROM jobs WHERE status = 'pruned'").fetchone()
print(min(complete) if complete else "nan", epochs, pruned)
PY
}

runs=$out/runs.tsv
: >"$runs"
for problem in $problems; do
    for strategy in $strategies; do
        # The grid has no seed: one run.
        run_seeds=$seeds
        [[ $strategy == grid* ]] && run_seeds=-
        for seed in $run_seeds; do
            name=$problem-$strategy${seed#-}
            [[ $seed == - ]] && name=$problem-$strategy
            sweep=$out/$name.toml db=$out/$name.db
            { echo "name = \"bench-$name\""; echo; base "$problem"; echo; space "$strategy"; echo
              search "$strategy" "$seed"; } >"$sweep"
            rm -f "$db" "$db"-* && rm -rf "$out/checkpoints"
            echo "== $name" >&2
            start=$(date +%s.%N)
            "$bin" run "$sweep" --db "$db" >"$out/$name.log" 2>&1 || {
                echo "$name failed (exit $?); see $out/$name.log" >&2; tail -5 "$out/$name.log" >&2
                exit 1; }
            wall=$(python3 -c "print(f'{$(date +%s.%N) - $start:.0f}')")
            read -r best epochs pruned < <(measure "$db")
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$problem" "$strategy" "$seed" "$best" \
                "$epochs" "$wall" "$pruned" | tee -a "$runs" >&2
        done
    done
done

# The table, relative to each problem's grid run.
python3 - "$runs" <<'PY' | tee "$out/results.md"
import sys
runs = [line.rstrip("\n").split("\t") for line in open(sys.argv[1]) if line.strip()]
grid = {r[0]: (float(r[3]), int(r[4])) for r in runs if r[1] == "grid"}
print("| problem | strategy | seed | best objective | % of grid best | job-epochs "
      "| % of grid job-epochs | wall s | trials pruned |")
print("|---|---|---|---|---|---|---|---|---|")
for problem, strategy, seed, best, epochs, wall, pruned in runs:
    best, epochs = float(best), int(epochs)
    g = grid.get(problem)
    pct_best = f"{100 * best / g[0]:.1f}" if g else "-"
    pct_epochs = f"{100 * epochs / g[1]:.0f}" if g and g[1] else "-"
    print(f"| {problem} | {strategy} | {seed} | {best:.4f} | {pct_best} | {epochs} "
          f"| {pct_epochs} | {wall} | {pruned} |")
PY
