#!/usr/bin/env bash
# One-command set-up on a fresh machine (Python 3.11, no GPU): ./setup.sh
# Creates .venv with everything, including the CPU torch wheel and DeepSpeed.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3.11}
$PY -m venv .venv
# This machine's pip.conf lists local mirror folders that hold only some packages; pip warns once per
# missing package. Drop those warnings, keep everything else (errors included).
pip_() {
  .venv/bin/pip "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
  return "${PIPESTATUS[0]}"
}
pip_ install -q --upgrade pip wheel setuptools
# CPU wheel first: an unpinned torch (asked for by us or by any dependency) would pull a multi-GB
# CUDA build. GPU users replace this line with e.g.
#   .venv/bin/pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128
pip_ install -q "torch==2.13.0"
pip_ install -q -e ".[dev]"
# DeepSpeed builds against the installed torch, so it must see it: no build isolation.
pip_ install -q --no-build-isolation "deepspeed==0.19.8"
.venv/bin/soaes --help >/dev/null
echo "set-up done: activate with 'source .venv/bin/activate'"
