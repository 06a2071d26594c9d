"""BOLD exports: v4 TSV (`order_name`, ..., `nucleotides`) and v5 data packages (`order`, ..., `nuc`)."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Optional

from clibd.readers.tabular import describe_columns, iter_rows
from clibd.records import Record, clean

_V4 = {"order": "order_name", "family": "family_name", "genus": "genus_name", "species": "species_name",
       "dna": "nucleotides", "marker": "markercode"}
_V5 = {"order": "order", "family": "family", "genus": "genus", "species": "species", "dna": "nuc",
       "marker": "marker_code"}
_MORE = {"marker": ("marker_codes",)}


def read_bold(path: str | Path, marker: Optional[str] = "COI-5P") -> Iterator[Record]:
    """One record per `processid`: BOLD v4/v5 exports hold one row per marker, merged here.

    The barcode is the sequence of the row whose marker is `marker` (any marker when None or when
    the file has no marker column); a specimen with no such row keeps its taxonomy and no barcode.
    """
    merged: dict[str, Record] = {}
    cols: Optional[dict[str, str]] = None
    for row in iter_rows(path):
        if cols is None:
            if "processid" not in row or not ({"order_name", "order"} & set(row)):
                raise ValueError(f"{path}: not a BOLD export (needs processid and order/order_name); "
                                 f"{describe_columns(path)}")
            # each field by whichever name the file uses (a v4 file re-saved with v5's `nuc`, say, keeps its
            # barcodes), v4's first
            cols = {field: next((name for name in (_V4[field], _V5[field], *_MORE.get(field, ())) if name in row),
                                _V4[field]) for field in _V4}
        pid = row["processid"].strip()
        rec = merged.get(pid)
        if rec is None:
            rec = merged[pid] = Record(
                id=pid,
                order=clean(row.get(cols["order"])), family=clean(row.get(cols["family"])),
                genus=clean(row.get(cols["genus"])), species=clean(row.get(cols["species"])),
                bin=clean(row.get("bin_uri")), image=clean(row.get("image_file")),
            )
        row_marker = clean(row.get(cols["marker"]))
        dna = clean(row.get(cols["dna"]))
        if dna and rec.dna is None and (not marker or not row_marker or marker in row_marker.split(",")):
            rec.dna = dna
    yield from merged.values()
