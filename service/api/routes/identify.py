"""POST /v1/identify: one specimen (photos and/or a barcode) -> per-rank answer with evidence."""
from __future__ import annotations

from typing import Annotated, Optional, Union

from fastapi import APIRouter, Depends, File, Form, HTTPException, UploadFile
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUpload

from clibd.service.api.deps import IdentifierDep, StateDep, count_in_flight
from clibd.service.api.metrics import IDENTIFICATIONS
from clibd.index.identifier import mean_direction
from clibd.model import MissingModalityError
from clibd.service.inputs import decode_text, parse_barcode_field, read_images
from clibd.service.schemas import IdentifyResponse, Problem

router = APIRouter(prefix="/v1", tags=["identify"])
ERRORS = {c: {"model": Problem} for c in (401, 404, 413, 422, 503)}


@router.post("/identify", response_model=IdentifyResponse, responses=ERRORS, dependencies=[Depends(count_in_flight)])
async def identify(
    state: StateDep,
    identifier: IdentifierDep,
    images: Annotated[Optional[list[UploadFile]], File(description="photos of the specimen")] = None,
    barcode: Annotated[Union[UploadFile, str, None], Form(
        description="COI barcode, raw or one-record FASTA: as text, or as a file (curl -F barcode=@x.fasta)")] = None,
    barcode_file: Annotated[Optional[UploadFile], File(description="the barcode as a FASTA file")] = None,
    top_k: Annotated[Optional[int], Form(description="neighbours to return")] = None,
    restrict_to: Annotated[Optional[str], Form(description="search only under this taxon (any rank)")] = None,
    modalities: Annotated[Optional[str], Form(description="which inputs to use: image, dna or image,dna")] = None,
) -> IdentifyResponse:
    """Identify one specimen from zero or more photos and/or one barcode."""
    s = state.runtime.settings
    limits = s.limits
    k = s.top_k if top_k is None else top_k
    if not 1 <= k <= s.max_top_k:
        raise HTTPException(422, f"top_k must be between 1 and {s.max_top_k}, got {k}")
    use = {"image", "dna"}
    if modalities:
        use = {m.strip() for m in modalities.split(",") if m.strip()}
        unknown = use - {"image", "dna"}
        if unknown or not use:
            raise HTTPException(422, f"modalities must be image, dna or image,dna; got {modalities!r}")
    if isinstance(barcode, StarletteUpload):
        barcode = decode_text(await barcode.read(), "barcode file")
    if barcode_file is not None and barcode_file.filename:
        if barcode:
            raise HTTPException(422, "send the barcode either as text (barcode) or as a file (barcode_file), not both")
        barcode = decode_text(await barcode_file.read(), "barcode file")
    uploads = [f for f in (images or []) if f.filename or f.size]
    if len(uploads) > s.max_images:
        raise HTTPException(422, f"{len(uploads)} images; at most {s.max_images} per specimen")
    dna = parse_barcode_field(barcode, limits) if barcode and barcode.strip() and "dna" in use else None
    if barcode is not None and not barcode.strip() and not uploads:
        raise HTTPException(422, "the barcode is empty")
    for modality, given in (("image", "image" in use and bool(uploads)), ("dna", dna is not None)):
        if given:
            try:
                identifier.require(modality)
            except MissingModalityError as exc:
                raise HTTPException(422, str(exc)) from None
    if "image" in use and uploads:
        raw = [(await f.read(), f.filename or "upload") for f in uploads]
        pics = await run_in_threadpool(read_images, raw, limits)  # decoding never blocks the event loop
    else:
        pics = []
    if not pics and dna is None:
        raise HTTPException(422, "nothing to identify: send at least one image (images) or a barcode (barcode)"
                            + (f" among the modalities {sorted(use)}" if modalities else ""))
    if restrict_to is not None and not identifier.searcher.has_taxon(restrict_to):
        raise HTTPException(422, f"restrict_to: no reference key carries the taxon {restrict_to!r}")
    vectors, reversed_dna = {}, False
    if pics:
        vectors["image"] = mean_direction(await state.image_batcher.submit_many(pics))
    if dna is not None:
        dna, reversed_dna = await run_in_threadpool(identifier.orient, dna)  # may index keys added meanwhile
        vectors["dna"] = (await state.dna_batcher.submit_many([dna]))[0]
    answer = await run_in_threadpool(identifier.answer, vectors, dna, k, restrict_to, reversed_dna)
    IDENTIFICATIONS.labels(answer.identification.status).inc()
    return answer
