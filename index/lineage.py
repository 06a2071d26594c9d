"""Is a new reference's lineage the one the references already give its taxa?

A reference added as genus "Aedes" in family "Muscidae", where every other Aedes is a Culicidae, or spelled
"aedes vexans" beside "Aedes vexans", splits one taxon in two: votes at a rank count labels, so the new key then
votes against its own relatives. The deepest taxon of the new lineage that the references know decides: some
searchable key carrying it must agree with every rank the new one gives above it (a rank either leaves empty
agrees), spelled alike. Below it the taxa are new, and nothing is known to contradict.
"""
from __future__ import annotations

from typing import Callable, Iterable, Optional

from clibd.taxonomy import RANKS

Lineage = dict[str, Optional[str]]


def _agrees(given: Lineage, key: object, depth: int) -> bool:
    return all(not given.get(r) or not key.label(r) or given[r] == key.label(r) for r in RANKS[:depth + 1])


def _named(label: Callable[[str], Optional[str]], depth: int) -> str:
    return ", ".join(f"{r} {label(r)}" for r in RANKS[:depth + 1] if label(r))


def lineage_conflict(given: Lineage, carrying: Callable[[str, str], Iterable[object]]) -> Optional[str]:
    """Why `given` (rank -> name) contradicts the references, or None; `carrying(rank, name)` yields the
    searchable keys with that name at that rank, any case."""
    for depth in reversed(range(len(RANKS))):
        rank, name = RANKS[depth], given.get(RANKS[depth])
        if not name:
            continue
        known = None
        for key in carrying(rank, name):
            if _agrees(given, key, depth):
                return None
            known = known or key
        if known is not None:
            return (f"{rank} {name!r} is {_named(known.label, depth)} in the references; this reference gives "
                    f"{_named(given.get, depth)}. Give the references' lineage and spelling, or delete those "
                    f"references first")
    return None
