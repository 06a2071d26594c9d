"""`clibd index build`: embed reference keys (sharded, resumable) and write a snapshot."""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable, Optional, Sequence, TypeVar

import numpy as np
from tqdm.auto import tqdm

from clibd.checkpoint import checkpoint_hash
from clibd.embedder import Embedder
from clibd.records import distinct_taxa
from clibd.taxonomy import RANKS
from clibd.index.factory import build_index, choose_factory
from clibd.index.snapshot import KeyRecord, text_key_id, write_snapshot

log = logging.getLogger(__name__)
T = TypeVar("T")


def embed_sharded(encode: Callable[[Sequence[T]], np.ndarray], items: Sequence[T], shard_dir: Path,
                  shard_size: int = 10_000, desc: str = "keys") -> np.ndarray:
    """Embed in shards saved as they finish; a re-run loads finished shards instead of recomputing."""
    shard_dir.mkdir(parents=True, exist_ok=True)
    parts = []
    n_shards = (len(items) + shard_size - 1) // shard_size
    for s in tqdm(range(n_shards), desc=f"embedding {desc}", unit="shard"):
        chunk = items[s * shard_size:(s + 1) * shard_size]
        path = shard_dir / f"{s:06d}-{len(chunk)}.npy"
        if path.exists():
            parts.append(np.load(path))
            continue
        vecs = encode(chunk)
        tmp = path.with_name(path.name + ".tmp.npy")
        np.save(tmp, vecs)
        tmp.replace(path)
        parts.append(vecs)
    return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)


def key_records(records: Sequence, modality: str) -> list:
    """The records that can serve as keys of a modality (text: one per distinct taxonomy)."""
    if modality in ("image", "dna"):
        return [r for r in records if r.has(modality)]
    return distinct_taxa(records)


def to_key_records(records: Sequence, modality: str) -> list[KeyRecord]:
    """The key records of a modality for these records (see `key_records`)."""
    return [KeyRecord(id=r.id if modality != "text" else text_key_id(r), modality=modality, order=r.order,
                      family=r.family, genus=r.genus, species=r.species,
                      bin=r.bin if modality != "text" else None, dna=r.dna if modality == "dna" else None,
                      image=str(Path(r.image).resolve()) if modality == "image" else None)
            for r in key_records(records, modality)]


def key_encoders(embedder: Embedder) -> dict[str, Callable[[Sequence[KeyRecord]], np.ndarray]]:
    """Per modality, a function embedding key records."""
    return {"image": lambda rs: embedder.encode_images([r.image for r in rs]),
            "dna": lambda rs: embedder.encode_dna([r.dna for r in rs]),
            "text": lambda rs: embedder.encode_text([{k: getattr(r, k) for k in RANKS} for r in rs])}


def build_snapshot(checkpoint: str | Path, records: Sequence, root: str | Path,
                   modalities: Sequence[str] = ("image", "dna", "text"), factory: Optional[str] = None,
                   memory_budget_bytes: int = 8 << 30, shard_size: int = 10_000,
                   device: Optional[str] = None, batch_size: int = 128, synthetic: bool = False) -> Path:
    """Embed the keys of `records` with a checkpoint and write a new current snapshot under `root`
    (`synthetic`: the records are invented, and every answer's provenance says so)."""
    root = Path(root)
    chash = checkpoint_hash(checkpoint)
    embedder = Embedder.from_checkpoint(checkpoint, device=device, batch_size=batch_size)
    encoders = key_encoders(embedder)
    t0 = time.perf_counter()
    indexes, vectors, keys, factories = {}, {}, {}, {}
    for modality in modalities:
        if modality not in embedder.model.modalities:
            log.info("the model has no %s tower: no %s keys", modality, modality)
            continue
        recs = to_key_records(records, modality)
        if not recs:
            log.info("no %s keys among the records", modality)
            continue
        cache = root / ".embeddings" / chash[:16] / modality
        vecs = embed_sharded(encoders[modality], recs, cache, shard_size, modality)
        factories[modality] = factory or choose_factory(len(vecs), vecs.shape[1], memory_budget_bytes)
        log.info("building %s index over %d keys: %s", modality, len(vecs), factories[modality])
        indexes[modality] = build_index(vecs, factories[modality])
        vectors[modality] = vecs
        keys[modality] = recs
    if not indexes:
        raise ValueError("none of the records can serve as a key (no images, barcodes or taxa)")
    manifest = {"checkpoint_hash": chash, "model": embedder.model.config.name, "embed_dim": embedder.embed_dim,
                "factories": factories, "build_seconds": time.perf_counter() - t0, "synthetic": synthetic}
    return write_snapshot(root, indexes, vectors, keys, manifest)
