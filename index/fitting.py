"""Fitting thresholds on outcomes of known truth: the balanced separator, and the least precise-enough score."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

MIN_SUPPORT = 10


def youden_threshold(positive: Sequence[float], negative: Sequence[float]) -> Optional[float]:
    """The similarity that best separates present (>=) from absent (<), by TPR + TNR; None without both."""
    if len(positive) == 0 or len(negative) == 0:
        return None
    pos, neg = np.sort(np.asarray(positive)), np.sort(np.asarray(negative))
    candidates = np.unique(np.concatenate([pos, neg]))
    tpr = 1.0 - np.searchsorted(pos, candidates, side="left") / len(pos)
    tnr = np.searchsorted(neg, candidates, side="left") / len(neg)
    return float(candidates[int(np.argmax(tpr + tnr))])


def precision_threshold(scores: Sequence[float], correct: Sequence[bool], target: float) -> Optional[float]:
    """The least score at which answers scoring at least that are right with precision >= target."""
    if len(scores) == 0:
        return None
    order = np.argsort(-np.asarray(scores), kind="stable")
    s, c = np.asarray(scores)[order], np.asarray(correct, dtype=float)[order]
    precision = np.cumsum(c) / np.arange(1, len(c) + 1)
    n = np.arange(1, len(c) + 1)
    ok = (n >= MIN_SUPPORT) & (precision >= target) & np.append(s[1:] < s[:-1], True)  # whole ties only
    found = np.flatnonzero(ok)
    return float(s[found[-1]]) if len(found) else None
