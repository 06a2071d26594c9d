"""Response schemas (pydantic v2): what the OpenAPI document at /docs promises."""
from __future__ import annotations

from typing import Optional

from pydantic import BaseModel

from clibd.index.answer import Answer

IdentifyResponse = Answer  # the API's answer is the core's


class Problem(BaseModel):
    """An error: the HTTP status and what exactly was wrong."""

    detail: str


class JobAccepted(BaseModel):
    """A queued job."""

    id: str
    total: int
    status: str
    status_url: str
    results_url: str
    note: Optional[str] = None  # the job is stored but not queued yet; an upload read as Windows-1252


class JobProgress(BaseModel):
    """A job's progress."""

    id: str
    status: str
    total: int
    done: int
    failed: int
    running: int
    pending: int
    eta_seconds: Optional[float]
    created_at: str
    finished_at: Optional[str]


class ReferenceOut(BaseModel):
    """A reference record added through the admin API."""

    id: str
    order: Optional[str]
    family: Optional[str]
    genus: Optional[str]
    species: Optional[str]
    bin: Optional[str]
    dna_length: int
    images: int
    status: str
    snapshot_id: Optional[str]
    created_at: str
    searchable: Optional[bool] = None
