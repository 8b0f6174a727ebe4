import json

import pyarrow as pa
import pyarrow.parquet as pq

from filters.readers import Malformed, Sample, detect_format, normalise, read_samples


def test_infinity_instruct_record_normalised_with_categories(fixtures_dir):
    out = list(read_samples(fixtures_dir / "filters" / "infinity_instruct_sample.jsonl"))
    assert out and all(isinstance(s, Sample) for s in out)
    s = out[0]
    assert s.format == "infinity"
    assert [m["role"] for m in s.messages] == ["user", "assistant"]
    assert "财务、金融与商业知识" in s.categories and "financial, financial and business knowledge" in s.categories
    assert s.metadata["lang.source_langdetect"] == "zh-cn"
    assert s.id == "9cbd0a0941a191984aa47e3c16b9ecec"  # Infinity-Instruct's id
    assert isinstance(s.metadata["domain.source_reward"], float)
    law = [x for x in out if "法律与安全知识" in x.categories]  # the real zh label of the law category
    assert law and all("legal knowledge" in x.categories for x in law)


def test_sharegpt_and_alpaca_fixtures(fixtures_dir):
    sg = [s for s in read_samples(fixtures_dir / "instructions" / "sharegpt_zh_1k.jsonl")]
    assert all(isinstance(s, Sample) and s.format == "sharegpt" for s in sg)
    assert any(len(s.messages) > 2 for s in sg)  # multi-turn kept whole
    fin = list(read_samples(fixtures_dir / "instructions" / "disc_fin_sft_samples.jsonl"))
    assert {s.format for s in fin} == {"alpaca"}
    with_hist = [s for s in fin if len(s.messages) > 2]
    assert with_hist, "DISC-Fin history pairs become earlier turns"
    assert with_hist[0].messages[0]["role"] == "user" and with_hist[0].messages[1]["role"] == "assistant"


def test_openai_longwriter_json_and_parquet(tmp_path):
    recs = [{"messages": [{"role": "system", "content": "你是助手"}, {"role": "user", "content": "公司法是什么？"},
                          {"role": "assistant", "content": "公司法是规范公司组织和行为的法律。"}]}]
    (tmp_path / "a.json").write_text(json.dumps(recs, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "b.json").write_text(json.dumps({"data": recs}, ensure_ascii=False), encoding="utf-8")
    pq.write_table(pa.Table.from_pylist(recs), tmp_path / "c.parquet")
    for name in ("a.json", "b.json", "c.parquet"):
        got = list(read_samples(tmp_path / name, "longwriter" if name == "a.json" else "auto"))
        assert len(got) == 1 and isinstance(got[0], Sample), name
        assert got[0].messages[0] == {"role": "system", "content": "你是助手"}
        assert got[0].format == "openai"


def test_format_override_and_detection():
    rec = {"instruction": "解释通货膨胀", "input": "", "output": "物价总水平持续上涨。"}
    assert detect_format(rec) == "alpaca"
    s = normalise(rec, "alpaca")
    assert s.messages == [{"role": "user", "content": "解释通货膨胀"}, {"role": "assistant", "content": "物价总水平持续上涨。"}]


def test_malformed_records_become_rejects_with_reasons(fixtures_dir):
    out = list(read_samples(fixtures_dir / "filters" / "malformed.jsonl"))
    good = [s for s in out if isinstance(s, Sample)]
    bad = {m.reason for m in out if isinstance(m, Malformed)}
    assert [s.id for s in good] == ["good-1", "good-2"]
    assert {"invalid_json", "not_an_object", "unknown_role", "no_assistant_answer", "bad_turn",
            "unknown_format"} <= bad


def test_invalid_utf8_and_unreadable_files(fixtures_dir, tmp_path):
    out = list(read_samples(fixtures_dir / "broken" / "invalid_utf8.jsonl"))
    reasons = [m.reason for m in out if isinstance(m, Malformed)]
    assert "invalid_utf8" in reasons
    (tmp_path / "x.parquet").write_bytes(b"not a parquet file")
    got = list(read_samples(tmp_path / "x.parquet"))
    assert len(got) == 1 and got[0].reason == "unreadable_file"


def test_longwriter_6k_row_shape(tmp_path):
    """LongWriter-6k's long.jsonl rows are {"messages": [{role: user}, {role: assistant}]} (dataset card)."""
    p = tmp_path / "long.jsonl"
    row = {"messages": [{"role": "user", "content": "写一篇8000字的关于国有企业改革的报告"},
                        {"role": "assistant", "content": "# 国有企业改革报告\n\n一、背景……" * 20}]}
    p.write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    for fmt in ("auto", "longwriter"):
        (s,) = list(read_samples(p, fmt))
        assert isinstance(s, Sample) and s.format == "openai" and [m["role"] for m in s.messages] == ["user", "assistant"]
