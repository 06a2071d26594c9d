"""Is this barcode a new species? Novelty tests on alignment hits, against the false alarms they cost.

    python -m benchmarks.dna_novelty [--sets insect1k,osmia,chironominae]

The new-species protocol of `benchmarks.dna_vs_vsearch` (congeneric partition, seed 0; references = key_seen).
Fit queries: val + val_unseen (where a test would be chosen); test queries: test (species referenced) and
test_unseen (species absent, genus referenced). Per test: fit — absent species answered new, referenced species
answered new (false alarms); test — absent species answered new with the best hit's genus right, false alarms.
All tests read the same hits (k-mer candidates + edlib alignment, as the service does):
- `best < T`: the best identity below T% (T = 97: the usual rule, here on our alignments);
- `spread m/cap`: also new when the best identity is below `cap` and at least `m` points below the least
  identity between any two of the best hit's species' own barcodes among the hits (at least 3 of them): the
  query lies outside that species' spread;
- `spread fitted`: m and cap chosen on the fit queries as the service chooses its bands — the most absent
  species found with no more false alarms than `best < 97` raises there; "not adopted" when none finds more.
Writes benchmarks/results/dna_novelty.{json,md}.
"""
from __future__ import annotations

import sys
from functools import lru_cache
from typing import Callable, Optional

import numpy as np

from benchmarks.dna_vs_vsearch import SETS, _sample, all_hits, bold_sets_main, split_set
from clibd.index.alignment import align
from clibd.index.barcodes import DEFAULT_CANDIDATES, BarcodeIndex, Hit

RULE = 97.0
MIN_SPREAD_BARCODES = 3  # two barcodes give one distance, not a spread
MARGINS = (2.0, 1.5, 1.0, 0.5)
CAPS = tuple(np.round(np.arange(RULE + 0.25, 99.76, 0.25), 2))


@lru_cache(maxsize=None)
def _identity(a: str, b: str) -> Optional[float]:
    found = align(a, b)
    return found.identity if found else None


def species_spread(hits: list[Hit]) -> Optional[float]:
    """The least identity between two distinct barcodes of the best hit's species among the hits (None: fewer
    than `MIN_SPREAD_BARCODES`)."""
    species, barcodes = hits[0].record.species, []
    for h in hits:
        if h.record.species == species and h.record.dna not in barcodes:
            barcodes.append(h.record.dna)
    if len(barcodes) < MIN_SPREAD_BARCODES:
        return None
    pairs = [_identity(a, b) for i, a in enumerate(barcodes) for b in barcodes[i + 1:]]
    pairs = [p for p in pairs if p is not None]
    return min(pairs) if pairs else None


def spread_test(margin: float, cap: float) -> Callable[[list[Hit]], bool]:
    """New below the rule, or below `cap` and `margin` points outside the best species' spread."""
    def novel(hits: list[Hit]) -> bool:
        if not hits or hits[0].identity < RULE:
            return True
        if hits[0].identity >= cap:
            return False
        spread = species_spread(hits)
        return spread is not None and hits[0].identity < spread - margin
    return novel


def below(threshold: float) -> Callable[[list[Hit]], bool]:
    """New when the best identity is below `threshold`."""
    return lambda hits: not hits or hits[0].identity < threshold


def _counts(test: Callable, group: dict) -> dict:
    absent = list(zip(group["absent"], group["absent_hits"]))
    present = group["present_hits"]
    return {"absent": len(absent), "present": len(present),
            "absent_new": sum(test(h) for _, h in absent),
            "absent_new_right_genus": sum(test(h) and bool(h) and h[0].record.genus == q.genus for q, h in absent),
            "false_alarms": sum(test(h) for h in present)}


def _fit_spread(fit: dict) -> Optional[tuple[float, float]]:
    allowed = _counts(below(RULE), fit)
    best, chosen = allowed["absent_new"], None
    for margin in MARGINS:
        for cap in CAPS:
            c = _counts(spread_test(margin, float(cap)), fit)
            if c["false_alarms"] <= allowed["false_alarms"] and c["absent_new"] > best:
                best, chosen = c["absent_new"], (margin, float(cap))
    return chosen


def run_set(name: str, max_queries: int, workers: int) -> dict:
    """Every test on the fit and test queries of one set."""
    by = split_set(SETS[name])
    refs = by.get("key_seen", [])
    species, genera = {r.species for r in refs}, {r.genus for r in refs}
    index = BarcodeIndex.build([r.dna for r in refs])
    groups = {}
    for part, splits in (("fit", ("val", "val_unseen")), ("test", ("test", "test_unseen"))):
        qs = [q for s in splits for q in _sample(by.get(s, []), max_queries) if q.genus in genera]
        hits = all_hits(index, refs, [q.dna for q in qs], workers, DEFAULT_CANDIDATES)
        groups[part] = {"absent": [q for q in qs if q.species not in species],
                        "absent_hits": [h for q, h in zip(qs, hits) if q.species not in species],
                        "present_hits": [h for q, h in zip(qs, hits) if q.species in species]}
    tests: dict[str, Callable] = {f"best < {t:g}": below(t) for t in (RULE, 97.5, 98.0)}
    tests["spread 1/98"] = spread_test(1.0, 98.0)
    chosen = _fit_spread(groups["fit"])
    if chosen:
        tests[f"spread fitted ({chosen[0]:g}/{chosen[1]:g})"] = spread_test(*chosen)
    out: dict = {"references": len(refs), "spread_fitted": chosen, "tests": {}}
    for label, test in tests.items():
        out["tests"][label] = {part: _counts(test, g) for part, g in groups.items()}
    return out


def _pct(n: int, d: int) -> str:
    return f"{100.0 * n / d:.2f}" if d else "-"


def render(out: dict) -> list[str]:
    """One table per set."""
    lines = ["# New-species tests on alignment hits: what they find, what they cost", "",
             f"`{out['command']}`", ""]
    for name, res in out["sets"].items():
        fit = next(iter(res["tests"].values()))["fit"]
        test = next(iter(res["tests"].values()))["test"]
        lines += [f"## {name} ({res['references']} references; fit {fit['absent']} absent / {fit['present']} "
                  f"present; test {test['absent']} absent / {test['present']} present)", "",
                  "Spread test fitted: " + (str(res["spread_fitted"]) if res["spread_fitted"] else
                                            "not adopted (no m/cap finds more without more false alarms)"),
                  "", "| test | fit: absent answered new | fit: false alarms | test: new + right genus | "
                  "test: false alarms |", "|---|---|---|---|---|"]
        for label, r in res["tests"].items():
            f, t = r["fit"], r["test"]
            lines.append(f"| {label} | {_pct(f['absent_new'], f['absent'])} | {_pct(f['false_alarms'], f['present'])} "
                         f"({f['false_alarms']}) | {_pct(t['absent_new_right_genus'], t['absent'])} | "
                         f"{_pct(t['false_alarms'], t['present'])} ({t['false_alarms']}) |")
        lines.append("")
    return lines


def main() -> int:
    """Run the chosen sets and write the tables."""
    return bold_sets_main("dna_novelty", __doc__, run_set, render)


if __name__ == "__main__":
    sys.exit(main())
