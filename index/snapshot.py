"""Index snapshots: a directory of FAISS indexes, exact vectors, the id -> record map and a manifest.

Snapshots live under a root as `snapshots/<id>/`; `CURRENT` names the live one and is switched with an
atomic rename, so a reader never sees a half-written snapshot and a crash mid-write leaves the old one.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import faiss
import numpy as np

from clibd.records import Record
from clibd.index.barcodes import BarcodeIndex
from clibd.taxonomy import RANKS

CURRENT = "CURRENT"


@dataclass
class KeyRecord(Record):
    """A reference key: its specimen's record and the modality of its vector."""

    modality: str = ""


def text_key_id(rec: Record) -> str:
    """The id of the text key of a record's taxonomy."""
    return "taxon:" + "/".join(str(getattr(rec, k)) for k in RANKS)


class SnapshotMismatchError(ValueError):
    """The snapshot was built with another checkpoint than the model loaded."""


@dataclass
class Snapshot:
    """A loaded snapshot: per modality an index, its exact vectors and its key records."""

    path: Path
    manifest: dict
    indexes: dict[str, faiss.Index]
    vectors: dict[str, np.ndarray]
    records: dict[str, list[KeyRecord]]
    barcodes: Optional[BarcodeIndex] = None  # the DNA keys' k-mer candidate index

    @property
    def id(self) -> str:
        """The snapshot's identifier (its folder name)."""
        return self.path.name


def write_snapshot(root: str | Path, indexes: dict[str, faiss.Index], vectors: dict[str, np.ndarray],
                   records: dict[str, list[KeyRecord]], manifest: dict) -> Path:
    """Write a new snapshot under `root` and make it current; returns its folder."""
    root = Path(root)
    (root / "snapshots").mkdir(parents=True, exist_ok=True)
    sid = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
    tmp = root / "snapshots" / f".{sid}.partial"
    tmp.mkdir()
    for modality, index in indexes.items():
        faiss.write_index(index, str(tmp / f"{modality}.faiss"))
        np.save(tmp / f"{modality}.npy", np.ascontiguousarray(vectors[modality], dtype=np.float32))
        with open(tmp / f"{modality}.records.jsonl", "w") as fh:
            for rec in records[modality]:
                fh.write(json.dumps(dataclasses.asdict(rec)) + "\n")
    if records.get("dna"):
        BarcodeIndex.build([r.dna for r in records["dna"]], progress=len(records["dna"]) > 100_000).save(tmp)
    full = {**manifest, "snapshot_id": sid, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "counts": {m: len(r) for m, r in records.items()}}
    (tmp / "manifest.json").write_text(json.dumps(full, indent=2))
    final = root / "snapshots" / sid
    os.replace(tmp, final)
    pointer = root / f".{CURRENT}.{uuid.uuid4().hex[:8]}"
    pointer.write_text(sid)
    os.replace(pointer, root / CURRENT)
    return final


def current_snapshot_dir(root: str | Path) -> Path:
    """The folder `CURRENT` names."""
    root = Path(root)
    if not (root / CURRENT).exists():
        raise FileNotFoundError(f"no index snapshot under {root} (build one with `clibd index build`)")
    return root / "snapshots" / (root / CURRENT).read_text().strip()


def load_snapshot(root: str | Path, checkpoint_hash: Optional[str] = None) -> Snapshot:
    """Load the current snapshot (indexes memory-mapped where FAISS allows); refuse another checkpoint's."""
    path = current_snapshot_dir(root)
    manifest = json.loads((path / "manifest.json").read_text())
    if checkpoint_hash is not None and manifest.get("checkpoint_hash") != checkpoint_hash:
        raise SnapshotMismatchError(f"snapshot {path.name} was built with checkpoint "
                                    f"{manifest.get('checkpoint_hash', '?')[:12]}, not {checkpoint_hash[:12]}")
    indexes, vectors, records = {}, {}, {}
    for modality in manifest["counts"]:
        try:
            indexes[modality] = faiss.read_index(str(path / f"{modality}.faiss"), faiss.IO_FLAG_MMAP)
        except RuntimeError:  # index types that cannot be memory-mapped are read whole
            indexes[modality] = faiss.read_index(str(path / f"{modality}.faiss"))
        vectors[modality] = np.load(path / f"{modality}.npy", mmap_mode="r")
        with open(path / f"{modality}.records.jsonl") as fh:
            records[modality] = [KeyRecord(**json.loads(line)) for line in fh]
    barcodes = BarcodeIndex.load(path, [r.dna for r in records["dna"]]) if records.get("dna") else None
    return Snapshot(path, manifest, indexes, vectors, records, barcodes)


def prune_snapshots(root: str | Path, keep: int = 2) -> list[Path]:
    """Delete all but the newest `keep` snapshots (never the current one); returns what was deleted."""
    root = Path(root)
    current = current_snapshot_dir(root).name
    olds = sorted(p for p in (root / "snapshots").iterdir() if not p.name.startswith("."))[:-keep]
    gone = [p for p in olds if p.name != current]
    for p in gone:
        shutil.rmtree(p)
    return gone


def taxa_of(records: list[KeyRecord]) -> set[str]:
    """Every taxon name at any rank among the records."""
    return {r.label(rank) for r in records for rank in RANKS if r.label(rank)}
