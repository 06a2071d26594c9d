"""`Settings`: every knob of the service, read from `CLIBD_*` environment variables (or a `.env` file)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Optional

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from clibd.dna_tokenizer import MAX_BARCODE_LENGTH, MIN_BARCODE_LENGTH
from clibd.photos import PhotoLimits
from clibd.service.inputs import Limits


class Settings(BaseSettings):
    """Service configuration. Empty URLs mean the embedded default under `data_dir` (SQLite, no broker)."""

    model_config = SettingsConfigDict(env_prefix="CLIBD_", env_file=".env", extra="ignore")

    checkpoint: Optional[Path] = Field(None, description="model checkpoint file")
    index_root: Optional[Path] = Field(None, description="index root (snapshots/, CURRENT, calibration.json)")
    data_dir: Path = Field(Path("clibd-data"), description="uploads, job files and the embedded databases")
    database_url: str = Field("", description="SQLAlchemy URL; default sqlite:///<data_dir>/clibd.db")
    broker_url: str = Field("", description="Celery broker; default a filesystem queue under data_dir (no server)")
    result_backend: str = Field("", description="Celery results; default db+sqlite under data_dir")
    device: Optional[str] = Field(None, description="cpu or cuda (default: cuda when present)")
    host: str = "127.0.0.1"
    port: int = 8000
    top_k: int = Field(10, description="neighbours returned by default")
    max_top_k: int = 100
    max_upload_mb: float = Field(100.0, description="largest request body")
    max_images: int = Field(16, description="images per specimen in /v1/identify")
    max_image_pixels: int = PhotoLimits.max_image_pixels
    max_request_pixels: int = Field(PhotoLimits.max_request_pixels,
                                    description="all the photos of one specimen together (a request, a job item)")
    min_barcode_length: int = Field(MIN_BARCODE_LENGTH, description="least barcode length, in letters and in "
                                                                    "determined bases")
    max_barcode_length: int = MAX_BARCODE_LENGTH
    max_records: int = Field(20_000, description="FASTA records / manifest rows per job")
    max_unpacked_mb: float = Field(2048.0, description="what a ZIP may unpack to")
    batch_max_size: int = Field(32, description="most queries per encoder call")
    batch_wait_ms: float = Field(5.0, description="how long the first query waits for others to join a batch")
    job_chunk_size: int = Field(64, description="job items per task (one encoder batch)")
    item_lease_s: float = Field(20.0, gt=0, description="a claim not renewed for this long is taken as lost "
                                                        "(workers renew theirs every third of it)")
    item_max_attempts: int = Field(3, ge=1, description="claims of a job item before it fails with the reason")
    job_retention_days: float = Field(30.0, gt=0, description="finished jobs (results and files) kept this long")
    job_disk_quota_mb: float = Field(1024.0, gt=0, description="what one job's uploaded files may occupy")
    refresh_interval_s: float = Field(1.0, gt=0, description="how often a background thread picks up a new "
                                      "snapshot and references added or deleted by other processes")
    search_threads: int = Field(1, ge=0, description="OpenMP threads per FAISS search in the API (0: all cores); "
                                "requests already search side by side")
    worker_concurrency: int = 1
    embedded_worker: bool = Field(True, description="`clibd serve` starts a worker when the broker is embedded")

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL, defaulting to SQLite in data_dir."""
        return self.database_url or f"sqlite:///{(self.data_dir / 'clibd.db').resolve()}"

    @property
    def broker(self) -> str:
        """The Celery broker URL, defaulting to kombu's filesystem transport."""
        return self.broker_url or "filesystem://"

    @property
    def backend(self) -> str:
        """The Celery result backend URL."""
        return self.result_backend or f"db+sqlite:///{(self.data_dir / 'celery-results.db').resolve()}"

    @property
    def embedded_broker(self) -> bool:
        """Whether jobs go through the filesystem queue (no broker server)."""
        return self.broker.startswith("filesystem://")

    @property
    def broker_folder(self) -> Path:
        """Where the filesystem queue keeps its messages."""
        return (self.data_dir / "broker").resolve()

    @property
    def limits(self) -> Limits:
        """The input limits these settings set."""
        return Limits(max_image_pixels=self.max_image_pixels, max_request_pixels=self.max_request_pixels,
                      min_barcode_length=self.min_barcode_length,
                      max_barcode_length=self.max_barcode_length, max_records=self.max_records,
                      max_unpacked_bytes=int(min(self.max_unpacked_mb, self.job_disk_quota_mb) * 2**20))


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
