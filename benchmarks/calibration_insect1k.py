"""`confident` and `novel` on real barcodes: calibrate on insect1k validation splits, report on held-out ones.

    python -m benchmarks.calibration_insect1k

The CLIBD partition of insect1k with unseen species drawn among genera that keep a seen species; the model is
trained as in benchmarks.insect1k_dna (BarcodeBERT MLM pretraining, then DNA+text alignment; a finished run in
--work is reused). The reference index holds only the seen species' keys (`key_seen`), so every unseen species
is genuinely absent: the service should call those specimens `novel` at species rank, and call seen ones
`confident` only when right. Thresholds are fitted on `val` + `val_unseen` (`clibd calibrate`'s code) and
reported on `test` + `test_unseen`. For comparison, the same rule fitted on vsearch's top-hit identity (the
BOLD-style "no species match below X%" verdict) on the same splits.
Writes benchmarks/results/calibration_insect1k.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.insect1k_dna import add_training_args, partition_insect1k, pretrain_and_align
from benchmarks.machine import describe_machine, write_results
from clibd.readers import read_records
from clibd.index.build import build_snapshot
from clibd.index.calibration import calibrate, evaluate_split, youden_threshold
from clibd.index.identifier import Identifier
from clibd.training.vsearch import vsearch_top_hits



def vsearch_rule(fit: list, held: list, keys: list) -> dict:
    """Species-novelty by vsearch's top identity: threshold fitted on `fit`, recall/false rate on `held`."""
    key_species = {k.species for k in keys}
    ident = {}
    for name, recs in (("fit", fit), ("held", held)):
        hits = vsearch_top_hits([r.dna for r in recs], [k.dna for k in keys], threads=2)
        ident[name] = np.array([h[1] for h in hits])
    present = {n: np.array([r.species in key_species for r in recs]) for n, recs in (("fit", fit), ("held", held))}
    t = youden_threshold(ident["fit"][present["fit"]], ident["fit"][~present["fit"]])
    novel = ident["held"] < t
    return {"identity_threshold": t, "novel_recall": float(novel[~present["held"]].mean()),
            "false_novel_rate_on_seen": float(novel[present["held"]].mean())}


def main() -> int:
    """Train (or reuse), index the seen species, calibrate, report."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_training_args(ap)
    ap.add_argument("--target-precision", type=float, default=0.95)
    ap.add_argument("--top-k", type=int, default=10)
    args = ap.parse_args()
    if not Path(args.data).exists():
        print(f"{args.data} is absent: this benchmark needs the insect1k barcodes", file=sys.stderr)
        return 2
    work = Path(args.work)
    t_start = time.perf_counter()
    part = partition_insect1k(work, args)
    best = work / "dt" / "best.pt"  # a finished benchmarks.insect1k_dna run is reused
    if not best.exists():
        _, best = pretrain_and_align(work, part, args, {})
    records = read_records(part)
    keys = [r for r in records if r.split == "key_seen"]
    root = work / "index_seen"
    if not (root / "CURRENT").exists():
        build_snapshot(best, keys, root, modalities=("dna", "text"), device="cpu")
    identifier = Identifier.load(best, root, "cpu")
    fit = [r for r in records if r.split in ("val", "val_unseen") and r.dna]
    held = [r for r in records if r.split in ("test", "test_unseen") and r.dna]
    t0 = time.perf_counter()
    thresholds = calibrate(identifier, fit, args.target_precision, args.top_k)
    identifier.thresholds = thresholds
    report = evaluate_split(identifier, thresholds, held, args.top_k)
    calib_s = time.perf_counter() - t0
    thresholds.fitted_on["report"] = report
    if args.target_precision == 0.95:
        thresholds.save(root)
    vs = vsearch_rule(fit, held, keys)
    command = "python -m benchmarks.calibration_insect1k " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    bands = thresholds.barcode
    out = {"command": command, "machine": describe_machine(), "keys": len(keys), "fit_queries": len(fit),
           "held_queries": len(held), "checkpoint": "dt/best.pt",
           "barcode_bands": {"confident": bands.confident, "novel": bands.novel, "source": bands.source},
           "report": report, "vsearch_identity_rule": vs, "calibrate_and_report_s": calib_s,
           "wall_s": time.perf_counter() - t_start}
    tag = "" if args.target_precision == 0.95 else f"_p{int(round(args.target_precision * 100))}"
    r = report["dna"]

    def f(x):
        return "n/a" if x is None else f"{100 * x:.1f}%"
    md = ["# Calibrated `confident` / `novel` on real barcodes (insect1k)", "",
          f"Command: `{command}`  ", f"Machine: {json.dumps(out['machine'])}", "",
          f"References: {len(keys):,} DNA keys of the seen species only. Fitted on {len(fit):,} validation "
          f"queries (val + val_unseen), reported on {len(held):,} held-out queries (test + test_unseen): "
          f"{r['seen_species']:,} of species in the references, {r['new_species_of_known_genus']:,} of species "
          f"absent from them (genus present). Target precision of `confident`: {args.target_precision}.", "",
          "| measure (held-out) | value |", "|---|---|",
          f"| precision of `confident` (species right) | {f(r['confident_precision'])} ({r['confident']:,} answers) |",
          f"| `confident` rate on species in the references | {f(r['confident_rate_on_seen'])} |",
          f"| precision of every confident rank call | {f(r['confident_rank_precision'])} |",
          f"| recall of `novel` at species on absent species | {f(r['novel_recall'])} |",
          f"| precision of `novel` (right rank) | {f(r['novel_precision'])} ({r['novel_called']:,} answers) |",
          f"| `novel` called on species in the references | {f(r['false_novel_rate_on_seen'])} |", "",
          "Barcode identity bands: confident from best identity "
          + ", ".join(f"{k} {v:.2f}" if v is not None else f"{k} none" for k, v in bands.confident.items())
          + "; novel below "
          + ", ".join(f"{k} {v:.2f}" if v is not None else f"{k} none" for k, v in bands.novel.items())
          + ".", "",
          f"vsearch's top-hit identity with the same fitting rule (threshold {vs['identity_threshold']:.1f}%): "
          f"novel recall {f(vs['novel_recall'])}, novel called on species in the references "
          f"{f(vs['false_novel_rate_on_seen'])}."]
    write_results(f"calibration_insect1k{tag}", out, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
