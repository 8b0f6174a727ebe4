"""Seed-guided selection: char n-gram and local-transformers representations, as combinable steps."""
import json

import pytest
from datatrove.data import Document

from filters.seed import ScoreThresholdFilter, SeedScorer, SeedSimilarityScorer


def _jsonl(p):
    return [json.loads(l) for l in p.open(encoding="utf-8")]


@pytest.fixture(scope="module")
def texts(fixtures_dir):
    fin = [r["instruction"] for r in _jsonl(fixtures_dir / "instructions" / "disc_fin_sft_samples.jsonl")]
    med = [r["messages"][0]["value"] for r in _jsonl(fixtures_dir / "instructions" / "medical_sft_1k_ood.jsonl")]
    return fin, med


def _auc(pos, neg):
    return sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))


def test_char_seeds_rank_the_seed_domain_first(texts):
    fin, med = texts
    seeds, pool_in, pool_out = fin[:40], fin[40:100], med[:60]
    s = SeedScorer(seeds, mode="char")
    a, b = s.score(pool_in), s.score(pool_out)
    assert _auc(a.tolist(), b.tolist()) >= 0.85
    assert s.score([seeds[0]])[0] > a.mean()  # a seed itself is closest


def test_steps_score_then_filter(texts):
    fin, med = texts
    docs = [Document(text=t, id=f"f{i}") for i, t in enumerate(fin[40:70])] + \
           [Document(text=t, id=f"m{i}") for i, t in enumerate(med[:30])]
    scored = list(SeedSimilarityScorer(fin[:40], batch_size=7).run(iter(docs)))
    assert len(scored) == 60 and all("seed.score" in d.metadata for d in scored)
    scores = sorted(d.metadata["seed.score"] for d in scored)
    thr = scores[len(scores) // 2]
    f = ScoreThresholdFilter("seed.score", thr)
    kept = [d for d in scored if f.filter(d) is True]
    assert sum(d.id.startswith("f") for d in kept) > 0.8 * len(kept)
    assert f.filter(Document(text="x", id="n")) == (False, "seed.score_missing")


def test_hf_hidden_states_from_a_tiny_local_model(texts, tmp_path):
    torch = pytest.importorskip("torch")
    from transformers import BertConfig, BertModel, BertTokenizer

    fin, med = texts
    chars = sorted({c for t in fin[:50] + med[:20] for c in t if not c.isspace()})
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars]) + "\n", encoding="utf-8")
    tok = BertTokenizer(str(vocab), tokenize_chinese_chars=True)
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                 intermediate_size=64, max_position_embeddings=300))
    d = tmp_path / "tiny_bert"
    model.save_pretrained(d)
    tok.save_pretrained(d)
    s = SeedScorer(fin[:20], mode="hf", model=d, top_k=1)
    sc = s.score([fin[0], med[0], med[1]])
    assert sc.shape == (3,) and sc[0] == pytest.approx(1.0, abs=1e-4)  # a seed is its own nearest neighbour
    assert all(-1.0 - 1e-6 <= x <= 1.0 + 1e-6 for x in sc)


def test_hf_mode_without_a_model_directory_is_a_user_error(tmp_path):
    from corpora_manifests.errors import UserError

    with pytest.raises(UserError, match="local transformers model directory"):
        SeedScorer(["a"], mode="hf", model=tmp_path / "missing")
