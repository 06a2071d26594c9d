"""Checks on everything a user uploads: images, barcodes, FASTA files, manifests and ZIPs.

Each check raises `InputError` with an HTTP status and a message that says exactly what is wrong, before
anything is stored.
"""
from __future__ import annotations

import csv
import io
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Optional

from PIL import Image

from clibd import photos
from clibd.photos import IMAGE_SUFFIXES, InputError, PhotoLimits
from clibd.dna_tokenizer import MAX_BARCODE_LENGTH, MIN_BARCODE_LENGTH, InvalidSequenceError, identifiable_barcode
from clibd.readers.encoding import decode_text as decode_bytes
from clibd.readers.fasta import fasta_entries
from clibd.readers.table import ALIASES, resolve_columns
from clibd.readers.tabular import delimiter_of
from clibd.service.memory import TRIM_AFTER_PIXELS, release_free_memory
from clibd.service.models import SPECIMEN_ID_LENGTH


@dataclass
class Limits(PhotoLimits):
    """What one request may carry."""

    min_barcode_length: int = MIN_BARCODE_LENGTH
    max_barcode_length: int = MAX_BARCODE_LENGTH
    max_records: int = 20_000
    max_zip_members: int = 20_000
    max_unpacked_bytes: int = 2 << 30
    max_compression_ratio: float = 200.0


def read_images(images: list[tuple[bytes, str]], limits: PhotoLimits) -> list[Image.Image]:
    """The images of one request, decoded after checking their pixels together (call off the event loop); the
    full-size decode buffers of large ones are handed back to the system afterwards."""
    return photos.read_images(images, limits, release_free_memory, TRIM_AFTER_PIXELS)


def decode_text(data: bytes, what: str, notes: Optional[list[str]] = None) -> str:
    """Uploaded bytes as text (UTF-8, a BOM dropped, or cp1252 as a spreadsheet saves it on Windows:
    `clibd.readers.encoding`; then a line saying so joins `notes`); InputError 415 for binary data such as a
    photo or a ZIP."""
    text, windows = decode_bytes(data)
    if windows and _CONTROL.search(text):
        raise InputError(415, f"the {what} is not text (binary data: a photo or an archive sent in its place?)")
    check_text(text, what)
    if windows and notes is not None:
        notes.append(f"the {what} is not UTF-8: its other bytes were read as Windows-1252 (cp1252), the code page "
                     f"Excel saves CSV in on Windows; check accented names in the results")
    return text


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def check_text(text: str, what: str) -> None:
    """InputError 415 when text holds control characters (binary data that happens to decode)."""
    bad = _CONTROL.search(text)
    if bad:
        raise InputError(415, f"the {what} is not text: a control character (code {ord(bad.group())}) at "
                              f"position {bad.start() + 1}")


def check_reference_id(value: str) -> str:
    """A reference id as given (e.g. a BOLD processid), or InputError: no '.'/'..', separators, control
    characters or the text keys' 'taxon:' prefix."""
    ident = value.strip()
    if (not ident or ident in (".", "..") or any(c in ident for c in "/\\") or not ident.isprintable()
            or ident.startswith("taxon:")):
        raise InputError(422, f"invalid reference id {value!r}: it must be printable, not '.' or '..', hold no "
                              f"'/' or '\\', and not start with 'taxon:'")
    return ident


def check_name(value: Optional[str], field: str) -> None:
    """InputError (422) for a taxon name or BIN holding a control character (a database refuses NUL)."""
    value = (value or "").strip()
    if not value.isprintable():
        bad = next(c for c in value if not c.isprintable())
        raise InputError(422, f"{field} {value[:60]!r} holds a control character (code {ord(bad)}); names are "
                              f"printable text")


def check_barcode(sequence: str, limits: Limits, name: str = "barcode") -> str:
    """The normalised barcode (upper case, gaps removed), or InputError saying what is wrong with it
    (`identifiable_barcode`'s rules, with the configured lengths)."""
    check_text(sequence, name)
    try:
        return identifiable_barcode(sequence, name, limits.min_barcode_length, limits.max_barcode_length)
    except InvalidSequenceError as exc:
        raise InputError(422, str(exc)) from None


@dataclass
class FastaRecord:
    """One FASTA entry: its id (first word of the header), the full header and the raw sequence."""

    id: str
    header: str
    sequence: str


def check_specimen_id(ident: str, where: str, hint: str = "") -> None:
    """InputError (422) for a specimen id longer than a job item can hold."""
    if len(ident) > SPECIMEN_ID_LENGTH:
        raise InputError(422, f"{where}: the specimen id {ident[:40]!r}... has {len(ident):,} characters; at most "
                              f"{SPECIMEN_ID_LENGTH} are kept{hint}")


def parse_fasta(text: str, limits: Limits) -> list[FastaRecord]:
    """FASTA entries (wrapped lines, any case, CRLF); InputError for no entries or too many."""
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise InputError(422, "the FASTA file is empty")
    records: list[FastaRecord] = []
    try:
        for header, sequence in fasta_entries(text.splitlines()):
            if len(records) >= limits.max_records:
                raise InputError(413, f"the FASTA file has more than {limits.max_records:,} records, the limit "
                                      f"per request; split it into several jobs")
            ident = header.split()[0] if header else f"record{len(records) + 1}"
            check_specimen_id(ident, f"FASTA record {len(records) + 1}", " (a record's id is its header's first word)")
            records.append(FastaRecord(ident, header, sequence))
    except InputError:
        raise
    except ValueError as exc:  # text before the first header
        raise InputError(422, str(exc)) from None
    if not any(r.sequence for r in records):
        raise InputError(422, f"the FASTA file has {len(records)} header(s) but no sequence")
    return records


def parse_barcode_field(value: str, limits: Limits) -> str:
    """A barcode given raw or as a one-record FASTA, normalised."""
    if value.lstrip().startswith(">"):
        records = parse_fasta(value, limits)
        if len(records) > 1:
            raise InputError(422, f"one barcode per specimen, got a FASTA of {len(records)} records; "
                                  f"submit several specimens as a job (POST /v1/jobs)")
        return check_barcode(records[0].sequence, limits, f"barcode {records[0].id!r}")
    return check_barcode(value, limits)


# A manifest names a specimen's photos in one column, several separated by ';'.
_IMAGE_COLUMNS = ("images", "image_files") + ALIASES["image"]


@dataclass
class ManifestRow:
    """One specimen of a manifest: id, barcode text (unchecked) and image file names."""

    id: str
    dna: Optional[str] = None
    images: list[str] = field(default_factory=list)


def parse_manifest(text: str, limits: Limits) -> list[ManifestRow]:
    """Rows of a CSV/TSV manifest (id plus a DNA and/or an image column); InputError for wrong columns."""
    text = text.replace("\r\n", "\n").lstrip("\ufeff")
    if not text.strip():
        raise InputError(422, "the manifest is empty")
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter_of(text.split("\n", 1)[0]))
    fields = reader.fieldnames or []
    columns = resolve_columns(fields)  # the aliases every record reader uses
    lower = {c.strip().lower(): c for c in fields}
    id_col, dna_col = columns.get("id"), columns.get("dna")
    img_col = next((lower[c] for c in _IMAGE_COLUMNS if c in lower), None)
    if id_col is None or (dna_col is None and img_col is None):
        raise InputError(422, f"the manifest's columns are {sorted(lower)}; it needs an id column (one of "
                              f"{', '.join(ALIASES['id'])}) and a DNA column ({', '.join(ALIASES['dna'])}) and/or "
                              f"an image column ({', '.join(_IMAGE_COLUMNS)}, names separated by ';')")
    rows = []
    for n, row in enumerate(reader, start=2):
        if len(rows) >= limits.max_records:
            raise InputError(413, f"the manifest has more than {limits.max_records:,} rows, the limit per request")
        ident = (row.get(id_col) or "").strip()
        if not ident:
            raise InputError(422, f"manifest line {n} has no id")
        check_specimen_id(ident, f"manifest line {n}")
        images = [s.strip() for s in (row.get(img_col) or "").split(";") if s.strip()] if img_col else []
        dna = (row.get(dna_col) or "").strip() if dna_col else ""
        rows.append(ManifestRow(ident, dna or None, images))
    if not rows:
        raise InputError(422, "the manifest has a header but no rows")
    return rows


def safe_extract_images(data: bytes, dest: Path, limits: Limits) -> dict[str, Path]:
    """Extract the images of a ZIP under `dest` (by member path, in the archive's order); InputError for paths
    escaping it, bombs and bad archives."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise InputError(422, "the upload named as a ZIP is not a readable ZIP archive") from None
    members = [m for m in archive.infolist() if not m.is_dir()]
    encrypted = [m.filename for m in members if m.flag_bits & 0x1]
    if encrypted:
        raise InputError(422, f"ZIP member {encrypted[0]!r} is encrypted; send the images unencrypted")
    if len(members) > limits.max_zip_members:
        raise InputError(413, f"the ZIP has {len(members):,} files, over the limit of {limits.max_zip_members:,}")
    for m in members:
        parts = PurePosixPath(m.filename.replace("\\", "/")).parts
        if m.filename.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
            raise InputError(422, f"ZIP member {m.filename!r} escapes its folder")
    declared = sum(m.file_size for m in members)
    if declared > limits.max_unpacked_bytes:
        raise InputError(413, f"the ZIP would unpack to {declared / 2**20:,.0f} MB, over the limit of "
                              f"{limits.max_unpacked_bytes / 2**20:,.0f} MB")
    for m in members:
        if m.compress_size and m.file_size / m.compress_size > limits.max_compression_ratio and m.file_size > 1 << 20:
            raise InputError(413, f"ZIP member {m.filename!r} is compressed {m.file_size / m.compress_size:,.0f}:1 "
                                  f"(a ZIP bomb?); the limit is {limits.max_compression_ratio:.0f}:1")
    packed = sum(m.compress_size for m in members)
    if declared > 1 << 20 and declared > limits.max_compression_ratio * max(packed, 1):
        raise InputError(413, f"the ZIP's members are compressed {declared / max(packed, 1):,.0f}:1 in all (a ZIP "
                              f"bomb of many small members?); the limit is {limits.max_compression_ratio:.0f}:1")
    try:
        return _extract(archive, members, dest, limits)
    except (zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError, RuntimeError) as exc:
        raise InputError(422, f"the ZIP is damaged or uses an unsupported feature: {exc}") from None


def _extract(archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], dest: Path,
             limits: Limits) -> dict[str, Path]:
    out: dict[str, Path] = {}
    written = 0
    dest.mkdir(parents=True, exist_ok=True)
    for i, m in enumerate(members):
        name = PurePosixPath(m.filename.replace("\\", "/"))
        if name.suffix.lower() not in IMAGE_SUFFIXES or name.name.startswith("."):
            continue
        # each member in a folder of its own, under its own name: messages about it name the user's file
        plain = name.name.isprintable() and len(name.name.encode()) <= 200
        target = dest / f"{i:06d}" / (name.name if plain else f"{i:06d}{name.suffix.lower()}")
        target.parent.mkdir()
        with archive.open(m) as src, open(target, "wb") as dst:
            while chunk := src.read(1 << 20):  # count real bytes: headers can lie
                written += len(chunk)
                if written > limits.max_unpacked_bytes:
                    raise InputError(413, "the ZIP unpacks to more than the declared size limit")
                dst.write(chunk)
        out[str(name)] = target
    if not out:
        raise InputError(422, f"the ZIP holds no images (looked for {', '.join(IMAGE_SUFFIXES)})")
    return out
