"""Real photos: Leeds butterflies (6 species) aligned with real COI barcodes of the same species.

    python -m benchmarks.leeds_photos --work runs/leeds

No specimen here has both a photo and a barcode, so training pairs each photo with a barcode of another
specimen of its species (`--pair-dna-records`). Photos split per species into train / keys / queries;
barcodes (6 pictured species + 58 congeners as distractors) split per species into a training pool and keys.
Compared: the aligned `clibd-lite0`, its ImageNet features without alignment, and chance.
Writes benchmarks/results/leeds_photos.{json,md}. Needs ../shared/data/leeds_butterflies.
"""
from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.machine import describe_machine
from clibd.checkpoint import load_checkpoint
from clibd.embedder import Embedder
from clibd.factory import create_model, get_model_config
from clibd.preprocess import eval_transform, load_image
from clibd.training.evaluate import exact_search, score_neighbors
from clibd.readers import read_records
from clibd.records import Record, write_records
from clibd.training.train import TrainConfig, train

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "leeds_butterflies"
RESULTS = Path(__file__).parent / "results"


def split_per_species(records: list[Record], fractions: dict[str, float], seed: int) -> list[Record]:
    """Assign splits within each species by the given fractions (deterministic)."""
    rng = np.random.default_rng(seed)
    by_species: dict[str, list[Record]] = {}
    for r in sorted(records, key=lambda r: r.id):
        by_species.setdefault(r.species, []).append(r)
    names = list(fractions)
    for species in sorted(by_species):
        group = [by_species[species][i] for i in rng.permutation(len(by_species[species]))]
        bounds = np.cumsum([int(round(f * len(group))) for f in fractions.values()])
        for i, r in enumerate(group):
            r.split = names[min(int(np.searchsorted(bounds, i, side="right")), len(names) - 1)]
    return records


def imagenet_features(model, images: list[str]) -> np.ndarray:
    """L2-normalised pooled ImageNet features of the image trunk (no projection, no alignment)."""
    tf = eval_transform(model.config.preprocess)
    trunk = model.image.trunk.eval()
    feats = []
    with torch.inference_mode():
        for i in range(0, len(images), 32):
            x = torch.stack([tf(load_image(p)) for p in images[i:i + 32]])
            feats.append(trunk.forward_head(trunk.forward_features(x), pre_logits=True))
    f = torch.cat(feats).numpy()
    return f / np.linalg.norm(f, axis=1, keepdims=True)


def main() -> int:
    """Split, train, evaluate, write."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="runs/leeds")
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    work, data = Path(args.work), Path(args.data)
    photos = split_per_species(read_records(data / "images.tsv"),
                               {"train": 0.6, "key_seen": 0.15, "test": 0.25}, args.seed)
    barcodes = split_per_species(read_records(data / "coi.tsv"), {"train": 0.5, "key_seen": 0.5}, args.seed)
    write_records(photos, work / "photos.tsv")
    write_records(barcodes, work / "barcodes.tsv")
    photos, barcodes = read_records(work / "photos.tsv"), read_records(work / "barcodes.tsv")

    shutil.rmtree(work / "run", ignore_errors=True)  # a benchmark measures a fresh run
    t0 = time.perf_counter()
    best = train(TrainConfig(records=str(work / "photos.tsv"), out_dir=str(work / "run"), model="clibd-lite0",
                             modalities=("image", "dna", "text"), epochs=args.epochs, batch_size=args.batch_size,
                             lr=args.lr, species_positives=True, seed=args.seed, device="cpu",
                             pair_dna_records=str(work / "barcodes.tsv")))
    train_s = time.perf_counter() - t0

    queries = [r for r in photos if r.split == "test"]
    photo_keys = [r for r in photos if r.split == "key_seen"]
    dna_keys = [r for r in barcodes if r.split == "key_seen"]
    torch.manual_seed(args.seed)
    untrained = create_model(get_model_config("clibd-lite0"), text_corpus=["x"])
    rows = {}
    for name, model in (("aligned", load_checkpoint(best)), ("unaligned", untrained)):
        emb = Embedder(model, device="cpu", batch_size=32)
        q = emb.encode_images([r.image for r in queries])
        rows[name] = {
            "image->image": score_neighbors(exact_search(q, emb.encode_images([r.image for r in photo_keys]), 5),
                                            queries, photo_keys),
            "image->dna": score_neighbors(exact_search(q, emb.encode_dna([r.dna for r in dna_keys]), 5),
                                          queries, dna_keys)}
    raw_q = imagenet_features(untrained, [r.image for r in queries])
    raw_k = imagenet_features(untrained, [r.image for r in photo_keys])
    rows["imagenet_features"] = {"image->image": score_neighbors(exact_search(raw_q, raw_k, 5), queries, photo_keys)}

    command = "python -m benchmarks.leeds_photos " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    out = {"command": command, "machine": describe_machine(), "train_seconds": train_s,
           "data": "Leeds Butterfly photos (Wang et al. 2009) + public COI barcodes of the same and congeneric species",
           "counts": {"train_photos": sum(r.split == "train" for r in photos), "key_photos": len(photo_keys),
                      "query_photos": len(queries), "pool_barcodes": sum(r.split == "train" for r in barcodes),
                      "key_barcodes": len(dna_keys), "key_barcode_species": len({r.species for r in dna_keys})},
           "results": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "leeds_photos.json").write_text(json.dumps(out, indent=2, default=float))
    c = out["counts"]
    md = ["# Real photos: Leeds butterflies with species-paired real barcodes", "",
          f"Command: `{command}`  ", f"Machine: {json.dumps(out['machine'])}  ",
          f"Training `clibd-lite0` (ImageNet EfficientNet-Lite0 image tower, I+D+T, species pairing): "
          f"{args.epochs} epochs, {train_s:.0f} s.  ",
          f"{c['train_photos']} training photos, {c['key_photos']} key photos, {c['query_photos']} query photos "
          f"(6 species); {c['pool_barcodes']} barcodes to pair with, {c['key_barcodes']} barcode keys of "
          f"{c['key_barcode_species']} species (the 6 pictured + congeners).", "",
          "| model | query->key | species top-1 micro | species top-1 macro | genus top-1 micro | chance (species) |",
          "|---|---|---|---|---|---|"]
    for model_name, combos in rows.items():
        for combo, sc in combos.items():
            md.append(f"| {model_name} | {combo} | {100 * sc['species']['top1_micro']:.1f} | "
                      f"{100 * sc['species']['top1_macro']:.1f} | {100 * sc['genus']['top1_micro']:.1f} | "
                      f"{100 * sc['species']['chance_top1_micro']:.1f} |")
    (RESULTS / "leeds_photos.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
