"""A large plain JSON-lines file is read by several tasks (byte ranges) with exactly the documents,
ids and rejects of one task reading it whole; small files still go whole to one task."""
from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest

from curation.readers.byte_ranges import plan_units
from curation.readers.files import DocumentReader

FIX = Path(__file__).resolve().parents[1] / "fixtures"


def _lines(rng: random.Random) -> list[str]:
    laws = [json.loads(ln) for ln in (FIX / "laws" / "laws_sample.jsonl").read_text(encoding="utf-8").splitlines()]
    out = []
    for k in range(160):
        r = rng.random()
        if r < 0.06:
            out.append("")                                   # blank line
        elif r < 0.1:
            out.append('{"text": "缺右括号"')                  # a bad record
        elif r < 0.13:
            out.append(json.dumps({"text": "长" * rng.randint(2000, 9000)}, ensure_ascii=False))  # spans ranges
        else:
            d = laws[k % len(laws)]
            rec = {"text": d["text"][: rng.randint(20, 600)]}
            if rng.random() < 0.5:
                rec["id"] = f"doc-{k}"                       # some records carry ids, the rest use line numbers
            out.append(json.dumps(rec, ensure_ascii=False))
    return out


def _read(inputs: list[str], world: int, split: int, rejects: Path) -> tuple[list[list[tuple]], list[tuple]]:
    per_rank = []
    for rank in range(world):
        r = DocumentReader(inputs, {"split_bytes": split}, rejects_dir=str(rejects))
        per_rank.append([(d.id, d.text) for d in r.run(rank=rank, world_size=world)])
    rej = []
    for f in sorted(rejects.rglob("*.jsonl")):
        for ln in f.read_text(encoding="utf-8").splitlines():
            o = json.loads(ln)
            rej.append((o["id"], o["reason"], o.get("detail")))
    return per_rank, sorted(rej)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ranges_give_the_documents_ids_and_rejects_of_one_task(tmp_path, seed):
    rng = random.Random(seed)
    lines = _lines(rng)
    big = tmp_path / "in" / "dump.jsonl"
    big.parent.mkdir()
    big.write_text("\n".join(lines) + ("\n" if seed != 1 else ""), encoding="utf-8")  # seed 1: no final newline
    small = tmp_path / "in" / "small.jsonl.gz"
    small.write_bytes(gzip.compress("\n".join(lines[:20]).encode()))  # compressed: never split
    inputs = [str(tmp_path / "in")]
    whole, whole_rej = _read(inputs, 1, 1 << 30, tmp_path / "rej1")
    assert len(whole[0]) > 100 and whole_rej
    size = big.stat().st_size
    for world in (2, 3, 5):
        split = size // 7
        parts, rej = _read(inputs, world, split, tmp_path / f"rej{world}")
        merged = sorted(x for p in parts for x in p)
        assert merged == sorted(whole[0])                     # every record once, same id, same text
        assert rej == whole_rej                               # each bad line rejected once, nothing extra
        assert sum(1 for p in parts if p) == world            # the big file no longer lands on one task
        assert {i for i, _ in whole[0]} == {i for i, _ in merged}


def test_plan_splits_only_large_plain_json_lines():
    files = [("a.jsonl", 100), ("b.jsonl.gz", 10_000), ("c.html", 10_000), ("d.jsonl", 10_000)]
    units = plan_units(files, 4, 3_000)
    assert [u for u in units if u[0] != "d.jsonl"] == [("a.jsonl", None), ("b.jsonl.gz", None), ("c.html", None)]
    d = [u[1] for u in units if u[0] == "d.jsonl"]
    assert [p[0] for p in d] == [0, 1, 2, 3] and d[0][1] == 0 and d[-1][2] == 10_000
    assert all(a[2] == b[1] for a, b in zip(d, d[1:]))       # contiguous, no gap, no overlap
    assert plan_units(files, 1, 3_000) == [(f, None) for f, _ in files]   # one task: whole files
