"""Which strand was a barcode given on? A COI barcode pasted as its reverse complement is read the other way.

Reference barcodes (BOLD's, GenBank's) are stored on the coding strand, but a barcode assembled from a
reverse read, or exported by some pipelines, comes as its reverse complement and would align with nothing
(BLAST searches both strands; `vsearch --usearch_global` only the plus strand unless told). The coding strand of
COI has a reading frame free of stop codons (TAA, TAG in the invertebrate mitochondrial code: TGA codes Trp,
AGA/AGG Ser); its reverse complement has none over a barcode's length. So a barcode with an open frame is taken
as given when its reverse complement has none; otherwise (the other strand, a forward read with a frame-shifting
error, a barcode too short to tell, not COI at all) it is read the way that shares more k-mers with the
references — reversed only when that way shares strictly more. Reference barcodes are indexed on their coding
strand by their frames alone (`coding_strand`): BOLD-derived sets hold the odd record stored reversed (insect1k
2 of 14,072 distinct barcodes), which as stored no query of its species would ever align with.
"""
from __future__ import annotations

import re
from typing import Callable, Optional

_COMPLEMENT = str.maketrans("ACGTRYKMBDHVNSW", "TGCAYRMKVHDBNSW")
_OPEN = re.compile(r"(?:(?!TA[AG])...)*.{0,2}")  # codons none of which is a stop, then a partial codon
MIN_CODONS = 30  # shorter than this, an open frame happens on either strand by chance: the k-mers decide


def reverse_complement(sequence: str) -> str:
    """The other strand of a normalised (IUPAC, upper-case) barcode, read 5' to 3'."""
    return sequence.translate(_COMPLEMENT)[::-1]


def open_frame(sequence: str) -> Optional[int]:
    """The first frame (0-2) of `sequence` with no stop codon (TAA/TAG) over at least `MIN_CODONS`, or None."""
    return next((frame for frame in range(3)
                 if (len(sequence) - frame) // 3 >= MIN_CODONS and _OPEN.fullmatch(sequence, frame)), None)


def has_open_frame(sequence: str) -> bool:
    """Whether one of the three frames of `sequence` is free of stop codons (`open_frame`)."""
    return open_frame(sequence) is not None


def coding_strand(sequence: str) -> tuple[str, bool]:
    """A reference barcode on its coding strand by its frames alone, and whether it was reverse-complemented:
    only one with no open frame whose reverse complement has one is turned."""
    if has_open_frame(sequence):
        return sequence, False
    other = reverse_complement(sequence)
    return (other, True) if has_open_frame(other) else (sequence, False)


def orient(sequence: str, shared: Callable[[str], int]) -> tuple[str, bool]:
    """The barcode on the strand to search, and whether that is its reverse complement; `shared(s)` says how
    many k-mers `s` shares with the references closest to it (consulted only when the frames do not tell)."""
    other = reverse_complement(sequence)
    if has_open_frame(sequence) and not has_open_frame(other):
        return sequence, False
    return (other, True) if shared(other) > shared(sequence) else (sequence, False)
