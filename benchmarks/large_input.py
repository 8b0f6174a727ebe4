"""Inputs of any size: `soaes curate extract` over ONE multi-GB JSONL file, peak RSS and throughput.

    nice .venv/bin/python benchmarks/large_input.py --size-gb 3 [--work /tmp/large] [--keep]

Generates a JSONL file of ``--size-gb`` GB in ``--work`` from real statutes (the committed
laws fixture, repeated with distinct ids), checks the free disk first, runs the whole extraction
pipeline (readers → normalise → boilerplate → quality → PII → Qwen2.5 token counts → shards →
manifest) on it in a child process (peak RSS and CPU from the OS's accounting, getrusage; with
--farm-bench under ``farm-bench``, which cuts runs over an hour) and prints one JSON line: input bytes, documents kept and rejected (by reason),
peak RSS, MB/s. The acceptance: peak RSS < 2 GB and no document refused for the file's size.
Everything generated is deleted at the end unless --keep.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
LAWS = REPO / "tests" / "fixtures" / "laws" / "laws_sample.jsonl"


def generate(path: Path, size_bytes: int) -> int:
    """Write real statute records repeated with distinct ids until ``size_bytes``; returns the record count."""
    recs = [json.loads(line) for line in LAWS.read_text(encoding="utf-8").splitlines() if line.strip()]
    n = written = 0
    with path.open("w", encoding="utf-8", buffering=1 << 22) as f:
        while written < size_bytes:
            for r in recs:
                line = json.dumps({**r, "id": f"{r.get('id', 'law')}-{n}"}, ensure_ascii=False) + "\n"
                f.write(line)
                written += len(line.encode("utf-8"))
                n += 1
                if written >= size_bytes:
                    break
    return n


# --light: `curate extract` with the per-document steps switched off (what the acceptance is about is
# the reading path; on a loaded 2-core machine the full chain's ~2.3 MB per CPU-second does not fit)
LIGHT = {"quality": {"enabled": False}, "pii": {"enabled": False}, "tokenizer": None,
         "normalize": {"strip_markup": False, "fullwidth_ascii": False, "remove_control": False,
                       "collapse_whitespace": False}}


def child(inp: Path, out: Path, light: bool = False) -> None:
    """The measured process: the extraction pipeline as `soaes curate extract` runs it."""
    from corpora_manifests.models import load_manifest
    from curation.pipelines.extract import ExtractConfig, run_extract

    cfg = ExtractConfig(inputs=[str(inp)], output=str(out), source="laws_large",
                        executor={"kind": "local", "workers": 1, "tasks": 1}, **(LIGHT if light else {}))
    t0 = time.time()
    run_extract(cfg, command="benchmarks/large_input.py")
    m = load_manifest(out)
    import resource

    # the OS's accounting: peak RSS of this process and of any worker it forked (KiB on Linux)
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"wall_s": round(time.time() - t0, 1), "cpu_s": round(cpu.ru_utime + cpu.ru_stime, 1),
                      "peak_rss_mib": round(peak / 1024, 1), "kept": m.totals.records, "tokens": m.totals.tokens,
                      "shards": m.totals.shards, "rejects": m.stats.get("rejects", {})}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-gb", type=float, default=3.0)
    ap.add_argument("--work", type=Path, default=Path("/tmp/soaes_large_input"))
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--farm-bench", action="store_true", help="measure under farm-bench (runs over 3600 s are cut)")
    ap.add_argument("--light", action="store_true", help="reader → shards only (no quality/PII/normalise/tokens)")
    ap.add_argument("--child", nargs=2, type=Path, metavar=("INPUT", "OUT"))
    a = ap.parse_args()
    if a.child:
        child(*a.child, light=a.light)
        return
    size = int(a.size_gb * 1e9)
    a.work.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(a.work).free
    if free < 2.5 * size:  # input + shards (~1/3 of it) + headroom
        sys.exit(f"not enough disk in {a.work}: {free / 1e9:.1f} GB free, need ~{2.5 * size / 1e9:.1f} GB")
    inp, out, log = a.work / "big.jsonl", a.work / "out", a.work / "child.log"
    try:
        t0 = time.time()
        n = generate(inp, size)
        gen_s = time.time() - t0
        shutil.rmtree(out, ignore_errors=True)
        log.unlink(missing_ok=True)
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(inp), str(out)] + (
            ["--light"] if a.light else [])
        if a.farm_bench:  # whole-process figures from outside (capped at 3600 s by farm-bench)
            fb = subprocess.run(["farm-bench", "-n", "1", "--warmup", "0", "--timeout", "3600", "--",
                                 "sh", "-c", f"exec {' '.join(cmd)} >>{log} 2>&1"],
                                capture_output=True, text=True, cwd=REPO)
            report = fb.stdout + fb.stderr
        else:
            with log.open("w") as lf:
                subprocess.run(cmd, stdout=lf, stderr=subprocess.STDOUT, cwd=REPO, check=False)
            report = ""
        res = json.loads(log.read_text().strip().splitlines()[-1])
        size_rejects = {k: v for st in res["rejects"].values() for k, v in st.items() if "too_large" in k}
        print(json.dumps({"pipeline": "light" if a.light else "full", "input_bytes": inp.stat().st_size, "records": n, "generate_s": round(gen_s, 1), **res,
                          "size_rejects": size_rejects,
                          "mb_per_s_wall": round(inp.stat().st_size / 1e6 / res["wall_s"], 2),
                          "mb_per_cpu_s": round(inp.stat().st_size / 1e6 / res["cpu_s"], 2)}, ensure_ascii=False))
        if report:
            print(report)
    finally:
        if not a.keep:
            shutil.rmtree(a.work, ignore_errors=True)


if __name__ == "__main__":
    main()
