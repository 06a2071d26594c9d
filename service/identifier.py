"""`Identifier`: the loaded model, index and thresholds, turning embedded specimens into answers."""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image

from clibd.checkpoint import checkpoint_hash
from clibd.embedder import Embedder
from clibd.taxonomy import RANKS
from index.alignment import percent_identity
from index.searcher import Neighbor, Searcher
from index.update import add_records
from index.snapshot import current_snapshot_dir
from service.verdict import Thresholds, Verdict, fuse, modality_verdict

log = logging.getLogger(__name__)


@dataclass
class Specimen:
    """One specimen to identify: decoded images and/or a normalised barcode."""

    images: list[Image.Image] = field(default_factory=list)
    dna: Optional[str] = None


def mean_direction(vectors: np.ndarray) -> np.ndarray:
    """The normalised mean of unit vectors (several photos of one specimen -> one query)."""
    v = vectors.mean(axis=0)
    n = np.linalg.norm(v)
    return (v / n if n > 0 else v).astype(np.float32)


class Identifier:
    """Holds the embedder, the searcher and the thresholds; thread-safe for concurrent requests."""

    def __init__(self, embedder: Embedder, searcher: Searcher, thresholds: Optional[Thresholds],
                 checkpoint_hash: str, index_root: Path) -> None:
        self.embedder = embedder
        self.searcher = searcher
        self.thresholds = thresholds
        self.checkpoint_hash = checkpoint_hash
        self.index_root = index_root
        self._encoder_lock = threading.Lock()  # one forward pass at a time; batching happens upstream

    @classmethod
    def load(cls, checkpoint: str | Path, index_root: str | Path, device: Optional[str] = None) -> "Identifier":
        """Load a checkpoint, the current snapshot built with it, and the thresholds fitted for it."""
        chash = checkpoint_hash(checkpoint)
        embedder = Embedder.from_checkpoint(checkpoint, device=device)
        searcher = Searcher.open(index_root, chash)
        thresholds = Thresholds.load(index_root, chash)
        if thresholds is None:
            log.warning("no calibration under %s: answers will be 'uncertain' (run `clibd calibrate`)", index_root)
        return cls(embedder, searcher, thresholds, chash, Path(index_root))

    def current_snapshot_id(self) -> str:
        """The id `CURRENT` names on disk (may be newer than the one served)."""
        return current_snapshot_dir(self.index_root).name

    def reload_snapshot(self) -> None:
        """Serve the snapshot `CURRENT` names now (after a compaction elsewhere), dropping the delta."""
        self.searcher = Searcher.open(self.index_root, self.checkpoint_hash)

    def encode_dna(self, sequences: Sequence[str]) -> np.ndarray:
        """Embeddings of normalised barcodes."""
        with self._encoder_lock:
            return self.embedder.encode_dna(list(sequences))

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Embeddings of decoded images."""
        with self._encoder_lock:
            return self.embedder.encode_images(list(images))

    def add_records(self, records: Sequence) -> dict[str, int]:
        """Embed reference records into the searcher's delta (searchable at once); keys added per modality."""
        with self._encoder_lock:
            return add_records(self.searcher, self.embedder, records)

    def key_modality(self, query_modality: str) -> str:
        """Which key set a query modality searches: its own when the snapshot has it, else DNA keys."""
        return query_modality if query_modality in self.searcher.modalities else "dna"

    @staticmethod
    def _neighbor_json(n: Neighbor, identity: Optional[float]) -> dict:
        r = n.record
        item = {"reference_id": r.id, "processid": r.id, "bin": r.bin, "modality": r.modality,
                "similarity": round(n.similarity, 6), **{rank: r.label(rank) for rank in RANKS},
                "has_image": bool(r.image)}
        if identity is not None:
            item["percent_identity"] = round(identity, 2)
        return item

    def answer(self, vectors: dict[str, np.ndarray], dna: Optional[str], top_k: int,
               restrict_to: Optional[str] = None) -> dict:
        """The full answer for one specimen from its query vectors (one per query modality)."""
        verdicts: dict[str, Verdict] = {}
        evidence: list[tuple[Neighbor, Optional[float]]] = []
        for modality, vec in vectors.items():
            neighbors = self.searcher.search(vec[None, :], top_k, self.key_modality(modality), restrict_to)[0]
            t = self.thresholds.by_modality.get(modality) if self.thresholds else None
            identities = identities_of(dna, neighbors) if modality == "dna" else [None] * len(neighbors)
            known = [i for i in identities if i is not None]
            verdicts[modality] = modality_verdict(neighbors, t, max(known) if known else None)
            evidence += list(zip(neighbors, identities))
        fused = fuse(verdicts)
        seen, merged = set(), []
        for n, identity in sorted(evidence, key=lambda e: -e[0].similarity):
            if (n.record.id, n.record.modality) not in seen:
                seen.add((n.record.id, n.record.modality))
                merged.append((n, identity))
        neighbors = [self._neighbor_json(n, identity) for n, identity in merged[:top_k]]
        return {"identification": darwin_core(fused, neighbors), "ranks": ranks_json(fused),
                "per_modality": {m: verdict_json(v) for m, v in verdicts.items()},
                "decided_by": fused.decided_by, "neighbors": neighbors, "provenance": self.provenance()}

    def identify(self, specimens: Sequence[Specimen], top_k: int, restrict_to: Optional[str] = None) -> list[dict]:
        """Answers for many specimens, embedding all their images and barcodes in batches."""
        images = [img for s in specimens for img in s.images]
        image_vecs = self.encode_images(images) if images else np.zeros((0, self.embedder.embed_dim), np.float32)
        dna_rows = [i for i, s in enumerate(specimens) if s.dna]
        dna_vecs = self.encode_dna([specimens[i].dna for i in dna_rows]) if dna_rows else None
        dna_of = {i: dna_vecs[j] for j, i in enumerate(dna_rows)}
        out, cursor = [], 0
        for i, s in enumerate(specimens):
            vectors = {}
            if s.images:
                vectors["image"] = mean_direction(image_vecs[cursor:cursor + len(s.images)])
                cursor += len(s.images)
            if s.dna:
                vectors["dna"] = dna_of[i]
            out.append(self.answer(vectors, s.dna, top_k, restrict_to))
        return out

    def provenance(self) -> dict:
        """What produced an answer: model, checkpoint, snapshot and thresholds."""
        snap = self.searcher.snapshot
        return {"model": snap.manifest.get("model"), "checkpoint_hash": self.checkpoint_hash,
                "snapshot_id": snap.id, "index_size": {m: self.searcher.size(m) for m in self.searcher.modalities},
                "thresholds": _thresholds_json(self.thresholds)}


def identities_of(dna: Optional[str], neighbors: list[Neighbor]) -> list[Optional[float]]:
    """Percent identity of a barcode with each neighbour's barcode (None where either is missing)."""
    return [percent_identity(dna, n.record.dna) if dna and n.record.dna else None for n in neighbors]


def _thresholds_json(t: Optional[Thresholds]) -> Optional[dict]:
    if t is None:
        return None
    return {"target_precision": t.target_precision,
            **{m: {"confident": mt.confident, "novel": mt.novel, "novel_identity": mt.novel_identity}
               for m, mt in t.by_modality.items()}}


def ranks_json(v: Verdict) -> dict:
    """Per rank: label, score, confident, and the runner-up labels."""
    return {rank: {"label": c.label, "score": round(c.score, 4), "confident": c.confident,
                   "alternatives": [{"label": lab, "score": round(s, 4)} for lab, s in v.distribution.get(rank, [])[1:4]]}
            for rank, c in v.ranks.items()}


def verdict_json(v: Verdict) -> dict:
    """One modality's answer."""
    return {"status": v.status, "deepest_rank": v.deepest, "novel_at_rank": v.novel_at_rank,
            "top_similarity": None if v.top_similarity is None else round(v.top_similarity, 6),
            "ranks": ranks_json(v)}


def darwin_core(v: Verdict, neighbors: list[dict]) -> dict:
    """The identification in Darwin Core terms, down to the deepest confident rank."""
    names = {rank: v.ranks[rank].label if v.ranks[rank].confident else None for rank in RANKS}
    species = names["species"]
    epithet = species.split()[1] if species and len(species.split()) >= 2 else None
    bin_ = next((n["bin"] for n in neighbors if species and n["species"] == species and n["bin"]), None)
    return {"scientificName": names[v.deepest] if v.deepest else None, "taxonRank": v.deepest,
            "order": names["order"], "family": names["family"], "genus": names["genus"], "species": species,
            "specificEpithet": epithet, "bin": bin_, "status": v.status, "novel_at_rank": v.novel_at_rank,
            "identificationRemarks": remarks(v)}


def remarks(v: Verdict) -> str:
    """A sentence a person can read."""
    if v.status == "novel" and v.deepest:
        return (f"likely a new {v.novel_at_rank} of {v.deepest} {v.ranks[v.deepest].label}: no reference "
                f"{v.novel_at_rank} is close enough")
    if v.status == "confident":
        return f"confident to species ({v.ranks['species'].label})"
    if v.deepest:
        return f"confident to {v.deepest} ({v.ranks[v.deepest].label}); deeper ranks uncertain"
    return "uncertain at every rank" if any(c.label for c in v.ranks.values()) else "no reference keys matched"
