#!/usr/bin/env bash
# Screenshots a foldsweep HTML report with headless Chromium, to look at what a reader sees.
#   scripts/check_report.sh REPORT.html OUT.png [WIDTH,HEIGHT]
# Needs Chromium (Debian: apt-get install -y chromium). The flags keep Chromium off the network
# (the report must not need it) and away from the user's own profile.
set -euo pipefail

if [[ $# -lt 2 || $# -gt 3 ]]; then
    echo "usage: $0 REPORT.html OUT.png [WIDTH,HEIGHT]" >&2
    exit 2
fi
html=$1
png=$2
size=${3:-1400,3000}
if [[ ! -f $html ]]; then
    echo "$0: no such file: $html" >&2
    exit 2
fi

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

abs_html=$(realpath "$html")
abs_png=$(realpath -m "$png")
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT

"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --window-size="$size" \
    --screenshot="$abs_png" "file://$abs_html" 2>"$profile/chromium.log" || {
    cat "$profile/chromium.log" >&2
    exit 1
}
if [[ ! -s $abs_png ]]; then
    cat "$profile/chromium.log" >&2
    echo "$0: Chromium wrote no screenshot" >&2
    exit 1
fi
echo "$abs_png"
