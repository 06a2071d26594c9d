"""Subcommands of `clibd` contributed by the index package."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path
from typing import Optional

from clibd.dna_tokenizer import MAX_BARCODE_LENGTH, MIN_BARCODE_LENGTH
from clibd.readers import FORMATS

_FMT = argparse.ArgumentDefaultsHelpFormatter


def _build(args: argparse.Namespace) -> int:
    from clibd.readers import read_records
    from clibd.records import SYNTHETIC_NOTICE
    from clibd.index.build import build_snapshot

    records = read_records(args.records, args.format, args.image_root)
    if args.splits:
        wanted = set(args.splits.split(","))
        records = [r for r in records if r.split in wanted]
    path = build_snapshot(args.checkpoint, records, args.out, modalities=args.modalities.split(","),
                          factory=args.factory or None, memory_budget_bytes=int(args.memory_budget_gb * (1 << 30)),
                          shard_size=args.shard_size, device=args.device, batch_size=args.batch_size,
                          synthetic=(Path(args.records).parent / SYNTHETIC_NOTICE).exists())
    print(f"snapshot {path.name} is current under {args.out}")
    print((path / "manifest.json").read_text())
    return 0


def _compact(args: argparse.Namespace) -> int:
    from clibd.checkpoint import checkpoint_hash
    from clibd.embedder import Embedder
    from clibd.readers import read_records
    from clibd.index.snapshot import prune_snapshots
    from clibd.index.update import apply_and_compact

    add = read_records(args.add, args.format, args.image_root) if args.add else []
    remove = []
    if args.remove:
        remove = [line.strip() for line in open(args.remove) if line.strip() and not line.startswith("#")]
    if add and not args.checkpoint:
        raise ValueError("--add needs --checkpoint to embed the new records")
    embedder = Embedder.from_checkpoint(args.checkpoint, device=args.device) if args.checkpoint else None
    snap = apply_and_compact(args.root, embedder, add, remove,
                             checkpoint_hash(args.checkpoint) if args.checkpoint else None)
    pruned = prune_snapshots(args.root, keep=args.keep) if args.keep else []
    print(f"snapshot {snap.id} is current under {args.root}: {snap.manifest['counts']}"
          f" ({len(add)} records added, {len(remove)} ids removed, {len(pruned)} old snapshots pruned)")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from clibd.readers import read_records
    from clibd.index.calibration import calibrate, evaluate_split
    from clibd.index.identifier import Identifier

    records = read_records(args.records, args.format, args.image_root)
    fit = [r for r in records if r.split in set(args.fit_splits.split(","))]
    held = [r for r in records if r.split in set(args.report_splits.split(","))]
    if not fit:
        raise ValueError(f"no records in the splits {args.fit_splits} of {args.records}")
    identifier = Identifier.load(args.checkpoint, args.index_root, args.device)
    thresholds = calibrate(identifier, fit, args.target_precision, args.top_k)
    identifier.thresholds = thresholds
    thresholds.fitted_on["report"] = evaluate_split(identifier, thresholds, held, args.top_k) if held else {}
    thresholds.fitted_on["report_splits"] = args.report_splits
    path = thresholds.save(args.index_root)
    bands = dataclasses.asdict(thresholds.barcode) if thresholds.barcode else None
    if bands:  # per-genus spreads are in the file; say for how many genera, as answers' provenance does
        placement = bands.pop("placement")
        bands["placement_genera"] = len(placement["by_genus"]) if placement else 0
    print(json.dumps({"thresholds": {m: {"confident": t.confident, "novel": t.novel}
                                     for m, t in thresholds.by_modality.items()},
                      "barcode_bands": bands,
                      "report": thresholds.fitted_on["report"]}, indent=2))
    print(f"thresholds written to {path}")
    return 0


def _variable(name: str) -> str:
    return f"CLIBD_{name.upper()}"


def _service_value(given: Optional[int], name: str, default: int, env_file: str | Path = ".env") -> int:
    """A limit of `clibd identify` in-process: the option, else the service's setting `name` (from the
    environment, else from the `.env` file the service reads), else the default."""
    if given is not None:
        return given
    variable, where = _variable(name), "environment"
    text = os.environ.get(variable, "").strip()
    if not text and Path(env_file).is_file():
        from dotenv import dotenv_values

        found = {k.upper(): v for k, v in dotenv_values(env_file).items() if v is not None}
        text, where = (found.get(variable) or "").strip(), str(env_file)
    if not text:
        return default
    try:
        return int(text)  # as the service reads it (500_000_000 included)
    except ValueError:
        raise ValueError(f"{variable}={text!r} (from {where}) is not a whole number") from None


def _identify(args: argparse.Namespace) -> int:
    from clibd.index.identify_files import identify_files, identify_in_process, identify_via_server, output_kind

    output_kind(args.out)  # refuse an unknown output type before loading anything
    for name in ("top_k", "batch_size"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be 1 or more, got {getattr(args, name)}")
    if args.server:
        if args.retries < 0:
            raise ValueError(f"--retries must be 0 or more, got {args.retries}")
        if args.parallel < 1:
            raise ValueError(f"--parallel must be 1 or more, got {args.parallel}")
        run = identify_via_server(args.server, args.top_k, attempts=args.retries + 1, parallel=args.parallel,
                                  restrict_to=args.restrict_to)
    else:
        if not args.checkpoint or not args.index_root:
            raise ValueError("give --checkpoint and --index-root (in-process), or --server URL")
        from clibd.index.identifier import Identifier
        from clibd.photos import PhotoLimits

        lengths = [_service_value(given, f"{bound}_barcode_length", default) for given, bound, default in
                   ((args.min_barcode_length, "min", MIN_BARCODE_LENGTH),
                    (args.max_barcode_length, "max", MAX_BARCODE_LENGTH))]
        defaults = PhotoLimits()
        photo_limits = PhotoLimits(**{name: _service_value(None, name, getattr(defaults, name))
                                      for name in ("max_image_pixels", "max_request_pixels")})
        run = identify_in_process(Identifier.load(args.checkpoint, args.index_root, args.device), args.top_k,
                                  *lengths, photo_limits=photo_limits, restrict_to=args.restrict_to)
    counts = identify_files(args.inputs, args.out, run, resume=args.resume, batch_size=args.batch_size)
    print(f"{args.out}: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `index build`, `index compact`, `calibrate` and `identify` to the `clibd` parser."""
    c = sub.add_parser("calibrate", formatter_class=_FMT, help="fit the confident/novel thresholds of a snapshot",
                       description="Search validation records (seen and unseen species) against the current "
                                   "snapshot, fit per-rank thresholds for 'confident' and 'novel' (photos) and the "
                                   "per-rank identity bands (barcodes), report them on held-out records, and "
                                   "store them beside the snapshot.")
    c.add_argument("--checkpoint", required=True, help="model checkpoint")
    c.add_argument("--index-root", required=True, help="index root built with this checkpoint")
    c.add_argument("--records", required=True, help="records with split names (e.g. a partition's records.tsv)")
    c.add_argument("--format", default="auto", choices=FORMATS)
    c.add_argument("--image-root", default=None)
    c.add_argument("--fit-splits", default="val,val_unseen", help="splits to fit on")
    c.add_argument("--report-splits", default="test,test_unseen", help="held-out splits to report on")
    c.add_argument("--target-precision", type=float, default=0.95, help="precision a confident rank must reach")
    c.add_argument("--top-k", type=int, default=10, help="neighbours per query (as the service uses)")
    c.add_argument("--device", default=None)
    c.set_defaults(func=_calibrate)
    i = sub.add_parser("identify", formatter_class=_FMT, help="identify the specimens of FASTA files or manifests",
                       description="Identify every specimen of the inputs (FASTA files, or CSV/TSV manifests with "
                                   "id, dna/sequence and image columns; a photo path is relative to its manifest) "
                                   "with the same code the service runs, in this process (--checkpoint, "
                                   "--index-root) or against a running service (--server). Answers are appended "
                                   "batch by batch to --out, whose name picks the format: .csv, .tsv, .json / "
                                   ".jsonl (one JSON answer per line), .dwc.tsv (Darwin Core). CSV/TSV columns: "
                                   "id, status, taxonRank, scientificName, order..species (confident names only), "
                                   "novel_at_rank, top_species (best species whatever its confidence), "
                                   "top_identity (best percent identity of a barcode), bin, remarks, error.")
    i.add_argument("inputs", nargs="+", help="FASTA files and/or CSV/TSV manifests")
    i.add_argument("--out", required=True, help="output file (.csv, .tsv, .json, .jsonl, .dwc.tsv)")
    i.add_argument("--checkpoint", default=None, help="model checkpoint (in-process)")
    i.add_argument("--index-root", default=None, help="index root built with the checkpoint (in-process)")
    i.add_argument("--server", default=None, help="URL of a running service, e.g. http://127.0.0.1:8000")
    i.add_argument("--resume", action="store_true", help="skip the ids already in --out and append the rest")
    i.add_argument("--retries", type=int, default=4,
                   help="with --server: tries again (waits doubling from 1 s) when the server is unreachable, busy "
                        "or failing (429, 5xx); then the run stops with what it finished written")
    i.add_argument("--parallel", type=int, default=4,
                   help="with --server: requests in flight at once (the service batches them on its encoder)")
    i.add_argument("--top-k", type=int, default=10, help="neighbours per answer")
    i.add_argument("--restrict-to", default=None,
                   help="search only under this taxon, at any rank (e.g. a family the whole plate belongs to)")
    i.add_argument("--batch-size", type=int, default=64, help="specimens embedded and written at once")
    i.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    for bound, default in (("min", MIN_BARCODE_LENGTH), ("max", MAX_BARCODE_LENGTH)):
        i.add_argument(f"--{bound}-barcode-length", type=int, default=None,
                       help=f"{bound}imum barcode length in-process (default: ${_variable(f'{bound}_barcode_length')}"
                            f" or .env, as the service reads it, else {default}); a server applies its own")
    i.set_defaults(func=_identify)

    p = sub.add_parser("index", help="reference key indexes (FAISS snapshots)",
                       description="Build and manage FAISS snapshots of reference keys.")
    isub = p.add_subparsers(dest="index_command", metavar="ACTION", required=True)
    b = isub.add_parser("build", formatter_class=_FMT, help="embed reference keys and write a snapshot",
                        description="Embed the image, DNA and taxonomy keys of a record file with a checkpoint "
                                    "(sharded and resumable: a re-run reuses finished shards), build one FAISS "
                                    "index per modality and make the snapshot current under --out.")
    b.add_argument("--checkpoint", required=True, help="checkpoint file")
    b.add_argument("--records", required=True, help="reference records (any supported format)")
    b.add_argument("--format", default="auto", choices=FORMATS, help="record file format")
    b.add_argument("--image-root", default=None, help="folder that relative image paths resolve against")
    b.add_argument("--splits", default="", help="comma list of splits to use as keys (default: all records)")
    b.add_argument("--out", required=True, help="index root (snapshots/ and CURRENT)")
    b.add_argument("--modalities", default="image,dna,text", help="which key sets to build")
    b.add_argument("--factory", default="", help="FAISS factory string (default: chosen from key count and budget)")
    b.add_argument("--memory-budget-gb", type=float, default=8.0, help="memory an index may take")
    b.add_argument("--shard-size", type=int, default=10_000, help="keys per embedding shard")
    b.add_argument("--batch-size", type=int, default=128, help="embedding batch size")
    b.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    b.set_defaults(func=_build)
    c = isub.add_parser("compact", formatter_class=_FMT, help="fold added/removed records into a new snapshot",
                        description="Add records (embedded with --checkpoint) and remove ids from the current "
                                    "snapshot under --root, then write the result as a new snapshot and switch "
                                    "to it atomically. Readers of the old snapshot are never disturbed.")
    c.add_argument("--root", required=True, help="index root (snapshots/ and CURRENT)")
    c.add_argument("--checkpoint", default=None, help="checkpoint the snapshot was built with (needed for --add)")
    c.add_argument("--add", default=None, help="records to add (any supported format)")
    c.add_argument("--format", default="auto", choices=FORMATS, help="format of --add")
    c.add_argument("--image-root", default=None, help="folder that relative image paths in --add resolve against")
    c.add_argument("--remove", default=None, help="file of record ids to remove, one per line")
    c.add_argument("--keep", type=int, default=2, help="snapshots to keep afterwards (0: keep all)")
    c.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    c.set_defaults(func=_compact)
