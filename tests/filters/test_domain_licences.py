"""The licence gate of the shipped domain model (filters/domain/licences.py)."""
import json
import re

import pytest

from corpora_manifests.errors import UserError
from filters.domain.licences import FOLDER_LICENCE, SAMPLE_CAP, folder_of, select


def _rec(source, i):
    return {"id": f"{source}-{i}", "text": "x", "label": "other", "source": source, "family": "f"}


def test_permissive_keeps_committable_sources_caps_samples_and_drops_the_rest():
    recs = ([_rec("thucnews_titles", i) for i in range(5)] + [_rec("alpaca_zh_carbonz0:pseudo_other", i) for i in range(5)]
            + [_rec("mixed_lang_pretrain_text:fever:pseudo_other", 0)] + [_rec("medical_sft", i) for i in range(3)]
            + [_rec("sharegpt_zh_1k:pseudo_other", 0)] + [_rec("lawbench_mcq", i) for i in range(SAMPLE_CAP + 7)])
    kept = select(recs, "permissive")
    folders = {folder_of(r["source"]) for r in kept}
    assert folders == {"medical_sft_1k_ood", "sharegpt_zh_1k", "lawbench"}
    assert sum(r["source"] == "lawbench_mcq" for r in kept) == SAMPLE_CAP
    assert select(recs, "any") == recs


def test_unknown_source_and_licence_are_user_errors():
    with pytest.raises(UserError):
        select([_rec("some_new_scrape", 0)], "permissive")
    with pytest.raises(UserError):
        select([], "whatever")


def test_research_model_cannot_overwrite_the_shipped_model(tmp_path):
    from filters.domain.recipe import train_default_model

    with pytest.raises(UserError, match="must not be redistributed"):
        train_default_model(tmp_path, None, licence="any")  # refused before any data is read


def test_shipped_sidecar_names_only_permissive_sources():
    from filters.domain.model import SHIPPED_MODEL, sidecar_path

    side = json.loads(sidecar_path(SHIPPED_MODEL).read_text(encoding="utf-8"))
    assert side["data"]["licence"] == "permissive"
    for src in list(side["data"]["sources"]) + list(side["train"]["examples_by_source"]):
        assert FOLDER_LICENCE[folder_of(src)][1] != "no", src


@pytest.mark.large_data
def test_licence_table_matches_the_data_readme(shared_data):
    """Every folder of ../shared/data/README.md's two tables is in the code's table, on the right side."""
    text = (shared_data / "README.md").read_text(encoding="utf-8")
    ok_part, no_part = text.split("## Development and benchmarks only", 1)
    folders = lambda part: {f for cell in re.findall(r"^\| `([^|]+)` *\|", part, re.M)
                            for f in re.findall(r"([a-z0-9_]+)/", cell)}
    assert folders(ok_part) and folders(no_part)
    for f in folders(ok_part):
        assert FOLDER_LICENCE[f][1] in ("yes", "sample"), f
    for f in folders(no_part):
        assert FOLDER_LICENCE[f][1] == "no", f
    for f in FOLDER_LICENCE:
        assert f in folders(ok_part) | folders(no_part), f


@pytest.mark.large_data
def test_permissive_training_records_hold_no_research_only_source(shared_data):
    from filters.domain.families import iter_family_records, iter_unlabelled, pseudo_negatives

    recs = select(list(iter_family_records(shared_data))
                  + pseudo_negatives(list(iter_unlabelled(shared_data, licence="permissive"))), "permissive")
    folders = {folder_of(r["source"]) for r in recs}
    assert all(FOLDER_LICENCE[f][1] != "no" for f in folders), folders
    assert {"lawrefbook_laws", "sharegpt_zh_1k", "disc_fin_sft_samples"} <= folders
