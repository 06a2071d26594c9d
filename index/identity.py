"""From alignment hits to an answer: per-rank identity bands and a consensus of the closest hits.

A barcode's rank-r label is the consensus of the hits within `near` points of the best identity (their share
of those hits is its score). The label is confident when the best identity reaches the rank's band and the
consensus holds; the deepest confident rank makes its ancestors confident (as the carrying reference names
them). Below the next rank's novelty band the specimen is `novel` there ("new species of genus X"). With no
hit inside the order band nothing is confident; with no overlapping reference there is no answer at all.

Bands are fitted per reference set by `clibd calibrate` (`fit_bands`); until then BOLD's ID-engine bands
(97 / 95 / 90 / 85 % for species / genus / family / order) apply, and the answer says so.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Optional, Sequence

from clibd.taxonomy import RANKS
from index.barcodes import Hit
from index.fitting import precision_threshold, youden_threshold
from index.verdict import RankCall, Verdict, next_rank, status_of

BOLD_BANDS = {"order": 85.0, "family": 90.0, "genus": 95.0, "species": 97.0}


@dataclass
class IdentityBands:
    """Per rank the least best identity (%) for a confident label and the one below which the taxon is
    absent; how close to the best a hit must be to vote, the share its label needs, and where each came from."""

    confident: dict[str, Optional[float]] = field(default_factory=lambda: dict(BOLD_BANDS))
    novel: dict[str, Optional[float]] = field(default_factory=lambda: dict(BOLD_BANDS))
    near: float = 1.0
    consensus: float = 0.7
    source: dict[str, str] = field(default_factory=lambda: {r: "bold-default" for r in RANKS})


def rank_votes(hits: Sequence[Hit], rank: str, near: float) -> list[tuple[str, float]]:
    """Labels at `rank` by their share of the hits within `near` points of the best, best first; ties go to
    the label of the closer hit."""
    if not hits:
        return []
    best = hits[0].identity
    close = [h for h in hits if h.identity >= best - near]
    votes = Counter(h.record.label(rank) for h in close if h.record.label(rank))
    first = {}
    for i, h in enumerate(close):
        first.setdefault(h.record.label(rank), i)
    ranked = sorted(votes.items(), key=lambda kv: (-kv[1], first[kv[0]]))
    return [(label, n / len(close)) for label, n in ranked]


def barcode_verdict(hits: Sequence[Hit], bands: IdentityBands) -> Verdict:
    """The answer of a barcode's alignment hits (best identity first) under identity bands."""
    top = hits[0].identity if hits else None
    similarity = next((h.similarity for h in hits if h.similarity is not None), None)
    votes = {rank: rank_votes(hits, rank, bands.near) for rank in RANKS}
    best = {rank: votes[rank][0] if votes[rank] else (None, 0.0) for rank in RANKS}

    def absent(rank: Optional[str]) -> bool:
        bar = bands.novel.get(rank) if rank else None
        return top is not None and bar is not None and top < bar

    deepest = None
    for rank in RANKS:
        label, share = best[rank]
        bar = bands.confident.get(rank)
        if label and bar is not None and top >= bar and share >= bands.consensus and not absent(rank):
            deepest = rank
    ranks: dict[str, RankCall] = {}
    if deepest is not None:
        carrier = next(h.record for h in hits if h.record.label(deepest) == best[deepest][0])
        for rank in RANKS[:RANKS.index(deepest) + 1]:
            label = carrier.label(rank) or best[rank][0]
            ranks[rank] = RankCall(label, dict(votes[rank]).get(label, 0.0), True)
    for rank in RANKS:
        ranks.setdefault(rank, RankCall(best[rank][0], best[rank][1], False))
    nxt = next_rank(deepest)
    novel_at = nxt if deepest is not None and absent(nxt) else None
    status, novel_at = status_of(deepest, novel_at)
    return Verdict(ranks, deepest, status, novel_at, similarity, distribution={r: votes[r][:5] for r in RANKS},
                   top_identity=top)


@dataclass
class BarcodeOutcome:
    """One calibration query: its hits, its true record, and whether each of its taxa is in the references."""

    hits: list[Hit]
    truth: object
    present: dict[str, bool]


def fit_bands(items: Sequence[BarcodeOutcome], target: float, near: float = 1.0,
              consensus: float = 0.7) -> IdentityBands:
    """Bands fitted on queries of known truth; a rank that cannot be fitted keeps BOLD's band (and says so).

    Novelty at rank r separates, among queries whose rank-above taxon is referenced, those whose rank-r taxon
    is referenced from those whose is not (best identity, balanced accuracy). Confidence at rank r is the
    least best identity at which the consensus label is right with the target precision.
    """
    bands = IdentityBands(near=near, consensus=consensus)
    scored = [q for q in items if q.hits]
    for i, rank in enumerate(RANKS):
        parent_known = [q for q in scored if i == 0 or q.present[RANKS[i - 1]]]
        novel = youden_threshold([q.hits[0].identity for q in parent_known if q.present[rank]],
                                 [q.hits[0].identity for q in parent_known if not q.present[rank]])
        if novel is not None:
            bands.novel[rank] = novel
        passing = [q for q in scored if bands.novel[rank] is None or q.hits[0].identity >= bands.novel[rank]]
        calls = [(q, rank_votes(q.hits, rank, near)) for q in passing]
        calls = [(q, v[0]) for q, v in calls if v and v[0][1] >= consensus]
        conf = precision_threshold([q.hits[0].identity for q, _ in calls],
                                   [label == q.truth.label(rank) for q, (label, _) in calls], target)
        if conf is not None:
            bands.confident[rank] = conf
        bands.source[rank] = ("fitted" if novel is not None and conf is not None else
                              "fitted confident, bold-default novel" if conf is not None else
                              "fitted novel, bold-default confident" if novel is not None else "bold-default")
    return bands
