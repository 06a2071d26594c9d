"""One thread for all of a serving process's torch work.

With torch's OpenMP backend, every thread that runs a parallel region gets its own team of worker threads; once
two threads have run torch (say, the one that loaded the model and the one that encodes), their teams compete
for the cores and a small model's forward pass takes about twice as long (`python -m benchmarks.torch_threads`).
A server that encodes from worker threads therefore loads and runs its model on this one thread.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

R = TypeVar("R")
_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_thread_id: int | None = None


def _remember() -> None:
    global _thread_id
    _thread_id = threading.get_ident()


def executor() -> ThreadPoolExecutor:
    """The single-thread executor every pinned torch call runs on (created on first use)."""
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="torch",
                                           initializer=_remember)
        return _executor


def on_torch_thread(fn: Callable[..., R], *args, **kwargs) -> R:
    """Run `fn` on the torch thread and wait for it (inline when already there)."""
    if threading.get_ident() == _thread_id:
        return fn(*args, **kwargs)
    return executor().submit(fn, *args, **kwargs).result()
