#!/usr/bin/env bash
# Copy the console's screenshots that docs/console.md shows from the browser tests' output
# into docs/console/, made small (pngquant when installed: apt-get install pngquant).
#
#   CI=true .venv/bin/pytest -q tests/browser     # writes build/screenshots/*.png
#   docs/console/refresh.sh                       # copies the chosen ones here
#
# RSBRIDGE_SCREENSHOTS names another output directory, as it does for the tests.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
from="${RSBRIDGE_SCREENSHOTS:-$here/../../build/screenshots}"
# The pages the docs show (NAME.png at 1280 px; NAME.phone.png at 375 px). A page whose
# screenshot the tests did not make (its test skipped or failed) is left as it was.
chosen=(
    sign-in sign-in.phone overview overview.phone overview-dead
    sessions session dead-letters templates checks configuration audit-log
    sim-rehearsal sim-rehearsal.phone
)
copied=0
for name in "${chosen[@]}"; do
    src="$from/$name.png"
    [ -f "$src" ] || { echo "no $name.png in $from: left as it was" >&2; continue; }
    dst="$here/$name.png"
    if command -v pngquant >/dev/null; then
        # 64 colours are plenty for a flat page and keep each file a few dozen KB.
        pngquant --force --skip-if-larger --strip --speed 1 64 --output "$dst" -- "$src" \
            || cp "$src" "$dst"
    else
        cp "$src" "$dst"
    fi
    copied=$((copied + 1))
done
echo "copied $copied screenshot(s) into $here"
