"""FASTA with taxonomy in the header."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, Iterator, Optional

from clibd.taxonomy import RANKS
from clibd.readers.tabular import open_text
from clibd.records import Record, clean

_SINTAX_RANKS = {"o": "order", "f": "family", "g": "genus", "s": "species"}
_BIN = re.compile(r"^BOLD:[A-Z]{3}\d{4}$")


def parse_header(header: str) -> Record:
    """Taxonomy from a FASTA header.

    Understood: SINTAX (`id;tax=o:Diptera,f:Culicidae,g:Aedes,s:Aedes_vexans;`), key=value
    (`id order=Diptera;family=...;species=...;bin=BOLD:AAA0001`) and pipes
    (`id|order|family|genus|species[|BIN]`). Anything else gives an id without taxonomy.
    """
    header = header.strip()
    fields: dict[str, Optional[str]] = {}
    if ";tax=" in header or header.startswith("tax="):
        rid, _, tax = header.partition(";tax=")
        for part in tax.rstrip(";").split(","):
            key, _, value = part.partition(":")
            if key in _SINTAX_RANKS:
                fields[_SINTAX_RANKS[key]] = value.replace("_", " ")
    elif "=" in header:
        rid, _, rest = header.partition(" ")
        for part in re.split(r"[;\s]+(?=\w+=)", rest):
            key, _, value = part.partition("=")
            key = key.strip().lower()
            if key in RANKS or key == "bin":
                fields[key] = value.strip().rstrip(";")
    elif "|" in header:
        parts = [p.strip() for p in header.split("|")]
        rid = parts[0]
        if len(parts) >= 5:
            fields.update(zip(RANKS, parts[1:5]))
            if len(parts) >= 6 and _BIN.match(parts[5]):
                fields["bin"] = parts[5]
    else:
        rid = header.split()[0] if header.split() else ""
    rid = rid.split()[0] if rid.split() else rid
    return Record(id=rid, **{k: clean(v) for k, v in fields.items()})


def fasta_entries(lines: Iterable[str]) -> Iterator[tuple[str, str]]:
    """(header, sequence) of each FASTA entry in `lines` (wrapped sequence lines joined, line endings and
    surrounding blanks dropped). Before the first header only blank and comment (`;`, `#`) lines may stand:
    anything else (a bare sequence, a table) is a ValueError naming its line, never silently skipped. The one
    FASTA parser: files and uploads."""
    header: Optional[str] = None
    chunks: list[str] = []
    for number, line in enumerate(lines, 1):
        line = line.rstrip("\r\n")
        if line.startswith(">"):
            if header is not None:
                yield header, "".join(chunks)
            header, chunks = line[1:].strip(), []
        elif header is not None:
            chunks.append(line.strip())
        elif line.strip() and not line.lstrip().startswith((";", "#")):
            raise ValueError(f"not FASTA: line {number} comes before any '>' header line "
                             f"({line.strip()[:40]!r})")
    if header is not None:
        yield header, "".join(chunks)


def read_fasta(path: str | Path) -> Iterator[Record]:
    """Records of a FASTA file (wrapped lines, any case, Windows line endings)."""
    with open_text(path) as fh:
        try:
            for header, sequence in fasta_entries(fh):
                rec = parse_header(header)
                rec.dna = sequence or None
                yield rec
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
