#!/usr/bin/env bash
# Renders a report with a search section and screenshots it with headless Chromium, to look at
# the optimisation history, importance and slice plots as a reader sees them.
#   scripts/check_search_report.sh [OUT.png]      (default target/search_report.png)
# The report comes from the test search_plots::render_with_trials_adds_the_search_section_...
# (a synthetic 60-trial study with pruned and failed trials, log, linear and categorical axes),
# which writes it to $SEARCH_REPORT_OUT; so this needs no sweep run. Needs Chromium, like
# scripts/check_report.sh.
set -euo pipefail

cd "$(dirname "$0")/.."
png=${1:-target/search_report.png}
html=$(realpath -m "${png%.png}.html")
rm -f "$html"
SEARCH_REPORT_OUT=$html cargo test --release --test tests \
    search_plots::render_with_trials_adds_the_search_section -- --quiet >&2
if [[ ! -s $html ]]; then
    echo "$0: the test wrote no report to $html" >&2
    exit 1
fi
scripts/check_report.sh "$html" "$png" 1400,2400
