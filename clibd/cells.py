"""Cells of exported CSV/TSV tables that a spreadsheet will not run as formulas.

A specimen id or a name comes from whoever wrote the FASTA header, the manifest or the reference file; a cell
opening with `=`, `+`, `-`, `@`, a tab or a carriage return is read by spreadsheet programs as a formula
(OWASP's "CSV injection"). Such text is written with a leading apostrophe, which spreadsheets show as text
and `read_cell` removes; numbers are written as they are.
"""
from __future__ import annotations

from typing import Any

FORMULA_START = frozenset("=+-@\t\r")


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def spreadsheet_safe(value: Any) -> Any:
    """`value` as a table cell: text a spreadsheet would take for a formula, or that opens with an apostrophe
    (so that `read_cell` can tell), gets a leading apostrophe; anything else is unchanged."""
    if isinstance(value, str) and value and (value[0] == "'" or value[0] in FORMULA_START and not _number(value)):
        return "'" + value
    return value


def safe_row(row: dict) -> dict:
    """Every cell of a row through `spreadsheet_safe`."""
    return {k: spreadsheet_safe(v) for k, v in row.items()}


def read_cell(text: str) -> str:
    """A cell written by `spreadsheet_safe`, as it was given."""
    return text[1:] if text[:1] == "'" and text[1:2] and (text[1] == "'" or text[1] in FORMULA_START) else text
