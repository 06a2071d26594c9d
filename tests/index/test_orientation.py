"""A barcode given as its reverse complement is searched on the strand the references are on."""
import random

import numpy as np

from tests.index.barcodes_helpers import mutate, random_barcode
from tests.index.test_barcode_search import _searcher

from clibd.index.orientation import has_open_frame, orient, reverse_complement


def _coding(codons: int, seed: int) -> str:
    """A random open reading frame (no TAA/TAG), AT-rich like insect COI (SYNTHETIC)."""
    r, out = random.Random(seed), []
    while len(out) < codons:
        c = "".join(r.choices("ACGT", weights=(35, 15, 15, 35), k=3))
        if c not in ("TAA", "TAG"):
            out.append(c)
    return "".join(out)


def test_reverse_complement_reads_the_other_strand_iupac_included():
    assert reverse_complement("AACGTN") == "NACGTT"
    assert reverse_complement("RYKMBDHVSW") == "WSBDHVKMRY"
    seq = random_barcode(300, 1)
    assert reverse_complement(reverse_complement(seq)) == seq


def test_a_coding_strand_has_an_open_frame_and_its_complement_has_none():
    for seed in range(5):
        seq = "G" + _coding(219, seed)  # frame 1, not 0
        assert has_open_frame(seq) and not has_open_frame(reverse_complement(seq))
    assert not has_open_frame("ATG" * 10 + "TAA" + "TAG" * 3 + "ATAA")  # stops in every frame
    assert not has_open_frame(_coding(20, 0))  # too short to tell


def test_orient_consults_the_kmers_only_when_the_frames_do_not_tell():
    """`shared` is a stub counting its calls: what is isolated is when orient asks the references."""
    calls = []

    def shared(s):
        calls.append(s)
        return 10 if s.startswith("T") else 5
    coding = _coding(219, 3)
    assert orient(coding, shared) == (coding, False) and not calls  # the frames decide
    rc = reverse_complement(coding)
    assert orient(rc, shared) == ((coding, True) if coding.startswith("T") else (rc, False)) and calls
    calls.clear()
    noise = "T" + random_barcode(400, 9)  # no open frame either way (random): the k-mers decide
    assert orient(noise, lambda s: 3) == (noise, False)  # a tie keeps the strand given
    assert orient(reverse_complement(noise), lambda s: 10 if s == noise else 4) == (noise, True)


def test_searcher_orients_a_reversed_barcode_and_its_hits_match_the_forward_ones(tmp_path):
    searcher, records, sp_seq = _searcher(tmp_path)
    query = mutate(sp_seq[7], 0.01, 5)
    assert searcher.orient_barcode(query) == (query, False)
    oriented, reversed_ = searcher.orient_barcode(reverse_complement(query))
    assert reversed_ and oriented == query
    assert not any(h.identity > 80 for h in searcher.barcode_hits(reverse_complement(query), candidates=8))
    assert searcher.barcode_hits(oriented, candidates=8)[0].record.species == "G2 sp7"


def test_keys_added_since_the_snapshot_count_when_orienting(tmp_path):
    searcher, records, sp_seq = _searcher(tmp_path)
    new_species = random_barcode(658, 4242)  # unlike every snapshot key: only the added key can tell the strand
    query = mutate(new_species, 0.01, 1)
    assert searcher.orient_barcode(reverse_complement(query)) == (reverse_complement(query), False)
    searcher.add("dna", [records[0].__class__(id="new", modality="dna", order="Diptera", family="Muscidae",
                                                genus="G0", species="G0 spnew", dna=new_species)],
                 np.ones((1, 8), np.float32) / np.sqrt(8))
    assert searcher.orient_barcode(reverse_complement(query)) == (query, True)


def test_a_reference_stored_reversed_is_indexed_on_its_coding_strand():
    from clibd.index.barcodes import BarcodeIndex, align_hits, candidate_pool
    a, b = "A" + _coding(219, 11), "A" + _coding(219, 12)
    keys = [type("Key", (), {"id": f"k{i}", "dna": d})() for i, d in enumerate((a, reverse_complement(b)))]
    index = BarcodeIndex.build([k.dna for k in keys])
    query = mutate(b, 0.01, 3)
    hits = align_hits(query, candidate_pool(index, keys, query, 2))
    assert hits[0].record.id == "k1" and hits[0].identity > 97
    assert index.sequences == [a, b]  # the stored key is left as it is; its index entry is turned
    assert keys[1].dna == reverse_complement(b)
