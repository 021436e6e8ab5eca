#!/usr/bin/env bash
# Runs sweeps/quick.toml through one foldsweep binary and records what every reading command
# prints (run, results, show, compare, export, report), with timings and temp paths masked, so
# that two builds can be compared byte for byte: a refactor that moves code must not change it.
#   scripts/check_same_output.sh BINARY OUT_DIR        record one build's outputs
#   diff -r OUT_A OUT_B                                 compare two builds
# Training is deterministic on the CPU for a fixed seed, so the numbers match exactly.
set -euo pipefail
if [[ $# -ne 2 ]]; then
    echo "usage: $0 BINARY OUT_DIR" >&2
    exit 2
fi
bin=$(realpath "$1")
out=$(realpath -m "$2")
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
cp -r "$repo/data" "$repo/sweeps" "$work/"
cd "$work"

# Durations, dates and the temp folder vary from run to run; nothing else may.
mask() {
    sed -E -e "s#$work#WORK#g" \
        -e 's/[0-9]+(\.[0-9]+)?(ms|s|m|h)\b/T/g' \
        -e 's/[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9:.]+(Z|[+-][0-9:]+)?/DATE/g' \
        -e 's/pid [0-9]+/pid N/g' -e 's/\[ *T\]/[T]/g'
}
record() {
    local name=$1
    shift
    local rc=0
    "$bin" "$@" >"$out/$name.stdout" 2>"$out/$name.stderr" || rc=$?
    echo "$rc" >"$out/$name.rc"
    for f in "$out/$name.stdout" "$out/$name.stderr"; do
        mask <"$f" >"$f.masked" && mv "$f.masked" "$f"
    done
}

# The progress bar only draws on a terminal; here it is off, so run's output is its log lines.
record run run sweeps/quick.toml --devices cpu --jobs-per-device 1
record results results
record results_csv results --format csv --all
best=$("$bin" results --format csv | sed -n 2p | cut -d, -f2)
record show show "$best"
record compare compare
record export export --best --out submission.csv
cp submission.csv "$out/submission.csv"
record ensemble export --ensemble 5 --out ensemble.csv
cp ensemble.csv "$out/ensemble.csv"
record report report --out report.html
mask <report.html >"$out/report.html"
echo "$out"
