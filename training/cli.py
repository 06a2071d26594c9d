"""Subcommands of `clibd` contributed by the training package."""
from __future__ import annotations

import argparse
import logging
import shutil
from pathlib import Path

from clibd.readers import FORMATS

log = logging.getLogger(__name__)
_FMT = argparse.ArgumentDefaultsHelpFormatter


def _synth(args: argparse.Namespace) -> int:
    from clibd.training.synth import SynthConfig, generate

    cfg = SynthConfig(orders=args.orders, families_per_order=args.families, genera_per_family=args.genera,
                      species_per_genus=args.species, specimens_per_species=(args.min_specimens, args.max_specimens),
                      image_size=args.image_size, seed=args.seed)
    records = generate(args.out, cfg)
    print(f"wrote {len(records)} SYNTHETIC specimens of {len({r.species for r in records})} invented species "
          f"to {Path(args.out) / 'records.tsv'}")
    return 0


def _partition(args: argparse.Namespace) -> int:
    from clibd.records import SYNTHETIC_NOTICE
    from clibd.training.partition import PartitionConfig, partition, write_partition
    from clibd.readers import read_records

    cfg = PartitionConfig(seed=args.seed, unseen_strategy=args.unseen_strategy,
                          min_records_seen=args.min_records_seen, unseen_fraction=args.unseen_fraction)
    records = partition(read_records(args.records, args.format, args.image_root), cfg)
    write_partition(records, args.out, cfg)
    notice = Path(args.records).parent / SYNTHETIC_NOTICE
    if notice.exists():  # synthetic in, synthetic out: the notice travels with the records
        shutil.copyfile(notice, Path(args.out) / SYNTHETIC_NOTICE)
    print((Path(args.out) / "counts.md").read_text(), end="")
    return 0


def _train(args: argparse.Namespace) -> int:
    from clibd.training.train import TrainConfig, train

    cfg = TrainConfig(records=args.records, out_dir=args.out, model=args.model,
                      modalities=tuple(args.modalities.split(",")), image_root=args.image_root, epochs=args.epochs,
                      batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
                      warmup_pct=args.warmup_pct, species_positives=args.species_positives,
                      grad_checkpointing=args.grad_checkpointing, include_unlabelled=not args.labelled_only,
                      val_every=args.val_every, num_workers=args.workers, seed=args.seed, device=args.device,
                      max_steps=args.max_steps, pair_dna_records=args.pair_dna_records,
                      tower_weights={"image": args.image_weights, "dna": args.dna_weights, "text": args.text_weights})
    print(f"best checkpoint: {train(cfg)}")
    return 0


def _pretrain(args: argparse.Namespace) -> int:
    from clibd.training.pretrain_dna import PretrainConfig, pretrain_dna

    cfg = PretrainConfig(records=args.records, out_dir=args.out, model=args.model, epochs=args.epochs,
                         batch_size=args.batch_size, lr=args.lr, max_steps=args.max_steps, seed=args.seed,
                         device=args.device)
    print(f"DNA tower weights: {pretrain_dna(cfg)}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from clibd.embedder import Embedder
    from clibd.training.evaluate import COMBOS, evaluate, write_results
    from clibd.readers import read_records

    embedder = Embedder.from_checkpoint(args.checkpoint, device=args.device, batch_size=args.batch_size,
                                        progress=True)
    records = read_records(args.records, args.format, args.image_root)
    combos = COMBOS if not args.combos else [tuple(c.split("->")) for c in args.combos.split(",")]
    results = evaluate(embedder, records, args.phase, combos, exclude_exact_dna=args.exclude_exact_dna)
    results["checkpoint"] = str(args.checkpoint)
    js, md = write_results(results, args.out, args.title or f"{Path(args.checkpoint).name} on {args.phase}")
    print(md.read_text(), end="")
    print(f"wrote {js} and {md}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add synth, partition, train, pretrain-dna and evaluate to the `clibd` parser."""
    p = sub.add_parser("synth", formatter_class=_FMT, help="generate paired SYNTHETIC specimens",
                       description="Generate a random phylogeny with drifting barcodes and drawn insects "
                                   "(synthetic, for tests and demos): records.tsv + images/.")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--orders", type=int, default=2, help="number of orders")
    p.add_argument("--families", type=int, default=2, help="families per order")
    p.add_argument("--genera", type=int, default=3, help="genera per family")
    p.add_argument("--species", type=int, default=4, help="species per genus")
    p.add_argument("--min-specimens", type=int, default=8, help="fewest specimens per species")
    p.add_argument("--max-specimens", type=int, default=16, help="most specimens per species")
    p.add_argument("--image-size", type=int, default=96, help="image side in pixels")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.set_defaults(func=_synth)

    def run_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--seed", type=int, default=0, help="random seed")
        p.add_argument("--device", default="auto", help="auto, cpu or cuda")

    def records_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--records", required=True, help="record file (any supported format)")
        p.add_argument("--format", default="auto", choices=FORMATS, help="record file format")
        p.add_argument("--image-root", default=None, help="folder that relative image paths resolve against")

    p = sub.add_parser("partition", formatter_class=_FMT, help="split records the CLIBD way",
                       description="Seen/unseen species; train, val/test queries and keys; written as "
                                   "records.tsv + counts.json + counts.md.")
    records_args(p)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--unseen-strategy", default="random", choices=["random", "congeneric"],
                   help="how unseen species are drawn ('congeneric' keeps a seen species in their genus)")
    p.add_argument("--min-records-seen", type=int, default=10, help="records a species needs to be seen")
    p.add_argument("--unseen-fraction", type=float, default=0.2, help="share of those species held out")
    p.set_defaults(func=_partition)

    p = sub.add_parser("train", formatter_class=_FMT, help="contrastive training",
                       description="Align the towers contrastively on a partitioned record file; resumes from "
                                   "--out when a run is there. Works under torchrun for DDP.")
    p.add_argument("--records", required=True, help="partitioned records (records.tsv from `clibd partition`)")
    p.add_argument("--image-root", default=None, help="folder that relative image paths resolve against")
    p.add_argument("--out", required=True, help="run folder: best.pt, last.pt, train_state.pt, metrics.jsonl")
    p.add_argument("--model", default="clibd-tiny", help="model config name or JSON path")
    p.add_argument("--modalities", default="image,dna,text", help="comma list of at least two of image,dna,text")
    p.add_argument("--epochs", type=int, default=10, help="epochs")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (overrides epochs)")
    p.add_argument("--batch-size", type=int, default=64, help="batch size per process")
    p.add_argument("--lr", type=float, default=5e-5, help="peak learning rate of the one-cycle schedule")
    p.add_argument("--weight-decay", type=float, default=0.01, help="AdamW weight decay")
    p.add_argument("--warmup-pct", type=float, default=0.3, help="share of steps warming up")
    p.add_argument("--species-positives", action="store_true", help="same-species pairs in a batch are positives")
    p.add_argument("--grad-checkpointing", action="store_true", help="activation checkpointing in all towers")
    p.add_argument("--labelled-only", action="store_true", help="leave out records without species (pretrain)")
    p.add_argument("--val-every", type=int, default=1, help="validate every N epochs")
    p.add_argument("--workers", type=int, default=0, help="data loader worker processes")
    p.add_argument("--image-weights", default=None, help="local weights file for the image tower")
    p.add_argument("--dna-weights", default=None, help="local weights file for the DNA tower (e.g. pretrain-dna)")
    p.add_argument("--text-weights", default=None, help="local weights file for the text tower")
    p.add_argument("--pair-dna-records", default=None,
                   help="record file of barcodes paired with the training photos by species (species-level "
                        "pairing, for photos without their own barcode); its train rows, or all if unsplit")
    run_args(p)
    p.set_defaults(func=_train)

    p = sub.add_parser("pretrain-dna", formatter_class=_FMT, help="masked-LM pretraining of the DNA tower",
                       description="BarcodeBERT recipe on the train/pretrain barcodes of a record file; "
                                   "writes dna_tower.pt and resumes from --out.")
    p.add_argument("--records", required=True, help="record file (train/pretrain splits used when present)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--model", default="clibd-tiny", help="model config whose DNA tower is pretrained")
    p.add_argument("--epochs", type=int, default=5, help="epochs")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps")
    p.add_argument("--batch-size", type=int, default=128, help="batch size")
    p.add_argument("--lr", type=float, default=1e-4, help="learning rate")
    run_args(p)
    p.set_defaults(func=_pretrain)

    p = sub.add_parser("evaluate", formatter_class=_FMT, help="the paper's retrieval evaluation",
                       description="Exact cosine search of val/test queries against all keys; top-1/3/5 "
                                   "micro and macro per rank, seen/unseen/H, as JSON and markdown.")
    p.add_argument("--checkpoint", required=True, help="checkpoint file")
    records_args(p)
    p.add_argument("--out", required=True, help="output prefix (writes PREFIX.json and PREFIX.md)")
    p.add_argument("--phase", default="test", choices=["val", "test"], help="which queries")
    p.add_argument("--combos", default="", help="comma list like dna->dna,image->dna (default: all possible)")
    p.add_argument("--exclude-exact-dna", action="store_true",
                   help="drop DNA queries whose exact barcode is among the keys")
    p.add_argument("--title", default="", help="title of the markdown table")
    p.add_argument("--batch-size", type=int, default=256, help="embedding batch size")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    p.set_defaults(func=_evaluate)
