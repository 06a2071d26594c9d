"""Percent identity over the overlap from a real edlib alignment (what BOLD reports beside each hit)."""
import random

import pytest

from clibd.index.alignment import align, percent_identity


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


def test_ambiguity_codes_are_not_evidence_of_identity():
    a = _random_seq(658, 3)
    mostly_n = a[:150] + "N" * 508  # a real kind of BOLD record: a short read padded with N
    assert percent_identity(a[200:], mostly_n) is None  # the query falls into the N stretch: nothing to compare
    diverged = "".join(("T" if c != "T" else "A") if i % 10 == 0 else c for i, c in enumerate(a))
    assert percent_identity(a, diverged) == pytest.approx(90.0, abs=0.2)
    masked = diverged[:5] + "N" + diverged[6:10] + "R" + diverged[11:]  # one match, one mismatch masked
    assert align(a, masked).columns == 656
    assert align(a, masked).matches == align(a, diverged).matches - 1


def test_a_barcode_overhanging_the_start_of_a_longer_one_is_compared_over_the_overlap():
    coi = _random_seq(1200, 4)
    query = coi[:620]  # a barcode starting 240 bases before the longer record does
    longer = coi[240:1200]
    a = align(query, longer)
    assert a is not None and a.identity == 100.0 and a.overlap == 380
    shifted = coi[40:660]  # equal lengths, offset by a primer's worth of bases
    assert align(query, shifted).identity == 100.0 and align(query, shifted).overlap == 580
