"""Percent identity of two barcodes over their overlap, from a real alignment (edlib, bit-parallel).

The shorter barcode is aligned inside the longer one (edlib's infix mode: the longer one's ends are free).
Where the two cover partly different stretches of COI, the shorter one's overhang comes out as terminal
insertions; those columns are trimmed, so identity counts the overlapping columns only — the way vsearch
leaves terminal gaps out (`--iddef 2`). A pair whose overlap is shorter than the minimum (like vsearch's
`--query_cov`) is not comparable and gets no identity at all: barcodes of different stretches are never
compared. Nor is a pair below `MIN_IDENTITY`: unrelated DNA aligned with free end gaps still matches about half
its columns by chance (a barcode inside another stretch of COI comes out near 55%), while COI of insects from
different orders stays above 70%.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

import edlib

from clibd.dna_tokenizer import normalize_sequence

# IUPAC ambiguity codes match every base they stand for (and N matches anything).
_IUPAC = {"R": "AG", "Y": "CT", "K": "GT", "M": "AC", "S": "CG", "W": "AT", "B": "CGT", "D": "AGT",
          "H": "ACT", "V": "ACG", "N": "ACGTRYKMSWBDHV"}
EQUALITIES = [(code, base) for code, bases in _IUPAC.items() for base in bases]
_OPS = re.compile(r"(\d+)([=XID])")

MIN_OVERLAP_FRACTION = 0.5  # of the shorter barcode
MIN_OVERLAP_BP = 100
MIN_IDENTITY = 70.0


@dataclass(frozen=True)
class Alignment:
    """Identity (%) over the overlapping columns, and the overlap in bases of the shorter barcode."""

    identity: float
    overlap: int
    columns: int
    matches: int


def min_overlap(query_len: int, target_len: int, fraction: float = MIN_OVERLAP_FRACTION,
                min_bp: int = MIN_OVERLAP_BP) -> int:
    """The least overlap (bases) at which two barcodes of these lengths are compared."""
    return min(min(query_len, target_len), max(min_bp, int(round(fraction * min(query_len, target_len)))))


def align(query: str, target: str, fraction: float = MIN_OVERLAP_FRACTION,
          min_bp: int = MIN_OVERLAP_BP) -> Optional[Alignment]:
    """The alignment of two normalised barcodes over their overlap; None when they overlap too little or
    align no better than chance."""
    short, long_ = (query, target) if len(query) <= len(target) else (target, query)
    if not short:
        return None
    res = edlib.align(short, long_, mode="HW", task="path", additionalEqualities=EQUALITIES)
    ops = [(int(n), op) for n, op in _OPS.findall(res["cigar"] or "")]
    while ops and ops[0][1] in "ID":  # the overhang of the shorter barcode (or a free gap) at either end
        ops.pop(0)
    while ops and ops[-1][1] in "ID":
        ops.pop()
    matches = sum(n for n, op in ops if op == "=")
    columns = sum(n for n, _ in ops)
    overlap = sum(n for n, op in ops if op in "=XI")
    if columns == 0 or overlap < min_overlap(len(query), len(target), fraction, min_bp):
        return None
    identity = 100.0 * matches / columns
    if identity < MIN_IDENTITY:
        return None
    return Alignment(identity, overlap, columns, matches)


def percent_identity(query: str, target: str) -> Optional[float]:
    """Identical / aligned columns (%) over the overlap of two barcodes, as BOLD and vsearch report it;
    None when the two cover different stretches of COI (too little overlap to compare)."""
    a = align(normalize_sequence(query), normalize_sequence(target))
    return None if a is None else a.identity
