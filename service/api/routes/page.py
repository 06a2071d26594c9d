"""The page for people (GET /) and the reference thumbnails it shows."""
from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.concurrency import run_in_threadpool
from PIL import Image

from clibd.service.api.deps import IdentifierDep, StateDep

STATIC = Path(__file__).resolve().parents[2] / "static"
router = APIRouter(tags=["page"])


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def page() -> HTMLResponse:
    """The identification page."""
    return HTMLResponse((STATIC / "index.html").read_text())


@router.get("/static/{name}", include_in_schema=False)
def static(name: str) -> FileResponse:
    """The page's script and style (only files of the static folder)."""
    path = (STATIC / name).resolve()
    if path.parent != STATIC or not path.is_file():
        raise HTTPException(404, f"no static file {name!r}")
    return FileResponse(path)


@router.get("/v1/references/{ref_id}/thumbnail", responses={404: {"description": "no image key with this id"}})
async def thumbnail(state: StateDep, identifier: IdentifierDep, ref_id: str, size: int = 160) -> FileResponse:
    """A small JPEG of a reference's image key (only image keys of the served index are reachable)."""
    if not 16 <= size <= 512:
        raise HTTPException(422, "size must be between 16 and 512")
    rec = identifier.searcher.find(ref_id, "image")
    if rec is None or not rec.image or not Path(rec.image).is_file():
        raise HTTPException(404, f"no image key with id {ref_id!r}")
    name = hashlib.sha1(f"{rec.image}|{size}".encode()).hexdigest()
    cache = state.runtime.settings.data_dir / "thumbnails" / f"{name}.jpg"
    if not cache.exists():
        def make() -> None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            with Image.open(rec.image) as img:
                img = img.convert("RGB")
                img.thumbnail((size, size))
                tmp = cache.with_name(f".{cache.stem}.{uuid.uuid4().hex}.jpg")  # two requests may make it at once
                img.save(tmp, quality=85)
                tmp.replace(cache)
        await run_in_threadpool(make)
    return FileResponse(cache, media_type="image/jpeg")
