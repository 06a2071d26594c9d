"""Handing freed memory back to the operating system: glibc keeps the pages of large freed buffers in its
arenas, so after decoding a 49 Mpx photo the process would hold its peak size for good."""
from __future__ import annotations

import ctypes
import ctypes.util
import threading
from typing import Optional

_LOCK = threading.Lock()
# Requests that decoded fewer pixels than this leave little behind; trimming costs a few milliseconds.
TRIM_AFTER_PIXELS = 16_000_000


def _libc() -> Optional[ctypes.CDLL]:
    name = ctypes.util.find_library("c")
    try:
        lib = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return lib if lib is not None and hasattr(lib, "malloc_trim") else None


_LIBC = _libc()


def release_free_memory() -> bool:
    """Return freed heap pages to the system (glibc `malloc_trim`); whether it could (False where the C library
    has no `malloc_trim`)."""
    if _LIBC is None:
        return False
    with _LOCK:
        _LIBC.malloc_trim(0)  # its own result only says whether there happened to be pages to give back
    return True
