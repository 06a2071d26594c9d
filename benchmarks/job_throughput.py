"""A 10,000-barcode FASTA job end to end (POST -> done) with one and two workers, against vsearch.

    python -m benchmarks.job_throughput --model clibd-lite0

Real COI barcodes from ../shared/data/insect1k: 20,000 records become the reference keys (DNA index), 10,000
others the job's FASTA. The API (`clibd serve`) and the workers (`clibd worker --pool solo`) run as separate
processes, on Redis + PostgreSQL when this machine runs them, else on the embedded default (filesystem queue +
SQLite); the embedded default is timed too. vsearch identifies the same queries against the same references
(`--usearch_global`, 2 threads). The model is untrained: speed does not depend on the weights.
Writes benchmarks/results/job_throughput_<model>.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.machine import describe_machine, write_results
from benchmarks.service_latency import free_port, wait_until_up
from clibd import create_model, save_checkpoint
from clibd.dna_tokenizer import try_normalize
from clibd.readers import read_records
from clibd.index.build import build_snapshot
from clibd.training.vsearch import vsearch_top_hits

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "insect1k" / "insect1k_coi5p.tsv.gz"
PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REDIS = "redis://127.0.0.1:6379/14"


def production_stack() -> dict | None:
    """Redis + PostgreSQL settings when both answer (tables dropped for a clean run), else None."""
    try:
        import redis
        from sqlalchemy import create_engine, text
        redis.Redis.from_url(REDIS, socket_connect_timeout=1).flushdb()
        engine = create_engine(PG, connect_args={"connect_timeout": 2})
        with engine.begin() as conn:
            for table in ("job_items", "jobs", "api_keys", "reference_records", "alembic_version"):
                conn.execute(text(f"DROP TABLE IF EXISTS {table} CASCADE"))
        engine.dispose()
    except Exception:
        return None
    return {"CLIBD_DATABASE_URL": PG, "CLIBD_BROKER_URL": REDIS, "CLIBD_RESULT_BACKEND": REDIS}


def run_job(env: dict, fasta: str, workers: int, threads: int) -> dict:
    """Start the API and `workers` worker processes, submit the FASTA, time it to done."""
    port = free_port()
    env = {**env, "CLIBD_PORT": str(port), "CLIBD_EMBEDDED_WORKER": "false"}
    api = subprocess.Popen([sys.executable, "-m", "clibd.cli", "serve"], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    wenv = {**env, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    procs = [subprocess.Popen([sys.executable, "-m", "clibd.cli", "worker", "--pool", "solo"], env=wenv,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(workers)]
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url)
        time.sleep(15)  # let the workers load the model before the clock starts
        t0 = time.perf_counter()
        r = httpx.post(url + "/v1/jobs", files={"fasta": ("q.fasta", fasta.encode())}, timeout=300)
        r.raise_for_status()
        job = r.json()
        while True:
            prog = httpx.get(f"{url}/v1/jobs/{job['id']}", timeout=30).json()
            if prog["status"] == "done":
                break
            time.sleep(0.5)
        elapsed = time.perf_counter() - t0
        results = httpx.get(f"{url}/v1/jobs/{job['id']}/results", params={"format": "tsv"}, timeout=300).text
        rows = results.strip().splitlines()[1:]
    finally:
        for p in procs + [api]:
            p.terminate()
        for p in procs + [api]:
            p.wait(timeout=60)
    return {"workers": workers, "threads_per_worker": threads, "items": job["total"], "done": prog["done"],
            "failed": prog["failed"], "seconds": elapsed, "items_per_s": job["total"] / elapsed, "result_rows": len(rows)}


def main() -> int:
    """Time the job in each configuration and vsearch on the same data."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="clibd-lite0")
    ap.add_argument("--references", type=int, default=20_000)
    ap.add_argument("--queries", type=int, default=10_000)
    ap.add_argument("--work", default=None, help="keep the checkpoint and index here (a re-run reuses them)")
    args = ap.parse_args()
    if not DATA.exists():
        print(f"{DATA} is absent: this benchmark needs the insect1k barcodes", file=sys.stderr)
        return 2
    records = [r for r in read_records(DATA) if try_normalize(r.dna)]
    random.Random(0).shuffle(records)
    refs, queries = records[:args.references], records[args.references:args.references + args.queries]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        ckpt = work / "model.pt"
        if not ckpt.exists():
            save_checkpoint(create_model(args.model), ckpt)
        if not (work / "index" / "CURRENT").exists():
            build_snapshot(ckpt, refs, work / "index", modalities=("dna",))
        index_s = time.perf_counter() - t0
        fasta = "".join(f">{r.id}\n{r.dna}\n" for r in queries)
        base = {**os.environ, "CLIBD_CHECKPOINT": str(ckpt), "CLIBD_INDEX_ROOT": str(work / "index"),
                "CLIBD_MAX_RECORDS": str(max(20_000, args.queries))}
        stack = production_stack()
        configs = []
        if stack:
            configs += [("redis+postgresql", stack, 1, 2), ("redis+postgresql", stack, 2, 1)]
        configs.append(("embedded (filesystem queue + SQLite)", {}, 1, 2))
        for i, (name, extra, workers, threads) in enumerate(configs):
            if extra:
                production_stack()  # clean tables and queue per run
            env = {**base, **extra, "CLIBD_DATA_DIR": str(work / f"data{i}")}
            row = {"stack": name, **run_job(env, fasta, workers, threads)}
            rows.append(row)
            print(json.dumps(row), flush=True)
        t0 = time.perf_counter()
        hits = vsearch_top_hits([r.dna for r in queries], [r.dna for r in refs], threads=2)
        vs_s = time.perf_counter() - t0
    vs = {"seconds": vs_s, "items_per_s": len(queries) / vs_s, "hits": sum(h[0] is not None for h in hits)}
    shown = [a for i, a in enumerate(sys.argv[1:]) if a != "--work" and (i == 0 or sys.argv[i] != "--work")]
    command = "python -m benchmarks.job_throughput " + " ".join(shlex.quote(a) for a in shown)  # --work: a cache
    out = {"command": command, "machine": describe_machine(), "model": args.model, "references": len(refs),
           "queries": len(queries), "index_build_s": index_s, "jobs": rows, "vsearch": vs}
    name = f"job_throughput_{args.model}" + ("" if (args.references, args.queries) == (20_000, 10_000)
                                             else f"_{args.references}refs_{args.queries}queries")
    md = [f"# A {len(queries):,}-barcode FASTA job end to end ({args.model}, untrained weights)", "",
          f"Command: `{command}`  ", f"Machine: {json.dumps(out['machine'])}", "",
          f"References: {len(refs):,} insect1k barcodes (DNA index built in {index_s:.0f} s); queries: "
          f"{len(queries):,} other insect1k barcodes. Time from POST /v1/jobs to status done (results include "
          f"percent identity of every returned neighbour, top 10).", "",
          "| stack | workers | threads each | seconds | items/s | done | failed | vs vsearch (items/s ratio) |",
          "|---|---|---|---|---|---|---|---|"]
    md += [f"| {r['stack']} | {r['workers']} | {r['threads_per_worker']} | {r['seconds']:.1f} | "
           f"{r['items_per_s']:.1f} | {r['done']} | {r['failed']} | {r['items_per_s'] / vs['items_per_s']:.2f} |"
           for r in rows]
    md += [f"| vsearch --usearch_global (same refs) | - | 2 | {vs_s:.1f} | {vs['items_per_s']:.1f} | "
           f"{vs['hits']} hits | | 1.00 |"]
    write_results(name, out, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
