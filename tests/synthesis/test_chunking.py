import json

from synthesis.chunking import chunk_document, split_units
from synthesis.config import SourceConfig
from synthesis.sources import SourceDoc, iter_documents

LAW = """# 中华人民共和国测试法

2020年1月1日 通过

<!-- INFO END -->

## 第一章　总则

第一条 为了规范企业国有资产管理，制定本法。

第二条 本法所称企业国有资产，是指国家对企业各种形式的出资所形成的权益。
国家出资企业应当依法经营。

## 第二章　监督

第三条 国务院国有资产监督管理机构依法履行出资人职责。

第四条 履行出资人职责的机构应当维护出资人权益。
"""


def test_units_follow_law_structure():
    units = split_units(LAW)
    kinds = [u.kind for u in units]
    assert kinds[0] == "preamble"  # the promulgation header is not content
    arts = [u for u in units if u.kind == "article"]
    assert [a.label for a in arts] == ["第一条", "第二条", "第三条", "第四条"]
    assert "国家出资企业应当依法经营" in arts[1].text  # a 款 stays with its article
    assert [u.text for u in units if u.kind == "heading"] == ["第一章　总则", "第二章　监督"]


def test_chunks_respect_headings_budget_and_are_stable(qwen_tokenizer):
    doc = SourceDoc("d1", LAW, title="中华人民共和国测试法", group="d:d1")
    chunks = chunk_document(doc, qwen_tokenizer, max_tokens=1024, min_chars=10)
    assert len(chunks) == 2  # a chapter heading opens a new chunk
    assert chunks[0].heading.endswith("第一章　总则") and chunks[1].heading.endswith("第二章　监督")
    assert "2020年1月1日" not in chunks[0].text
    again = chunk_document(doc, qwen_tokenizer, max_tokens=1024, min_chars=10)
    assert [c.chunk_id for c in again] == [c.chunk_id for c in chunks]
    small = chunk_document(doc, qwen_tokenizer, max_tokens=40, min_chars=5)
    assert all(c.n_tokens <= 40 for c in small) and len(small) > 2


def test_long_article_is_cut_at_sentence_ends(qwen_tokenizer):
    body = "第一条 " + "".join(f"第{i}项规定企业应当建立健全内部控制制度并定期报告。" for i in range(60))
    doc = SourceDoc("d2", body, title="测试条例", group="d:d2")
    chunks = chunk_document(doc, qwen_tokenizer, max_tokens=64, min_chars=5)
    assert len(chunks) > 5
    assert all(c.n_tokens <= 64 for c in chunks)
    assert "".join(c.text for c in chunks) == body


def test_fixture_sources_and_rejects(tmp_path, fixtures_dir):
    from corpora_manifests.rejects import RejectsWriter, read_rejects

    src = tmp_path / "docs.jsonl"
    lines = (fixtures_dir / "laws" / "laws_sample.jsonl").read_text(encoding="utf-8").splitlines()[:3]
    src.write_text("\n".join(lines + ['{"id": "x", "text": ""}', "{broken"]) + "\n", encoding="utf-8")
    with RejectsWriter(tmp_path) as rw:
        docs = list(iter_documents(SourceConfig(path=str(src)), rw))
    assert len(docs) == 3 and all(d.group.startswith("g:") for d in docs)
    reasons = sorted(r["reason"] for r in read_rejects(tmp_path / "rejects"))
    assert reasons == ["bad_json_line", "empty_text"]
    assert json.loads(lines[0])["title"] == docs[0].title


def test_chunk_step_in_a_datatrove_pipeline(fixtures_dir):
    from datatrove.pipeline.readers import JsonlReader

    from synthesis.steps import ChunkDocuments

    reader = JsonlReader(str(fixtures_dir / "laws"), glob_pattern="laws_sample.jsonl", limit=3)
    docs = list(ChunkDocuments(max_tokens=512).run(reader.run(rank=0, world_size=1)))
    assert len({d.metadata["synth.doc_id"] for d in docs}) == 3
    assert all(d.metadata["synth.n_tokens"] <= 512 and d.id.startswith("c") for d in docs)
    assert any(d.metadata["synth.articles"] for d in docs)


def test_cpt_manifest_as_source(tmp_path, fixtures_dir, in_repo):
    """The normal path: documents from a CPT manifest (written with the contract's ShardWriter)."""
    from corpora_manifests.models import Manifest, load_manifest
    from corpora_manifests.provenance import make_provenance
    from corpora_manifests.shards import CPT_SCHEMA, ShardWriter, iter_rows
    from synthesis.pipeline import run_synthesis

    recs = [json.loads(x) for x in (fixtures_dir / "laws" / "laws_sample.jsonl").read_text(encoding="utf-8").splitlines()[:4]]
    cpt = tmp_path / "cpt"
    with ShardWriter(cpt, schema=CPT_SCHEMA) as w:
        for r in recs:
            w.write({"id": r["id"], "text": r["text"], "source": "lawrefbook", "n_tokens": 1,
                     "metadata": {"title": r["title"], "version_group": r["version_group"]}})
    Manifest(name="cpt", stage="cpt", producer=make_provenance(command="test"), shards=w.shards).write(cpt)
    out = run_synthesis("configs/demo/synth_stage2.yaml",
                        [f"output_dir={tmp_path / 'out'}", "source.kind=manifest", f"source.path={cpt}"], progress=False)
    rows = list(iter_rows(out / "sft_stage2")) + list(iter_rows(out / "eval"))
    assert {r["metadata"]["synth.doc_id"] for r in rows} <= {r["id"] for r in recs}
    assert {r["metadata"]["synth.doc_group"] for r in rows} <= {f"g:{r['version_group']}" for r in recs}
    assert any(recs[0]["title"] in r["messages"][0]["content"] for r in rows if r["metadata"]["synth.doc_id"] == recs[0]["id"])
    assert load_manifest(out / "sft_stage2").sources[0].counts["documents"] == 4
