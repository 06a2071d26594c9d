"""A running service over a tiny model: synthetic references, an index, calibration, SQLite and a real
Celery worker on the embedded filesystem queue (or Redis/PostgreSQL where those servers run)."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from clibd import create_model, save_checkpoint
from clibd.cli import main as clibd_main
from clibd.readers import read_records
from clibd.service.settings import Settings


@pytest.fixture(scope="session")
def service_assets(synth_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A checkpoint and an index of the seen species' keys, calibrated on the validation splits."""
    root = tmp_path_factory.mktemp("svc")
    ckpt = save_checkpoint(create_model("clibd-tiny"), root / "model.pt")
    records = synth_dir / "partition" / "records.tsv"
    assert clibd_main(["index", "build", "--checkpoint", str(ckpt), "--records", str(records),
                       "--out", str(root / "index"), "--splits", "key_seen"]) == 0
    assert clibd_main(["calibrate", "--checkpoint", str(ckpt), "--index-root", str(root / "index"),
                       "--records", str(records)]) == 0
    return {"checkpoint": ckpt, "index": root / "index", "records": read_records(records)}


def make_settings(assets: dict, data_dir: Path, **extra) -> Settings:
    """Settings for a test service in its own data folder (SQLite + filesystem queue unless overridden)."""
    return Settings(checkpoint=assets["checkpoint"], index_root=assets["index"], data_dir=data_dir,
                    batch_wait_ms=2, **extra)


@pytest.fixture
def settings(service_assets: dict, tmp_path: Path) -> Settings:
    """Embedded-default settings in a fresh data folder."""
    return make_settings(service_assets, tmp_path / "data")


@pytest.fixture
def client(settings: Settings):
    """The real app over the real model, index and SQLite database."""
    from clibd.service.api.main import create_app
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture
def worker(settings: Settings):
    """A real Celery worker (solo pool, in a thread) consuming the same queue as the app."""
    from celery.contrib.testing.worker import start_worker

    from clibd.service.celery_app import make_celery
    app = make_celery(settings)
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        yield app


def png_bytes(size=(64, 64), color=(120, 80, 40)) -> bytes:
    """A small valid PNG."""
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()
