"""Barcode identification from alignment evidence vs `vsearch --usearch_global`, on real public barcode sets.

    python -m benchmarks.dna_vs_vsearch [--sets insect1k,osmia,chironominae,butterflies] [--workers 2] [--orders 5]
    python -m benchmarks.dna_vs_vsearch --records mylab=my_bold_export.tsv   # your own labelled barcodes
    python -m benchmarks.dna_vs_vsearch --insect1k-groups family=Culicidae,order=Coleoptera --orders 1 \
        --out benchmarks/results/dna_vs_vsearch_insect1k_groups   # taxa of insect1k, each partitioned anew

Per set, the project's congeneric CLIBD partition (`training.partition`, seed 0), then two protocols with the
same queries and references for both methods:
- identification: references = key_seen + key_unseen; queries = test (species seen in training) and
  test_unseen; species and genus top-1, on all queries and on those whose exact barcode is not a reference;
- new species: references = key_seen only, so the test_unseen species are absent (their genus present);
  `novel` at species with the right genus on those, and false alarms (`novel` at any rank) on test queries.
Ours is the identification core (each query on the strand the service searches it on, `index.orientation`;
`index.barcodes` k-mer candidates + edlib alignment, `index.identity` bands
fitted by `fit_bands` on val + val_unseen against the same references, and each genus' spread for placing new
species, `index.placement`, as `clibd calibrate` fits them); no embedding is used here. vsearch gets
its strongest usual settings (`--maxaccepts 20 --maxrejects 64`, best identity kept); "97% rule" = vsearch's
best hit below 97% identity => novel, genus of that hit. Timings include building each method's reference
index (vsearch indexes on every run). Both protocols run again on `--orders - 1` seeded shuffles of the
references' file order (the bands stay those fitted on the given order): among keys tied at the best identity
vsearch reports the one first in its file, so its figures move with the order; the tables give the given order
and the mean (min-max) over all. Writes benchmarks/results/dna_vs_vsearch.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import shlex
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from benchmarks.machine import describe_machine, write_results
from clibd.dna_tokenizer import try_normalize
from clibd.readers import read_records
from clibd.records import Record
from clibd.taxonomy import RANKS
from clibd.index.barcodes import DEFAULT_CANDIDATES, BarcodeIndex, candidate_pool, kmer_support, widened_hits
from clibd.index.identity import BarcodeOutcome, IdentityBands, barcode_verdict, fit_bands, rank_votes
from clibd.index.orientation import orient
from clibd.index.placement import SPREAD_CANDIDATES, fit_spread, spread_sample
from clibd.index.verdict import Verdict
from clibd.training.partition import PartitionConfig, partition
from clibd.training.vsearch import vsearch_top_hits

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SETS = {"insect1k": DATA / "insect1k" / "insect1k_coi5p.tsv.gz",
        "osmia": DATA / "bold_sets" / "osmia_coi5p.tsv.gz",
        "chironominae": DATA / "bold_sets" / "chironominae_norway_bold5.tsv.gz",
        "butterflies": DATA / "leeds_butterflies" / "coi.tsv"}
RESULTS = Path(__file__).parent / "results"

_STATE: dict = {}


def _hits(given: str) -> list:
    index, keys, n = _STATE["index"], _STATE["keys"], _STATE["n"]
    seq = given if _STATE["oriented"] else orient(given, lambda s: kmer_support([index], s))[0]
    return widened_hits(seq, lambda m, broad: candidate_pool(index, keys, seq, m, broad=broad), n)


def all_hits(index: BarcodeIndex, keys: list[Record], seqs: list[str], workers: int, n: int,
             oriented: bool = False) -> list[list]:
    """Alignment hits of every query on the strand the service searches it on (`index.orientation`; `oriented`:
    the queries already are), on `workers` forked processes sharing the index."""
    _STATE.update(index=index, keys=keys, n=n, oriented=oriented)
    if workers <= 1:
        return [_hits(s) for s in seqs]
    with mp.get_context("fork").Pool(workers) as pool:
        return pool.map(_hits, seqs, chunksize=64)


def _calibrated(index: BarcodeIndex, refs: list[Record], fit_q: list[Record], workers: int, candidates: int,
                target: float) -> IdentityBands:
    """What `clibd calibrate` fits for these references: the bands on the fit queries, and each genus' spread."""
    bands = fit_bands(_outcomes(all_hits(index, refs, [q.dna for q in fit_q], workers, candidates), fit_q, refs),
                      target)
    sample = spread_sample(refs)
    bands.placement = fit_spread(refs, sample, all_hits(index, refs, [refs[i].dna for i in sample], workers,
                                                        SPREAD_CANDIDATES))
    return bands


def _bands_summary(bands: IdentityBands) -> dict:
    out = {k: v for k, v in bands.__dict__.items() if k != "placement"}
    out["placement_genera"] = len(bands.placement.by_genus) if bands.placement else 0
    return out


def _present(refs: list[Record]) -> dict[str, set[str]]:
    return {rank: {r.label(rank) for r in refs if r.label(rank)} for rank in RANKS}


def _outcomes(hits: list[list], queries: list[Record], refs: list[Record]) -> list[BarcodeOutcome]:
    taxa = _present(refs)
    return [BarcodeOutcome(h, q, {rank: q.label(rank) in taxa[rank] for rank in RANKS})
            for h, q in zip(hits, queries)]


def _tie_breaks(hits: list[list], queries: list[Record]) -> dict[str, int]:
    """How many queries have their best identity shared by keys of several species, and how often each way of choosing
    among those species is right: the majority of the tied keys (ours) or the species whose hits are on average
    the closest to the query."""
    right = {"queries": 0, "majority_of_tied_keys": 0, "closest_on_average": 0}
    for h, q in zip(hits, queries):
        tied = [label for label, _ in rank_votes(h, "species", 0.0)]
        if len(tied) < 2:
            continue
        right["queries"] += 1
        mean = {s: float(np.mean([x.identity for x in h if x.record.species == s])) for s in tied}
        right["majority_of_tied_keys"] += tied[0] == q.species
        right["closest_on_average"] += max(tied, key=lambda s: mean[s]) == q.species
    return right


def _reorderings(index: BarcodeIndex, refs: list[Record], n_orders: int) -> list[tuple[BarcodeIndex, list[Record]]]:
    """The references in their given order (with `index`) and in `n_orders - 1` seeded shuffles of it, each
    indexed: among keys tied at the best identity vsearch reports the one first in its database file, so its
    top-1 moves with the file's order."""
    out = [(index, refs)]
    for seed in range(1, n_orders):
        shuffled = [refs[i] for i in random.Random(seed).sample(range(len(refs)), len(refs))]
        out.append((BarcodeIndex.build([r.dna for r in shuffled]), shuffled))
    return out


def _collect(tree: dict, path: tuple[str, ...], cell: dict[str, Optional[float]]) -> None:
    """Append each figure of `cell` to its list at `path` in `tree` (one entry per reference order)."""
    for key in path:
        tree = tree.setdefault(key, {})
    for who, value in cell.items():
        tree.setdefault(who, []).append(value)


def _pct(n: int, d: int) -> Optional[float]:
    return round(100.0 * n / d, 2) if d else None


def _sample(recs: list[Record], n: int) -> list[Record]:
    if n <= 0 or len(recs) <= n:
        return recs
    return [recs[i] for i in sorted(random.Random(0).sample(range(len(recs)), n))]


def split_set(path: Path, where: Optional[tuple[str, str]] = None) -> dict[str, list[Record]]:
    """The records of a file with a valid barcode, species and genus (and `where` = (rank, name): of that
    taxon only), by split of the congeneric CLIBD partition (seed 0), barcodes normalized."""
    records = [r for r in read_records(path) if try_normalize(r.dna) and r.species and r.genus
               and (where is None or r.label(where[0]) == where[1])]
    for r in records:
        r.dna = try_normalize(r.dna)
    by: dict[str, list[Record]] = {}
    for r in partition(records, PartitionConfig(seed=0, unseen_strategy="congeneric")):
        by.setdefault(r.split, []).append(r)
    return by


def run_set(name: str, path: Path, workers: int, candidates: int, target: float, max_queries: int,
            n_orders: int = 1, where: Optional[tuple[str, str]] = None) -> dict:
    """Both protocols on one record file (`where`: one taxon of it, `split_set`)."""
    by = split_set(path, where)
    out: dict = {"records": sum(map(len, by.values())), "splits": {k: len(v) for k, v in sorted(by.items())}}

    # Identification: all keys are references.
    refs = by.get("key_seen", []) + by.get("key_unseen", [])
    for split in ("val", "val_unseen", "test", "test_unseen"):  # seeded subsample of each query split
        by[split] = _sample(by.get(split, []), max_queries)
    fit_q = by["val"] + by["val_unseen"]
    tests = {"seen": by["test"], "unseen": by["test_unseen"]}
    t0 = time.perf_counter()
    index = BarcodeIndex.build([r.dna for r in refs])
    build_s = time.perf_counter() - t0
    bands = _calibrated(index, refs, fit_q, workers, candidates, target)
    ref_seqs = {r.dna for r in refs}
    ident: dict = {"n_refs": len(refs), "bands": _bands_summary(bands), "reference_orders": n_orders}
    reordered = _reorderings(index, refs, n_orders)
    for part, qs in tests.items():
        if not qs:
            continue
        subsets = {"all": list(range(len(qs))),
                   "no_exact_duplicate": [i for i, q in enumerate(qs) if q.dna not in ref_seqs]}
        row: dict = {"queries": len(qs)}
        for k, (index_o, refs_o) in enumerate(reordered):
            t0 = time.perf_counter()
            hits = all_hits(index_o, refs_o, [q.dna for q in qs], workers, candidates)
            ours_s = time.perf_counter() - t0 + build_s
            ours = [barcode_verdict(h, bands) for h in hits]
            t0 = time.perf_counter()
            vs = vsearch_top_hits([q.dna for q in qs], [r.dna for r in refs_o], threads=2, maxaccepts=20,
                                  maxrejects=64)
            vs_s = time.perf_counter() - t0
            for subset, idx in subsets.items():
                for rank in ("genus", "species"):
                    cell = {"ours": _pct(sum(ours[i].ranks[rank].label == qs[i].label(rank) for i in idx), len(idx)),
                            "vsearch": _pct(sum(vs[i][0] is not None and refs_o[vs[i][0]].label(rank)
                                                == qs[i].label(rank) for i in idx), len(idx))}
                    if k == 0:
                        row.setdefault(subset, {"queries": len(idx)})[rank] = cell
                    _collect(row, ("orders", subset, rank), cell)
            if k:
                continue
            row.update(ours_qps=len(qs) / ours_s, vsearch_qps=len(qs) / vs_s)
            row["species_tied_at_best"] = _tie_breaks(hits, qs)
            for subset, idx in subsets.items():
                row[subset]["ours_confident_species_share"] = _pct(
                    sum(ours[i].status == "confident" for i in idx), len(idx))
                row[subset]["ours_confident_species_precision"] = _pct(
                    sum(ours[i].status == "confident" and ours[i].ranks["species"].label == qs[i].species
                        for i in idx), sum(ours[i].status == "confident" for i in idx))
        ident[part] = row
    out["identification"] = ident

    # New species: the unseen species' keys are left out of the references.
    refs_b = by.get("key_seen", [])
    present_q, absent_q = by.get("test", []), by.get("test_unseen", [])
    if refs_b and absent_q and present_q:
        index_b = BarcodeIndex.build([r.dna for r in refs_b])
        fit_b = _calibrated(index_b, refs_b, fit_q, workers, candidates, target)
        genera = _present(refs_b)["genus"]
        absent_q = [q for q in absent_q if q.genus in genera]
        qs = present_q + absent_q
        n_p = len(present_q)
        absent_idx = range(n_p, len(qs))

        def novel_right(v: Verdict, q: Record) -> bool:  # new species, genus claimed (confident) and right
            return (v.status == "novel" and v.novel_at_rank == "species" and v.ranks["genus"].confident
                    and v.ranks["genus"].label == q.genus)

        def novel_named(v: Verdict, q: Record) -> bool:  # new species, the genus shown is right
            return v.status == "novel" and v.novel_at_rank == "species" and v.ranks["genus"].label == q.genus

        ns: dict = {"n_refs": len(refs_b), "present_queries": n_p, "absent_queries": len(absent_q),
                    "bands": _bands_summary(fit_b), "reference_orders": n_orders}
        for k, (index_o, refs_o) in enumerate(_reorderings(index_b, refs_b, n_orders)):
            hits = all_hits(index_o, refs_o, [q.dna for q in qs], workers, candidates)
            ours = [barcode_verdict(h, fit_b) for h in hits]
            vs = vsearch_top_hits([q.dna for q in qs], [r.dna for r in refs_o], threads=2, maxaccepts=20,
                                  maxrejects=64)
            rule = [(j is None or identity < 97.0, refs_o[j].genus if j is not None else None) for j, identity in vs]
            found = {"ours_genus_shown": _pct(sum(novel_named(ours[i], qs[i]) for i in absent_idx), len(absent_q)),
                     "rule_97": _pct(sum(rule[i][0] and rule[i][1] == qs[i].genus for i in absent_idx),
                                     len(absent_q))}
            alarms = {"ours": _pct(sum(ours[i].status == "novel" for i in range(n_p)), n_p),
                      "rule_97": _pct(sum(rule[i][0] for i in range(n_p)), n_p)}
            _collect(ns, ("orders", "novel_right_genus"), found)
            _collect(ns, ("orders", "false_alarms_on_present"), alarms)
            if k:
                continue
            bold = [barcode_verdict(h, IdentityBands()) for h in hits]
            ns["novel_right_genus"] = {
                "ours": _pct(sum(novel_right(ours[i], qs[i]) for i in absent_idx), len(absent_q)),
                "ours_bold_bands": _pct(sum(novel_right(bold[i], qs[i]) for i in absent_idx), len(absent_q)),
                **found}
            ns["false_alarms_on_present"] = {
                "ours_bold_bands": _pct(sum(bold[i].status == "novel" for i in range(n_p)), n_p), **alarms}
        out["new_species"] = ns
    return out


def bold_sets_main(name: str, doc: str, run_set: Callable[[str, int, int], dict],
                   render: Callable[[dict], list[str]]) -> int:
    """The command line of a benchmark over the BOLD sets: run `run_set(set, max_queries, workers)` on each
    chosen set and write `results/<name>.{json,md}`."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default=",".join(SETS), help="comma list of: " + ", ".join(SETS))
    ap.add_argument("--max-queries", type=int, default=3000)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    out = {"command": f"python -m benchmarks.{name} " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
           "machine": describe_machine(), "sets": {}}
    for set_name in args.sets.split(","):
        if not SETS[set_name].exists():
            print(f"missing data for {set_name}", file=sys.stderr)
            return 2
        out["sets"][set_name] = run_set(set_name, args.max_queries, args.workers)
    write_results(name, out, render(out))
    return 0


def render(out: dict) -> str:
    """Markdown tables of the results."""
    lines = ["# Barcodes: alignment evidence (ours) vs vsearch, real BOLD sets", "",
             f"Command: `{out['command']}`  ", f"Machine: {json.dumps(out['machine'])}  ",
             "Timings include building each method's reference index; ours runs on "
             f"{out['workers']} processes, vsearch on 2 threads.", "",
             "## Identification (top-1 %, ours / vsearch)", "",
             "| set | queries | refs | species all | species no dup. | genus all | genus no dup. | "
             "ours confident to species: share / right | queries/s ours / vsearch |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, res in out["sets"].items():
        ident = res["identification"]
        for part in ("seen", "unseen"):
            if part not in ident:
                continue
            r = ident[part]
            cell = lambda sub, rank: f"{r[sub][rank]['ours']} / {r[sub][rank]['vsearch']}"  # noqa: E731
            lines.append(f"| {name} {part} | {r['all']['queries']} ({r['no_exact_duplicate']['queries']} no dup.) | "
                         f"{ident['n_refs']} | {cell('all', 'species')} | {cell('no_exact_duplicate', 'species')} | "
                         f"{cell('all', 'genus')} | {cell('no_exact_duplicate', 'genus')} | "
                         f"{r['all'].get('ours_confident_species_share')} / "
                         f"{r['all']['ours_confident_species_precision']} | "
                         f"{r['ours_qps']:.0f} / {r['vsearch_qps']:.0f} |")
    lines += ["", "## New species (references without the species, genus present)", "",
              "Novel + right genus, ours: claimed = new species with the genus confident and right; shown = new "
              "species whose genus in the answer (confident or not: the closest reference's, or where the fitted "
              "genus spread moves it, the placed one) is right, as the 97% rule names one.", "",
              "| set | absent / present queries | novel + right genus: ours claimed / ours shown / BOLD bands / "
              "97% rule | false alarms on present: ours / BOLD bands / 97% rule | fitted species band (novel below) |",
              "|---|---|---|---|---|"]
    for name, res in out["sets"].items():
        ns = res.get("new_species")
        if not ns:
            continue
        a, f = ns["novel_right_genus"], ns["false_alarms_on_present"]
        lines.append(f"| {name} | {ns['absent_queries']} / {ns['present_queries']} | "
                     f"{a['ours']} / {a['ours_genus_shown']} / {a['ours_bold_bands']} / {a['rule_97']} | "
                     f"{f['ours']} / {f['ours_bold_bands']} / {f['rule_97']} | "
                     f"{ns['bands']['novel']['species']:.2f} |")
    lines += _render_orders(out)
    return "\n".join(lines) + "\n"


def _spread(values: list[float]) -> str:
    return f"{sum(values) / len(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def _render_orders(out: dict) -> list[str]:
    """The same figures over the references' given order and its seeded shuffles: mean (min-max)."""
    first = next(iter(out["sets"].values()))
    n = first["identification"].get("reference_orders", 1)
    if n < 2:
        return []
    lines = ["", f"## Over {n} orders of the reference file (the given one and {n - 1} seeded shuffles)", "",
             "Among keys tied at the best identity vsearch reports the one first in its database file, so its "
             "top-1 moves with the file's order; ours shows the majority label of the tied keys (a count tie goes to "
             "the key found first). Mean (min-max) over the orders. The tied queries' column also says how often the "
             "majority of the tied keys names the right species, and how often the tied species whose hits are on "
             "average closest does.", "",
             "| set | species tied at best (given order): queries, right by majority of the tied keys (ours) / by "
             "closest on average | species all: ours / vsearch | "
             "species no dup.: ours / vsearch | new species, genus shown right: ours / 97% rule | "
             "false alarms: ours / 97% rule |",
             "|---|---|---|---|---|---|"]
    for name, res in out["sets"].items():
        ident, ns = res["identification"], res.get("new_species", {})
        for part in ("seen", "unseen"):
            if part not in ident:
                continue
            o = ident[part]["orders"]
            cells = [f"{_spread(o[sub]['species']['ours'])} / {_spread(o[sub]['species']['vsearch'])}"
                     for sub in ("all", "no_exact_duplicate")]
            novel = ["", ""]
            if part == "unseen" and "orders" in ns:
                f, a = ns["orders"]["novel_right_genus"], ns["orders"]["false_alarms_on_present"]
                novel = [f"{_spread(f['ours_genus_shown'])} / {_spread(f['rule_97'])}",
                         f"{_spread(a['ours'])} / {_spread(a['rule_97'])}"]
            ties = ident[part]["species_tied_at_best"]
            lines.append(f"| {name} {part} | {ties['queries']}, {ties['majority_of_tied_keys']} / "
                         f"{ties['closest_on_average']} | {cells[0]} | {cells[1]} | "
                         f"{novel[0]} | {novel[1]} |")
    return lines


def main() -> int:
    """Run the chosen sets and write the tables."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default=None,
                    help="comma list of: " + ", ".join(SETS) + " (default: all of them, unless --records is given)")
    ap.add_argument("--records", action="append", default=[], metavar="NAME=FILE",
                    help="also run on your own labelled barcodes (any format `clibd partition` reads), as set NAME")
    ap.add_argument("--insect1k-groups", default="", metavar="RANK=NAME,...",
                    help="also run on taxa of insect1k alone, each partitioned anew as a set of its own "
                         "(e.g. family=Culicidae,order=Coleoptera)")
    ap.add_argument("--workers", type=int, default=2, help="processes for our queries")
    ap.add_argument("--candidates", type=int, default=DEFAULT_CANDIDATES, help="k-mer candidates per query")
    ap.add_argument("--target-precision", type=float, default=0.95)
    ap.add_argument("--max-queries", type=int, default=3000, help="queries per split at most (seeded sample; 0: all)")
    ap.add_argument("--orders", type=int, default=5,
                    help="reference file orders to run both methods on: the given one and seeded shuffles")
    ap.add_argument("--out", default=str(RESULTS / "dna_vs_vsearch"), help="results prefix")
    args = ap.parse_args()
    chosen = args.sets.split(",") if args.sets else ([] if args.records or args.insect1k_groups else list(SETS))
    unknown = [s for s in chosen if s not in SETS]
    if unknown:
        ap.error(f"unknown set(s) {unknown}: choose from {', '.join(SETS)} or give --records NAME=FILE")
    paths: dict[str, tuple[Path, Optional[tuple[str, str]]]] = {name: (SETS[name], None) for name in chosen}
    for given in args.records:
        name, sep, file = given.partition("=")
        if not sep or not name or not file:
            ap.error(f"--records takes NAME=FILE, got {given!r}")
        paths[name] = (Path(file), None)
    for given in filter(None, args.insect1k_groups.split(",")):
        rank, sep, taxon = given.partition("=")
        if not sep or rank not in RANKS or not taxon:
            ap.error(f"--insect1k-groups takes RANK=NAME with RANK one of {', '.join(RANKS)}, got {given!r}")
        paths[f"insect1k {taxon}"] = (SETS["insect1k"], (rank, taxon))
    missing = sorted({str(p) for p, _ in paths.values() if not p.exists()})
    if missing:
        print(f"missing data: {missing}", file=sys.stderr)
        return 2
    out = {"command": "python -m benchmarks.dna_vs_vsearch " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
           "machine": describe_machine(), "workers": args.workers, "candidates": args.candidates, "sets": {}}
    for name, (path, where) in paths.items():
        t0 = time.perf_counter()
        out["sets"][name] = run_set(name, path, args.workers, args.candidates, args.target_precision,
                                   args.max_queries, args.orders, where)
        out["sets"][name]["wall_s"] = time.perf_counter() - t0
        print(f"{name}: done in {out['sets'][name]['wall_s']:.0f} s", file=sys.stderr)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out + ".json").write_text(json.dumps(out, indent=2, default=float))
    md = render(out)
    Path(args.out + ".md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
