"""Tables: reference records added by admins, bulk jobs and their items, API keys."""
from __future__ import annotations

import enum
from datetime import datetime, timezone
from typing import Optional

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    """Now, timezone-aware."""
    return datetime.now(timezone.utc)


class ItemStatus(str, enum.Enum):
    """Where a job item is: waiting, claimed by a worker, answered, or failed with its reason."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


# Column widths a request is checked against before anything is stored (PostgreSQL refuses longer values)
REFERENCE_ID_LENGTH = 128
TAXON_NAME_LENGTH = 128  # order, family, genus
SPECIES_NAME_LENGTH = 256
BIN_LENGTH = 64
SPECIMEN_ID_LENGTH = 256
API_KEY_NAME_LENGTH = 128


class Base(DeclarativeBase):
    """Declarative base of every table."""


class ReferenceRecord(Base):
    """A reference specimen added through the admin API (the snapshot holds the ones it was built from)."""

    __tablename__ = "reference_records"
    id: Mapped[str] = mapped_column(String(REFERENCE_ID_LENGTH), primary_key=True)
    order: Mapped[Optional[str]] = mapped_column("order_name", String(TAXON_NAME_LENGTH))
    family: Mapped[Optional[str]] = mapped_column(String(TAXON_NAME_LENGTH))
    genus: Mapped[Optional[str]] = mapped_column(String(TAXON_NAME_LENGTH))
    species: Mapped[Optional[str]] = mapped_column(String(SPECIES_NAME_LENGTH))
    bin: Mapped[Optional[str]] = mapped_column(String(BIN_LENGTH))
    dna: Mapped[Optional[str]] = mapped_column(Text)
    images: Mapped[list] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | deleted
    snapshot_id: Mapped[Optional[str]] = mapped_column(String(64))  # the snapshot that folded it in
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class Job(Base):
    """A bulk identification job."""

    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued | running | done
    total: Mapped[int] = mapped_column(Integer, default=0)
    options: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))


class JobItem(Base):
    """One specimen of a job; its result is written once, whatever happens to the workers."""

    __tablename__ = "job_items"
    __table_args__ = (UniqueConstraint("job_id", "position"), Index("ix_job_items_job_status", "job_id", "status"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    specimen_id: Mapped[str] = mapped_column(String(SPECIMEN_ID_LENGTH))
    dna: Mapped[Optional[str]] = mapped_column(Text)
    images: Mapped[list] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default=ItemStatus.PENDING.value)  # an ItemStatus value
    claimed_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    claim_token: Mapped[Optional[str]] = mapped_column(String(32))  # whose claim it is: results need it
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[Optional[str]] = mapped_column(Text)
    result: Mapped[Optional[dict]] = mapped_column(JSON)
    finished_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))


class ApiKey(Base):
    """An API key: only its SHA-256 is stored."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(API_KEY_NAME_LENGTH))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(128), default="admin")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
