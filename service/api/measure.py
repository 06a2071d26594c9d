"""ASGI middleware: per-route request counts and latency, and a readable JSON 500 for a bug.

A plain ASGI class, not Starlette's `BaseHTTPMiddleware`: that one runs every request through a task group and
memory streams of its own, a visible share of a busy event loop's time.
"""
from __future__ import annotations

import logging
import time
import uuid

from fastapi.responses import JSONResponse

from clibd.service.api.metrics import LATENCY, REQUESTS

log = logging.getLogger(__name__)


class Measure:
    """Counts every HTTP request by route and status, observes its latency, and answers an exception that
    escapes the app with a JSON 500 naming an incident id (logged with the traceback), so the connection
    stays usable."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        status = 500
        started = False

        async def watched(message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
            await send(message)
        try:
            await self.app(scope, receive, watched)
        except Exception:  # a bug, not bad input: a JSON 500 the client can read, logged with an id to quote
            incident = uuid.uuid4().hex[:12]
            log.exception("unexpected error %s on %s %s", incident, scope.get("method"), scope.get("path"))
            if started:  # the answer was under way: nothing readable can be sent any more
                raise
            body = JSONResponse({"detail": f"an unexpected error on our side (incident {incident}); it was logged"},
                                status_code=500, media_type="application/problem+json")
            await send({"type": "http.response.start", "status": 500, "headers": body.raw_headers})
            await send({"type": "http.response.body", "body": body.body})
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")
            REQUESTS.labels(path, str(status)).inc()
            LATENCY.labels(path).observe(time.perf_counter() - t0)
