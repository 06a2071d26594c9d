"""Reference records added by admins: stored in the database, mirrored into every process's search delta."""
from __future__ import annotations

import hashlib
import logging
import shutil
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Optional

from sqlalchemy import select, update
from sqlalchemy.orm import sessionmaker

from clibd.records import Record
from clibd.index.snapshot import prune_snapshots
from clibd.index.identifier import Identifier
from clibd.service.models import ReferenceRecord

log = logging.getLogger(__name__)


def to_record(row: ReferenceRecord) -> Record:
    """The library record of a stored reference (its first image serves as its image key)."""
    return Record(id=row.id, order=row.order, family=row.family, genus=row.genus, species=row.species,
                  bin=row.bin, dna=row.dna, image=row.images[0] if row.images else None)


MAX_OFFSET = 2**31 - 1  # list offsets beyond any table (and within every database's integer)


def reference_folder(data_dir: Path, ref_id: str) -> Path:
    """Where an added reference's images are stored: a folder named by the server, never by the id."""
    return data_dir / "references" / hashlib.sha256(ref_id.encode()).hexdigest()[:24]


def remove_reference_files(data_dir: Path, ref_id: str) -> None:
    """Delete an added reference's stored images (nothing outside its own folder is touched)."""
    shutil.rmtree(reference_folder(data_dir, ref_id), ignore_errors=True)


def reference_json(row: ReferenceRecord) -> dict:
    """A stored reference as the API shows it."""
    return {"id": row.id, "order": row.order, "family": row.family, "genus": row.genus, "species": row.species,
            "bin": row.bin, "dna_length": len(row.dna) if row.dna else 0, "images": len(row.images or []),
            "status": row.status, "snapshot_id": row.snapshot_id, "created_at": row.created_at.isoformat()}


class ReferenceSync:
    """Keeps an Identifier's searcher in step with the database and the index's CURRENT snapshot.

    Active references missing from the searcher are embedded into its delta; deleted ones still searchable are
    hidden. A newer CURRENT (a compaction by any process) is loaded, and the database applied again on top.
    """

    def __init__(self, identifier: Identifier, factory: sessionmaker, min_interval_s: float = 1.0) -> None:
        self.identifier = identifier
        self.factory = factory
        self.min_interval_s = min_interval_s
        self._lock = threading.Lock()
        self._watermark: Optional[datetime] = None
        self._last = 0.0

    def sync(self, force: bool = False) -> int:
        """Apply what changed since the last call; returns the references touched."""
        if not force and time.monotonic() - self._last < self.min_interval_s:
            return 0
        with self._lock:
            self._last = time.monotonic()
            current = self.identifier.current_snapshot_id()
            if current != self.identifier.searcher.snapshot.id:
                log.info("loading snapshot %s", current)
                self.identifier.reload_snapshot()
                self._watermark = None
            with self.factory() as session:
                query = select(ReferenceRecord).order_by(ReferenceRecord.updated_at)
                if self._watermark is not None:
                    query = query.where(ReferenceRecord.updated_at >= self._watermark)
                rows = session.scalars(query).all()
            searcher = self.identifier.searcher
            fresh = [r for r in rows if r.status == "active" and not searcher.has_key(r.id)]
            gone = [r.id for r in rows if r.status != "active" and searcher.has_key(r.id)]
            if fresh:
                self.identifier.add_records([to_record(r) for r in fresh])
            if gone:
                searcher.remove(gone)
            if rows:
                self._watermark = rows[-1].updated_at
            return len(fresh) + len(gone)


    def reindex(self, keep: int = 3) -> dict:
        """Fold every added and deleted reference into a new snapshot, switch to it, record which one it is."""
        self.sync(force=True)
        identifier = self.identifier
        with self._lock:
            snapshot = identifier.searcher.compact(identifier.index_root)
            held = {r.id for records in snapshot.records.values() for r in records}
            with self.factory() as session:
                # a row is folded when the snapshot agrees with it: an active reference in it, a deleted one not;
                # one added or deleted while the compaction ran waits for the next (it is still in the delta)
                waiting = session.execute(select(ReferenceRecord.id, ReferenceRecord.status).where(
                    ReferenceRecord.snapshot_id.is_(None))).all()
                folded = [i for i, status in waiting if (i in held) == (status == "active")]
                for start in range(0, len(folded), 500):
                    session.execute(update(ReferenceRecord).where(ReferenceRecord.id.in_(folded[start:start + 500]))
                                    .values(snapshot_id=snapshot.id))
                session.commit()
            n = len(folded)
        pruned = prune_snapshots(identifier.index_root, keep=keep)
        return {"snapshot_id": snapshot.id, "counts": snapshot.manifest["counts"], "references_folded": n,
                "pruned": [p.name for p in pruned]}
