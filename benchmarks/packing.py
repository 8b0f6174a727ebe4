"""Packing efficiency and tokens lost: ours vs padding to the longest sample vs concatenate-and-chunk.

    .venv/bin/python benchmarks/packing.py [--seq-len 8192] [--repeats 3] [--work /tmp/packing_bench]

Data (../shared/data, development/benchmark use only): stage-1 style dialogue (ShareGPT-zh multi-turn,
DISC-FinLLM, machine-translated Alpaca-zh, BELLE seeds), stage-2 style expert Q&A (LawBench free-text
tasks 1-1/2-7/3-2/3-8, DISC-Law short answers, DISC-Fin eval) and, for CPT, the LawRefBook law corpus.
Each set is written as a manifest with ShardWriter and read back through the training package's own
path (verify → tokenise → pack), so ours is measured exactly as training uses it. The peers work on
the same token arrays:

- pad: dynamic padding to the longest sample of each batch of 8 (shuffled), truncating at seq_len
  (HF DataCollatorWithPadding / LLaMA-Factory without packing);
- concat-chunk: LLaMA-Factory's pre-training packing: concatenate the documents of each map batch
  (1,000 examples), cut into seq_len blocks, drop the remainder; documents attend across boundaries.

Efficiency = real tokens / token slots: "fill" counts every sequence as seq_len slots; "as trained"
counts what the model processes at micro-batch 1 (ours does not pad sequences; the collator pads a
micro-batch to its longest member). "lost" = tokens of the input not in any sequence (ours splits a
conversation longer than seq_len at turn boundaries and rejects, into rejects/, only a single exchange
longer than seq_len; the padding peer truncates at seq_len). "split docs": documents cut across
sequences (ours CPT: carried remainders; ours SFT: conversations split at turns). Times are
medians of --repeats runs measured in this one process; the ratio is peer time / ours.
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data"


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def qa(q: str, a: str) -> list[dict]:
    return [{"role": "user", "content": q}, {"role": "assistant", "content": a}]


def stage1_rows() -> list[dict]:
    rows = []
    role = {"human": "user", "gpt": "assistant", "system": "system"}
    for r in read_jsonl(DATA / "sharegpt_zh_1k" / "data.jsonl"):
        msgs = [{"role": role.get(m["from"], "user"), "content": m["value"]} for m in r["messages"]]
        rows.append((r["id"], msgs, "sharegpt_zh"))
    for r in read_jsonl(DATA / "disc_fin_sft_samples" / "data.jsonl"):
        msgs = []
        for q, a in r.get("history") or []:
            msgs += qa(q, a)
        rows.append((r["id"], msgs + qa(r["instruction"], r["response"]), "disc_fin_sft"))
    for r in read_jsonl(DATA / "alpaca_zh_carbonz0" / "data.jsonl"):
        rows.append((r["id"], qa(r["instruction"], r["response"]), "alpaca_zh"))
    for r in read_jsonl(DATA / "belle_seed_tasks" / "data.jsonl"):
        rows.append((r["id"], qa(r["instruction"], r["response"]), "belle_seed"))
    return rows


def stage2_rows() -> list[dict]:
    rows = []
    for r in read_jsonl(DATA / "lawbench" / "data.jsonl"):
        if r["task"] in {"1-1", "2-7", "3-2", "3-8"} and r.get("reference"):
            rows.append((r["id"], qa(f"{r['instruction']}\n{r['question']}", r["reference"]), "lawbench"))
    for name in ("disc_law_eval", "disc_fin_eval"):
        for r in read_jsonl(DATA / name / "data.jsonl"):
            rows.append((r["id"], qa(r["question"], r["reference"]), name))
    return rows


def write_manifest(target: Path, stage: str, rows, tok) -> Path:
    from corpora_manifests.models import Manifest
    from corpora_manifests.provenance import make_provenance
    from corpora_manifests.shards import CPT_SCHEMA, SFT_SCHEMA, ShardWriter
    from corpora_manifests.tokenizer import tokenizer_info

    shutil.rmtree(target, ignore_errors=True)
    schema = CPT_SCHEMA if stage == "cpt" else SFT_SCHEMA
    with ShardWriter(target, schema=schema) as w:
        for rid, payload, source in rows:
            if stage == "cpt":
                w.write({"id": rid, "text": payload, "source": source, "n_tokens": 0, "metadata": {}})
            else:
                w.write({"id": rid, "messages": payload, "source": source, "n_tokens": 0, "metadata": {}})
    Manifest(name=target.name, stage=stage, producer=make_provenance(command="benchmarks/packing.py"),
             tokenizer=tokenizer_info(tok), shards=w.shards).write(target)
    return target


# --- peers -------------------------------------------------------------------------------------

def pad_to_longest(lengths: np.ndarray, seq_len: int, batch: int = 8, seed: int = 0) -> dict:
    order = np.random.default_rng(seed).permutation(len(lengths))
    kept = np.minimum(lengths[order], seq_len)
    slots = 0
    for i in range(0, len(kept), batch):
        b = kept[i:i + batch]
        slots += len(b) * int(b.max())
    real = int(kept.sum())
    return {"sequences": len(lengths), "slots": slots, "real_tokens": real, "efficiency": real / slots,
            "trained_efficiency": real / slots,
            "tokens_lost": int(lengths.sum()) - real, "cross_doc_sequences": 0,
            "split_documents": 0}


def concat_chunk_drop(lengths: np.ndarray, seq_len: int, map_batch: int = 1000) -> dict:
    sequences = real = lost = cross = split = 0
    for i in range(0, len(lengths), map_batch):
        b = lengths[i:i + map_batch]
        ends = np.cumsum(b)
        total = int(ends[-1])
        n = total // seq_len
        sequences += n
        real += n * seq_len
        lost += total - n * seq_len
        starts = ends - b
        # Documents per block, and documents cut by a block boundary (inside the kept blocks).
        for k in range(n):
            lo, hi = k * seq_len, (k + 1) * seq_len
            inside = int(((starts < hi) & (ends > lo)).sum())
            cross += inside > 1
        cuts = np.arange(1, n + 1) * seq_len
        split += int(((starts[None, :] < cuts[:, None]) & (ends[None, :] > cuts[:, None])).any(axis=0).sum()) if n else 0
    return {"sequences": sequences, "slots": sequences * seq_len, "real_tokens": real,
            "efficiency": 1.0 if sequences else 0.0, "trained_efficiency": 1.0 if sequences else 0.0, "tokens_lost": lost, "cross_doc_sequences": cross,
            "split_documents": split}


# --- run ---------------------------------------------------------------------------------------

def measure(name: str, stage: str, rows, tok, args, work: Path) -> list[dict]:
    from training.manifest_inputs import open_manifest
    from training.packing import pack_best_fit, pack_stream
    from training.token_cache import tokenize_manifest

    kind = "cpt" if stage == "cpt" else "sft"
    mdir = write_manifest(work / name, stage, rows, tok)
    tok_times, tm = [], None
    for rep in range(args.repeats):
        cache = work / f"cache-{name}-{rep}"
        shutil.rmtree(cache, ignore_errors=True)
        t0 = time.perf_counter()
        src = open_manifest(mdir, kind)  # includes re-hashing every shard
        tm = tokenize_manifest(src, tok, kind=kind, seq_len=args.seq_len, cache_dir=cache, progress=False)
        tok_times.append(time.perf_counter() - t0)
    rejected = [r for r in tm.meta["rejects"] if r["reason"] == "longer_than_seq_len"]
    over_tokens = int(sum(r.get("tokens", 0) for r in rejected))
    if kind == "cpt":
        all_lengths = np.diff(tm.offsets)
    else:  # the peers see every conversation whole (they truncate at seq_len; ours splits at turns)
        from training.chat_template import BadSample, ChatEncoder, normalise_messages

        convs = []
        for _, msgs, _ in rows:
            try:
                convs.append(normalise_messages(msgs))
            except BadSample:
                pass
        all_lengths = np.asarray([len(e.input_ids) for e in ChatEncoder(tok).encode(convs)], dtype=np.int64)

    results = []
    def timed(fn):
        times, out = [], None
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t0)
        return out, statistics.median(times)

    plan, t_ours = timed(lambda: pack_stream([tm.offsets], args.seq_len) if kind == "cpt" else pack_best_fit([tm.offsets], args.seq_len))
    s = plan.stats
    # Sequences are not padded to seq_len (the collator pads a micro-batch to its longest member), so
    # at micro-batch 1 (the configs' setting) the trained slots are exactly the real tokens.
    ours = {"sequences": s["sequences"], "slots": s["slots"], "real_tokens": s["real_tokens"],
            "efficiency": s["efficiency"], "trained_efficiency": 1.0, "tokens_lost": s["tokens_lost"] + over_tokens,
            "cross_doc_sequences": 0,
            "split_documents": int(s["context_repeats"]) if kind == "cpt" else int(tm.meta["split_conversations"])}
    results.append({"data": name, "method": "ours (" + ("stream+carry" if kind == "cpt" else "best-fit decreasing") + ")",
                    **ours, "pack_s": t_ours})
    pad, t_pad = timed(lambda: pad_to_longest(all_lengths, args.seq_len))
    results.append({"data": name, "method": "pad to longest (batch 8)", **pad, "pack_s": t_pad})
    cc, t_cc = timed(lambda: concat_chunk_drop(all_lengths, args.seq_len))
    results.append({"data": name, "method": "concat-chunk, drop remainder", **cc, "pack_s": t_cc})
    n_tok = int(all_lengths.sum())
    for r in results:
        r.update(input_docs=len(all_lengths), input_tokens=n_tok, rejected_too_long=len(rejected),
                 tokenize_tok_per_s=n_tok / statistics.median(tok_times))
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seq-len", type=int, default=8192)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--work", type=Path, default=Path("/tmp/soaes_packing_bench"))
    ap.add_argument("--skip-cpt", action="store_true")
    args = ap.parse_args()
    if not DATA.exists():
        sys.exit(f"needs ../shared/data (not found at {DATA})")
    from corpora_manifests.tokenizer import load_tokenizer

    tok = load_tokenizer("qwen2.5")
    args.work.mkdir(parents=True, exist_ok=True)
    sets = [("sft_stage1_style", "sft_stage1", stage1_rows()), ("sft_stage2_style", "sft_stage2", stage2_rows())]
    if not args.skip_cpt:
        laws = read_jsonl(DATA / "lawrefbook_laws" / "laws.jsonl")
        sets.append(("cpt_laws", "cpt", [(r["id"], r["text"], "lawrefbook") for r in laws]))
    results = []
    for name, stage, rows in sets:
        results += measure(name, stage, rows, tok, args, args.work)

    print(f"# packing benchmark  seq_len={args.seq_len}  repeats={args.repeats}  {platform.machine()} "
          f"{platform.python_version()}  {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    hdr = ("data", "method", "docs", "tokens", "seqs", "fill (seqs x L)", "as trained (mb 1)", "lost", "cross-doc seqs", "split docs", "pack ms", "ratio")
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    for name, _, _ in sets:
        rs = [r for r in results if r["data"] == name]
        base = rs[0]["pack_s"]
        for r in rs:
            print(f"| {name} | {r['method']} | {r['input_docs']:,} | {r['input_tokens']:,} | {r['sequences']:,} | "
                  f"{r['efficiency']:.3%} | {r['trained_efficiency']:.3%} | {r['tokens_lost']:,} | {r['cross_doc_sequences']:,} | "
                  f"{r['split_documents']:,} | {r['pack_s'] * 1000:.1f} | {r['pack_s'] / base:.2f} |")
        print(f"| {name} | tokenise (ours: verify + ChatML/EOS + cache write) | | | | | | | | | "
              f"{rs[0]['tokenize_tok_per_s']:,.0f} tok/s | |")
        import math

        best = math.ceil(rs[0]["real_tokens"] / args.seq_len)
        print(f"|  | (optimum for fixed-length sequences: {best} = ceil({rs[0]['real_tokens']:,} / {args.seq_len}) "
              f"sequences, fill {rs[0]['real_tokens'] / (best * args.seq_len):.3%}) | | | | | | | | | | |")
        if rs[0]["rejected_too_long"]:
            print(f"|  | (ours rejects {rs[0]['rejected_too_long']} samples > seq_len whole, into rejects/) | | | | | | | | | | |")
    (args.work / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
