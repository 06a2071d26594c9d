"""The k-mer candidate index and barcode evidence: conspecifics are candidates, other COI stretches never hits."""
import numpy as np

from tests.index.barcodes_helpers import mutate as _mutate, random_barcode as _seq

from clibd.index.alignment import align, percent_identity
from clibd.index.barcodes import BarcodeIndex, align_hits
from clibd.index.kmers import KmerConfig, KmerIndex


def test_the_closest_reference_ranks_first_among_many():
    base = _seq(658, 0)
    refs = [_seq(658, 100 + i) for i in range(300)] + [_mutate(base, 0.10, 1), _mutate(base, 0.01, 2)]
    idx = KmerIndex.build(refs, KmerConfig(12, 2))
    found, counts = idx.search(_mutate(base, 0.01, 3), 5)
    assert list(found[:2]) == [301, 300] and counts[0] > counts[1] > 0



def test_save_and_load_give_the_same_candidates(tmp_path):
    refs = [_seq(600, i) for i in range(50)]
    idx = KmerIndex.build(refs)
    idx.save(tmp_path / "k.npz")
    again = KmerIndex.load(tmp_path / "k.npz")
    q = _mutate(refs[7], 0.02, 9)
    assert np.array_equal(again.search(q, 4)[0], idx.search(q, 4)[0]) and again.search(q, 4)[0][0] == 7


def test_a_fragment_of_another_coi_stretch_is_never_compared():
    coi = _seq(1200, 5)
    folmer, other = coi[:658], coi[700:1100]  # no overlap at all
    assert align(folmer, other) is None and percent_identity(folmer, other) is None
    partly = coi[500:1000]  # 158 bases of overlap with the Folmer stretch: below half the shorter barcode
    assert align(folmer, partly) is None
    inside = coi[100:500]
    a = align(folmer, inside)
    assert a is not None and a.identity == 100.0 and a.overlap == 400


def test_identity_counts_the_overlap_only_and_reads_iupac_codes():
    a = _seq(658, 11)
    b = a[:300] + ("A" if a[300] != "A" else "C") + a[301:]
    assert align(a, b).identity == 100 * 657 / 658
    assert align(a, a[:200] + "N" + a[201:]).identity == 100.0
    shifted = align(a[:600], a[200:])  # 400 shared bases, each barcode overhangs the other
    assert shifted is not None and shifted.identity == 100.0 and shifted.overlap == 400


def test_barcode_index_maps_identical_barcodes_to_every_key_carrying_them():
    a, b = _seq(650, 1), _seq(650, 2)
    idx = BarcodeIndex.build([a, None, b, a.lower(), "XYZ"])
    assert len(idx.sequences) == 2
    first = idx.candidates(a, 1)[0]
    assert sorted(idx.members(first).tolist()) == [0, 3]
    hits = align_hits(a, [("r0", a, None), ("r2", b, 0.5), ("r3", a, 0.9)])
    assert [h.record for h in hits] == ["r3", "r0"] and hits[0].identity == 100.0  # r2: chance-level, no hit


def test_an_index_of_no_barcodes_finds_nothing():
    index = KmerIndex.build([])
    found, counts = index.search("ACGT" * 100, 5)
    assert len(found) == 0 and len(counts) == 0
