"""Shared plumbing for delimited files: compression, delimiter and header handling."""
from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path
from typing import IO, Iterator

from clibd.readers.encoding import WINDOWS_FALLBACK

csv.field_size_limit(1 << 24)


def open_text(path: str | Path) -> IO[str]:
    """Open a text file, gunzipping `.gz` transparently: UTF-8, where it is not, cp1252 (a spreadsheet saved on
    Windows; `encoding.WINDOWS_FALLBACK`)."""
    path = Path(path)
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors=WINDOWS_FALLBACK, newline="")
    return open(path, encoding="utf-8", errors=WINDOWS_FALLBACK, newline="")


DELIMITERS = ("\t", ";", ",")
_NAMES = {"\t": "tab", ";": "semicolon", ",": "comma"}


def sniff_delimiter(path: str | Path) -> str:
    """The delimiter that splits the header line into the most columns (tab, semicolon or comma; BOLD v5
    exports come as semicolon CSV); a one-column header: tab for .tsv/.txt, else comma."""
    with open_text(path) as fh:
        header = fh.readline()
    return delimiter_of(header, Path(path).name)


def delimiter_of(header: str, name: str = "") -> str:
    """The delimiter that splits a header line into the most columns (ties keep the order tab, semicolon,
    comma); none splits it: tab for a .tsv/.txt `name`, else comma."""
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    if counts[best]:
        return best
    return "\t" if name.lower().removesuffix(".gz").endswith((".tsv", ".txt")) else ","


def describe_columns(path: str | Path) -> str:
    """The delimiter assumed for a file and the columns it then has, for error messages."""
    delimiter = sniff_delimiter(path)
    header = read_header(path)
    shown = ", ".join(header[:12]) + (f", ... ({len(header)} in all)" if len(header) > 12 else "")
    return f"read as {_NAMES[delimiter]}-separated, its columns are: {shown or '(none)'}"


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
