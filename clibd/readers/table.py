"""A plain CSV/TSV of specimens (the project's own record file is one), with an image folder."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Optional

from clibd.readers.tabular import describe_columns, iter_rows, read_header
from clibd.records import Record, clean

ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "processid", "record_id", "sample_id", "sampleid", "specimen_id", "image_id"),
    "order": ("order", "order_name"),
    "family": ("family", "family_name"),
    "genus": ("genus", "genus_name"),
    "species": ("species", "species_name"),
    "bin": ("bin", "bin_uri", "dna_bin", "uri"),
    "dna": ("dna", "sequence", "nucleotides", "nuc", "nucraw", "dna_barcode", "barcode"),
    "image": ("image", "image_file", "image_path", "file"),
    "split": ("split",),
}


def resolve_columns(header: list[str]) -> dict[str, str]:
    """Map each record field to the first matching column (case-insensitive)."""
    lower = {h.strip().lower(): h for h in header}
    found = {}
    for name, options in ALIASES.items():
        for opt in options:
            if opt in lower:
                found[name] = lower[opt]
                break
    return found


def read_table(path: str | Path, image_root: Optional[str | Path] = None) -> Iterator[Record]:
    """Records of a CSV/TSV; relative image paths resolve against `image_root` (default: the file's folder)."""
    path = Path(path)
    cols = resolve_columns(read_header(path))
    if "id" not in cols:
        raise ValueError(f"{path}: no identifier column (one of {', '.join(ALIASES['id'])}); "
                         f"{describe_columns(path)}")
    if "dna" not in cols and "image" not in cols:
        raise ValueError(f"{path}: neither a DNA column ({', '.join(ALIASES['dna'])}) "
                         f"nor an image column ({', '.join(ALIASES['image'])}); {describe_columns(path)}")
    root = Path(image_root) if image_root is not None else path.parent
    for row in iter_rows(path):
        values = {name: clean(row.get(col)) for name, col in cols.items()}
        if not values.get("id"):
            continue
        image = values.get("image")
        if image and not Path(image).is_absolute():
            values["image"] = str(root / image)
        yield Record(**values)
