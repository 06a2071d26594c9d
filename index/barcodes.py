"""Barcode evidence: candidate references from shared k-mers (and the embedding), each aligned for real.

`BarcodeIndex` belongs to a snapshot: the distinct barcodes of its DNA keys, which key positions carry each,
and their `KmerIndex`. `align_hits` turns candidate barcodes into `Hit`s, best identity first; a reference
whose barcode covers another stretch of COI than the query is never a hit.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import numpy as np

from clibd.dna_tokenizer import try_normalize
from clibd.index.alignment import Alignment, align
from clibd.index.kmers import KmerConfig, KmerIndex, distinct_sequences, short_kmer_share
from clibd.index.orientation import coding_strand

KMER_FILE = "dna.kmers2.npz"  # (2: references on their coding strand; an older file is rebuilt on load)
# Measured on insect1k (benchmarks.dna_candidates): for queries of referenced species the first hit's species
# is the same from 8 candidates up (16 hold the best alignment of 94.7%, 32 of 96.5%); for new species 16
# candidates hold the best alignment of 36%, 128 of 79% (and the first hit's genus is right 74% -> 80%). So
# 16 candidates, and WIDEN x 16 for a query whose best is below WIDEN_BELOW (below any species band).
DEFAULT_CANDIDATES = 16
WIDEN_BELOW = 98.0
WIDEN = 8
# A query whose best among WIDEN x 16 is below BROAD_BELOW (BOLD's species threshold) has no conspecific among
# them: it gets the broad search too. A specimen of a referenced species 2-3% from its nearest key does not.
BROAD_BELOW = 97.0
BROAD_POOL = 1024  # distinct barcodes a broad search ranks by short k-mers
SUPPORT_BARCODES = 8  # barcodes whose shared k-mers decide a query's strand when its reading frames do not
SHORT_OVERLAP = 0.9
SHORT_OVERLAP_PENALTY = 2.0


@dataclass(frozen=True)
class Hit:
    """A reference key whose barcode aligns with the query: identity (%) over the overlap, and the
    embedding similarity when the key was also an embedding neighbour."""

    record: object
    identity: float
    overlap: int
    similarity: Optional[float] = None


class BarcodeIndex:
    """The distinct barcodes of a key set, which keys carry each, and their k-mer candidate index."""

    def __init__(self, sequences: list[str], owner: np.ndarray, kmers: KmerIndex) -> None:
        self.sequences = sequences
        self.kmers = kmers
        # owner: key position -> distinct barcode (-1: the key has no usable barcode)
        order = np.argsort(owner, kind="stable")
        order = order[owner[order] >= 0]
        self._members = order  # key positions grouped by distinct barcode
        self._starts = np.searchsorted(owner[order], np.arange(len(sequences) + 1))

    @staticmethod
    def _distinct(dnas: Sequence[Optional[str]]) -> tuple[list[str], np.ndarray]:
        normal = [try_normalize(d) for d in dnas]
        present = [i for i, s in enumerate(normal) if s]
        sequences, owner_present = distinct_sequences(normal[i] for i in present)
        sequences = [coding_strand(s)[0] for s in sequences]  # a reference stored reversed is searched turned
        owner = np.full(len(dnas), -1, np.int64)
        owner[present] = owner_present
        return sequences, owner

    @classmethod
    def build(cls, dnas: Sequence[Optional[str]], config: KmerConfig = KmerConfig(),
              progress: bool = False) -> "BarcodeIndex":
        """Index the barcodes of keys (position i of `dnas` is key i; None or invalid: not searchable)."""
        sequences, owner = cls._distinct(dnas)
        return cls(sequences, owner, KmerIndex.build(sequences, config, progress))

    @classmethod
    def load(cls, folder: str | Path, dnas: Sequence[Optional[str]]) -> "BarcodeIndex":
        """Read the k-mer index a snapshot folder holds, or build it when the snapshot predates it."""
        path = Path(folder) / KMER_FILE
        sequences, owner = cls._distinct(dnas)
        if path.exists():
            kmers = KmerIndex.load(path)
            if kmers.n_targets == len(sequences):
                return cls(sequences, owner, kmers)
        return cls(sequences, owner, KmerIndex.build(sequences))

    def save(self, folder: str | Path) -> None:
        """Write the k-mer index into a snapshot folder (the barcodes are in the key records)."""
        self.kmers.save(Path(folder) / KMER_FILE)

    def members(self, distinct: int) -> np.ndarray:
        """The key positions carrying one distinct barcode."""
        return self._members[self._starts[distinct]:self._starts[distinct + 1]]

    def candidates(self, sequence: str, n: int, broad: bool = False) -> list[int]:
        """The `n` distinct barcodes sharing the most rare k-mers with the query, best first; `broad` (a query
        with no close reference): the `BROAD_POOL` sharing the largest share of k-mers, of those the `n` sharing
        the largest share of short k-mers."""
        if not broad:
            return [int(i) for i in self.kmers.search(sequence, n)[0]]
        found, _ = self.kmers.search(sequence, max(n, BROAD_POOL), broad=True)
        share = short_kmer_share(sequence, [self.sequences[i] for i in found])
        return [int(found[i]) for i in np.argsort(-share, kind="stable")[:n]]


def kmer_support(indexes: Iterable[Optional[BarcodeIndex]], sequence: str, n: int = SUPPORT_BARCODES) -> int:
    """How many sampled k-mers `sequence` shares with the `n` barcodes of `indexes` (None: skipped) sharing
    most with it, summed: one stray barcode (a reference stored reverse-complemented) cannot outweigh the rest."""
    counts = np.concatenate([index.kmers.search(sequence, n)[1] for index in indexes if index is not None] or
                            [np.zeros(0, np.int64)])
    return int(np.sort(counts)[::-1][:n].sum())


def candidate_pool(index: BarcodeIndex, records: Sequence, sequence: str, n: int,
                   removed: frozenset = frozenset(), similarity: Optional[dict] = None,
                   broad: bool = False) -> list[tuple]:
    """(record, barcode, embedding similarity) for the keys carrying the query's `n` k-mer candidates
    (`BarcodeIndex.candidates`), less removed ids; `similarity` maps (id, modality) of embedding neighbours to
    their cosine and is consumed."""
    similarity = {} if similarity is None else similarity
    pool = []
    for distinct in index.candidates(sequence, n * (2 if removed else 1), broad):
        for pos in index.members(distinct):
            rec = records[pos]
            if rec.id not in removed:
                pool.append((rec, index.sequences[distinct], similarity.pop((rec.id, "dna"), None)))
    return pool


def align_hits(query: str, candidates: Iterable[tuple[object, str, Optional[float]]],
               done: Optional[dict[str, Optional[Alignment]]] = None) -> list[Hit]:
    """Align the query with each candidate (record, barcode, embedding similarity) — every distinct
    barcode once (`done` caches alignments across calls) — and return the comparable ones as hits, best
    first (`evidence_order`)."""
    done = {} if done is None else done
    hits = []
    for record, barcode, similarity in candidates:
        if barcode not in done:
            done[barcode] = align(query, barcode)
        a = done[barcode]
        if a is not None:
            hits.append(Hit(record, a.identity, a.overlap, similarity))
    return evidence_order(hits)


def standing(hits: Sequence[Hit]) -> list[float]:
    """Each hit's identity as the hits rank: less `SHORT_OVERLAP_PENALTY` points where it overlaps the query
    over less than `SHORT_OVERLAP` of the longest overlap any of `hits` reaches."""
    longest = max((h.overlap for h in hits), default=0)
    return [h.identity - (SHORT_OVERLAP_PENALTY if h.overlap < SHORT_OVERLAP * longest else 0.0) for h in hits]


def evidence_order(hits: list[Hit]) -> list[Hit]:
    """Hits best first: by `standing`, then similarity — identity over half a barcode is weaker evidence, and
    of a different stretch of COI, than over all of it (a 300-bp reference at 90% would otherwise outrank a
    630-bp one at 89.5%)."""
    ranked = sorted(zip(standing(hits), hits),
                    key=lambda sh: (-sh[0], -(sh[1].similarity if sh[1].similarity is not None else -2.0)))
    return [h for _, h in ranked]


def widened_hits(query: str, pool_of: Callable[[int, bool], list[tuple[object, str, Optional[float]]]],
                 n: int) -> list[Hit]:
    """Hits among the `n` best k-mer candidates (`pool_of(n, False)`); when none reaches `WIDEN_BELOW`
    identity, among the `WIDEN` x n best; when none of those reaches `BROAD_BELOW` either — a specimen with no
    conspecific reference, whose closest relatives share few rare k-mers with it — also among as many of a
    broad search (`pool_of(WIDEN * n, True)`: `BarcodeIndex.candidates`), which adds candidates and takes none
    away."""
    done: dict[str, Optional[Alignment]] = {}
    hits = align_hits(query, pool_of(n, False), done)
    if not hits or hits[0].identity < WIDEN_BELOW:
        pool = pool_of(n * WIDEN, False)
        hits = align_hits(query, pool, done)
        if not hits or hits[0].identity < BROAD_BELOW:
            seen = {id(entry[0]) for entry in pool}
            pool += [entry for entry in pool_of(n * WIDEN, True) if id(entry[0]) not in seen]
            hits = align_hits(query, pool, done)
    return hits

