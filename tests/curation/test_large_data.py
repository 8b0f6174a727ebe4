"""Acceptance over the real documents in ../shared/data (skipped, saying so, when absent)."""
import json
import re

import pytest

from corpora_manifests.rejects import read_rejects
from curation.readers.files import DocumentReader, list_input_files

pytestmark = pytest.mark.large_data


def _read(folder, tmp_path):
    r = DocumentReader([str(folder)], rejects_dir=str(tmp_path))
    docs = list(r.run())
    rej = read_rejects(tmp_path / "rejects") if (tmp_path / "rejects").exists() else []
    listed = {r._rel(p) for p in list_input_files([str(folder)])}  # ids/paths are relative to the input root
    assert listed == {d.metadata["file_path"] for d in docs} | {x["path"] for x in rej}  # none vanishes
    return docs, rej


def test_pdf_samples(shared_data, tmp_path):
    docs, rej = _read(shared_data / "pdf_samples", tmp_path)
    by_name = {d.metadata["file_path"].rsplit("/", 1)[-1]: d for d in docs}
    rej_by_name = {x["path"].rsplit("/", 1)[-1]: x for x in rej}
    # the scanned page with a garbage (invisible, unmapped) text layer is rejected with a reason
    assert rej_by_name["scanned_magazine_page_zh.pdf"]["reason"] == "pdf_garbage_text_layer"
    assert set(by_name) | set(rej_by_name) >= {p.name for p in (shared_data / "pdf_samples").glob("*.pdf")}
    assert len([n for n in by_name if n.endswith(".pdf")]) == 6
    thesis = by_name["thesis_digital_inclusive_finance_sme_credit_risk_zh.pdf"]
    lines = [ln.strip() for ln in thesis.text.split("\n")]
    assert thesis.metadata["pdf.pages"] == 70 and len(thesis.text) > 50_000
    assert "北京大学硕士学位论文" not in thesis.text  # running header of even pages
    assert not [ln for ln in lines if re.fullmatch(r"[\dIVXivxⅠ-Ⅻ\s\-–—]+", ln)]  # page numbers
    # odd pages repeat the chapter title as a running header: each title remains exactly once (its heading)
    for ch in ("第一章 引言", "第二章 文献综述", "第三章 研究设计", "第四章 实证分析", "第五章 结论与建议"):
        assert sum(1 for ln in lines if " ".join(ln.split()) == ch) == 1, ch
    assert "数字普惠金融" in thesis.text and "(cid:" not in thesis.text and "\ufffd" not in thesis.text
    for d in docs:
        assert "(cid:" not in d.text and "\ufffd" not in d.text


def test_govcn_policy_html(shared_data, tmp_path):
    docs, rej = _read(shared_data / "govcn_policy_html", tmp_path)
    pages = [d for d in docs if d.metadata["format"] == "html"]
    records = [d for d in docs if d.metadata["file_path"].endswith("data.jsonl")]
    assert len(records) == 60  # the dump's records, read with the default text key
    assert len(pages) + len({x["path"] for x in rej if x["path"].endswith(".html")}) == 60
    assert len(pages) >= 55 and sum(1 for d in pages if "国务院" in d.text) >= 55


def test_html_readability_pages(shared_data, tmp_path):
    from benchmarks.extraction import char_f1

    import trafilatura

    docs, rej = _read(shared_data / "html_readability_zh", tmp_path)
    gold = {json.loads(x)["dir"]: json.loads(x)["expected_text"]
            for x in (shared_data / "html_readability_zh" / "manifest.jsonl").open(encoding="utf-8")}
    ours = {d.metadata["file_path"].split("/")[-2]: d.text for d in docs if d.metadata["file_path"].endswith("source.html")}
    assert set(ours) == set(gold)
    f_ours = sum(char_f1(ours[k], gold[k])[2] for k in gold) / len(gold)
    f_plain = sum(char_f1(trafilatura.extract((shared_data / "html_readability_zh" / k / "source.html").read_bytes()) or "",
                          gold[k])[2] for k in gold) / len(gold)
    assert f_ours >= f_plain, (f_ours, f_plain)


def test_laws_drop_rate(shared_data):
    from datatrove.data import Document

    from curation.normalize import ZhNormalizer
    from curation.quality.boilerplate import BoilerplateLineRemover
    from curation.quality.filters import ZhQualityFilter

    laws = [json.loads(x) for x in (shared_data / "lawrefbook_laws" / "laws.jsonl").open(encoding="utf-8")]
    f = ZhQualityFilter()
    data = (Document(text=d["text"], id=d["id"]) for d in laws)
    for s in (ZhNormalizer(), BoilerplateLineRemover(), f):
        data = s.run(data)
    kept = sum(1 for _ in data)
    assert len(laws) - kept <= 0.01 * len(laws), {k: v.total for k, v in f.stats.stats.items() if k.startswith("dropped")}
