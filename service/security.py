"""API keys: created by `clibd apikey create`, shown once, stored as SHA-256."""
from __future__ import annotations

import hashlib
import secrets
from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from clibd.service.models import API_KEY_NAME_LENGTH, ApiKey, utcnow

PREFIX = "clibd_"
SCOPES = ("admin",)  # what a key can grant


def hash_key(key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(session: Session, name: str, scopes: str = "admin") -> str:
    """Create a key and return it (the only time it is visible); ValueError for a name the database cannot hold or
    a scope no route checks (a key that could open nothing)."""
    if not name.strip() or len(name) > API_KEY_NAME_LENGTH or not name.isprintable():
        raise ValueError(f"key name {name[:40]!r}: give 1 to {API_KEY_NAME_LENGTH} printable characters")
    unknown = [x for x in scopes.split(",") if x.strip() not in SCOPES]
    if unknown:
        raise ValueError(f"unknown scope {unknown[0]!r}; scopes are {', '.join(SCOPES)} (comma-separated)")
    scopes = ",".join(x.strip() for x in scopes.split(","))
    key = PREFIX + secrets.token_urlsafe(32)
    session.add(ApiKey(name=name, key_hash=hash_key(key), scopes=scopes))
    session.commit()
    return key


def revoke_key(session: Session, name: str) -> int:
    """Revoke every active key with this name; returns how many."""
    keys = session.scalars(select(ApiKey).where(ApiKey.name == name, ApiKey.revoked_at.is_(None))).all()
    for k in keys:
        k.revoked_at = utcnow()
    session.commit()
    return len(keys)


def check_key(session: Session, key: Optional[str], scope: str) -> Optional[ApiKey]:
    """The active key granting `scope`, or None."""
    if not key:
        return None
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None)))
    if row is None or scope not in row.scopes.split(","):
        return None
    return row
