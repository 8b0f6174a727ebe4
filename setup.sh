#!/usr/bin/env bash
# One-command set-up on a fresh machine (Python 3.11, no GPU): ./setup.sh
# Creates .venv with everything, including the CPU torch wheel and DeepSpeed.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3.11}
$PY -m venv .venv
.venv/bin/pip install -q --upgrade pip wheel setuptools
# CPU wheel first: an unpinned torch (asked for by us or by any dependency) would pull a multi-GB
# CUDA build. GPU users replace this line with e.g.
#   .venv/bin/pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128
.venv/bin/pip install -q "torch==2.13.0"
.venv/bin/pip install -q -e ".[dev]"
# DeepSpeed builds against the installed torch, so it must see it: no build isolation.
.venv/bin/pip install -q --no-build-isolation "deepspeed==0.19.8"
.venv/bin/soaes --help >/dev/null
echo "set-up done: activate with 'source .venv/bin/activate'"
