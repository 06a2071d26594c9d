"""The measuring middleware on bare ASGI apps: what it counts, and what it does with an exception."""
from __future__ import annotations

import asyncio

import pytest

from clibd.service.api.measure import Measure
from clibd.service.api.metrics import REGISTRY


def _count(route: str, status: str) -> float:
    return REGISTRY.get_sample_value("clibd_http_requests_total", {"route": route, "status": status}) or 0.0


def _call(app) -> list[dict]:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)
    asyncio.run(Measure(app)({"type": "http", "method": "GET", "path": "/x", "headers": []}, receive, send))
    return sent


def test_a_bug_before_the_answer_becomes_a_counted_json_500():
    async def broken(scope, receive, send):
        raise ZeroDivisionError("a bug")
    before = _count("unmatched", "500")
    sent = _call(broken)
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 500
    assert b"incident" in sent[1]["body"] and b"ZeroDivision" not in sent[1]["body"]
    assert _count("unmatched", "500") == before + 1


def test_a_bug_after_the_answer_started_is_not_answered_twice():
    async def half(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise ZeroDivisionError("a bug mid-answer")
    before = _count("unmatched", "200")
    with pytest.raises(ZeroDivisionError):
        _call(half)
    assert _count("unmatched", "200") == before + 1


def test_an_answer_is_counted_with_its_status():
    async def teapot(scope, receive, send):
        await send({"type": "http.response.start", "status": 418, "headers": []})
        await send({"type": "http.response.body", "body": b"short and stout"})
    before = _count("unmatched", "418")
    sent = _call(teapot)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert _count("unmatched", "418") == before + 1
