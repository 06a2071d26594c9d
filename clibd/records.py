"""The one record type every reader produces, and its plain TSV form."""
from __future__ import annotations

import csv
import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

from clibd.taxonomy import RANKS

# Values that mean "no label" in the formats we read (BIOSCAN-1M, BOLD v5 exports, spreadsheets).
MISSING_VALUES = frozenset({"", "not_classified", "none", "nan", "na", "n/a", "null"})


SYNTHETIC_NOTICE = "SYNTHETIC.md"  # beside a records file: its taxa, barcodes and images are invented


def clean(value: Optional[str]) -> Optional[str]:
    """Strip a field; the formats' spellings of "missing" become None."""
    if value is None:
        return None
    value = value.strip()
    return None if value.lower() in MISSING_VALUES else value


@dataclass
class Record:
    """One specimen: identifier, taxonomy (order..species), BIN, barcode, image path and split."""

    id: str
    order: Optional[str] = None
    family: Optional[str] = None
    genus: Optional[str] = None
    species: Optional[str] = None
    bin: Optional[str] = None
    dna: Optional[str] = None
    image: Optional[str] = None
    split: Optional[str] = None

    def taxonomy(self) -> dict[str, Optional[str]]:
        """The ranks order..species as a dict."""
        return {rank: getattr(self, rank) for rank in RANKS}

    def label(self, rank: str) -> Optional[str]:
        """The name at `rank`, or None."""
        return getattr(self, rank)

    def has(self, modality: str) -> bool:
        """Whether the record carries "image" (a photo path), "dna" (a valid barcode), or every part of
        "image+dna". The one such check of the project."""
        from clibd.dna_tokenizer import try_normalize  # here, not at the top: reading records needs no torch
        for part in modality.split("+"):
            if part == "image":
                if not self.image:
                    return False
            elif part == "dna":
                if try_normalize(self.dna) is None:
                    return False
            else:
                raise ValueError(f"unknown modality {part!r} (image, dna or image+dna)")
        return True


def distinct_taxa(records: Iterable[Record]) -> list[Record]:
    """The first record of every distinct taxonomy (order..species) that names at least one rank."""
    first: dict[tuple, Record] = {}
    for rec in records:
        names = tuple(rec.taxonomy().values())
        if any(names):
            first.setdefault(names, rec)
    return list(first.values())


FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Record))


def write_records(records: Iterable[Record], path: str | Path) -> int:
    """Write records as the project's plain TSV (readable by `read_table`); returns the count.

    Image paths (valid from the working directory) are written relative to the file's folder.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(FIELDS)
        for rec in records:
            row = {f: getattr(rec, f) for f in FIELDS}
            if row["image"] and not os.path.isabs(row["image"]):
                row["image"] = os.path.relpath(row["image"], path.parent)
            writer.writerow(["" if row[f] is None else row[f] for f in FIELDS])
            n += 1
    tmp.replace(path)
    return n
