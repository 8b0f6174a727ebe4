"""Stacking: the classifier's P(in) combined with lexicon evidence by a 5-weight logistic regression.

Why: held out of training, fastText's P(in) alone is beaten by a keyword regex on some source
families (abstracts, instructions) and beats it on others (titles, exams); the two are evidence of
different kinds. ``score = σ(w · [1, f(P(in)), keyword hits/4, topic-lexicon hits/4, general-task
marker])`` (hits capped at 4; ``baselines.KEYWORDS``, ``lexicon.TOPIC`` over the first 512
characters, ``lexicon.TASK`` on the first line).

Versions, told apart by the sidecar's ``stack.features`` list:

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
* **v3** (``FEATURES_V3``, default 2026-12-01 03:20 UTC until v4): fit as v2, with the keyword count
  replaced by a net lexicon balance that subtracts other-topic hits (``lexicon.OTHER``: medicine,
  science, computing, sport, arts, food …), over the first 160 characters. Held out, fastText has
  seen no negatives on most topics; the other-topic terms are the evidence against it lacks
  (apps 0.498 → 0.587, titles 0.615 → 0.633; docs/filters.md).
* **v4** (``FEATURES_V4``): v3 with the topic-hit count replaced by the score of a lexicon *mined* from
  the training records (``mined.py``: a log-ratio weight per character bigram; the model's
  ``.mined.npz``), fit on the out-of-family rows **only** (no validation records: there both fastText
  and the mined lexicon are in-distribution and look better than they are), L2 1e-2. The mined
  lexicon carries the topic words of the domains whatever their register, which is where fastText
  fails on unseen instruction data (docs/filters.md).

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
# v4: the topic count replaced by the mined lexicon's mean bigram weight (``mined.MinedLexicon``)
FEATURES_V4 = ("bias", "logit_p_in/4", "mined_mean", "net_hits/4", "general_task")
V4_L2 = 1e-2
_LOGIT_FIRST = (FEATURES_V2, FEATURES_V3, FEATURES_V4)
_OTHER_TOO = (FEATURES_V3, FEATURES_V4)  # the feature sets that also count lexicon.OTHER hits
# v3 reads the first 160 characters (v1/v2: 512; fastText itself reads 128): a third regex scan over
# 512 put the classifier at ~47 k samples/s/core, under the 50 k budget, and 256 did not help enough;
# nested dev F1 by window: 512 0.763, 256 0.760, 160 0.762, 128 0.757 (docs/filters.md)
V3_WINDOW = 160
# v4 reads (lexicons and mined lexicon) the first 128 characters, fastText's own window: it tied 160 on
# the held-out families' dev splits (mean dev F1 0.7781 vs 0.7784) and costs a fifth less regex scanning
V4_WINDOW = 128


def _window(names) -> int:
    return {FEATURES_V3: V3_WINDOW, FEATURES_V4: V4_WINDOW}.get(tuple(names), 512)


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


def _columns(first: np.ndarray, kw, tp, task, other, names, mined=None) -> np.ndarray:
    """The feature matrix from the first column (P(in) or its logit/4), the capped hit counts and
    (v4) the mined lexicon's scores."""
    one = np.ones(len(first))
    if tuple(names) in _OTHER_TOO:
        net = np.clip(kw + tp - 2 * other, -4, 8) / 4
        third = mined if tuple(names) == FEATURES_V4 else tp / 4
        return np.column_stack([one, first, third, net, task])
    return np.column_stack([one, first, kw / 4, tp / 4, task])


def _need_mined(names, mined):
    if tuple(names) == FEATURES_V4 and mined is None:
        raise ValueError("v4 stacking needs the model's mined lexicon (mined.MinedLexicon)")


def features(p_in, texts: list[str], names=FEATURES, mined=None) -> np.ndarray:
    if tuple(names) not in (FEATURES, FEATURES_V2, FEATURES_V3, FEATURES_V4):
        raise ValueError(f"unknown stacking features {names!r}")
    _need_mined(names, mined)
    p = np.asarray(p_in, dtype=np.float64)
    late = tuple(names) in _OTHER_TOO
    ev = evidence(texts, other=late, window=_window(names))
    first = _logit4(p) if tuple(names) in _LOGIT_FIRST else p
    m = mined.score(texts, V4_WINDOW) if tuple(names) == FEATURES_V4 else None
    return _columns(first, ev[:, 0], ev[:, 1], ev[:, 2], ev[:, 3] if late else None, names, m)


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


def fit(p_in, texts: list[str], gold: list[bool], groups: list[str], l2: float | None = None, steps: int = 3000,
        lr: float = 1.0, names=FEATURES, rows: list[list] | None = None) -> list[float]:
    """Weights of the logistic regression, every (group, class) cell weighted equally.

    ``rows``: extra out-of-family rows (``aggregate_rows`` format) fit together with the records.
    v4 is fit on the rows alone (the records are ignored) with L2 ``V4_L2``; v1–v3 with L2 1e-3.
    """
    v4 = tuple(names) == FEATURES_V4
    if l2 is None:
        l2 = V4_L2 if v4 else 1e-3
    if v4:
        if not rows:
            raise ValueError("v4 stacking is fit on out-of-family rows (stack_rows of benchmarks/domain_lofo.py)")
        X, y, cells, counts = np.zeros((0, 5)), np.zeros(0), [], np.zeros(0)
    else:
        X = features(p_in, texts, names)
        y = np.asarray(gold, dtype=np.float64)
        cells = [("valid:" + g, bool(t)) for g, t in zip(groups, gold)]
        counts = np.ones(len(texts))
    if rows:
        if tuple(names) not in _LOGIT_FIRST:
            raise ValueError("out-of-family stack rows are v2/v3/v4 (logit) features")
        need = {FEATURES_V3: 8, FEATURES_V4: 9}.get(tuple(names), 7)
        if any(len(r) < need for r in rows):
            raise ValueError(f"{'v4' if v4 else 'v3'} stacking needs stack rows with "
                             f"{'mined-lexicon scores' if v4 else 'other-topic hits'} (re-run benchmarks/domain_lofo.py)")
        # [family, gold, logit4, kw, tp, task, (other, (mined,)) count]
        R = np.asarray([r[2:6] + [r[6] if len(r) >= 8 else 0, r[7] if len(r) >= 9 else 0, r[-1]] for r in rows],
                       dtype=np.float64)
        X = np.vstack([X, _columns(R[:, 0], R[:, 1], R[:, 2], R[:, 3], R[:, 4], names, R[:, 5])])
        y = np.r_[y, [float(r[1]) for r in rows]]
        cells += [("dev:" + r[0], bool(r[1])) for r in rows]
        counts = np.r_[counts, R[:, 6]]
    return _fit_matrix(X, y, cells, counts, l2, steps, lr)


def aggregate_rows(family: str, p_in, texts: list[str], gold: list[bool], names=FEATURES_V2, mined=None) -> list[list]:
    """Out-of-family rows ``[family, gold, round(logit(P(in))/4, 2), kw hits, topic hits, task, count]``
    (v3: ``…, task, other hits, count`` over the v3 window; v4: ``…, other hits, round(mined score, 2),
    count``): identical rows merged, so the LOFO JSON carries thousands of records in a few hundred
    numbers (and no text of the held-out, possibly non-redistributable, family)."""
    _need_mined(names, mined)
    lg = np.round(_logit4(np.asarray(p_in, dtype=np.float64)), 2)
    late = tuple(names) in _OTHER_TOO
    ev = evidence(texts, other=late, window=_window(names))
    extra = (np.round(mined.score(texts, V4_WINDOW), 2)[:, None] if tuple(names) == FEATURES_V4
             else np.zeros((len(texts), 0)))
    cnt = Counter((bool(g), float(a), *map(int, e), *map(float, x))
                  for g, a, e, x in zip(gold, lg.tolist(), ev.tolist(), extra.tolist()))
    return [[family, *key, n] for key, n in sorted(cnt.items())]


def apply(weights, p_in, texts: list[str], names=FEATURES, mined=None) -> np.ndarray:
    return 1 / (1 + np.exp(-(features(p_in, texts, names, mined) @ np.asarray(weights, dtype=np.float64))))
