import json

import pytest

from filters.decontam import NgramIndex
from filters.domain.model import DomainModel
from filters.domain.trainset import build_trainset
from filters.text import normalise_for_match


@pytest.mark.large_data
def test_legacy_heldout_is_disjoint_from_training(shared_data, tmp_path):
    from filters.domain.recipe import TRAINSET_PARAMS

    stats = build_trainset(shared_data, tmp_path, **TRAINSET_PARAMS)
    assert stats["heldout"]["in"] > 1000 and stats["heldout"]["out"] > 1000
    assert sum(v for k, v in stats["removed_from_training"].items() if k.startswith("overlaps_heldout")) > 0
    held = [json.loads(l) for l in (tmp_path / "heldout.jsonl").open(encoding="utf-8")]
    idx = NgramIndex(n=30)
    for r in held:
        idx.add(r["text"], r["source"], r["id"])
    held_norm = {normalise_for_match(r["text"]) for r in held}
    for name in ("train.jsonl", "valid.jsonl"):
        for i, line in enumerate((tmp_path / name).open(encoding="utf-8")):
            text = json.loads(line)["text"]
            assert normalise_for_match(text) not in held_norm
            if i % 5 == 0:  # the n-gram re-check on a fifth keeps the test cheap; the builder checks all
                assert idx.find(text) is None, text[:80]
    # LawBench is never trained on by this (legacy, permissive-only) builder
    train_sources = {json.loads(l)["source"] for l in (tmp_path / "train.jsonl").open(encoding="utf-8")}
    assert not any("lawbench" in s for s in train_sources)


@pytest.mark.large_data
def test_families_and_shipped_model_on_their_validation_records(shared_data):
    """Every source family is present with its labels; the shipped model, scored now on the 15 %
    validation records it was never trained on, keeps every family's F1 up. The families it may not
    be trained on (licence, ``filters/domain/licences.py``) are wholly unseen: a lower bar."""
    from collections import Counter

    from filters.domain.families import FAMILIES, in_valid, iter_family_records
    from filters.domain.lofo import IN_LABELS, bootstrap_prf

    recs = list(iter_family_records(shared_data))
    by = Counter((r["family"], r["label"] in IN_LABELS) for r in recs)
    for fam in FAMILIES:
        assert by[(fam, True)] > 300, fam
        if fam != "statutes_policy":
            assert by[(fam, False)] > 100, fam
    valid = [r for r in recs if in_valid(r["id"])]
    assert 0.12 < len(valid) / len(recs) < 0.18
    from filters.domain.licences import select

    seen = {r["family"] for r in select(recs, "permissive")}
    assert seen == {"exam", "instructions", "statutes_policy"}
    preds = DomainModel().predict([r["text"] for r in valid])
    for fam in FAMILIES:
        g = [r["label"] in IN_LABELS for r in valid if r["family"] == fam]
        p = [x.is_in for r, x in zip(valid, preds) if r["family"] == fam]
        assert bootstrap_prf(g, p, 0)["f1"] >= (0.7 if fam in seen else 0.35), fam
