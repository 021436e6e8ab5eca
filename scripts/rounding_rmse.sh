#!/usr/bin/env bash
# Does rounding the exported scores help or hurt on the sample data's shifted test labels?
# Runs sweeps/quick.toml into a scratch database, exports every config's fold ensemble
# with --round and with --no-round, and prints each export's RMSE against
# data/sample/test_scores.csv. Usage: scripts/rounding_rmse.sh [FOLDSWEEP_BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/release/foldsweep}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$bin" run sweeps/quick.toml --db "$work/results.db" --devices cpu > /dev/null

# RMSE of an `ID,score` file against test_scores.csv (same IDs, same order).
rmse() {
    paste -d, "$1" data/sample/test_scores.csv | awk -F, 'NR > 1 {
        if ($1 != $3) { print "ID mismatch at line " NR > "/dev/stderr"; exit 1 }
        d = $2 - $4; s += d * d; n++ } END { printf "%.4f", sqrt(s / n) }'
}

printf '%-14s %-8s %-8s %s\n' config rounded raw "grid values"
"$bin" results --db "$work/results.db" --format csv | tail -n +2 | while IFS=, read -r rank id rest; do
    "$bin" export --db "$work/results.db" --config "$id" --round --out "$work/r.csv" > /dev/null
    "$bin" export --db "$work/results.db" --config "$id" --no-round --out "$work/n.csv" > /dev/null
    label="$("$bin" results --db "$work/results.db" --format json |
        grep -A1 "\"id\": \"$id\"" | sed -n 's/.*"label": "\(.*\)".*/\1/p')"
    printf '%-14s %-8s %-8s %s\n' "$id" "$(rmse "$work/r.csv")" "$(rmse "$work/n.csv")" "$label"
done
