"""Train one fastText model in a child process: ``python -m filters.domain.fasttext_worker ARGS_JSON``.

fastText 0.9.3's training reads heap memory it never initialised: it works while that memory
happens to be zero and aborts with "Encountered NaN" (any seed, any lr > 0) once the heap holds
leftovers — seen on the shared build machine, reproduced with a two-label toy file. A child
process started with glibc's ``MALLOC_MMAP_THRESHOLD_=0`` gets every allocation from fresh,
zeroed pages, which makes training reliable and reproducible (the shipped model is rebuilt
byte-identical this way). Exit code 3 = NaN, so the parent can retry.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

NAN_EXIT = 3


def train_in_child(params: dict, output: Path, timeout: float | None = None) -> None:
    """Raise RuntimeError("Encountered NaN …") or CalledProcessError like fastText would."""
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "0"}
    proc = subprocess.run([sys.executable, "-m", "filters.domain.fasttext_worker",
                           json.dumps({"params": params, "output": str(output)})],
                          env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=str(Path(__file__).resolve().parents[2]))
    if proc.returncode == NAN_EXIT:
        raise RuntimeError(f"Encountered NaN. ({proc.stderr.strip()[-200:]})")
    if proc.returncode != 0:
        raise RuntimeError(f"fastText training failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")


def main(argv: list[str]) -> int:
    import fasttext

    job = json.loads(argv[0])
    p = dict(job["params"])
    quantize = p.pop("quantize", None)
    try:
        m = fasttext.train_supervised(**p)
        if quantize:
            m.quantize(input=p["input"], qnorm=True, retrain=False, cutoff=quantize["cutoff"], thread=p["thread"])
    except RuntimeError as e:
        if "NaN" in str(e):
            print(str(e), file=sys.stderr)
            return NAN_EXIT
        raise
    m.save_model(job["output"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
