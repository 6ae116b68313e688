"""How a text cell travels through the export and back through the import, unchanged and harmless.

The export writes every text cell through `crm.exports.safe_cell`: text that a spreadsheet would run as
a formula (`=SUM(A1)`, `-5% discount`, `+86 138…`, `@user`, full-width `＝`…) gets a leading `'`,
which spreadsheets show as text. On its own that is not reversible: a value that really started with
`'=` would come back as `=`. So the export also quotes text that starts with any run of `'` followed
by a formula character, and the import removes exactly one `'` from a cell that starts with one or more
`'` followed by a formula character:

    export  v → "'" + v   when v matches  '*F…   (F: a formula prefix of crm.exports)
    import  w → w[1:]     when w matches  '+F…

Every value comes back exactly as it was (tests/switching/test_export.py checks `=SUM(A1)`,
`-5% discount`, `'=x`, `''+1` and plain text), and no exported cell starts with a formula character.
A file typed by hand is read the same way: `'=x` typed in a spreadsheet cell is imported as `=x`.
"""

from __future__ import annotations

from typing import Any

from crm.exports import FORMULA_PREFIXES, safe_cell


def _quoted_formula(text: str) -> bool:
    """`'` one or more times, then a formula prefix."""
    stripped = text.lstrip("'")
    return stripped != text and stripped.startswith(FORMULA_PREFIXES)


def escape_cell(value: Any) -> Any:
    """The exported form of a cell (see the module docstring); numbers and dates pass through."""
    cell = safe_cell(value)
    if isinstance(cell, str) and cell == value and _quoted_formula(cell):
        return "'" + cell
    return cell


def unescape_cell(text: str) -> str:
    """The imported value of a cell written by `escape_cell` (or typed as text in a spreadsheet)."""
    if _quoted_formula(text):
        return text[1:]
    return text
