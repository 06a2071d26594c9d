"""Celery tasks: thin wrappers over `service.jobs` and `service.references`; heavy state once per process."""
from __future__ import annotations

import logging
import os
import threading
import time

from celery import Celery, shared_task
from celery.signals import worker_process_init, worker_ready, worker_shutdown
from sqlalchemy.orm import sessionmaker

from clibd.service import jobs
from clibd.service.db import make_engine, session_factory
from clibd.service.runtime import worker_runtime
from clibd.service.settings import Settings
from clibd.service.supervisor import HEARTBEAT_S, heartbeat_dir, heartbeat_name, write_heartbeat

log = logging.getLogger(__name__)
PROCESS_CHUNK = "clibd.process_chunk"
REINDEX = "clibd.reindex"
PURGE_EVERY_S = 3600.0  # how often a worker deletes finished jobs past the retention
_stop = threading.Event()


def _settings(app: Celery) -> Settings:
    return getattr(app, "clibd_settings", None) or Settings()


@shared_task(bind=True, name=PROCESS_CHUNK, acks_late=True)
def process_chunk(self, job_id: str, item_ids: list[int]) -> int:
    """Identify one chunk of a job's items (idempotent: finished items are skipped)."""
    settings = _settings(self.app)
    rt = worker_runtime(settings)
    identifier = rt.require()
    rt.sync.sync()
    return jobs.process_chunk(identifier, rt.sessions, job_id, item_ids, settings.limits, settings.item_lease_s,
                              settings.item_max_attempts)


@shared_task(bind=True, name=REINDEX, acks_late=True)
def reindex(self) -> dict:
    """Fold added and deleted references into a new snapshot."""
    rt = worker_runtime(_settings(self.app))
    rt.require()
    return rt.sync.reindex()


def dispatch_recoverable(app: Celery, sessions: sessionmaker, settings: Settings) -> int:
    """Send a task for every chunk of items no live claim covers; returns how many were sent."""
    with sessions() as session:
        chunks = jobs.recoverable(session, settings.item_lease_s, settings.job_chunk_size)
    for job_id, ids in chunks:
        app.send_task(PROCESS_CHUNK, args=[job_id, ids])
    if chunks:
        log.info("re-dispatched %d chunk(s) of lost job items", len(chunks))
    return len(chunks)


@worker_process_init.connect
def _load_once(**_) -> None:
    from clibd.service.celery_app import default_app
    worker_runtime(_settings(default_app()))


@worker_ready.connect
def _recover_loop(sender=None, **_) -> None:
    app = sender.app
    settings = _settings(app)

    def loop() -> None:  # one engine for the sweeps; the model is not needed to find lost items
        engine = make_engine(settings.sqlalchemy_url)
        sessions = session_factory(engine)
        last_purge = 0.0
        while not _stop.is_set():
            try:
                dispatch_recoverable(app, sessions, settings)
                if time.monotonic() - last_purge > PURGE_EVERY_S:
                    with sessions() as session:
                        purged = jobs.purge_jobs(session, settings.data_dir, settings.job_retention_days)
                    if purged:
                        log.info("purged %d finished job(s) past the retention", purged)
                    last_purge = time.monotonic()
            except Exception:  # never let recovery kill the worker
                log.exception("recovery sweep failed")
            _stop.wait(max(1.0, settings.item_lease_s / 2))
        engine.dispose()
    def beat() -> None:  # what `clibd serve` and /readyz watch: this worker consumes the queue
        name = heartbeat_name(os.getpid())
        try:
            while True:
                write_heartbeat(settings.data_dir, name)
                if _stop.wait(HEARTBEAT_S):
                    break
        finally:
            (heartbeat_dir(settings.data_dir) / name).unlink(missing_ok=True)
    _stop.clear()
    threading.Thread(target=loop, name="clibd-recovery", daemon=True).start()
    threading.Thread(target=beat, name="clibd-heartbeat", daemon=True).start()


@worker_shutdown.connect
def _stop_recovery(**_) -> None:
    _stop.set()
