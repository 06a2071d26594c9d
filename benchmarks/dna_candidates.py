"""How many k-mer candidates a barcode needs: recall of its best alignment, and what the answer gets from it.

    python -m benchmarks.dna_candidates [--queries 300] [--reference-pool 0]

On insect1k (the project's congeneric partition, seed 0), two protocols: identification (references =
key_seen + key_unseen, queries = test + test_unseen) and new species (references = key_seen, queries =
test_unseen, whose species is absent). For each candidate count n, the share of queries whose best hit
among n candidates is as identical as their best hit among all references (the "best alignment": every
distinct reference barcode aligned; `--reference-pool N`: among N candidates instead), the share whose first
hit (`evidence_order`) carries the right species (identification) or genus (new species), and ms per query on
one process. `widened` is what the service does (`widened_hits`: n candidates; when none reaches WIDEN_BELOW
identity, also WIDEN x n from a broad search: `BarcodeIndex.candidates`); `broad N` aligns the N candidates of
a broad search alone.
Writes benchmarks/results/dna_candidates.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from benchmarks.dna_vs_vsearch import DATA, RESULTS, SETS, _sample
from benchmarks.machine import describe_machine
from clibd.dna_tokenizer import try_normalize
from clibd.readers import read_records
from clibd.index.barcodes import DEFAULT_CANDIDATES, WIDEN, WIDEN_BELOW, BarcodeIndex, align_hits, candidate_pool, widened_hits
from clibd.training.partition import PartitionConfig, partition


def main() -> int:
    """Measure every candidate count on both protocols and write the table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=300, help="queries per protocol (seeded sample)")
    ap.add_argument("--reference-pool", type=int, default=0,
                    help="candidates whose best hit counts as best (0: every reference barcode)")
    ap.add_argument("--out", default=str(RESULTS / "dna_candidates"))
    args = ap.parse_args()
    if not SETS["insect1k"].exists():
        print(f"missing data (expected under {DATA})", file=sys.stderr)
        return 2
    records = [r for r in read_records(SETS["insect1k"]) if try_normalize(r.dna) and r.species and r.genus]
    for r in records:
        r.dna = try_normalize(r.dna)
    by: dict = {}
    for r in partition(records, PartitionConfig(seed=0, unseen_strategy="congeneric")):
        by.setdefault(r.split, []).append(r)
    protocols = {"identification": (by["key_seen"] + by["key_unseen"], by["test"] + by["test_unseen"], "species"),
                 "new species": (by["key_seen"], by["test_unseen"], "genus")}
    rows = []
    for name, (refs, queries, rank) in protocols.items():
        queries = _sample(queries, args.queries)
        index = BarcodeIndex.build([r.dna for r in refs])
        every = None if args.reference_pool else [(refs[index.members(i)[0]], seq, None)
                                                   for i, seq in enumerate(index.sequences)]
        best = [align_hits(q.dna, every or candidate_pool(index, refs, q.dna, args.reference_pool))
                for q in queries]
        scored = sum(bool(b) for b in best)
        for n in (8, 16, 32, 64, 128, "broad 128", "widened"):
            t0 = time.perf_counter()
            if n == "widened":
                got = [widened_hits(q.dna, lambda m, broad, q=q: candidate_pool(index, refs, q.dna, m, broad=broad),
                                    DEFAULT_CANDIDATES) for q in queries]
            elif n == "broad 128":
                got = [align_hits(q.dna, candidate_pool(index, refs, q.dna, 128, broad=True)) for q in queries]
            else:
                got = [align_hits(q.dna, candidate_pool(index, refs, q.dna, n)) for q in queries]
            ms = 1000 * (time.perf_counter() - t0) / len(queries)
            recall = sum(bool(g) and bool(b) and max(h.identity for h in g) >= max(h.identity for h in b) - 1e-9
                         for g, b in zip(got, best))
            right = sum(bool(g) and g[0].record.label(rank) == q.label(rank) for g, q in zip(got, queries))
            rows.append({"protocol": name, "candidates": n, "queries": len(queries), "rank": rank,
                         "best_alignment_recall": 100 * recall / max(scored, 1),
                         "first_hit_right": 100 * right / len(queries), "ms_per_query": ms})
            print(json.dumps(rows[-1]), file=sys.stderr)
    out = {"command": "python -m benchmarks.dna_candidates " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
           "machine": describe_machine(), "reference_pool": args.reference_pool,
           "widened": f"{DEFAULT_CANDIDATES}, and {DEFAULT_CANDIDATES * WIDEN} more from a broad search when the best "
                      f"is below {WIDEN_BELOW}%",
           "rows": rows}
    best_among = f"{args.reference_pool} candidates" if args.reference_pool else "all references"
    Path(args.out + ".json").write_text(json.dumps(out, indent=2))
    md = ["# Barcode candidates: recall of the best alignment (insect1k)", "",
          f"Command: `{out['command']}`  ", f"Machine: {json.dumps(out['machine'])}  ",
          f"Best alignment = best hit among {best_among}; widened = {out['widened']}.", "",
          "| protocol | candidates | best-alignment recall % | first hit right (rank) % | ms / query (1 process) |",
          "|---|---|---|---|---|"]
    md += [f"| {r['protocol']} | {r['candidates']} | {r['best_alignment_recall']:.1f} | "
           f"{r['first_hit_right']:.1f} ({r['rank']}) | {r['ms_per_query']:.2f} |" for r in rows]
    Path(args.out + ".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
