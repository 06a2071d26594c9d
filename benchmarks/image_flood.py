"""A flood of huge photos: peak memory of the service and how long /healthz waits meanwhile.

    python -m benchmarks.image_flood [--requests 3] [--images 16] [--side 7000] [--label after]

`clibd serve` (embedded default, worker off) over an untrained `clibd-lite0` and a `clibd synth` index is sent
`--requests` concurrent POST /v1/identify, each with `--images` black PNGs of side x side pixels (7000: 49 Mpx,
each under the 50 Mpx limit, about 150 KB). Meanwhile /healthz is polled every 100 ms. Reported: the server's
peak and final resident memory (VmHWM / VmRSS), the requests' status and seconds, /healthz p50 / max.
Run it on two commits to compare (`--label` names the results file).
Writes benchmarks/results/image_flood_<label>.{json,md}.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from benchmarks.machine import describe_machine, write_results
from benchmarks.service_latency import prepare, start_server


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _png(side: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (side, side)).save(buf, format="PNG")
    return buf.getvalue()


async def _flood(url: str, png: bytes, requests: int, images: int) -> dict:
    health: list[float] = []
    stop = asyncio.Event()

    async def poll(c: httpx.AsyncClient) -> None:
        while not stop.is_set():
            t0 = time.perf_counter()
            await c.get("/healthz")
            health.append(time.perf_counter() - t0)
            await asyncio.sleep(0.1)

    async def one(c: httpx.AsyncClient) -> tuple[int, float]:
        t0 = time.perf_counter()
        r = await c.post("/v1/identify", files=[("images", (f"{i}.png", png, "image/png")) for i in range(images)])
        return r.status_code, time.perf_counter() - t0

    async with httpx.AsyncClient(base_url=url, timeout=600) as c:
        poller = asyncio.create_task(poll(c))
        results = await asyncio.gather(*(one(c) for _ in range(requests)))
        stop.set()
        await poller
    h = np.asarray(health) * 1000
    return {"statuses": [s for s, _ in results], "request_seconds": [round(t, 2) for _, t in results],
            "healthz_p50_ms": float(np.percentile(h, 50)), "healthz_max_ms": float(h.max()), "healthz_polls": len(h)}


def main() -> int:
    """Start the service, flood it, write the table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=3)
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--side", type=int, default=7000)
    ap.add_argument("--label", default="current")
    args = ap.parse_args()
    png = _png(args.side)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        ckpt, index, _ = prepare("clibd-lite0", work, 0, 0)
        proc, url = start_server(ckpt, index, work / "data", 32)
        try:
            httpx.get(url + "/healthz")
            idle_kb = _status_kb(proc.pid, "VmRSS")
            flood = asyncio.run(_flood(url, png, args.requests, args.images))
            time.sleep(2)
            out = {"idle_rss_mb": idle_kb / 1024, "peak_rss_mb": _status_kb(proc.pid, "VmHWM") / 1024,
                   "final_rss_mb": _status_kb(proc.pid, "VmRSS") / 1024, **flood}
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    command = "python -m benchmarks.image_flood " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    out = {"command": command, "machine": describe_machine(), "png_bytes": len(png), **out}
    md = [f"# A flood of huge photos ({args.label})", "", f"Command: `{command}`  ",
          f"Machine: {json.dumps(out['machine'])}", "",
          f"{args.requests} concurrent requests x {args.images} black PNGs of {args.side}x{args.side} "
          f"({len(png) / 1024:.0f} KB each).", "",
          "| idle RSS MB | peak RSS MB | RSS after MB | statuses | request s | /healthz p50 ms | /healthz max ms |",
          "|---|---|---|---|---|---|---|",
          f"| {out['idle_rss_mb']:.0f} | {out['peak_rss_mb']:.0f} | {out['final_rss_mb']:.0f} | {out['statuses']} | "
          f"{out['request_seconds']} | {out['healthz_p50_ms']:.0f} | {out['healthz_max_ms']:.0f} |"]
    write_results(f"image_flood_{args.label}", out, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
