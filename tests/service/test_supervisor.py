"""`clibd serve` keeps its embedded worker running: kill -9 it mid-job and the job still finishes, each
specimen answered once, while /readyz says not ready until a worker consumes again."""
import os
import signal
import socket
import subprocess
import sys
import time

import httpx

GOOD = "ACGT" * 160


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _until(check, timeout: float, what: str):
    t0 = time.time()
    while time.time() - t0 < timeout:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} not within {timeout:.0f} s")


def test_a_killed_embedded_worker_is_restarted_and_its_items_taken_over(service_assets, tmp_path):
    port = _port()
    env = {**os.environ, "CLIBD_CHECKPOINT": str(service_assets["checkpoint"]),
           "CLIBD_INDEX_ROOT": str(service_assets["index"]), "CLIBD_DATA_DIR": str(tmp_path / "data"),
           "CLIBD_PORT": str(port), "CLIBD_ITEM_LEASE_S": "3", "CLIBD_JOB_CHUNK_SIZE": "10"}
    for name in ("CLIBD_BROKER_URL", "CLIBD_DATABASE_URL", "CLIBD_RESULT_BACKEND"):
        env.pop(name, None)
    server = subprocess.Popen([sys.executable, "-m", "clibd.cli", "serve"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=30) as c:
            def ready():
                try:
                    return c.get("/readyz").status_code == 200
                except httpx.HTTPError:
                    return False
            _until(ready, 120, "the service and its worker ready")
            n = 300
            fasta = "".join(f">s{i}\n{GOOD[i % 600:] + GOOD[:i % 600]}\n" for i in range(n))
            job = c.post("/v1/jobs", files={"fasta": ("b.fasta", fasta.encode(), "text/plain")}).json()
            _until(lambda: c.get(f"/v1/jobs/{job['id']}").json()["done"] >= 20, 60, "the first answers")
            worker = c.get("/v1/info").json()["jobs"]["embedded_worker"]
            os.kill(worker["pid"], signal.SIGKILL)
            _until(lambda: c.get("/readyz").status_code == 503, 10, "/readyz saying not ready")
            progress = _until(lambda: (lambda p: p if p["status"] == "done" else None)(
                c.get(f"/v1/jobs/{job['id']}").json()), 90, "the job done after the kill")
            assert progress["done"] == n and progress["failed"] == 0
            items = c.get(job["results_url"]).json()["items"]
            assert sorted(i["specimen_id"] for i in items) == sorted(f"s{i}" for i in range(n))  # once each
            after = c.get("/v1/info").json()["jobs"]["embedded_worker"]
            assert after["restarts"] >= 1 and after["pid"] != worker["pid"] and after["alive"]
            assert c.get("/readyz").status_code == 200
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # what `docker stop`, systemd or `kill` send
        server.wait(timeout=60)
    assert not _running(after["pid"]), "the service left its worker running after SIGTERM"


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
