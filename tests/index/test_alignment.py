"""Percent identity over the overlap from a real edlib alignment (what BOLD reports beside each hit)."""
import random

import pytest

from index.alignment import percent_identity


def _random_seq(n, seed):
    rng = random.Random(seed)
    return "".join(rng.choice("ACGT") for _ in range(n))


def test_percent_identity_counts_the_overlap_and_normalises_input():
    a = _random_seq(600, 1)
    assert percent_identity(a, a) == 100.0
    b = a[:300] + ("A" if a[300] != "A" else "C") + a[301:]
    assert percent_identity(a, b) == pytest.approx(100 * 599 / 600)
    assert percent_identity(a, a[50:550]) == 100.0  # a shorter barcode inside a longer one: end gaps are free
    assert percent_identity(a.lower(), a.replace("T", "U")) == 100.0
    assert percent_identity(a, _random_seq(600, 2)) is None  # unrelated: aligns no better than chance
