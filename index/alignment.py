"""Percent identity of two barcodes over their overlap, from a real alignment (edlib, bit-parallel).

The shorter barcode is aligned inside the longer one (edlib's infix mode: the longer one's ends are free).
Where the two cover partly different stretches of COI, the shorter one's overhang comes out as terminal
insertions; those columns are trimmed, so identity counts the overlapping columns only — the way vsearch
leaves terminal gaps out (`--iddef 2`). A pair whose overlap is shorter than the minimum (like vsearch's
`--query_cov`) is not comparable and gets no identity at all: barcodes of different stretches are never
compared. Nor is a pair below `MIN_IDENTITY`: unrelated DNA aligned with free end gaps still matches about half
its columns by chance (a barcode inside another stretch of COI comes out near 55%), while COI of insects from
different orders stays above 70%.

Ambiguity codes (IUPAC, N) align with the bases they stand for, but a column holding one says nothing about
identity: it counts neither as a match nor as a column, nor toward the overlap — nor toward the overlap needed,
which is a share of the determined bases (a degraded barcode, half N, is compared over its determined half). A
reference that is mostly N (real BOLD records are) would otherwise be a 100% match for every query falling into
its N stretch.
"""
from __future__ import annotations

import re
from functools import lru_cache
from dataclasses import dataclass
from typing import Iterable, Iterator, Optional

import edlib
import numpy as np

from clibd.dna_tokenizer import normalize_sequence

# IUPAC ambiguity codes match every base they stand for (and N matches anything).
_IUPAC = {"R": "AG", "Y": "CT", "K": "GT", "M": "AC", "S": "CG", "W": "AT", "B": "CGT", "D": "AGT",
          "H": "ACT", "V": "ACG", "N": "ACGTRYKMSWBDHV"}
EQUALITIES = [(code, base) for code, bases in _IUPAC.items() for base in bases]
_OPS = re.compile(r"(\d+)([=XID])")
_INDEL = re.compile(r"(\d+)([ID])")
_OPS_BACK = re.compile(r"([=XID])(\d+)")  # a run of the reversed path: its op, then its length's digits reversed
_BASES = frozenset("ACGT")
_CODE = np.full(256, 4, np.int64)
for _i, _b in enumerate(b"ACGT"):
    _CODE[_b] = _i

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
                min_bp: int = MIN_OVERLAP_BP, determined: Optional[tuple[int, int]] = None) -> int:
    """The least overlap (bases) at which two barcodes of these lengths are compared: `fraction` of the shorter
    one's determined bases (`determined`: each one's count of A, C, G, T; all of it by default), at least
    `min_bp` (a barcode shorter than that: all of it)."""
    known = min(determined) if determined is not None else min(query_len, target_len)
    return min(min(query_len, target_len), max(min_bp, int(round(fraction * known))))


@lru_cache(maxsize=65536)
def determined_bases(seq: str) -> int:
    """How many of a barcode's letters are A, C, G or T (the rest, ambiguity codes, say nothing); cached, as
    a query meets many references and a reference many queries."""
    return len(seq) if not _ambiguous(seq) else sum(map(seq.count, "ACGT"))


def align(query: str, target: str, fraction: float = MIN_OVERLAP_FRACTION,
          min_bp: int = MIN_OVERLAP_BP) -> Optional[Alignment]:
    """The alignment of two normalised barcodes over their overlap; None when they overlap too little or
    align no better than chance."""
    short, long_ = (query, target) if len(query) <= len(target) else (target, query)
    if not short:
        return None
    # an N column counts toward no overlap, nor toward the overlap needed: a query half N is compared over
    # its determined half
    need = min_overlap(len(query), len(target), fraction, min_bp,
                       (determined_bases(query), determined_bases(target)))
    best, ragged = _infix(short, long_)
    overlap = diagonal_overlap(short, long_) if ragged else None
    if overlap is not None:  # the shorter one may overhang an end of the longer: align the overlap k-mers point to
        s0, l0, n = overlap
        lo, hi = max(0, l0 - _SLACK), min(len(long_), l0 + n + _SLACK)
        # the whole of both again (two barcodes of one stretch) would only repeat the first alignment
        whole = s0 == 0 and n == len(short) and lo == 0 and hi == len(long_)
        crop, _ = (None, False) if whole else _infix(short[s0:s0 + n], long_[lo:hi])
        if crop is not None and crop.overlap >= need and (best is None or best.overlap < need
                                                           or crop.identity > best.identity):
            best = crop
    if best is None or best.overlap < need or best.identity < MIN_IDENTITY:
        return None
    return best


_SLACK = 30  # bases of the longer barcode kept beyond the overlap a k-mer diagonal points to (indels)
_EDGE = 60  # columns at either end of an alignment where scattered indels betray an overhang
_K = 12


def _infix(short: str, long_: str) -> tuple[Optional[Alignment], bool]:
    """`short` aligned inside `long_` with terminal gaps trimmed, and whether indels crowd its ends."""
    coded = _ambiguous(short) or _ambiguous(long_)
    # the equalities only concern ambiguity codes; without any, edlib is spared building them
    res = (edlib.align(short, long_, mode="HW", task="path", additionalEqualities=EQUALITIES) if coded else
           edlib.align(short, long_, mode="HW", task="path"))
    cigar = res["cigar"] or ""
    counted = None if coded or not res["locations"] else _counted(cigar, len(short), res["editDistance"],
                                                                  res["locations"][0])
    return counted or _walked(cigar, short, long_, coded, res["locations"][0][0] if res["locations"] else 0)


def _counted(cigar: str, short_len: int, distance: int, location: tuple[int, int]
             ) -> Optional[tuple[Optional[Alignment], bool]]:
    """`_walked` for a pair without ambiguity codes, from totals: the path's columns of `short` (matches,
    mismatches, insertions) add up to its length, those of the long barcode to the located span, and its
    mismatches and indels to the edit distance; so only the indel runs and the runs near the ends are read.
    None where those totals do not hold (then the path is walked)."""
    first = min((i for i in (cigar.find("="), cigar.find("X")) if i >= 0), default=-1)
    if first < 0:  # all indels: nothing aligned
        return None, False
    last = max(cigar.rfind("="), cigar.rfind("X"))
    head, tail = cigar[:first].rstrip("0123456789"), cigar[last + 1:]
    inserted = deleted = 0
    for n, op in _INDEL.findall(cigar):
        inserted, deleted = (inserted + int(n), deleted) if op == "I" else (inserted, deleted + int(n))
    end_ins = end_del = 0
    for n, op in _INDEL.findall(head + tail):
        end_ins, end_del = (end_ins + int(n), end_del) if op == "I" else (end_ins, end_del + int(n))
    if location[1] - location[0] + 1 != short_len - inserted + deleted:
        return None
    gaps = inserted + deleted - end_ins - end_del
    mismatches = distance - inserted - deleted
    matches = short_len - mismatches - inserted
    columns = matches + mismatches + gaps
    ragged = gaps >= 3 and (_crowded(_runs(cigar, len(head), len(tail)))
                            or _crowded(_runs_back(cigar, len(tail), len(head))))
    return Alignment(100.0 * matches / columns, columns - (deleted - end_del), columns, matches), ragged


def _runs(cigar: str, head: int, tail: int) -> Iterator[tuple[int, str]]:
    """The path's runs (length, op) from its start, its first `head` and last `tail` characters left out."""
    for m in _OPS.finditer(cigar, head, len(cigar) - tail):
        yield int(m.group(1)), m.group(2)


def _runs_back(cigar: str, tail: int, head: int) -> Iterator[tuple[int, str]]:
    """The same runs from the path's end."""
    for m in _OPS_BACK.finditer(cigar[::-1], tail, len(cigar) - head):
        yield int(m.group(2)[::-1]), m.group(1)


def _walked(cigar: str, short: str, long_: str, coded: bool, start: int) -> tuple[Optional[Alignment], bool]:
    """The alignment read column run by column run from edlib's path (ambiguity codes, indels near the ends)."""
    found = _OPS.findall(cigar)
    lo, hi = 0, len(found)
    s_pos, l_pos = 0, start
    while lo < hi and found[lo][1] in "ID":  # the overhang of the shorter barcode (or a free gap) at either end
        n, op = int(found[lo][0]), found[lo][1]
        s_pos, l_pos = (s_pos + n, l_pos) if op == "I" else (s_pos, l_pos + n)
        lo += 1
    while hi > lo and found[hi - 1][1] in "ID":
        hi -= 1
    ops = []
    matches = columns = gaps = deleted = 0
    for count, op in found[lo:hi]:
        n = int(count)
        ops.append((n, op))
        columns += n
        if op == "=":
            matches += n
        elif op != "X":
            gaps += n
            if op == "D":
                deleted += n
    overlap = columns - deleted
    if coded:
        vague, vague_matches = _ambiguous_columns(ops, short, long_, s_pos, l_pos)
        matches, columns, overlap = matches - vague_matches, columns - vague, overlap - vague
    if columns <= 0:
        return None, False
    ragged = gaps >= 3 and (_crowded(ops) or _crowded(ops[::-1]))
    return Alignment(100.0 * matches / columns, overlap, columns, matches), ragged


@lru_cache(maxsize=65536)
def _ambiguous(seq: str) -> bool:
    """Whether a barcode holds an ambiguity code (cached: a query meets many references, a reference many
    queries)."""
    return not _BASES.issuperset(seq)


def _crowded(ops: Iterable[tuple[int, str]]) -> bool:
    """Three or more indel columns among the first `_EDGE` columns (COI is coding: real indels are rare)."""
    seen = gaps = 0
    for n, op in ops:
        take = min(n, _EDGE - seen)
        gaps += take if op in "ID" else 0
        seen += take
        if seen >= _EDGE:
            break
    return gaps >= 3


@lru_cache(maxsize=16384)
def _codes(seq: str) -> np.ndarray:
    """The 2-bit code of every k-mer start (-1 where the k-mer holds an ambiguity code); cached, since a query
    meets many candidates and a reference many queries (callers only read the array)."""
    b = _CODE[np.frombuffer(seq.encode(), np.uint8)]
    n = len(b) - _K + 1
    if n <= 0:
        return np.zeros(0, np.int64)
    codes = np.zeros(n, np.int64)
    for j in range(_K):
        codes = (codes << 2) | (b[j:j + n] & 3)
    bad = np.concatenate([[0], np.cumsum(b > 3)])
    codes[(bad[_K:] - bad[:n]) > 0] = -1
    codes.setflags(write=False)
    return codes


def diagonal_overlap(short: str, long_: str) -> Optional[tuple[int, int, int]]:
    """Where two barcodes overlap along the diagonal most shared k-mers agree on: the start in `short`, the start
    in `long_` and the length; None without such a diagonal."""
    offset = _kmer_diagonal(short, long_)
    if offset is None:
        return None
    s0, l0 = max(0, -offset), max(0, offset)
    return s0, l0, min(len(short) - s0, len(long_) - l0)


def _kmer_diagonal(short: str, long_: str) -> Optional[int]:
    """The offset (position in `long_` minus position in `short`) most shared k-mers agree on."""
    cs, cl = _codes(short), _codes(long_)
    order = np.argsort(cs, kind="stable")
    sorted_s = cs[order]
    pos = np.minimum(np.searchsorted(sorted_s, cl), len(sorted_s) - 1) if len(sorted_s) else None
    if pos is None:
        return None
    hit = (sorted_s[pos] == cl) & (cl >= 0)
    if np.count_nonzero(hit) < 3:
        return None
    diag = np.flatnonzero(hit) - order[pos[hit]] + len(short)
    counts = np.bincount(diag)
    return int(np.argmax(counts)) - len(short)


def _ambiguous_columns(ops: list[tuple[int, str]], short: str, long_: str, s_pos: int,
                       l_pos: int) -> tuple[int, int]:
    """How many aligned (match or mismatch) columns hold an ambiguity code, and how many of those matched."""
    amb_s = _CODE[np.frombuffer(short.encode(), np.uint8)] > 3
    amb_l = _CODE[np.frombuffer(long_.encode(), np.uint8)] > 3
    in_s = np.concatenate([[0], np.cumsum(amb_s)]).tolist()  # ambiguity codes before each position
    in_l = np.concatenate([[0], np.cumsum(amb_l)]).tolist()
    vague = vague_matches = 0
    for n, op in ops:
        if op in "=X":
            a, b = in_s[s_pos + n] - in_s[s_pos], in_l[l_pos + n] - in_l[l_pos]
            # a column holding codes on both sides counts once: only then are the columns compared
            k = int(np.count_nonzero(amb_s[s_pos:s_pos + n] | amb_l[l_pos:l_pos + n])) if a and b else a + b
            vague += k
            vague_matches += k if op == "=" else 0
        s_pos += n if op in "=XI" else 0
        l_pos += n if op in "=XD" else 0
    return vague, vague_matches


def percent_identity(query: str, target: str) -> Optional[float]:
    """Identical / aligned columns (%) over the overlap of two barcodes, as BOLD and vsearch report it;
    None when the two cover different stretches of COI (too little overlap to compare)."""
    a = align(normalize_sequence(query), normalize_sequence(target))
    return None if a is None else a.identity
