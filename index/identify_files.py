"""`clibd identify`: identify the specimens of FASTA files or CSV/TSV manifests, in-process or via a server.

In-process it loads the same `Identifier` the service serves; with `--server` it posts each specimen to a
running service's `/v1/identify`. Answers are appended to the output file batch by batch, so an interrupted run
keeps what it finished and `--resume` skips the ids already there.
"""
from __future__ import annotations

import csv
import json
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

from tqdm.auto import tqdm

from clibd.cells import read_cell, safe_row
from clibd.dna_tokenizer import MAX_BARCODE_LENGTH, MIN_BARCODE_LENGTH, InvalidSequenceError, identifiable_barcode
from clibd.readers import read_records
from clibd.records import Record
from clibd.taxonomy import RANKS
from clibd.index.answer import Answer

COLUMNS = ["id", "status", "taxonRank", "scientificName", *RANKS, "novel_at_rank", "top_species", "top_identity",
           "strand", "bin", "identificationRemarks", "error"]
DWC_IDENTIFICATION = ["scientificName", "taxonRank", "order", "family", "genus", "specificEpithet",
                      "identificationQualifier", "identificationRemarks"]
DWC_COLUMNS = ["occurrenceID", *DWC_IDENTIFICATION, "identifiedBy"]
QUALIFIERS = {"confident": "", "uncertain": "cf.", "novel": "sp. nov.?"}
SUFFIXES = (".csv", ".tsv", ".json", ".jsonl", ".dwc.tsv", ".dwc")


def output_kind(path: str | Path) -> str:
    """csv, tsv, jsonl or dwc, from the output file's name."""
    name = str(path).lower()
    if name.endswith((".dwc.tsv", ".dwc")):
        return "dwc"
    for suffix, kind in ((".csv", "csv"), (".tsv", "tsv"), (".jsonl", "jsonl"), (".json", "jsonl")):
        if name.endswith(suffix):
            return kind
    raise ValueError(f"{path}: unknown output type; name it with one of {', '.join(SUFFIXES)}")


def barcode_strand(answer: Answer) -> str:
    """plus / minus: the barcode was searched as given / as its reverse complement; empty without a barcode."""
    dna = answer.per_modality.get("dna")
    return (dna.strand or "") if dna else ""


def answer_row(specimen_id: str, answer: Optional[Answer], error: Optional[str]) -> dict:
    """One answer as a flat row of COLUMNS (names empty where not confident)."""
    row = {c: "" for c in COLUMNS}
    row.update(id=specimen_id, status="failed" if answer is None else answer.identification.status,
               error=error or "")
    if answer:
        ident = answer.identification
        row.update({k: getattr(ident, k) or "" for k in ("taxonRank", "scientificName", *RANKS, "novel_at_rank",
                                                         "bin", "identificationRemarks")})
        row["top_species"] = answer.ranks["species"].label or ""
        dna = answer.per_modality.get("dna")
        row["top_identity"] = "" if dna is None or dna.top_identity is None else dna.top_identity
        row["strand"] = barcode_strand(answer)
    return row


def dwc_identification(answer: Optional[Answer], error: Optional[str]) -> dict:
    """The Darwin Core identification terms (DWC_IDENTIFICATION) of one answer, or of its failure."""
    if answer is None:
        return {**{c: "" for c in DWC_IDENTIFICATION}, "identificationRemarks": f"not identified: {error}"}
    ident = answer.identification
    return {**{c: getattr(ident, c) or "" for c in DWC_IDENTIFICATION if c != "identificationQualifier"},
            "identificationQualifier": QUALIFIERS[ident.status]}


def dwc_row(specimen_id: str, answer: Optional[Answer], error: Optional[str]) -> dict:
    """One answer as a Darwin Core identification row."""
    return {"occurrenceID": specimen_id, **dwc_identification(answer, error), "identifiedBy": "CLIBD"}


def done_ids(path: Path, kind: str) -> set[str]:
    """The specimen ids an earlier run already wrote to `path`."""
    if not path.exists() or path.stat().st_size == 0:
        return set()
    if kind == "jsonl":
        return {json.loads(line)["id"] for line in path.read_text().splitlines() if line.strip()}
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh, delimiter="," if kind == "csv" else "\t")
        key = "occurrenceID" if kind == "dwc" else "id"
        return {read_cell(row[key]) for row in reader}


class Writer:
    """Appends answers to the output file in its format (the header once)."""

    def __init__(self, path: Path, kind: str) -> None:
        self.path, self.kind = path, kind
        fresh = not path.exists() or path.stat().st_size == 0
        self.fh = open(path, "a", newline="")
        if kind != "jsonl":
            columns = DWC_COLUMNS if kind == "dwc" else COLUMNS
            self.csv = csv.DictWriter(self.fh, fieldnames=columns, delimiter="," if kind == "csv" else "\t",
                                      lineterminator="\n")
            if fresh:
                self.csv.writeheader()

    def write(self, specimen_id: str, answer: Optional[Answer], error: Optional[str]) -> None:
        """One specimen's answer (or its error)."""
        if self.kind == "jsonl":
            dump = answer.model_dump(mode="json") if answer is not None else None
            self.fh.write(json.dumps({"id": specimen_id, "error": error, "answer": dump}) + "\n")
        else:  # no cell a spreadsheet formula (`clibd.cells`)
            row = dwc_row if self.kind == "dwc" else answer_row
            self.csv.writerow(safe_row(row(specimen_id, answer, error)))

    def flush(self) -> None:
        """Make what was written durable (a killed run keeps it)."""
        self.fh.flush()

    def close(self) -> None:
        """Close the file."""
        self.fh.close()


def read_inputs(paths: Sequence[str]) -> list[Record]:
    """Specimens of FASTA files and CSV/TSV manifests (id, dna/sequence, image), in order; ids must be unique."""
    out, seen = [], set()
    for path in paths:
        for rec in read_records(path):
            if rec.id in seen:
                raise ValueError(f"{path}: specimen id {rec.id!r} appears more than once")
            seen.add(rec.id)
            out.append(rec)
    return out


def _batches(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def identify_in_process(identifier, top_k: int, min_length: int = MIN_BARCODE_LENGTH,
                        max_length: int = MAX_BARCODE_LENGTH
                        ) -> Callable[[list[Record]], list[tuple[Optional[Answer], Optional[str]]]]:
    """A batch function over a loaded `Identifier` (the service's own), refusing barcodes outside the lengths as
    the service does."""
    from clibd.preprocess import load_image
    from clibd.index.identifier import Specimen

    def run(batch: list[Record]) -> list[tuple[Optional[Answer], Optional[str]]]:
        specimens, results = [], []
        for rec in batch:
            try:
                # the error goes in the specimen's row, which names it
                dna = identifiable_barcode(rec.dna, min_length=min_length, max_length=max_length) if rec.dna else None
                images = [load_image(p) for p in (rec.image or "").split(";") if p]
                if not dna and not images:
                    raise ValueError("neither a barcode nor a photo")
                specimens.append(Specimen(images=images, dna=dna))
                results.append(None)
            except (InvalidSequenceError, ValueError, OSError) as exc:
                results.append(str(exc))
        answers = iter(identifier.identify(specimens, top_k) if specimens else [])
        return [(None, err) if err else (next(answers), None) for err in results]
    return run


def identify_via_server(url: str, top_k: int, timeout: float = 120.0) -> Callable[[list[Record]], list]:
    """A batch function posting each specimen to a running service's /v1/identify."""
    def one(rec: Record) -> tuple[Optional[Answer], Optional[str]]:
        boundary = uuid.uuid4().hex
        parts = [("top_k", None, str(top_k).encode())]
        if rec.dna:
            parts.append(("barcode", None, rec.dna.encode()))
        for p in (rec.image or "").split(";"):
            if p:
                parts.append(("images", Path(p).name, Path(p).read_bytes()))
        body = b"".join(
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"".encode()
            + (f"; filename=\"{fname}\"\r\nContent-Type: application/octet-stream".encode() if fname else b"")
            + b"\r\n\r\n" + data + b"\r\n" for name, fname, data in parts) + f"--{boundary}--\r\n".encode()
        req = urllib.request.Request(url.rstrip("/") + "/v1/identify", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return Answer.model_validate_json(resp.read()), None
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            try:
                detail = json.loads(detail).get("detail", detail)
            except ValueError:
                pass
            return None, f"HTTP {exc.code}: {detail}"
    return lambda batch: [one(r) for r in batch]


def identify_files(inputs: Sequence[str], out: str | Path, run: Callable[[list[Record]], list],
                   resume: bool = False, batch_size: int = 64) -> dict[str, int]:
    """Identify every specimen of `inputs` with `run`, appending to `out`; returns counts by status."""
    out = Path(out)
    kind = output_kind(out)
    records = read_inputs(inputs)
    if out.exists() and out.stat().st_size and not resume:
        raise ValueError(f"{out} exists: pass --resume to continue it, or choose another file")
    skip = done_ids(out, kind) if resume else set()
    todo = [r for r in records if r.id not in skip]
    writer = Writer(out, kind)
    counts: dict[str, int] = {"skipped": len(records) - len(todo)}
    try:
        with tqdm(total=len(todo), desc="identifying", unit="specimen") as bar:
            for batch in _batches(todo, batch_size):
                for rec, (answer, error) in zip(batch, run(batch)):
                    writer.write(rec.id, answer, error)
                    status = "failed" if answer is None else answer.identification.status
                    counts[status] = counts.get(status, 0) + 1
                writer.flush()
                bar.update(len(batch))
    finally:
        writer.close()
    return counts
