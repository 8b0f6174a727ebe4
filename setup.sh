#!/usr/bin/env bash
# One-command set-up on a fresh machine (Python 3.11, no GPU): ./setup.sh (make demo / make test
# call it on first use). Creates .venv with exactly the versions the suite passed with:
# constraints.txt is the full lock (pip freeze); upgrading is a deliberate commit that re-runs it.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3.11}
[ -x .venv/bin/python ] || $PY -m venv .venv
# This machine's pip.conf lists local mirror folders that hold only some packages; pip warns once per
# missing package. Drop those warnings, keep everything else (errors included).
pip_() {
  .venv/bin/pip "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
  return "${PIPESTATUS[0]}"
}
pip_ install -q "pip==26.3" "wheel==0.48.0" "setuptools==84.2.1"
# CPU wheel first: an unpinned torch (asked for by us or by any dependency) would pull a multi-GB
# CUDA build. GPU users replace this line with e.g.
#   .venv/bin/pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128
pip_ install -q -c constraints.txt "torch==2.13.0"
pip_ install -q -c constraints.txt -e ".[dev]"
# DeepSpeed builds against the installed torch, so it must see it: no build isolation.
pip_ install -q -c constraints.txt --no-build-isolation "deepspeed==0.19.8"
# The lock must cover everything installed: a package missing from constraints.txt would float.
.venv/bin/python scripts/check_lock.py constraints.txt
bash scripts/system_deps.sh
.venv/bin/soaes --help >/dev/null
echo "set-up done: activate with 'source .venv/bin/activate'"
