"""Job results as JSON, CSV/TSV, or a Darwin Core occurrence + identification table."""
from __future__ import annotations

import csv
import io
import json
from typing import Iterable, Iterator

from clibd.cells import safe_row
from clibd.taxonomy import RANKS
from clibd.index.answer import Answer
from clibd.index.identify_files import barcode_strand, dwc_date, dwc_identification
from clibd.service.models import JobItem

FLAT_COLUMNS = ["specimen_id", "status", "error", "identification_status", "taxon_rank", "scientific_name",
                *RANKS, "novel_at_rank", "bin", *[f"{r}_score" for r in RANKS], "decided_by",
                "top_reference_id", "top_similarity", "top_percent_identity", "barcode_strand"]
DWC_COLUMNS = ["occurrenceID", "basisOfRecord", "scientificName", "taxonRank", "order", "family", "genus",
               "specificEpithet", "identificationQualifier", "identificationRemarks", "identifiedBy",
               "dateIdentified", "identificationReferences", "associatedSequences"]


def item_json(item: JobItem) -> dict:
    """One item as the JSON results list it."""
    return {"specimen_id": item.specimen_id, "status": item.status, "error": item.error, "result": item.result}


def flat_row(item: JobItem) -> dict:
    """One item as a flat row."""
    row = {c: "" for c in FLAT_COLUMNS}
    row.update(specimen_id=item.specimen_id, status=item.status, error=item.error or "")
    if item.result:
        res = Answer.model_validate(item.result)  # the stored dump, read back as the core's answer
        ident = res.identification
        top = res.neighbors[0] if res.neighbors else None
        row.update(identification_status=ident.status, taxon_rank=ident.taxonRank or "",
                   scientific_name=ident.scientificName or "", novel_at_rank=ident.novel_at_rank or "",
                   bin=ident.bin or "", decided_by="+".join(res.decided_by),
                   top_reference_id=top.reference_id if top else "",
                   top_similarity="" if top is None or top.similarity is None else top.similarity,
                   top_percent_identity="" if top is None or top.percent_identity is None else top.percent_identity,
                   barcode_strand=barcode_strand(res))
        for rank in RANKS:
            row[rank] = getattr(ident, rank) or ""
            row[f"{rank}_score"] = res.ranks[rank].score
    return row


def dwc_row(item: JobItem, provenance_ref: str) -> dict:
    """One item as a Darwin Core occurrence with its identification."""
    row = {c: "" for c in DWC_COLUMNS}
    row.update(occurrenceID=item.specimen_id, basisOfRecord="MaterialSample", identifiedBy="CLIBD",
               identificationReferences=provenance_ref,
               dateIdentified=dwc_date(item.finished_at if item.result else None))
    if item.dna:
        row["associatedSequences"] = "COI-5P barcode submitted with the job"
    row.update(dwc_identification(Answer.model_validate(item.result) if item.result else None, item.error))
    return row


def table(rows: Iterable[dict], columns: list[str], delimiter: str, chunk: int = 500) -> Iterator[str]:
    """Rows as CSV or TSV text, the header first, `chunk` rows per piece; no cell a spreadsheet formula
    (`clibd.cells`)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, delimiter=delimiter, lineterminator="\n")
    writer.writeheader()
    for n, row in enumerate(rows, 1):
        writer.writerow(safe_row(row))
        if n % chunk == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def _dumps(value: object) -> str:
    """Compact JSON with characters as they are, as the API's other JSON responses are written."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def json_results(progress: dict, items: Iterable[JobItem], chunk: int = 500) -> Iterator[str]:
    """`{"job": progress, "items": [...]}` as JSON text, `chunk` items per piece (`item_json`)."""
    yield '{"job":' + _dumps(progress) + ',"items":['
    piece: list[str] = []
    for n, item in enumerate(items):
        piece.append(("" if n == 0 else ",") + _dumps(item_json(item)))
        if len(piece) == chunk:
            yield "".join(piece)
            piece = []
    yield "".join(piece) + "]}"
