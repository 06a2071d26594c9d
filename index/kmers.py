"""`KmerIndex`: the barcode candidate index — which references share the most k-mers with a query.

What vsearch and usearch do with their k-mer prefilter, made cheap enough for millions of references:
k-mers are 2-bit packed, only those whose hash falls in one of `sample` buckets are indexed (the same
k-mers are kept in every sequence, so two similar barcodes keep the same ones), identical reference
barcodes are indexed once, and the postings are one sorted array (CSR) searched with numpy. A reference
is a candidate when it shares k-mers with the query anywhere, whatever stretch of COI each covers, so
candidates do not depend on the embedding.

A query with no close reference (a new species) is searched again broadly: its relatives share k-mers
common to their whole genus, which the rarest-first budget of a plain search passes over, so a broad search
gathers past it, ranks by the share of k-mers shared, and the best of those are ranked again by short (8-base,
vsearch's word length) k-mers, more of which survive 10-15% divergence (`short_kmer_share`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from tqdm.auto import tqdm

_LOOKUP = np.full(256, 255, np.uint8)
for _i, _b in enumerate(b"ACGT"):
    _LOOKUP[_b] = _i
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_CHUNK = 500  # sequences encoded at once: small enough for the packed windows to stay in cache


@dataclass(frozen=True)
class KmerConfig:
    """k-mer length (<= 16) and the sampling: one k-mer in `sample` (by hash) is indexed and searched."""

    k: int = 12
    sample: int = 2


def kmer_codes(sequences: Sequence[str], config: KmerConfig,
               progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The sampled k-mer codes of each sequence as (codes, owner) arrays, in sequence order (repeats kept)."""
    codes_out, owners_out = [], []
    for start in tqdm(range(0, len(sequences), _CHUNK), desc="k-mer index", unit="chunk", disable=not progress):
        chunk = sequences[start:start + _CHUNK]
        c, o = _chunk_codes(chunk, config)
        codes_out.append(c)
        owners_out.append(o + start)
    if not codes_out:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(codes_out), np.concatenate(owners_out)


def _packed(sequences: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every k-mer of the joined sequences 2-bit packed (16-bit codes for k <= 8), whether it is free of
    separators and ambiguity codes, and which sequence it starts in."""
    dtype = np.uint16 if k <= 8 else np.int32 if k <= 15 else np.int64
    bases = _LOOKUP[np.frombuffer("|".join(sequences).encode("ascii", "replace"), np.uint8)]
    n = max(0, len(bases) - k + 1)
    codes = np.zeros(n, dtype)
    for j in range(k):  # rolling 2-bit packing, one pass per position in the k-mer
        codes <<= 2
        codes |= bases[j:j + n] & 3  # uint8 operand: cast within the ufunc, no array-sized temporary
    bad = np.concatenate([[0], np.cumsum(bases == 255)])
    lengths = np.fromiter((len(s) + 1 for s in sequences), np.int64, len(sequences))
    return codes, (bad[k:] - bad[:n]) == 0, np.repeat(np.arange(len(sequences), dtype=np.int64), lengths)[:n]


def _chunk_codes(sequences: Sequence[str], config: KmerConfig) -> tuple[np.ndarray, np.ndarray]:
    codes, valid, owner = _packed(sequences, config.k)
    codes, owner = codes[valid], owner[valid]  # no separator, no ambiguity code inside
    if config.sample > 1:
        keep = ((codes.astype(np.uint64) * _GOLDEN) >> np.uint64(40)) % np.uint64(config.sample) == 0
        codes, owner = codes[keep], owner[keep]
    return codes.astype(np.int64), owner


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """The distinct values, sorted (sorts `values` in place; cheaper than `np.unique` on big int arrays)."""
    values.sort()
    return values[np.concatenate([[True], values[1:] != values[:-1]])] if len(values) else values


class KmerIndex:
    """Sampled k-mer postings over distinct reference barcodes; `search` ranks them by shared k-mers."""

    budget = 50_000  # postings gathered per query (rarest k-mers first)
    broad_budget = 2_000_000  # ... and per broad search (`search(broad=True)`)
    min_kmers = 16  # ... but never fewer k-mers than this

    def __init__(self, config: KmerConfig, codes: np.ndarray, offsets: np.ndarray, targets: np.ndarray,
                 n_targets: int) -> None:
        self.config = config
        self.codes = codes  # distinct k-mer codes, sorted
        self.offsets = offsets  # postings of codes[i] are targets[offsets[i]:offsets[i+1]]
        self.targets = targets
        self.n_targets = n_targets
        self._sizes: np.ndarray | None = None

    @property
    def target_sizes(self) -> np.ndarray:
        """How many sampled k-mers each target holds (counted once, from the postings)."""
        if self._sizes is None:
            self._sizes = np.bincount(self.targets, minlength=self.n_targets)
        return self._sizes

    @classmethod
    def build(cls, sequences: Sequence[str], config: KmerConfig = KmerConfig(),
              progress: bool = False) -> "KmerIndex":
        """Index distinct normalised barcodes (position i of `sequences` is target i)."""
        codes, owner = kmer_codes(sequences, config, progress)
        key = (codes << 32) | owner  # one sort orders postings by k-mer, then by target
        del codes, owner
        key = sorted_unique(key)  # a k-mer repeated within one barcode counts once
        kmer = key >> 32
        starts = np.flatnonzero(np.concatenate([[len(kmer) > 0], kmer[1:] != kmer[:-1]]))
        distinct = kmer[starts]
        offsets = np.append(starts, len(key)).astype(np.int64)
        targets = (key & 0xFFFFFFFF).astype(np.int32)
        return cls(config, distinct, offsets, targets, len(sequences))

    def query_kmers(self, sequence: str) -> np.ndarray:
        """The distinct sampled k-mer codes of a query, sorted."""
        return sorted_unique(_chunk_codes([sequence], self.config)[0])

    def shared_counts(self, sequence: str, budget: int | None = None,
                      q: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The targets sharing the query's rarest sampled k-mers (`q`: `query_kmers(sequence)` when already
        known), and how many of them each shares.

        k-mers are taken rarest first until `budget` postings (default `self.budget`) are gathered: a k-mer
        common to half an order says nothing about which reference is closest to a conspecific query, while
        the rare ones (a species', a population's) are what tell conspecifics apart; this bounds the work per
        query however many references there are.
        """
        budget = self.budget if budget is None else budget
        q = self.query_kmers(sequence) if q is None else q
        if not len(q) or not len(self.codes):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        pos = np.minimum(np.searchsorted(self.codes, q), len(self.codes) - 1)
        pos = pos[self.codes[pos] == q]
        if not len(pos):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        lo, hi = self.offsets[pos], self.offsets[pos + 1]
        sizes = hi - lo
        order = np.argsort(sizes, kind="stable")
        within = np.cumsum(sizes[order]) <= budget
        within[:self.min_kmers] = True
        take = order[within]
        lo, sizes = lo[take], sizes[take]
        total = int(sizes.sum())
        gather = np.repeat(lo - np.concatenate([[0], np.cumsum(sizes)[:-1]]), sizes) + np.arange(total)
        hits = self.targets[gather]
        if total * 8 > self.n_targets:
            counts = np.bincount(hits, minlength=self.n_targets)
            found = np.flatnonzero(counts)
            return found, counts[found]
        hits.sort()
        starts = np.flatnonzero(np.concatenate([[len(hits) > 0], hits[1:] != hits[:-1]]))
        return hits[starts], np.diff(np.append(starts, len(hits)))

    def search(self, sequence: str, n: int, broad: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Up to `n` targets sharing the most sampled k-mers with `sequence`, most first (ties by position).

        `broad`: for a query with no close reference, whose nearest relatives share mostly k-mers common to
        many barcodes. The rarest-first budget would drop exactly those, so up to `broad_budget` postings are
        gathered, and targets rank by the share of the shorter barcode's k-mers they share (a long reference
        holds more k-mers to share by chance); the scores returned are still counts.
        """
        if broad:
            q = self.query_kmers(sequence)
            found, counts = self.shared_counts(sequence, self.broad_budget, q)
        else:
            found, counts = self.shared_counts(sequence)
        if broad and len(found):
            share = counts / np.maximum(1, np.minimum(len(q), self.target_sizes[found]))
            if len(found) > n:
                top = np.argpartition(-share, n - 1)[:n]
                found, counts, share = found[top], counts[top], share[top]
            order = np.lexsort((found, -share))
            return found[order], counts[order]
        if len(found) > n:
            top = np.argpartition(-counts, n - 1)[:n]
            found, counts = found[top], counts[top]
        order = np.lexsort((found, -counts))
        return found[order], counts[order]

    def save(self, path: str | Path) -> None:
        """Write the index as one .npz file."""
        with open(path, "wb") as fh:
            np.savez(fh, k=self.config.k, sample=self.config.sample, codes=self.codes, offsets=self.offsets,
                     targets=self.targets, n_targets=self.n_targets)

    @classmethod
    def load(cls, path: str | Path) -> "KmerIndex":
        """Read an index written by `save`."""
        with np.load(path) as z:
            return cls(KmerConfig(int(z["k"]), int(z["sample"])), z["codes"], z["offsets"], z["targets"],
                       int(z["n_targets"]))


SHORT_K = 8  # vsearch's word length: more words survive at 10-15% divergence than of 12 bases


def short_kmer_share(query: str, targets: Sequence[str], k: int = SHORT_K) -> np.ndarray:
    """Per target, the share of the query's k-mer positions whose short k-mer the target holds (at most one
    per target position): a finer ranking of a few hundred candidates than long sampled k-mers give at genus
    distance. A short reference shares at most its own length's worth, as with vsearch's word counts: a
    200-bp barcode at 93% is weaker evidence than a whole one at 90%, and ranks below it."""
    codes, valid, _ = _packed([query], k)
    present = np.zeros(1 << (2 * k), bool)
    present[codes[valid]] = True
    codes, ok, owner = _packed(list(targets), k)
    shared = np.bincount(owner[ok & present[codes]], minlength=len(targets))
    return np.minimum(shared, int(valid.sum())) / max(1, int(valid.sum()))


def distinct_sequences(sequences: Iterable[str]) -> tuple[list[str], np.ndarray]:
    """The distinct barcodes in first-seen order, and for each input the position of its distinct barcode."""
    first: dict[str, int] = {}
    owner = [first.setdefault(s, len(first)) for s in sequences]
    return list(first), np.asarray(owner, np.int64)
