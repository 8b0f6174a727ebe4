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

Every (group, class) cell weighs the same (no family and no class dominates); plain gradient
descent with a small L2; five numbers stored in the model sidecar (``stack``).
"""
from __future__ import annotations

from collections import Counter

import numpy as np

FEATURES = ("bias", "p_in", "keyword_hits/4", "topic_hits/4", "general_task")
FEATURES_V2 = ("bias", "logit_p_in/4", "keyword_hits/4", "topic_hits/4", "general_task")


def _logit4(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(q / (1 - q)) / 4


def evidence(texts: list[str]) -> np.ndarray:
    """The lexicon columns: keyword hits (≤ 4), topic hits (≤ 4), general-task marker (0/1)."""
    from .baselines import _PAT
    from .lexicon import _TOPIC, is_general_task

    kw = np.fromiter((min(len(_PAT.findall(t[:512])), 4) for t in texts), dtype=np.float64, count=len(texts))
    tp = np.fromiter((min(len(_TOPIC.findall(t[:512])), 4) for t in texts), dtype=np.float64, count=len(texts))
    task = np.fromiter((is_general_task(t) for t in texts), dtype=np.float64, count=len(texts))
    return np.column_stack([kw, tp, task])


def features(p_in, texts: list[str], names=FEATURES) -> np.ndarray:
    p = np.asarray(p_in, dtype=np.float64)
    ev = evidence(texts)
    first = _logit4(p) if tuple(names) == FEATURES_V2 else p
    if tuple(names) not in (FEATURES, FEATURES_V2):
        raise ValueError(f"unknown stacking features {names!r}")
    return np.column_stack([np.ones(len(texts)), first, ev[:, 0] / 4, ev[:, 1] / 4, ev[:, 2]])


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
        if tuple(names) != FEATURES_V2:
            raise ValueError("out-of-family stack rows are v2 (logit) features")
        R = np.asarray([r[2:] for r in rows], dtype=np.float64)  # logit4, kw, tp, task, count
        X = np.vstack([X, np.column_stack([np.ones(len(R)), R[:, 0], R[:, 1] / 4, R[:, 2] / 4, R[:, 3]])])
        y = np.r_[y, [float(r[1]) for r in rows]]
        cells += [("dev:" + r[0], bool(r[1])) for r in rows]
        counts = np.r_[counts, R[:, 4]]
    return _fit_matrix(X, y, cells, counts, l2, steps, lr)


def aggregate_rows(family: str, p_in, texts: list[str], gold: list[bool]) -> list[list]:
    """Out-of-family rows ``[family, gold, round(logit(P(in))/4, 2), kw hits, topic hits, task, count]``:
    identical rows merged, so the LOFO JSON carries thousands of records in a few hundred numbers
    (and no text of the held-out, possibly non-redistributable, family)."""
    lg = np.round(_logit4(np.asarray(p_in, dtype=np.float64)), 2)
    ev = evidence(texts)
    cnt = Counter((bool(g), float(a), int(k), int(t), int(s)) for g, a, (k, t, s) in zip(gold, lg.tolist(), ev.tolist()))
    return [[family, g, a, k, t, s, n] for (g, a, k, t, s), n in sorted(cnt.items())]


def apply(weights, p_in, texts: list[str], names=FEATURES) -> np.ndarray:
    return 1 / (1 + np.exp(-(features(p_in, texts, names) @ np.asarray(weights, dtype=np.float64))))
