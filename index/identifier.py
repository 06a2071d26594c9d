"""`Identifier`: the loaded model, index and thresholds, turning embedded specimens into answers."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image

from clibd.checkpoint import checkpoint_hash
from clibd.embedder import Embedder
from clibd.taxonomy import RANKS
from clibd.index.answer import Answer
from clibd.index.barcodes import DEFAULT_CANDIDATES, Hit
from clibd.index.identity import IdentityBands, barcode_verdict
from clibd.index.searcher import Neighbor, Searcher
from clibd.index.snapshot import current_snapshot_dir
from clibd.index.thresholds import Thresholds
from clibd.index.update import add_records
from clibd.index.verdict import Verdict, fuse, modality_verdict

log = logging.getLogger(__name__)
REVERSED_NOTE = "the barcode was searched as its reverse complement (it shares more k-mers with the references that way)"


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
                 checkpoint_hash: str, index_root: Path, candidates: int = DEFAULT_CANDIDATES) -> None:
        self.embedder = embedder
        self.searcher = searcher
        self.thresholds = thresholds
        self.candidates = candidates  # k-mer candidates aligned per barcode (besides the embedding's)
        self.checkpoint_hash = checkpoint_hash
        self.index_root = index_root

    @classmethod
    def load(cls, checkpoint: str | Path, index_root: str | Path, device: Optional[str] = None,
             pinned: bool = False) -> "Identifier":
        """Load a checkpoint, the current snapshot built with it, and the thresholds fitted for it."""
        chash = checkpoint_hash(checkpoint)
        embedder = Embedder.from_checkpoint(checkpoint, device=device, pinned=pinned)
        searcher = Searcher.open(index_root, chash)
        thresholds = Thresholds.load(index_root, chash)
        if thresholds is None:
            log.warning("no calibration under %s: photo answers will be 'uncertain' and barcodes are judged by "
                        "BOLD's identity bands (run `clibd calibrate`)", index_root)
        return cls(embedder, searcher, thresholds, chash, Path(index_root))

    def current_snapshot_id(self) -> str:
        """The id `CURRENT` names on disk (may be newer than the one served)."""
        return current_snapshot_dir(self.index_root).name

    def reload_snapshot(self) -> None:
        """Serve the snapshot `CURRENT` names now (after a compaction elsewhere), dropping the delta."""
        self.searcher = Searcher.open(self.index_root, self.checkpoint_hash)

    def orient(self, dna: str) -> tuple[str, bool]:
        """A normalised barcode on the strand the references are on, and whether it was reverse-complemented."""
        return self.searcher.orient_barcode(dna)

    def encode_dna(self, sequences: Sequence[str]) -> np.ndarray:
        """Embeddings of normalised barcodes (the embedder runs one forward pass at a time)."""
        return self.embedder.encode_dna(list(sequences))

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Embeddings of decoded images."""
        return self.embedder.encode_images(list(images))

    def add_records(self, records: Sequence) -> dict[str, int]:
        """Embed reference records into the searcher's delta (searchable at once); keys added per modality."""
        return add_records(self.searcher, self.embedder, records)

    @property
    def modalities(self) -> tuple[str, ...]:
        """The query modalities the model can embed."""
        return self.embedder.model.modalities

    def require(self, modality: str) -> None:
        """`MissingModalityError` (a ValueError naming what the model embeds) unless it embeds `modality`."""
        self.embedder.model.require(modality)

    def key_modality(self, query_modality: str, searcher: Optional[Searcher] = None) -> str:
        """Which key set a query modality searches: its own when the snapshot has it, else DNA keys."""
        return query_modality if query_modality in (searcher or self.searcher).modalities else "dna"

    @property
    def bands(self) -> IdentityBands:
        """The barcode identity bands in force: calibrated, else BOLD's."""
        return self.thresholds.barcode if self.thresholds and self.thresholds.barcode else IdentityBands()

    def answer(self, vectors: dict[str, np.ndarray], dna: Optional[str], top_k: int,
               restrict_to: Optional[str] = None, reversed_dna: bool = False) -> Answer:
        """The full answer for one specimen from its query vectors (one per query modality) and its barcode
        (`reversed_dna`: the barcode searched is the reverse complement of the one given)."""
        verdicts: dict[str, Verdict] = {}
        shown: list[dict] = []
        searcher = self.searcher  # one snapshot for the whole answer, even if a newer one is swapped in meanwhile
        for modality, vec in vectors.items():
            neighbors = searcher.search(vec[None, :], top_k, self.key_modality(modality, searcher), restrict_to)[0]
            if modality == "dna" and dna:
                hits = searcher.barcode_hits(dna, self.candidates, neighbors)
                if restrict_to is not None:
                    hits = [h for h in hits if restrict_to.lower() in _names(h.record)]
                verdicts[modality] = barcode_verdict(hits, self.bands)
                # no barcode aligns (e.g. inside a restricted taxon): the embedding neighbours are still shown
                shown += [_hit_json(h) for h in hits[:top_k]] if hits else [_neighbor_json(n) for n in neighbors]
            else:
                t = self.thresholds.by_modality.get(modality) if self.thresholds else None
                verdicts[modality] = modality_verdict(neighbors, t)
                shown += [_neighbor_json(n) for n in neighbors]
        fused = fuse(verdicts)
        seen, neighbors_out = set(), []
        for item in shown:
            if (item["reference_id"], item["modality"]) not in seen:
                seen.add((item["reference_id"], item["modality"]))
                neighbors_out.append(item)
        identification = darwin_core(fused, neighbors_out)
        for note in (photo_limit(verdicts, fused, self.thresholds), REVERSED_NOTE if reversed_dna else None):
            if note:
                identification["identificationRemarks"] += f"; {note}"
        per_modality = {m: verdict_json(v) for m, v in verdicts.items()}
        if "dna" in per_modality:
            per_modality["dna"]["strand"] = "minus" if reversed_dna else "plus"
        return Answer.model_validate({"identification": identification, "ranks": ranks_json(fused),
                "per_modality": per_modality,
                "decided_by": fused.decided_by, "neighbors": neighbors_out, "provenance": self.provenance(searcher)})

    def identify(self, specimens: Sequence[Specimen], top_k: int, restrict_to: Optional[str] = None) -> list[Answer]:
        """Answers for many specimens, embedding all their images and barcodes in batches."""
        images = [img for s in specimens for img in s.images]
        image_vecs = self.encode_images(images) if images else np.zeros((0, self.embedder.embed_dim), np.float32)
        dna_rows = [i for i, s in enumerate(specimens) if s.dna]
        strands = {i: self.orient(specimens[i].dna) for i in dna_rows}
        dna_vecs = self.encode_dna([strands[i][0] for i in dna_rows]) if dna_rows else None
        dna_of = {i: dna_vecs[j] for j, i in enumerate(dna_rows)}
        out, cursor = [], 0
        for i, s in enumerate(specimens):
            vectors = {}
            if s.images:
                vectors["image"] = mean_direction(image_vecs[cursor:cursor + len(s.images)])
                cursor += len(s.images)
            dna, reversed_ = strands.get(i, (None, False))
            if dna:
                vectors["dna"] = dna_of[i]
            out.append(self.answer(vectors, dna, top_k, restrict_to, reversed_))
        return out

    def provenance(self, searcher: Optional[Searcher] = None) -> dict:
        """What produced an answer: model, checkpoint, snapshot and thresholds."""
        searcher = searcher or self.searcher
        snap = searcher.snapshot
        return {"model": snap.manifest.get("model"), "checkpoint_hash": self.checkpoint_hash,
                "snapshot_id": snap.id, "index_size": {m: searcher.size(m) for m in searcher.modalities},
                "synthetic_references": bool(snap.manifest.get("synthetic", False)),
                "thresholds": _thresholds_json(self.thresholds, self.bands)}


def _names(record) -> set[str]:
    return {(record.label(rank) or "").lower() for rank in RANKS}


def _record_json(r) -> dict:
    return {"reference_id": r.id, "processid": r.id, "bin": r.bin, "modality": r.modality,
            **{rank: r.label(rank) for rank in RANKS}, "has_image": bool(r.image)}


def _neighbor_json(n: Neighbor) -> dict:
    return {**_record_json(n.record), "similarity": round(n.similarity, 6), "percent_identity": None}


def _hit_json(h: Hit) -> dict:
    return {**_record_json(h.record), "similarity": None if h.similarity is None else round(h.similarity, 6),
            "percent_identity": round(h.identity, 2), "overlap": h.overlap}


def _thresholds_json(t: Optional[Thresholds], bands: IdentityBands) -> dict:
    out: dict = {"barcode_bands": {"confident": bands.confident, "novel": bands.novel, "near": bands.near,
                                   "consensus": bands.consensus, "source": bands.source,
                                   "placement_genera": len(bands.placement.by_genus) if bands.placement else 0}}
    if t is not None:
        out["target_precision"] = t.target_precision
        out.update({m: {"confident": mt.confident, "novel": mt.novel} for m, mt in t.by_modality.items()})
    return out


def ranks_json(v: Verdict) -> dict:
    """Per rank: label, score, confident, and the runner-up labels."""
    return {rank: {"label": c.label, "score": round(c.score, 4), "confident": c.confident,
                   "alternatives": [{"label": lab, "score": round(s, 4)} for lab, s in v.distribution.get(rank, [])[1:4]]}
            for rank, c in v.ranks.items()}


def verdict_json(v: Verdict) -> dict:
    """One modality's answer."""
    return {"status": v.status, "deepest_rank": v.deepest, "novel_at_rank": v.novel_at_rank,
            "top_similarity": None if v.top_similarity is None else round(v.top_similarity, 6),
            "top_identity": None if v.top_identity is None else round(v.top_identity, 2),
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


def photo_limit(verdicts: dict[str, Verdict], fused: Verdict, thresholds: Optional[Thresholds]) -> Optional[str]:
    """Why a photo-only answer stops above species, when the calibration is the reason: no score of the photo
    modality reached the target precision at the deeper ranks on the validation photos."""
    if set(verdicts) != {"image"} or fused.status != "uncertain" or thresholds is None:
        return None
    t = thresholds.by_modality.get("image")
    if t is None:
        return None
    below = RANKS[RANKS.index(fused.deepest) + 1:] if fused.deepest else list(RANKS)
    blocked = [rank for rank in below if t.confident.get(rank) is None]
    if not blocked:
        return None
    return (f"photos alone are never confident at {', '.join(blocked)} with this model: on its validation photos "
            f"no score reached {thresholds.target_precision:.0%} precision there (a barcode can go deeper)")


def remarks(v: Verdict) -> str:
    """A sentence a person can read."""
    closest = "" if v.top_identity is None else f" (closest reference barcode: {v.top_identity:.1f}% identity)"
    if v.status == "novel" and v.deepest:
        between = RANKS[RANKS.index(v.deepest) + 1:RANKS.index(v.novel_at_rank)]
        unsure = "".join(f"; {r} uncertain (most likely {v.ranks[r].label})" for r in between if v.ranks[r].label)
        return (f"likely a new {v.novel_at_rank} of {v.deepest} {v.ranks[v.deepest].label}: no reference "
                f"{v.novel_at_rank} is close enough{closest}{unsure}")
    if v.status == "confident":
        return f"confident to species ({v.ranks['species'].label})"
    if v.deepest:
        below = RANKS[RANKS.index(v.deepest) + 1]
        split = v.distribution.get(below, [])
        between = ("; " + below + " uncertain between " + ", ".join(f"{label} ({share:.0%})" for label, share in split)
                   if len(split) > 1 else "")
        return f"confident to {v.deepest} ({v.ranks[v.deepest].label}); deeper ranks uncertain{closest}{between}"
    if any(c.label for c in v.ranks.values()):
        return f"uncertain at every rank{closest}"
    return "no reference matched (no reference barcode overlaps this one enough to compare)"
