"""PostgreSQL + Redis, as in production: migrations, jobs through a worker process, and a worker killed mid-job.

Skips with the reason when this machine runs no PostgreSQL or Redis (a laptop); the embedded default
(SQLite + filesystem queue) is what the other service tests use.
"""
import os
import signal
import subprocess
import sys
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text

from clibd.service.api.main import create_app
from clibd.service.db import migrate, session_factory
from clibd.service.models import JobItem
from tests.service.conftest import make_settings

PG = os.environ.get("CLIBD_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("CLIBD_TEST_REDIS", "redis://127.0.0.1:6379/15")
GOOD = "ACGT" * 160


@pytest.fixture
def stack():
    """PostgreSQL (tables dropped and migrated afresh) and a flushed Redis database, or skip."""
    try:
        import redis
        redis.Redis.from_url(REDIS, socket_connect_timeout=1).flushdb()
    except Exception as exc:
        pytest.skip(f"no Redis at {REDIS}: {exc}")
    try:
        engine = create_engine(PG, connect_args={"connect_timeout": 2})
        with engine.begin() as conn:
            for table in ("job_items", "jobs", "api_keys", "reference_records", "alembic_version"):
                conn.execute(text(f"DROP TABLE IF EXISTS {table} CASCADE"))
        engine.dispose()
    except Exception as exc:
        pytest.skip(f"no PostgreSQL at {PG.split('@')[-1]}: {exc}")
    migrate(PG)
    return {"database_url": PG, "broker_url": REDIS, "result_backend": REDIS}


def _worker(env):
    return subprocess.Popen([sys.executable, "-m", "clibd.cli", "worker", "--pool", "solo"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _items(url, job_id):
    engine = create_engine(url)
    with session_factory(engine)() as s:
        rows = s.scalars(select(JobItem).where(JobItem.job_id == job_id)).all()
    engine.dispose()
    return rows


def test_killed_worker_loses_nothing_and_repeats_nothing(stack, service_assets, tmp_path):
    settings = make_settings(service_assets, tmp_path / "data", job_chunk_size=10, item_lease_s=3, **stack)
    env = {**os.environ, "CLIBD_CHECKPOINT": str(settings.checkpoint), "CLIBD_INDEX_ROOT": str(settings.index_root),
           "CLIBD_DATA_DIR": str(settings.data_dir), "CLIBD_DATABASE_URL": PG, "CLIBD_BROKER_URL": REDIS,
           "CLIBD_RESULT_BACKEND": REDIS, "CLIBD_ITEM_LEASE_S": "3", "CLIBD_JOB_CHUNK_SIZE": "10"}
    n = 400
    fasta = "".join(f">s{i}\n{GOOD[i % 600:] + GOOD[:i % 600]}\n" for i in range(n))
    with TestClient(__import__("clibd.service.api.main", fromlist=["create_app"]).create_app(settings)) as client:
        job = client.post("/v1/jobs", files={"fasta": ("b.fasta", fasta.encode(), "text/plain")}).json()
        first = _worker(env)
        t0 = time.time()
        while time.time() - t0 < 120:
            done = sum(i.status == "done" for i in _items(PG, job["id"]))
            if done >= 40:
                break
            time.sleep(0.05)
        os.killpg(first.pid, signal.SIGKILL)  # no warning, no cleanup: mid-job
        first.wait()
        at_kill = _items(PG, job["id"])
        assert 0 < sum(i.status == "done" for i in at_kill) < n
        second = _worker(env)
        try:
            t0 = time.time()
            while client.get(f"/v1/jobs/{job['id']}").json()["status"] != "done" and time.time() - t0 < 180:
                time.sleep(0.5)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=60)
        progress = client.get(f"/v1/jobs/{job['id']}").json()
        assert progress["status"] == "done" and progress["done"] == n and progress["failed"] == 0
        results = client.get(job["results_url"]).json()["items"]
        assert sorted(r["specimen_id"] for r in results) == sorted(f"s{i}" for i in range(n))  # each exactly once
        assert all(r["result"]["neighbors"] for r in results)
        final = _items(PG, job["id"])
        assert all(i.finished_at is not None for i in final)
        # items finished before the kill were not done again; at least one chunk was taken over after it
        done_before = {i.id: i.finished_at for i in at_kill if i.status == "done"}
        assert all(i.finished_at == done_before[i.id] for i in final if i.id in done_before)
        # the dead worker's claims were taken over (a second attempt); nothing done before the kill ran again
        running_at_kill = {i.id for i in at_kill if i.status == "running"}
        assert all(i.attempts >= 2 for i in final if i.id in running_at_kill)
        assert all(i.attempts == 1 for i in final if i.id in done_before)
        assert all(i.claim_token is None for i in final)


def test_input_postgresql_cannot_hold_is_a_4xx_and_stores_nothing(stack, service_assets, tmp_path, capsys):
    """Over-long names and ids and NUL characters: SQLite stores them, PostgreSQL refuses them (they were 500s
    there); both now answer the same 4xx before anything is stored."""
    from tests.service.test_admin import _key
    settings = make_settings(service_assets, tmp_path / "data", **stack)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        hdr = _key(settings, capsys)
        base = {"id": "R1", "order": "O", "family": "F", "genus": "G", "species": "G s", "dna": GOOD}
        for field, value in (("genus", "G" * 200), ("species", "G " + "s" * 300), ("bin", "B" * 100),
                             ("family", "F\x00x")):
            r = client.post("/v1/admin/references", headers=hdr, data={**base, field: value})
            assert r.status_code == 422 and field in r.json()["detail"], r.text
        for url in ("/v1/jobs/ab%00cd", "/v1/admin/references?taxon=a%00b", "/v1/admin/references?status=%00"):
            assert client.get(url, headers=hdr).status_code == 400
        assert client.delete("/v1/admin/references/a%00b", headers=hdr).status_code == 400
        r = client.post("/v1/jobs", files={"fasta": ("b.fasta", f">{'x' * 300}\n{GOOD}\n".encode(), "text/plain")})
        assert r.status_code == 422 and "at most 256" in r.json()["detail"]
        assert client.get("/healthz").status_code == 200
    engine = create_engine(PG)
    with engine.begin() as conn:
        assert [conn.execute(text(f"SELECT count(*) FROM {t}")).scalar() for t in
                ("reference_records", "jobs", "job_items")] == [0, 0, 0]
    engine.dispose()
