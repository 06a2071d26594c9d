"""From alignment hits to an answer: per-rank identity bands and a consensus of the closest hits.

A barcode's rank-r label is the consensus of the hits within `near` points of the best identity (their share
of those hits is its score). The label is confident when the best identity reaches the rank's band and the
consensus holds; the deepest confident rank makes its ancestors confident (as the carrying reference names
them). Below the next rank's novelty band the specimen is `novel` there ("new species of genus X"). With no
hit inside the order band nothing is confident; with no overlapping reference there is no answer at all.

Bands are fitted per reference set by `clibd calibrate` (`fit_bands`); until then BOLD's ID-engine bands
(97 / 95 / 90 / 85 % for species / genus / family / order) apply to confident labels and 97% to new species,
and the answer says so. The label at a rank is the best hit's (majority among hits tied at the best identity),
as an alignment search reports it; the consensus decides only whether it is confident. Where references of
two species are equally close at the best identity (species sharing a barcode), the species is not confident
whatever the vote: the barcode cannot tell them apart, as BOLD's engine reports a match to several species. (At
higher ranks a tie is two genera equally far from a new species, and the vote of the near hits stands.)
A barcode below the species band whose genus is not confident is a new species of its deepest confident rank
("new species in family Y, genus uncertain"): its genus label is then the closest reference's, shown but not
claimed. Where the calibration fitted how far each genus' species sit apart (`index.placement`), a new species
whose closest genus cannot hold it is shown in the genus that can (with that genus' lineage and closest
species), never claimed there.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from clibd.taxonomy import RANKS
from clibd.index.barcodes import Hit, standing
from clibd.index.placement import GenusSpread
from clibd.fitting import capped_separator, precision_threshold
from clibd.index.verdict import RankCall, Verdict, status_of

BOLD_BANDS = {"order": 85.0, "family": 90.0, "genus": 95.0, "species": 97.0}
# Until fitted, only "new species" is claimed (below 97%, the usual rule); a congeneric species is often less
# than 95% identical, so BOLD's genus band says nothing about a new genus.
DEFAULT_NOVEL = {"order": None, "family": None, "genus": None, "species": 97.0}
MAX_FALSE_NOVEL = 0.05
# the rank at which references of two labels equally close to the query leave it undecided
SHARED_BARCODE_RANK = "species"
# A novelty band fitted on fewer queries of either kind moves with a handful of specimens; the default stays.
MIN_NOVEL_SUPPORT = 200
# A novelty band stays this far (identity points, about three mismatches over a 658-nt barcode) below every
# fit query of a present taxon it spares: identities of present and new species interleave at that scale, and
# a band fitted right under one present query calls the next, slightly less identical one novel.
NOVEL_MARGIN = 0.5


@dataclass
class IdentityBands:
    """Per rank the least best identity (%) for a confident label and the one below which the taxon is
    absent; how close to the best a hit must be to vote, the share its label must exceed, and where each came
    from."""

    confident: dict[str, Optional[float]] = field(default_factory=lambda: dict(BOLD_BANDS))
    novel: dict[str, Optional[float]] = field(default_factory=lambda: dict(DEFAULT_NOVEL))
    near: float = 0.5
    consensus: float = 0.5
    source: dict[str, str] = field(default_factory=lambda: {r: "bold-default" for r in RANKS})
    placement: Optional[GenusSpread] = None  # where a new species goes when its closest genus cannot hold it

    def __post_init__(self) -> None:
        if isinstance(self.placement, dict):  # read back from calibration.json
            self.placement = GenusSpread(**self.placement)


def rank_votes(hits: Sequence[Hit], rank: str, near: float) -> list[tuple[str, float]]:
    """Labels at `rank` by their share of the hits within `near` points of the best (by `standing`, as the hits
    rank: a short overlap's identity does not outvote the first hit), best first; ties go to the label of the
    closer hit."""
    if not hits:
        return []
    ranked = standing(hits)
    least = max(ranked) - near
    close = [h for h, s in zip(hits, ranked) if s >= least]
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
    best, tied_labels = {}, {}
    for rank in RANKS:
        tied = rank_votes(hits, rank, 0.0)  # the labels of the hits at the best identity
        label = tied[0][0] if tied else None
        best[rank] = (label, dict(votes[rank]).get(label, 0.0))
        tied_labels[rank] = len(tied)

    def absent(rank: Optional[str]) -> bool:
        bar = bands.novel.get(rank) if rank else None
        return top is not None and bar is not None and top < bar

    moved: set[str] = set()  # ranks whose label a new species' placement changed: shown, not claimed
    placed = bands.placement.place(hits) if bands.placement is not None and absent("species") else None
    if placed is not None:
        for rank in RANKS:  # the placed genus' lineage, and its closest species shown for it
            label = placed.record.label(rank)
            if label and label != best[rank][0]:
                best[rank] = (label, dict(votes[rank]).get(label, 0.0))
                moved.add(rank)

    deepest = None
    for rank in RANKS:
        label, share = best[rank]
        bar = bands.confident.get(rank)
        if (label and bar is not None and top >= bar and share > bands.consensus
                and not (rank == SHARED_BARCODE_RANK and tied_labels[rank] > 1) and rank not in moved
                and not absent(rank)):
            deepest = rank
    ranks: dict[str, RankCall] = {}
    if deepest is not None:
        carrier = next(h.record for h in hits if h.record.label(deepest) == best[deepest][0])
        for rank in RANKS[:RANKS.index(deepest) + 1]:
            label = carrier.label(rank) or best[rank][0]
            ranks[rank] = RankCall(label, dict(votes[rank]).get(label, 0.0), True)
    for rank in RANKS:
        ranks.setdefault(rank, RankCall(best[rank][0], best[rank][1], False))
    # the shallowest rank below the deepest confident one whose band says its taxon is absent: with the genus
    # uncertain, a barcode far below the species band is still a new species (of the confident family)
    below = RANKS[RANKS.index(deepest) + 1:] if deepest is not None else []
    novel_at = next((rank for rank in below if absent(rank)), None)
    status, novel_at = status_of(deepest, novel_at)
    return Verdict(ranks, deepest, status, novel_at, similarity, distribution={r: votes[r][:5] for r in RANKS},
                   top_identity=top)


@dataclass
class BarcodeOutcome:
    """One calibration query: its hits, its true record, and whether each of its taxa is in the references."""

    hits: list[Hit]
    truth: object
    present: dict[str, bool]


def novel_band(present: Sequence[float], absent: Sequence[float], max_false: float = MAX_FALSE_NOVEL,
               min_support: int = MIN_NOVEL_SUPPORT, balanced: bool = True,
               margin: float = NOVEL_MARGIN) -> Optional[float]:
    """The best identity below which a taxon is called absent (`capped_separator` of best identities)."""
    return capped_separator(present, absent, max_false, min_support, balanced, margin)


def fit_bands(items: Sequence[BarcodeOutcome], target: float, near: float = 0.5, consensus: float = 0.5,
              max_false_novel: float = MAX_FALSE_NOVEL, min_novel_support: int = MIN_NOVEL_SUPPORT) -> IdentityBands:
    """Bands fitted on queries of known truth; a rank that cannot be fitted keeps BOLD's band (and says so).

    Novelty at rank r separates, among queries whose rank-above taxon is referenced, those whose rank-r taxon
    is referenced from those whose is not (best identity; `novel_band`, with at least `min_novel_support`
    queries of each kind, else the default stays), calling at most `max_false_novel` of the present ones
    absent (the balanced cut within that) — and where a default band exists (97% at species), no more of
    them than that default does, finding within that as many absent ones as it can; every cut stays
    `NOVEL_MARGIN` below the present queries it spares, so the default moves up only where the fit queries leave
    a clear gap above it, never merely to the next present query. Confidence at rank r is the
    least best identity at which the consensus label is right with the target precision (species calls tied
    between species at the best identity are never confident and do not count).
    """
    bands = IdentityBands(near=near, consensus=consensus)
    scored = [q for q in items if q.hits]
    votes = IdentityBands(near=near, consensus=0.0)  # labels and shares only; which are confident is fitted here
    calls_of = {id(q): barcode_verdict(q.hits, votes).ranks for q in scored}
    for i, rank in enumerate(RANKS):
        parent_known = [q for q in scored if i == 0 or q.present[RANKS[i - 1]]]
        present = [q.hits[0].identity for q in parent_known if q.present[rank]]
        usual = DEFAULT_NOVEL.get(rank) if present else None
        # never more false alarms than the usual band's; within that, find the most
        usual_false = float(np.mean(np.asarray(present) < usual)) if usual is not None else max_false_novel
        novel = novel_band(present, [q.hits[0].identity for q in parent_known if not q.present[rank]],
                           min(max_false_novel, usual_false), min_novel_support, balanced=usual is None)
        if novel is not None and usual is not None and usual_false <= max_false_novel:
            novel = max(novel, usual)  # the usual band needs no margin: only a clear gap above it moves it up
        if novel is not None:
            bands.novel[rank] = novel
        passing = [q for q in scored if bands.novel[rank] is None or q.hits[0].identity >= bands.novel[rank]]
        calls = [(q, calls_of[id(q)][rank]) for q in passing]
        calls = [(q, (c.label, c.score)) for q, c in calls
                 if c.label and c.score > consensus
                 and not (rank == SHARED_BARCODE_RANK and len(rank_votes(q.hits, rank, 0.0)) > 1)]
        conf = precision_threshold([q.hits[0].identity for q, _ in calls],
                                   [label == q.truth.label(rank) for q, (label, _) in calls], target)
        if conf is not None:
            bands.confident[rank] = conf
        bands.source[rank] = ("fitted" if novel is not None and conf is not None else
                              "fitted confident, default novel" if conf is not None else
                              "fitted novel, bold-default confident" if novel is not None else "bold-default")
    return bands
