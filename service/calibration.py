"""`clibd calibrate`: fit the confident/novel thresholds on validation queries and report them on held-out ones.

Novelty at rank r is fitted on queries whose taxon above r is among the references: those whose rank-r taxon is
present too against those whose rank-r taxon is absent, on the nearest key's similarity and, for barcodes, on the
best percent identity of a real alignment with the neighbours (balanced accuracy); the identity rule is used for
barcodes where it could be fitted.
Confidence at rank r is the least label score at which the answers reaching it are right with the target
precision. A rank with no absent taxa to learn from gets no novelty threshold, one whose precision target cannot
be met gets no confidence threshold; both are reported as such, not guessed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from clibd.preprocess import load_image
from clibd.records import Record
from clibd.taxonomy import RANKS
from index.searcher import Neighbor
from service.identifier import Identifier, identities_of
from service.verdict import ModalityThresholds, Thresholds, Verdict, fuse, is_absent, modality_verdict

MIN_SUPPORT = 10


@dataclass
class QueryOutcome:
    """One validation query in one modality: its record, neighbours and whether its taxa are referenced."""

    record: Record
    neighbors: list[Neighbor]
    present: dict[str, bool]
    top_identity: Optional[float] = None


def _query_vectors(identifier: Identifier, records: Sequence[Record], modality: str) -> tuple[list[Record], np.ndarray]:
    if modality == "dna":
        recs = [r for r in records if r.dna]
        return recs, identifier.encode_dna([r.dna for r in recs])
    recs = [r for r in records if r.image]
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
    out = []
    for r, n in zip(recs, found):
        ids = [i for i in identities_of(r.dna, n) if i is not None] if modality == "dna" else []
        out.append(QueryOutcome(r, n, {rank: present(r.label(rank)) for rank in RANKS}, max(ids) if ids else None))
    return out


def youden_threshold(positive: Sequence[float], negative: Sequence[float]) -> Optional[float]:
    """The similarity that best separates present (>=) from absent (<), by TPR + TNR; None without both."""
    if len(positive) == 0 or len(negative) == 0:
        return None
    pos, neg = np.sort(np.asarray(positive)), np.sort(np.asarray(negative))
    candidates = np.unique(np.concatenate([pos, neg]))
    tpr = 1.0 - np.searchsorted(pos, candidates, side="left") / len(pos)
    tnr = np.searchsorted(neg, candidates, side="left") / len(neg)
    return float(candidates[int(np.argmax(tpr + tnr))])


def precision_threshold(scores: Sequence[float], correct: Sequence[bool], target: float) -> Optional[float]:
    """The least score at which answers scoring at least that are right with precision >= target."""
    if len(scores) == 0:
        return None
    order = np.argsort(-np.asarray(scores), kind="stable")
    s, c = np.asarray(scores)[order], np.asarray(correct, dtype=float)[order]
    precision = np.cumsum(c) / np.arange(1, len(c) + 1)
    best = None
    for i in range(len(s)):
        if i + 1 >= MIN_SUPPORT and precision[i] >= target and (i + 1 == len(s) or s[i + 1] < s[i]):
            best = float(s[i])
    return best


def fit_modality(items: list[QueryOutcome], target: float) -> ModalityThresholds:
    """Thresholds of one query modality from its validation outcomes."""
    novel: dict[str, Optional[float]] = {}
    novel_identity: dict[str, Optional[float]] = {}
    confident: dict[str, Optional[float]] = {}
    scored = [(q, modality_verdict(q.neighbors, None)) for q in items if q.neighbors]  # rank-independent
    for i, rank in enumerate(RANKS):
        parent_known = [q for q in items if i == 0 or q.present[RANKS[i - 1]]]
        sims_present = [q.neighbors[0].similarity for q in parent_known if q.neighbors and q.present[rank]]
        sims_absent = [q.neighbors[0].similarity for q in parent_known if q.neighbors and not q.present[rank]]
        novel[rank] = youden_threshold(sims_present, sims_absent)
        novel_identity[rank] = youden_threshold(
            [q.top_identity for q in parent_known if q.top_identity is not None and q.present[rank]],
            [q.top_identity for q in parent_known if q.top_identity is not None and not q.present[rank]])
        rule = ModalityThresholds({}, novel, novel_identity)
        passing = [(q, v) for q, v in scored
                   if not is_absent(q.neighbors[0].similarity, rule, rank, q.top_identity)]
        scores = [v.ranks[rank].score for _, v in passing]
        correct = [v.ranks[rank].label is not None and v.ranks[rank].label == q.record.label(rank)
                   for q, v in passing]
        confident[rank] = precision_threshold(scores, correct, target)
    return ModalityThresholds(confident=confident, novel=novel, novel_identity=novel_identity)


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


def evaluate_split(identifier: Identifier, thresholds: Thresholds, records: Sequence[Record],
                   top_k: int) -> dict[str, dict]:
    """The report per query modality, and fused for specimens that have both."""
    per: dict[str, dict[str, QueryOutcome]] = {}
    out = {}
    for modality in ("dna", "image"):
        items = outcomes(identifier, records, modality, top_k)
        if not items:
            continue
        per[modality] = {q.record.id: q for q in items}
        t = thresholds.by_modality.get(modality)
        out[modality] = report([modality_verdict(q.neighbors, t, q.top_identity) for q in items],
                               [q.record for q in items],
                               [q.present for q in items])
    if len(per) == 2:
        both = [i for i in per["dna"] if i in per["image"]]
        vs = [fuse({m: modality_verdict(per[m][i].neighbors, thresholds.by_modality.get(m), per[m][i].top_identity)
                    for m in per})
              for i in both]
        out["image+dna"] = report(vs, [per["dna"][i].record for i in both], [per["dna"][i].present for i in both])
    return out


def calibrate(identifier: Identifier, fit_records: Sequence[Record], target_precision: float = 0.95,
              top_k: int = 10) -> Thresholds:
    """Fit thresholds per query modality on validation records (seen and unseen species)."""
    by_modality, counts = {}, {}
    for modality in ("dna", "image"):
        items = outcomes(identifier, fit_records, modality, top_k)
        if items:
            by_modality[modality] = fit_modality(items, target_precision)
            counts[modality] = {"queries": len(items),
                                "species_absent": sum(not q.present["species"] for q in items)}
    if not by_modality:
        raise ValueError("no validation records with a barcode or an image to calibrate on")
    return Thresholds(by_modality, identifier.checkpoint_hash, target_precision,
                      {"snapshot_id": identifier.searcher.snapshot.id, "top_k": top_k, "counts": counts})
