"""Taxonomic ranks and the taxonomy text fed to the text tower."""
from __future__ import annotations

from typing import Mapping, Optional

RANKS: tuple[str, ...] = ("order", "family", "genus", "species")
MISSING_TEXT = "not_classified"


def taxonomy_text(taxonomy: Mapping[str, Optional[str]] | str) -> str:
    """Join order, family, genus and species by spaces, missing ranks as `not_classified`."""
    if isinstance(taxonomy, str):
        return taxonomy
    parts = []
    for rank in RANKS:
        value = taxonomy.get(rank)
        parts.append(value.strip() if value and value.strip() else MISSING_TEXT)
    return " ".join(parts)
