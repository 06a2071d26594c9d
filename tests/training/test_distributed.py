"""`clibd train` under torchrun: two CPU processes (gloo) gather features for one loss."""
import json
import shutil
import subprocess
import sys

import pytest


@pytest.mark.skipif(shutil.which("torchrun") is None, reason="torchrun is not on PATH")
def test_two_process_ddp_run_trains_and_writes_one_checkpoint(synth_dir, tmp_path):
    run = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29531",
           "-m", "clibd.cli", "train", "--records", str(synth_dir / "partition" / "records.tsv"),
           "--out", str(run), "--max-steps", "2", "--batch-size", "8", "--modalities", "image,dna",
           "--device", "cpu"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["step"] == 2  # only rank 0 writes
    assert (run / "best.pt").exists() and (run / "last.pt").exists()
