"""Near-dedup benchmark: ours (curation.dedup) vs datatrove's stock 4-stage MinHash, same run.

    .venv/bin/python benchmarks/dedup.py [--data ../shared/data/lawrefbook_laws/laws.jsonl]
                                         [--factor 10] [--repeats 3] [--skip-peer-enlarged]

Measures, on laws.jsonl and on a generated FACTOR x enlarged copy with perturbed duplicates
(deterministic seed, written under the work dir, never committed):

- signature throughput, characters per CPU-second of one process (median of --repeats), on the
  same in-memory documents for both tools;
- end-to-end dedup wall time (signature → buckets → cluster → filter, kept documents written),
  each run in a fresh subprocess, whose peak RSS is read with os.wait4;
- pairwise precision / recall / F1 of the predicted clusters against ground truth.

Ground truth: candidate pairs from a low-threshold LSH (rensa, 128 hashes, 32 bands x 4 rows, S-curve
midpoint ~0.42, a seed different from ours) over raw-text character 5-grams, each verified with the
exact 5-gram Jaccard. Pairs with J >= 0.8 are edges; the true clusters are their connected
components. Scored pairs are all pairs inside a predicted (resp. true) cluster; a predicted pair
outside the true clusters whose exact J lies in [0.7, 0.8) is ignored (neither right nor wrong).
datatrove runs with language ``zho_Hani`` (its key for Chinese: spaCy + jieba word 5-grams).
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DEFAULT_DATA = REPO.parent / "shared" / "data" / "lawrefbook_laws" / "laws.jsonl"
GT_LOW, GT_HIGH = 0.7, 0.8


# ----------------------------------------------------------------------------- data
def load_docs(path: Path) -> list[dict]:
    docs = []
    for p in sorted(path.glob("*.jsonl")) if path.is_dir() else [path]:
        with open(p, encoding="utf-8") as f:
            docs.extend(json.loads(line) for line in f if line.strip())
    return docs


def perturb(text: str, rate: float, rng: random.Random) -> str:
    """Substitute / insert / delete characters at ``rate`` and sometimes drop or move a paragraph."""
    chars = list(text)
    alphabet = chars[: 2000] or ["的"]
    out = []
    for c in chars:
        r = rng.random()
        if r < rate / 3:
            out.append(rng.choice(alphabet))
        elif r < 2 * rate / 3:
            out.append(c)
            out.append(rng.choice(alphabet))
        elif r < rate:
            continue
        else:
            out.append(c)
    t = "".join(out)
    paras = t.split("\n\n")
    if len(paras) > 4 and rng.random() < 0.3:
        i, j = rng.randrange(len(paras)), rng.randrange(len(paras))
        paras.insert(j, paras.pop(i))
    return "\n\n".join(paras)


RATES = [0.001, 0.003, 0.006, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1]


def make_enlarged(docs: list[dict], factor: int, dst: Path, shards: int, seed: int = 1234) -> None:
    """Each document + (factor - 1) perturbed copies, edit rates spanning the 0.8 Jaccard boundary."""
    rng = random.Random(seed)
    dst.mkdir(parents=True, exist_ok=True)
    files = [open(dst / f"part-{i:02d}.jsonl", "w", encoding="utf-8") for i in range(shards)]
    n = 0
    for d in docs:
        rows = [{"id": d["id"], "text": d["text"], "date": d.get("date")}]
        for k in range(1, factor):
            rows.append({"id": f"{d['id']}~{k}", "text": perturb(d["text"], rng.choice(RATES), rng),
                         "date": d.get("date")})
        for r in rows:
            files[n % shards].write(json.dumps(r, ensure_ascii=False) + "\n")
            n += 1
    for f in files:
        f.close()


# ----------------------------------------------------------------------------- ground truth
def raw_gram_sets(texts: list[str], n: int = 5):
    import numpy as np

    k = np.array([0x2545F4914F6CDD1D, 0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                  0x27D4EB2F165667C5], dtype=np.uint64)
    out = []
    for t in texts:
        a = np.frombuffer(t.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
        L = len(a) - n + 1
        if L <= 0:
            out.append(np.empty(0, np.uint64))
            continue
        with np.errstate(over="ignore"):
            h = a[:L] * k[0]
            for j in range(1, n):
                h = (h ^ (a[j:j + L] * k[j])) * k[1]
                h ^= h >> np.uint64(29)
        out.append(np.unique(h))
    return out


def exact_jaccard(a, b) -> float:
    import numpy as np

    if len(a) == 0 and len(b) == 0:
        return 1.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)


def ground_truth(docs: list[dict]):
    """({(i, j): J} for candidate pairs with J >= 0.7, gram sets)."""
    import numpy as np
    import rensa

    sets = raw_gram_sets([d["text"] for d in docs])
    nonempty = [i for i, s in enumerate(sets) if len(s)]
    offs = np.zeros(len(nonempty) + 1, np.uint64)
    np.cumsum([len(sets[i]) for i in nonempty], out=offs[1:])
    sig = np.asarray(rensa.RMinHash.digest_matrix_from_flat_token_hashes(
        np.concatenate([sets[i] for i in nonempty]), offs, 128, 987654).to_rows(), dtype=np.uint32)
    cands = set()
    for b in range(32):
        band = sig[:, b * 4:(b + 1) * 4]
        keys = band.view(np.dtype((np.void, 16))).ravel()
        order = np.argsort(keys, kind="stable")
        ks = keys[order]
        start = 0
        for e in range(1, len(ks) + 1):
            if e == len(ks) or ks[e] != ks[start]:
                if e - start > 1:
                    members = sorted(nonempty[order[x]] for x in range(start, e))
                    cands.update(itertools.combinations(members, 2))
                start = e
    # identical texts too short for a 5-gram are duplicates as well
    by_text: dict[str, list[int]] = {}
    for i, s in enumerate(sets):
        if len(s) == 0:
            by_text.setdefault(docs[i]["text"], []).append(i)
    for members in by_text.values():
        cands.update(itertools.combinations(members, 2))
    pairs = {}
    for i, j in cands:
        jac = exact_jaccard(sets[i], sets[j]) if len(sets[i]) else 1.0
        if jac >= GT_LOW:
            pairs[(i, j)] = jac
    return pairs, sets, len(cands)


def cached_ground_truth(docs: list[dict], work: Path):
    """ground_truth(), cached in the work dir by a hash of the documents (the 10x set takes minutes)."""
    import hashlib
    import pickle

    h = hashlib.sha256()
    for d in docs:
        h.update(d["id"].encode() + b"\0" + d["text"].encode() + b"\1")
    cache = work / f"gt-{h.hexdigest()[:16]}.pkl"
    if cache.exists():
        gt, n_cand = pickle.loads(cache.read_bytes())
        return gt, raw_gram_sets([d["text"] for d in docs]), n_cand
    gt, sets, n_cand = ground_truth(docs)
    cache.write_bytes(pickle.dumps((gt, n_cand)))
    return gt, sets, n_cand


def components(n: int, edges) -> list[list[int]]:
    parent = list(range(n))

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, j in edges:
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    return [g for g in groups.values() if len(g) > 1]


def score(pred_clusters: list[list[int]], gt_pairs: dict, sets) -> dict:
    true_edges = [p for p, j in gt_pairs.items() if j >= GT_HIGH]
    n = len(sets)
    true_pairs = set()
    for g in components(n, true_edges):
        true_pairs.update(itertools.combinations(sorted(g), 2))
    pred_pairs = set()
    for g in pred_clusters:
        pred_pairs.update(itertools.combinations(sorted(g), 2))
    tp = len(pred_pairs & true_pairs)
    fp = ignored = 0
    for p in pred_pairs - true_pairs:
        j = gt_pairs.get(p)
        if j is None:
            j = exact_jaccard(sets[p[0]], sets[p[1]])
        if GT_LOW <= j < GT_HIGH:
            ignored += 1
        else:
            fp += 1
    fn = len(true_pairs - pred_pairs)
    prec = tp / (tp + fp) if tp + fp else 1.0
    rec = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return {"true_pairs": len(true_pairs), "pred_pairs": len(pred_pairs), "tp": tp, "fp": fp, "fn": fn,
            "ignored": ignored, "precision": prec, "recall": rec, "f1": f1}


# ----------------------------------------------------------------------------- runs (children)
def child_ours(inp: Path, out: Path, tasks: int, workers: int, count_tokens: bool) -> None:
    from curation.dedup.pipeline import run_dedup

    run_dedup({"input": [str(inp)], "output": str(out), "count_tokens": count_tokens, "report": False,
               "executor": {"tasks": tasks, "workers": workers}})


def child_datatrove(inp: Path, out: Path, tasks: int, workers: int) -> None:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import MinhashDedupCluster, MinhashDedupFilter, MinhashDedupSignature
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupBuckets
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    cfg = MinhashConfig()  # 5-grams, 14 buckets x 8 hashes, 64-bit
    lang = "zho_Hani"
    folder, glob = (str(inp), "*.jsonl") if inp.is_dir() else (str(inp.parent), inp.name)

    def reader():
        return JsonlReader(folder, glob_pattern=glob)

    logs = out / "logs"
    s1 = LocalPipelineExecutor([reader(), MinhashDedupSignature(str(out / "sigs"), config=cfg, language=lang)],
                               tasks=tasks, workers=workers, logging_dir=str(logs / "s1"))
    s2 = LocalPipelineExecutor([MinhashDedupBuckets(str(out / "sigs"), str(out / "buckets"), config=cfg)],
                               tasks=cfg.num_buckets, workers=workers, logging_dir=str(logs / "s2"), depends=s1)
    s3 = LocalPipelineExecutor([MinhashDedupCluster(str(out / "buckets"), str(out / "remove"), config=cfg,
                                                    save_cluster_id=True)],
                               tasks=1, logging_dir=str(logs / "s3"), depends=s2)
    s4 = LocalPipelineExecutor([reader(),
                                MinhashDedupFilter(str(out / "remove"), load_cluster_ids=True,
                                                   exclusion_writer=JsonlWriter(str(out / "removed"))),
                                JsonlWriter(str(out / "kept"))],
                               tasks=tasks, workers=workers, logging_dir=str(logs / "s4"), depends=s3)
    s4.run()


def run_child(kind: str, inp: Path, out: Path, tasks: int, workers: int, count_tokens: bool = False) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, __file__, "--child", kind, "--input", str(inp), "--out", str(out),
           "--tasks", str(tasks), "--workers", str(workers)] + (["--count-tokens"] if count_tokens else [])
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(str(out) + ".log", "w"))
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        raise RuntimeError(f"{kind} run failed; see {out}.log")
    # The child reports its own peak (VmHWM of its address space: ru_maxrss would also count the
    # pages this big parent process had when it forked the child) and its children's peaks.
    rss = json.loads((Path(str(out) + ".rss.json")).read_text())
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_rss_mb": max(rss["self_hwm_kb"], rss["children_maxrss_kb"]) / 1024}


def clusters_ours(out: Path, id_index: dict[str, int]) -> list[list[int]]:
    import polars as pl

    df = pl.read_parquet(out / "clusters.parquet")
    groups: dict[int, list[int]] = {}
    for cid, i in zip(df["cluster_id"].to_list(), df["id"].to_list()):
        groups.setdefault(cid, []).append(id_index[i])
    return list(groups.values())


def clusters_datatrove(out: Path, id_index: dict[str, int]) -> list[list[int]]:
    import gzip

    groups: dict[int, list[int]] = {}
    for sub in ("kept", "removed"):
        for f in sorted((out / sub).glob("*.jsonl.gz")):
            with gzip.open(f, "rt", encoding="utf-8") as fh:
                for line in fh:
                    d = json.loads(line)
                    cid = d.get("metadata", {}).get("minhash_cluster_id")
                    if cid is not None and cid != -1:
                        groups.setdefault(cid, []).append(id_index[d["id"]])
    return [g for g in groups.values() if len(g) > 1]


# ----------------------------------------------------------------------------- signature throughput
def signature_throughput(docs: list[dict], repeats: int, work: Path) -> dict:
    """Characters per CPU-second of the signature step alone, on the same in-memory Documents."""
    from datatrove.data import Document
    from datatrove.pipeline.dedup import MinhashDedupSignature

    from curation.dedup.signature import DedupSignature

    chars = sum(len(d["text"]) for d in docs)
    res = {"ours": [], "datatrove": []}
    for rep in range(repeats):
        for kind in ("ours", "datatrove"):
            out = work / f"sig-{kind}-{rep}"
            shutil.rmtree(out, ignore_errors=True)
            documents = [Document(text=d["text"], id=d["id"]) for d in docs]
            step = (DedupSignature(str(out)) if kind == "ours"
                    else MinhashDedupSignature(str(out), language="zho_Hani"))
            if kind == "datatrove":
                step.word_tokenizer.word_tokenize("预热")  # load spaCy + jieba outside the timing
            c0 = time.process_time()
            gen = step.run(iter(documents), 0, 1)
            for _ in gen or ():
                pass
            res[kind].append(chars / (time.process_time() - c0))
    return {k: statistics.median(v) for k, v in res.items()} | {"runs": res, "chars": chars}


# ----------------------------------------------------------------------------- main
def bench_dataset(label: str, inp: Path, docs: list[dict], work: Path, tasks: int, workers: int,
                  peer: bool, report: dict, repeats: int = 1) -> None:
    print(f"\n== {label}: {len(docs)} documents, {sum(len(d['text']) for d in docs) / 1e6:.1f} M chars", flush=True)
    id_index = {d["id"]: i for i, d in enumerate(docs)}
    t0 = time.perf_counter()
    gt, sets, n_cand = cached_ground_truth(docs, work)
    n_true = sum(1 for j in gt.values() if j >= GT_HIGH)
    print(f"ground truth: {n_cand} LSH candidates, {n_true} pairs with J >= 0.8, "
          f"{len(gt) - n_true} in [0.7, 0.8) ({time.perf_counter() - t0:.0f} s)", flush=True)
    entry = {"documents": len(docs), "gt_pairs": n_true, "gt_candidates": n_cand}
    ours = run_child("ours", inp, work / f"{label}-ours", tasks, workers)
    ours |= score(clusters_ours(work / f"{label}-ours", id_index), gt, sets)
    entry["ours"] = ours
    print("ours      " + json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in ours.items()}), flush=True)
    if peer:
        dt = run_child("datatrove", inp, work / f"{label}-datatrove", tasks, workers)
        dt |= score(clusters_datatrove(work / f"{label}-datatrove", id_index), gt, sets)
        entry["datatrove"] = dt
        print("datatrove " + json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in dt.items()}), flush=True)
        # further end-to-end repeats, alternating tools so that load changes hit both alike
        walls = {"ours": [ours["wall_s"]], "datatrove": [dt["wall_s"]]}
        cpus = {"ours": [ours["cpu_s"]], "datatrove": [dt["cpu_s"]]}
        for rep in range(1, repeats):
            for kind in ("ours", "datatrove"):
                r = run_child(kind, inp, work / f"{label}-{kind}-rep{rep}", tasks, workers)
                walls[kind].append(r["wall_s"])
                cpus[kind].append(r["cpu_s"])
                print(f"repeat {rep} {kind}: {r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} CPU-s", flush=True)
        entry["e2e_wall_s"] = walls
        entry["e2e_cpu_s"] = cpus
        entry["e2e_speedup"] = statistics.median(walls["datatrove"]) / statistics.median(walls["ours"])
        entry["e2e_cpu_ratio"] = statistics.median(cpus["datatrove"]) / statistics.median(cpus["ours"])
        print(f"end-to-end speed-up (median of {repeats}): {entry['e2e_speedup']:.1f}x wall, "
              f"{entry['e2e_cpu_ratio']:.1f}x CPU", flush=True)
    report[label] = entry


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--work", type=Path, default=Path("/tmp/soaes-bench-dedup"))
    ap.add_argument("--factor", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sig-docs", type=int, default=600, help="documents in the signature micro-benchmark")
    ap.add_argument("--skip-peer-enlarged", action="store_true", help="don't run datatrove on the enlarged copy")
    ap.add_argument("--only", choices=["sig", "base", "enlarged"], nargs="*")
    ap.add_argument("--child", choices=["ours", "datatrove"])
    ap.add_argument("--input", type=Path)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--tasks", type=int, default=1)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--count-tokens", action="store_true")
    a = ap.parse_args()

    if a.child:
        import resource

        if a.child == "ours":
            child_ours(a.input, a.out, a.tasks, a.workers, a.count_tokens)
        else:
            child_datatrove(a.input, a.out, a.tasks, a.workers)
        hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
        Path(str(a.out) + ".rss.json").write_text(json.dumps(
            {"self_hwm_kb": hwm, "children_maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
        return

    if not a.data.exists():
        sys.exit(f"benchmark data not found: {a.data} (needs ../shared/data)")
    only = set(a.only or ["sig", "base", "enlarged"])
    a.work.mkdir(parents=True, exist_ok=True)
    # laws.jsonl repeats some ids (one law filed under two categories): both tools read a copy whose
    # ids are line numbers, so every document is scored as itself
    docs = [{"id": f"L{i:05d}", "text": d["text"], "date": d.get("version_date")} for i, d in enumerate(load_docs(a.data))]
    base = a.work / "laws_uid.jsonl"
    with open(base, "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps(d, ensure_ascii=False) + "\n")
    report: dict = {"machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
                    "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    if "sig" in only:
        sub = docs[: a.sig_docs]
        sig = signature_throughput(sub, a.repeats, a.work)
        report["signature"] = {"chars": sig["chars"], "ours_chars_per_cpu_s": sig["ours"],
                               "datatrove_chars_per_cpu_s": sig["datatrove"], "ratio": sig["ours"] / sig["datatrove"],
                               "runs": sig["runs"]}
        print(f"signature ({sig['chars'] / 1e6:.1f} M chars, median of {a.repeats}): ours "
              f"{sig['ours'] / 1e6:.2f} M chars/CPU-s, datatrove {sig['datatrove'] / 1e6:.3f} M chars/CPU-s, "
              f"ratio {sig['ours'] / sig['datatrove']:.1f}x", flush=True)
    if "base" in only:
        bench_dataset("laws", base, docs, a.work, tasks=1, workers=1, peer=True, report=report, repeats=a.repeats)
        # the same run as `soaes curate dedup` does it by default: with Qwen2.5 token counts for every
        # kept and removed document (not part of the peer comparison: datatrove counts no tokens)
        full = run_child("ours", base, a.work / "laws-ours-tokens", 1, 1, count_tokens=True)
        report["laws"]["ours_with_token_counts"] = full
        print(f"ours with token counts: {full['wall_s']:.1f} s wall, {full['cpu_s']:.1f} CPU-s", flush=True)
    if "enlarged" in only:
        big = a.work / f"laws_x{a.factor}"
        if not (big / "part-00.jsonl").exists():
            make_enlarged(docs, a.factor, big, shards=4)
        big_docs = load_docs(big)
        # 4 input shards run one after the other in one process (workers=1), as the 1x run: the peak
        # RSS of the two runs is comparable and per-core speed is what is compared with the peer
        bench_dataset(f"laws_x{a.factor}", big, big_docs, a.work, tasks=4, workers=1,
                      peer=not a.skip_peer_enlarged, report=report)
        if "laws" not in report:  # the 1x figure for the RSS ratio, same settings as the 1x benchmark
            report["laws_ours_only"] = run_child("ours", base, a.work / "laws-ours-rss", 1, 1)
        one_x = report["laws"]["ours"] if "laws" in report else report["laws_ours_only"]
        report["rss_scaling"] = report[f"laws_x{a.factor}"]["ours"]["peak_rss_mb"] / one_x["peak_rss_mb"]
        print(f"peak RSS {a.factor}x / 1x (ours): {report['rss_scaling']:.2f}", flush=True)
    name = "report-" + "-".join(sorted(only)) + ".json"
    (a.work / name).write_text(json.dumps(report, indent=2))
    print(f"\nreport: {a.work / name}")


if __name__ == "__main__":
    main()
