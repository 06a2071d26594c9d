"""Fitting thresholds on outcomes of known truth: balanced separators, and the least precise-enough score."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

MIN_SUPPORT = 10


def _below(values: Sequence[float], cuts: np.ndarray) -> np.ndarray:
    """The share of `values` below each cut."""
    return np.searchsorted(np.sort(np.asarray(values, float)), cuts, side="left") / len(values)


def youden_threshold(positive: Sequence[float], negative: Sequence[float]) -> Optional[float]:
    """The similarity that best separates present (>=) from absent (<), by TPR + TNR; None without both."""
    if len(positive) == 0 or len(negative) == 0:
        return None
    cuts = np.unique(np.concatenate([np.asarray(positive, float), np.asarray(negative, float)]))
    return float(cuts[int(np.argmax(_below(negative, cuts) - _below(positive, cuts)))])


def capped_separator(present: Sequence[float], absent: Sequence[float], max_false: float,
                     min_support: int, balanced: bool = True, margin: float = 0.0) -> Optional[float]:
    """The value below which a taxon is called absent, among the cuts that call at most `max_false` of present
    ones absent even `margin` higher: the balanced separator (TPR + TNR), or with `balanced=False` the one
    finding the most absent ones (of equally good cuts, the highest); None with fewer than `min_support` values
    of either kind. The margin keeps a cut off the present values just above it: new data holds more of them."""
    if len(present) < max(min_support, 1) or len(absent) < max(min_support, 1):
        return None
    cuts = np.unique(np.concatenate([np.asarray(present, float) - margin, np.asarray(absent, float),
                                     [max(absent) + 1e-6]]))
    false = _below(present, cuts)
    allowed = _below(present, cuts + margin - 1e-9) <= max_false  # (a cut at a present value less margin spares it)
    score = np.where(allowed, _below(absent, cuts) - (false if balanced else 0.0), -np.inf)
    if not np.isfinite(score).any():
        return None
    return float(cuts[len(cuts) - 1 - int(np.argmax(score[::-1]))])


def precision_threshold(scores: Sequence[float], correct: Sequence[bool], target: float) -> Optional[float]:
    """The least score at which answers scoring at least that are right with precision >= target."""
    if len(scores) == 0:
        return None
    order = np.argsort(-np.asarray(scores), kind="stable")
    s, c = np.asarray(scores)[order], np.asarray(correct, dtype=float)[order]
    n = np.arange(1, len(c) + 1)
    precision = np.cumsum(c) / n
    ok = (n >= MIN_SUPPORT) & (precision >= target) & np.append(s[1:] < s[:-1], True)  # whole ties only
    found = np.flatnonzero(ok)
    return float(s[found[-1]]) if len(found) else None
