"""The k-mer candidate index and barcode evidence: conspecifics are candidates, other COI stretches never hits."""
import numpy as np

from tests.index.barcodes_helpers import mutate as _mutate, random_barcode as _seq

from clibd.index.alignment import align, percent_identity
from clibd.index.barcodes import WIDEN, BarcodeIndex, align_hits, widened_hits
from clibd.index.kmers import KmerConfig, KmerIndex, short_kmer_share


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


def test_a_broad_search_finds_the_genus_the_rare_kmer_budget_passes_over():
    """A new species of a genus whose 40 keys share its k-mers among themselves: those k-mers are common, so
    the rarest-first budget of a plain search spends itself on references sharing a few rare k-mers by chance
    (here SYNTHETIC snippets of the query). A broad search gathers past the budget."""
    genus = _seq(658, 1)
    keys = [_mutate(genus, 0.02, 10 + i) for i in range(40)]
    query = _mutate(genus, 0.10, 99)
    snippets = [_seq(300, 200 + i) + query[8 * i:8 * i + 40] + _seq(300, 400 + i) for i in range(30)]
    idx = KmerIndex.build(keys + snippets, KmerConfig(12, 2))
    idx.budget = 300  # small enough for 40 keys' shared k-mers to exceed it
    plain, _ = idx.search(query, 16)
    broad, _ = idx.search(query, 16, broad=True)
    assert sum(int(t) < 40 for t in plain) < 8
    assert all(int(t) < 40 for t in broad)


def test_a_broad_search_ranks_by_the_share_of_the_shorter_barcodes_kmers():
    query = _seq(658, 3)
    fragment = query[200:500]  # all of its k-mers are the query's
    long_relative = _mutate(query, 0.03, 4) + _seq(900, 5)  # shares more k-mers in number, a smaller share
    idx = KmerIndex.build([long_relative, fragment], KmerConfig(12, 2))
    assert list(idx.search(query, 2)[0]) == [0, 1]
    assert list(idx.search(query, 2, broad=True)[0]) == [1, 0]


def test_short_kmer_share_is_the_share_of_the_querys_8mers_a_reference_holds():
    query = _seq(658, 6)
    share = short_kmer_share(query, [query, query[100:400], _seq(658, 7), _mutate(query, 0.10, 8), "ACGTN" * 40])
    assert share[0] == 1.0
    assert share[1] == (400 - 100 - 7) / (658 - 7)  # a fragment holds its own length's worth, as vsearch counts
    assert share[2] < 0.2 < share[3] < 0.8
    assert share[4] == 0.0  # every 8-mer there holds an N: none is counted, nothing is shared


def test_widening_keeps_the_plain_candidates_and_adds_a_broad_search():
    """`widened_hits` alone, with a stand-in candidate source that records what it was asked for."""
    query = _seq(658, 11)
    close, far, farther = _mutate(query, 0.01, 12), _mutate(query, 0.08, 13), _mutate(query, 0.12, 14)
    asked = []

    def pool_of(pools):
        def of(n, broad):
            asked.append((n, broad))
            return [(name, seq, None) for name, seq in pools[broad]]
        return of

    hits = widened_hits(query, pool_of({False: [("close", close)], True: []}), 16)
    assert asked == [(16, False)] and [h.record for h in hits] == ["close"]
    asked.clear()
    near = _mutate(query, 0.025, 15)  # a conspecific-level hit among the 128: no broad search
    hits = widened_hits(query, pool_of({False: [("near", near)], True: [("far", far)]}), 16)
    assert asked == [(16, False), (16 * WIDEN, False)] and [h.record for h in hits] == ["near"]
    asked.clear()
    hits = widened_hits(query, pool_of({False: [("farther", farther)], True: [("far", far), ("farther", farther)]}), 16)
    assert asked == [(16, False), (16 * WIDEN, False), (16 * WIDEN, True)]
    assert [h.record for h in hits] == ["far", "farther"]  # the plain search's candidate kept, and once
