"""BIOSCAN-1M metadata TSV and BIOSCAN-5M metadata CSV."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Optional

from clibd.readers.tabular import iter_rows
from clibd.records import Record, clean


def read_bioscan1m(path: str | Path, image_root: Optional[str | Path] = None,
                   image_package: str = "cropped_256") -> Iterator[Record]:
    """BIOSCAN-1M (`uri` is the BIN, `nucraw` the barcode, `not_classified` = missing).

    Images are at `{image_root}/{image_package}/part{chunk_number}/{image_file}`; without a
    `chunk_number` column, at `{image_root}/{image_file}`.
    """
    for row in iter_rows(path):
        image = clean(row.get("image_file"))
        if image and image_root is not None:
            chunk = clean(row.get("chunk_number"))
            base = Path(image_root)
            image = str(base / image_package / f"part{chunk}" / image if chunk else base / image)
        yield Record(
            id=row["processid"].strip(),
            order=clean(row.get("order")), family=clean(row.get("family")),
            genus=clean(row.get("genus")), species=clean(row.get("species")),
            bin=clean(row.get("uri")), dna=clean(row.get("nucraw")), image=image,
        )


def read_bioscan5m(path: str | Path, image_root: Optional[str | Path] = None,
                   image_variant: str = "cropped_256") -> Iterator[Record]:
    """BIOSCAN-5M (`dna_bin`, `dna_barcode`, and its `split` column kept as the record's split).

    Images are at `{image_root}/{image_variant}/{split}/{chunk}/{processid}.jpg`.
    """
    for row in iter_rows(path):
        pid = row["processid"].strip()
        split = clean(row.get("split"))
        image = None
        if image_root is not None and split:
            chunk = clean(row.get("chunk"))
            folder = Path(image_root) / image_variant / split
            image = str((folder / chunk if chunk else folder) / f"{pid}.jpg")
        yield Record(
            id=pid,
            order=clean(row.get("order")), family=clean(row.get("family")),
            genus=clean(row.get("genus")), species=clean(row.get("species")),
            bin=clean(row.get("dna_bin")), dna=clean(row.get("dna_barcode")), image=image, split=split,
        )
