#!/usr/bin/env bash
# System packages the test suite drives for real (headless Chromium for the review app and report
# screenshots; a single-node Slurm cluster). Idempotent. Needs root and apt-get; otherwise it says
# what is missing and the tests that need it skip, saying why.
set -uo pipefail
PKGS=()
add() { PKGS+=("$@"); }
# --- each area adds its packages below (one line each, with why) ---
add chromium chromium-driver        # review app browser tests, report screenshot
add fonts-wqy-microhei              # Chinese glyphs in review-app screenshots (docs/review_app.png)
add slurm-wlm munge                  # a real single-node Slurm cluster for the executor tests (tests/cluster_fixtures.py)
# --- end ---
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && { echo "system deps: all present"; exit 0; }
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "system deps: missing ${missing[*]} (not root or no apt-get): the tests that need them will skip" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1 || true
if apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/soaes-system-deps.log 2>&1; then
  echo "system deps: installed ${missing[*]}"
else
  echo "system deps: apt-get failed for ${missing[*]} (see /tmp/soaes-system-deps.log): dependent tests will skip" >&2
fi
exit 0
