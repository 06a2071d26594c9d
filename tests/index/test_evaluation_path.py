"""The paper's evaluation (training/) and the service's Searcher (index/) find the same exact neighbours.

The package rule keeps `training` from importing `index`; this test pins the two exact paths to one answer.
"""
import numpy as np

from clibd.index.factory import build_index
from clibd.index.searcher import Searcher
from clibd.index.snapshot import KeyRecord, write_snapshot
from clibd.training.evaluate import exact_search


def test_evaluate_exact_search_equals_searcher_exact_path(tmp_path):
    rng = np.random.default_rng(3)
    keys = rng.normal(size=(2000, 48)).astype(np.float32)
    keys /= np.linalg.norm(keys, axis=1, keepdims=True)
    queries = rng.normal(size=(200, 48)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    recs = [KeyRecord(id=f"k{i}", modality="dna", species=f"s{i % 50}") for i in range(len(keys))]
    write_snapshot(tmp_path, {"dna": build_index(keys, "Flat")}, {"dna": keys}, {"dna": recs},
                   {"checkpoint_hash": "h", "factories": {"dna": "Flat"}})
    found = Searcher.open(tmp_path).search(queries, 5, "dna")
    ids = exact_search(queries, keys, 5)
    assert [[n.record.id for n in row] for row in found] == [[f"k{i}" for i in row] for row in ids]
    brute = np.argsort(-(queries @ keys.T), axis=1)[:, :5]
    assert np.array_equal(ids, brute)
