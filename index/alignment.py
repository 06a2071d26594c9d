"""Percent identity of two barcodes from a real pairwise alignment (parasail, SIMD)."""
from __future__ import annotations

import parasail

from clibd.dna_tokenizer import IUPAC_AMBIGUOUS, NUCLEOTIDES, normalize_sequence

_ALPHABET = NUCLEOTIDES + IUPAC_AMBIGUOUS
_MATRIX = parasail.matrix_create(_ALPHABET, 2, -3)
GAP_OPEN, GAP_EXTEND = 5, 2


def percent_identity(query: str, target: str) -> float:
    """Identical columns / aligned columns (%), end gaps free, as BOLD and vsearch report it.

    A semi-global alignment lets a barcode trimmed shorter than another align inside it without
    penalty. So that unrelated sequences cannot score 100% on a tiny overlap, the columns count at
    least the shorter barcode's length: its unaligned part counts as differences.
    """
    q, t = normalize_sequence(query), normalize_sequence(target)
    result = parasail.sg_stats_striped_16(q, t, GAP_OPEN, GAP_EXTEND, _MATRIX)
    columns = max(result.length, min(len(q), len(t)))
    return 100.0 * result.matches / columns
