#!/usr/bin/env bash
# Issue 23's benchmark: do prototype features and boosted trees see the shift? On each problem,
# one sweep (5 folds) over model (standard, heteroscedastic, gbdt) x features.prototypes x
# synthetic.ratio, then, picked by the shifted RMSE of the validation probes:
#   - the best MLP config without prototypes,
#   - the best MLP config with prototypes,
#   - the best gbdt config (always with prototypes),
#   - the equal-weight average of those three exports,
#   - and what `export --best` picks over the whole sweep,
# each scored against the problem's shifted test labels (test_scores.csv), with its shifted
# RMSE and the mean seconds per job (train_seconds as stored, and the job's wall time from
# start to finish, process start included).
# Two smaller sweeps (on the sample problem only unless FAMILY_ON_BIG=1): `family` asks whether
# family prototypes or other-family negatives change the picture, `extras` whether the trees
# gain from 16 principal components of the text and the metric embedding as inputs too.
#   scripts/bench_prototypes.sh                     both problems
#   PROBLEMS=sample scripts/bench_prototypes.sh     the 400-record sample only (seconds)
# Settings (environment): PROBLEMS ("sample big"), BIG_TRAIN (5000), BIG_TEST (2000),
# OUT (target/bench_prototypes), BIN (default: target/release/foldsweep, built first),
# JOBS (jobs at once, default 2).
# Problems: `sample` is data/sample (400 training records, 12 metrics in 4 topics);
# `big` is scripts/make_sample_data.py --train BIG_TRAIN --test BIG_TEST (the same kind of
# shifted problem, larger). Prints markdown tables and writes them to $OUT/results.md.
set -euo pipefail
cd "$(dirname "$0")/.."
problems=${PROBLEMS:-sample big}
out=${OUT:-target/bench_prototypes}
bin=${BIN:-target/release/foldsweep}
jobs=${JOBS:-2}
mkdir -p "$out"
[[ -n ${BIN:-} ]] || cargo build --release -q
python3 scripts/make_sample_data.py --out "$out/data_big" --train "${BIG_TRAIN:-5000}" \
    --test "${BIG_TEST:-2000}" >/dev/null

data_dir() {
    case $1 in
        sample) echo data/sample ;;
        big) echo "$out/data_big" ;;
        *) echo "unknown problem $1" >&2; exit 2 ;;
    esac
}

# The sweep file of a problem; $2 is `base` or `family`.
sweep_file() { # problem variant
    local data grid
    data=$(data_dir "$1")
    case $2 in
        base) grid='model = ["standard", "heteroscedastic", "gbdt"]
loss = ["hybrid", "heteroscedastic", "squared_error"]
"features.prototypes" = [false, true]
"synthetic.ratio" = [0.3, 1.0]' ;;
        family) grid='model = ["standard", "gbdt"]
loss = ["hybrid", "squared_error"]
"features.prototype_level" = ["metric", "both"]
"synthetic.other_family" = [false, true]' ;;
        extras) grid='model = ["gbdt"]
loss = ["squared_error"]
"features.prototypes" = [false, true]
"synthetic.ratio" = [0.3, 1.0]' ;;
    esac
    local prototypes=false extras=""
    [[ $2 == family ]] && prototypes=true
    [[ $2 == extras ]] && extras=", text_components = 16, metric_embedding = true"
    cat <<TOML
name = "$1-$2"

[data]
train = "$data/train_data.json"
test = "$data/test_data.json"
metric_names = "$data/metric_names.json"
metric_embeddings = "$data/metric_name_embeddings.npy"

[text]
encoder = "hashing"
dim = 256

[cv]
folds = 5
seed = 42

[train]
hidden_dims = [64, 32]
bilinear_dim = 16
bilinear_rank = 8
dropout = 0.2
batch_size = 32
lr = 3e-3
epochs = 40
patience = 10
seed = 0
weighting = { temperature = 0.5, min_weight = 0.5, max_weight = 8.0, boost_high_scores = true }
synthetic = { ratio = 0.3, score_min = 0, score_max = 3 }
gbdt = { trees = 300, learning_rate = 0.05, max_depth = 4, early_stopping_rounds = 30$extras }

[features]
prototypes = $prototypes

[validation]
probe = { fraction = 0.35, score_min = 0, score_max = 3 }

[grid]
$grid

[resources]
devices = "cpu"
jobs_per_device = $jobs
max_attempts = 1
TOML
}

# Test RMSE of a submission against a problem's shifted labels.
rmse() { # submission.csv test_scores.csv
    paste -d, "$1" "$2" | awk -F, 'NR > 1 {
        if ($1 != $3) { print "ID mismatch at line " NR > "/dev/stderr"; exit 1 }
        d = $2 - $4; s += d * d; n++ } END { printf "%.3f", sqrt(s / n) }'
}

# The selections of a base sweep as lines "label<TAB>config id" (results are best-first by
# the shifted RMSE).
selections() { # results.json
    python3 - "$1" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
done = [r for r in rows if r["folds_done"] == r["folds_total"]]
def first(label, keep):
    for r in done:
        if keep(r["varying"]):
            print(f"{label}\t{r['id']}")
            return
neural = lambda v: v["model"] != "gbdt"
first("MLP, no prototypes", lambda v: neural(v) and v["features.prototypes"] == "false")
first("MLP + prototypes", lambda v: neural(v) and v["features.prototypes"] == "true")
first("gbdt + prototypes", lambda v: v["model"] == "gbdt")
PY
}

# "shifted<TAB>train_seconds<TAB>wall seconds<TAB>label" of a config.
config_facts() { # db results.json config_id
    python3 - "$@" <<'PY'
import json, sqlite3, sys
db, results, config = sys.argv[1:4]
row = next(r for r in json.load(open(results)) if r["id"] == config)
c = sqlite3.connect(db)
train, wall = c.execute(
    "SELECT AVG(f.train_seconds), AVG(j.finished_at - j.started_at) FROM jobs j "
    "JOIN fold_results f ON f.job_id = j.id WHERE j.config_id = ?", (config,)).fetchone()
print(f"{row['shifted_rmse']:.3f}\t{train:.2f}\t{wall:.2f}\t{row['label']}")
PY
}

report="$out/results.md"
: > "$report"
for problem in $problems; do
    data=$(data_dir "$problem")
    db="$out/$problem.db"
    rm -f "$db"
    variants=base
    [[ $problem == sample || -n ${FAMILY_ON_BIG:-} ]] && variants="base family extras"
    for variant in $variants; do
        sweep_file "$problem" "$variant" > "$out/$problem-$variant.toml"
        started=$(date +%s)
        "$bin" run "$out/$problem-$variant.toml" --db "$db" > "$out/$problem-$variant.log" 2>&1
        echo "$problem/$variant: sweep took $(( $(date +%s) - started )) s" >&2
    done
    "$bin" results --db "$db" --sweep "$problem-base" --format json > "$out/$problem-base.json"
    {
        echo "### $problem ($(($(wc -l < "$data/test_scores.csv") - 1)) test records; 5 folds)"
        echo
        echo "| config | test RMSE (shifted labels) | shifted RMSE (probes) | s/job (train) | s/job (wall) | grid values |"
        echo "|---|---|---|---|---|---|"
        files=()
        while IFS=$'\t' read -r label id; do
            "$bin" export --db "$db" --config "$id" --no-round --out "$out/$problem-$id.csv" > /dev/null
            files+=("$out/$problem-$id.csv")
            IFS=$'\t' read -r shifted train wall values < <(config_facts "$db" "$out/$problem-base.json" "$id")
            echo "| $label \`$id\` | $(rmse "$out/$problem-$id.csv" "$data/test_scores.csv") | $shifted | $train | $wall | $values |"
        done < <(selections "$out/$problem-base.json")
        # The equal-weight average of the three exports above.
        paste -d, "${files[@]}" | awk -F, 'NR == 1 { print "ID,score"; next }
            { s = 0; for (i = 2; i <= NF; i += 2) s += $i; printf "%s,%.6f\n", $1, s / (NF / 2) }' \
            > "$out/$problem-mean3.csv"
        echo "| mean of the three | $(rmse "$out/$problem-mean3.csv" "$data/test_scores.csv") | - | - | - | |"
        best=$("$bin" export --db "$db" --sweep "$problem-base" --best --no-round --out "$out/$problem-best.csv" | awk '/^config /{print $2; exit}' | tr -d :)
        echo "| \`export --best\` picks \`$best\` | $(rmse "$out/$problem-best.csv" "$data/test_scores.csv") | | | | |"
        for variant in ${variants#base}; do
            "$bin" results --db "$db" --sweep "$problem-$variant" --format json > "$out/$problem-$variant.json"
            echo
            case $variant in
                family) echo "Family prototypes and other-family negatives ($problem, prototypes on):" ;;
                extras) echo "gbdt with 16 text components and the metric embedding as inputs too ($problem):" ;;
            esac
            echo
            echo "| config | test RMSE | shifted RMSE | grid values |"
            echo "|---|---|---|---|"
            python3 -c 'import json,sys; [print(r["id"]) for r in json.load(open(sys.argv[1]))]' \
                "$out/$problem-$variant.json" | while read -r id; do
                "$bin" export --db "$db" --config "$id" --no-round --out "$out/f.csv" > /dev/null
                IFS=$'\t' read -r shifted _ _ values < <(config_facts "$db" "$out/$problem-$variant.json" "$id")
                echo "| \`$id\` | $(rmse "$out/f.csv" "$data/test_scores.csv") | $shifted | $values |"
            done
        done
        echo
    } | tee -a "$report"
done
echo "written to $report" >&2
