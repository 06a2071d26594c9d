"""Approximate FAISS indexes against exact search: recall, queries/s, memory, build time.

    python -m benchmarks.index_ann --keys 100000 --dims 768,256

Keys are synthetic unit vectors clustered like real embeddings (species centres with spread), so recall
reflects a realistic neighbourhood structure; queries are held-out points of the same clusters.
Writes benchmarks/results/index_ann_<keys>.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

from benchmarks.machine import describe_machine
from clibd.index.factory import build_index
from clibd.index.searcher import is_exact, rerank

RESULTS = Path(__file__).parent / "results"


def clustered(n: int, d: int, n_clusters: int, seed: int) -> np.ndarray:
    """Unit vectors around `n_clusters` random centres, generated in chunks to bound memory."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, d)).astype(np.float32)
    out = np.empty((n, d), np.float32)
    for s in range(0, n, 100_000):
        m = min(100_000, n - s)
        x = centres[rng.integers(0, n_clusters, m)] + 0.6 * rng.normal(size=(m, d)).astype(np.float32)
        out[s:s + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def index_bytes(index: faiss.Index) -> int:
    """Size of the index as written to disk (a file, not an in-memory copy: a 5M-key Flat index is 5 GB)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "index.faiss"
        faiss.write_index(index, str(path))
        return path.stat().st_size


def timed(search, queries: np.ndarray, single: int) -> tuple[np.ndarray, float, float]:
    """Ids found for all queries at once, queries/s batched, and queries/s one at a time (first `single`)."""
    t0 = time.perf_counter()
    ids = search(queries)
    batched = len(queries) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for i in range(single):
        search(queries[i:i + 1])
    return ids, batched, single / (time.perf_counter() - t0)


def recall(ids: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """recall@1 and recall@10 of found ids against exact ones."""
    return {"recall@1": float(np.mean(ids[:, 0] == truth[:, 0])),
            "recall@10": float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, truth)]))}


def knob(index: faiss.Index) -> str:
    """The search-time setting in force (as `index.factory.tune` set it)."""
    inner = faiss.downcast_index(index)
    if isinstance(inner, faiss.IndexIVF):
        return f"nprobe {inner.nprobe}"
    if isinstance(inner, faiss.IndexHNSW):
        return f"efSearch {inner.hnsw.efSearch}"
    return "exact"


def factories(n: int, d: int) -> list[str]:
    """The candidates for a key count and dimension."""
    nlist = int(2 ** round(np.log2(4 * np.sqrt(n))))
    m = 64 if d % 64 == 0 else 32
    return ["Flat", "HNSW32,Flat", f"IVF{nlist},Flat", f"IVF{nlist},PQ{m}x8"]


def main() -> int:
    """Run every factory at each dimension and write the table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--dims", default="768,256")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--single", type=int, default=200, help="queries timed one at a time")
    ap.add_argument("--factories", default="", help="semicolon-separated factory strings (default: a fixed set)")
    ap.add_argument("--tag", default="", help="suffix of the results file name")
    ap.add_argument("--nprobes", default="", help="comma list of extra nprobe values to measure for IVF indexes")
    ap.add_argument("--rerank", type=int, default=0,
                    help="also measure approximate indexes with their top 10*N re-scored by the exact vectors "
                         "(what index.Searcher does)")
    args = ap.parse_args()
    rows = []
    for d in [int(x) for x in args.dims.split(",")]:
        n_clusters = max(100, args.keys // 50)
        points = clustered(args.keys + args.queries, d, n_clusters, seed=0)  # same draws as keys-then-queries
        keys, queries = points[:args.keys], np.ascontiguousarray(points[args.keys:])
        truth = None
        for factory in (args.factories.split(";") if args.factories else factories(args.keys, d)):
            t0 = time.perf_counter()
            index = build_index(keys, factory)
            build_s = time.perf_counter() - t0
            ids, batched, single = timed(lambda q, index=index: index.search(q, 10)[1], queries, args.single)
            if factory == "Flat":
                truth = ids
            size = index_bytes(index)
            row = {"keys": args.keys, "dim": d, "factory": factory, "build_s": build_s, **recall(ids, truth),
                   "qps_batched": batched, "qps_single": single, "memory_mb": size / 2**20, "search": knob(index)}
            variants = []
            if args.rerank and not is_exact(index):
                def reranked(q, index=index):
                    return rerank(q, index.search(q, 10 * args.rerank)[1], keys, 10)[1]
                variants.append((f"{knob(index)} + exact re-rank of {10 * args.rerank}", reranked, None))
            inner = faiss.extract_index_ivf(index) if "IVF" in factory else None
            for nprobe in [int(x) for x in args.nprobes.split(",") if x] if inner is not None else []:
                variants.append((f"nprobe {nprobe}", lambda q, index=index: index.search(q, 10)[1], nprobe))
            rows.append(row)
            print(json.dumps(row), flush=True)
            for label, search, nprobe in variants:
                if nprobe is not None:
                    inner.nprobe = nprobe
                ids, batched, single = timed(search, queries, args.single)
                rows.append({**row, **recall(ids, truth), "qps_batched": batched, "qps_single": single,
                             "search": label})
                print(json.dumps(rows[-1]), flush=True)
            del index
    command = "python -m benchmarks.index_ann " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    out = {"command": command, "machine": describe_machine(), "faiss": faiss.__version__,
           "omp_threads": faiss.omp_get_max_threads(), "rows": rows}
    name = f"index_ann_{args.keys}{args.tag}"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(out, indent=2))
    md = [f"# FAISS indexes at {args.keys:,} synthetic clustered keys", "", f"Command: `{command}`  ",
          f"Machine: {json.dumps(out['machine'])}, faiss {faiss.__version__}, {out['omp_threads']} threads", "",
          "Recall against exact `Flat` search on the same queries, at the search setting shown (the default is "
          "what `index.factory.tune` sets).", "",
          "| d | factory | search | build s | recall@1 | recall@10 | q/s batched | q/s single | memory MB |",
          "|---|---|---|---|---|---|---|---|---|"]
    md += [f"| {r['dim']} | `{r['factory']}` | {r.get('search', '')} | {r['build_s']:.1f} | {r['recall@1']:.3f} | "
           f"{r['recall@10']:.3f} | {r['qps_batched']:.0f} | {r['qps_single']:.0f} | {r['memory_mb']:.0f} |"
           for r in rows]
    (RESULTS / f"{name}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
