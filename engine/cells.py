"""Spreadsheet cells that cannot run: every CSV or XLSX the engine or the service writes
passes its text cells through here (OWASP's CSV-injection guidance).

A text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read by
spreadsheet programs as a formula; it is written with a leading ``'`` so it stays text. A
cell that is a plain number (``-12.50``) is left alone: it cannot be a formula, and money
must stay a number. Polars is imported only by ``safe_frame``, so deciding one household
never loads it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import polars as pl

__all__ = ["FORMULA_START", "safe_cell", "safe_frame"]

FORMULA_START = "=+-@\t\r"
_FORMULA_RE = r"^[=+\-@\t\r]"
_NUMBER_RE = r"^[+-]?[0-9]+(\.[0-9]+)?$"
_NUMBER = re.compile(_NUMBER_RE)

Frame = TypeVar("Frame", "pl.DataFrame", "pl.LazyFrame")


def safe_cell(value: Any) -> Any:
    """``value`` as a cell that cannot run: text starting like a formula gets a leading ``'``.

    >>> safe_cell('=HYPERLINK("http://x","y")'), safe_cell("-12.50"), safe_cell(-3), safe_cell("@x")
    ('\\'=HYPERLINK("http://x","y")', '-12.50', -3, "'@x")
    """
    if isinstance(value, str) and value and value[0] in FORMULA_START and not _NUMBER.match(value):
        return "'" + value
    return value


def safe_frame(frame: Frame) -> Frame:
    """``frame`` with every text column passed through the same rule as ``safe_cell``."""
    import polars as pl

    texts = [name for name, dtype in frame.collect_schema().items() if dtype == pl.String]
    if not texts:
        return frame
    exprs = []
    for name in texts:
        col = pl.col(name)
        risky = col.str.contains(_FORMULA_RE) & ~col.str.contains(_NUMBER_RE)
        exprs.append(pl.when(risky).then(pl.lit("'") + col).otherwise(col).alias(name))
    return frame.with_columns(exprs)
