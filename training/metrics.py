"""Top-k accuracy, micro and macro, from neighbour labels."""
from __future__ import annotations

from collections import defaultdict
from typing import Optional, Sequence

import numpy as np

from clibd.fitting import youden_threshold


def topk_hits(neighbor_labels: Sequence[Sequence[Optional[str]]], true_labels: Sequence[Optional[str]],
              k: int) -> np.ndarray:
    """Per query: is the true label among the labels of its k nearest keys."""
    return np.array([t is not None and t in list(row[:k]) for row, t in zip(neighbor_labels, true_labels)],
                    dtype=bool)


def micro_macro(hits: np.ndarray, true_labels: Sequence[Optional[str]]) -> tuple[float, float, int]:
    """Micro accuracy (over queries), macro accuracy (mean over classes) and the query count.

    Queries without a true label are left out; NaN when none is left.
    """
    per_class: dict[str, list[bool]] = defaultdict(list)
    for hit, label in zip(hits, true_labels):
        if label is not None:
            per_class[label].append(bool(hit))
    n = sum(len(v) for v in per_class.values())
    if n == 0:
        return float("nan"), float("nan"), 0
    micro = sum(sum(v) for v in per_class.values()) / n
    macro = float(np.mean([np.mean(v) for v in per_class.values()]))
    return float(micro), macro, n


def harmonic_mean(a: float, b: float) -> float:
    """H = 2ab / (a + b); 0 when either is 0, NaN when either is NaN."""
    if np.isnan(a) or np.isnan(b):
        return float("nan")
    return 0.0 if a + b == 0 else 2 * a * b / (a + b)


def chance_top1(true_labels: Sequence[Optional[str]], key_labels: Sequence[Optional[str]]) -> float:
    """Expected micro top-1 of a uniformly random key."""
    counts: dict[str, int] = defaultdict(int)
    for label in key_labels:
        counts[label] += 1
    labelled = [t for t in true_labels if t is not None]
    if not labelled or not key_labels:
        return float("nan")
    return float(np.mean([counts.get(t, 0) / len(key_labels) for t in labelled]))


def auroc(positive: Sequence[float], negative: Sequence[float]) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    pos, neg = np.asarray(positive, dtype=float), np.asarray(negative, dtype=float)
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    scores = np.concatenate([pos, neg])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # Average ranks over ties.
    i = 0
    while i < len(scores):
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def best_threshold(positive: Sequence[float], negative: Sequence[float]) -> tuple[float, float]:
    """The score threshold (positive if >= it) with the highest balanced accuracy, and that accuracy (the same
    fitter the service's calibration uses, `clibd.fitting.youden_threshold`)."""
    t = youden_threshold(positive, negative)
    if t is None:
        return float("nan"), 0.0
    pos, neg = np.asarray(positive, dtype=float), np.asarray(negative, dtype=float)
    return t, float(((pos >= t).mean() + (neg < t).mean()) / 2)
