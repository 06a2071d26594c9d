"""Admin: add, list and delete reference records (searchable at once), and re-index."""
from __future__ import annotations

import uuid
from typing import Annotated, Optional

from fastapi import APIRouter, File, Form, HTTPException, Query, UploadFile
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clibd.records import Record, clean
from clibd.index.update import lineage_conflicts
from clibd.service.api.deps import AdminDep, AppState, IdentifierDep, SessionDep, StateDep
from clibd.service.inputs import check_name, check_reference_id, parse_barcode_field, read_images
from clibd.service.models import (BIN_LENGTH, REFERENCE_ID_LENGTH, SPECIES_NAME_LENGTH, TAXON_NAME_LENGTH,
                                  ReferenceRecord, utcnow)
from clibd.service.references import MAX_OFFSET, reference_folder, reference_json, remove_reference_files
from clibd.service.schemas import Problem, ReferenceOut
from clibd.service.tasks import REINDEX

router = APIRouter(prefix="/v1/admin", tags=["admin"])
ERRORS = {c: {"model": Problem} for c in (401, 403, 404, 409, 413, 422, 503)}


@router.post("/references", status_code=201, response_model=ReferenceOut, responses=ERRORS)
async def add_reference(
    state: StateDep, session: SessionDep, identifier: IdentifierDep, admin: AdminDep,
    id: Annotated[str, Form(description="reference id (e.g. the BOLD processid)", min_length=1,
                            max_length=REFERENCE_ID_LENGTH)],
    species: Annotated[Optional[str], Form(max_length=SPECIES_NAME_LENGTH)] = None,
    genus: Annotated[Optional[str], Form(max_length=TAXON_NAME_LENGTH)] = None,
    family: Annotated[Optional[str], Form(max_length=TAXON_NAME_LENGTH)] = None,
    order: Annotated[Optional[str], Form(max_length=TAXON_NAME_LENGTH)] = None,
    bin: Annotated[Optional[str], Form(max_length=BIN_LENGTH)] = None,
    dna: Annotated[Optional[str], Form(description="COI barcode, raw or FASTA")] = None,
    images: Annotated[Optional[list[UploadFile]], File()] = None,
) -> dict:
    """Add a reference specimen; its keys are searchable as soon as this returns."""
    s = state.runtime.settings
    if not any(clean(x) for x in (order, family, genus, species)):
        raise HTTPException(422, "a reference needs a taxonomy: at least one of order, family, genus, species")
    ident = check_reference_id(id)
    for field, value in (("order", order), ("family", family), ("genus", genus), ("species", species), ("bin", bin)):
        check_name(value, field)
    if await run_in_threadpool(session.get, ReferenceRecord, ident) is not None or identifier.searcher.has_key(ident):
        raise HTTPException(409, f"a reference with id {ident!r} exists; delete it first to replace it")
    lineage = {"order": clean(order), "family": clean(family), "genus": clean(genus), "species": clean(species)}
    conflicts = await run_in_threadpool(lineage_conflicts, identifier.searcher, [Record(id=ident, **lineage)])
    if conflicts:
        raise HTTPException(409, conflicts[0])
    seq = parse_barcode_field(dna, s.limits) if dna and dna.strip() else None
    uploads = [f for f in (images or []) if f.filename]
    if len(uploads) > s.max_images:
        raise HTTPException(422, f"{len(uploads)} images; at most {s.max_images} per reference")
    raw = [(await f.read(), f.filename) for f in uploads]
    decoded = list(zip([f.filename for f in uploads], await run_in_threadpool(read_images, raw, s.limits)))
    if seq is None and not decoded:
        raise HTTPException(422, "a reference needs a barcode (dna) and/or images")
    row = ReferenceRecord(id=ident, **lineage, bin=clean(bin), dna=seq, images=[], status="active")
    await run_in_threadpool(_store, state, session, row, [img for _, img in decoded])
    return {**reference_json(row), "searchable": identifier.searcher.has_key(ident)}


def _store(state: AppState, session: Session, row: ReferenceRecord, images: list) -> None:
    """Write a reference's photos under a folder the server names, commit its row, make it searchable.

    The photos' names are this request's own: a request adding the same id at the same moment (a client's
    retry) neither overwrites them nor, when it loses, deletes them; the loser gets a 409."""
    folder = reference_folder(state.runtime.settings.data_dir, row.id)
    batch = uuid.uuid4().hex[:12]
    paths = []
    try:
        for i, img in enumerate(images):
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{batch}-{i}.jpg"
            img.save(path, quality=92)
            paths.append(path)
        row.images = [str(p) for p in paths]
        session.add(row)
        session.commit()
    except Exception as exc:  # nothing of a reference that was not stored stays behind
        session.rollback()
        for path in paths:
            path.unlink(missing_ok=True)
        if paths and not any(folder.iterdir()):
            folder.rmdir()
        if isinstance(exc, IntegrityError):
            raise HTTPException(409, f"a reference with id {row.id!r} exists; delete it first to replace it")
        raise
    state.runtime.sync.sync(True)


@router.get("/references", response_model=list[ReferenceOut], responses=ERRORS)
def list_references(session: SessionDep, admin: AdminDep, taxon: Optional[str] = None,
                    status: Optional[str] = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0) -> list[dict]:
    """Added references, newest first, filtered by a taxon at any rank and/or status."""
    q = select(ReferenceRecord)
    if taxon:
        t = taxon.lower()
        q = q.where(or_(*[func.lower(c) == t for c in (ReferenceRecord.order, ReferenceRecord.family,
                                                        ReferenceRecord.genus, ReferenceRecord.species)]))
    if status:
        q = q.where(ReferenceRecord.status == status)
    rows = session.scalars(q.order_by(ReferenceRecord.created_at.desc()).limit(limit).offset(offset)).all()
    return [reference_json(r) for r in rows]


@router.delete("/references/{ref_id}", responses=ERRORS)
def delete_reference(state: StateDep, session: SessionDep, identifier: IdentifierDep, admin: AdminDep,
                           ref_id: str) -> dict:
    """Hide a reference from search at once (added ones and ones from the snapshot alike)."""
    row = session.get(ReferenceRecord, ref_id)
    if row is None:
        if not identifier.searcher.has_key(ref_id):
            raise HTTPException(404, f"no reference with id {ref_id!r}")
        row = ReferenceRecord(id=ref_id, images=[], status="deleted")  # a snapshot key: remember the deletion
        session.add(row)
    elif row.status == "deleted":
        raise HTTPException(404, f"reference {ref_id!r} is already deleted")
    remove_reference_files(state.runtime.settings.data_dir, ref_id)
    row.images = []
    row.status = "deleted"
    row.snapshot_id = None
    row.updated_at = utcnow()
    session.commit()
    state.runtime.sync.sync(True)
    return {"id": ref_id, "status": "deleted", "searchable": identifier.searcher.has_key(ref_id)}


@router.post("/reindex", status_code=202, responses=ERRORS)
def reindex(state: StateDep, admin: AdminDep) -> dict:
    """Fold added and deleted references into a new snapshot (a worker task; snapshots switch atomically)."""
    result = state.celery.send_task(REINDEX)
    return {"task_id": result.id, "status": "queued"}
