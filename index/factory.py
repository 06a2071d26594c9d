"""Choosing, building and tuning a FAISS index by factory string."""
from __future__ import annotations

import logging

import faiss
import numpy as np

log = logging.getLogger(__name__)

EXACT_MAX_KEYS = 200_000  # exact search stays fast enough below this on a few cores


def choose_factory(n_keys: int, dim: int, memory_budget_bytes: int = 8 << 30) -> str:
    """Exact `Flat` for small sets; HNSW while its memory fits the budget; IVF with 8-bit scalar codes beyond.

    (IVF-PQ without re-ranking lost most of its recall@1 on clustered embeddings in
    benchmarks/results/index_ann_100000.md, so it is not chosen automatically.)
    """
    flat_bytes = n_keys * dim * 4
    if n_keys <= EXACT_MAX_KEYS and flat_bytes <= memory_budget_bytes:
        return "Flat"
    if flat_bytes + n_keys * 32 * 2 * 4 <= memory_budget_bytes and n_keys <= 2_000_000:
        return "HNSW32,Flat"
    nlist = int(2 ** round(np.log2(max(1024, 4 * np.sqrt(n_keys)))))
    return f"IVF{nlist},SQ8"


def build_index(vectors: np.ndarray, factory: str, seed: int = 0) -> faiss.Index:
    """Build an inner-product index over L2-normalised vectors (trained on a sample when needed)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    index = faiss.index_factory(vectors.shape[1], factory, faiss.METRIC_INNER_PRODUCT)
    if not index.is_trained:
        rng = np.random.default_rng(seed)
        n_train = min(len(vectors), 256 * 1024)
        sample = vectors[rng.choice(len(vectors), n_train, replace=False)]
        index.train(sample)
    index.add(vectors)
    tune(index)
    return index


def _inner(index: faiss.Index) -> faiss.Index:
    inner = faiss.downcast_index(index)
    if isinstance(inner, faiss.IndexPreTransform):
        inner = faiss.downcast_index(inner.index)
    return inner


def tune(index: faiss.Index, nprobe: int = 32, ef_search: int = 128) -> None:
    """Search-time settings for recall: `nprobe` for IVF, `efSearch` for HNSW."""
    inner = _inner(index)
    if isinstance(inner, faiss.IndexIVF):
        inner.nprobe = min(nprobe, inner.nlist)
    if isinstance(inner, faiss.IndexHNSW):
        inner.hnsw.efSearch = ef_search


def search_params(index: faiss.Index, selector: faiss.IDSelector | None) -> faiss.SearchParameters | None:
    """Per-query parameters carrying an id selector, of the kind the index expects."""
    if selector is None:
        return None
    inner = _inner(index)
    if isinstance(inner, faiss.IndexHNSW):
        params = faiss.SearchParametersHNSW()
        params.efSearch = inner.hnsw.efSearch
    elif isinstance(inner, faiss.IndexIVF):
        params = faiss.SearchParametersIVF()
        params.nprobe = inner.nprobe
    else:
        params = faiss.SearchParameters()
    params.sel = selector
    return params
