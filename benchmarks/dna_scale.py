"""Barcode identification at scale: ours vs `vsearch --usearch_global` at 10k, 100k (and 1M) references.

    python -m benchmarks.dna_scale [--sizes 10000,100000] [--queries 1000]

The references are SYNTHETIC, grown from real insect1k barcodes: every real species' barcode seeds synthetic
species (random substitutions at 2-12% divergence, as between congeneric insect species), each with 10
specimens (0-1.5% from their species, as within a species); queries are new specimens of referenced species.
Substitutions that would put a stop codon into the seed's open reading frame keep the parent's codon, as real
COI does (and as the service's strand check expects: `index.orientation`).
Species top-1 and queries/s on the same 2 cores, two ways: both timings including the reference index build
(vsearch indexes on every run), and both excluding it (ours: a standing snapshot's index, as the service holds
it; vsearch: the slope between its runs on N and 4N queries, so reading and indexing the references drop out).
Writes benchmarks/results/dna_scale.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import random
import shlex
import sys
import time
from pathlib import Path
from typing import Optional

from benchmarks.dna_vs_vsearch import DATA, RESULTS, all_hits
from benchmarks.machine import describe_machine
from clibd.dna_tokenizer import try_normalize
from clibd.readers import read_records
from clibd.records import Record
from clibd.index.barcodes import DEFAULT_CANDIDATES, BarcodeIndex
from clibd.index.identity import IdentityBands, barcode_verdict
from clibd.index.orientation import open_frame
from clibd.training.vsearch import vsearch_top_hits

SPECIMENS = 10
STANDING_FACTOR = 4  # vsearch also runs on this many times the queries; its rate is the slope between the two


def _mutate(seq: str, rate: float, rng: random.Random, frame: Optional[int]) -> str:
    """Random substitutions at `rate`; a codon of the reading frame `frame` they would turn into a stop keeps
    the parent's bases (a real COI keeps its open frame)."""
    out = "".join(rng.choice("ACGT".replace(b, "") or "A") if b in "ACGT" and rng.random() < rate else b
                  for b in seq)
    if frame is None:
        return out
    codons = [(i, out[i:i + 3]) for i in range(frame, len(out) - 2, 3)]
    stops = [i for i, c in codons if c in ("TAA", "TAG")]
    if not stops:
        return out
    chars = list(out)
    for i in stops:
        chars[i:i + 3] = seq[i:i + 3]
    return "".join(chars)


def synthetic(n_refs: int, n_queries: int, seed: int = 0) -> tuple[list[Record], list[Record]]:
    """SYNTHETIC references and queries grown from real insect1k barcodes (see the module docstring)."""
    rng = random.Random(seed)
    seeds: dict[str, Record] = {}
    for r in read_records(DATA / "insect1k" / "insect1k_coi5p.tsv.gz"):
        dna = try_normalize(r.dna)
        if dna and r.species and len(dna) >= 500 and r.species not in seeds:
            r.dna = dna
            seeds[r.species] = r
    roots = list(seeds.values())
    refs, queries = [], []
    n_species = max(1, n_refs // SPECIMENS)
    species_seq = []
    for s in range(n_species):
        root = roots[s % len(roots)]
        frame = open_frame(root.dna)
        species_seq.append((f"SYNTHETIC {root.genus} sp{s}", root.genus,
                            _mutate(root.dna, rng.uniform(0.02, 0.12), rng, frame), frame))
    for s, (name, genus, seq, frame) in enumerate(species_seq):
        for j in range(SPECIMENS):
            refs.append(Record(id=f"syn{s}-{j}", genus=genus, species=name,
                               dna=_mutate(seq, rng.uniform(0, 0.015), rng, frame)))
    for q in range(n_queries):
        name, genus, seq, frame = species_seq[rng.randrange(n_species)]
        queries.append(Record(id=f"q{q}", genus=genus, species=name,
                              dna=_mutate(seq, rng.uniform(0, 0.015), rng, frame)))
    return refs, queries


def main() -> int:
    """Run every size and write the table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000", help="reference counts")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default=str(RESULTS / "dna_scale"))
    args = ap.parse_args()
    rows = []
    for n in (int(x) for x in args.sizes.split(",")):
        refs, extra = synthetic(n, STANDING_FACTOR * args.queries)
        queries = extra[:args.queries]
        t0 = time.perf_counter()
        index = BarcodeIndex.build([r.dna for r in refs])
        build_s = time.perf_counter() - t0
        hits = all_hits(index, refs, [q.dna for q in queries], args.workers, DEFAULT_CANDIDATES)
        ours_s = time.perf_counter() - t0
        ours = [barcode_verdict(h, IdentityBands()).ranks["species"].label for h in hits]
        t0 = time.perf_counter()
        vs = vsearch_top_hits([q.dna for q in queries], [r.dna for r in refs], threads=2, maxaccepts=20, maxrejects=64)
        vs_s = time.perf_counter() - t0
        t0 = time.perf_counter()  # vsearch's own rate, reading and indexing aside: the slope over more queries
        vsearch_top_hits([q.dna for q in extra], [r.dna for r in refs], threads=2, maxaccepts=20, maxrejects=64)
        vs_more_s = time.perf_counter() - t0
        vs_qps_standing = (len(extra) - len(queries)) / max(vs_more_s - vs_s, 1e-9)
        row = {"vsearch_load_s": max(vs_s - len(queries) / vs_qps_standing, 0.0),
               "vsearch_qps_after_load": vs_qps_standing,
               "ours_qps_after_build": len(queries) / (ours_s - build_s), "refs": len(refs),
               "queries": len(queries), "ours_build_s": build_s, "ours_total_s": ours_s,
               "vsearch_total_s": vs_s, "ours_qps": len(queries) / ours_s, "vsearch_qps": len(queries) / vs_s,
               "ours_species_top1": 100 * sum(o == q.species for o, q in zip(ours, queries)) / len(queries),
               "vsearch_species_top1": 100 * sum(k is not None and refs[k].species == q.species
                                                 for (k, _), q in zip(vs, queries)) / len(queries)}
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    out = {"command": "python -m benchmarks.dna_scale " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
           "machine": describe_machine(), "data": "SYNTHETIC species grown from real insect1k barcodes", "rows": rows}
    Path(args.out + ".json").write_text(json.dumps(out, indent=2))
    md = ["# Barcodes at scale (SYNTHETIC references grown from real insect1k barcodes)", "",
          f"Command: `{out['command']}`  ", f"Machine: {json.dumps(out['machine'])}  ",
          "Ours on 2 processes, vsearch on 2 threads. Standing index: ours after its build (a served snapshot), "
          "vsearch's slope between its runs on N and 4N queries (reading + indexing the references drop out).", "",
          "| references | queries | species top-1 ours / vsearch | queries/s incl. index build: ours / vsearch "
          "(ratio) | queries/s standing index: ours / vsearch (ratio) | index build s: ours / vsearch (implied) |",
          "|---|---|---|---|---|---|"]
    md += [f"| {r['refs']:,} | {r['queries']} | {r['ours_species_top1']:.1f} / {r['vsearch_species_top1']:.1f} | "
           f"{r['ours_qps']:.1f} / {r['vsearch_qps']:.1f} ({r['ours_qps'] / r['vsearch_qps']:.2f}x) | "
           f"{r['ours_qps_after_build']:.1f} / {r['vsearch_qps_after_load']:.1f} "
           f"({r['ours_qps_after_build'] / r['vsearch_qps_after_load']:.2f}x) | "
           f"{r['ours_build_s']:.1f} / {r['vsearch_load_s']:.1f} |" for r in rows]
    Path(args.out + ".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
