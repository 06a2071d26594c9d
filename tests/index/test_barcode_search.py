"""Barcode hits through the Searcher: k-mer candidates stay right after add, remove and compact."""
import numpy as np
import pytest

from tests.index.barcodes_helpers import mutate as _mutate, random_barcode as _seq

from clibd.index.factory import build_index
from clibd.index.searcher import Neighbor, Searcher
from clibd.index.snapshot import KeyRecord, write_snapshot


def _rec(i, species, dna):
    genus = species.split()[0]
    return KeyRecord(id=f"k{i}", modality="dna", order="Diptera", family="Muscidae", genus=genus,
                     species=species, dna=dna)


def _searcher(tmp_path):
    ancestors = {g: _seq(658, g) for g in range(5)}
    records, sp_seq = [], {}
    for s in range(20):  # 20 species of 5 genera, 10% apart; 5 specimens each, 1% apart
        genus = s % 5
        sp_seq[s] = _mutate(ancestors[genus], 0.06, 100 + s)
        for j in range(5):
            records.append(_rec(len(records), f"G{genus} sp{s}", _mutate(sp_seq[s], 0.01, 1000 * s + j)))
    x = np.random.default_rng(0).normal(size=(len(records), 8)).astype(np.float32)  # vectors play no part here
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    write_snapshot(tmp_path, {"dna": build_index(x, "Flat")}, {"dna": x}, {"dna": records},
                   {"checkpoint_hash": "abc", "factories": {"dna": "Flat"}})
    return Searcher.open(tmp_path), records, sp_seq


def test_conspecifics_are_found_through_kmers_alone(tmp_path):
    searcher, records, sp_seq = _searcher(tmp_path)
    hits = searcher.barcode_hits(_mutate(sp_seq[7], 0.01, 5), candidates=8)
    assert hits[0].record.species == "G2 sp7" and hits[0].identity > 97
    assert hits == sorted(hits, key=lambda h: -h.identity)


def test_hits_follow_admin_add_remove_and_compact(tmp_path):
    searcher, records, sp_seq = _searcher(tmp_path)
    query = _mutate(sp_seq[3], 0.01, 77)
    conspecific_ids = {r.id for r in records if r.species == "G3 sp3"}
    searcher.remove(conspecific_ids)
    hits = searcher.barcode_hits(query, candidates=8)
    assert hits and not any(h.record.id in conspecific_ids for h in hits) and hits[0].identity < 97
    new = _rec(999, "G3 sp3", query)
    searcher.add("dna", [new], np.ones((1, 8), np.float32) / np.sqrt(8))
    hits = searcher.barcode_hits(query, candidates=8)
    assert hits[0].record.id == "k999" and hits[0].identity == 100.0
    searcher.compact(tmp_path)
    again = Searcher.open(tmp_path)
    for s in (searcher, again):
        hits = s.barcode_hits(query, candidates=8)
        assert hits[0].record.id == "k999" and not any(h.record.id in conspecific_ids for h in hits)


def test_embedding_neighbours_join_the_candidates(tmp_path):
    searcher, records, sp_seq = _searcher(tmp_path)
    far = records[20]  # species 4: same genus as species 9, a different species (not a k-mer top-1 candidate)
    hits = searcher.barcode_hits(_mutate(sp_seq[9], 0.01, 3), candidates=1, neighbors=[Neighbor(far, 0.42)])
    assert any(h.record.id == far.id and h.similarity == 0.42 for h in hits)


def test_genus_spread_counts_keys_added_since_the_snapshot_and_not_removed_ones(tmp_path):
    """`reference_spread` reads only `.searcher` of an identifier: a namespace stands in for the model."""
    from types import SimpleNamespace
    from clibd.index.calibration import reference_spread
    searcher, records, sp_seq = _searcher(tmp_path)
    ancestor = _seq(658, 99)
    added = [_rec(500 + 10 * s + j, f"G9 sp{s}", _mutate(_mutate(ancestor, 0.05, 900 + s), 0.01, 50 * s + j))
             for s in range(2) for j in range(3)]
    searcher.add("dna", added, np.ones((len(added), 8), np.float32) / np.sqrt(8))
    searcher.remove({r.id for r in records if r.genus == "G0"})
    spread = reference_spread(SimpleNamespace(searcher=searcher), progress=False)
    assert "G9" in spread.by_genus and "G0" not in spread.by_genus and "G1" in spread.by_genus
    assert 85 < spread.by_genus["G9"][0] < 95  # its two species ~10% apart (then shrunk toward all genera)


def test_calibration_searches_on_threads_keep_the_order_and_the_answers(tmp_path):
    """`threaded` (calibration's barcode searches on every core) returns what a plain loop returns, in order."""
    from clibd.index.calibration import threaded
    searcher, records, _ = _searcher(tmp_path)
    seqs = [r.dna for r in records[:24]]

    def search(seq):
        return [(h.record.id, h.identity) for h in searcher.barcode_hits(seq, 8)]
    assert threaded(search, seqs, "test", "query", progress=False, threads=4) == [search(s) for s in seqs]


@pytest.mark.realdata
def test_new_mosquito_species_find_their_genus_among_real_barcodes(shared_data):
    """insect1k's Culicidae alone, the project's congeneric partition: the species of the test_unseen queries
    have no reference, their genus has. Their relatives share k-mers common to the whole genus, which a plain
    k-mer search passed over: the closest reference's genus was right for 60% of them; the broad search finds
    it for 98% (all 305 queries), as a full alignment against every reference does."""
    from clibd.dna_tokenizer import try_normalize
    from clibd.index.barcodes import BarcodeIndex, DEFAULT_CANDIDATES, candidate_pool, widened_hits
    from clibd.readers import read_records
    from clibd.training.partition import PartitionConfig, partition
    records = [r for r in read_records(shared_data / "insect1k" / "insect1k_coi5p.tsv.gz")
               if r.family == "Culicidae" and r.species and r.genus and try_normalize(r.dna)]
    for r in records:
        r.dna = try_normalize(r.dna)
    parts = partition(records, PartitionConfig(seed=0, unseen_strategy="congeneric"))
    refs = [r for r in parts if r.split == "key_seen"]
    genera = {r.genus for r in refs}
    queries = [r for r in parts if r.split == "test_unseen" and r.genus in genera][::3]
    index = BarcodeIndex.build([r.dna for r in refs])
    right = sum(widened_hits(q.dna, lambda n, broad, q=q: candidate_pool(index, refs, q.dna, n, broad=broad),
                             DEFAULT_CANDIDATES)[0].record.genus == q.genus for q in queries)
    assert len(queries) > 90 and right >= 0.9 * len(queries)
