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


def test_a_job_submitted_while_redis_is_down_is_kept_and_runs_once_it_is_back(service_assets, tmp_path):
    """With the broker down, POST /v1/jobs answered a 500 after ~20 s of retries and left the job stored but never
    queued; now it answers 202 at once with a note, /readyz names the queue, and once Redis is back the workers'
    recovery sweep dispatches the job's items."""
    import shutil
    import socket

    from celery.contrib.testing.worker import start_worker

    from clibd.service.celery_app import make_celery
    from clibd.service.tasks import dispatch_recoverable
    from tests.service.test_jobs import _wait
    if shutil.which("redis-server") is None:
        pytest.skip("no redis-server on this machine to bring the broker back with")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"redis://127.0.0.1:{port}/0"
    settings = make_settings(service_assets, tmp_path / "data", broker_url=url, result_backend=url, item_lease_s=1.0)
    with TestClient(create_app(settings)) as client:
        fasta = f">s1\n{GOOD}\n>s2\n{GOOD[5:]}\n".encode()
        r = client.post("/v1/jobs", files={"fasta": ("b.fasta", fasta, "text/plain")})
        assert r.status_code == 202 and "job queue cannot be reached now" in r.json()["note"], r.text
        assert f"127.0.0.1:{port}" in r.json()["note"]
        job = r.json()
        ready = client.get("/readyz")
        assert ready.status_code == 503 and any(p.startswith("job queue:") for p in ready.json()["problems"])
        assert client.get(f"/v1/jobs/{job['id']}").json()["pending"] == 2  # kept, waiting
        server = subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):  # until it accepts connections
                if client.get("/readyz").status_code == 200:
                    break
                time.sleep(0.1)
            assert client.get("/readyz").status_code == 200
            app = make_celery(settings)
            factory = session_factory(create_engine(settings.sqlalchemy_url))
            with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
                time.sleep(1.2)  # the job is older than the lease: its pending items count as lost
                dispatch_recoverable(app, factory, settings)  # the sweep a worker runs (its own may come first)
                progress = _wait(client, job["id"])
            assert progress["done"] == 2 and progress["failed"] == 0
        finally:
            server.terminate()
            server.wait(timeout=30)
