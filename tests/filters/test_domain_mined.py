"""The mined lexicon prior (filters/domain/mined.py) and the v4 stacking that reads it."""
import json
import random
import shutil

import numpy as np
import pytest

from filters.domain import stack
from filters.domain.mined import MinedLexicon, bigrams, mine
from filters.domain.model import DomainModel, sidecar_path

from .test_domain_lofo import fixture_families


def _plain_score(lex: dict, text: str, window: int) -> float:
    """The definition, one bigram at a time."""
    v = [lex.get(b, 0.0) for b in bigrams(text, window)]
    return sum(v) / len(v) if v else 0.0


def test_vectorised_score_is_the_mean_bigram_weight():
    rng = random.Random(0)
    pool = [chr(c) for c in range(0x4E00, 0x4E00 + 300)]
    # thousands of keys in a small character range: the hash table has collisions and probe chains
    table = {a + b: round(rng.uniform(-2, 2), 3) for a in pool[:80] for b in pool[:80] if rng.random() < 0.5}
    lex = MinedLexicon.from_weights(table)
    alphabet = pool + list("ab1，。 \n😀") + ["\u3400", "\u9fff", "\ua000"]
    texts = ["", "中", "ab", "中文", "😀中文😀"] + ["".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 300)))
                                                for _ in range(300)]
    for window in (128, 20):
        got = lex.score(texts, window)
        want = np.array([_plain_score(table, t, window) for t in texts])
        assert np.allclose(got, want, atol=1e-6), np.abs(got - want).max()
    assert lex.score([]).shape == (0,)
    assert MinedLexicon.from_weights({}).score(["中文中文"]).tolist() == [0.0]


def test_mined_lexicon_separates_records_it_never_saw(fixtures_dir, tmp_path):
    recs = fixture_families(fixtures_dir)
    # mined from two families, scored on the third (statute articles vs BELLE seed tasks)
    lex = mine([r for r in recs if r["family"] != "statutes"], lambda lab: lab != "other")
    held = [r for r in recs if r["family"] == "statutes"]
    s = lex.score([r["text"] for r in held])
    pos = s[[r["label"] != "other" for r in held]]
    neg = s[[r["label"] == "other" for r in held]]
    auc = float(np.mean(pos[:, None] > neg[None, :]) + 0.5 * np.mean(pos[:, None] == neg[None, :]))
    assert auc >= 0.85, auc
    assert lex.meta["sources"] == {"in": 2, "out": 2} and lex.meta["bigrams"] == len(lex.keys)
    lex.save(tmp_path / "m.npz")
    back = MinedLexicon.load(tmp_path / "m.npz")
    assert back.meta == lex.meta
    assert np.allclose(back.score([r["text"] for r in held]), s, atol=2e-3)  # weights stored as float16
    with pytest.raises(ValueError):
        mine([r for r in recs if r["label"] == "other"], lambda lab: lab != "other")  # one class only


def test_v4_stacking_reads_the_mined_lexicon_and_fits_out_of_family_rows_only(tiny_model, fixtures_dir, tmp_path):
    recs = fixture_families(fixtures_dir)
    lex = mine(recs, lambda lab: lab != "other")
    texts = [r["text"] for r in recs]
    gold = [r["label"] != "other" for r in recs]
    p = [0.5] * len(texts)  # an uninformative classifier: the lexicons must carry the decision
    rows = stack.aggregate_rows("fx", p, texts, gold, stack.FEATURES_V4, lex)
    assert all(len(r) == 9 for r in rows) and sum(r[-1] for r in rows) == len(texts)
    w = stack.fit([], [], [], [], names=stack.FEATURES_V4, rows=rows)
    assert w[2] > 0  # the mined score pushes towards in-domain
    s = stack.apply(w, p, texts, stack.FEATURES_V4, lex)
    assert np.mean(s[np.array(gold)] > 0.5) > 0.8 and np.mean(s[~np.array(gold)] < 0.5) > 0.8
    with pytest.raises(ValueError):
        stack.fit(p, texts, gold, ["g"] * len(texts), names=stack.FEATURES_V4)  # v4 needs out-of-family rows
    with pytest.raises(ValueError):
        stack.features(p, texts, stack.FEATURES_V4)  # ... and the lexicon
    # a model whose sidecar names the lexicon file beside it scores exactly that way
    m_path = tmp_path / "v4.bin"
    shutil.copy(tiny_model, m_path)
    lex.save(tmp_path / "v4.mined.npz")
    side = json.loads(sidecar_path(tiny_model).read_text(encoding="utf-8"))
    side["stack"] = {"weights": w, "features": list(stack.FEATURES_V4), "mined": "v4.mined.npz"}
    sidecar_path(m_path).write_text(json.dumps(side, ensure_ascii=False), encoding="utf-8")
    m = DomainModel(m_path)
    got = np.array([x.p_in for x in m.predict(texts)])
    want = stack.apply(w, m.raw_p_in(texts), texts, stack.FEATURES_V4, MinedLexicon.load(tmp_path / "v4.mined.npz"))
    assert np.allclose(got, want)
    (tmp_path / "v4.mined.npz").unlink()
    from corpora_manifests.errors import UserError

    with pytest.raises(UserError):
        DomainModel(m_path).predict(texts[:2])
