"""Load: 2,000 distinct barcodes from 32 keep-alive clients, bad requests mixed in; errors and tail latency.

    python -m benchmarks.service_load [--barcodes 2000] [--clients 32] [--references 10000] [--bad-every 25]

`clibd serve` (embedded default, worker off) over an untrained `clibd-tiny` and `--references` SYNTHETIC barcode
keys grown from real insect1k barcodes (`benchmarks.dna_scale`; needs ../shared/data). Each of `--barcodes`
distinct query barcodes is sent once, by `--clients` concurrent clients that keep their connections alive; every
`--bad-every`-th request is a bad one instead (alternately letters that are no nucleotide code and binary bytes
as a barcode file), which must get a 4xx, and the same connection goes on. Counted: connection errors (reset,
refused, protocol), server errors (5xx), wrong answers to bad requests; p50/p95/p99 of the good requests.
Writes benchmarks/results/service_load.{json,md}.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import shlex
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np

from benchmarks.machine import describe_machine, write_results
from benchmarks.service_latency import prepare, start_server

BAD = [{"data": {"barcode": "THIS IS NOT A BARCODE " * 10}},
       {"files": {"barcode": ("specimen.fasta", bytes(range(256)) * 8, "application/octet-stream")}}]


async def _load(url: str, seqs: list[str], clients: int, bad_every: int) -> dict:
    queue: asyncio.Queue = asyncio.Queue()
    for i, seq in enumerate(seqs):
        if bad_every and i % bad_every == bad_every - 1:
            queue.put_nowait(("bad", BAD[(i // bad_every) % len(BAD)]))
        queue.put_nowait(("good", {"data": {"barcode": seq}}))
    lat: list[float] = []
    counts: Counter = Counter()
    errors: list[str] = []

    async def client(c: httpx.AsyncClient) -> None:
        while not queue.empty():
            kind, kw = queue.get_nowait()
            t0 = time.perf_counter()
            try:
                r = await c.post("/v1/identify", **kw)
            except httpx.TransportError as exc:
                counts["connection_errors"] += 1
                errors.append(f"{kind}: {exc.__class__.__name__}: {exc}")
                continue
            if r.status_code >= 500:
                counts["server_errors"] += 1
                errors.append(f"{kind}: {r.status_code} {r.text[:200]}")
            elif kind == "good":
                counts["good_ok" if r.status_code == 200 else "good_rejected"] += 1
                lat.append(time.perf_counter() - t0)
            else:
                counts["bad_4xx" if 400 <= r.status_code < 500 else "bad_accepted"] += 1
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as c:
        t0 = time.perf_counter()
        await asyncio.gather(*(client(c) for _ in range(clients)))
        elapsed = time.perf_counter() - t0
    ms = np.asarray(lat) * 1000
    return {"requests": len(seqs) + (len(seqs) // bad_every if bad_every else 0), "seconds": elapsed,
            "good_per_s": len(lat) / elapsed, **{k: counts.get(k, 0) for k in
            ("good_ok", "good_rejected", "bad_4xx", "bad_accepted", "server_errors", "connection_errors")},
            "p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "p99_ms": float(np.percentile(ms, 99)), "max_ms": float(ms.max()), "first_errors": errors[:10]}


def main() -> int:
    """Start the service, run the load, write the results."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--barcodes", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--references", type=int, default=10_000)
    ap.add_argument("--bad-every", type=int, default=25, help="every n-th request is a bad one (0: none)")
    ap.add_argument("--model", default="clibd-tiny")
    ap.add_argument("--repeat", type=int, default=3, help="runs of the whole load against the same server")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        ckpt, index, queries = prepare(args.model, work, args.references, args.barcodes * 5 // 4)
        logging.getLogger("httpx").setLevel(logging.WARNING)
        seqs = list(dict.fromkeys(q.dna for q in queries))[:args.barcodes]
        proc, url = start_server(ckpt, index, work / "data", 32)
        try:
            runs = [asyncio.run(_load(url, seqs, args.clients, args.bad_every)) for _ in range(args.repeat)]
            alive = httpx.get(url + "/healthz", timeout=5).status_code == 200
        finally:
            proc.terminate()
            proc.wait(30)
    out = {"command": "python -m benchmarks.service_load " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
           "machine": describe_machine(), "distinct_barcodes": len(seqs), "clients": args.clients,
           "references": args.references, "serving_after": alive, "runs": runs}
    md = [f"# Load: {len(seqs)} distinct barcodes, {args.clients} keep-alive clients, {args.references} references",
          "", f"`{out['command']}` ({out['machine']['cpus']} CPUs)", "",
          "| requests | good 200 | bad -> 4xx | 5xx | connection errors | good/s | p50 ms | p95 ms | p99 ms | max ms |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    md += [f"| {r['requests']} | {r['good_ok']} | {r['bad_4xx']} | {r['server_errors']} | {r['connection_errors']} | "
           f"{r['good_per_s']:.1f} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} | {r['p99_ms']:.0f} | {r['max_ms']:.0f} |"
           for r in runs]
    md += ["", f"One row per run against the same server. Serving afterwards: {alive}. Good requests rejected: "
           f"{sum(r['good_rejected'] for r in runs)}; bad requests accepted: {sum(r['bad_accepted'] for r in runs)}."]
    errors = [e for r in runs for e in r["first_errors"]]
    if errors:
        md += ["", "First errors:", ""] + [f"- {e}" for e in errors[:10]]
    write_results("service_load", out, md)
    return 0 if not any(r["connection_errors"] or r["server_errors"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
