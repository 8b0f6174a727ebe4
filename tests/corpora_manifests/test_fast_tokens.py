"""tiktoken on the Qwen2.5 ranks gives the transformers tokenizer's ids, id for id, on every fixture
document (every text file, every string in every JSON/JSONL/CSV/parquet fixture) and on the inputs
where the two could part: non-NFC text and added-token spellings."""
import csv
import json

import pytest

from corpora_manifests.fast_tokens import encode_batch, is_builtin_qwen25, qwen25_tiktoken
from corpora_manifests.tokenizer import count_tokens

TEXT_EXT = {".txt", ".md", ".html", ".htm"}


def _strings(obj):
    if isinstance(obj, str):
        if obj:
            yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)


def fixture_documents(root):
    import pyarrow.parquet as pq

    docs = []
    for p in sorted(root.rglob("*")):
        if not p.is_file():
            continue
        if p.suffix in TEXT_EXT or p.name.startswith("LICENSE"):
            docs.append(p.read_text(encoding="utf-8", errors="replace"))
        elif p.suffix == ".jsonl":
            for line in p.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    docs.extend(_strings(json.loads(line)))
                except json.JSONDecodeError:
                    docs.append(line)  # the broken-input fixtures are text too
        elif p.suffix == ".json":
            try:
                docs.extend(_strings(json.loads(p.read_text(encoding="utf-8"))))
            except (json.JSONDecodeError, UnicodeDecodeError):
                pass
        elif p.suffix == ".csv":
            with open(p, encoding="utf-8", newline="") as f:
                docs.extend(c for row in csv.reader(f) for c in row if c)
        elif p.suffix == ".parquet":
            for row in pq.read_table(p).to_pylist():
                docs.extend(_strings(row))
    return docs


def _hf(tok, texts):
    return [e.ids for e in tok.backend_tokenizer.encode_batch(texts, add_special_tokens=False)]


def test_identical_ids_on_every_fixture_document(qwen_tokenizer, fixtures_dir):
    docs = fixture_documents(fixtures_dir)
    assert len(docs) > 3000 and sum(map(len, docs)) > 1_000_000  # the fixtures really were read
    fast = encode_batch(qwen_tokenizer, docs)
    slow = _hf(qwen_tokenizer, docs)
    bad = [i for i, (a, b) in enumerate(zip(fast, slow)) if a != b]
    assert not bad, f"{len(bad)} documents differ, first: {docs[bad[0]][:200]!r}"
    assert count_tokens(qwen_tokenizer, docs[:50]) == [len(x) for x in slow[:50]]


@pytest.mark.parametrize("text", [
    "Cafe\u0301 e\u0301t\u00e9",                      # decomposed accents: NFC composes them
    "\uf900\uf901 豈更 \u2f00 ㈱ ｆｕｌｌ",              # CJK compatibility ideographs change under NFC
    "\u1100\u1161\u11a8 한국어",                        # conjoining Hangul jamo
    "正文<|endoftext|>下一篇<|im_start|>user\n问<|im_end|>",  # added tokens inside a document
    "<tool_call>{}</tool_call> <|fim_prefix|>x<|fim_suffix|>",
    "<|endoftext",                                     # a prefix of one is ordinary text
    "  多个  空格\n\n\t以及 English words, numbers 12345 和符号！？\r\n\r\n   ",
    "a" * 5000 + "国" * 5000,                         # long single pre-tokens
])
def test_identical_ids_where_the_encoders_could_part(qwen_tokenizer, text):
    assert encode_batch(qwen_tokenizer, [text]) == _hf(qwen_tokenizer, [text])


def test_threads_and_batches_give_the_same_ids(qwen_tokenizer, fixtures_dir):
    docs = fixture_documents(fixtures_dir / "laws")
    assert encode_batch(qwen_tokenizer, docs, threads=3) == encode_batch(qwen_tokenizer, docs, threads=1)
    assert encode_batch(qwen_tokenizer, []) == []


def test_fast_path_only_for_the_built_qwen25(qwen_tokenizer, tmp_path):
    from corpora_manifests.tokenizer import load_tokenizer

    assert is_builtin_qwen25(qwen_tokenizer)
    assert qwen25_tiktoken().encode_ordinary("你好") == [108386]
    qwen_tokenizer.save_pretrained(tmp_path)
    other = load_tokenizer(str(tmp_path))  # a model directory: the HF tokenizer is used as it is
    assert not is_builtin_qwen25(other)
    assert encode_batch(other, ["你好 world"]) == _hf(other, ["你好 world"])
