#!/usr/bin/env bash
# Screenshots of the data-quality report in headless Chromium: docs/report-top.png (first
# screen) and docs/report-plots.png (the plots section, reached through its #plots anchor in a
# frame, since --screenshot does not scroll). Usage, from the repository root:
#   .venv/bin/pipeline run --raw ../shared/corpus/transportsdufutur-blog/_posts --out /tmp/archive
#   .venv/bin/pipeline report --out /tmp/archive
#   bash docs/report-screenshots.sh /tmp/archive
set -euo pipefail
out=$(cd "$1" && pwd)
docs=$(cd "$(dirname "$0")" && pwd)
profile=$(mktemp -d)
frame="$out/.report-frame.html"
trap 'rm -rf "$profile" "$frame"' EXIT
printf '<!doctype html><body style="margin:0"><iframe src="report.html#plots" style="width:1280px;height:1300px;border:0;display:block"></iframe>' >"$frame"
shoot() {
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run --allow-file-access-from-files \
    --user-data-dir="$profile" --virtual-time-budget=3000 --window-size=1280,1300 --screenshot="$1" "$2" 2>/dev/null
}
shoot "$docs/report-top.png" "file://$out/report.html"
shoot "$docs/report-plots.png" "file://$frame"
echo "written: $docs/report-top.png $docs/report-plots.png"
