"""Choosing a reader by file name and header."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator, Optional

from clibd.readers.bioscan import read_bioscan1m, read_bioscan5m
from clibd.readers.bold import read_bold
from clibd.readers.fasta import read_fasta
from clibd.readers.table import read_table
from clibd.readers.tabular import read_header
from clibd.records import Record

FORMATS = ("auto", "bioscan1m", "bioscan5m", "bold", "fasta", "table")
_FASTA_SUFFIXES = {".fa", ".fasta", ".fas", ".fna", ".ffn"}


def detect_format(path: str | Path) -> str:
    """One of FORMATS (not "auto") for a file, from its extension and header."""
    path = Path(path)
    suffix = Path(path.name.lower().removesuffix(".gz")).suffix
    if suffix in _FASTA_SUFFIXES:
        return "fasta"
    header = {h.strip().lower() for h in read_header(path)}
    if "dna_barcode" in header and "split" in header:
        return "bioscan5m"
    if "nucraw" in header or {"uri", "image_file", "processid"} <= header:
        return "bioscan1m"
    if "bin_uri" in header and ("order_name" in header or "nuc" in header):
        return "bold"
    return "table"


def read_records(path: str | Path, fmt: str = "auto", image_root: Optional[str | Path] = None) -> list[Record]:
    """All records of a file in any supported format."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    fmt = detect_format(path) if fmt == "auto" else fmt
    readers: dict[str, Callable[[], Iterator[Record]]] = {
        "bioscan1m": lambda: read_bioscan1m(path, image_root),
        "bioscan5m": lambda: read_bioscan5m(path, image_root),
        "bold": lambda: read_bold(path),
        "fasta": lambda: read_fasta(path),
        "table": lambda: read_table(path, image_root),
    }
    return list(readers[fmt]())
