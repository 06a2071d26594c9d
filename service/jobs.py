"""Bulk jobs: create from uploads, claim items atomically, process them in encoder batches, recover lost ones.

An item is claimed by an UPDATE that only succeeds on a pending item (or one whose claim is older than the
lease) and stamps it with a fresh token; its result is written only under that token, so a worker killed
mid-chunk loses nothing and a redelivered or re-dispatched chunk never writes an item twice. An item claimed
`max_attempts` times without an answer fails with the reason, so nothing is re-sent forever.
"""
from __future__ import annotations

import logging
import os
import shutil
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Iterator, Optional, Sequence

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from clibd.index.identifier import Identifier, Specimen
from clibd.service.inputs import InputError, Limits, check_barcode, parse_fasta, parse_manifest, read_images, \
    safe_extract_images
from clibd.service.models import ItemStatus, Job, JobItem, utcnow

log = logging.getLogger(__name__)
PENDING, RUNNING, DONE, FAILED = (status.value for status in ItemStatus)


@dataclass
class Upload:
    """The files of a job request (any combination)."""

    fasta: Optional[str] = None
    manifest: Optional[str] = None
    zip_bytes: Optional[bytes] = None


def _own_copy(path: Path, taken: set[Path]) -> str:
    """`path` for the first item naming it; for each further one a hard link (a copy where links fail) of the
    same name in a folder of its own, so that dropping one item's files never takes another's."""
    if path not in taken:
        taken.add(path)
        return str(path)
    n = 1
    while (twin := path.parent / f".{n}" / path.name).exists():
        n += 1
    twin.parent.mkdir(exist_ok=True)
    try:
        os.link(path, twin)
    except OSError:
        shutil.copyfile(path, twin)
    return str(twin)


def _items_from(upload: Upload, folder: Path, limits: Limits) -> list[dict]:
    members = safe_extract_images(upload.zip_bytes, folder / "images", limits) if upload.zip_bytes else {}
    images = dict(members)  # a manifest names a photo by its path in the ZIP or by its file name alone
    for member, path in members.items():
        images.setdefault(PurePosixPath(member).name, path)
    items: dict[str, dict] = {}
    taken: set[Path] = set()
    if upload.manifest is not None:
        rows = parse_manifest(upload.manifest, limits)
        missing = sorted({n for r in rows for n in r.images if n not in images})
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise InputError(422, f"the manifest names images that are not in the ZIP: {shown}"
                             if upload.zip_bytes else f"the manifest names images but no ZIP was uploaded: {shown}")
        for r in rows:
            if r.id in items:
                raise InputError(422, f"the manifest has the id {r.id!r} twice")
            items[r.id] = {"specimen_id": r.id, "dna": r.dna,
                           "images": [_own_copy(images[n], taken) for n in r.images]}
    if upload.fasta is not None:
        for rec in parse_fasta(upload.fasta, limits):
            item = items.setdefault(rec.id, {"specimen_id": rec.id, "dna": None, "images": []})
            if item["dna"]:
                raise InputError(422, f"the barcode of {rec.id!r} is given twice (FASTA and manifest, or twice)")
            item["dna"] = rec.sequence
    if upload.manifest is None:  # a ZIP alone: a photo is of the specimen its file is named for (S1.jpg, a/S1.png)
        for member, path in members.items():
            ident = PurePosixPath(member).stem
            items.setdefault(ident, {"specimen_id": ident, "dna": None, "images": []})["images"].append(str(path))
    if not items:
        raise InputError(422, "nothing to identify: upload a FASTA file, a manifest and/or a ZIP of images")
    if len(items) > limits.max_records:
        raise InputError(413, f"{len(items):,} specimens is over the limit of {limits.max_records:,} per job")
    return list(items.values())


def create_job(session: Session, data_dir: Path, upload: Upload, limits: Limits, options: dict) -> Job:
    """Check the upload, store its files and create the job with one item per specimen (all or nothing)."""
    job_id = str(uuid.uuid4())
    folder = data_dir / "jobs" / job_id
    try:
        items = _items_from(upload, folder, limits)
        job = Job(id=job_id, status="queued", total=len(items), options=options)
        session.add(job)
        session.flush()
        session.add_all([JobItem(job_id=job_id, position=i, specimen_id=it["specimen_id"], dna=it["dna"],
                                 images=it["images"], status=PENDING, attempts=0) for i, it in enumerate(items)])
        session.commit()
        return job
    except Exception:
        session.rollback()
        shutil.rmtree(folder, ignore_errors=True)
        raise


def item_ids(session: Session, job_id: str) -> list[int]:
    """The job's item ids in order."""
    return list(session.scalars(select(JobItem.id).where(JobItem.job_id == job_id).order_by(JobItem.position)))


def chunked(ids: Sequence[int], size: int) -> Iterator[list[int]]:
    """Consecutive chunks of at most `size` ids."""
    for i in range(0, len(ids), size):
        yield list(ids[i:i + size])


@dataclass(frozen=True)
class Claim:
    """The items one worker took in one go, and the token its results must carry."""

    items: list[JobItem]
    token: str


def claim(session: Session, job_id: str, ids: Sequence[int], lease_s: float, max_attempts: int) -> Claim:
    """Atomically take the pending (or lease-expired) items among `ids` under a fresh token; a lost item
    that has used up `max_attempts` claims fails with the reason instead of being taken again."""
    now = utcnow()
    stale = and_(JobItem.status == RUNNING, JobItem.claimed_at < now - timedelta(seconds=lease_s))
    mine = and_(JobItem.job_id == job_id, JobItem.id.in_(list(ids)))
    session.execute(update(JobItem).where(mine, stale, JobItem.attempts >= max_attempts).values(
        status=FAILED, claim_token=None, finished_at=now,
        error=f"gave up after {max_attempts} attempts: the worker holding this item stopped before answering"))
    token = uuid.uuid4().hex
    session.execute(update(JobItem).where(mine, or_(JobItem.status == PENDING, stale)).values(
        status=RUNNING, claimed_at=now, claim_token=token, attempts=JobItem.attempts + 1))
    session.execute(update(Job).where(Job.id == job_id, Job.status == "queued").values(status="running",
                                                                                     started_at=now))
    session.commit()
    items = session.scalars(select(JobItem).where(JobItem.claim_token == token)).all()
    return Claim(list(items), token)


def _finish(session: Session, item: JobItem, token: str, **values) -> None:
    session.execute(update(JobItem).where(JobItem.id == item.id, JobItem.claim_token == token).values(
        finished_at=utcnow(), claim_token=None, **values))


def _give_back(session: Session, item: JobItem, token: str, error: str, max_attempts: int) -> None:
    """An item whose identification raised: retried by a later claim, or failed once its attempts are spent."""
    if item.attempts >= max_attempts:
        _finish(session, item, token, status=FAILED, error=f"failed {item.attempts} times; last error: {error}")
        _drop_files(item)
    else:
        session.execute(update(JobItem).where(JobItem.id == item.id, JobItem.claim_token == token).values(
            status=PENDING, claim_token=None, error=error))


@contextmanager
def _renewing(factory: sessionmaker, token: str, lease_s: float) -> Iterator[None]:
    """Renew a claim every third of the lease while its items are worked on, so a short lease tells a dead
    worker's items from a slow batch."""
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(lease_s / 3):
            try:
                with factory() as session:
                    session.execute(update(JobItem).where(JobItem.claim_token == token, JobItem.status == RUNNING)
                                    .values(claimed_at=utcnow()))
                    session.commit()
            except Exception:  # noqa: BLE001 - a missed renewal only risks a second attempt
                log.exception("renewing claim %s failed", token)
    thread = threading.Thread(target=renew, name="clibd-claim-renewal", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def process_chunk(identifier: Identifier, factory: sessionmaker, job_id: str, ids: Sequence[int],
                  limits: Limits, lease_s: float, max_attempts: int = 3) -> int:
    """Identify the claimable items among `ids` in one encoder batch; returns how many this call finished.

    Bad input fails its item at once; an error inside identification re-runs the batch one specimen at a
    time, so one poisonous specimen fails alone (after `max_attempts`) and the others are answered."""
    with factory() as session:
        taken = claim(session, job_id, ids, lease_s, max_attempts)
        if not taken.items:
            return 0
        with _renewing(factory, taken.token, lease_s):
            _answer(identifier, session, job_id, taken, limits, max_attempts)
        close_if_finished(session, job_id)
        return len(taken.items)


def _answer(identifier: Identifier, session: Session, job_id: str, taken: Claim, limits: Limits,
            max_attempts: int) -> None:
    """Identify a claim's items and write their results (or reasons) under its token."""
    job = session.get(Job, job_id)
    top_k = int(job.options.get("top_k", 10))
    restrict_to = job.options.get("restrict_to")
    good: list[tuple[JobItem, Specimen]] = []
    for item in taken.items:
        try:
            if not item.dna and not item.images:
                raise InputError(422, "no barcode and no image")
            dna = check_barcode(item.dna, limits, f"barcode of {item.specimen_id!r}") if item.dna else None
            # the specimen's photos together, as /v1/identify reads them (pixel limits per photo and per specimen)
            images = read_images([(Path(p).read_bytes(), Path(p).name) for p in item.images], limits)
            good.append((item, Specimen(images=images, dna=dna)))
        except (InputError, OSError) as exc:
            _finish(session, item, taken.token, status=FAILED, error=getattr(exc, "message", str(exc)))
            _drop_files(item)
    session.commit()  # hold no lock while identifying: the claim's renewal writes the same rows
    try:
        answers = identifier.identify([s for _, s in good], top_k, restrict_to) if good else []
        for (item, _), answer in zip(good, answers):
            _finish(session, item, taken.token, status=DONE, result=answer.model_dump(mode="json"))
    except Exception:  # noqa: BLE001 - one at a time, to find the specimen that raises
        log.exception("a batch of job %s raised; answering its %d specimens one at a time", job_id, len(good))
        for item, specimen in good:
            try:
                answer = identifier.identify([specimen], top_k, restrict_to)[0]
            except Exception as exc:  # noqa: BLE001 - recorded on the item, which is retried or failed
                log.exception("job %s item %s raised", job_id, item.specimen_id)
                _give_back(session, item, taken.token, f"{type(exc).__name__}: {exc}", max_attempts)
            else:
                _finish(session, item, taken.token, status=DONE, result=answer.model_dump(mode="json"))
    session.commit()


def _drop_files(item: JobItem) -> None:
    """Remove a failed item's uploaded images at once: nothing will read them again."""
    for path in item.images or []:
        Path(path).unlink(missing_ok=True)


def purge_jobs(session: Session, data_dir: Path, retention_days: float, now: Optional[datetime] = None) -> int:
    """Delete finished jobs older than the retention (their items, results and files); returns how many."""
    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    old = list(session.scalars(select(Job.id).where(Job.status == "done", Job.finished_at < cutoff)))
    for job_id in old:
        shutil.rmtree(data_dir / "jobs" / job_id, ignore_errors=True)
    if old:
        session.execute(delete(JobItem).where(JobItem.job_id.in_(old)))
        session.execute(delete(Job).where(Job.id.in_(old)))
        session.commit()
    return len(old)


def close_if_finished(session: Session, job_id: str) -> bool:
    """Mark the job done when none of its items is pending or running."""
    open_items = session.scalar(select(func.count()).select_from(JobItem).where(
        JobItem.job_id == job_id, JobItem.status.in_((PENDING, RUNNING))))
    if open_items:
        return False
    session.execute(update(Job).where(Job.id == job_id, Job.status != "done").values(status="done",
                                                                                   finished_at=utcnow()))
    session.commit()
    return True


def recoverable(session: Session, lease_s: float, chunk: int) -> list[tuple[str, list[int]]]:
    """Chunks of items that no live claim covers: claims past the lease, and pending items of old jobs."""
    stale = utcnow() - timedelta(seconds=lease_s)
    rows = session.execute(select(JobItem.job_id, JobItem.id).join(Job).where(or_(
        and_(JobItem.status == RUNNING, JobItem.claimed_at < stale),
        and_(JobItem.status == PENDING, Job.created_at < stale))).order_by(JobItem.job_id, JobItem.position)).all()
    by_job: dict[str, list[int]] = {}
    for job_id, item_id in rows:
        by_job.setdefault(job_id, []).append(item_id)
    return [(job_id, part) for job_id, ids in by_job.items() for part in chunked(ids, chunk)]


def progress(session: Session, job: Job) -> dict:
    """Done, failed, running and pending counts, with an ETA from the rate so far."""
    counts = dict(session.execute(select(JobItem.status, func.count()).where(JobItem.job_id == job.id)
                                  .group_by(JobItem.status)).all())
    done, failed = counts.get(DONE, 0), counts.get(FAILED, 0)
    finished = done + failed
    eta = None
    if job.started_at and 0 < finished < job.total:
        started = job.started_at if job.started_at.tzinfo else job.started_at.replace(tzinfo=utcnow().tzinfo)
        rate = finished / max((utcnow() - started).total_seconds(), 1e-3)
        eta = round((job.total - finished) / rate, 1)
    return {"id": job.id, "status": job.status, "total": job.total, "done": done, "failed": failed,
            "running": counts.get(RUNNING, 0), "pending": counts.get(PENDING, 0), "eta_seconds": eta,
            "created_at": job.created_at.isoformat(), "finished_at": job.finished_at.isoformat()
            if job.finished_at else None}
