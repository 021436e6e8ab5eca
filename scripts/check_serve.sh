#!/usr/bin/env bash
# Screenshots `foldsweep serve`'s sweep page in headless Chromium while a sweep runs, at
# desktop and phone width, to look at what a reader sees.
#   scripts/check_serve.sh OUT.png        (also writes OUT-phone.png)
# Needs target/release/foldsweep, curl and Chromium (Debian: apt-get install -y chromium).
# Everything stays on 127.0.0.1; Chromium's flags keep it off the network and away from the
# user's own profile (as in check_report.sh).
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 OUT.png" >&2
    exit 2
fi
png=$(realpath -m "$1")
phone=${png%.png}-phone.png

browser=""
for candidate in chromium chromium-browser google-chrome; do
    if command -v "$candidate" >/dev/null; then
        browser=$candidate
        break
    fi
done
if [[ -z $browser ]]; then
    echo "$0: no Chromium found (apt-get install -y chromium)" >&2
    exit 2
fi

source "$(dirname "$0")/serve_fixture.sh"

# Wait until some jobs are done (so the table and charts have something) but not all.
for _ in $(seq 1200); do
    done_jobs=$(progress_field done)
    [[ ${done_jobs:-0} -ge 6 ]] && break
    sleep 0.1
done

shoot() { # URL SIZE OUT
    "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$work/profile" --window-size="$2" --hide-scrollbars \
        --screenshot="$3" "$1" 2>>"$work/chromium.log" || {
        cat "$work/chromium.log" >&2
        exit 1
    }
    [[ -s $3 ]] || { echo "$0: Chromium wrote no screenshot" >&2; exit 1; }
}
# The printed link's token: serve sets its cookie and redirects to the page.
shoot "http://127.0.0.1:$port/sweeps/live?token=$token" 1400,3200 "$png"
shoot "http://127.0.0.1:$port/sweeps/live?token=$token" 390,2400 "$phone"
echo "while the sweep ran: $(progress_field done) done, $(progress_field running) running, $(progress_field left) left"
echo "$png"
echo "$phone"
