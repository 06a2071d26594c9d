"""The paper's evaluation: exact cosine search of queries against all keys, top-k per rank."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import faiss
import numpy as np

from clibd.dna_tokenizer import try_normalize
from clibd.embedder import Embedder
from clibd.records import Record, distinct_taxa
from clibd.taxonomy import RANKS
from clibd.training.metrics import chance_top1, harmonic_mean, micro_macro, topk_hits
from clibd.training.partition import KEY_SEEN, KEY_UNSEEN, TEST_SEEN, TEST_UNSEEN, TRAIN, VAL_SEEN, VAL_UNSEEN

log = logging.getLogger(__name__)

# query modality -> key modality; "image+dna" averages the two embeddings of one specimen.
COMBOS: tuple[tuple[str, str], ...] = (
    ("dna", "dna"), ("image", "image"), ("image", "dna"), ("dna", "image"),
    ("image+dna", "image+dna"), ("image", "text"), ("dna", "text"),
)
KS = (1, 3, 5)


@dataclass
class EvalSets:
    """Queries of seen and unseen species and the keys they are searched against."""

    seen: list[Record]
    unseen: list[Record]
    keys: list[Record]


def eval_sets(records: Sequence[Record], phase: str = "test") -> EvalSets:
    """Split records into seen/unseen queries of `phase` and all keys (seen + unseen)."""
    seen_split, unseen_split = {"val": (VAL_SEEN, VAL_UNSEEN), "test": (TEST_SEEN, TEST_UNSEEN)}[phase]
    keys = [r for r in records if r.split in (KEY_SEEN, KEY_UNSEEN)]
    if not any(r.split == KEY_SEEN for r in records):  # BIOSCAN-5M: seen species' keys are `train`
        keys += [r for r in records if r.split == TRAIN]
    return EvalSets([r for r in records if r.split == seen_split],
                    [r for r in records if r.split == unseen_split], keys)


class _Embeddings:
    """Embeds each record once per modality and caches it."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self.cache: dict[tuple[str, str], np.ndarray] = {}

    def get(self, records: Sequence[Record], modality: str) -> np.ndarray:
        if modality == "image+dna":
            both = self.get(records, "image") + self.get(records, "dna")
            return both / np.linalg.norm(both, axis=1, keepdims=True).clip(min=1e-12)
        missing = [r for r in records if (r.id, modality) not in self.cache]
        if missing:
            if modality == "image":
                vecs = self.embedder.encode_images([r.image for r in missing])
            elif modality == "dna":
                vecs = self.embedder.encode_dna([r.dna for r in missing])
            else:
                vecs = self.embedder.encode_text([r.taxonomy() for r in missing])
            for r, v in zip(missing, vecs):
                self.cache[(r.id, modality)] = v
        return np.stack([self.cache[(r.id, modality)] for r in records]).astype(np.float32)


def _text_keys(keys: Sequence[Record]) -> list[Record]:
    """One key per distinct taxonomy among the keys."""
    return [Record(id="taxon:" + "/".join(map(str, r.taxonomy().values())), **r.taxonomy())
            for r in distinct_taxa(keys)]


def exact_search(queries: np.ndarray, keys: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k most cosine-similar keys (exact inner product on normalised vectors)."""
    index = faiss.IndexFlatIP(keys.shape[1])
    index.add(np.ascontiguousarray(keys, dtype=np.float32))
    _, idx = index.search(np.ascontiguousarray(queries, dtype=np.float32), min(k, keys.shape[0]))
    return idx


def score_neighbors(neigh: np.ndarray, queries: Sequence[Record], keys: Sequence[Record]) -> dict:
    """Top-k micro/macro per rank from neighbour key indices (-1 = no neighbour), with chance."""
    out: dict = {}
    for rank in RANKS:
        truth = [q.label(rank) for q in queries]
        labels = [[keys[j].label(rank) for j in row if j >= 0] for row in neigh]
        row: dict = {}
        for k in KS:
            micro, macro, n = micro_macro(topk_hits(labels, truth, k), truth)
            row[f"top{k}_micro"], row[f"top{k}_macro"] = micro, macro
            row["n"] = n
        row["chance_top1_micro"] = chance_top1(truth, [kk.label(rank) for kk in keys])
        out[rank] = row
    return out


def evaluate(embedder: Embedder, records: Sequence[Record], phase: str = "test",
             combos: Sequence[tuple[str, str]] = COMBOS, exclude_exact_dna: bool = False) -> dict:
    """Top-1/3/5 micro and macro per rank, seen / unseen / H, for every possible query->key combo."""
    sets = eval_sets(records, phase)
    emb = _Embeddings(embedder)
    key_dna = {try_normalize(r.dna) for r in sets.keys} - {None}
    results: dict = {"phase": phase, "combos": {}}
    for q_mod, k_mod in combos:
        name = f"{q_mod}->{k_mod}"
        keys = _text_keys(sets.keys) if k_mod == "text" else [r for r in sets.keys if r.has(k_mod)]
        if not keys:
            continue
        combo: dict = {"n_keys": len(keys)}
        for part, queries in (("seen", sets.seen), ("unseen", sets.unseen)):
            queries = [q for q in queries if q.has(q_mod)]
            if "dna" in q_mod:
                dup = [q for q in queries if try_normalize(q.dna) in key_dna]
                combo[f"{part}_exact_dna_in_keys"] = len(dup)
                if exclude_exact_dna:
                    queries = [q for q in queries if try_normalize(q.dna) not in key_dna]
            if not queries:
                continue
            neigh = exact_search(emb.get(queries, q_mod), emb.get(keys, k_mod), max(KS))
            combo[part] = score_neighbors(neigh, queries, keys)
        if "seen" in combo and "unseen" in combo:
            combo["H"] = {rank: {m: harmonic_mean(combo["seen"][rank][m], combo["unseen"][rank][m])
                                 for m in ("top1_micro", "top1_macro")} for rank in RANKS}
        if "seen" in combo or "unseen" in combo:
            results["combos"][name] = combo
    return results


def mean_top1(results: dict) -> float:
    """Mean macro top-1 over every combo, rank and seen/unseen part (the model-selection score)."""
    vals = [combo[part][rank]["top1_macro"] for combo in results["combos"].values()
            for part in ("seen", "unseen") if part in combo for rank in RANKS]
    vals = [v for v in vals if not np.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


def _pct(x: float) -> str:
    return "–" if x is None or np.isnan(x) else f"{100 * x:.1f}"


def markdown_table(results: dict, title: str = "") -> str:
    """Top-1 accuracy (%) per combo and rank: micro and macro, seen / unseen / H."""
    lines = [f"### {title}" if title else "", "",
             "| query->key | rank | micro seen / unseen / H | macro seen / unseen / H | chance (seen) |",
             "|---|---|---|---|---|"]
    for name, combo in results["combos"].items():
        for rank in RANKS:
            cells = []
            for m in ("top1_micro", "top1_macro"):
                s = combo.get("seen", {}).get(rank, {}).get(m, float("nan"))
                u = combo.get("unseen", {}).get(rank, {}).get(m, float("nan"))
                h = combo.get("H", {}).get(rank, {}).get(m, float("nan"))
                cells.append(f"{_pct(s)} / {_pct(u)} / {_pct(h)}")
            chance = combo.get("seen", {}).get(rank, {}).get("chance_top1_micro", float("nan"))
            lines.append(f"| {name} | {rank} | {cells[0]} | {cells[1]} | {_pct(chance)} |")
    notes = [f"- {name}: {combo['n_keys']} keys; queries whose exact barcode is among the keys: "
             f"seen {combo.get('seen_exact_dna_in_keys', 0)}, unseen {combo.get('unseen_exact_dna_in_keys', 0)}"
             for name, combo in results["combos"].items() if "seen_exact_dna_in_keys" in combo]
    return "\n".join(lines + [""] + notes) + "\n"


def write_results(results: dict, out_prefix: str | Path, title: str = "") -> tuple[Path, Path]:
    """Write `<prefix>.json` and `<prefix>.md`."""
    prefix = Path(out_prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    js, md = prefix.with_suffix(".json"), prefix.with_suffix(".md")
    js.write_text(json.dumps(results, indent=2, default=float))
    md.write_text(markdown_table(results, title))
    return js, md
