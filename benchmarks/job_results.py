"""Downloading a big job's results: time, first byte and the server's memory, per format.

    python -m benchmarks.job_results [--items 20000] [--database-url URL]

A job of `--items` finished items (each holding a typical answer: 10 neighbours, 5 alternatives per rank, the
barcode's evidence; written straight into the database, so no model runs) is downloaded from a real `clibd serve`
as JSON, CSV and Darwin Core, one fresh server per format, so each format's peak memory is its own. Reported: the
whole download's seconds, the seconds to the first byte, the body's size, and how far the server's peak resident
memory (VmHWM) rose during the download. The database is SQLite (the embedded default) unless `--database-url`.
Writes benchmarks/results/job_results.{json,md}.
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import insert

from benchmarks.machine import describe_machine, write_results
from benchmarks.service_latency import free_port, wait_until_up
from clibd.taxonomy import RANKS
from clibd.service.db import make_engine, migrate, session_factory
from clibd.service.models import Job, JobItem, utcnow

FORMATS = ("json", "csv", "dwc")


def typical_answer(i: int) -> dict:
    """An answer as a job stores it (the API's JSON), with the usual number of neighbours and alternatives."""
    lineage = {"order": "Diptera", "family": "Chironomidae", "genus": "Tanytarsus", "species": f"Tanytarsus sp{i % 97}"}
    ranks = {r: {"label": lineage[r], "score": 0.9, "confident": True,
                 "alternatives": [{"label": f"{lineage[r]} alt{k}", "score": 0.02} for k in range(5)]} for r in RANKS}
    neighbors = [{"reference_id": f"REF{i}-{k}", "processid": f"BOLD{i:06d}-{k}", "bin": "BOLD:AAA0001",
                  "modality": "dna", "similarity": 0.91, **lineage, "has_image": False,
                  "percent_identity": 99.1 - k, "overlap": 658} for k in range(10)]
    return {"identification": {"scientificName": lineage["species"], "taxonRank": "species", **lineage,
                               "specificEpithet": lineage["species"].split()[1], "bin": "BOLD:AAA0001",
                               "status": "confident", "novel_at_rank": None,
                               "identificationRemarks": "barcode 99.10% identical over 658 bp to 10 references"},
            "ranks": ranks,
            "per_modality": {"dna": {"status": "confident", "deepest_rank": "species", "novel_at_rank": None,
                                     "top_similarity": 0.91, "top_identity": 99.1, "strand": "plus", "ranks": ranks}},
            "decided_by": ["dna"], "neighbors": neighbors,
            "provenance": {"model": "clibd-lite0", "checkpoint_hash": "0" * 16, "snapshot_id": "s1",
                           "index_size": {"dna": 20000, "image": 0, "text": 900}, "synthetic_references": False,
                           "thresholds": {"species": 97.0}}}


def make_job(url: str, n: int) -> str:
    """A finished job of `n` done items, written into the database at `url`; its id."""
    migrate(url)
    engine = make_engine(url)
    job_id = str(uuid.uuid4())
    now = utcnow()
    with session_factory(engine)() as s:
        s.add(Job(id=job_id, status="done", total=n, options={}, created_at=now, started_at=now, finished_at=now))
        s.commit()
        for start in range(0, n, 2000):
            s.execute(insert(JobItem), [
                {"job_id": job_id, "position": i, "specimen_id": f"S{i:06d}", "dna": "ACGT" * 160, "images": [],
                 "status": "done", "attempts": 1, "result": typical_answer(i), "finished_at": now}
                for i in range(start, min(n, start + 2000))])
            s.commit()
    engine.dispose()
    return job_id


def _hwm_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def download(env: dict, job_id: str, fmt: str) -> dict:
    """One format from a fresh `clibd serve`: seconds, seconds to the first byte, MB, peak memory rise (MB)."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "clibd.cli", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, "/healthz")
        httpx.get(f"{base}/v1/jobs/{job_id}", timeout=60).raise_for_status()  # warm: the route's imports loaded
        before = _hwm_kb(server.pid)
        t0 = time.perf_counter()
        first, size = None, 0
        with httpx.stream("GET", f"{base}/v1/jobs/{job_id}/results", params={"format": fmt}, timeout=600) as r:
            r.raise_for_status()
            for chunk in r.iter_bytes():
                first = first if first is not None else time.perf_counter() - t0
                size += len(chunk)
        total = time.perf_counter() - t0
        return {"format": fmt, "seconds": total, "first_byte_s": first, "mb": size / 1e6,
                "peak_rise_mb": (_hwm_kb(server.pid) - before) / 1024}
    finally:
        server.terminate()
        server.wait(timeout=60)


def main() -> int:
    """Build the job, download it in every format, write the table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=20000)
    ap.add_argument("--database-url", default=None, help="default: SQLite in a temporary folder")
    ap.add_argument("--out", default="job_results")
    ap.add_argument("--note", default="", help="a line under the title (which code was measured)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/clibd.db"
        t0 = time.perf_counter()
        job_id = make_job(url, args.items)
        print(f"job of {args.items:,} items written in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        env = {**os.environ, "CLIBD_DATA_DIR": tmp, "CLIBD_DATABASE_URL": url, "CLIBD_EMBEDDED_WORKER": "false"}
        rows = [download(env, job_id, fmt) for fmt in FORMATS]
    command = "python -m benchmarks.job_results " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    out = {"command": command, "note": args.note, "machine": describe_machine(), "items": args.items,
           "database": "sqlite" if args.database_url is None else args.database_url.split(":")[0], "rows": rows}
    md = [f"# Downloading a job of {args.items:,} finished items ({out['database']})", "",
          *([args.note, ""] if args.note else []),
          f"Command: `{command}`  ", f"Machine: {describe_machine()}", "",
          "| format | seconds | first byte s | MB | server peak memory rise MB |", "|---|---|---|---|---|"]
    md += [f"| {r['format']} | {r['seconds']:.2f} | {r['first_byte_s']:.2f} | {r['mb']:.1f} | {r['peak_rise_mb']:.0f} |"
           for r in rows]
    write_results(args.out, out, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
