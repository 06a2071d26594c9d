"""From neighbours to an answer: per-rank scores, the deepest confident rank, and confident/uncertain/novel.

A rank is confident when its best label's score (share of the neighbours' votes) reaches the calibrated
threshold for that rank and the taxon looks present in the references; the deepest such rank makes its
ancestors (as the matching reference records name them) confident too. A specimen is `novel` at rank r when the rank above r is confident
and the nearest key is less similar than the calibrated novelty threshold of r ("new species of genus X").
Without calibrated thresholds nothing is called confident or novel. Barcodes are answered from alignment
evidence instead (`index.identity`); `fuse` joins the answers of every query modality.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from clibd.taxonomy import RANKS
from clibd.index.searcher import Neighbor, aggregate

@dataclass
class ModalityThresholds:
    """Per rank: the least label score that is confident, and the top-1 similarity below which a taxon is
    absent (barcodes are judged by identity bands instead: `index.identity`)."""

    confident: dict[str, Optional[float]]
    novel: dict[str, Optional[float]]


@dataclass
class RankCall:
    """The best label at one rank, its score in [0, 1], and whether it is confident."""

    label: Optional[str]
    score: float
    confident: bool


@dataclass
class Verdict:
    """An answer from one modality or from the fusion of several."""

    ranks: dict[str, RankCall]
    deepest: Optional[str]
    status: str
    novel_at_rank: Optional[str]
    top_similarity: Optional[float]
    decided_by: list[str] = field(default_factory=list)
    distribution: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    top_identity: Optional[float] = None


def next_rank(deepest: Optional[str]) -> Optional[str]:
    """The rank below the deepest confident one (order when none is)."""
    if deepest is None:
        return RANKS[0]
    i = RANKS.index(deepest)
    return RANKS[i + 1] if i + 1 < len(RANKS) else None


def status_of(deepest: Optional[str], novel_below: Optional[str]) -> tuple[str, Optional[str]]:
    """confident (to species), novel (below the deepest confident rank) or uncertain, and the novel rank."""
    if deepest == RANKS[-1]:
        return "confident", None
    if novel_below is not None:
        return "novel", novel_below
    return "uncertain", None


def is_absent(top_sim: Optional[float], t: Optional[ModalityThresholds], rank: Optional[str]) -> bool:
    """Whether the rank's taxon looks absent from the references (nearest key less similar than the bar)."""
    if t is None or rank is None:
        return False
    if top_sim is None or t.novel.get(rank) is None:
        return False
    return top_sim < t.novel[rank]


def modality_verdict(neighbors: list[Neighbor], thresholds: Optional[ModalityThresholds]) -> Verdict:
    """The answer of one modality's embedding neighbours under its thresholds."""
    agg = aggregate(neighbors)
    top_sim = neighbors[0].similarity if neighbors else None
    best = {rank: agg[rank][0] if agg[rank] else (None, 0.0) for rank in RANKS}
    deepest = None  # the deepest rank confident on its own; a confident taxon makes its ancestors confident
    for rank in RANKS:
        label, score = best[rank]
        bar = thresholds.confident.get(rank) if thresholds else None
        if (label is not None and bar is not None and score >= bar
                and not is_absent(top_sim, thresholds, rank)):
            deepest = rank
    ranks = {}
    if deepest is not None:
        carrier = next(n.record for n in neighbors if n.record.label(deepest) == best[deepest][0])
        for rank in RANKS[:RANKS.index(deepest) + 1]:
            label = carrier.label(rank) or best[rank][0]
            ranks[rank] = RankCall(label, float(dict(agg[rank]).get(label, 0.0)), True)
    for rank in RANKS:
        ranks.setdefault(rank, RankCall(best[rank][0], float(best[rank][1]), False))
    nxt = next_rank(deepest)
    novel_rank = nxt if deepest is not None and is_absent(top_sim, thresholds, nxt) else None
    status, novel_at = status_of(deepest, novel_rank)
    return Verdict(ranks, deepest, status, novel_at, top_sim, distribution={r: agg[r][:5] for r in RANKS})


def fuse(verdicts: dict[str, Verdict]) -> Verdict:
    """One answer from several modalities: a rank is confident when some modality is confident in a label and
    none is confident in another; the scores are the mean over modalities of the chosen label's score."""
    if len(verdicts) == 1:
        (name, only), = verdicts.items()
        return Verdict(only.ranks, only.deepest, only.status, only.novel_at_rank, only.top_similarity,
                       [name] if only.deepest or only.status == "novel" else [], only.distribution,
                       only.top_identity)
    mean: dict[str, dict[str, float]] = {}
    for rank in RANKS:
        labels = {lab for v in verdicts.values() for lab, _ in v.distribution.get(rank, [])}
        mean[rank] = {lab: sum(dict(v.distribution.get(rank, [])).get(lab, 0.0) for v in verdicts.values())
                      / len(verdicts) for lab in labels}
    ranks, deepest, chain, deciders = {}, None, True, []
    for rank in RANKS:
        calls = {m: v.ranks[rank] for m, v in verdicts.items()}
        sure = {m: c for m, c in calls.items() if c.confident}
        labels_sure = {c.label for c in sure.values()}
        if len(labels_sure) == 1:
            label = labels_sure.pop()
        else:  # nobody sure, or a conflict: the best-scoring label, not confident
            label = max(calls.values(), key=lambda c: c.score).label
        ok = chain and len(sure) > 0 and all(c.label == label for c in sure.values())
        chain = chain and ok
        if ok:
            deepest, deciders = rank, sorted(sure)
        ranks[rank] = RankCall(label, float(mean[rank].get(label, 0.0)), ok)
    novel_rank = None
    sayers = {m: v.novel_at_rank for m, v in verdicts.items()
              if deepest is not None and v.deepest == deepest and v.novel_at_rank}
    if sayers:  # the shallowest absent rank any modality reports, unless some modality is sure down to it
        rank = min(sayers.values(), key=RANKS.index)
        span = RANKS[RANKS.index(deepest) + 1:RANKS.index(rank) + 1]
        if not any(v.ranks[r].confident for v in verdicts.values() for r in span):
            novel_rank, deciders = rank, sorted(m for m, r in sayers.items() if r == rank)
    status, novel_at = status_of(deepest, novel_rank)
    tops = [v.top_similarity for v in verdicts.values() if v.top_similarity is not None]
    merged = {rank: sorted(mean[rank].items(), key=lambda x: -x[1])[:5] for rank in RANKS}
    identities = [v.top_identity for v in verdicts.values() if v.top_identity is not None]
    return Verdict(ranks, deepest, status, novel_at, max(tops) if tops else None, deciders, merged,
                   max(identities) if identities else None)

