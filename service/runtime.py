"""The heavy objects of one process (database, model, index), built once from `Settings`."""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
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
    _refresher: Optional[threading.Thread] = None
    _stop: threading.Event = field(default_factory=threading.Event)

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
            # the model is loaded and run on one thread: batchers, admin adds and jobs all encode through it
            self.identifier = Identifier.load(s.checkpoint, s.index_root, s.device, pinned=True)
            self.sync = ReferenceSync(self.identifier, self.sessions)
            self.sync.sync(force=True)
            self.load_error = None
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            log.error("model or index not loaded: %s", exc)
            self.load_error = f"{type(exc).__name__}: {exc}"

    def start_refresher(self) -> None:
        """Keep the served snapshot and the added/deleted references current from a background thread, so that
        no request ever loads an index or reads the reference table."""
        if self._refresher is not None or self.sync is None:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(self.settings.refresh_interval_s):
                try:
                    self.sync.sync(force=True)
                except Exception:  # a database hiccup must not end the refresher; the next round retries
                    log.exception("reference refresh failed")
        self._refresher = threading.Thread(target=loop, name="clibd-refresher", daemon=True)
        self._refresher.start()

    def stop_refresher(self) -> None:
        """Stop the background refresher (at shutdown)."""
        self._stop.set()
        if self._refresher is not None:
            self._refresher.join(timeout=10)
        self._refresher = None

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
