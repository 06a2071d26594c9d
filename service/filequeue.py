"""The embedded job queue: kombu's filesystem transport with whole-file writes and single-reader claims.

kombu's own filesystem transport creates a message file in the queue folder and then writes it, so a worker
polling at that moment can read an empty file (the worker dies with a JSON decode error and the message is
lost); it hands a message over by moving it to the system temporary folder, which is a copy when that folder is
another filesystem, so two workers can both read it. Here:

- a message is written under a staging name and renamed into the queue folder, so a reader sees all of it or
  nothing;
- a reader claims a message by renaming it into its own claim folder beside the queue (one filesystem, so the
  rename is atomic and exactly one reader wins), then reads and deletes it; a claim left by a reader that died
  before reading it goes back to the queue;
- the exchange tables are changed under one lock file and replaced whole;
- what a process has declared is remembered per queue folder, not once per process.
"""
from __future__ import annotations

import itertools
import os
import socket
import uuid
from contextlib import contextmanager
from pathlib import Path
from queue import Empty
from time import monotonic, monotonic_ns
from typing import Dict, Iterator, List

from kombu.exceptions import ChannelError
from kombu.transport import filesystem, virtual
from kombu.utils.json import dumps, loads

STAGING = ".staging"
CLAIMED = ".claimed"
ORPHAN_CHECK_S = 5.0
_HOST = socket.gethostname()
_SENT = itertools.count()


def write_whole(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that a reader sees the old file or all of the new one, never a part."""
    staging = path.parent / STAGING
    staging.mkdir(exist_ok=True)
    tmp = staging / f"{uuid.uuid4().hex}.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _on_queue(name: str, queue: str) -> bool:
    """Whether a file of the queue folder is a message of `queue` (`<ns>_<pid>_<count>_<uuid>.<queue>.msg`)."""
    return name.partition(".")[2] == f"{queue}.msg"


def _process_exists(pid: int) -> bool:
    """Whether a process with this id runs on this host (on Windows, where signal 0 would end it: assumed so)."""
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Channel(filesystem.Channel):
    """A filesystem channel whose messages and exchange tables are never seen half-written."""

    _orphans_checked = 0.0  # when this channel last looked for claims of dead readers (monotonic seconds)

    def _put(self, queue: str, payload: dict, **kwargs) -> None:
        """Put `payload` on `queue` (staged, then renamed into the queue folder)."""
        # padded time, then this process' count: names sort in the order sent (kombu's: milliseconds, then random)
        name = f"{monotonic_ns():020d}_{os.getpid()}_{next(_SENT):012d}_{uuid.uuid4().hex}.{queue}.msg"
        try:
            write_whole(Path(self.data_folder_out) / name, dumps(payload).encode())
        except OSError as exc:
            raise ChannelError(f"Cannot add message {name!r} to the queue folder") from exc

    def _get(self, queue: str) -> dict:
        """The oldest message of `queue`, claimed by rename so that no other reader gets it."""
        folder = Path(self.data_folder_in)
        claims = folder / CLAIMED
        self._recover_orphans(folder, claims)  # (which makes the claim folder: once in a while, not every poll)
        for name in sorted(n for n in os.listdir(folder) if _on_queue(n, queue)):
            claimed = claims / f"{_HOST}@{os.getpid()}@{name}"
            try:
                os.rename(folder / name, claimed)
            except OSError:
                continue  # another reader took it
            try:
                payload = claimed.read_bytes()
            except OSError as exc:
                raise ChannelError(f"Cannot read claimed message {claimed}") from exc
            if self.store_processed:
                os.replace(claimed, Path(self.processed_folder) / name)
            else:
                claimed.unlink()
            return loads(payload.decode())
        raise Empty()

    def _recover_orphans(self, folder: Path, claims: Path) -> None:
        """Put back messages claimed by readers of this host that died before reading them (looked at every few
        seconds; a claim of another host's reader, on a shared folder, is left to that host)."""
        now = monotonic()
        if now - self._orphans_checked < ORPHAN_CHECK_S:
            return
        self._orphans_checked = now
        claims.mkdir(exist_ok=True)
        for name in os.listdir(claims):
            host, pid, original = (name.split("@", 2) + ["", ""])[:3]
            if host == _HOST and pid.isdigit() and original and not _process_exists(int(pid)):
                try:
                    os.rename(claims / name, folder / original)
                except OSError:
                    pass  # another reader put it back first

    def _size(self, queue: str) -> int:
        """Messages waiting on `queue`."""
        return sum(1 for n in os.listdir(self.data_folder_in) if _on_queue(n, queue))

    def _purge(self, queue: str) -> int:
        """Delete the messages waiting on `queue`; how many went."""
        folder = Path(self.data_folder_in)
        removed = 0
        for name in os.listdir(folder):
            if _on_queue(name, queue):
                try:
                    (folder / name).unlink()
                    removed += 1
                except FileNotFoundError:
                    pass
        return removed

    @contextmanager
    def _tables_locked(self) -> Iterator[None]:
        """Hold the lock under which exchange tables change."""
        self.control_folder.mkdir(parents=True, exist_ok=True)
        with open(self.control_folder / ".tables.lock", "a") as f:
            filesystem.lock(f, filesystem.LOCK_EX)  # kombu's portable file lock
            try:
                yield
            finally:
                filesystem.unlock(f)

    def get_table(self, exchange: str) -> List[filesystem.exchange_queue_t]:
        """The queues bound to `exchange` (a table is replaced whole, so it reads without a lock)."""
        try:
            text = self._exchange_file(exchange).read_text()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ChannelError(f"Cannot open the table of exchange {exchange!r}") from exc
        return [filesystem.exchange_queue_t(*q) for q in loads(text)] if text else []

    def _edit_table(self, exchange: str, routing_key: str, pattern: str, queue: str, bind: bool) -> None:
        """Add (`bind`) or remove one entry of an exchange's table, under the tables' lock, replacing it whole."""
        entry = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        with self._tables_locked():
            table = self.get_table(exchange)
            if (entry in table) != bind:
                table = [entry, *table] if bind else [e for e in table if e != entry]
                write_whole(self._exchange_file(exchange), dumps(table).encode())

    def _queue_bind(self, exchange: str, routing_key: str, pattern: str, queue: str) -> None:
        self._edit_table(exchange, routing_key, pattern, queue, True)

    def _delete(self, queue: str, exchange: str, routing_key: str, pattern: str, *args, **kwargs) -> None:
        super(filesystem.Channel, self)._delete(queue, exchange, routing_key, pattern, *args, **kwargs)
        self._edit_table(exchange, routing_key, pattern, queue, False)


class Transport(filesystem.Transport):
    """kombu's filesystem transport with the channel above (selected by Celery's `broker_transport`).

    What a process has declared is remembered per queue folder (kombu's is one state per process), so a process
    that publishes to two data folders in turn binds the queue in the second one too, rather than dead-lettering.
    """

    Channel = Channel
    _states: Dict[str, virtual.BrokerState] = {}

    def __init__(self, client, **kwargs) -> None:
        super().__init__(client, **kwargs)
        key = os.path.abspath(client.transport_options.get("control_folder", "control"))
        self.state = self._states.setdefault(key, virtual.BrokerState())
