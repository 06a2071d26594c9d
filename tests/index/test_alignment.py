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


def test_the_overlap_needed_counts_determined_bases_only():
    """A degraded barcode, half N, is compared over its determined half (half of that is the overlap needed),
    as vsearch compares it; a record with under 100 determined bases still never is."""
    a = _random_seq(658, 5)
    degraded = "N" * 160 + a[160:300] + "N" * 358  # 140 determined bases of 658
    hit = align(degraded, a)
    assert hit is not None and hit.identity == 100.0 and hit.overlap == 140
    stub = "N" * 300 + a[300:380] + "N" * 278  # 80 determined bases: too little to say anything
    assert align(a, stub) is None
    assert align(a[:300], a[300:] + a[:300]) is not None  # no N: the overlap needed is as before (half the shorter)
    assert align(a[:300], a[151:] + a[:149]) is None


def test_a_barcode_overhanging_the_start_of_a_longer_one_is_compared_over_the_overlap():
    coi = _random_seq(1200, 4)
    query = coi[:620]  # a barcode starting 240 bases before the longer record does
    longer = coi[240:1200]
    a = align(query, longer)
    assert a is not None and a.identity == 100.0 and a.overlap == 380
    shifted = coi[40:660]  # equal lengths, offset by a primer's worth of bases
    assert align(query, shifted).identity == 100.0 and align(query, shifted).overlap == 580


def _mutated(seq, rng, subs, indels):
    out = list(seq)
    for _ in range(subs):
        i = rng.randrange(len(out))
        out[i] = rng.choice("ACGT".replace(out[i], ""))
    for _ in range(indels):
        i = rng.randrange(len(out))
        if rng.random() < 0.5:
            del out[i]
        else:
            out.insert(i, rng.choice("ACGT"))
    return "".join(out)


def test_totals_read_from_the_indel_runs_equal_walking_the_whole_path():
    import edlib

    from clibd.index.alignment import _counted, _walked
    rng = random.Random(7)
    ragged = 0
    for trial in range(400):
        a = _random_seq(rng.randrange(300, 700), 100 + trial)
        b = _mutated(a, rng, rng.randrange(0, 120), rng.choice([0, 0, 1, 3, 12]))
        start = rng.choice([0, 0, rng.randrange(0, 150)])
        b = b[start:start + rng.randrange(250, 700)] if trial % 3 else b  # a shorter read, an overhang
        if trial % 5 == 0:  # barely overlapping: the end of one is the start of the other
            b = b[-rng.randrange(20, 90):] + _random_seq(rng.randrange(200, 500), 900 + trial)
        short, long_ = (a, b) if len(a) <= len(b) else (b, a)
        res = edlib.align(short, long_, mode="HW", task="path")
        counted = _counted(res["cigar"], len(short), res["editDistance"], res["locations"][0])
        walked = _walked(res["cigar"], short, long_, False, res["locations"][0][0])
        assert counted == walked, (trial, res["cigar"][:80])
        ragged += walked[1]
    assert ragged > 10  # the pairs include ones whose indels crowd an end
