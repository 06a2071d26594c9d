"""Shared plumbing for delimited files: compression, delimiter and header handling."""
from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path
from typing import IO, Iterator

csv.field_size_limit(1 << 24)


def open_text(path: str | Path) -> IO[str]:
    """Open a text file, gunzipping `.gz` transparently; undecodable bytes are replaced."""
    path = Path(path)
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace", newline="")
    return open(path, encoding="utf-8", errors="replace", newline="")


def sniff_delimiter(path: str | Path) -> str:
    """Tab for .tsv files or a tab in the header line, else comma."""
    name = Path(path).name.lower().removesuffix(".gz")
    if name.endswith(".tsv") or name.endswith(".txt"):
        return "\t"
    with open_text(path) as fh:
        header = fh.readline()
    return "\t" if "\t" in header else ","


def read_header(path: str | Path) -> list[str]:
    """Column names of a delimited file."""
    with open_text(path) as fh:
        return next(csv.reader(fh, delimiter=sniff_delimiter(path)), [])


def iter_rows(path: str | Path) -> Iterator[dict[str, str]]:
    """Rows as dicts keyed by header; BOM and surrounding spaces removed from names."""
    delimiter = sniff_delimiter(path)
    with open_text(path) as fh:
        reader = csv.reader(fh, delimiter=delimiter, quoting=csv.QUOTE_NONE if delimiter == "\t" else
                            csv.QUOTE_MINIMAL)
        header = [h.strip().lstrip("\ufeff") for h in next(reader, [])]
        for row in reader:
            if not row or all(not c.strip() for c in row):
                continue
            yield dict(zip(header, row))
