"""Leakage-free train/dev/test splits: by source document group, stratified by task type.

The unit of assignment is the *document group* (a document, or all dated versions of one law), so
no document — and no near-identical version of it — appears in two splits. Groups are stratified
by task type (a group holding any report task is in the ``report`` stratum, else ``qa``), visited
in a seed-determined order, and each goes to the split furthest below its target share of that
stratum's items (80/10/10 by default). Assignments are persisted in the review store: as reviews
accrue and the shards are rebuilt, a document never moves between splits (a model trained on an
earlier train split never sees a later test document); only new groups are placed.
"""
from __future__ import annotations

import hashlib
from collections import Counter
from typing import Iterable

SPLITS = ("train", "dev", "test")


def stratum_of(task_counts: Counter) -> str:
    return "report" if task_counts.get("report") else "qa"


def assign_splits(group_tasks: dict[str, Counter], fractions: dict[str, float], seed: int,
                  existing: dict[str, tuple[str, str]] | None = None) -> dict[str, tuple[str, str]]:
    """Return ``{group: (split, stratum)}`` for every group; ``existing`` assignments are kept."""
    existing = dict(existing or {})
    out: dict[str, tuple[str, str]] = {}
    by_stratum: dict[str, list[str]] = {}
    for g, tasks in group_tasks.items():
        st = stratum_of(tasks)
        by_stratum.setdefault(st, []).append(g)
    for st, groups in sorted(by_stratum.items()):
        have = Counter()
        new = []
        for g in groups:
            if g in existing:
                out[g] = existing[g]
                have[existing[g][0]] += sum(group_tasks[g].values())
            else:
                new.append(g)
        new.sort(key=lambda g: hashlib.sha256(f"{seed}\x00{g}".encode()).hexdigest())
        total = sum(have.values())
        for g in new:
            w = sum(group_tasks[g].values())
            total += w
            # the split with the largest deficit against its target share after adding this group
            split = max(SPLITS, key=lambda s: (fractions[s] * total - have[s], -SPLITS.index(s)))
            have[split] += w
            out[g] = (split, st)
    return out


def check_disjoint(rows: Iterable[tuple[str, str]]) -> dict[str, set[str]]:
    """``{group: splits}`` for every group found in more than one split (should be empty)."""
    seen: dict[str, set[str]] = {}
    for group, split in rows:
        seen.setdefault(group, set()).add(split)
    return {g: s for g, s in seen.items() if len(s) > 1}
