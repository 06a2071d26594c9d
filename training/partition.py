"""The CLIBD partition recipe: seen/unseen species, training records, queries and keys."""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from clibd.taxonomy import RANKS
from clibd.records import Record, write_records

# Split names follow BIOSCAN-5M's `split` column; `key_seen` holds the keys of seen species.
TRAIN, PRETRAIN, OTHER = "train", "pretrain", "other_heldout"
VAL_SEEN, TEST_SEEN, KEY_SEEN = "val", "test", "key_seen"
VAL_UNSEEN, TEST_UNSEEN, KEY_UNSEEN = "val_unseen", "test_unseen", "key_unseen"
SPLITS = (TRAIN, PRETRAIN, VAL_SEEN, TEST_SEEN, KEY_SEEN, VAL_UNSEEN, TEST_UNSEEN, KEY_UNSEEN, OTHER)


@dataclass
class PartitionConfig:
    """Fractions and thresholds of the recipe (METHOD.md), and the seed."""

    seed: int = 0
    min_records_seen: int = 10  # species with at least this many records may be seen
    unseen_fraction: float = 0.2  # of those species, held out as unseen
    seen_fractions: tuple[float, float, float, float] = (0.7, 0.1, 0.1, 0.1)  # train/val/test/keys
    # "random" as in the paper; "congeneric" prefers unseen species whose genus keeps a seen species.
    unseen_strategy: str = "random"


def _split_counts(n: int, fractions: Iterable[float]) -> list[int]:
    fr = list(fractions)
    counts = [int(np.floor(n * f)) for f in fr]
    # Hand leftovers to the largest fractions first, so small species still get queries and keys.
    for i in sorted(range(len(fr)), key=lambda i: -fr[i])[: n - sum(counts)]:
        counts[i] += 1
    return counts


def _choose_unseen(species: list[str], genus_of: dict[str, str | None], cfg: PartitionConfig,
                   rng: np.random.Generator) -> set[str]:
    n_unseen = int(round(len(species) * cfg.unseen_fraction))
    order = [species[i] for i in rng.permutation(len(species))]
    if cfg.unseen_strategy == "random":
        return set(order[:n_unseen])
    if cfg.unseen_strategy != "congeneric":
        raise ValueError(f"unknown unseen strategy {cfg.unseen_strategy!r}")
    remaining = Counter(genus_of[s] for s in species)
    chosen: set[str] = set()
    for s in order:  # first pass: only species whose genus keeps at least one other seen species
        if len(chosen) < n_unseen and genus_of[s] is not None and remaining[genus_of[s]] >= 2:
            chosen.add(s)
            remaining[genus_of[s]] -= 1
    for s in order:
        if len(chosen) >= n_unseen:
            break
        chosen.add(s)
    return chosen


def partition(records: list[Record], cfg: PartitionConfig | None = None) -> list[Record]:
    """Assign every record a split, deterministically for a seed (records are returned, modified)."""
    cfg = cfg or PartitionConfig()
    rng = np.random.default_rng(cfg.seed)
    by_species: dict[str, list[Record]] = defaultdict(list)
    genus_of: dict[str, str | None] = {}
    for rec in records:
        if rec.species is None:
            rec.split = PRETRAIN
        else:
            by_species[rec.species].append(rec)
            genus_of.setdefault(rec.species, rec.genus)
    for group in by_species.values():
        group.sort(key=lambda r: r.id)
    names = sorted(by_species)
    large = [s for s in names if len(by_species[s]) >= cfg.min_records_seen]
    unseen = _choose_unseen(large, genus_of, cfg, rng)
    seen = [s for s in large if s not in unseen]
    small = [s for s in names if 2 <= len(by_species[s]) < cfg.min_records_seen]
    for s in names:
        if len(by_species[s]) < 2:
            for rec in by_species[s]:
                rec.split = OTHER
    for s in seen:
        group = [by_species[s][i] for i in rng.permutation(len(by_species[s]))]
        bounds = np.cumsum(_split_counts(len(group), cfg.seen_fractions))
        for i, rec in enumerate(group):
            rec.split = (TRAIN, VAL_SEEN, TEST_SEEN, KEY_SEEN)[int(np.searchsorted(bounds, i, side="right"))]
    unseen_all = sorted(unseen) + small
    unseen_all = [unseen_all[i] for i in rng.permutation(len(unseen_all))]
    half = len(unseen_all) // 2
    for j, s in enumerate(unseen_all):
        query_split = VAL_UNSEEN if j < half else TEST_UNSEEN
        group = [by_species[s][i] for i in rng.permutation(len(by_species[s]))]
        n_query = len(group) // 2
        for i, rec in enumerate(group):
            rec.split = query_split if i < n_query else KEY_UNSEEN
    return records


def count_report(records: list[Record]) -> dict[str, dict[str, int]]:
    """Records and distinct taxa per split."""
    report: dict[str, dict[str, int]] = {}
    for split in SPLITS:
        part = [r for r in records if r.split == split]
        row = {"records": len(part)}
        for rank in RANKS:
            row[rank] = len({r.label(rank) for r in part if r.label(rank)})
        row["with_dna"] = sum(r.dna is not None for r in part)
        row["with_image"] = sum(r.image is not None for r in part)
        report[split] = row
    return report


def write_partition(records: list[Record], out_dir: str | Path, cfg: PartitionConfig) -> dict:
    """Write `records.tsv` (with splits), `counts.json` and `counts.md`; returns the count report."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_records(records, out / "records.tsv")
    report = count_report(records)
    (out / "counts.json").write_text(json.dumps({"config": cfg.__dict__, "splits": report}, indent=2))
    cols = ["records", *RANKS, "with_dna", "with_image"]
    lines = ["| split | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    lines += [f"| {s} | " + " | ".join(str(report[s][c]) for c in cols) + " |" for s in SPLITS]
    (out / "counts.md").write_text("\n".join(lines) + "\n")
    return report
