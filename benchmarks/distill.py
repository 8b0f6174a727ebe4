"""Stored teacher logits: bytes per supervised position and KD-loss fidelity of every encoding, vs
full fp16 logits and DistillKit's compressed format; capture throughput.

    nice .venv/bin/python benchmarks/distill.py [--toy demo_out/toy_distill] [--ks 16 32 64 128] \
        [--students student_sft student_kd] [--work /tmp/distill_bench]

Teacher and students: the toy reproduction's (`soaes pipeline run configs/demo/distill_toy.yaml`,
scripts/distill_toy.py): a tiny Qwen2 trained by SFT on the demo SFT data until sharp
(TOY/teacher/final), the SFT-only student and the KD student (TOY/<student>/final). Data: every assistant position of the demo SFT
fixtures (sft_stage1 + sft_stage2 train), tokenised as training does.

- Bytes: every encoding's rows written as real parquet shards (the capture's writer: zstd, one row per
  sample) and measured on disk, divided by the number of supervised positions. "fp16 full" is
  2 × teacher vocabulary rows (Qwen2.5-7B/our tiny models: 151,936; 72B: 152,064).
- DistillKit (arcee-ai/DistillKit, its README's recommended capture config: exact_k 16 in bf16,
  polynomial terms [0,1,2,3,4,sqrt] in float32, ids bit-packed at ceil(log2 d) bits): size from its
  config's bit accounting (logprob bits rounded up to bytes + ceil(k·ceil(log2 d)/8) index bytes; the
  README quotes ~300 B/token, the formula gives 344 B at k = 128, d = 151,936). Its fidelity is
  measured on our reimplementation of the documented scheme (exact top 16, the rest of the sorted
  log-prob curve fitted by least squares on those terms of the rank), not on its code.
- KD-loss error: |L_stored − L_full| / L_full for the paper's loss (α 0.5, τ 2; `--tau` for others) with each student's
  logits, for both tail treatments, and the same for the KL term alone; L_full uses the teacher's
  full-vocabulary logits.
- Teacher sharpness: mean over positions of the teacher's probability mass inside its top k at
  τ = 1 and at the loss's τ = 2 (where the tail weighs more: p^(1/τ) flattens it).
- Capture: ``run_capture`` (k = 64, delta_q8) over the same data: tokens/s and positions/s.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
FIX = REPO / "tests" / "fixtures" / "training"


def distillkit_bytes(k: int, d: int, exact_k: int = 16, n_terms: int = 6) -> int:
    exact_k = min(exact_k, k)
    bits = exact_k * 16 + (n_terms * 32 if k > exact_k else 0)
    bits += -bits % 8
    return bits // 8 + math.ceil(k * math.ceil(math.log2(d)) / 8)


def distillkit_like(logp_sorted: np.ndarray, exact_k: int = 16) -> np.ndarray:
    """Reconstruct sorted top-k log-probs the way DistillKit's documented config describes: the top
    ``exact_k`` in bf16, the rest from a least-squares fit of terms [1, t, t², t³, t⁴, √t] of the rank."""
    import torch

    n, k = logp_sorted.shape
    out = torch.tensor(logp_sorted).to(torch.bfloat16).float().numpy()
    if k <= exact_k:
        return out
    t = np.arange(exact_k, k, dtype=np.float64)
    basis = np.stack([np.ones_like(t), t, t ** 2, t ** 3, t ** 4, np.sqrt(t)], 1)
    coef, *_ = np.linalg.lstsq(basis, logp_sorted[:, exact_k:].T.astype(np.float64), rcond=None)
    coef = coef.astype(np.float32).astype(np.float64)  # stored as float32
    out[:, exact_k:] = (basis @ coef).T
    return out


def even_kl(s_top, s_sum, logp, tail, tau: float, vocab: int) -> float:
    """Σ over positions of the top-k KL whose tail term assumes the teacher's tail even over the V−k ids."""
    k = logp.shape[1]
    t = logp.astype(np.float64) / tau
    with np.errstate(divide="ignore"):
        log_tail_tau = math.log(vocab - k) + (np.log(tail.astype(np.float64)) - math.log(vocab - k)) / tau
    both = np.concatenate([t, log_tail_tau[:, None]], 1)
    m = both.max(1, keepdims=True)
    z = m + np.log(np.exp(both - m).sum(1, keepdims=True))
    t_logp = t - z
    p_tail = np.exp(log_tail_tau - z[:, 0])
    s_top = s_top.astype(np.float64)
    mean_tail = (s_sum - s_top.sum(1)) / (vocab - k)
    tail_term = np.where(p_tail > 0, p_tail * (np.log(np.maximum(p_tail, 1e-300)) - math.log(vocab - k) - mean_tail), 0.0)
    return float((np.exp(t_logp) * (t_logp - s_top)).sum() + tail_term.sum())


def collect(teacher_dir: Path, student_dirs: dict[str, Path], cache: Path, kmax: int, limit: int | None = None,
            tau: float = 2.0, ks=(), n_draws: int = 16, seeds: int = 1):
    """Per supervised position: teacher top-kmax (ids, logp, tail), full-vocabulary KD references, and
    for every k the capture's tail statistics (``kd_loss.tail_statistics``, ``seeds`` independent sets
    of m draws) with each student's τ-log-probs at the draws."""
    import torch
    from transformers import AutoModelForCausalLM

    from corpora_manifests.tokenizer import load_tokenizer
    from training import kd_loss
    from training.distill_capture import supervised_positions
    from training.manifest_inputs import open_manifest
    from training.token_cache import tokenize_manifest

    tok = load_tokenizer("qwen2.5")
    n_real = len(tok)
    teacher = AutoModelForCausalLM.from_pretrained(teacher_dir, attn_implementation="sdpa").eval()
    students = {n: AutoModelForCausalLM.from_pretrained(d, attn_implementation="sdpa").eval()
                for n, d in student_dirs.items()}
    samples = []
    for m, split in (("sft_stage1", None), ("sft_stage2", "train")):
        t = tokenize_manifest(open_manifest(FIX / m, "sft", split=split), tok, kind="sft", seq_len=1024,
                              cache_dir=cache, progress=False)
        for d in range(t.n_docs):
            a, b = t.offsets[d], t.offsets[d + 1]
            samples.append((np.asarray(t.tokens[a:b], np.int64), supervised_positions(t.loss_mask[a:b]),
                            np.asarray(t.loss_mask[a:b])))
    rows, refs, t2, tails = [], {n: [] for n in students}, [], []
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for ids, pos, mask in samples[:limit]:
            x = torch.from_numpy(ids)[None]
            p = torch.from_numpy(pos)
            zt = teacher(x).logits[0, p].float()
            targets = x[0, p + 1]
            top_ids, top_lp, tail = kd_loss.topk_of_logits(zt, kmax, n_real)
            rows.append((top_ids.numpy(), top_lp.numpy(), tail.numpy()))
            # the teacher's τ-2 probabilities at its top ids (same order: softmax(z/τ) is monotone in z)
            # and log Σ_v p_v^(1/τ) over the whole vocabulary (for the exact τ-tail of the oracle rows)
            lp = torch.log_softmax(zt[:, :n_real], -1)
            t2.append((torch.log_softmax(zt[:, :n_real] / tau, -1).gather(-1, top_ids).exp().numpy(),
                       torch.logsumexp(lp / tau, -1).double().numpy()))
            # what the capture stores with tail_tau = τ: per k, exact tail mass + negentropy, and draws
            tails.append({k: [kd_loss.tail_statistics(lp, top_ids[:, :k], tau, n_draws, gen) for _ in range(seeds)]
                          for k in ks})
            del lp
            for n, student in students.items():
                zs = student(x).logits[0, p].float()
                ce = kd_loss.ce_sum(zs, targets, n_real)
                kl_full = kd_loss.kl_full_sum(zs, zt, tau, n_real)
                # the student's τ-log-probs at the teacher's top-kmax ids: every encoding stores a subset of them
                s_all = torch.log_softmax(zs[:, :n_real] / tau, -1)
                s_top = s_all.gather(-1, top_ids)
                refs[n].append({"s_top": s_top.numpy(), "ce": float(ce), "kl_full": float(kl_full),
                                "s_sum": s_all.double().sum(-1).numpy(),  # Σ_v log q_v^τ (the "even" diagnostic)
                                "s_smp": {k: [s_all.gather(-1, st[2]).numpy() for st in tails[-1][k]] for k in ks}})
                del s_all
    return rows, refs, t2, tails, n_real, int(teacher.config.vocab_size)


def run(args) -> dict:
    import torch

    from training import kd_encoding as enc
    from training import kd_loss
    from training.distill_capture import _write_shard, shard_schema  # noqa: F401  (the capture's writer)

    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    t0 = time.perf_counter()
    toy = Path(args.toy)
    teacher = Path(args.teacher) if args.teacher else toy / "teacher" / "final"
    students = {n: toy / n / "final" for n in args.students}
    tau = args.tau
    rows, refs, t2, tails, n_real, vocab_rows = collect(teacher, students, work / "cache", max(args.ks), args.limit, tau,
                                                        args.ks, args.tail_samples, args.seeds)
    n_pos = sum(len(r[2]) for r in rows)
    result = {"tau": tau, "alpha": 0.5, "tail_samples": args.tail_samples, "seeds": args.seeds, "positions": n_pos, "samples": len(rows), "teacher_vocab_rows": vocab_rows, "tokenizer_ids": n_real,
              "teacher": str(teacher), "students": {n: str(d) for n, d in students.items()},
              "fp16_full_bytes": 2 * vocab_rows, "fp16_full_bytes_72b": 2 * 152064, "full": {}, "sharpness": [],
              "rows": []}
    for n, rs in refs.items():
        result["full"][n] = {"loss": sum(0.5 * tau * tau * r["kl_full"] + 0.5 * r["ce"] for r in rs) / n_pos,
                             "kl": sum(r["kl_full"] for r in rs) / n_pos, "ce": sum(r["ce"] for r in rs) / n_pos}
    for k in args.ks:
        m1 = np.concatenate([np.exp(lp[:, :k].astype(np.float64)).sum(1) for _, lp, _ in rows])
        m2 = np.concatenate([p[:, :k].astype(np.float64).sum(1) for p, _ in t2])
        result["sharpness"].append({"k": k, "top_mass_tau1_mean": float(m1.mean()), "top_mass_tau1_median": float(np.median(m1)),
                                    "top_mass_tau_mean": float(m2.mean()), "top_mass_tau_median": float(np.median(m2))})
        print(json.dumps(result["sharpness"][-1]), flush=True)
    for k in args.ks:
        for name in list(enc.ENCODINGS) + ["distillkit"]:
            recs, stream = [], 0
            # "bucket_exact": the bucket with the teacher's true τ-tail instead of the even-tail estimate
            # (an oracle, for the raw encoding only: it says which part of the bucket's error is that estimate)
            # "even": a diagnostic, not a training mode: the teacher's tail taken as spread evenly over the
            # other V−k ids *inside* the tail too, so the tail term is P_tail·(log P_tail − log(V−k) − mean_tail log q)
            # against the student's own tail log-probs (needs the student's full logits, as training has)
            # "bucket+mass": the bucket with the exact τ-tail mass the capture stores (tail_tau = τ);
            # "sampled": one entry per draw set (seed), reported as median and worst
            modes = ["renormalize", "bucket", "bucket+mass"] + [f"sampled#{r}" for r in range(args.seeds)] \
                + (["bucket_exact", "even"] if name == "raw" else [])
            L = {n: {m: 0.0 for m in modes} for n in refs}
            KL = {n: {m: 0.0 for m in modes} for n in refs}
            tail_bytes = 0
            for i, (ids, lp, tail) in enumerate(rows):
                ids_k, lp_k = ids[:, :k], lp[:, :k]
                tail_k = np.clip(1.0 - np.exp(lp_k.astype(np.float64)).sum(1), 0, 1).astype(np.float32)
                if name == "distillkit":
                    dec = enc.TopK(ids_k, distillkit_like(lp_k), tail_k)
                else:
                    b = enc.encode(enc.TopK(ids_k, lp_k, tail_k), name)
                    stream += sum(len(x) for x in b)
                    st0 = tails[i][k][0]
                    tb = enc.encode_tail(enc.Tail(*(x.numpy() for x in st0)))
                    tail_bytes += len(tb)
                    recs.append({"doc_index": len(recs), "n_tokens": 0, "tokens_sha256": "", "n_positions": len(tail_k),
                                 "ids": b[0], "vals": b[1], "aux": b[2], "tail": tb})
                    dec = enc.decode(*b, k=k, encoding=name)
                order = None
                if not np.array_equal(dec.ids, ids_k):  # delta encodings return the ids sorted
                    order = np.argsort(ids_k, axis=1, kind="stable")
                    assert np.array_equal(np.take_along_axis(ids_k, order, 1), dec.ids)
                for n, rs in refs.items():
                    ref = rs[i]
                    s_top = ref["s_top"][:, :k]
                    if order is not None:
                        s_top = np.take_along_axis(s_top, order, 1)
                    for mode in modes:
                        if mode.startswith("sampled#") or mode == "bucket+mass":
                            r = int(mode.split("#")[1]) if "#" in mode else 0
                            lm, ng, _ = tails[i][k][r]
                            kl = float(kd_loss.kl_from_student_topk(
                                torch.from_numpy(s_top), torch.from_numpy(dec.logp), torch.from_numpy(dec.tail), tau,
                                "sampled" if "#" in mode else "bucket", n_real, log_mass=lm, negent=ng,
                                s_samples=torch.from_numpy(ref["s_smp"][k][r])))
                            KL[n][mode] += kl
                            L[n][mode] += 0.5 * tau * tau * kl + 0.5 * ref["ce"]
                            continue
                        if mode == "even":
                            kl = even_kl(s_top, ref["s_sum"], dec.logp, dec.tail, tau, n_real)
                            KL[n][mode] += kl
                            L[n][mode] += 0.5 * tau * tau * kl + 0.5 * ref["ce"]
                            continue
                        exact = None
                        if mode == "bucket_exact":
                            p2, lse2 = t2[i]
                            rest = np.clip(1.0 - p2[:, :k].astype(np.float64).sum(1), 0.0, 1.0)
                            exact = torch.from_numpy(lse2 + np.log(rest))
                        kl = float(kd_loss.kl_from_student_topk(torch.from_numpy(s_top), torch.from_numpy(dec.logp),
                                                                torch.from_numpy(dec.tail), tau, mode.split("_")[0],
                                                                n_real, log_tail_tau=exact))
                        KL[n][mode] += kl
                        L[n][mode] += 0.5 * tau * tau * kl + 0.5 * ref["ce"]
            if name == "distillkit":
                size = distillkit_bytes(k, vocab_rows)
                how = "config bit accounting (fixed-size rows, before parquet)"
                size_tail = None
            else:
                path = work / f"{name}-k{k}.parquet"
                _write_shard(path, recs, 3)
                size_tail = path.stat().st_size / n_pos
                _write_shard(path, [{**r, "tail": None} for r in recs], 3)
                size = path.stat().st_size / n_pos
                how = "parquet zstd on disk"
            row = {"k": k, "encoding": name, "bytes_per_position": round(size, 1), "measured": how,
                   "stream_bytes_per_position": round(stream / n_pos, 1) if name != "distillkit" else size,
                   "ratio_vs_fp16_full": round(2 * vocab_rows / size, 1)}
            if size_tail is not None:  # the same rows with the tail column (tail_tau = τ, m draws)
                row["bytes_per_position_with_tail"] = round(size_tail, 1)
                row["stream_bytes_per_position_with_tail"] = round((stream + tail_bytes) / n_pos, 1)
            for n in refs:
                full = result["full"][n]
                for mode in modes:
                    row[f"{n}_loss_rel_err_{mode}"] = abs(L[n][mode] / n_pos - full["loss"]) / full["loss"]
                    row[f"{n}_kl_rel_err_{mode}"] = abs(KL[n][mode] / n_pos - full["kl"]) / full["kl"]
                for what in ("loss", "kl"):
                    errs = [row.pop(f"{n}_{what}_rel_err_sampled#{r}") for r in range(args.seeds)]
                    row[f"{n}_{what}_rel_err_sampled"] = float(np.median(errs))
                    row[f"{n}_{what}_rel_err_sampled_max"] = float(max(errs))
            result["rows"].append(row)
            print(json.dumps(row), flush=True)
    result["collect_seconds"] = round(time.perf_counter() - t0, 1)
    result["machine"] = {"platform": platform.platform(), "cpus": __import__("os").cpu_count(),
                         "torch_threads": torch.get_num_threads(),
                         "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    result["capture"] = None
    if args.skip_capture:
        return result
    # capture throughput through the real command path
    from training.distill_capture import CaptureConfig, run_capture

    cap = CaptureConfig(name="bench", output_dir=str(work / "capture"), teacher=str(teacher),
                        manifests=[str(FIX / "sft_stage1"), str(FIX / "sft_stage2")], split="train", seq_len=1024,
                        k=64, encoding="delta_q8", batch_tokens=4096, shard_samples=16, cache_dir=str(work / "cache"),
                        attn_implementation="sdpa", tail_tau=tau, tail_samples=args.tail_samples)
    out = run_capture(cap, progress=False)
    d = json.loads((out / "manifest.json").read_text())["stats"]["distill"]
    result["capture"] = {"tokens_per_s": round(d["throughput"]["tokens_per_s"], 1),
                         "positions_per_s": round(d["throughput"]["positions_per_s"], 1),
                         "tokens": d["throughput"]["tokens"], "positions": d["positions"],
                         "bytes_per_position_manifest": round(d["bytes_per_position"], 1)}
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="stored-logit encodings: size and KD-loss fidelity")
    ap.add_argument("--toy", default=str(REPO / "demo_out" / "toy_distill"),
                    help="the toy pipeline's root (configs/demo/distill_toy.yaml): TOY/<model>/final")
    ap.add_argument("--teacher", default=None, help="teacher model dir (default TOY/teacher/final)")
    ap.add_argument("--students", nargs="+", default=["student_sft", "student_kd"],
                    help="student runs under TOY whose logits the KD loss is evaluated with")
    ap.add_argument("--tau", type=float, default=2.0, help="the loss's temperature (the paper: 2)")
    ap.add_argument("--ks", type=int, nargs="+", default=[16, 32, 64, 128])
    ap.add_argument("--tail-samples", type=int, default=16, help="draws per position for the sampled tail (capture default)")
    ap.add_argument("--seeds", type=int, default=5, help="independent draw sets: the sampled tail's error is their median (and worst)")
    ap.add_argument("--work", default="/tmp/distill_bench")
    ap.add_argument("--limit", type=int, default=None, help="only the first N samples (a quick check)")
    ap.add_argument("--skip-capture", action="store_true", help="do not time run_capture")
    ap.add_argument("--json", default=None, help="also write the result here")
    a = ap.parse_args(argv)
    res = run(a)
    print(f"\npositions {res['positions']}  full fp16 {res['fp16_full_bytes']} B/position  "
          f"(72B vocabulary: {res['fp16_full_bytes_72b']})  full-vocabulary loss/KL/CE per position: {res['full']}")
    print(f"| k | teacher top-k mass τ=1 (mean / median) | τ={res['tau']:g} (mean / median) |\n|---|---|---|")
    for r in res["sharpness"]:
        print(f"| {r['k']} | {r['top_mass_tau1_mean']:.2%} / {r['top_mass_tau1_median']:.2%} | "
              f"{r['top_mass_tau_mean']:.2%} / {r['top_mass_tau_median']:.2%} |")
    for n in res["full"]:
        print(f"\nstudent {n}: relative error vs full vocabulary")
        print("| k | encoding | B/position on disk (+ tail column) | before zstd (+ tail column) | vs fp16 full | "
              "loss err sampled (median / worst of seeds) | KL err sampled | loss err bucket+mass | loss err bucket | "
              "loss err (renorm) | KL err (bucket) | KL err (renorm) |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in res["rows"]:
            print(f"| {r['k']} | {r['encoding']} | {r['bytes_per_position']} ({r.get('bytes_per_position_with_tail', '–')}) | "
                  f"{r['stream_bytes_per_position']} ({r.get('stream_bytes_per_position_with_tail', '–')}) | "
                  f"{r['ratio_vs_fp16_full']}× | "
                  f"{r[n + '_loss_rel_err_sampled']:.3%} / {r[n + '_loss_rel_err_sampled_max']:.3%} | "
                  f"{r[n + '_kl_rel_err_sampled']:.3%} / {r[n + '_kl_rel_err_sampled_max']:.3%} | "
                  f"{r[n + '_loss_rel_err_bucket+mass']:.3%} | "
                  f"{r[n + '_loss_rel_err_bucket']:.3%} | {r[n + '_loss_rel_err_renormalize']:.3%} | "
                  f"{r[n + '_kl_rel_err_bucket']:.3%} | {r[n + '_kl_rel_err_renormalize']:.3%} |"
                  + (f" oracle exact τ-tail: loss {r[n + '_loss_rel_err_bucket_exact']:.3%}, "
                     f"KL {r[n + '_kl_rel_err_bucket_exact']:.3%}; even tail: loss {r[n + '_loss_rel_err_even']:.3%}, "
                     f"KL {r[n + '_kl_rel_err_even']:.3%}" if n + "_kl_rel_err_bucket_exact" in r else ""))
    print(f"capture: {res['capture']}")
    print(f"machine: {res['machine']}")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
