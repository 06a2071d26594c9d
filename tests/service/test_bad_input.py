"""Every kind of bad input gets a precise 4xx, the server keeps serving, and nothing stored changes."""
import io
import json
import zipfile

import pytest
from PIL import Image
from sqlalchemy import func, select

from clibd.service.models import Job, JobItem, ReferenceRecord
from tests.service.conftest import png_bytes

GOOD = "ACGT" * 160


def _stored(client):
    with client.app.state.clibd.runtime.sessions() as s:
        return tuple(s.scalar(select(func.count()).select_from(t)) for t in (Job, JobItem, ReferenceRecord))


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def _bad_crc_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("a.png", png_bytes())
    data = bytearray(buf.getvalue())
    data[60] ^= 0xFF  # a byte of the stored member's data: its CRC no longer matches
    return bytes(data)


def _encrypted_zip() -> bytes:
    data = bytearray(_zip({"a.png": png_bytes()}))
    data[6] |= 1  # the "encrypted" flag, in the local header and in the central directory
    central = data.index(b"PK\x01\x02")
    data[central + 8] |= 1
    return bytes(data)


def _jpeg_truncated() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (200, 200), (10, 200, 30)).save(buf, format="JPEG")
    return buf.getvalue()[:300]


def _big_png(w, h) -> bytes:
    buf = io.BytesIO()
    Image.new("1", (w, h)).save(buf, format="PNG")  # 1-bit: a 20000x20000 header in a small file
    return buf.getvalue()


IDENTIFY_CASES = [
    ("not an image", {"files": [("images", ("x.jpg", b"this is text", "image/jpeg"))]}, 422, "not an image"),
    ("empty image", {"files": [("images", ("e.png", b"", "image/png"))]}, 422, "is empty"),
    ("truncated jpeg", {"files": [("images", ("t.jpg", _jpeg_truncated(), "image/jpeg"))]}, 422, "truncated"),
    ("1x1 image", {"files": [("images", ("p.png", png_bytes((1, 1)), "image/png"))]}, 422, "1x1 pixels"),
    ("20000x20000 image", {"files": [("images", ("b.png", _big_png(20000, 20000), "image/png"))]}, 413,
     "is 400 Mpx, over the limit of 50 Mpx"),
    ("9000x9000 image", {"files": [("images", ("b.png", _big_png(9000, 9000), "image/png"))]}, 413, "9000x9000"),
    ("16 images of 20 Mpx", {"files": [("images", (f"b{i}.png", _big_png(5000, 4000), "image/png"))
                                        for i in range(16)]}, 413, "320 Mpx together"),
    ("10-letter barcode", {"data": {"barcode": "ACGTACGTAC"}}, 422, "has 10 nucleotides"),
    ("10,000-letter barcode", {"data": {"barcode": "ACGT" * 2500}}, 422, "has 10000 nucleotides"),
    ("non-IUPAC letters", {"data": {"barcode": GOOD[:300] + "XZ" + GOOD[:300]}}, 422, "position 301"),
    ("RNA U", {"data": {"barcode": GOOD.replace("T", "U")}}, 422, "RNA"),
    ("650 N's", {"data": {"barcode": "N" * 650}}, 422, "only 0 determined bases"),
    ("ambiguity codes but 60 bases", {"data": {"barcode": "ACGTRYKMSW" * 15 + "N" * 300}}, 422,
     "only 60 determined bases"),
    ("FASTA without sequence", {"data": {"barcode": ">only_a_header\n"}}, 422, "no sequence"),
    ("FASTA of two specimens", {"data": {"barcode": f">a\n{GOOD}\n>b\n{GOOD}\n"}}, 422, "one barcode per specimen"),
    ("nothing sent", {"data": {}}, 422, "nothing to identify"),
    ("unknown taxon", {"data": {"barcode": GOOD, "restrict_to": "Nosuchgenus"}}, 422, "Nosuchgenus"),
    ("top_k 0", {"data": {"barcode": GOOD, "top_k": "0"}}, 422, "top_k"),
    ("top_k not a number", {"data": {"barcode": GOOD, "top_k": "many"}}, 422, "top_k"),
    ("unknown modality", {"data": {"barcode": GOOD, "modalities": "smell"}}, 422, "modalities"),
    ("a photo sent as the barcode file", {"files": {"barcode": ("b.fasta", png_bytes(), "text/plain")}}, 415,
     "not text"),
    ("control characters in the barcode", {"data": {"barcode": GOOD[:200] + "\x01\x02" + GOOD[200:]}}, 415,
     "control character"),
]


@pytest.mark.parametrize("name,kwargs,status,words", IDENTIFY_CASES, ids=[c[0] for c in IDENTIFY_CASES])
def test_identify_rejects_bad_input_precisely(client, name, kwargs, status, words):
    before = _stored(client)
    r = client.post("/v1/identify", **kwargs)
    assert r.status_code == status, r.text
    assert words.lower() in r.json()["detail"].lower()
    assert _stored(client) == before
    assert client.post("/v1/identify", data={"barcode": GOOD}).status_code == 200  # still serving


def _fasta(n):
    return "".join(f">s{i}\n{GOOD}\n" for i in range(n)).encode()


JOB_CASES = [
    ("FASTA of 0 records", {"files": {"fasta": ("a.fasta", b"", "text/plain")}}, 422, "empty"),
    ("FASTA of 50,000 records", {"files": {"fasta": ("a.fasta", _fasta(50_000), "text/plain")}}, 413, "20,000"),
    ("not FASTA", {"files": {"fasta": ("a.fasta", b"ACGT\nACGT\n", "text/plain")}}, 422,
     "line 1 comes before any '>' header"),
    ("ZIP with ../ paths", {"files": {"images_zip": ("z.zip", _zip({"../evil.png": png_bytes()}), "application/zip")}},
     422, "escapes its folder"),
    ("ZIP bomb", {"files": {"images_zip": ("z.zip", _zip({"a.png": b"\0" * (300 << 20)}), "application/zip")}},
     413, "ZIP"),
    ("not a ZIP", {"files": {"images_zip": ("z.zip", b"PK-not-really", "application/zip")}}, 422, "not a readable ZIP"),
    ("ZIP member failing its CRC", {"files": {"images_zip": ("z.zip", _bad_crc_zip(), "application/zip")}}, 422,
     "damaged"),
    ("ZIP with an encrypted member", {"files": {"images_zip": ("z.zip", _encrypted_zip(), "application/zip")}},
     422, "encrypted"),
    ("ZIP bomb of many small members", {"files": {"images_zip": (
        "z.zip", _zip({f"{i}.png": b"\0" * (256 << 10) for i in range(64)}), "application/zip")}}, 413, "in all"),
    ("CSV with wrong columns", {"files": {"manifest": ("m.csv", b"name,colour\na,red\n", "text/csv")}}, 422,
     "needs an id column"),
    ("CSV naming images not in the ZIP", {"files": {
        "manifest": ("m.csv", b"id,images\ns1,missing.png\n", "text/csv"),
        "images_zip": ("z.zip", _zip({"other.png": png_bytes()}), "application/zip")}}, 422, "missing.png"),
    ("no files", {"data": {"top_k": "5"}}, 422, "nothing to identify"),
    ("FASTA id over 256 characters", {"files": {"fasta": ("a.fasta", f">{'x' * 257} x\n{GOOD}\n".encode(),
                                                          "text/plain")}}, 422, "257 characters; at most 256"),
    ("manifest id over 256 characters", {"files": {"manifest": ("m.csv", f"id,dna\n{'y' * 300},{GOOD}\n".encode(),
                                                                "text/csv")}}, 422, "line 2: the specimen id"),
]


@pytest.mark.parametrize("name,kwargs,status,words", JOB_CASES, ids=[c[0] for c in JOB_CASES])
def test_jobs_reject_bad_uploads_and_store_nothing(client, settings, name, kwargs, status, words):
    before = _stored(client)
    r = client.post("/v1/jobs", **kwargs)
    assert r.status_code == status, r.text
    assert words.lower() in r.json()["detail"].lower()
    assert _stored(client) == before
    jobs_dir = settings.data_dir / "jobs"
    assert not jobs_dir.exists() or not any(jobs_dir.iterdir())  # no files left behind either


def test_upload_over_the_configured_limit_is_refused_before_reading(service_assets, tmp_path):
    from fastapi.testclient import TestClient

    from clibd.service.api.main import create_app
    from tests.service.conftest import make_settings
    with TestClient(create_app(make_settings(service_assets, tmp_path / "d", max_upload_mb=1))) as c:
        r = c.post("/v1/jobs", files={"fasta": ("a.fasta", b">a\n" + b"A" * (100 << 20), "text/plain")})
        assert r.status_code == 413 and "over the limit of 1 MB" in r.json()["detail"]
        assert c.get("/healthz").status_code == 200

        def chunks():  # no Content-Length: the body is sent chunked, and counted as it arrives
            yield b"--x\r\nContent-Disposition: form-data; name=\"barcode\"\r\n\r\n"
            for _ in range(40):
                yield b"A" * (64 << 10)
        r = c.post("/v1/identify", content=chunks(), headers={"content-type": "multipart/form-data; boundary=x"})
        assert r.status_code == 413 and "over the limit of 1 MB" in r.json()["detail"]
        assert c.get("/healthz").status_code == 200


def test_malformed_json_unknown_job_and_bad_format(client):
    r = client.post("/v1/identify", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
    r = client.get("/v1/jobs/00000000-0000-0000-0000-000000000000")
    assert r.status_code == 404 and "no job with id" in r.json()["detail"]
    assert client.get("/v1/jobs/x/results", params={"format": "xml"}).status_code == 422


@pytest.mark.parametrize("url", ["/v1/jobs/ab%00cd", "/v1/jobs/x/results?format=%00",
                                 "/v1/admin/references?taxon=a%00b"])
def test_a_nul_character_in_the_url_is_a_400(client, url):
    r = client.get(url)  # PostgreSQL cannot hold NUL: it used to reach the database as a 500
    assert r.status_code == 400 and "NUL" in r.json()["detail"]
    assert client.get("/healthz").status_code == 200


def test_admin_needs_a_valid_key(client):
    r = client.post("/v1/admin/references", data={"id": "R1", "species": "A b", "dna": GOOD})
    assert r.status_code == 401 and "API key" in r.json()["detail"]
    r = client.post("/v1/admin/references", data={"id": "R1", "species": "A b", "dna": GOOD},
                    headers={"X-API-Key": "clibd_wrong"})
    assert r.status_code == 403
    assert client.get("/v1/admin/references", headers={"Authorization": "Bearer nope"}).status_code == 403
    assert _stored(client)[2] == 0


def test_validation_errors_are_json_serialisable(client):
    r = client.post("/v1/admin/references", headers={"X-API-Key": "k"}, data={})
    assert r.status_code in (401, 403, 422)
    json.dumps(r.json())


def test_an_unexpected_error_is_a_counted_json_500_and_the_server_keeps_serving(client):
    identifier = client.app.state.clibd.runtime.require()
    real = identifier.answer

    def broken(*args, **kwargs):  # isolates the error path: a bug deep inside identification
        raise ZeroDivisionError("a bug")
    identifier.answer = broken
    try:
        r = client.post("/v1/identify", data={"barcode": GOOD})
    finally:
        identifier.answer = real
    assert r.status_code == 500 and r.headers["content-type"].startswith("application/problem+json")
    assert "incident" in r.json()["detail"] and "ZeroDivision" not in r.text  # no internals leak
    metrics = client.get("/metrics").text
    assert 'clibd_http_requests_total{route="/v1/identify",status="500"} 1.0' in metrics
    assert client.post("/v1/identify", data={"barcode": GOOD}).status_code == 200


def test_large_decodes_hand_their_memory_back(monkeypatch):
    """After a request decoded many pixels, freed heap pages go back to the system (glibc malloc_trim); the
    trim itself is replaced by a recorder here, to see when it is called."""
    from clibd.service import inputs, memory
    from clibd.service.settings import Settings

    import sys
    if sys.platform.startswith("linux"):  # glibc: the trim must be reachable, or the hand-back never happens
        assert memory._LIBC is not None and memory.release_free_memory() is True
    calls = []
    monkeypatch.setattr(inputs, "release_free_memory", lambda: calls.append(1) or True)
    big, small = io.BytesIO(), io.BytesIO()
    Image.new("RGB", (5000, 4000)).save(big, format="PNG")
    Image.new("RGB", (300, 200)).save(small, format="PNG")
    limits = Settings().limits
    inputs.read_images([(small.getvalue(), "small.png")], limits)
    assert calls == []
    out = inputs.read_images([(big.getvalue(), "big.png")], limits)
    assert calls == [1] and max(out[0].size) <= limits.max_side


def test_a_keep_alive_connection_survives_a_500_on_a_real_server(settings):
    """Over real HTTP (uvicorn): the 500's connection stays open and carries the next request."""
    import socket
    import threading
    import time

    import httpx
    import uvicorn

    from clibd.service.api.main import create_app

    app = create_app(settings)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        identifier = app.state.clibd.runtime.require()
        real = identifier.answer
        peers = []
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60,
                          limits=httpx.Limits(max_connections=1, max_keepalive_connections=1)) as c:
            identifier.answer = lambda *a, **k: 1 / 0  # isolates the error path: a bug inside identification
            try:
                bad = c.post("/v1/identify", data={"barcode": GOOD})
                peers.append(bad.extensions["network_stream"].get_extra_info("client_addr"))
            finally:
                identifier.answer = real
            good = c.post("/v1/identify", data={"barcode": GOOD})
            peers.append(good.extensions["network_stream"].get_extra_info("client_addr"))
        assert bad.status_code == 500 and bad.headers.get("connection") != "close"
        assert good.status_code == 200
        assert peers[0] == peers[1]  # the same TCP connection (same local port) carried both requests
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_a_database_that_went_away_is_a_503_and_identification_goes_on(client, settings):
    """The database stops answering after start-up (a restart, a failover): what needs it is a 503 with
    Retry-After (it was a 500 "unexpected error"), /v1/identify needs none and answers. Isolated here by pointing
    the app's sessions at a real PostgreSQL URL on a port nothing listens on."""
    import socket

    from clibd.service.db import make_engine, session_factory
    runtime = client.app.state.clibd.runtime
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    working = runtime.sessions
    runtime.sessions = session_factory(make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{port}/gone"))
    try:
        assert client.post("/v1/identify", data={"barcode": GOOD}).status_code == 200
        r = client.post("/v1/jobs", files={"fasta": ("a.fasta", f">a\n{GOOD}\n".encode(), "text/plain")})
        assert r.status_code == 503 and r.headers["retry-after"] == "5", r.text
        assert r.json()["detail"].startswith("the database cannot be reached now (connection failed")
        assert client.get("/v1/jobs/00000000-0000-0000-0000-000000000000").status_code == 503
        assert client.get("/v1/admin/references", headers={"X-API-Key": "clibd_x"}).status_code == 503
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["problems"][0].startswith("database:")
    finally:
        runtime.sessions = working
    jobs_dir = settings.data_dir / "jobs"
    assert not jobs_dir.exists() or not any(jobs_dir.iterdir())  # the refused job left no files
    assert _stored(client) == (0, 0, 0)
    again = client.post("/v1/jobs", files={"fasta": ("a.fasta", f">a\n{GOOD}\n".encode(), "text/plain")})
    assert again.status_code == 202  # back: served as before
