"""API keys: created by `clibd apikey create`, shown once, stored as SHA-256."""
from __future__ import annotations

import hashlib
import secrets
from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from clibd.service.models import ApiKey, utcnow

PREFIX = "clibd_"


def hash_key(key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(session: Session, name: str, scopes: str = "admin") -> str:
    """Create a key and return it (the only time it is visible)."""
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
