"""Why the service runs its model on one thread: one barcode's encoding, model on one thread vs two.

    python -m benchmarks.torch_threads [--model clibd-lite0] [--repeats 200]

Each arrangement runs in a fresh process over the same untrained checkpoint, encoding one 640-nt barcode
`--repeats` times (p50 after a warm-up):
- one thread: loaded and run on the torch thread (`Embedder(pinned=True)`, what `clibd serve` does);
- two threads: loaded on the main thread, run on another (what a server does that loads at start-up and
  encodes from a worker thread);
- main thread only: loaded and run on the main thread (a script).
With torch's OpenMP backend every thread that runs torch brings its own team of workers.
Writes benchmarks/results/torch_threads.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.machine import describe_machine, write_results

ARRANGEMENTS = {"one-thread": "loaded and run on the torch thread (the service)",
                "two-threads": "loaded on the main thread, run on another",
                "main-only": "loaded and run on the main thread"}
BARCODE = "ACGT" * 160


def _measure(checkpoint: str, arrangement: str, repeats: int) -> float:
    from clibd.embedder import Embedder

    embedder = Embedder.from_checkpoint(checkpoint, device="cpu", pinned=arrangement == "one-thread")

    def run() -> float:
        times = []
        for _ in range(repeats + 20):
            t0 = time.perf_counter()
            embedder.encode_dna([BARCODE])
            times.append(time.perf_counter() - t0)
        return statistics.median(times[20:]) * 1000
    if arrangement == "two-threads":
        return ThreadPoolExecutor(1).submit(run).result()
    return run()


def main() -> int:
    """Run every arrangement in its own process and write the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="clibd-lite0")
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--child", nargs=2, metavar=("CHECKPOINT", "ARRANGEMENT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_measure(args.child[0], args.child[1], args.repeats)))
        return 0
    from clibd import create_model, save_checkpoint
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = save_checkpoint(create_model(args.model), Path(tmp) / "model.pt")
        p50 = {}
        for arrangement in ARRANGEMENTS:
            out = subprocess.run([sys.executable, "-m", "benchmarks.torch_threads", "--repeats", str(args.repeats),
                                  "--child", str(checkpoint), arrangement], capture_output=True, text=True, check=True)
            p50[arrangement] = float(out.stdout.strip().splitlines()[-1])
    command = "python -m benchmarks.torch_threads " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    result = {"command": command, "machine": describe_machine(), "model": args.model, "p50_ms": p50}
    md = [f"# One barcode's encoding, model on one thread or two ({args.model}, untrained)", "",
          f"Command: `{command}`  ", f"Machine: {json.dumps(result['machine'])}", "",
          "| arrangement | p50 ms |", "|---|---|"]
    md += [f"| {arrangement}: {ARRANGEMENTS[arrangement]} | {ms:.2f} |" for arrangement, ms in p50.items()]
    md += ["", f"Two threads / one thread: {p50['two-threads'] / p50['one-thread']:.2f}x."]
    write_results("torch_threads", result, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
