"""The typed answer of the identification core (pydantic v2): what `Identifier.answer` returns, what the API
sends, what a job stores (its JSON dump) and what every export reads back."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, Field


class Alternative(BaseModel):
    """A runner-up label at a rank and its score."""

    label: Optional[str]
    score: float


class RankScore(BaseModel):
    """The best label at a rank, its score in [0, 1] and whether it passed the calibrated threshold."""

    label: Optional[str]
    score: float
    confident: bool
    alternatives: list[Alternative] = Field(default_factory=list)


class Identification(BaseModel):
    """The answer in Darwin Core terms, down to the deepest confident rank."""

    scientificName: Optional[str]
    taxonRank: Optional[str]
    order: Optional[str]
    family: Optional[str]
    genus: Optional[str]
    species: Optional[str]
    specificEpithet: Optional[str]
    bin: Optional[str]
    status: Literal["confident", "uncertain", "novel"]
    novel_at_rank: Optional[str]
    identificationRemarks: str


class ModalityAnswer(BaseModel):
    """The answer from one query modality alone."""

    status: Literal["confident", "uncertain", "novel"]
    deepest_rank: Optional[str]
    novel_at_rank: Optional[str]
    top_similarity: Optional[float]
    top_identity: Optional[float] = Field(None, description="best percent identity of an aligned reference barcode")
    strand: Optional[Literal["plus", "minus"]] = Field(
        None, description="for a barcode: searched as given (plus) or as its reverse complement (minus)")
    ranks: dict[str, RankScore]


class NeighborOut(BaseModel):
    """A reference key found for the query: an embedding neighbour (similarity) and/or, for a barcode, an aligned
    reference barcode (percent identity over `overlap` bases)."""

    reference_id: str
    processid: str
    bin: Optional[str]
    modality: str
    similarity: Optional[float]
    order: Optional[str]
    family: Optional[str]
    genus: Optional[str]
    species: Optional[str]
    has_image: bool = False
    percent_identity: Optional[float] = None
    overlap: Optional[int] = None


class Provenance(BaseModel):
    """What produced the answer."""

    model: Optional[str]
    checkpoint_hash: str
    snapshot_id: str
    index_size: dict[str, int]
    synthetic_references: bool = False  # the references are invented (a `clibd synth` demo), not real species
    thresholds: Optional[dict]


class Answer(BaseModel):
    """The full answer for one specimen."""

    identification: Identification
    ranks: dict[str, RankScore]
    per_modality: dict[str, ModalityAnswer]
    decided_by: list[str]
    neighbors: list[NeighborOut]
    provenance: Provenance
