"""Barcodes given as their reverse complement: ours (orientation by reading frame, else k-mers) vs vsearch.

    python -m benchmarks.dna_strands [--sets insect1k,osmia,chironominae] [--max-queries 3000]

The identification protocol of `benchmarks.dna_vs_vsearch` (congeneric partition, seed 0; references =
key_seen + key_unseen; queries = test + test_unseen, seeded sample), each query searched as given (plus) and
as its reverse complement (minus). Ours orients every query as the service does (`index.orientation.orient` with
the k-mers it shares with the references), then takes its alignment hits (k-mer candidates + edlib) and BOLD's
bands; vsearch runs `--usearch_global --maxaccepts 20 --maxrejects 64` with its default `--strand plus` and with
`--strand both`. Per set: species top-1 on each strand, and how often ours read a query as reversed (on plus
queries, a wrong reversal). Writes benchmarks/results/dna_strands.{json,md}.
"""
from __future__ import annotations

import sys

from benchmarks.dna_vs_vsearch import SETS, _pct, _sample, all_hits, bold_sets_main, split_set
from clibd.index.barcodes import DEFAULT_CANDIDATES, BarcodeIndex, kmer_support
from clibd.index.identity import IdentityBands, barcode_verdict
from clibd.index.orientation import coding_strand, has_open_frame, orient, reverse_complement
from clibd.training.vsearch import vsearch_top_hits


def run_set(name: str, max_queries: int, workers: int) -> dict:
    """Species top-1 of ours and vsearch on the queries as given and reverse-complemented."""
    by = split_set(SETS[name])
    refs = by.get("key_seen", []) + by.get("key_unseen", [])
    qs = _sample(by.get("test", []), max_queries) + _sample(by.get("test_unseen", []), max_queries)
    index = BarcodeIndex.build([r.dna for r in refs])
    distinct = {r.dna for r in refs}
    out: dict = {"references": len(refs), "queries": len(qs),
                 "references_with_open_frame": _pct(sum(has_open_frame(r.dna) for r in refs), len(refs)),
                 "distinct_reference_barcodes": len(distinct),
                 "distinct_turned": sum(coding_strand(s)[1] for s in distinct)}
    for strand in ("plus", "minus"):
        given = [q.dna if strand == "plus" else reverse_complement(q.dna) for q in qs]
        oriented = [orient(s, lambda x: kmer_support([index], x)) for s in given]
        hits = all_hits(index, refs, [s for s, _ in oriented], workers, DEFAULT_CANDIDATES, oriented=True)
        ours = [barcode_verdict(h, IdentityBands()) for h in hits]
        row = {"ours": _pct(sum(v.ranks["species"].label == q.species for v, q in zip(ours, qs)), len(qs)),
               "ours_read_reversed": _pct(sum(r for _, r in oriented), len(qs))}
        for vs_strand in ("plus", "both"):
            vs = vsearch_top_hits(given, [r.dna for r in refs], threads=2, maxaccepts=20, maxrejects=64,
                                  strand=vs_strand)
            row[f"vsearch_{vs_strand}"] = _pct(sum(k is not None and refs[k].species == q.species
                                                   for (k, _), q in zip(vs, qs)), len(qs))
        out[strand] = row
        print(f"{name} {strand}: {row}", file=sys.stderr)
    return out


def render(out: dict) -> list[str]:
    """One table over the sets."""
    lines = ["# Barcodes given as their reverse complement (species top-1 %)", "", f"`{out['command']}`  ",
             f"Machine: {out['machine']}", "",
             "| set | references (open frame %; distinct barcodes, of them indexed turned) | queries | strand given | "
             "ours | ours read as reversed % | vsearch --strand plus | vsearch --strand both |",
             "|---|---|---|---|---|---|---|---|"]
    for name, res in out["sets"].items():
        for strand in ("plus", "minus"):
            r = res[strand]
            lines.append(f"| {name} | {res['references']} ({res['references_with_open_frame']}; "
                         f"{res['distinct_reference_barcodes']}, {res['distinct_turned']}) | {res['queries']} | "
                         f"{strand} | {r['ours']} | {r['ours_read_reversed']} | {r['vsearch_plus']} | "
                         f"{r['vsearch_both']} |")
    return lines + [""]


def main() -> int:
    """Run the chosen sets and write the table."""
    return bold_sets_main("dna_strands", __doc__, run_set, render)


if __name__ == "__main__":
    sys.exit(main())
