import json
import re
from pathlib import Path

import pytest


def _jsonl(p: Path) -> list[dict]:
    return [json.loads(l) for l in p.open(encoding="utf-8")]


@pytest.fixture(scope="session")
def labelled_fixture_data(fixtures_dir, tmp_path_factory) -> tuple[Path, Path]:
    """Small labelled domain data from the committed fixtures: statute articles (law), finance SFT
    (finance), medical + BELLE (other). Even/odd record split → train / eval."""
    d = tmp_path_factory.mktemp("domain_data")
    rows = []
    for law in _jsonl(fixtures_dir / "laws" / "laws_sample.jsonl")[:120]:
        body = law["text"].split("<!-- INFO END -->", 1)[-1]
        arts = [a for a in re.split(r"\n\s*\n", body) if a.startswith("第") and len(a) > 30]
        rows += [{"text": a[:300], "label": "law"} for a in arts[:3]]
    for r in _jsonl(fixtures_dir / "instructions" / "disc_fin_sft_samples.jsonl"):
        rows.append({"text": r["instruction"] + "\n" + r["response"], "label": "finance"})
    for r in _jsonl(fixtures_dir / "instructions" / "medical_sft_1k_ood.jsonl"):
        rows.append({"text": r["messages"][0]["value"] + "\n" + r["messages"][1]["value"], "label": "other"})
    for name in ("belle_seed_tasks", "belle_eval_set"):
        for r in _jsonl(fixtures_dir / "instructions" / f"{name}.jsonl"):
            rows.append({"text": r["instruction"] + "\n" + (r.get("response") or ""), "label": "other"})
    train, test = d / "train.jsonl", d / "eval.jsonl"
    with train.open("w", encoding="utf-8") as a, test.open("w", encoding="utf-8") as b:
        for i, r in enumerate(rows):
            (a if i % 2 == 0 else b).write(json.dumps(r, ensure_ascii=False) + "\n")
    return train, test


@pytest.fixture(scope="session")
def tiny_model(labelled_fixture_data, tmp_path_factory) -> Path:
    """A tiny fastText domain model trained on fixture data (unquantized, a few seconds)."""
    from filters.domain.train import train

    train_file, _ = labelled_fixture_data
    out = tmp_path_factory.mktemp("tiny_model") / "tiny.bin"
    train(train_file, out, features="char", max_chars=128, dim=8, epoch=10, bucket=20_000, min_count=1,
          quantize=False)
    return out
