"""Text files as users save them: UTF-8, or the Windows code page a spreadsheet writes on Windows.

A CSV saved by Excel on Windows is cp1252, not UTF-8: "Müller" is the single byte 0xFC. Read as UTF-8 with
replacement, names come out as "M\ufffdller" without a word. `WINDOWS_FALLBACK` is a decoding error handler that
reads each run of bytes that is not UTF-8 as cp1252 instead (the five bytes cp1252 leaves undefined as
Latin-1), so valid UTF-8 stays UTF-8 and a Windows file reads as written, in one pass over a stream.
"""
from __future__ import annotations

import codecs

WINDOWS_FALLBACK = "clibd-cp1252"
_UNDEFINED = frozenset((0x81, 0x8D, 0x8F, 0x90, 0x9D))  # bytes cp1252 leaves undefined: read as Latin-1


def _as_cp1252(exc: UnicodeError) -> tuple[str, int]:
    """The bytes UTF-8 could not decode, read as cp1252; decoding goes on after them."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    raw = exc.object[exc.start:exc.end]
    return "".join(bytes([b]).decode("cp1252", errors="strict") if b not in _UNDEFINED else chr(b)
                   for b in raw), exc.end


codecs.register_error(WINDOWS_FALLBACK, _as_cp1252)


def decode_text(data: bytes) -> tuple[str, bool]:
    """`data` as text: UTF-8 (a BOM dropped), else with its non-UTF-8 runs read as cp1252; and whether that
    fallback was needed."""
    try:
        return data.decode("utf-8-sig"), False
    except UnicodeDecodeError:
        return data.decode("utf-8-sig", errors=WINDOWS_FALLBACK), True
