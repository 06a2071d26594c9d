"""`Searcher`: search a snapshot plus a small exact delta, with removals and taxon restriction in FAISS."""
from __future__ import annotations

import math
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional

import faiss
import numpy as np

from clibd.dna_tokenizer import try_normalize
from clibd.taxonomy import RANKS
from clibd.index.barcodes import (DEFAULT_CANDIDATES, BarcodeIndex, Hit, candidate_pool, kmer_support,
                                  widened_hits)
from clibd.index.factory import build_index, gpu_available, search_params, to_gpu
from clibd.index.orientation import orient
from clibd.index.snapshot import KeyRecord, Snapshot, load_snapshot, text_key_id, write_snapshot


class UnknownTaxonError(ValueError):
    """`restrict_to` names a taxon that no reference key carries."""


@dataclass
class Neighbor:
    """One reference key found for a query."""

    record: KeyRecord
    similarity: float


@dataclass(frozen=True)
class _Delta:
    records: tuple[KeyRecord, ...]
    vectors: np.ndarray


def rerank(queries: np.ndarray, candidates: np.ndarray, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Re-score approximate candidates (-1 = none) with the exact vectors; the k best per query, best first."""
    sims = np.full((len(queries), k), -np.inf, np.float32)
    ids = np.full((len(queries), k), -1, np.int64)
    for q in range(len(queries)):
        found = candidates[q][candidates[q] >= 0]
        if not len(found):
            continue
        exact = np.asarray(vectors[np.sort(found)], dtype=np.float32) @ queries[q]
        order = np.argsort(-exact, kind="stable")[:k]
        sims[q, :len(order)] = exact[order]
        ids[q, :len(order)] = np.sort(found)[order]
    return sims, ids


def device_copy(index: faiss.Index) -> Optional[faiss.Index]:
    """A GPU copy of a snapshot index with the same search settings, or None when it stays on the CPU."""
    copy = to_gpu(index)
    if copy is index:
        return None
    inner = faiss.downcast_index(index)
    if isinstance(inner, faiss.IndexIVF):
        faiss.GpuParameterSpace().set_index_parameter(copy, "nprobe", inner.nprobe)
    return copy


def is_exact(index: faiss.Index) -> bool:
    """Whether the index scores with the exact vectors (so re-ranking would change nothing)."""
    return isinstance(faiss.downcast_index(index), faiss.IndexFlat)


_SEARCH_THREADS: Optional[int] = None


def set_search_threads(threads: Optional[int]) -> None:
    """OpenMP threads per FAISS search, in whichever thread searches (None: FAISS's default, all cores). A server
    that answers requests from several threads sets 1: its requests already run side by side, and every thread
    that searches with more would bring its own team of spinning OpenMP workers onto the same cores."""
    global _SEARCH_THREADS
    _SEARCH_THREADS = threads


class Searcher:
    """Thread-safe search over a snapshot; `add` and `remove` take effect at once, `compact` folds them in.

    Approximate indexes return `rerank` x k candidates, re-scored with the snapshot's exact (memory-mapped)
    vectors, so similarities — and the thresholds calibrated on them — are exact cosines.
    """

    def __init__(self, snapshot: Snapshot, rerank: int = 4) -> None:
        self._lock = threading.RLock()
        self.rerank = rerank
        self._install(snapshot)

    @classmethod
    def open(cls, root: str | Path, checkpoint_hash: Optional[str] = None, rerank: int = 4) -> "Searcher":
        """Load the current snapshot under `root`."""
        return cls(load_snapshot(root, checkpoint_hash), rerank)

    def _install(self, snapshot: Snapshot) -> None:
        taxon_ids: dict[str, dict[str, np.ndarray]] = {}
        positions: dict[str, dict[str, list[int]]] = {}
        for modality, recs in snapshot.records.items():
            by_taxon: dict[str, list[int]] = defaultdict(list)
            by_id: dict[str, list[int]] = defaultdict(list)
            for i, rec in enumerate(recs):
                by_id[rec.id].append(i)
                for rank in RANKS:
                    if rec.label(rank):
                        by_taxon[rec.label(rank).lower()].append(i)
            taxon_ids[modality] = {t: np.array(v, dtype=np.int64) for t, v in by_taxon.items()}
            positions[modality] = dict(by_id)
        devices = {m: device_copy(idx) for m, idx in snapshot.indexes.items()} if gpu_available() else {}
        with self._lock:
            self.snapshot = snapshot
            self._device = devices  # GPU copies for unrestricted searches (FAISS GPU indexes take no selector)
            self._taxon_ids = taxon_ids
            self._positions = positions
            self._delta = {m: _Delta((), np.zeros((0, snapshot.vectors[m].shape[1]), np.float32))
                           for m in snapshot.records}
            self._removed: frozenset[str] = frozenset()
            self._delta_barcodes: tuple[int, Optional[BarcodeIndex]] = (0, None)

    @property
    def modalities(self) -> list[str]:
        """Modalities with keys."""
        return list(self.snapshot.records)

    def size(self, modality: str) -> int:
        """Searchable keys of a modality (main + delta - removed)."""
        with self._lock:
            hidden = sum(len(self._positions[modality].get(i, ())) for i in self._removed)
            main = len(self.snapshot.records[modality]) - hidden
            return main + sum(1 for r in self._delta[modality].records if r.id not in self._removed)

    def add(self, modality: str, records: list[KeyRecord], vectors: np.ndarray) -> None:
        """Make new keys searchable at once (exact delta index beside the main one)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if len(records) != len(vectors):
            raise ValueError(f"{len(records)} records for {len(vectors)} vectors")
        with self._lock:
            if modality not in self._delta:
                raise ValueError(f"this snapshot has no {modality!r} keys")
            old = self._delta[modality]
            ids = {r.id for r in records}
            self._delta[modality] = _Delta(old.records + tuple(records), np.concatenate([old.vectors, vectors]))
            self._removed = self._removed - ids  # re-adding an id brings it back

    def remove(self, ids: Iterable[str]) -> int:
        """Hide keys by record id at once, and the text keys of taxonomies no searchable photo or barcode key
        carries any more (a misnamed reference deleted takes its name with it); returns how many keys of `ids`
        were hidden."""
        ids = set(ids)
        with self._lock:
            hidden = [self.snapshot.records[m][p] for m in self._positions for i in ids
                      for p in self._positions[m].get(i, [])]
            hidden += [r for d in self._delta.values() for r in d.records if r.id in ids]
            self._removed = self._removed | ids
            self._removed = self._removed | self._orphaned_taxa([r for r in hidden if r.modality != "text"])
            return len(hidden)

    def _orphaned_taxa(self, gone: list[KeyRecord]) -> set[str]:
        """The text key ids of the taxonomies of `gone` that no searchable photo or barcode key carries."""
        orphans = set()
        for tid, rec in {text_key_id(r): r for r in gone}.items():
            deepest = next((rank for rank in reversed(RANKS) if rec.label(rank)), None)
            carriers = self.carrying(deepest, rec.label(deepest)) if deepest else ()
            if deepest and not any(k.modality != "text" and text_key_id(k) == tid for k in carriers):
                orphans.add(tid)
        return orphans

    def restore(self, ids: Iterable[str]) -> set[str]:
        """Bring back hidden keys that exist (a text key whose taxonomy is added again); returns those ids."""
        with self._lock:
            back = {i for i in ids if i in self._removed and self._known(i)}
            self._removed = self._removed - back
            return back

    def _known(self, key_id: str) -> bool:
        """Whether the snapshot or the delta holds a key with this record id, hidden or not (under the lock)."""
        return any(key_id in pos for pos in self._positions.values()) or any(
            r.id == key_id for d in self._delta.values() for r in d.records)

    def live_records(self, modality: str) -> list[KeyRecord]:
        """The searchable keys of a modality: the snapshot's and the delta's, less the removed ones."""
        with self._lock:
            snapshot, delta, removed = self.snapshot, self._delta.get(modality), self._removed
        added = delta.records if delta else ()
        return [r for r in (*snapshot.records.get(modality, []), *added) if r.id not in removed]

    def has_key(self, key_id: str) -> bool:
        """Whether a key with this record id is searchable in any modality."""
        with self._lock:
            return key_id not in self._removed and self._known(key_id)

    def find(self, key_id: str, modality: str) -> Optional[KeyRecord]:
        """The searchable key record with this id in a modality, or None."""
        with self._lock:
            if key_id in self._removed or modality not in self._positions:
                return None
            pos = self._positions[modality].get(key_id)
            if pos:
                return self.snapshot.records[modality][pos[0]]
            return next((r for r in self._delta[modality].records if r.id == key_id), None)

    def has_taxon(self, taxon: str) -> bool:
        """Whether any searchable key of any modality carries `taxon` at some rank."""
        return next(self.carrying(None, taxon), None) is not None

    def carrying(self, rank: Optional[str], name: str) -> Iterator[KeyRecord]:
        """The searchable keys of every modality whose `rank` label (None: any rank's) is `name`, any case."""
        t = name.lower()
        ranks = RANKS if rank is None else (rank,)
        with self._lock:
            snapshot, delta, removed, taxon_ids = self.snapshot, self._delta, self._removed, self._taxon_ids

        def named(rec: KeyRecord) -> bool:
            return rec.id not in removed and any((rec.label(r) or "").lower() == t for r in ranks)

        for modality, recs in snapshot.records.items():
            yield from (recs[pos] for pos in taxon_ids[modality].get(t, ()) if named(recs[pos]))
        for d in delta.values():
            yield from (r for r in d.records if named(r))

    def _selector(self, modality: str, restrict_to: Optional[str], removed: frozenset[str]):
        removed_pos = np.array(sorted(p for i in removed for p in self._positions[modality].get(i, [])), np.int64)
        if restrict_to is not None:
            allowed = self._taxon_ids[modality].get(restrict_to.lower(), np.zeros(0, np.int64))
            if len(removed_pos):
                allowed = np.setdiff1d(allowed, removed_pos)
            return faiss.IDSelectorBatch(allowed), allowed
        if len(removed_pos):
            inner = faiss.IDSelectorBatch(removed_pos)
            return faiss.IDSelectorNot(inner), inner
        return None, None

    def search(self, vectors: np.ndarray, k: int, modality: str,
               restrict_to: Optional[str] = None) -> list[list[Neighbor]]:
        """The k most similar keys per query; `restrict_to` (a taxon at any rank) is applied inside FAISS."""
        if restrict_to is not None and not self.has_taxon(restrict_to):
            raise UnknownTaxonError(f"no reference key carries the taxon {restrict_to!r}")
        with self._lock:  # a consistent view; the search itself runs without the lock
            snapshot, delta, removed = self.snapshot, self._delta[modality], self._removed
            selector, keepalive = self._selector(modality, restrict_to, removed)
        queries = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, snapshot.vectors[modality].shape[1])
        index = snapshot.indexes[modality]
        exact = is_exact(index)
        kk = min(k if exact else max(k * self.rerank, 32), index.ntotal) or 1
        device = self._device.get(modality) if selector is None else None
        if _SEARCH_THREADS is not None:
            faiss.omp_set_num_threads(_SEARCH_THREADS)  # per calling thread in OpenMP
        if device is not None:
            sims, ids = device.search(queries, kk)
        else:
            sims, ids = index.search(queries, kk, params=search_params(index, selector))
        del keepalive
        if not exact:
            sims, ids = rerank(queries, ids, snapshot.vectors[modality], min(k, kk))
        main_recs = snapshot.records[modality]
        d_ok = [i for i, r in enumerate(delta.records) if r.id not in removed and (
            restrict_to is None or any((r.label(rank) or "").lower() == restrict_to.lower() for rank in RANKS))]
        d_sims = queries @ delta.vectors[d_ok].T if d_ok else np.zeros((len(queries), 0), np.float32)
        out = []
        for q in range(len(queries)):
            found = [Neighbor(main_recs[i], float(s)) for s, i in zip(sims[q], ids[q]) if i >= 0]
            found += [Neighbor(delta.records[d_ok[j]], float(d_sims[q, j])) for j in range(len(d_ok))]
            found.sort(key=lambda n: -n.similarity)
            out.append(found[:k])
        return out

    def barcode_hits(self, sequence: str, candidates: int = DEFAULT_CANDIDATES,
                     neighbors: Iterable[Neighbor] = ()) -> list[Hit]:
        """Alignment hits of a normalised barcode among the DNA keys, best identity first.

        Candidates are the `candidates` distinct reference barcodes sharing the most rare k-mers with it
        (snapshot and delta alike), united with the given embedding `neighbors`; each is aligned.
        """
        with self._lock:
            snapshot, delta, removed = self.snapshot, self._delta.get("dna"), self._removed
        if snapshot.barcodes is None or delta is None:
            return []
        neighbors = list(neighbors)
        delta_index = self._delta_index(delta)

        def pool_of(n_candidates: int, broad: bool) -> list[tuple[object, str, Optional[float]]]:
            similarity = {(n.record.id, n.record.modality): n.similarity for n in neighbors}
            pool: list[tuple[object, str, Optional[float]]] = []
            for barcodes, records in ((snapshot.barcodes, snapshot.records["dna"]), (delta_index, delta.records)):
                if barcodes is not None:
                    pool += candidate_pool(barcodes, records, sequence, n_candidates, removed, similarity, broad)
            for n in neighbors:  # embedding neighbours the k-mers did not bring
                dna = try_normalize(n.record.dna)
                if (n.record.id, n.record.modality) in similarity and dna and n.record.id not in removed:
                    pool.append((n.record, dna, n.similarity))
            return pool
        return widened_hits(sequence, pool_of, candidates)

    def orient_barcode(self, sequence: str) -> tuple[str, bool]:
        """A normalised barcode on the strand to search, and whether that is its reverse complement
        (`index.orientation`: by its reading frames, else by the k-mers it shares with the DNA keys)."""
        with self._lock:
            snapshot, delta = self.snapshot, self._delta.get("dna")
        indexes = [snapshot.barcodes, self._delta_index(delta) if delta is not None else None]
        return orient(sequence, lambda s: kmer_support(indexes, s))

    def _delta_index(self, delta: _Delta) -> Optional[BarcodeIndex]:
        """The k-mer index of the delta's DNA keys, rebuilt when keys were added since the last one."""
        if not delta.records:
            return None
        with self._lock:
            size, index = self._delta_barcodes
            if size != len(delta.records) or index is None:
                index = BarcodeIndex.build([r.dna for r in delta.records])
                self._delta_barcodes = (len(delta.records), index)
            return index

    def compact(self, root: str | Path) -> Snapshot:
        """Fold the delta and removals into a new snapshot, switch to it atomically and serve it."""
        with self._lock:
            snapshot, deltas, removed = self.snapshot, dict(self._delta), self._removed
        t0 = time.perf_counter()
        indexes, vectors, records = {}, {}, {}
        for modality, recs in snapshot.records.items():
            keep = [i for i, r in enumerate(recs) if r.id not in removed]
            d_keep = [i for i, r in enumerate(deltas[modality].records) if r.id not in removed]
            vectors[modality] = np.concatenate([np.asarray(snapshot.vectors[modality])[keep],
                                                deltas[modality].vectors[d_keep]])
            records[modality] = [recs[i] for i in keep] + [deltas[modality].records[i] for i in d_keep]
            factory = snapshot.manifest["factories"][modality]
            indexes[modality] = build_index(vectors[modality], factory)
        manifest = {**snapshot.manifest, "compacted_from": snapshot.id,
                    "build_seconds": time.perf_counter() - t0}
        write_snapshot(root, indexes, vectors, records, manifest)
        new = load_snapshot(root)
        with self._lock:
            added_since = {m: self._delta[m].records[len(deltas[m].records):] for m in self._delta}
            added_vecs = {m: self._delta[m].vectors[len(deltas[m].records):] for m in self._delta}
            removed_since = self._removed - removed
            self._install(new)
            for m, recs in added_since.items():  # changes made while compacting are kept
                if recs:
                    self.add(m, list(recs), added_vecs[m])
            if removed_since:
                self.remove(removed_since)
        return new


def aggregate(neighbors: list[Neighbor], temperature: float = 0.05) -> dict[str, list[tuple[str, float]]]:
    """Per rank, labels scored by their share of the neighbours' votes, best first.

    A neighbour's vote is exp((similarity - best similarity) / temperature): the nearest keys dominate, as in
    the nearest-neighbour classification the method is evaluated with, while close runners-up still count.
    """
    out: dict[str, list[tuple[str, float]]] = {}
    top = max((n.similarity for n in neighbors), default=0.0)
    weights = [math.exp((n.similarity - top) / temperature) for n in neighbors]
    total = sum(weights)
    for rank in RANKS:
        scores: dict[str, float] = defaultdict(float)
        for n, w in zip(neighbors, weights):
            label = n.record.label(rank)
            if label:
                scores[label] += w
        out[rank] = sorted(((lab, s / total if total else 0.0) for lab, s in scores.items()), key=lambda x: -x[1])
    return out
