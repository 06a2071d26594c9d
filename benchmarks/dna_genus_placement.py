"""Where does a new species belong? Genus placement rules for barcodes of species absent from the references.

    python -m benchmarks.dna_genus_placement [--sets insect1k,osmia,chironominae]

The new-species protocol of `benchmarks.dna_vs_vsearch` (congeneric partition, seed 0; references = key_seen;
queries of val_unseen (fit) and test_unseen (test) species whose genus is referenced and whose best hit is below
97%, i.e. answered "new species"). Per rule, the share of those queries placed in their true genus:
- `closest`: the genus of the best hit (what the service and the 97% rule report);
- `keys-D`: the majority genus among hits within D points of the best identity;
- `species-D`: one vote per referenced species among hits within D points (its closest key), majority genus.
A rule worth adopting must win on the fit queries (where it would be chosen) and on the test queries alike.
Writes benchmarks/results/dna_genus_placement.{json,md}.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from collections import Counter
from typing import Callable

from benchmarks.dna_vs_vsearch import SETS, _sample, all_hits
from benchmarks.machine import describe_machine, write_results
from clibd.dna_tokenizer import try_normalize
from clibd.readers import read_records
from clibd.index.barcodes import DEFAULT_CANDIDATES, BarcodeIndex, Hit
from clibd.training.partition import PartitionConfig, partition

WINDOWS = (0.5, 1.0, 1.5, 2.0, 3.0)


def _by_keys(window: float) -> Callable[[list[Hit]], str]:
    def place(hits: list[Hit]) -> str:
        best = hits[0].identity
        votes = Counter(h.record.genus for h in hits if h.identity >= best - window)
        return votes.most_common(1)[0][0]
    return place


def _by_species(window: float) -> Callable[[list[Hit]], str]:
    def place(hits: list[Hit]) -> str:
        best, genus_of = hits[0].identity, {}
        for h in hits:
            if h.identity >= best - window:
                genus_of.setdefault(h.record.species, h.record.genus)
        return Counter(genus_of.values()).most_common(1)[0][0]
    return place


RULES: dict[str, Callable[[list[Hit]], str]] = {"closest": lambda hits: hits[0].record.genus}
RULES.update({f"keys-{w:g}": _by_keys(w) for w in WINDOWS})
RULES.update({f"species-{w:g}": _by_species(w) for w in WINDOWS})


def run_set(name: str, max_queries: int, workers: int) -> dict:
    """Placement accuracy of every rule on the fit and test new-species queries of one set."""
    records = [r for r in read_records(SETS[name]) if try_normalize(r.dna) and r.species and r.genus]
    for r in records:
        r.dna = try_normalize(r.dna)
    by: dict = {}
    for r in partition(records, PartitionConfig(seed=0, unseen_strategy="congeneric")):
        by.setdefault(r.split, []).append(r)
    refs = by.get("key_seen", [])
    index = BarcodeIndex.build([r.dna for r in refs])
    genera = {r.genus for r in refs}
    out: dict = {"references": len(refs)}
    for part, split in (("fit", "val_unseen"), ("test", "test_unseen")):
        qs = [q for q in _sample(by.get(split, []), max_queries) if q.genus in genera]
        hits = all_hits(index, refs, [q.dna for q in qs], workers, DEFAULT_CANDIDATES)
        novel = [(q, h) for q, h in zip(qs, hits) if h and h[0].identity < 97.0]
        out[part] = {"queries": len(novel),
                     **{rule: round(100 * sum(place(h) == q.genus for q, h in novel) / max(1, len(novel)), 2)
                        for rule, place in RULES.items()}}
    return out


def render(out: dict) -> str:
    """One table per set."""
    lines = ["# Genus placement of new species (right genus %, among queries answered new species)", "",
             f"`{out['command']}`", ""]
    for name, res in out["sets"].items():
        lines += [f"## {name} ({res['references']} references; fit {res['fit']['queries']} / test "
                  f"{res['test']['queries']} queries)", "", "| rule | fit | test |", "|---|---|---|"]
        lines += [f"| {rule} | {res['fit'][rule]} | {res['test'][rule]} |" for rule in RULES]
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    """Run the chosen sets and write the tables."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default=",".join(SETS), help="comma list of: " + ", ".join(SETS))
    ap.add_argument("--max-queries", type=int, default=3000)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    out = {"command": "python -m benchmarks.dna_genus_placement " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
           "machine": describe_machine(), "sets": {}}
    for name in args.sets.split(","):
        if not SETS[name].exists():
            print(f"missing data for {name}", file=sys.stderr)
            return 2
        out["sets"][name] = run_set(name, args.max_queries, args.workers)
    write_results("dna_genus_placement", out, render(out).splitlines())
    return 0


if __name__ == "__main__":
    sys.exit(main())
