"""The Celery app: Redis (production) or kombu's filesystem queue (embedded default, no broker process)."""
from __future__ import annotations

from typing import Optional

from celery import Celery

from clibd.service.settings import Settings, get_settings


BROKER_TIMEOUT_S = 2.0
QUICK_RETRIES = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1.0}


def make_celery(settings: Settings, prepare: bool = True) -> Celery:
    """A Celery app configured from settings (`prepare` creates the embedded queue's folders)."""
    app = Celery("clibd", broker=settings.broker, backend=settings.backend, include=["clibd.service.tasks"])
    conf = {
        "task_acks_late": True,  # a task killed mid-run is redelivered ...
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,  # ... and a worker holds one chunk at a time
        "task_track_started": True,
        "result_expires": 7 * 24 * 3600,
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
        # a request that queues work gives up on an unreachable broker within seconds, not after ~20 s of
        # retries (a job's items are in the database: the workers' sweep dispatches them when it is back)
        "broker_connection_timeout": BROKER_TIMEOUT_S,
        "task_publish_retry_policy": QUICK_RETRIES,
        "result_backend_transport_options": {"retry_policy": QUICK_RETRIES},
        "redis_socket_connect_timeout": BROKER_TIMEOUT_S,
    }
    if settings.embedded_broker:
        folder = settings.broker_folder
        if prepare:
            for sub in ("queue", "processed", "control"):
                (folder / sub).mkdir(parents=True, exist_ok=True)
        conf["broker_transport"] = "clibd.service.filequeue:Transport"  # whole-file writes, single-reader claims
        conf["broker_transport_options"] = {"data_folder_in": str(folder / "queue"),
                                            "data_folder_out": str(folder / "queue"),
                                            "processed_folder": str(folder / "processed"),
                                            "control_folder": str(folder / "control"),
                                            "store_processed": False, "polling_interval": 0.02}
    else:
        conf["broker_transport_options"] = {"visibility_timeout": max(60, int(settings.item_lease_s * 2)),
                                            "socket_connect_timeout": BROKER_TIMEOUT_S}
    app.conf.update(conf)
    app.clibd_settings = settings  # tasks read their settings from the app that runs them
    return app


def broker_problem(app: Celery) -> Optional[str]:
    """Why the app's broker cannot be reached now, or None when it can (the embedded queue is a folder: None)."""
    if app.clibd_settings.embedded_broker:
        return None
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=BROKER_TIMEOUT_S)
    except Exception as exc:  # any failure to connect is the answer
        return f"{type(exc).__name__}: {exc}"
    return None


_default: Optional[Celery] = None


def default_app() -> Celery:
    """The app of `celery -A clibd.service.celery_app` (and of its worker processes), built from the
    environment's settings when first asked for, never at import."""
    global _default
    if _default is None:
        _default = make_celery(get_settings(), prepare=False)
    return _default


def __getattr__(name: str) -> Celery:
    """`app` / `celery_app` (what Celery's `-A` looks up on this module) build the default app lazily."""
    if name in ("app", "celery_app"):
        return default_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
