"""Change a live key set without a rebuild: embed new records into the delta, hide removed ones, compact."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

import numpy as np

from clibd.embedder import Embedder
from clibd.taxonomy import RANKS
from clibd.index.build import key_encoders, to_key_records
from clibd.index.lineage import lineage_conflict
from clibd.index.searcher import Searcher
from clibd.index.snapshot import KeyRecord, Snapshot


def embed_keys(embedder: Embedder, records: Sequence,
               modalities: Iterable[str]) -> dict[str, tuple[list[KeyRecord], np.ndarray]]:
    """Per modality, the key records of `records` and their vectors (modalities without keys are left out)."""
    encoders = key_encoders(embedder)
    out = {}
    for modality in modalities:
        keys = to_key_records(records, modality)
        if keys:
            out[modality] = (keys, encoders[modality](keys))
    return out


def add_records(searcher: Searcher, embedder: Embedder, records: Sequence) -> dict[str, int]:
    """Embed `records` and make them searchable at once; returns keys added per modality.

    A text key is added only for a taxonomy the searcher does not have yet.
    """
    added = {}
    for modality, (keys, vectors) in embed_keys(embedder, records, searcher.modalities).items():
        if modality == "text":  # a taxonomy's text key hidden with its last specimen comes back, not twice
            searcher.restore(k.id for k in keys)
            fresh = [i for i, k in enumerate(keys) if not searcher.has_key(k.id)]
            keys, vectors = [keys[i] for i in fresh], vectors[fresh]
        if keys:
            searcher.add(modality, keys, vectors)
            added[modality] = len(keys)
    return added


def lineage_conflicts(searcher: Searcher, records: Sequence, leaving: Iterable[str] = ()) -> list[str]:
    """Why each distinct lineage of `records` contradicts the searchable photo and barcode keys' (`index.lineage`),
    keys whose id is in `leaving` left out (a text key only repeats some reference's lineage)."""
    leaving = set(leaving)

    def carrying(rank: str, name: str) -> Iterator[KeyRecord]:
        return (k for k in searcher.carrying(rank, name) if k.modality != "text" and k.id not in leaving)

    lineages = {tuple(r.label(rank) for rank in RANKS) for r in records}
    found = (lineage_conflict(dict(zip(RANKS, lineage)), carrying) for lineage in sorted(lineages, key=str))
    return [why for why in found if why]


def apply_and_compact(root: str | Path, embedder: Optional[Embedder], add: Sequence = (),
                      remove: Iterable[str] = (), checkpoint_hash: Optional[str] = None) -> Snapshot:
    """Open the current snapshot, add and remove records, and write the result as the new current snapshot;
    ValueError, with nothing changed, when an added record's lineage contradicts the references' (as the admin
    API refuses one)."""
    searcher = Searcher.open(root, checkpoint_hash)
    remove = list(remove)
    conflicts = lineage_conflicts(searcher, add, remove)
    if conflicts:
        raise ValueError(f"{len(conflicts)} lineage(s) of the added records contradict the references': "
                         + "; ".join(conflicts[:3]) + ("; ..." if len(conflicts) > 3 else ""))
    if add:
        if embedder is None:
            raise ValueError("adding records needs a checkpoint to embed them")
        add_records(searcher, embedder, add)
    if remove:
        searcher.remove(remove)
    return searcher.compact(root)
