"""Stacking: the classifier's P(in) combined with lexicon evidence by a 5-weight logistic regression.

Why: held out of training, fastText's P(in) alone is beaten by a keyword regex on some source
families (abstracts, instructions) and beats it on others (titles, exams); the two are evidence of
different kinds. ``score = σ(w · [1, P(in), keyword hits/4, topic-lexicon hits/4, general-task
marker])`` (hits capped at 4; ``baselines.KEYWORDS``, ``lexicon.TOPIC`` over the first 512
characters, ``lexicon.TASK`` on the first line). The weights are fit on the **validation** records
of the training families, every family × class weighing the same (so no family and no class
dominates), by plain gradient descent with a small L2 — five numbers stored in the model sidecar
(``stack``). The leave-one-family-out benchmark measures it as ``ours+stack``.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

FEATURES = ("bias", "p_in", "keyword_hits/4", "topic_hits/4", "general_task")


def features(p_in, texts: list[str]) -> np.ndarray:
    from .baselines import _PAT
    from .lexicon import _TOPIC, is_general_task

    p = np.asarray(p_in, dtype=np.float64)
    kw = np.fromiter((min(len(_PAT.findall(t[:512])), 4) for t in texts), dtype=np.float64, count=len(texts))
    tp = np.fromiter((min(len(_TOPIC.findall(t[:512])), 4) for t in texts), dtype=np.float64, count=len(texts))
    task = np.fromiter((is_general_task(t) for t in texts), dtype=np.float64, count=len(texts))
    return np.column_stack([np.ones(len(texts)), p, kw / 4, tp / 4, task])


def fit(p_in, texts: list[str], gold: list[bool], groups: list[str], l2: float = 1e-3, steps: int = 3000,
        lr: float = 1.0) -> list[float]:
    """Weights of the logistic regression, every (group, class) cell weighted equally."""
    X = features(p_in, texts)
    y = np.asarray(gold, dtype=np.float64)
    keys = list(zip(groups, gold))
    cnt = Counter(keys)
    sw = np.asarray([1.0 / cnt[k] for k in keys])
    sw /= sw.sum()
    w = np.zeros(X.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(X @ w)))
        w -= lr * (X.T @ (sw * (p - y)) + l2 * np.r_[0.0, w[1:]])
    return [round(float(v), 6) for v in w]


def apply(weights, p_in, texts: list[str]) -> np.ndarray:
    return 1 / (1 + np.exp(-(features(p_in, texts) @ np.asarray(weights, dtype=np.float64))))
