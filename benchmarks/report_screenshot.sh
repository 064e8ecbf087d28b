#!/usr/bin/env bash
# Render a `mentor report` page in headless Chromium and save a PNG screenshot.
#
# Usage:
#   benchmarks/report_screenshot.sh REPORT.html OUT.png [WIDTH] [HEIGHT]
#
#   REPORT.html  a page written by `mentor report RUN_DIR [RUN_DIR ...] --out REPORT.html`
#   OUT.png      the screenshot (the top WIDTH x HEIGHT pixels of the page)
#   WIDTH HEIGHT window size in pixels (default 1400 x 3000)
#
# The browser is $CHROMIUM if set, else the first of chromium, chromium-browser,
# google-chrome on PATH (Debian: `apt-get install chromium`). It runs with
#   --headless --disable-gpu --no-sandbox --screenshot=OUT.png --window-size=W,H file://...
# in a throw-away profile, so it needs no display, and at most 120 s.
# The page is self-contained (inline CSS, base64 PNG plots, no scripts), so the browser
# needs no network. tests/unit/test_compare_report.py runs this script when Chromium is
# installed and checks the PNG is not blank; docs/img/report.png was made with it.
# Exit status: 0 on success, 2 on bad arguments or no browser, else the browser's.
set -euo pipefail

if [[ $# -lt 2 || $# -gt 4 ]]; then
    echo "usage: $0 REPORT.html OUT.png [WIDTH] [HEIGHT]" >&2
    exit 2
fi
html=$1
png=$2
width=${3:-1400}
height=${4:-3000}
if [[ ! -f "$html" ]]; then
    echo "error: '$html' does not exist; expected an HTML file written by mentor report" >&2
    exit 2
fi
browser=${CHROMIUM:-}
if [[ -z "$browser" ]]; then
    for name in chromium chromium-browser google-chrome; do
        if command -v "$name" >/dev/null 2>&1; then
            browser=$(command -v "$name")
            break
        fi
    done
fi
if [[ -z "$browser" ]]; then
    echo "error: no Chromium found; install it (apt-get install chromium) or set CHROMIUM" >&2
    exit 2
fi

html_abs=$(cd "$(dirname "$html")" && pwd)/$(basename "$html")
mkdir -p "$(dirname "$png")"
png_abs=$(cd "$(dirname "$png")" && pwd)/$(basename "$png")
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
rm -f "$png_abs"

# Chromium logs harmless D-Bus complaints on machines without a session bus: keep them quiet
timeout 120 "$browser" --headless --disable-gpu --no-sandbox --hide-scrollbars \
    --user-data-dir="$profile" --no-first-run --no-default-browser-check \
    --screenshot="$png_abs" --window-size="$width,$height" "file://$html_abs" \
    >"$profile/chromium.log" 2>&1 || { status=$?; cat "$profile/chromium.log" >&2; exit "$status"; }
if [[ ! -s "$png_abs" ]]; then
    cat "$profile/chromium.log" >&2
    echo "error: Chromium wrote no screenshot to '$png_abs'" >&2
    exit 1
fi
echo "$png_abs"
