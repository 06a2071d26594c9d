"""Choosing, building and tuning a FAISS index by factory string."""
from __future__ import annotations

import logging
from typing import Optional

import faiss
import numpy as np

log = logging.getLogger(__name__)

EXACT_MAX_KEYS = 200_000  # exact search stays fast enough below this on a few cores


def choose_factory(n_keys: int, dim: int, memory_budget_bytes: int = 8 << 30) -> str:
    """Exact `Flat` for small sets, IVF with 8-bit scalar codes beyond (`nlist` about 4 sqrt(n)).

    Measured at 1M clustered keys (benchmarks/results/index_ann_1000000*.md): IVF-SQ8 kept recall@1 0.96 at
    d=256 and d=768 with a quarter of the memory and a fraction of HNSW32's build time, while HNSW32 at
    efSearch 128 fell to 0.94 (d=256) and 0.87 (d=768); IVF-PQ without re-ranking lost most of its recall
    at 100k. HNSW stays available through an explicit factory string.
    """
    flat_bytes = n_keys * dim * 4
    if n_keys <= EXACT_MAX_KEYS and flat_bytes <= memory_budget_bytes:
        return "Flat"
    nlist = int(2 ** round(np.log2(max(1024, 4 * np.sqrt(n_keys)))))
    return f"IVF{nlist},SQ8"


def gpu_available() -> bool:
    """Whether faiss was built with GPU support and sees a GPU."""
    return hasattr(faiss, "get_num_gpus") and faiss.get_num_gpus() > 0


_gpu_resources = None


def to_gpu(index: faiss.Index, use_gpu: Optional[bool] = None) -> faiss.Index:
    """A GPU copy of the index when a GPU is present and FAISS has a GPU version of its type; else the index."""
    global _gpu_resources
    if not (gpu_available() if use_gpu is None else use_gpu):
        return index
    if _gpu_resources is None:
        _gpu_resources = faiss.StandardGpuResources()
    try:
        return faiss.index_cpu_to_gpu(_gpu_resources, 0, index)
    except (RuntimeError, AttributeError) as exc:  # e.g. HNSW has no GPU version: stay on the CPU
        log.info("index stays on the CPU: %s", exc)
        return index


def to_cpu(index: faiss.Index) -> faiss.Index:
    """The CPU form of an index (for writing to disk)."""
    if hasattr(faiss, "index_gpu_to_cpu") and "Gpu" in type(index).__name__:
        return faiss.index_gpu_to_cpu(index)
    return index


def build_index(vectors: np.ndarray, factory: str, seed: int = 0, use_gpu: Optional[bool] = None) -> faiss.Index:
    """Build an inner-product index over L2-normalised vectors (trained on a sample when needed), training and
    adding on the GPU when one is present; the result is always a CPU index, ready to be written."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    cpu = faiss.index_factory(vectors.shape[1], factory, faiss.METRIC_INNER_PRODUCT)
    index = to_gpu(cpu, use_gpu)
    if not index.is_trained:
        rng = np.random.default_rng(seed)
        inner = _inner(cpu)
        lists = inner.nlist if isinstance(inner, faiss.IndexIVF) else 0
        n_train = min(len(vectors), max(256 * 1024, 40 * lists))  # FAISS wants >= 39 points per list
        sample = vectors[rng.choice(len(vectors), n_train, replace=False)]
        index.train(sample)
    index.add(vectors)
    index = to_cpu(index)
    tune(index)
    return index


def _inner(index: faiss.Index) -> faiss.Index:
    inner = faiss.downcast_index(index)
    if isinstance(inner, faiss.IndexPreTransform):
        inner = faiss.downcast_index(inner.index)
    return inner


def tune(index: faiss.Index, nprobe: int | None = None, ef_search: int = 128) -> None:
    """Search-time settings for recall: `nprobe` for IVF (default: 32, or 1/128 of the lists when more, so
    the share of the index scanned stays as at 1M keys), `efSearch` for HNSW."""
    inner = _inner(index)
    if isinstance(inner, faiss.IndexIVF):
        inner.nprobe = min(nprobe or max(32, inner.nlist // 128), inner.nlist)
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
