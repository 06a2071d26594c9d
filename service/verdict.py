"""From neighbours to an answer: per-rank scores, the deepest confident rank, and confident/uncertain/novel.

A rank is confident when its best label's score (share of the neighbours' votes) reaches the calibrated
threshold for that rank and the taxon looks present in the references; the deepest such rank makes its
ancestors (as the matching reference records name them) confident too. A specimen is `novel` at rank r when the rank above r is confident
and the nearest key is less similar than the calibrated novelty threshold of r ("new species of genus X").
Without calibrated thresholds nothing is called confident or novel.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

from clibd.taxonomy import RANKS
from index.searcher import Neighbor, aggregate

CALIBRATION_FILE = "calibration.json"


class CalibrationMismatchError(ValueError):
    """The stored thresholds were fitted for another checkpoint."""


@dataclass
class ModalityThresholds:
    """Per rank: the least label score that is confident, the top-1 similarity below which a taxon is absent,
    and (barcodes) the best percent identity below which it is absent — used instead when both are known."""

    confident: dict[str, Optional[float]]
    novel: dict[str, Optional[float]]
    novel_identity: dict[str, Optional[float]] = field(default_factory=dict)


@dataclass
class Thresholds:
    """Calibrated thresholds per query modality, with what they were fitted on."""

    by_modality: dict[str, ModalityThresholds]
    checkpoint_hash: str
    target_precision: float
    fitted_on: dict = field(default_factory=dict)

    def save(self, root: str | Path) -> Path:
        """Write the thresholds beside the index snapshots (they outlive compactions of the same model)."""
        path = Path(root) / CALIBRATION_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, root: str | Path, checkpoint_hash: Optional[str] = None) -> Optional["Thresholds"]:
        """The stored thresholds, None when none were fitted; refuse another checkpoint's."""
        path = Path(root) / CALIBRATION_FILE
        if not path.exists():
            return None
        raw = json.loads(path.read_text())
        if checkpoint_hash is not None and raw["checkpoint_hash"] != checkpoint_hash:
            raise CalibrationMismatchError(f"{path} was fitted for checkpoint {raw['checkpoint_hash'][:12]}, "
                                           f"not {checkpoint_hash[:12]}; run `clibd calibrate` again")
        raw["by_modality"] = {m: ModalityThresholds(**t) for m, t in raw["by_modality"].items()}
        return cls(**raw)


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


def _next_rank(deepest: Optional[str]) -> Optional[str]:
    if deepest is None:
        return RANKS[0]
    i = RANKS.index(deepest)
    return RANKS[i + 1] if i + 1 < len(RANKS) else None


def _status(deepest: Optional[str], novel_below: Optional[str]) -> tuple[str, Optional[str]]:
    if deepest == RANKS[-1]:
        return "confident", None
    if novel_below is not None:
        return "novel", novel_below
    return "uncertain", None


def is_absent(top_sim: Optional[float], t: Optional[ModalityThresholds], rank: Optional[str],
              top_identity: Optional[float] = None) -> bool:
    """Whether the rank's taxon looks absent from the references (the identity rule first, then similarity)."""
    if t is None or rank is None:
        return False
    if top_identity is not None and t.novel_identity.get(rank) is not None:
        return top_identity < t.novel_identity[rank]
    if top_sim is None or t.novel.get(rank) is None:
        return False
    return top_sim < t.novel[rank]


def modality_verdict(neighbors: list[Neighbor], thresholds: Optional[ModalityThresholds],
                     top_identity: Optional[float] = None) -> Verdict:
    """The answer of one modality's neighbours under its thresholds (`top_identity`: the best percent identity
    of a barcode query with its neighbours, when aligned)."""
    agg = aggregate(neighbors)
    top_sim = neighbors[0].similarity if neighbors else None
    best = {rank: agg[rank][0] if agg[rank] else (None, 0.0) for rank in RANKS}
    deepest = None  # the deepest rank confident on its own; a confident taxon makes its ancestors confident
    for rank in RANKS:
        label, score = best[rank]
        bar = thresholds.confident.get(rank) if thresholds else None
        if (label is not None and bar is not None and score >= bar
                and not is_absent(top_sim, thresholds, rank, top_identity)):
            deepest = rank
    ranks = {}
    if deepest is not None:
        carrier = next(n.record for n in neighbors if n.record.label(deepest) == best[deepest][0])
        for rank in RANKS[:RANKS.index(deepest) + 1]:
            label = carrier.label(rank) or best[rank][0]
            ranks[rank] = RankCall(label, float(dict(agg[rank]).get(label, 0.0)), True)
    for rank in RANKS:
        ranks.setdefault(rank, RankCall(best[rank][0], float(best[rank][1]), False))
    nxt = _next_rank(deepest)
    novel_rank = nxt if deepest is not None and is_absent(top_sim, thresholds, nxt, top_identity) else None
    status, novel_at = _status(deepest, novel_rank)
    return Verdict(ranks, deepest, status, novel_at, top_sim, distribution={r: agg[r][:5] for r in RANKS})


def fuse(verdicts: dict[str, Verdict]) -> Verdict:
    """One answer from several modalities: a rank is confident when some modality is confident in a label and
    none is confident in another; the scores are the mean over modalities of the chosen label's score."""
    if len(verdicts) == 1:
        (name, only), = verdicts.items()
        return Verdict(only.ranks, only.deepest, only.status, only.novel_at_rank, only.top_similarity,
                       [name] if only.deepest or only.status == "novel" else [], only.distribution)
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
    nxt = _next_rank(deepest)
    novel_rank = None
    if deepest is not None and nxt is not None:
        sayers = [m for m, v in verdicts.items() if v.deepest == deepest and v.novel_at_rank == nxt]
        if sayers and not any(v.ranks[nxt].confident for v in verdicts.values()):
            novel_rank, deciders = nxt, sorted(sayers)
    status, novel_at = _status(deepest, novel_rank)
    tops = [v.top_similarity for v in verdicts.values() if v.top_similarity is not None]
    merged = {rank: sorted(mean[rank].items(), key=lambda x: -x[1])[:5] for rank in RANKS}
    return Verdict(ranks, deepest, status, novel_at, max(tops) if tops else None, deciders, merged)

