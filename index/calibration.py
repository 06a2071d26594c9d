"""`clibd calibrate`: fit the confident/novel thresholds on validation queries and report them on held-out ones.

Photos: novelty at rank r is fitted on queries whose taxon above r is among the references — those whose rank-r
taxon is present too against those whose rank-r taxon is absent — on the nearest key's similarity (balanced
accuracy); confidence at rank r is the least label score at which answers are right with the target precision.
A rank with no absent taxa to learn from gets no novelty threshold, one whose precision target cannot be met
gets no confidence threshold; both are reported as such, not guessed.
Barcodes: the identity bands of `index.identity.fit_bands`, on the alignment hits of the same queries.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, TypeVar

import numpy as np
from tqdm.auto import tqdm

from clibd.dna_tokenizer import try_normalize
from clibd.preprocess import load_image
from clibd.records import Record
from clibd.taxonomy import RANKS
from clibd.fitting import precision_threshold, youden_threshold
from clibd.index.identifier import Identifier
from clibd.index.identity import BarcodeOutcome, IdentityBands, barcode_verdict, fit_bands
from clibd.index.placement import SPREAD_CANDIDATES, GenusSpread, fit_spread, spread_sample
from clibd.index.searcher import Neighbor
from clibd.index.thresholds import Thresholds
from clibd.index.verdict import ModalityThresholds, Verdict, fuse, is_absent, modality_verdict


T = TypeVar("T")
R = TypeVar("R")


@dataclass
class QueryOutcome:
    """One validation query in one modality: its record, neighbours and whether its taxa are referenced."""

    record: Record
    neighbors: list[Neighbor]
    present: dict[str, bool]


def _query_vectors(identifier: Identifier, records: Sequence[Record], modality: str) -> tuple[list[Record], np.ndarray]:
    if modality == "dna":
        recs = [r for r in records if r.has("dna")]
        return recs, identifier.encode_dna([r.dna for r in recs])
    recs = [r for r in records if r.has("image")]
    vecs = identifier.encode_images([load_image(r.image) for r in recs]) if recs else \
        np.zeros((0, identifier.embedder.embed_dim), np.float32)
    return recs, vecs


def outcomes(identifier: Identifier, records: Sequence[Record], modality: str, top_k: int) -> list[QueryOutcome]:
    """Search every query of a modality and note which of its taxa the references hold."""
    recs, vecs = _query_vectors(identifier, records, modality)
    if not recs:
        return []
    found = identifier.searcher.search(vecs, top_k, identifier.key_modality(modality))
    present_cache: dict[str, bool] = {}

    def present(name: Optional[str]) -> bool:
        if name is None:
            return False
        if name not in present_cache:
            present_cache[name] = identifier.searcher.has_taxon(name)
        return present_cache[name]
    return [QueryOutcome(r, n, {rank: present(r.label(rank)) for rank in RANKS}) for r, n in zip(recs, found)]


def threaded(fn: Callable[[T], R], items: Sequence[T], desc: str, unit: str, progress: bool = True,
             threads: Optional[int] = None) -> list[R]:
    """`fn` over `items` in order, on `threads` threads (default: every core) with a progress bar: alignment
    (edlib) runs without Python's lock, so the barcode searches of calibration use all cores."""
    threads = threads or os.cpu_count() or 1
    with ThreadPoolExecutor(threads) as pool:
        return list(tqdm(pool.map(fn, items), total=len(items), desc=desc, unit=unit,
                         disable=not progress))


def barcode_outcomes(identifier: Identifier, items: list[QueryOutcome], progress: bool = True) -> list[BarcodeOutcome]:
    """The alignment hits of barcode queries (k-mer candidates united with their embedding neighbours)."""
    def hits(q: QueryOutcome) -> list:
        dna, _ = identifier.orient(try_normalize(q.record.dna))
        return identifier.searcher.barcode_hits(dna, identifier.candidates, q.neighbors)
    found = threaded(hits, items, "barcode evidence", "query", progress)
    return [BarcodeOutcome(h, q.record, q.present) for h, q in zip(found, items)]


def reference_spread(identifier: Identifier, progress: bool = True) -> Optional[GenusSpread]:
    """How far each referenced genus' species sit apart (`index.placement`), from the searchable DNA keys
    (the snapshot's and those added since, less the removed)."""
    keys = [k for k in identifier.searcher.live_records("dna") if k.has("dna")]
    sample = spread_sample(keys)
    searcher = identifier.searcher

    def hits(i: int) -> list:
        return searcher.barcode_hits(searcher.orient_barcode(try_normalize(keys[i].dna))[0], SPREAD_CANDIDATES)
    return fit_spread(keys, sample, threaded(hits, sample, "genus spread", "key", progress))


def fit_modality(items: list[QueryOutcome], target: float) -> ModalityThresholds:
    """Thresholds of one embedding query modality from its validation outcomes."""
    novel: dict[str, Optional[float]] = {}
    confident: dict[str, Optional[float]] = {}
    scored = [(q, modality_verdict(q.neighbors, None)) for q in items if q.neighbors]  # rank-independent
    for i, rank in enumerate(RANKS):
        parent_known = [q for q in items if q.neighbors and (i == 0 or q.present[RANKS[i - 1]])]
        novel[rank] = youden_threshold([q.neighbors[0].similarity for q in parent_known if q.present[rank]],
                                       [q.neighbors[0].similarity for q in parent_known if not q.present[rank]])
        rule = ModalityThresholds({}, novel)
        passing = [(q, v) for q, v in scored if not is_absent(q.neighbors[0].similarity, rule, rank)]
        correct = [v.ranks[rank].label is not None and v.ranks[rank].label == q.record.label(rank)
                   for q, v in passing]
        confident[rank] = precision_threshold([v.ranks[rank].score for _, v in passing], correct, target)
    return ModalityThresholds(confident=confident, novel=novel)


def _deepest_present(present: dict[str, bool]) -> Optional[str]:
    deepest = None
    for rank in RANKS:
        if not present[rank]:
            break
        deepest = rank
    return deepest


def report(verdicts: list[Verdict], records: list[Record], presents: list[dict[str, bool]]) -> dict:
    """Precision of `confident`, recall and precision of `novel`, on queries with known truth."""
    conf = [(v, r) for v, r in zip(verdicts, records) if v.status == "confident"]
    conf_right = sum(v.ranks["species"].label == r.species for v, r in conf)
    absent = [i for i, p in enumerate(presents) if not p["species"] and p["genus"]]
    seen = [i for i, p in enumerate(presents) if p["species"]]
    novel_hit = sum(verdicts[i].status == "novel" and verdicts[i].novel_at_rank == "species" for i in absent)
    called_novel = [i for i, v in enumerate(verdicts) if v.status == "novel"]
    novel_right = sum(_deepest_present(presents[i]) == verdicts[i].deepest for i in called_novel)
    rank_calls = [(v.ranks[rank], r.label(rank)) for v, r in zip(verdicts, records) for rank in RANKS
                  if v.ranks[rank].confident]
    return {"queries": len(verdicts), "seen_species": len(seen), "new_species_of_known_genus": len(absent),
            "confident": len(conf), "confident_precision": conf_right / len(conf) if conf else None,
            "confident_rate_on_seen": sum(verdicts[i].status == "confident" for i in seen) / len(seen) if seen else None,
            "confident_rank_precision": (sum(c.label == t for c, t in rank_calls) / len(rank_calls)
                                         if rank_calls else None),
            "novel_recall": novel_hit / len(absent) if absent else None,
            "novel_called": len(called_novel),
            "novel_precision": novel_right / len(called_novel) if called_novel else None,
            "false_novel_rate_on_seen": (sum(verdicts[i].status == "novel" for i in seen) / len(seen)
                                         if seen else None)}


def _verdicts(identifier: Identifier, thresholds: Thresholds, records: Sequence[Record],
              top_k: int) -> dict[str, dict[str, tuple[Verdict, Record, dict[str, bool]]]]:
    """Per query modality and record id: the verdict under `thresholds`, the truth and what is referenced."""
    out: dict[str, dict] = {}
    for modality in ("dna", "image"):
        items = outcomes(identifier, records, modality, top_k)
        if not items:
            continue
        if modality == "dna":
            bands = thresholds.barcode or IdentityBands()
            vs = [barcode_verdict(b.hits, bands) for b in barcode_outcomes(identifier, items)]
        else:
            vs = [modality_verdict(q.neighbors, thresholds.by_modality.get(modality)) for q in items]
        out[modality] = {q.record.id: (v, q.record, q.present) for q, v in zip(items, vs)}
    return out


def evaluate_split(identifier: Identifier, thresholds: Thresholds, records: Sequence[Record],
                   top_k: int) -> dict[str, dict]:
    """The report per query modality, and fused for specimens that have both."""
    per = _verdicts(identifier, thresholds, records, top_k)
    out = {m: report(*map(list, zip(*rows.values()))) for m, rows in per.items()}
    if len(per) == 2:
        both = [i for i in per["dna"] if i in per["image"]]
        out["image+dna"] = report([fuse({m: per[m][i][0] for m in per}) for i in both],
                                  [per["dna"][i][1] for i in both], [per["dna"][i][2] for i in both])
    return out


def calibrate(identifier: Identifier, fit_records: Sequence[Record], target_precision: float = 0.95,
              top_k: int = 10) -> Thresholds:
    """Fit thresholds per query modality on validation records (seen and unseen species)."""
    by_modality, counts, bands = {}, {}, None
    for modality in ("dna", "image"):
        items = outcomes(identifier, fit_records, modality, top_k)
        if not items:
            continue
        counts[modality] = {"queries": len(items), "species_absent": sum(not q.present["species"] for q in items)}
        if modality == "dna":
            bands = fit_bands(barcode_outcomes(identifier, items), target_precision)
            bands.placement = reference_spread(identifier)
        else:
            by_modality[modality] = fit_modality(items, target_precision)
    if not counts:
        raise ValueError("no validation records with a barcode or an image to calibrate on")
    return Thresholds(by_modality, identifier.checkpoint_hash, target_precision,
                      {"snapshot_id": identifier.searcher.snapshot.id, "top_k": top_k, "counts": counts}, bands)
