"""Training samples/s of a model config (I+D+T step on random inputs), with and without gradient checkpointing.

    python -m benchmarks.train_throughput --model clibd-base            # on a GPU: finds the largest batch
    python -m benchmarks.train_throughput --model clibd-tiny --batch-sizes 32,64

Inputs are random tensors of the right shapes, so the figure is the model's step time alone (no data loading).
Writes benchmarks/results/train_throughput_<model>_<device>.json and .md.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import torch

from benchmarks.machine import describe_machine
from clibd.embedder import autocast_for
from clibd.factory import create_model
from clibd.training.loss import ContrastiveLoss

RESULTS = Path(__file__).parent / "results"


def _batch(model, n: int, device: torch.device) -> dict[str, torch.Tensor]:
    size = model.config.preprocess.image_size
    dna_len = model.dna_tokenizer.num_tokens
    return {
        "image": torch.randn(n, 3, size, size, device=device),
        "dna_input_ids": torch.randint(3, model.dna_tokenizer.vocab_size, (n, dna_len), device=device),
        "dna_attention_mask": torch.ones(n, dna_len, dtype=torch.long, device=device),
        "text_input_ids": torch.randint(5, model.text_tokenizer.vocab_size, (n, model.config.text.max_tokens),
                                        device=device),
        "text_attention_mask": torch.ones(n, model.config.text.max_tokens, dtype=torch.long, device=device),
    }


def measure(model, batch_size: int, device: torch.device, steps: int, warmup: int) -> float:
    """Samples per second of forward + loss + backward + AdamW step."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    loss_fn = ContrastiveLoss()
    batch = _batch(model, batch_size, device)
    for i in range(warmup + steps):
        if i == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        with autocast_for(device):
            out = model(batch)
            loss, _ = loss_fn({m: out[m].float() for m in ("image", "dna", "text")}, out["logit_scale"].float())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch_size * steps / (time.perf_counter() - t0)


def largest_batch(model, device: torch.device, start: int = 32, cap: int = 8192) -> int:
    """Doubling then bisecting until a step runs out of GPU memory (at most `cap`)."""
    ok, bad = 0, None
    n = start
    while (bad is None and n <= cap) or (bad is not None and bad - ok > max(8, ok // 16)):
        try:
            measure(model, n, device, steps=1, warmup=0)
            ok = n
            n = n * 2 if bad is None else (ok + bad) // 2
        except torch.cuda.OutOfMemoryError:
            bad = n
            n = (ok + bad) // 2
        finally:
            torch.cuda.empty_cache()
    return ok


def main() -> int:
    """Measure and write the results."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="clibd-base")
    ap.add_argument("--batch-sizes", default="", help="comma list; default: the largest that fits (GPU only)")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    rows = []
    for ckpt in (False, True):
        model = create_model(args.model, text_corpus=["a b c d"]).to(device).train()
        model.set_grad_checkpointing(ckpt)
        if args.batch_sizes:
            sizes = [int(x) for x in args.batch_sizes.split(",")]
        elif device.type == "cuda":
            sizes = [largest_batch(model, device)]
        else:
            raise SystemExit("on the CPU give --batch-sizes")
        for n in sizes:
            rate = measure(model, n, device, args.steps, args.warmup)
            rows.append({"grad_checkpointing": ckpt, "batch_size": n, "samples_per_s": rate})
            print(f"grad_checkpointing={ckpt} batch={n}: {rate:.1f} samples/s", flush=True)
        del model
    command = "python -m benchmarks.train_throughput " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    result = {"command": command, "machine": describe_machine(), "model": args.model, "device": device.type,
              "precision": "bf16 autocast" if device.type == "cuda" else "fp32", "rows": rows}
    name = f"train_throughput_{args.model}_{device.type}"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2))
    md = [f"# Training throughput, {args.model} on {device.type}", "", f"Command: `{command}`  ",
          f"Machine: {json.dumps(result['machine'])}", "",
          "| grad checkpointing | batch | samples/s |", "|---|---|---|"]
    md += [f"| {r['grad_checkpointing']} | {r['batch_size']} | {r['samples_per_s']:.1f} |" for r in rows]
    (RESULTS / f"{name}.md").write_text("\n".join(md) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
