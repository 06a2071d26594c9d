"""Liveness, readiness, Prometheus metrics and service info."""
from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from clibd.service.api.deps import StateDep
from clibd.service.api.metrics import REGISTRY, refresh_gauges
from clibd.service.celery_app import broker_problem

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(state: StateDep, response: Response) -> dict:
    """Model, index and database are ready (503 with reasons otherwise)."""
    problems = []
    if state.runtime.identifier is None:
        problems.append(state.runtime.load_error or "model not loaded")
    try:
        with state.runtime.sessions() as session:
            session.execute(text("SELECT 1"))
    except Exception as exc:  # report any database failure as not ready
        problems.append(f"database: {exc}")
    if state.supervisor is not None and not state.supervisor.alive():
        problems.append(state.supervisor.status())
    broker = broker_problem(state.celery)
    if broker:
        problems.append(f"job queue: {broker}")
    if problems:
        response.status_code = 503
        return {"status": "not ready", "problems": problems}
    return {"status": "ready"}


@router.get("/metrics", include_in_schema=False)
def metrics(state: StateDep) -> Response:
    """Prometheus metrics."""
    refresh_gauges(state)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/info")
def info(state: StateDep) -> dict:
    """Model, snapshot, thresholds, limits and job runner of this service."""
    s = state.runtime.settings
    out = {"ready": state.runtime.identifier is not None, "load_error": state.runtime.load_error,
           "jobs": {"broker": "embedded filesystem queue" if s.embedded_broker else s.broker.split("://")[0],
                    "chunk_size": s.job_chunk_size},
           "limits": {"max_upload_mb": s.max_upload_mb, "max_images": s.max_images,
                      "max_image_pixels": s.max_image_pixels, "min_barcode_length": s.min_barcode_length,
                      "max_barcode_length": s.max_barcode_length, "max_records": s.max_records,
                      "max_top_k": s.max_top_k},
           "batching": {"max_batch": s.batch_max_size, "wait_ms": s.batch_wait_ms}}
    if state.supervisor is not None:
        out["jobs"]["embedded_worker"] = state.supervisor.describe()
    if state.runtime.identifier is not None:
        ident = state.runtime.identifier
        out["provenance"] = ident.provenance()
        out["modalities"] = {"keys": ident.searcher.modalities, "queries": [m for m in ("image", "dna") if m in ident.modalities]}
    return out
