"""Typed dependencies: the process state, database sessions and the admin key check."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, AsyncIterator, Iterator, Optional

from celery import Celery
from fastapi import Depends, Header, HTTPException, Request
from sqlalchemy.orm import Session

from clibd.service.batching import MicroBatcher
from clibd.service.supervisor import WorkerSupervisor
from clibd.index.identifier import Identifier
from clibd.service.runtime import NotConfiguredError, Runtime
from clibd.service.security import check_key


@dataclass
class AppState:
    """What the app's lifespan creates once."""

    runtime: Runtime
    celery: Celery
    dna_batcher: Optional[MicroBatcher] = None
    image_batcher: Optional[MicroBatcher] = None
    supervisor: Optional[WorkerSupervisor] = None  # the embedded worker `clibd serve` keeps running
    in_flight: int = 0  # identify requests being served (the batchers wait for company only when > 1)


async def get_state(request: Request) -> AppState:
    """The app's state (async: a plain function dependency would cost a threadpool hop per request)."""
    return request.app.state.clibd


StateDep = Annotated[AppState, Depends(get_state)]


async def count_in_flight(request: Request) -> AsyncIterator[None]:
    """Count the request as in flight while it is served (the micro-batchers read the count)."""
    state: AppState = request.app.state.clibd
    state.in_flight += 1
    try:
        yield
    finally:
        state.in_flight -= 1


def get_session(state: StateDep) -> Iterator[Session]:
    """A database session for one request."""
    with state.runtime.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


async def get_identifier(state: StateDep) -> Identifier:
    """The loaded identifier (503 with the reason when the model or index is not loaded); a background thread
    keeps its snapshot and references current (`Runtime.start_refresher`)."""
    try:
        return state.runtime.require()
    except NotConfiguredError as exc:
        raise HTTPException(503, f"the model or index is not loaded: {exc}") from None


IdentifierDep = Annotated[Identifier, Depends(get_identifier)]


def require_admin(session: SessionDep, x_api_key: Annotated[Optional[str], Header()] = None,
                  authorization: Annotated[Optional[str], Header()] = None) -> str:
    """The admin key's name; 401 without a key, 403 for a wrong or revoked one."""
    key = x_api_key or (authorization[7:] if authorization and authorization.lower().startswith("bearer ") else None)
    if not key:
        raise HTTPException(401, "an admin API key is required (header X-API-Key or Authorization: Bearer)",
                            headers={"WWW-Authenticate": "Bearer"})
    row = check_key(session, key, "admin")
    if row is None:
        raise HTTPException(403, "this API key is unknown, revoked, or lacks the admin scope")
    return row.name


AdminDep = Annotated[str, Depends(require_admin)]
