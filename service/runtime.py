"""The heavy objects of one process (database, model, index), built once from `Settings`."""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Optional

from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from clibd.service.db import make_engine, migrate, session_factory
from clibd.index.identifier import Identifier
from clibd.service.references import ReferenceSync
from clibd.service.settings import Settings

log = logging.getLogger(__name__)


class NotConfiguredError(RuntimeError):
    """No checkpoint or index root is configured, or they cannot be loaded."""


@dataclass
class Runtime:
    """Database sessions always; the identifier and its reference sync once a model and index are set."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker
    identifier: Optional[Identifier] = None
    sync: Optional[ReferenceSync] = None
    load_error: Optional[str] = None

    @classmethod
    def start(cls, settings: Settings, load_model: bool = True, run_migrations: bool = True) -> "Runtime":
        """Connect (migrating the database first if asked) and load the model and index if configured."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        if run_migrations:
            migrate(settings.sqlalchemy_url)
        engine = make_engine(settings.sqlalchemy_url)
        rt = cls(settings, engine, session_factory(engine))
        if load_model:
            rt.load()
        return rt

    def load(self) -> None:
        """Load checkpoint + snapshot + thresholds; on failure keep serving health endpoints with the reason."""
        s = self.settings
        if not s.checkpoint or not s.index_root:
            self.load_error = "CLIBD_CHECKPOINT and CLIBD_INDEX_ROOT must name a checkpoint and an index root"
            return
        try:
            self.identifier = Identifier.load(s.checkpoint, s.index_root, s.device)
            self.sync = ReferenceSync(self.identifier, self.sessions)
            self.sync.sync(force=True)
            self.load_error = None
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            log.error("model or index not loaded: %s", exc)
            self.load_error = f"{type(exc).__name__}: {exc}"

    def require(self) -> Identifier:
        """The identifier, or NotConfiguredError with the reason it is missing."""
        if self.identifier is None:
            raise NotConfiguredError(self.load_error or "model not loaded")
        return self.identifier


_runtimes: dict[str, Runtime] = {}
_lock = threading.Lock()


def worker_runtime(settings: Settings) -> Runtime:
    """The runtime of this worker process for these settings, created on first use."""
    key = settings.model_dump_json()
    with _lock:
        if key not in _runtimes:
            _runtimes[key] = Runtime.start(settings, run_migrations=False)
        return _runtimes[key]
