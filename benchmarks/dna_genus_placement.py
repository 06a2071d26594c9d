"""Where does a new species belong? Genus placement rules for barcodes of species absent from the references.

    python -m benchmarks.dna_genus_placement [--sets insect1k,osmia,chironominae]

The new-species protocol of `benchmarks.dna_vs_vsearch` (congeneric partition, seed 0; references = key_seen;
queries of val_unseen (fit) and test_unseen (test) species whose genus is referenced and whose best hit is below
97%, i.e. answered "new species"). Per rule, the share of those queries placed in their true genus:
- `closest`: the genus of the best hit (what the service and the 97% rule report);
- `keys-D`: the majority genus among hits within D points of the best identity;
- `species-D`: one vote per referenced species among hits within D points (its closest key), majority genus;
- `closest-codon12`: the genus of the best hit by identity at the first and second codon positions only (the
  third, where most substitutions between species are synonymous and saturate first, is the phase of the
  query's columns with the most mismatches over all its hits), same short-overlap rule as the service;
- `closest-transversions`: the same with identity counting transitions (A<->G, C<->T) as matches;
- `closest-ungapped`: the same with identity counted without gaps, along the diagonal most shared k-mers of the
  pair point to (COI barcodes rarely hold indels; an edit-distance alignment of two barcodes ~85% apart can trade
  mismatches for gap pairs and so read a distant reference closer than it is);
- `plausible-N`: the service's placement (`index.placement`, N = 200 as `clibd calibrate` fits it): the closest
  genus unless the query is implausibly far for it — its best identity there more than 2 standard deviations
  below how close that genus' own species come to each other — while another genus within 3 points of the best
  is within 1 standard deviation of its own; then the closest such genus. A genus' spread: for up to N
  reference keys of it (seeded sample), the best identity to a key of another species of it among the key's 64
  k-mer candidates; mean and deviation shrunk toward all genera's (weight n / (n + 5)), deviation at least 1
  point. The table below each set says how many queries it moved and of how many species.
A rule worth adopting must win on the fit queries (where it would be chosen) and on the test queries alike.
Writes benchmarks/results/dna_genus_placement.{json,md}.
"""
from __future__ import annotations

import re
import sys
from collections import Counter
from typing import Callable, Optional

import edlib
import numpy as np

from benchmarks.dna_vs_vsearch import SETS, _sample, all_hits, bold_sets_main, split_set
from clibd.index.alignment import diagonal_overlap
from clibd.index.barcodes import DEFAULT_CANDIDATES, SHORT_OVERLAP, SHORT_OVERLAP_PENALTY, BarcodeIndex, Hit
from clibd.index.placement import PER_GENUS, SPREAD_CANDIDATES, GenusSpread, fit_spread, spread_sample

WINDOWS = (0.5, 1.0, 1.5, 2.0, 3.0)


def _by_keys(window: float) -> Callable[[str, list[Hit]], str]:
    def place(query: str, hits: list[Hit]) -> str:
        best = hits[0].identity
        votes = Counter(h.record.genus for h in hits if h.identity >= best - window)
        return votes.most_common(1)[0][0]
    return place


def _by_species(window: float) -> Callable[[str, list[Hit]], str]:
    def place(query: str, hits: list[Hit]) -> str:
        best, genus_of = hits[0].identity, {}
        for h in hits:
            if h.identity >= best - window:
                genus_of.setdefault(h.record.species, h.record.genus)
        return Counter(genus_of.values()).most_common(1)[0][0]
    return place


_OPS = re.compile(r"(\d+)([=XID])")
_BASE = np.full(256, 4, np.int8)
for _i, _b in enumerate(b"ACGT"):
    _BASE[_b] = _i


def aligned_columns(query: str, ref: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Query position, query base and reference base (0-3) of every aligned column of two plain bases."""
    swap = len(query) > len(ref)
    short, long_ = (ref, query) if swap else (query, ref)
    res = edlib.align(short, long_, mode="HW", task="path")
    found = _OPS.findall(res["cigar"] or "")
    n = np.array([int(k) for k, _ in found], np.int64)
    op = np.array([o for _, o in found])
    aligned = np.isin(op, ["=", "X"])
    s0 = np.concatenate([[0], np.cumsum(np.where(aligned | (op == "I"), n, 0))[:-1]])
    l0 = np.concatenate([[0], np.cumsum(np.where(aligned | (op == "D"), n, 0))[:-1]]) + res["locations"][0][0]
    if not aligned.any():
        return np.zeros(0, np.int64), np.zeros(0, np.int8), np.zeros(0, np.int8)
    s = np.concatenate([np.arange(a, a + k) for a, k in zip(s0[aligned], n[aligned])])
    lpos = np.concatenate([np.arange(a, a + k) for a, k in zip(l0[aligned], n[aligned])])
    bs = _BASE[np.frombuffer(short.encode(), np.uint8)][s]
    bl = _BASE[np.frombuffer(long_.encode(), np.uint8)][lpos]
    qpos, qb, rb = (lpos, bl, bs) if swap else (s, bs, bl)
    plain = (qb < 4) & (rb < 4)
    return qpos[plain], qb[plain], rb[plain]


def _closest_by(kind: str) -> Callable[[str, list[Hit]], str]:
    def place(query: str, hits: list[Hit]) -> str:
        cols = [aligned_columns(query, h.record.dna) for h in hits]
        if kind == "codon12":
            mism = np.zeros(3)
            for qpos, qb, rb in cols:
                mism += np.bincount(qpos[qb != rb] % 3, minlength=3)
            third = int(np.argmax(mism))
            cols = [(qpos[qpos % 3 != third], qb[qpos % 3 != third], rb[qpos % 3 != third]) for qpos, qb, rb in cols]
            same = [qb == rb for _, qb, rb in cols]
        else:
            same = [(qb == rb) | ((qb ^ rb) == 2) for _, qb, rb in cols]  # A^G = C^T = 2: a transition
        longest = max(h.overlap for h in hits)
        score = [100.0 * m.mean() - (SHORT_OVERLAP_PENALTY if h.overlap < SHORT_OVERLAP * longest else 0.0)
                 if len(m) else -1.0 for h, m in zip(hits, same)]
        return hits[int(np.argmax(score))].record.genus
    return place


def _ungapped(query: str, ref: str) -> Optional[tuple[float, int]]:
    """Identity (%) and compared columns of two barcodes without gaps, along their k-mers' main diagonal."""
    short, long_ = (query, ref) if len(query) <= len(ref) else (ref, query)
    overlap = diagonal_overlap(short, long_)
    if overlap is None:
        return None
    s0, l0, n = overlap
    a = _BASE[np.frombuffer(short[s0:s0 + n].encode(), np.uint8)]
    b = _BASE[np.frombuffer(long_[l0:l0 + n].encode(), np.uint8)]
    plain = (a < 4) & (b < 4)
    return (100.0 * float((a[plain] == b[plain]).mean()), int(plain.sum())) if plain.sum() >= 100 else None


def _closest_ungapped(query: str, hits: list[Hit]) -> str:
    scored = [(u, h) for h in hits for u in [_ungapped(query, h.record.dna)] if u is not None]
    if not scored:
        return hits[0].record.genus
    longest = max(u[1] for u, _ in scored)
    return max(scored, key=lambda s: s[0][0] - (SHORT_OVERLAP_PENALTY if s[0][1] < SHORT_OVERLAP * longest
                                                 else 0.0))[1].record.genus


RULES: dict[str, Callable[[str, list[Hit]], str]] = {"closest": lambda query, hits: hits[0].record.genus}
RULES.update({f"keys-{w:g}": _by_keys(w) for w in WINDOWS})
RULES.update({f"species-{w:g}": _by_species(w) for w in WINDOWS})
RULES.update({"closest-codon12": _closest_by("codon12"), "closest-transversions": _closest_by("transversions"),
              "closest-ungapped": _closest_ungapped})


PLAUSIBLE_SAMPLES = (20, 50, PER_GENUS)  # keys per genus for its spread


def _plausible(spread: Optional[GenusSpread]) -> Callable[[str, list[Hit]], str]:
    def place(query: str, hits: list[Hit]) -> str:
        placed = spread.place(hits) if spread is not None else None
        return (placed or hits[0]).record.genus
    return place


def run_set(name: str, max_queries: int, workers: int) -> dict:
    """Placement accuracy of every rule on the fit and test new-species queries of one set."""
    by = split_set(SETS[name])
    refs = by.get("key_seen", [])
    index = BarcodeIndex.build([r.dna for r in refs])
    genera = {r.genus for r in refs}
    out: dict = {"references": len(refs), "moved": {}}
    ref_hits = all_hits(index, refs, [r.dna for r in refs], workers, SPREAD_CANDIDATES)
    rules = dict(RULES)
    family_of = {r.genus: r.family for r in refs}
    for n in PLAUSIBLE_SAMPLES:
        sample = spread_sample(refs, n)
        rules[f"plausible-{n}"] = _plausible(fit_spread(refs, sample, [ref_hits[i] for i in sample]))
    for part, split in (("fit", "val_unseen"), ("test", "test_unseen")):
        qs = [q for q in _sample(by.get(split, []), max_queries) if q.genus in genera]
        hits = all_hits(index, refs, [q.dna for q in qs], workers, DEFAULT_CANDIDATES)
        novel = [(q, h) for q, h in zip(qs, hits) if h and h[0].identity < 97.0]
        placed = {rule: [place(q.dna, h) for q, h in novel] for rule, place in rules.items()}
        out[part] = {"queries": len(novel),
                     **{rule: round(100 * sum(g == q.genus for g, (q, _) in zip(gs, novel)) / max(1, len(novel)), 2)
                        for rule, gs in placed.items()}}
        for rule, gs in placed.items():
            if rule.startswith("plausible"):
                moved = [(g, q, h) for g, (q, h) in zip(gs, novel) if g != h[0].record.genus]
                out["moved"].setdefault(rule, {})[part] = {
                    "queries": len(moved), "species": len({q.species for _, q, _ in moved}),
                    "now_right": sum(g == q.genus for g, q, _ in moved),
                    "were_right": sum(h[0].record.genus == q.genus for _, q, h in moved),
                    "other_family": sum(family_of[g] != h[0].record.family for g, _, h in moved)}
    return out


def render(out: dict) -> str:
    """One table per set."""
    lines = ["# Genus placement of new species (right genus %, among queries answered new species)", "",
             f"`{out['command']}`", ""]
    for name, res in out["sets"].items():
        lines += [f"## {name} ({res['references']} references; fit {res['fit']['queries']} / test "
                  f"{res['test']['queries']} queries)", "", "| rule | fit | test |", "|---|---|---|"]
        lines += [f"| {rule} | {res['fit'][rule]} | {res['test'][rule]} |" for rule in res["fit"] if rule != "queries"]
        lines += ["", "Queries a `plausible` rule moved away from the closest genus (fit / test): moved, of how many "
                  "species, right after / right before, into another family.", "",
                  "| rule | fit | test |", "|---|---|---|"]
        for rule, m in res["moved"].items():
            cells = [f"{m[p]['queries']} of {m[p]['species']} species, {m[p]['now_right']} / {m[p]['were_right']}, "
                     f"{m[p]['other_family']}" for p in ("fit", "test")]
            lines.append(f"| {rule} | {cells[0]} | {cells[1]} |")
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    """Run the chosen sets and write the tables."""
    return bold_sets_main("dna_genus_placement", __doc__, run_set, lambda out: render(out).splitlines())


if __name__ == "__main__":
    sys.exit(main())
