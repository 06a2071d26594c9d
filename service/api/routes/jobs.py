"""Bulk jobs: POST /v1/jobs (FASTA, manifest, ZIP), progress, and results as JSON, CSV/TSV or Darwin Core."""
from __future__ import annotations

import logging
from typing import Annotated, Callable, Iterator, Literal, Optional

from fastapi import APIRouter, File, Form, HTTPException, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from clibd.service import jobs
from clibd.service.api.deps import AppState, IdentifierDep, SessionDep, StateDep
from clibd.service.celery_app import broker_problem
from clibd.service.inputs import decode_text
from clibd.service.models import Job, JobItem
from clibd.service.results import DWC_COLUMNS, FLAT_COLUMNS, dwc_row, flat_row, json_results, table
from clibd.service.schemas import JobAccepted, JobProgress, Problem
from clibd.service.tasks import PROCESS_CHUNK

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
ERRORS = {c: {"model": Problem} for c in (404, 413, 422, 503)}


async def _text(upload: Optional[UploadFile], what: str, notes: list[str]) -> Optional[str]:
    if upload is None or not upload.filename:
        return None
    return decode_text(await upload.read(), what, notes)


@router.post("", status_code=202, response_model=JobAccepted, responses=ERRORS)
async def submit(
    state: StateDep,
    session: SessionDep,
    identifier: IdentifierDep,
    fasta: Annotated[Optional[UploadFile], File(description="barcodes (FASTA)")] = None,
    manifest: Annotated[Optional[UploadFile], File(description="CSV/TSV: id, dna and/or images (';'-separated)")] = None,
    images_zip: Annotated[Optional[UploadFile], File(description="ZIP of images")] = None,
    top_k: Annotated[int, Form()] = 10,
    restrict_to: Annotated[Optional[str], Form()] = None,
) -> dict:
    """Queue a bulk identification; every specimen becomes an item with its own status."""
    s = state.runtime.settings
    if not 1 <= top_k <= s.max_top_k:
        raise HTTPException(422, f"top_k must be between 1 and {s.max_top_k}, got {top_k}")
    if restrict_to is not None and not identifier.searcher.has_taxon(restrict_to):
        raise HTTPException(422, f"restrict_to: no reference key carries the taxon {restrict_to!r}")
    notes: list[str] = []
    upload = jobs.Upload(fasta=await _text(fasta, "FASTA file", notes),
                         manifest=await _text(manifest, "manifest", notes),
                         zip_bytes=(await images_zip.read()) if images_zip is not None and images_zip.filename
                         else None)
    job = await run_in_threadpool(jobs.create_job, session, s.data_dir, upload, s.limits,
                                  {"top_k": top_k, "restrict_to": restrict_to})
    problem = await run_in_threadpool(_queue_chunks, state, session, job.id)  # database and broker off the loop
    out = {"id": job.id, "total": job.total, "status": job.status, "status_url": f"/v1/jobs/{job.id}",
           "results_url": f"/v1/jobs/{job.id}/results"}
    if problem:
        notes.append(f"the job is stored, but the job queue cannot be reached now ({problem}); the workers "
                     f"dispatch its items when the queue is back")
    if notes:
        out["note"] = "; ".join(notes)
    return out


def _queue_chunks(state: AppState, session: Session, job_id: str) -> Optional[str]:
    """Send the job's chunks to the workers; why that failed (the broker is down), or None."""
    try:
        for part in jobs.chunked(jobs.item_ids(session, job_id), state.runtime.settings.job_chunk_size):
            state.celery.send_task(PROCESS_CHUNK, args=[job_id, part])
    except Exception as exc:  # the items stay pending: the workers' recovery sweep sends them later
        log.warning("job %s stored but not queued: %s", job_id, exc)
        # the broker's own error says what is wrong (Celery's words after its retries do not)
        return broker_problem(state.celery) or f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    return None


def _job(session: SessionDep, job_id: str) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise HTTPException(404, f"no job with id {job_id!r}")
    return job


@router.get("/{job_id}", response_model=JobProgress, responses=ERRORS)
def status(session: SessionDep, job_id: str) -> dict:
    """Progress: done / failed / total and an ETA."""
    return jobs.progress(session, _job(session, job_id))


RESULTS_PAGE = 500  # items read from the database at a time while results stream


@router.get("/{job_id}/results", responses={**ERRORS, 200: {"content": {"text/csv": {}, "application/json": {}}}})
def results(session: SessionDep, state: StateDep, job_id: str,
            format: Literal["json", "csv", "tsv", "dwc"] = "json") -> StreamingResponse:
    """Per-item results so far (finished items only until the job is done), streamed as they are read: a job
    of 20,000 items is never held in memory whole, and the first bytes leave at once."""
    job = _job(session, job_id)
    items = _items(state.runtime.sessions, job_id)
    if format == "json":
        return StreamingResponse(json_results(jobs.progress(session, job), items), media_type="application/json")
    if format == "dwc":
        ref = "CLIBD job " + job_id
        return StreamingResponse(table((dwc_row(i, ref) for i in items), DWC_COLUMNS, "\t"),
                                 media_type="text/tab-separated-values",
                                 headers={"Content-Disposition": f'attachment; filename="{job_id}.dwc.tsv"'})
    delim = "," if format == "csv" else "\t"
    return StreamingResponse(table((flat_row(i) for i in items), FLAT_COLUMNS, delim),
                             media_type="text/csv" if format == "csv" else "text/tab-separated-values",
                             headers={"Content-Disposition": f'attachment; filename="{job_id}.{format}"'})


def _items(sessions: Callable[[], Session], job_id: str) -> Iterator[JobItem]:
    """A job's items in order, `RESULTS_PAGE` at a time, each page read in a short session of its own: a slow
    download holds no transaction open while workers write results."""
    last = -1
    while True:
        with sessions() as session:
            page = session.scalars(select(JobItem).where(JobItem.job_id == job_id, JobItem.position > last)
                                   .order_by(JobItem.position).limit(RESULTS_PAGE)).all()
        if not page:
            return
        yield from page
        last = page[-1].position
