"""The FastAPI app: routers, error handlers, the upload limit, and the objects loaded once in the lifespan."""
from __future__ import annotations

import asyncio
import logging

from contextlib import asynccontextmanager
from typing import Optional

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import OperationalError

from clibd import torch_thread
from clibd.index.searcher import UnknownTaxonError, set_search_threads
from clibd.service.api.deps import AppState
from clibd.service.api.measure import Measure
from clibd.service.api.routes import admin, health, identify, jobs, page
from clibd.service.batching import MicroBatcher
from clibd.service.celery_app import make_celery
from clibd.service.inputs import InputError
from clibd.service.runtime import Runtime
from clibd.service.settings import Settings, get_settings
from clibd.service.supervisor import WorkerSupervisor


log = logging.getLogger(__name__)


class BodyLimit:
    """ASGI middleware: 413 for a request body over the limit, before the body is read into memory."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._reject(send, int(declared))
        seen, over, answered = 0, False, False

        async def limited():
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    over = True
                    raise _TooLarge()
            return message

        async def guarded(message) -> None:  # a body parser may turn our signal into its own 400: answer 413
            nonlocal answered
            if over:
                if not answered:
                    answered = True
                    await self._reject(send, seen)
                return
            await send(message)
        try:
            await self.app(scope, limited, guarded)
        except _TooLarge:
            if not answered:
                await self._reject(send, seen)

    async def _reject(self, send, size: int) -> None:
        await send_problem(send, 413, f"the request body ({size / 2**20:,.1f} MB or more) is over the limit of "
                                      f"{self.max_bytes / 2**20:,.0f} MB")


async def send_problem(send, status: int, detail: str) -> None:
    """Answer `{"detail": ...}` with `status` from an ASGI middleware, before the app sees the request."""
    body = JSONResponse({"detail": detail}, status_code=status)
    await send({"type": "http.response.start", "status": status, "headers": body.raw_headers})
    await send({"type": "http.response.body", "body": body.body})


class _TooLarge(Exception):
    pass


class NoNul:
    """ASGI middleware: 400 for a URL whose path or query holds a NUL character (%00): no id, name or option of
    this API contains one, and a database refuses it (PostgreSQL text cannot hold NUL)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and ("\x00" in scope.get("path", "")
                                        or b"%00" in scope.get("query_string", b"")):
            return await send_problem(send, 400, "the URL holds a NUL character (%00); no id, name or option has one")
        await self.app(scope, receive, send)


def create_app(settings: Optional[Settings] = None, runtime: Optional[Runtime] = None,
               supervisor: Optional[WorkerSupervisor] = None) -> FastAPI:
    """The app for these settings (a prepared runtime may be passed in, as tests do; `clibd serve` passes the
    supervisor of its embedded worker, whose liveness /readyz then reports)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        set_search_threads(settings.search_threads or None)  # requests search side by side (see Settings)
        rt = runtime or Runtime.start(settings)
        state = AppState(runtime=rt, celery=make_celery(settings), supervisor=supervisor)

        def encode(modality: str):
            return lambda items: getattr(rt.require(), f"encode_{modality}")(items)
        def in_flight() -> int:
            return state.in_flight
        state.dna_batcher = MicroBatcher(encode("dna"), settings.batch_max_size, settings.batch_wait_ms,
                                         executor=torch_thread.executor(), in_flight=in_flight)
        state.image_batcher = MicroBatcher(encode("images"), settings.batch_max_size, settings.batch_wait_ms,
                                           executor=torch_thread.executor(), in_flight=in_flight)
        app.state.clibd = state
        rt.start_refresher()
        yield
        rt.stop_refresher()
        await state.dna_batcher.close()
        await state.image_batcher.close()
        if supervisor is not None:  # here, not after uvicorn returns: on SIGTERM it re-raises the signal and the
            await asyncio.to_thread(supervisor.stop)  # process dies before any code after it runs

    app = FastAPI(title="CLIBD species identification", version="1", lifespan=lifespan, docs_url=None,
                  redoc_url=None,
                  description="Identify insects from photos and COI barcodes against labelled reference keys; "
                              "per-rank confidence and an honest 'new species of genus X'.")
    for router in (page.router, health.router, identify.router, jobs.router, admin.router):
        app.include_router(router)
    add_docs(app)

    @app.exception_handler(InputError)
    async def _input_error(_: Request, exc: InputError) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=exc.status)

    @app.exception_handler(UnknownTaxonError)
    async def _unknown_taxon(_: Request, exc: UnknownTaxonError) -> JSONResponse:
        return JSONResponse({"detail": f"restrict_to: {exc}"}, status_code=422)

    @app.exception_handler(OperationalError)
    async def _database_down(_: Request, exc: OperationalError) -> JSONResponse:
        # the database is unreachable or busy (a restart, a failover, SQLite locked): a retry helps, a 500 says
        # nothing; identification itself needs no database and goes on
        reason = " ".join(str(exc.orig or exc).split())[:300]
        log.warning("database unavailable: %s", reason)
        return JSONResponse({"detail": f"the database cannot be reached now ({reason}); nothing was changed, "
                                       f"try again shortly"}, status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            where = ".".join(str(x) for x in err.get("loc", []) if x != "body") or "request"
            parts.append(f"{where}: {err.get('msg')}")
        return JSONResponse({"detail": "; ".join(parts), "errors": jsonable(exc.errors())}, status_code=422)

    app.add_middleware(Measure)  # inside BodyLimit: a 413 is answered before it is counted
    app.add_middleware(BodyLimit, max_bytes=int(settings.max_upload_mb * 2**20))
    app.add_middleware(NoNul)
    return app


def add_docs(app: FastAPI) -> None:
    """Swagger UI at /docs from files shipped in a Python package, so it works without internet (the stock
    page loads its script from a CDN and stays blank offline)."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:  # not installed: the stock page, which needs internet
        swagger_ui_path = None
    if swagger_ui_path is not None:
        app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        local = {"swagger_js_url": "/docs-assets/swagger-ui-bundle.js", "swagger_css_url": "/docs-assets/swagger-ui.css",
                 "swagger_favicon_url": "/docs-assets/favicon-32x32.png"} if swagger_ui_path else {}
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title} - API", **local)


def jsonable(errors: list) -> list:
    """Validation errors with only JSON-safe values."""
    return [{k: (v if isinstance(v, (str, int, float, list, type(None))) else str(v)) for k, v in e.items()}
            for e in errors]
