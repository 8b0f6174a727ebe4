"""Stacking: the classifier's P(in) combined with lexicon evidence by a 5-weight logistic regression.

Why: held out of training, fastText's P(in) alone is beaten by a keyword regex on some source
families (abstracts, instructions) and beats it on others (titles, exams); the two are evidence of
different kinds. ``score = σ(w · [1, f(P(in)), keyword hits/4, topic-lexicon hits/4, general-task
marker])`` (hits capped at 4; ``baselines.KEYWORDS``, ``lexicon.TOPIC`` over the first 512
characters, ``lexicon.TASK`` on the first line).

Two versions, told apart by the sidecar's ``stack.features`` list:

* **v1** (``FEATURES``, f = P(in)), weights fit on the *validation* records of the training
  families only. There fastText is in-distribution and confident, so the fit trusts P(in) more
  than it deserves on a family the model never saw (instructions: F1 0.613 against the keyword
  regex's 0.784 held out).
* **v2** (``FEATURES_V2``, the default since 2026-12-01 01:30 UTC; f = logit(P(in))/4): fit on those
  validation records **plus out-of-family rows** — each leave-one-family-out model's scores on the
  *dev split* of the family it never saw (``lofo.py`` puts them, aggregated, in the LOFO JSON as
  ``stack_rows``). So the weights learn how far P(in) can be trusted on unseen text. The logit keeps
  the confident end of P(in) spread out, which a linear P(in) squashes. Chosen over v1 and other
  variants by the nested dev criterion in docs/filters.md.
* **v3** (``FEATURES_V3``, the default since 2026-12-01 03:20 UTC): fit as v2, with the keyword count
  replaced by a net lexicon balance that subtracts other-topic hits (``lexicon.OTHER``: medicine,
  science, computing, sport, arts, food …), over the first 160 characters. Held out, fastText has
  seen no negatives on most topics; the other-topic terms are the evidence against it lacks
  (apps 0.498 → 0.587, titles 0.615 → 0.633; docs/filters.md).

Every (group, class) cell weighs the same (no family and no class dominates); plain gradient
descent with a small L2; five numbers stored in the model sidecar (``stack``).
"""
from __future__ import annotations

from collections import Counter

import numpy as np

FEATURES = ("bias", "p_in", "keyword_hits/4", "topic_hits/4", "general_task")
FEATURES_V2 = ("bias", "logit_p_in/4", "keyword_hits/4", "topic_hits/4", "general_task")
# v3: the keyword count enters only through the net lexicon balance (keyword + topic − 2 × other-topic
# hits, each capped at 4, the sum clipped to [−4, 8]); ``lexicon.OTHER`` names topics outside the domains
FEATURES_V3 = ("bias", "logit_p_in/4", "topic_hits/4", "net_hits/4", "general_task")
_LOGIT_FIRST = (FEATURES_V2, FEATURES_V3)
# v3 reads the first 160 characters (v1/v2: 512; fastText itself reads 128): a third regex scan over
# 512 put the classifier at ~47 k samples/s/core, under the 50 k budget, and 256 did not help enough;
# nested dev F1 by window: 512 0.763, 256 0.760, 160 0.762, 128 0.757 (docs/filters.md)
V3_WINDOW = 160


def _logit4(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(q / (1 - q)) / 4


def evidence(texts: list[str], other: bool = False, window: int = 512) -> np.ndarray:
    """The lexicon columns over the first ``window`` characters: keyword hits (≤ 4), topic hits (≤ 4),
    general-task marker (0/1) and, with ``other``, other-topic hits (≤ 4; ``lexicon.OTHER``)."""
    from .baselines import _PAT
    from .lexicon import _OTHER, _TOPIC, is_general_task

    n = len(texts)
    heads = [t[:window] for t in texts]
    kw = np.fromiter((min(len(_PAT.findall(t)), 4) for t in heads), dtype=np.float64, count=n)
    tp = np.fromiter((min(len(_TOPIC.findall(t)), 4) for t in heads), dtype=np.float64, count=n)
    task = np.fromiter((is_general_task(t) for t in texts), dtype=np.float64, count=n)
    cols = [kw, tp, task]
    if other:
        cols.append(np.fromiter((min(len(_OTHER.findall(t)), 4) for t in heads), dtype=np.float64, count=n))
    return np.column_stack(cols)


def _columns(first: np.ndarray, kw, tp, task, other, names) -> np.ndarray:
    """The feature matrix from the first column (P(in) or its logit/4) and the capped hit counts."""
    one = np.ones(len(first))
    if tuple(names) == FEATURES_V3:
        net = np.clip(kw + tp - 2 * other, -4, 8) / 4
        return np.column_stack([one, first, tp / 4, net, task])
    return np.column_stack([one, first, kw / 4, tp / 4, task])


def features(p_in, texts: list[str], names=FEATURES) -> np.ndarray:
    if tuple(names) not in (FEATURES, FEATURES_V2, FEATURES_V3):
        raise ValueError(f"unknown stacking features {names!r}")
    p = np.asarray(p_in, dtype=np.float64)
    v3 = tuple(names) == FEATURES_V3
    ev = evidence(texts, other=v3, window=V3_WINDOW if v3 else 512)
    first = _logit4(p) if tuple(names) in _LOGIT_FIRST else p
    return _columns(first, ev[:, 0], ev[:, 1], ev[:, 2], ev[:, 3] if v3 else None, names)


def _fit_matrix(X: np.ndarray, y: np.ndarray, cells: list, counts: np.ndarray, l2: float, steps: int,
                lr: float) -> list[float]:
    tot = Counter()
    for c, n in zip(cells, counts):
        tot[c] += n
    sw = np.asarray([n / tot[c] for c, n in zip(cells, counts)])
    sw /= sw.sum()
    w = np.zeros(X.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(X @ w)))
        w -= lr * (X.T @ (sw * (p - y)) + l2 * np.r_[0.0, w[1:]])
    return [round(float(v), 6) for v in w]


def fit(p_in, texts: list[str], gold: list[bool], groups: list[str], l2: float = 1e-3, steps: int = 3000,
        lr: float = 1.0, names=FEATURES, rows: list[list] | None = None) -> list[float]:
    """Weights of the logistic regression, every (group, class) cell weighted equally.

    ``rows``: extra out-of-family rows (``aggregate_rows`` format) fit together with the records.
    """
    X = features(p_in, texts, names)
    y = np.asarray(gold, dtype=np.float64)
    cells = [("valid:" + g, bool(t)) for g, t in zip(groups, gold)]
    counts = np.ones(len(texts))
    if rows:
        if tuple(names) not in _LOGIT_FIRST:
            raise ValueError("out-of-family stack rows are v2/v3 (logit) features")
        if tuple(names) == FEATURES_V3 and any(len(r) < 8 for r in rows):
            raise ValueError("v3 stacking needs stack rows with other-topic hits (re-run benchmarks/domain_lofo.py)")
        # [family, gold, logit4, kw, tp, task, (other,) count]
        R = np.asarray([r[2:6] + [r[6] if len(r) >= 8 else 0, r[-1]] for r in rows], dtype=np.float64)
        X = np.vstack([X, _columns(R[:, 0], R[:, 1], R[:, 2], R[:, 3], R[:, 4], names)])
        y = np.r_[y, [float(r[1]) for r in rows]]
        cells += [("dev:" + r[0], bool(r[1])) for r in rows]
        counts = np.r_[counts, R[:, 5]]
    return _fit_matrix(X, y, cells, counts, l2, steps, lr)


def aggregate_rows(family: str, p_in, texts: list[str], gold: list[bool], names=FEATURES_V2) -> list[list]:
    """Out-of-family rows ``[family, gold, round(logit(P(in))/4, 2), kw hits, topic hits, task, count]``
    (v3: ``…, task, other hits, count`` over the v3 window):
    identical rows merged, so the LOFO JSON carries thousands of records in a few hundred numbers
    (and no text of the held-out, possibly non-redistributable, family)."""
    lg = np.round(_logit4(np.asarray(p_in, dtype=np.float64)), 2)
    v3 = tuple(names) == FEATURES_V3
    ev = evidence(texts, other=v3, window=V3_WINDOW if v3 else 512)
    cnt = Counter((bool(g), float(a), *map(int, e)) for g, a, e in zip(gold, lg.tolist(), ev.tolist()))
    return [[family, *key, n] for key, n in sorted(cnt.items())]


def apply(weights, p_in, texts: list[str], names=FEATURES) -> np.ndarray:
    return 1 / (1 + np.exp(-(features(p_in, texts, names) @ np.asarray(weights, dtype=np.float64))))
