"""How time, memory and disk grow with the input: the whole `soaes curate run` (and `soaes filters
run` on instruction data) at several multiples of the real law corpus, next to datatrove's stock
pipeline on the same input with the same executor, projected to the paper's 25 B characters.

    nice .venv/bin/python benchmarks/scale.py [--factors 1 4 16] [--peer-factors 1 4 16]
                                              [--filters-factors 1 4 16] [--work /tmp/soaes-bench-scale]

Input at factor k: laws.jsonl (20 M characters; ids made unique per line) plus k-1 perturbed copies of
every law (character edits at rates 0.1 %–10 % and sometimes a moved paragraph — benchmarks/dedup.py's
``perturb``): near- but not exact duplicates, so dedup has real work at every size. The files hold
~5 M characters each (4 per 1x), and the executor runs one task per file with ONE worker: a task's
size does not change with k, so a growing peak RSS means memory that grows with the whole input.

Every run is a fresh child process. The child times each stage (one datatrove executor run) with
getrusage (CPU, its own and its children's), resets the kernel's peak-RSS mark before the stage
(``/proc/self/clear_refs`` 5) and reads VmHWM after it, and measures the output directory's growth.
The finishing step (manifest, report) is the stage ``finalize``.

Peer (datatrove 0.10.1, stock steps, language ``zho_Hani`` = spaCy + jieba words): JsonlReader →
GopherRepetitionFilter → GopherQualityFilter → C4QualityFilter → JsonlWriter, then its MinHash dedup
in 4 stages (signature, buckets, cluster, filter + JsonlWriter), as benchmarks/dedup.py runs it. The
quality filters' English-only thresholds (stop words, average word length >= 3, terminal "." "!" "?",
3 whitespace-separated words per line)
are switched off, or they would drop every Chinese document and the dedup would have nothing to do;
every word-level check still runs. No token counting in the peer (datatrove counts none by default).

Projection to 25 B characters: the CPU time is fitted as a * chars^b over the factors run (b is the
growth exponent; least squares in log-log) and extrapolated with the fitted b, or b = 1 when b < 1;
peak RSS per worker is the largest measured (tasks keep their size: a bigger corpus is more tasks);
disk is output bytes per input character, times 25 B.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
SHARED = REPO.parent / "shared" / "data"
LAWS = SHARED / "lawrefbook_laws" / "laws.jsonl"
INSTRUCTIONS = [SHARED / "alpaca_zh_carbonz0" / "data.jsonl", SHARED / "sharegpt_zh_1k" / "data.jsonl"]
TARGET_CHARS = 25e9
CHARS_PER_FILE = 5_000_000


# ----------------------------------------------------------------------------- inputs
def make_laws_input(factor: int, dst: Path) -> dict:
    from dedup import RATES, perturb

    if (dst / "input.json").exists():
        return json.loads((dst / "input.json").read_text())
    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir(parents=True)
    docs = []
    with open(LAWS, encoding="utf-8") as f:
        for i, line in enumerate(f):
            if line.strip():
                d = json.loads(line)
                docs.append({"id": f"L{i:05d}", "text": d["text"], "date": d.get("version_date")})
    rng = random.Random(1234 + factor)
    total = sum(len(d["text"]) for d in docs) * factor
    n_files = max(1, round(total / CHARS_PER_FILE))
    files = [open(dst / f"part-{i:03d}.jsonl", "w", encoding="utf-8") for i in range(n_files)]
    n = chars = 0
    for copy in range(factor):
        for d in docs:
            text = d["text"] if copy == 0 else perturb(d["text"], rng.choice(RATES), rng)
            row = {"id": d["id"] if copy == 0 else f"{d['id']}~{copy}", "text": text, "date": d["date"]}
            files[n % n_files].write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
            chars += len(text)
    for f in files:
        f.close()
    info = {"documents": n, "chars": chars, "files": n_files, "bytes": sum(p.stat().st_size for p in dst.glob("*.jsonl"))}
    (dst / "input.json").write_text(json.dumps(info))
    return info


def make_instructions_input(factor: int, dst: Path) -> dict:
    """Alpaca-zh + ShareGPT-zh (Alpaca keys instruction/response, ShareGPT conversations), k copies
    with every text field perturbed in the copies."""
    from dedup import RATES, perturb

    if (dst / "input.json").exists():
        return json.loads((dst / "input.json").read_text())
    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir(parents=True)
    rows = []
    for p in INSTRUCTIONS:
        with open(p, encoding="utf-8") as f:
            rows += [json.loads(line) for line in f if line.strip()]
    rng = random.Random(99 + factor)

    def pert(obj, rate):
        if isinstance(obj, str):
            return perturb(obj, rate, rng) if len(obj) > 20 else obj
        if isinstance(obj, list):
            return [pert(x, rate) for x in obj]
        if isinstance(obj, dict):
            return {k: (v if k in ("id", "source", "lang", "from", "role") else pert(v, rate)) for k, v in obj.items()}
        return obj

    chars = sum(len(json.dumps(r, ensure_ascii=False)) for r in rows) * factor
    n_files = max(1, round(chars / CHARS_PER_FILE))
    files = [open(dst / f"part-{i:03d}.jsonl", "w", encoding="utf-8") for i in range(n_files)]
    n = 0
    for copy in range(factor):
        for i, r in enumerate(rows):
            out = r if copy == 0 else pert(r, rng.choice(RATES))
            out = {**out, "id": f"{r.get('id', i)}~{copy}"}
            files[n % n_files].write(json.dumps(out, ensure_ascii=False) + "\n")
            n += 1
    for f in files:
        f.close()
    info = {"documents": n, "chars": chars, "files": n_files, "bytes": sum(p.stat().st_size for p in dst.glob("*.jsonl"))}
    (dst / "input.json").write_text(json.dumps(info))
    return info


# ----------------------------------------------------------------------------- measuring (child)
def _hwm_kb() -> int:
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))


def _reset_hwm() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _cpu() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


class Meter:
    def __init__(self, out: Path):
        self.out = out
        self.stages: list[dict] = []

    def measure(self, name: str, fn):
        _reset_hwm()
        d0, c0, w0 = _du(self.out), _cpu(), time.perf_counter()
        result = fn()
        self.stages.append({"stage": name, "wall_s": time.perf_counter() - w0, "cpu_s": _cpu() - c0,
                            "peak_rss_mb": _hwm_kb() / 1024, "output_bytes": _du(self.out) - d0})
        return result


def child_ours_curate(inp: Path, out: Path, tasks: int, meter: Meter) -> dict:
    import corpora_manifests.executor as executor
    from curation.pipelines.run import run_curate

    build = executor.build_executor

    def timed_build(cfg, pipeline, logdir, tasks, name=None, **kw):
        ex = build(cfg, pipeline, logdir, tasks=tasks, name=name, **kw)
        run = ex.run
        ex.run = lambda: meter.measure(name or Path(logdir).name, run)
        return ex

    executor.build_executor = timed_build  # instrumentation only: the real executor runs every stage
    import corpora_manifests.executor as ex_mod

    orig_run_stages = ex_mod.run_stages

    def run_stages(stages, cfg, out_, logs_root, finalize=None):
        fin = (lambda: meter.measure("finalize", finalize)) if finalize else None
        return orig_run_stages(stages, cfg, out_, logs_root, finalize=fin)

    import curation.dedup.stages as st
    st.run_stages = run_stages
    run_curate({"name": "scale", "inputs": [str(inp)], "output": str(out), "tokenizer": "qwen2.5",
                "executor": {"kind": "local", "workers": 1, "tasks": tasks}, "report": True})
    m = json.loads((out / "manifest.json").read_text())
    return {"kept_documents": m["totals"]["records"], "kept_tokens": m["totals"].get("tokens"),
            "shards_bytes": _du(out / "data")}


def child_ours_filters(inp: Path, out: Path, tasks: int, meter: Meter) -> dict:
    import corpora_manifests.executor as executor
    from filters.pipeline import run_filters

    build = executor.build_executor

    def timed_build(cfg, pipeline, logdir, tasks, name=None, **kw):
        ex = build(cfg, pipeline, logdir, tasks=tasks, name=name, **kw)
        run = ex.run
        ex.run = lambda: meter.measure(name or Path(logdir).name, run)
        return ex

    executor.build_executor = timed_build
    inputs = [{"path": str(p), "source": "alpaca_sharegpt_zh"} for p in sorted(inp.glob("*.jsonl"))]
    t0 = len(meter.stages)
    c0, w0 = _cpu(), time.perf_counter()
    _reset_hwm()
    from filters.config import FiltersConfig

    run_filters(FiltersConfig.model_validate({"name": "scale_filters", "output": str(out), "inputs": inputs, "tokenizer": "qwen2.5",
                 "decontam": {"eval_sets": [
                     {"name": "lawbench", "path": str(REPO / "tests/fixtures/eval/lawbench_sample.jsonl")},
                     {"name": "disc_law_eval", "path": str(REPO / "tests/fixtures/eval/disc_law_eval_sample.jsonl")}]},
                 "executor": {"kind": "local", "workers": 1, "tasks": tasks}}))
    staged = sum(s["cpu_s"] for s in meter.stages[t0:])
    meter.stages.append({"stage": "outside stages (readers, summary, manifest)", "wall_s": None,
                         "cpu_s": _cpu() - c0 - staged, "peak_rss_mb": _hwm_kb() / 1024, "output_bytes": None})
    m = json.loads((out / "manifest.json").read_text())
    return {"kept_documents": m["totals"]["records"], "kept_tokens": m["totals"].get("tokens"),
            "shards_bytes": _du(out / "data"), "wall_total_s": time.perf_counter() - w0}


def child_peer(inp: Path, out: Path, tasks: int, meter: Meter) -> dict:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import MinhashDedupCluster, MinhashDedupFilter, MinhashDedupSignature
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupBuckets
    from datatrove.pipeline.filters import C4QualityFilter, GopherQualityFilter, GopherRepetitionFilter
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    from datatrove.utils.word_tokenizers import WordTokenizer

    # datatrove 0.10.1 shares one word tokenizer per language (lru_cache) and its one-worker local
    # executor deep-copies each task's pipeline: once the first task has loaded spaCy into the shared
    # tokenizer, the next copy fails ("cannot pickle 'module' object"). Let copies share it (read-only).
    WordTokenizer.__deepcopy__ = lambda self, memo: self
    lang = "zho_Hani"
    cfg = MinhashConfig()
    logs = out / "logs"

    # Every executor is built before any runs: a step built after spaCy/jieba were loaded in this
    # process holds them and cannot be deep-copied by the executor (as benchmarks/dedup.py does it).
    stages = []

    def stage(name, pipeline, n):
        stages.append((name, LocalPipelineExecutor(pipeline, tasks=n, workers=1, logging_dir=str(logs / name))))

    staged = out / "filtered"
    stage("quality", [JsonlReader(str(inp), glob_pattern="*.jsonl"),
                      GopherRepetitionFilter(language=lang),
                      GopherQualityFilter(language=lang, min_avg_word_length=None, max_avg_word_length=None,
                                          min_stop_words=None),
                      C4QualityFilter(language=lang, filter_no_terminal_punct=False, min_words_per_line=-1),
                      JsonlWriter(str(staged))], tasks)
    stage("signature", [JsonlReader(str(staged)), MinhashDedupSignature(str(out / "sigs"), config=cfg, language=lang)],
          tasks)
    stage("buckets", [MinhashDedupBuckets(str(out / "sigs"), str(out / "buckets"), config=cfg)], cfg.num_buckets)
    stage("cluster", [MinhashDedupCluster(str(out / "buckets"), str(out / "remove"), config=cfg)], 1)
    stage("filter", [JsonlReader(str(staged)), MinhashDedupFilter(str(out / "remove")),
                     JsonlWriter(str(out / "kept"))], tasks)
    for name, ex in stages:
        meter.measure(name, ex.run)
    kept = 0
    import gzip

    for f in (out / "kept").glob("*.jsonl.gz"):
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            kept += sum(1 for _ in fh)
    filtered = 0
    for f in staged.glob("*.jsonl.gz"):
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            filtered += sum(1 for _ in fh)
    return {"after_quality_documents": filtered, "kept_documents": kept, "shards_bytes": _du(out / "kept")}


CHILDREN = {"ours": child_ours_curate, "peer": child_peer, "filters": child_ours_filters}


def run_child(kind: str, inp: Path, out: Path, tasks: int) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    report = Path(f"{out}.measure.json")
    report.unlink(missing_ok=True)
    cmd = [sys.executable, __file__, "--child", kind, "--input", str(inp), "--out", str(out), "--tasks", str(tasks)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(f"{out}.log", "w"),
                            env={**os.environ, "SOAES_NO_PROGRESS": "1"})
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise RuntimeError(f"{kind} run failed; see {out}.log")
    r = json.loads(report.read_text())
    r["wall_s"] = time.perf_counter() - t0
    r["cpu_s"] = usage.ru_utime + usage.ru_stime
    r["peak_rss_mb"] = max(s["peak_rss_mb"] for s in r["stages"])
    return r


# ----------------------------------------------------------------------------- fitting, projecting
def fit_exponent(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least squares of log y = log a + b log x: (a, b)."""
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    sxx = sum((x - mx) ** 2 for x in lx)
    b = sum((x - mx) * (y - my) for x, y in zip(lx, ly)) / sxx if sxx else 1.0
    return math.exp(my - b * mx), b


def project(runs: list[dict]) -> dict:
    runs = sorted(runs, key=lambda r: r["chars"])
    chars = [r["chars"] for r in runs]
    out: dict = {"factors": [r["factor"] for r in runs]}
    if len(runs) >= 2:
        _, b_cpu = fit_exponent(chars, [r["cpu_s"] for r in runs])
        _, b_wall = fit_exponent(chars, [r["wall_s"] for r in runs])
        out.update(cpu_exponent=b_cpu, wall_exponent=b_wall,
                   rss_ratio_largest_to_smallest=runs[-1]["peak_rss_mb"] / runs[0]["peak_rss_mb"])
    else:
        b_cpu = 1.0
    big = runs[-1]
    b = max(1.0, b_cpu)
    out["core_hours_25B"] = big["cpu_s"] * (TARGET_CHARS / big["chars"]) ** b / 3600
    out["core_hours_25B_linear"] = big["cpu_s"] * (TARGET_CHARS / big["chars"]) / 3600
    out["peak_rss_per_worker_mb"] = max(r["peak_rss_mb"] for r in runs)
    out["output_disk_25B_gb"] = big["shards_bytes"] / big["chars"] * TARGET_CHARS / 1e9
    out["disk_with_intermediates_25B_gb"] = big["disk_bytes_end"] / big["chars"] * TARGET_CHARS / 1e9
    out["chars_per_cpu_s"] = big["chars"] / big["cpu_s"]
    return out


# ----------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--factors", type=int, nargs="*", default=[1, 4, 16])
    ap.add_argument("--peer-factors", type=int, nargs="*", default=[1, 4, 16])
    ap.add_argument("--filters-factors", type=int, nargs="*", default=[1, 4, 16])
    ap.add_argument("--work", type=Path, default=Path("/tmp/soaes-bench-scale"))
    ap.add_argument("--report", type=Path, help="default: WORK/report.json (kept and extended across calls)")
    ap.add_argument("--child", choices=sorted(CHILDREN))
    ap.add_argument("--input", type=Path)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--tasks", type=int, default=1)
    a = ap.parse_args()

    if a.child:
        meter = Meter(a.out)
        a.out.mkdir(parents=True, exist_ok=True)
        extra = CHILDREN[a.child](a.input, a.out, a.tasks, meter)
        Path(f"{a.out}.measure.json").write_text(json.dumps({"stages": meter.stages, **extra}))
        return

    if not LAWS.exists():
        sys.exit(f"benchmark data not found: {LAWS} (needs ../shared/data)")
    a.work.mkdir(parents=True, exist_ok=True)
    report_path = a.report or a.work / "report.json"
    machine = (f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, "
               f"load average at start {os.getloadavg()[0]:.1f}")

    def save(key: str, run: dict) -> dict:
        """Add one run to the report (shared by concurrent invocations: read-modify-write under a lock)."""
        import fcntl

        with open(f"{report_path}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            report = json.loads(report_path.read_text()) if report_path.exists() else {"runs": {}}
            report.setdefault("machines", {})[machine] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
            report["runs"][key] = run
            for k in ("ours", "peer", "filters"):
                rs = [v for name, v in report["runs"].items() if name.startswith(k + "_x")]
                if rs:
                    report.setdefault("projection", {})[k] = project(rs)
            proj = report.get("projection", {})
            if "ours" in proj and "peer" in proj:
                report["core_hours_ratio_ours_to_peer"] = proj["ours"]["core_hours_25B"] / proj["peer"]["core_hours_25B"]
            report_path.write_text(json.dumps(report, indent=2))
            return report

    plan = [("ours", f, "laws") for f in a.factors] + [("peer", f, "laws") for f in a.peer_factors] + \
           [("filters", f, "instructions") for f in a.filters_factors]
    # smallest first, alternating tools, so whatever finishes in the time there is covers every tool
    plan.sort(key=lambda p: (p[1], p[0]))
    for kind, factor, data in plan:
        inp = a.work / f"{data}_x{factor}"
        info = make_laws_input(factor, inp) if data == "laws" else make_instructions_input(factor, inp)
        print(f"== {kind} x{factor}: {info['documents']} documents, {info['chars'] / 1e6:.0f} M chars, "
              f"{info['files']} files", flush=True)
        out = a.work / f"{kind}_x{factor}"
        r = run_child(kind, inp, out, tasks=info["files"])
        r["disk_bytes_end"] = _du(out)  # outputs + intermediates (dedup work files) left at the end
        r.update(factor=factor, chars=info["chars"], documents=info["documents"], input_bytes=info["bytes"],
                 load_average=os.getloadavg()[0])
        for s in r["stages"]:
            s["chars_per_cpu_s"] = info["chars"] / s["cpu_s"] if s["cpu_s"] else None
        save(f"{kind}_x{factor}", r)
        print(f"   {r['wall_s']:.0f} s wall, {r['cpu_s']:.0f} CPU-s, {info['chars'] / r['cpu_s'] / 1e6:.2f} M chars/CPU-s, "
              f"peak RSS {r['peak_rss_mb']:.0f} MB, kept {r['kept_documents']}", flush=True)
        for s in r["stages"]:
            print(f"   {s['stage']:>12s}: " + ", ".join(
                f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in s.items() if k != "stage"), flush=True)
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    print(json.dumps(report.get("projection", {}), indent=2))
    print(f"report: {report_path}")


if __name__ == "__main__":
    main()
