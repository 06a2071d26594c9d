"""The embedded worker of `clibd serve`: started beside the API, restarted when it dies, watched by its heartbeat.

A worker writes a heartbeat file (named by host and process id) every `HEARTBEAT_S` seconds while it consumes
the queue (`service.tasks`).
The supervisor restarts a worker process that exits (after 1, 2, 4 ... up to `MAX_BACKOFF_S` seconds when it
keeps dying) and says the worker is alive only while its process runs and its heartbeat is fresh, which is
what `/readyz` reports.
"""
from __future__ import annotations

import logging
import os
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Optional, Sequence

log = logging.getLogger(__name__)

HEARTBEAT_S = 2.0
STALE_S = 10.0  # a heartbeat older than this: the worker no longer consumes
MAX_BACKOFF_S = 30.0


def heartbeat_dir(data_dir: Path) -> Path:
    """Where workers of this data folder write their heartbeats."""
    return data_dir / "workers"


def write_heartbeat(data_dir: Path, name: str) -> None:
    """Mark this worker alive now (atomically replaced, so readers never see half a file)."""
    folder = heartbeat_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{name}.tmp"
    tmp.write_text(f"{time.time():.3f}\n")
    tmp.replace(folder / name)


def heartbeat_name(pid: int) -> str:
    """The heartbeat file of one worker process on this host."""
    return f"{socket.gethostname()}-{pid}"


def heartbeat_age(data_dir: Path, pid: int) -> Optional[float]:
    """Seconds since the worker process `pid` last beat (None: it never did)."""
    try:
        return time.time() - float((heartbeat_dir(data_dir) / heartbeat_name(pid)).read_text())
    except (OSError, ValueError):
        return None


class WorkerSupervisor:
    """Keeps one worker process running; `alive()` is true while it runs and beats."""

    def __init__(self, command: Sequence[str], env: dict, data_dir: Path) -> None:
        self.command = list(command)
        self.env = env
        self.data_dir = data_dir
        self.restarts = 0
        self._proc: Optional[subprocess.Popen] = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="clibd-worker-supervisor", daemon=True)

    def start(self) -> "WorkerSupervisor":
        """Start the worker and its watcher."""
        self._spawn()
        self._thread.start()
        return self

    def _spawn(self) -> None:
        self._proc = subprocess.Popen(self.command, env=self.env, start_new_session=True)
        log.info("started worker process %d", self._proc.pid)

    def _watch(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            code = self._proc.poll() if self._proc else 0
            if code is None:
                if self.alive():
                    backoff = 1.0
                self._stop.wait(0.5)
                continue
            log.warning("worker process %d exited with %s; restarting in %.0f s", self._proc.pid, code, backoff)
            if self._stop.wait(backoff):
                return
            backoff = min(backoff * 2, MAX_BACKOFF_S)
            self.restarts += 1
            self._spawn()

    @property
    def pid(self) -> Optional[int]:
        """The current worker process id."""
        return self._proc.pid if self._proc else None

    def describe(self) -> dict:
        """Worker process, restarts and liveness, for /v1/info."""
        return {"pid": self.pid, "restarts": self.restarts, "alive": self.alive()}

    def alive(self) -> bool:
        """The worker process runs and has beaten within `STALE_S`."""
        if self._proc is None or self._proc.poll() is not None:
            return False
        age = heartbeat_age(self.data_dir, self._proc.pid)
        return age is not None and age < STALE_S

    def status(self) -> str:
        """A sentence for /readyz."""
        if self._proc is None or self._proc.poll() is not None:
            return "the job worker is not running (restarting)"
        age = heartbeat_age(self.data_dir, self._proc.pid)
        return ("the job worker has not started consuming yet" if age is None else
                f"the job worker's last heartbeat was {age:.0f} s ago")

    def stop(self, timeout: float = 30.0) -> None:
        """Stop watching and terminate the worker (again: nothing to do)."""
        self._stop.set()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, 9)
                self._proc.wait()
