"""Subcommands of `clibd` contributed by the service: serve, worker, migrate, apikey, jobs."""
from __future__ import annotations

import argparse
import os
import sys

_FMT = argparse.ArgumentDefaultsHelpFormatter


def _settings(args: argparse.Namespace):
    from clibd.service.settings import Settings
    overrides = {k: v for k, v in {"checkpoint": getattr(args, "checkpoint", None),
                                   "index_root": getattr(args, "index_root", None),
                                   "data_dir": getattr(args, "data_dir", None),
                                   "database_url": getattr(args, "database_url", None),
                                   "host": getattr(args, "host", None), "port": getattr(args, "port", None),
                                   }.items() if v is not None}
    return Settings(**overrides)


def _env_for(settings) -> dict:
    """Environment for a child process with the same settings."""
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        if value is not None:
            env[f"CLIBD_{name.upper()}"] = str(value)
    return env


def worker_command(concurrency: int, pool: str = "prefork") -> list[str]:
    """The command line of a worker process."""
    return [sys.executable, "-m", "celery", "-A", "clibd.service.celery_app", "worker", "--loglevel", "INFO",
            "--concurrency", str(concurrency), "--pool", pool, "-Q", "celery"]


def examples(settings) -> list[str]:
    """curl commands that identify a reference barcode and a reference photo of the served index."""
    import json as _json

    from clibd.index.snapshot import current_snapshot_dir
    folder = current_snapshot_dir(settings.index_root)
    url = f"http://{settings.host}:{settings.port}"
    lines = []
    for modality in ("dna", "image"):
        path = folder / f"{modality}.records.jsonl"
        if not path.exists():
            continue
        with open(path) as fh:
            rec = _json.loads(fh.readline())
        if modality == "dna" and rec.get("dna"):
            lines.append(f"# a barcode of {rec.get('species') or rec.get('genus')} ({rec['id']}):")
            lines.append(f"curl -s -F barcode={rec['dna']} {url}/v1/identify")
        if modality == "image" and rec.get("image"):
            lines.append(f"# a photo of {rec.get('species') or rec.get('genus')} ({rec['id']}):")
            lines.append(f"curl -s -F images=@{rec['image']} {url}/v1/identify")
    where = (f"--database-url {settings.database_url}" if settings.database_url
             else f"--data-dir {settings.data_dir}")
    lines.append("# an admin key for /v1/admin (stored in this service's database):")
    lines.append(f"clibd apikey create --name curator {where}")
    return lines


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from clibd.service.api.main import create_app
    from clibd.service.celery_app import make_celery
    from clibd.service.db import migrate

    settings = _settings(args)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate(settings.sqlalchemy_url)
    make_celery(settings)  # creates the embedded queue's folders
    supervisor = None
    if settings.embedded_broker and settings.embedded_worker:
        # the broker-less default: one worker process beside the API, same settings, same queue folder,
        # restarted when it dies
        from clibd.service.supervisor import WorkerSupervisor
        supervisor = WorkerSupervisor(worker_command(settings.worker_concurrency, "solo"), _env_for(settings),
                                      settings.data_dir).start()
    print(f"\nCLIBD serving on http://{settings.host}:{settings.port}/  (API docs: /docs)", flush=True)
    if args.examples and settings.index_root:
        print("Try:\n" + "\n".join(examples(settings)), flush=True)
    print("Stop with Ctrl+C.\n", flush=True)
    try:
        uvicorn.run(create_app(settings, supervisor=supervisor), host=settings.host, port=settings.port,
                    log_level="info")
    finally:
        if supervisor is not None:
            supervisor.stop()
    return 0


def _worker(args: argparse.Namespace) -> int:
    from clibd.service.celery_app import make_celery
    settings = _settings(args)
    make_celery(settings)
    command = worker_command(args.concurrency or settings.worker_concurrency, args.pool)
    # exec, not a child process: signals (SIGTERM from a supervisor, SIGKILL in a test) reach Celery itself
    os.execve(command[0], command, _env_for(settings))
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from clibd.service.db import migrate
    settings = _settings(args)
    migrate(settings.sqlalchemy_url, args.revision)
    print(f"database at {settings.sqlalchemy_url.split('@')[-1]} is at revision {args.revision}")
    return 0


def _apikey(args: argparse.Namespace) -> int:
    from clibd.service.db import make_engine, migrate, session_factory
    from clibd.service.security import create_key, revoke_key
    settings = _settings(args)
    migrate(settings.sqlalchemy_url)
    with session_factory(make_engine(settings.sqlalchemy_url))() as session:
        if args.key_action == "create":
            key = create_key(session, args.name, args.scopes)
            print(key)
            print(f"(API key {args.name!r} with scopes {args.scopes}; it is shown only now)", file=sys.stderr)
        else:
            n = revoke_key(session, args.name)
            print(f"revoked {n} key(s) named {args.name!r}")
            if not n:
                raise ValueError(f"no active key named {args.name!r}")
    return 0


def _jobs(args: argparse.Namespace) -> int:
    from clibd.service.db import make_engine, migrate, session_factory
    from clibd.service.jobs import purge_jobs
    settings = _settings(args)
    days = settings.job_retention_days if args.older_than_days is None else args.older_than_days
    migrate(settings.sqlalchemy_url)
    with session_factory(make_engine(settings.sqlalchemy_url))() as session:
        n = purge_jobs(session, settings.data_dir, days)
    print(f"purged {n} finished job(s) older than {days:g} days (results and files)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the service's subcommands to the `clibd` parser."""
    def common(p: argparse.ArgumentParser, model: bool = True) -> None:
        if model:
            p.add_argument("--checkpoint", default=None, help="model checkpoint (env CLIBD_CHECKPOINT)")
            p.add_argument("--index-root", default=None, help="index root (env CLIBD_INDEX_ROOT)")
        p.add_argument("--data-dir", default=None, help="uploads, jobs and embedded databases (env CLIBD_DATA_DIR)")
        p.add_argument("--database-url", default=None, help="SQLAlchemy URL (env CLIBD_DATABASE_URL)")

    s = sub.add_parser("serve", formatter_class=_FMT, help="start the HTTP API",
                       description="Start the API. Settings come from CLIBD_* environment variables; options "
                                   "override them. With the embedded default (no CLIBD_BROKER_URL) a worker "
                                   "process is started beside the API on a filesystem queue.")
    common(s)
    s.add_argument("--host", default=None, help="bind address (env CLIBD_HOST, default 127.0.0.1)")
    s.add_argument("--port", type=int, default=None, help="port (env CLIBD_PORT, default 8000)")
    s.add_argument("--examples", action="store_true", help="print example curl commands from the index")
    s.set_defaults(func=_serve)

    w = sub.add_parser("worker", formatter_class=_FMT, help="start a Celery worker for bulk jobs and re-indexing",
                       description="Start a Celery worker with the service's settings (broker CLIBD_BROKER_URL).")
    common(w)
    w.add_argument("--concurrency", type=int, default=None, help="worker processes (env CLIBD_WORKER_CONCURRENCY)")
    w.add_argument("--pool", default="prefork", choices=["prefork", "solo", "threads"], help="Celery pool")
    w.set_defaults(func=_worker)

    m = sub.add_parser("migrate", formatter_class=_FMT, help="create or upgrade the database tables (Alembic)")
    common(m, model=False)
    m.add_argument("--revision", default="head", help="target revision")
    m.set_defaults(func=_migrate)

    k = sub.add_parser("apikey", help="create or revoke API keys")
    ksub = k.add_subparsers(dest="key_action", metavar="ACTION", required=True)
    kc = ksub.add_parser("create", formatter_class=_FMT, help="create a key and print it (shown once)")
    common(kc, model=False)
    kc.add_argument("--name", required=True, help="who or what the key is for")
    kc.add_argument("--scopes", default="admin", help="comma list of scopes")
    kr = ksub.add_parser("revoke", formatter_class=_FMT, help="revoke the keys with this name")
    common(kr, model=False)
    kr.add_argument("--name", required=True)
    for p in (kc, kr):
        p.set_defaults(func=_apikey)

    j = sub.add_parser("jobs", help="manage bulk jobs")
    jsub = j.add_subparsers(dest="jobs_action", metavar="ACTION", required=True)
    jp = jsub.add_parser("purge", formatter_class=_FMT, help="delete finished jobs past the retention",
                         description="Delete finished jobs (items, results, uploaded files) that finished more "
                                     "than the retention ago (env CLIBD_JOB_RETENTION_DAYS; workers also do this "
                                     "hourly).")
    common(jp, model=False)
    jp.add_argument("--older-than-days", type=float, default=None,
                    help="retention in days (default: CLIBD_JOB_RETENTION_DAYS)")
    jp.set_defaults(func=_jobs)
