"""`clibd identify`: identify the specimens of FASTA files or CSV/TSV manifests, in-process or via a server.

In-process it loads the same `Identifier` the service serves; with `--server` it posts each specimen to a
running service's `/v1/identify`. Answers are appended to the output file batch by batch, so an interrupted run
keeps what it finished and `--resume` skips the ids already there (a row the interruption cut short is dropped
and done again).

A specimen's own fault (a barcode the rules refuse, an unreadable photo) is its row's `error`. A fault of the
server (unreachable, busy, 5xx) is retried with backoff; when it persists the run stops with what it finished
written, rather than filling the file with failures that `--resume` would then skip.
"""
from __future__ import annotations

import csv
import json
import socket
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

from tqdm.auto import tqdm

from clibd.cells import read_cell, safe_row
from clibd.photos import PhotoLimits, read_images
from clibd.dna_tokenizer import MAX_BARCODE_LENGTH, MIN_BARCODE_LENGTH, InvalidSequenceError, identifiable_barcode
from clibd.readers import read_records
from clibd.records import Record
from clibd.taxonomy import RANKS
from clibd.index.answer import Answer

COLUMNS = ["id", "status", "taxonRank", "scientificName", *RANKS, "novel_at_rank", "top_species", "top_identity",
           "strand", "bin", "identificationRemarks", "error"]
DWC_IDENTIFICATION = ["scientificName", "taxonRank", "order", "family", "genus", "specificEpithet",
                      "identificationQualifier", "identificationRemarks"]
DWC_COLUMNS = ["occurrenceID", *DWC_IDENTIFICATION, "identifiedBy", "dateIdentified"]
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


def dwc_date(when: Optional[datetime]) -> str:
    """Darwin Core's dateIdentified: the moment of the identification, ISO 8601 in UTC to the second; empty where
    there was none (a specimen that failed)."""
    if when is None:
        return ""
    if when.tzinfo is None:  # a database without time zones hands back UTC as naive
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def dwc_row(specimen_id: str, answer: Optional[Answer], error: Optional[str]) -> dict:
    """One answer as a Darwin Core identification row, identified now (as it is written)."""
    identified = datetime.now(timezone.utc) if answer is not None else None
    return {"occurrenceID": specimen_id, **dwc_identification(answer, error), "identifiedBy": "CLIBD",
            "dateIdentified": dwc_date(identified)}


class RunStopped(ValueError):
    """The run cannot go on: the server is unreachable or failing after the retries, or refuses what every
    specimen would send (a wrong URL or key, an unknown `restrict_to`)."""


def _columns(kind: str) -> list[str]:
    return _layouts(kind)[0]


def _layouts(kind: str) -> list[list[str]]:
    """The columns this command writes to a `kind` file, then those it once wrote (`--resume` continues such a
    file in its own columns): Darwin Core files had no dateIdentified before."""
    return [DWC_COLUMNS, [c for c in DWC_COLUMNS if c != "dateIdentified"]] if kind == "dwc" else [COLUMNS]


def _header(kind: str, columns: list[str]) -> str:
    return _delimiter(kind).join(columns) + "\n"


def _delimiter(kind: str) -> str:
    return "," if kind == "csv" else "\t"


def check_output(path: Path, kind: str) -> None:
    """Refuse (ValueError) a non-empty `path` that is not this command's output of `kind`, from its first line
    (or the start of it, where a killed run wrote no more); reads only."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, newline="") as fh:
        first = fh.readline()
    whole = first.endswith("\n")
    if kind == "jsonl":
        try:
            line = json.loads(first) if whole else None
        except ValueError:
            line = None
        if not (isinstance(line, dict) and "id" in line if whole else first.startswith('{"id": ')):
            raise ValueError(f"{path}: its first line is not an answer line of `clibd identify` (JSON with an id); "
                             "choose another --out")
        return
    headers = [_header(kind, columns) for columns in _layouts(kind)]
    if not any(first == header if whole else header.startswith(first) for header in headers):
        raise ValueError(f"{path}: its columns ({first.strip()[:200]}) are not those `clibd identify` writes to a "
                         f"{kind} file ({', '.join(_columns(kind))}); choose another --out")


def drop_partial_row(path: Path, block: int = 1 << 16) -> int:
    """Cut `path` back to its last complete line (a run killed mid-write leaves half a row), reading only its
    tail; bytes dropped."""
    if not path.exists():
        return 0
    with open(path, "r+b") as fh:
        size = end = fh.seek(0, 2)
        while end > 0:
            start = max(0, end - block)
            fh.seek(start)
            newline = fh.read(end - start).rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                break
            end = start
        else:
            keep = 0
        fh.truncate(keep)
    return size - keep


def done_ids(path: Path, kind: str) -> set[str]:
    """The specimen ids an earlier run already wrote to `path` (an output of the same kind: `check_output`)."""
    if not path.exists() or path.stat().st_size == 0:
        return set()
    if kind == "jsonl":
        ids = set()
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                ids.add(json.loads(line)["id"])
            except (ValueError, KeyError, TypeError):
                raise ValueError(f"{path}, line {n}: not an answer line of `clibd identify` (JSON with an id); "
                                 "choose another --out") from None
        return ids
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh, delimiter=_delimiter(kind))
        key = "occurrenceID" if kind == "dwc" else "id"
        return {read_cell(row[key]) for row in reader}


class Writer:
    """Appends answers to the output file in its format (the header once)."""

    def __init__(self, path: Path, kind: str) -> None:
        self.path, self.kind = path, kind
        fresh = not path.exists() or path.stat().st_size == 0
        columns = _columns(kind)
        if not fresh and kind != "jsonl":  # continued in the columns it has (`check_output` accepted them)
            with open(path, newline="") as fh:
                first = fh.readline()
            columns = next((c for c in _layouts(kind) if _header(kind, c) == first), columns)
        self.fh = open(path, "a", newline="")
        if kind != "jsonl":
            self.csv = csv.DictWriter(self.fh, fieldnames=columns, delimiter=_delimiter(kind),
                                      lineterminator="\n", extrasaction="ignore")
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
        records = read_records(path)
        if not records:  # an empty file, or one of headers only: nothing would be written, and no word said
            raise ValueError(f"{path}: no specimens in it")
        for rec in records:
            if rec.id in seen:
                raise ValueError(f"{path}: specimen id {rec.id!r} appears more than once")
            seen.add(rec.id)
            out.append(rec)
    return out


def _batches(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def identify_in_process(identifier, top_k: int, min_length: int = MIN_BARCODE_LENGTH,
                        max_length: int = MAX_BARCODE_LENGTH, photo_limits: Optional[PhotoLimits] = None,
                        restrict_to: Optional[str] = None
                        ) -> Callable[[list[Record]], list[tuple[Optional[Answer], Optional[str]]]]:
    """A batch function over a loaded `Identifier` (the service's own), refusing barcodes outside the lengths
    and reading photos under the limits (`clibd.photos`) as the service does; `restrict_to`: search only under
    that taxon (ValueError at once when no reference carries it, as the service's 422)."""
    from clibd.index.identifier import Specimen

    limits = photo_limits or PhotoLimits()
    if restrict_to is not None and not identifier.searcher.has_taxon(restrict_to):
        raise ValueError(f"--restrict-to: no reference key carries the taxon {restrict_to!r}")

    def run(batch: list[Record]) -> list[tuple[Optional[Answer], Optional[str]]]:
        specimens, results = [], []
        for rec in batch:
            try:
                # the error goes in the specimen's row, which names it
                dna = identifiable_barcode(rec.dna, min_length=min_length, max_length=max_length) if rec.dna else None
                paths = [p for p in (rec.image or "").split(";") if p]
                images = read_images([(Path(p).read_bytes(), Path(p).name) for p in paths], limits)
                if not dna and not images:
                    raise ValueError("neither a barcode nor a photo")
                specimens.append(Specimen(images=images, dna=dna))
                results.append(None)
            except (InvalidSequenceError, ValueError, OSError) as exc:
                results.append(str(exc))
        answers = iter(identifier.identify(specimens, top_k, restrict_to) if specimens else [])
        return [(None, err) if err else (next(answers), None) for err in results]
    return run


RETRY_STATUS = frozenset({429, 500, 502, 503, 504})  # the server's state, not the specimen's: try again
FATAL_STATUS = frozenset({401, 403, 404, 405})  # the same for every specimen: a wrong URL, a missing key


def _multipart(fields: list[tuple[str, Optional[str], bytes]], boundary: str) -> bytes:
    return b"".join(
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"".encode()
        + (f"; filename=\"{fname}\"\r\nContent-Type: application/octet-stream".encode() if fname else b"")
        + b"\r\n\r\n" + data + b"\r\n" for name, fname, data in fields) + f"--{boundary}--\r\n".encode()


def _http_detail(exc: urllib.error.HTTPError) -> str:
    detail = exc.read().decode(errors="replace")
    try:
        detail = json.loads(detail).get("detail", detail)
    except (ValueError, AttributeError):
        pass
    return f"HTTP {exc.code}: {detail}"


def _retry_after(exc: urllib.error.HTTPError, default: float) -> float:
    try:
        return max(0.0, float(exc.headers.get("Retry-After", default)))
    except (TypeError, ValueError):
        return default


def identify_via_server(url: str, top_k: int, timeout: float = 120.0, attempts: int = 5,
                        backoff_s: float = 1.0, parallel: int = 4,
                        restrict_to: Optional[str] = None) -> Callable[[list[Record]], list]:
    """A batch function posting each specimen to a running service's /v1/identify, `parallel` at a time (the
    service batches concurrent requests on its encoder); a server fault is tried `attempts` times (waits
    doubling from `backoff_s`, or as Retry-After says), then `RunStopped`; a refusal every specimen
    would meet (a `restrict_to` the server's references do not carry) stops the run too."""
    endpoint = url.rstrip("/") + "/v1/identify"

    def post(body: bytes, boundary: str) -> tuple[Optional[Answer], Optional[str]]:
        wait, last = backoff_s, ""
        for attempt in range(attempts):
            if attempt:
                time.sleep(wait)
                wait *= 2
            req = urllib.request.Request(endpoint, data=body, method="POST",
                                         headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
            try:
                with urllib.request.urlopen(req, timeout=timeout) as resp:
                    return Answer.model_validate_json(resp.read()), None
            except urllib.error.HTTPError as exc:
                last = _http_detail(exc)
                if exc.code in FATAL_STATUS:
                    raise RunStopped(f"{endpoint} answered {last}") from None
                if exc.code == 422 and last.startswith("HTTP 422: restrict_to:"):
                    raise RunStopped(f"{endpoint} refused the run's --restrict-to: {last}") from None
                if exc.code not in RETRY_STATUS:
                    return None, last  # the specimen's own fault (422, 413): its row says so
                wait = max(wait, _retry_after(exc, wait))
            except (urllib.error.URLError, ConnectionError, socket.timeout, TimeoutError) as exc:
                last = str(getattr(exc, "reason", exc))
        raise RunStopped(f"{endpoint} did not answer after {attempts} {'try' if attempts == 1 else 'tries'}: "
                         f"{last}")

    def one(rec: Record) -> tuple[Optional[Answer], Optional[str]]:
        fields = [("top_k", None, str(top_k).encode())]
        if restrict_to is not None:
            fields.append(("restrict_to", None, restrict_to.encode()))
        if rec.dna:
            fields.append(("barcode", None, rec.dna.encode()))
        try:
            for p in (rec.image or "").split(";"):
                if p:
                    fields.append(("images", Path(p).name, Path(p).read_bytes()))
        except OSError as exc:  # as in-process: the specimen's row names the unreadable photo
            return None, str(exc)
        boundary = uuid.uuid4().hex
        return post(_multipart(fields, boundary), boundary)

    if parallel <= 1:
        return lambda batch: [one(r) for r in batch]

    def run(batch: list[Record]) -> list[tuple[Optional[Answer], Optional[str]]]:
        with ThreadPoolExecutor(min(parallel, len(batch) or 1)) as pool:
            return list(pool.map(one, batch))  # in the batch's order; a RunStopped is raised here
    return run


def identify_files(inputs: Sequence[str], out: str | Path, run: Callable[[list[Record]], list],
                   resume: bool = False, batch_size: int = 64) -> dict[str, int]:
    """Identify every specimen of `inputs` with `run`, appending to `out`; returns counts by status."""
    out = Path(out)
    kind = output_kind(out)
    records = read_inputs(inputs)
    if out.exists() and out.stat().st_size and not resume:
        raise ValueError(f"{out} exists: pass --resume to continue it, or choose another file")
    if resume:  # a file of another kind is refused untouched; only then is a row a killed run cut short dropped
        check_output(out, kind)
        if drop_partial_row(out):
            print(f"{out}: its last row was cut short by the interrupted run; it is done again")
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
    except RunStopped as exc:
        written = sum(counts.values()) - counts["skipped"]
        raise RunStopped(f"{exc}. {written} answers of this run are in {out}; run again with --resume to "
                         "continue") from None
    finally:
        writer.close()
    return counts
