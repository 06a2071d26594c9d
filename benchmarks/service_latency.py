"""/v1/identify latency and throughput against the bare encoder + search, on this machine.

    python -m benchmarks.service_latency --model clibd-lite0 [--barcode-references 100000]

1. Bare: the same `Identifier` the service uses, called in this process: encode one barcode (or one photo)
   and search, p50/p95 over many queries; the whole core answer for one barcode (encode, search, k-mer
   candidates, alignments, verdict); the batched encoder (32 barcodes per call) + search, items/s; and whole
   core answers 32 at a time, items/s.
2. Service: `clibd serve` started as a subprocess (embedded default), measured over real HTTP: p50/p95 of
   sequential requests, then 32 concurrent clients, with micro-batching on (max batch 32) and off (max 1).
Ratios printed: service latency / bare latency (the service's overhead), and concurrent throughput with
batching / without and / the bare batched encoder (the batching's worth). The model is untrained: speed
does not depend on the weights. References are a synthetic set built with `clibd synth`, or with
`--barcode-references N`, N SYNTHETIC barcode keys grown from real insect1k barcodes (`benchmarks.dna_scale`;
needs ../shared/data), indexed with `clibd index build` (DNA keys only, so no photo rows); with those, the
barcodes of new species too (the queries 10% substituted: no key within 98%, so each takes the broad candidate
search of `index.barcodes`), one at a time.
Writes benchmarks/results/service_latency_<model>[_<N>refs].{json,md}.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import httpx
import numpy as np

from benchmarks.machine import describe_machine, write_results
from clibd import create_model, save_checkpoint
from clibd.cli import main as clibd_main
from clibd.readers import read_records
from clibd.records import SYNTHETIC_NOTICE, write_records
from clibd.index.identifier import Identifier, Specimen



def pct(samples: list[float]) -> dict[str, float]:
    """p50 and p95 in milliseconds."""
    a = np.asarray(samples) * 1000
    return {"p50_ms": float(np.percentile(a, 50)), "p95_ms": float(np.percentile(a, 95)), "n": len(samples)}


def prepare(model: str, work: Path, barcode_refs: int, queries: int) -> tuple[Path, Path, list]:
    """An untrained checkpoint of `model`, an index of synthetic reference keys, and the query records."""
    ckpt = save_checkpoint(create_model(model), work / "model.pt")
    if barcode_refs:
        from benchmarks.dna_scale import synthetic
        refs, query_records = synthetic(barcode_refs, queries)
        records = work / "references.tsv"
        write_records(refs, records)
        (work / SYNTHETIC_NOTICE).write_text("Barcodes grown from real insect1k barcodes into invented species.\n")
        modalities = "dna"
    else:
        clibd_main(["synth", "--out", str(work / "synth"), "--min-specimens", "10", "--max-specimens", "14"])
        records = work / "synth" / "records.tsv"
        query_records, modalities = None, "image,dna"
    clibd_main(["index", "build", "--checkpoint", str(ckpt), "--records", str(records), "--out",
                str(work / "index"), "--modalities", modalities])
    return ckpt, work / "index", query_records or read_records(records)


def far_barcodes(records: list, n: int) -> list[str]:
    """Barcodes of new species: the first `n` queries' with 10% of their bases substituted (seeded), so that no
    reference comes within 98% and each answer takes the broad candidate search."""
    from benchmarks.dna_scale import _mutate
    rng = random.Random(1)
    return [_mutate(r.dna, 0.10, rng, None) for r in records if r.dna][:n]


def bare(identifier: Identifier, records: list, n: int, far: Sequence[str] = ()) -> dict:
    """Encoder + search timings in this process (`far`: also whole answers for new species' barcodes)."""
    seqs = [r.dna for r in records if r.dna][:n]
    from clibd.preprocess import load_image
    imgs = [load_image(r.image) for r in records if r.image][:max(n // 2, 10)]
    out = {}
    for name, items, enc, modality in (("dna", seqs, identifier.encode_dna, "dna"),
                                       ("image", imgs, identifier.encode_images, "image")):
        if not items:
            continue
        enc(items[:2])  # warm-up
        times = []
        for item in items:
            t0 = time.perf_counter()
            vec = enc([item])
            identifier.searcher.search(vec, 10, identifier.key_modality(modality))
            times.append(time.perf_counter() - t0)
        out[name] = pct(times)
    for name, items in (("dna_core", seqs), ("dna_core_far", far)):
        times = []
        for seq in items:
            t0 = time.perf_counter()
            identifier.identify([Specimen(dna=seq)], 10)
            times.append(time.perf_counter() - t0)
        if times:
            out[name] = pct(times)
    batch = seqs[:32]
    t0, done = time.perf_counter(), 0
    while time.perf_counter() - t0 < 10:
        vecs = identifier.encode_dna(batch)
        identifier.searcher.search(vecs, 10, "dna")
        done += len(batch)
    out["dna_batched_items_per_s"] = done / (time.perf_counter() - t0)
    specimens = [Specimen(dna=seq) for seq in batch]
    t0, done = time.perf_counter(), 0
    while time.perf_counter() - t0 < 10:  # whole answers (alignments and verdicts too), 32 at a time
        identifier.identify(specimens, 10)
        done += len(specimens)
    out["dna_core_batched_items_per_s"] = done / (time.perf_counter() - t0)
    return out


def free_port() -> int:
    """An unused local TCP port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(ckpt: Path, index: Path, data: Path, batch: int) -> tuple[subprocess.Popen, str]:
    """`clibd serve` in a subprocess; returns it and its base URL once ready."""
    port = free_port()
    env = {**os.environ, "CLIBD_CHECKPOINT": str(ckpt), "CLIBD_INDEX_ROOT": str(index), "CLIBD_DATA_DIR": str(data),
           "CLIBD_PORT": str(port), "CLIBD_BATCH_MAX_SIZE": str(batch), "CLIBD_EMBEDDED_WORKER": "false"}
    proc = subprocess.Popen([sys.executable, "-m", "clibd.cli", "serve"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    if wait_until_up(url):
        return proc, url
    proc.kill()
    raise RuntimeError("the service did not become ready")


def wait_until_up(url: str, path: str = "/readyz", tries: int = 600) -> bool:
    """Poll `url + path` until it answers 200 (True), or give up after `tries` polls (False)."""
    for _ in range(tries):
        try:
            if httpx.get(url + path, timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def sequential(url: str, records: list, n: int, far: Sequence[str] = ()) -> dict:
    """p50/p95 of one request at a time, DNA and one photo (`far`: new species' barcodes too)."""
    out = {}
    with httpx.Client(base_url=url, timeout=60) as c:
        seqs = [r.dna for r in records if r.dna][:n]
        imgs = [Path(r.image).read_bytes() for r in records if r.image][:max(n // 2, 10)]
        for name, items in (("dna", seqs), ("image", imgs), ("dna_far", list(far))):
            if not items:
                continue
            times = []
            for i, item in enumerate(items[:2] + items):
                kw = {"files": {"images": ("q.png", item)}} if name == "image" else {"data": {"barcode": item}}
                t0 = time.perf_counter()
                r = c.post("/v1/identify", **kw)
                if i >= 2:  # the first two are warm-up
                    times.append(time.perf_counter() - t0)
                r.raise_for_status()
            out[name] = pct(times)
    return out


async def _concurrent(url: str, seqs: list[str], clients: int, seconds: float) -> dict:
    done, lat = 0, []
    stop = time.perf_counter() + seconds

    async def one(c: httpx.AsyncClient, k: int) -> None:
        nonlocal done
        i = k
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            r = await c.post("/v1/identify", data={"barcode": seqs[i % len(seqs)]})
            r.raise_for_status()
            lat.append(time.perf_counter() - t0)
            done += 1
            i += clients
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as c:
        t0 = time.perf_counter()
        await asyncio.gather(*(one(c, k) for k in range(clients)))
        elapsed = time.perf_counter() - t0
    return {"requests_per_s": done / elapsed, "clients": clients, **pct(lat)}


def main() -> int:
    """Measure bare and service timings and write the table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="clibd-lite0")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--barcode-references", type=int, default=0,
                    help="N SYNTHETIC barcode keys instead of the clibd synth set (0: the synth set)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        ckpt, index, records = prepare(args.model, work, args.barcode_references, args.queries)
        identifier = Identifier.load(ckpt, index, "cpu")
        far = far_barcodes(records, args.queries) if args.barcode_references else []
        bare_t = bare(identifier, records, args.queries, far)
        del identifier
        seqs = [r.dna for r in records if r.dna]
        runs = {}
        for batch in (32, 1):
            proc, url = start_server(ckpt, index, work / f"data{batch}", batch)
            try:
                if batch == 32:
                    runs["sequential"] = sequential(url, records, args.queries, far)
                runs[f"concurrent_batch{batch}"] = asyncio.run(_concurrent(url, seqs, args.clients, args.seconds))
            finally:
                proc.terminate()
                proc.wait(timeout=30)
    ratios = {
        "dna_p50_service_over_bare": runs["sequential"]["dna"]["p50_ms"] / bare_t["dna"]["p50_ms"],
        "dna_p50_service_over_core": runs["sequential"]["dna"]["p50_ms"] / bare_t["dna_core"]["p50_ms"],
        "concurrent_batched_over_unbatched": runs["concurrent_batch32"]["requests_per_s"]
        / runs["concurrent_batch1"]["requests_per_s"],
        "concurrent_batched_over_bare_batched_encoder": runs["concurrent_batch32"]["requests_per_s"]
        / bare_t["dna_batched_items_per_s"],
        "concurrent_batched_over_bare_batched_core": runs["concurrent_batch32"]["requests_per_s"]
        / bare_t["dna_core_batched_items_per_s"],
    }
    if "image" in bare_t:
        ratios["image_p50_service_over_bare"] = runs["sequential"]["image"]["p50_ms"] / bare_t["image"]["p50_ms"]
    command = "python -m benchmarks.service_latency " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    refs = f"{args.barcode_references:,} SYNTHETIC barcode keys" if args.barcode_references else "clibd synth keys"
    out = {"command": command, "machine": describe_machine(), "model": args.model, "references": refs,
           "bare": bare_t, "service": runs, "ratios": ratios}
    name = f"service_latency_{args.model}" + (f"_{args.barcode_references}refs" if args.barcode_references else "")
    b, s = bare_t, runs
    md = [f"# /v1/identify against the bare encoder + search ({args.model}, untrained weights; {refs})", "",
          f"Command: `{command}`  ", f"Machine: {json.dumps(out['machine'])}", "",
          "| query | bare p50 ms | bare p95 ms | service p50 ms | service p95 ms | service / bare (p50) |",
          "|---|---|---|---|---|---|"]
    for q in ("dna", "image"):
        if q in b:
            md.append(f"| {q} (encoder + search) | {b[q]['p50_ms']:.1f} | {b[q]['p95_ms']:.1f} | "
                      f"{s['sequential'][q]['p50_ms']:.1f} | {s['sequential'][q]['p95_ms']:.1f} | "
                      f"{ratios[q + '_p50_service_over_bare']:.2f} |")
    md.append(f"| dna (whole core answer: + k-mer candidates, alignments, verdict) | {b['dna_core']['p50_ms']:.1f} | "
              f"{b['dna_core']['p95_ms']:.1f} | {s['sequential']['dna']['p50_ms']:.1f} | "
              f"{s['sequential']['dna']['p95_ms']:.1f} | {ratios['dna_p50_service_over_core']:.2f} |")
    if "dna_core_far" in b:
        md.append(f"| dna of a new species, 10% from every key (whole core answer, broad candidate search) | "
                  f"{b['dna_core_far']['p50_ms']:.1f} | {b['dna_core_far']['p95_ms']:.1f} | "
                  f"{s['sequential']['dna_far']['p50_ms']:.1f} | {s['sequential']['dna_far']['p95_ms']:.1f} | "
                  f"{s['sequential']['dna_far']['p50_ms'] / b['dna_core_far']['p50_ms']:.2f} |")
    md += ["", f"{args.clients} concurrent clients, DNA, {args.seconds:.0f} s each:", "",
           "| run | requests/s | p50 ms | p95 ms |", "|---|---|---|---|",
           f"| service, micro-batching (max 32) | {s['concurrent_batch32']['requests_per_s']:.1f} | "
           f"{s['concurrent_batch32']['p50_ms']:.0f} | {s['concurrent_batch32']['p95_ms']:.0f} |",
           f"| service, no batching (max 1) | {s['concurrent_batch1']['requests_per_s']:.1f} | "
           f"{s['concurrent_batch1']['p50_ms']:.0f} | {s['concurrent_batch1']['p95_ms']:.0f} |",
           f"| bare encoder, batches of 32 + search | {b['dna_batched_items_per_s']:.1f} | | |",
           f"| bare core, batches of 32 whole answers (+ alignments, verdicts) | "
           f"{b['dna_core_batched_items_per_s']:.1f} | | |", "",
           f"Batching's worth: {ratios['concurrent_batched_over_unbatched']:.2f}x the unbatched service; the "
           f"batched service reaches {ratios['concurrent_batched_over_bare_batched_core']:.2f} of the bare core's "
           f"batched rate ({ratios['concurrent_batched_over_bare_batched_encoder']:.2f} of the encoder + search "
           f"alone, which skips the alignments every answer needs)."]
    write_results(name, out, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
