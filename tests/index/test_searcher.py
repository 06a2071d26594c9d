"""Snapshots and the Searcher on clustered synthetic vectors (real FAISS, no model needed)."""
import threading

import numpy as np
import pytest

from clibd.index.factory import build_index, choose_factory
from clibd.index.searcher import Searcher, UnknownTaxonError, aggregate
from clibd.index.snapshot import KeyRecord, SnapshotMismatchError, current_snapshot_dir, load_snapshot, write_snapshot



def _clustered(n, d, n_species, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_species, d))
    labels = rng.integers(0, n_species, n)
    x = centers[labels] + 0.3 * rng.normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), labels


def _records(labels, prefix="k"):
    return [KeyRecord(id=f"{prefix}{i}", modality="dna", order="Diptera", family=f"F{s % 3}", genus=f"G{s % 7}",
                      species=f"G{s % 7} sp{s}") for i, s in enumerate(labels)]


def _root(tmp_path, factory="Flat", n=3000, d=32):
    x, labels = _clustered(n, d, 40)
    idx = build_index(x, factory)
    write_snapshot(tmp_path, {"dna": idx}, {"dna": x}, {"dna": _records(labels)},
                   {"checkpoint_hash": "abc", "factories": {"dna": factory}})
    return x, labels


def test_choose_factory_by_size_and_budget():
    assert choose_factory(10_000, 768) == "Flat"
    assert choose_factory(1_000_000, 768, 24 << 30) == "IVF4096,SQ8"
    assert choose_factory(5_150_000, 768, 8 << 30) == "IVF8192,SQ8"


@pytest.mark.parametrize("factory", ["HNSW32,Flat", "IVF64,Flat", "OPQ8,IVF64,PQ8"])
def test_approximate_indexes_agree_with_exact_search(tmp_path, factory):
    x, _ = _clustered(4000, 32, 40, seed=1)
    q = x[:200] + 0.01
    exact = build_index(x, "Flat").search(q, 10)[1]
    approx = build_index(x, factory).search(q, 10)[1]
    recall1 = np.mean(exact[:, 0] == approx[:, 0])
    assert recall1 > (0.9 if "PQ" not in factory else 0.5)


def test_restrict_to_is_applied_inside_faiss_and_unknown_taxa_are_refused(tmp_path):
    x, labels = _root(tmp_path)
    s = Searcher.open(tmp_path, "abc")
    rare = "G3"
    hits = s.search(x[:5], 10, "dna", restrict_to=rare)
    for row in hits:
        # a post-filter of the global top-10 would leave rows short; inside FAISS every row is full
        assert len(row) == 10 and all(n.record.genus == rare for n in row)
    with pytest.raises(UnknownTaxonError):
        s.search(x[:1], 5, "dna", restrict_to="Nonexistentia")
    with pytest.raises(SnapshotMismatchError):
        load_snapshot(tmp_path, "other-hash")


def test_add_remove_are_immediate_and_compact_switches_atomically(tmp_path):
    x, labels = _root(tmp_path)
    s = Searcher.open(tmp_path)
    before = current_snapshot_dir(tmp_path).name
    new_vec = -x[:1]  # far from everything else
    s.add("dna", [KeyRecord(id="new1", modality="dna", genus="Novus", species="Novus primus")], new_vec)
    assert s.search(new_vec, 1, "dna")[0][0].record.id == "new1"
    assert s.search(new_vec, 3, "dna", restrict_to="Novus")[0][0].record.id == "new1"
    target = s.search(x[5:6], 1, "dna")[0][0].record.id
    assert s.remove([target]) == 1
    assert all(n.record.id != target for n in s.search(x[5:6], 20, "dna")[0])
    assert all(n.record.id != target for n in s.search(x[5:6], 20, "dna", restrict_to="Diptera")[0])
    n_before = s.size("dna")
    s.compact(tmp_path)
    assert current_snapshot_dir(tmp_path).name != before
    assert s.size("dna") == n_before == len(s.snapshot.records["dna"])
    assert s.search(new_vec, 1, "dna")[0][0].record.id == "new1"
    reopened = Searcher.open(tmp_path)
    assert all(n.record.id != target for n in reopened.search(x[5:6], 20, "dna")[0])


def test_searches_stay_correct_while_keys_are_added(tmp_path):
    x, _ = _root(tmp_path)
    s = Searcher.open(tmp_path)
    expected = [row[0].record.id for row in s.search(x[:50], 1, "dna")]
    errors = []

    def reader():
        for _ in range(30):
            got = [row[0].record.id for row in s.search(x[:50], 1, "dna")]
            if got != expected:
                errors.append(got)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    far = -x[100:300]  # added keys are far from the queries, so the answers must not change
    for i in range(200):
        s.add("dna", [KeyRecord(id=f"a{i}", modality="dna", genus="Addita")], far[i:i + 1])
    for t in threads:
        t.join()
    assert not errors and s.size("dna") == 3200


def test_aggregate_scores_each_rank():
    recs = [KeyRecord(id=str(i), modality="dna", genus=g, species=sp) for i, (g, sp) in
            enumerate([("A", "A x"), ("A", "A y"), ("B", "B z")])]
    from clibd.index.searcher import Neighbor
    agg = aggregate([Neighbor(recs[0], 0.9), Neighbor(recs[1], 0.85), Neighbor(recs[2], 0.8)])
    w = np.exp(np.array([0.0, -0.05, -0.1]) / 0.05)  # votes fall by e per 0.05 of cosine below the nearest
    assert agg["genus"][0] == ("A", pytest.approx((w[0] + w[1]) / w.sum()))
    assert agg["species"][0] == ("A x", pytest.approx(w[0] / w.sum())) and agg["order"] == []
    flat = aggregate([Neighbor(recs[0], 0.9), Neighbor(recs[1], 0.6), Neighbor(recs[2], 0.5)], temperature=1e9)
    assert flat["genus"][0] == ("A", pytest.approx(2 / 3))  # a huge temperature is a plain majority


def test_approximate_snapshot_answers_are_reranked_to_exact_cosines(tmp_path):
    x, labels = _root(tmp_path, factory="OPQ8,IVF64,PQ8", n=4000, d=32)
    q = (x[:300] + 0.15 * np.random.default_rng(2).normal(size=(300, 32))).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    exact_top = np.argmax(q @ x.T, axis=1)
    s = Searcher.open(tmp_path)  # 4 x k candidates re-scored with the exact vectors
    found = s.search(q, 5, "dna")
    raw_top = s.snapshot.indexes["dna"].search(q, 1)[1][:, 0]  # the PQ index alone, as it ranks
    for row, qv in zip(found, q):
        ids = [int(n.record.id[1:]) for n in row]
        assert np.allclose([n.similarity for n in row], x[ids] @ qv, atol=1e-5)  # exact cosines
        assert [n.similarity for n in row] == sorted((n.similarity for n in row), reverse=True)
    hit = np.mean([int(r[0].record.id[1:]) == t for r, t in zip(found, exact_top)])
    raw_hit = np.mean(raw_top == exact_top)
    assert hit > raw_hit and hit > 0.9


def test_without_a_gpu_the_same_code_runs_on_the_cpu(tmp_path):
    from clibd.index.factory import gpu_available, to_cpu, to_gpu
    x, _ = _clustered(3000, 32, 40)
    cpu = build_index(x, "IVF32,Flat", use_gpu=False)
    assert to_gpu(cpu, use_gpu=False) is cpu and to_cpu(cpu) is cpu
    if not gpu_available():
        assert build_index(x, "IVF32,Flat").ntotal == 3000  # the default path on a machine without a GPU
        _root(tmp_path)
        assert Searcher.open(tmp_path)._device == {}


@pytest.mark.gpu
def test_gpu_build_and_search_match_the_cpu(tmp_path):
    from clibd.index.factory import gpu_available
    if not gpu_available():
        pytest.skip("no GPU visible to faiss (faiss.get_num_gpus() == 0)")
    x, _ = _clustered(20000, 64, 200)
    gpu_built = build_index(x, "IVF256,Flat", use_gpu=True)
    cpu_built = build_index(x, "IVF256,Flat", use_gpu=False)
    q = x[:500]
    assert np.mean(gpu_built.search(q, 1)[1][:, 0] == cpu_built.search(q, 1)[1][:, 0]) > 0.95
    write_snapshot(tmp_path, {"dna": gpu_built}, {"dna": x}, {"dna": _records(np.zeros(len(x), int))},
                   {"checkpoint_hash": "h", "factories": {"dna": "IVF256,Flat"}})
    s = Searcher.open(tmp_path)
    assert s._device and s.search(q[:5], 3, "dna")[0][0].record.id == "k0"
