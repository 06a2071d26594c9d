"""The published model's size on this machine: import a full-size published-format file, then embed.

    python -m benchmarks.official_throughput [--images 64] [--barcodes 256] [--taxa 256] [--batch 32]

Writes a `best.pth` with the published CLIBD key names and shapes (ViT-B/16 with rank-4 q/v adapters,
BarcodeBERT with the square decoder, BERT-small + proj; random values: speed does not depend on them) and a
30,522-token vocab.txt, runs `clibd import-official` on it (timed), then measures the imported model's
embedding throughput on the CPU (images/s from 4:3 photos through the published preprocessing, barcodes/s
for 658-nt barcodes, taxa/s) after one warm-up batch each.
Writes benchmarks/results/official_throughput.{json,md}.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchmarks.machine import describe_machine, write_results
from clibd.cli import main as clibd_main
from clibd.embedder import Embedder
from clibd.factory import get_model_config
from clibd.model import CLIBD
from clibd.text_tokenizer import TextTokenizer

TEXT_VOCAB = 30522


def write_vocab(folder: Path) -> Path:
    """A 30,522-line WordPiece vocab.txt (the size of bert-base-uncased's; tokens are placeholders)."""
    folder.mkdir(parents=True, exist_ok=True)
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list("abcdefghijklmnopqrstuvwxyz")
    words += [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"]
    words += [f"w{i}" for i in range(TEXT_VOCAB - len(words))]
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")
    return folder


def published_state_dict(vocab_dir: Path, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors under the published names and shapes (I+D+T, current prefixes, adapters on every block)."""
    torch.manual_seed(seed)
    model = CLIBD(get_model_config("clibd-official"), TextTokenizer.from_dir(vocab_dir, 20))
    out: dict[str, torch.Tensor] = {"logit_scale": model.logit_scale.detach()}
    for key, tensor in model.state_dict().items():
        if key.startswith("image.trunk."):
            name = "image_encoder.base_image_encoder." + key[len("image.trunk."):]
            if name.endswith("attn.qkv.weight") or name.endswith("attn.qkv.bias"):
                stem, leaf = name.rsplit(".", 1)
                out[f"{stem}.qkv.{leaf}"] = tensor
                if leaf == "weight":
                    d = tensor.shape[1]
                    for part in ("q", "v"):
                        out[f"{stem}.linear_a_{part}.weight"] = 0.01 * torch.randn(4, d)
                        out[f"{stem}.linear_b_{part}.weight"] = 0.01 * torch.randn(d, 4)
                continue
            out[name] = tensor
        elif key.startswith("dna.mlm."):
            out["dna_encoder.base_dna_encoder." + key[len("dna.mlm."):]] = tensor
        elif key.startswith("text.bert."):
            out["language_encoder.base_language_encoder." + key[len("text.bert."):]] = tensor
        elif key.startswith("text.proj."):
            out["language_encoder." + key[len("text."):]] = tensor
    out["language_encoder.base_language_encoder.pooler.dense.weight"] = torch.randn(512, 512) * 0.02
    out["language_encoder.base_language_encoder.pooler.dense.bias"] = torch.zeros(512)
    return out


def _rate(fn, items: list, batch: int) -> float:
    fn(items[:batch])  # warm-up
    t0 = time.perf_counter()
    fn(items)
    return len(items) / (time.perf_counter() - t0)


def main() -> None:
    """Import a full-size file, then measure embedding throughput."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--barcodes", type=int, default=256)
    ap.add_argument("--taxa", type=int, default=256)
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        vocab = write_vocab(tmp / "bert-base-uncased")
        state = published_state_dict(vocab)
        torch.save(state, tmp / "best.pth")
        size_mb = (tmp / "best.pth").stat().st_size / 2**20
        n_params = sum(v.numel() for v in state.values())
        del state
        t0 = time.perf_counter()
        clibd_main(["import-official", str(tmp / "best.pth"), "--out", str(tmp / "model.pt"),
                    "--text-tokenizer", str(vocab)])
        import_s = time.perf_counter() - t0
        embedder = Embedder.from_checkpoint(tmp / "model.pt", device="cpu", batch_size=args.batch)
    photos = [Image.fromarray(rng.integers(0, 256, (768, 1024, 3), dtype=np.uint8)) for _ in range(args.images)]
    barcodes = ["".join(rng.choice(list("ACGT"), 658)) for _ in range(args.barcodes)]
    taxa = [{"order": "Diptera", "family": f"f{i % 50}", "genus": f"g{i}", "species": f"g{i} s{i}"}
            for i in range(args.taxa)]
    with torch.inference_mode():
        rates = {"images_per_s": _rate(embedder.encode_images, photos, args.batch),
                 "barcodes_per_s": _rate(embedder.encode_dna, barcodes, args.batch),
                 "taxa_per_s": _rate(embedder.encode_text, taxa, args.batch)}
    result = {"machine": describe_machine(), "file_mb": round(size_mb, 1), "file_parameters": n_params,
              "import_seconds": round(import_s, 1), "batch": args.batch,
              "counts": {"images": args.images, "barcodes": args.barcodes, "taxa": args.taxa},
              **{k: round(v, 2) for k, v in rates.items()}}
    m = result["machine"]
    md = [f"# Published-size model on this machine ({m['cpus']} CPUs, torch {m['torch']}, "
          f"{m['torch_threads']} threads{', ' + m['gpu'] if 'gpu' in m else ''})", "",
          "`python -m benchmarks.official_throughput`: a full-size file with the published names and shapes "
          "(random values), imported, then embedded on the CPU.", "",
          "| what | value |", "|---|---|",
          f"| published-format file | {size_mb:.0f} MB, {n_params / 1e6:.1f}M values |",
          f"| `clibd import-official` | {import_s:.1f} s |",
          f"| images/s (1024x768 photos, ViT-B/16 at 224) | {rates['images_per_s']:.2f} |",
          f"| barcodes/s (658 nt, BarcodeBERT 12 layers) | {rates['barcodes_per_s']:.2f} |",
          f"| taxa/s (BERT-small, 20 tokens) | {rates['taxa_per_s']:.2f} |", ""]
    write_results("official_throughput", result, md)


if __name__ == "__main__":
    main()
