"""Byte-level fast paths of the column validator, in NumPy on a text column's Arrow buffers.

Trimming every cell and checking every resident ID with Polars string expressions cost
most of a caseload's validation. Here a column's UTF-8 bytes are read in place: only the
cells whose first or last byte may be a blank are trimmed (usually none), and resident
IDs are checked on an ``n × 18`` byte matrix (shape, check digit, birth date) with the
same rules as ``engine.types.check_resident_id``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa  # type: ignore[import-untyped]

from engine.types import BLANKS, ID_WEIGHTS

__all__ = ["canonical_text", "resident_id_ok"]


def _table(codes: set[int]) -> np.ndarray:
    out = np.zeros(256, dtype=bool)
    out[list(codes)] = True
    return out


_ENCODED = [c.encode() for c in BLANKS]
# a blank's first byte may open a cell, its last byte may close one (a superset: those cells are trimmed for real)
_OPENS = _table({b[0] for b in _ENCODED})
_CLOSES = _table({b[-1] for b in _ENCODED})
_WEIGHTS = [np.uint16(w) for w in ID_WEIGHTS]
_MONTH_DAYS = np.array([0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int32)


def _buffers(s: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, bytes) of a text column: cell ``i`` is ``bytes[offsets[i]:offsets[i + 1]]``."""
    arr: Any = s.to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.type != pa.large_string():
        arr = arr.cast(pa.large_string())
    _, offsets, data = arr.buffers()
    offsets_np = np.frombuffer(offsets, dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
    data_np = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, dtype=np.uint8)
    return offsets_np, data_np


def canonical_text(s: pl.Series) -> pl.Series:
    """A text column trimmed of ``BLANKS``, blank = null; cells that cannot change are kept
    as they are (no copy when none can)."""
    if s.len() == 0:
        return s
    offsets, data = _buffers(s)
    empty = offsets[1:] == offsets[:-1]
    odd_cells = empty
    if len(data):
        # an empty cell reads a neighbour's byte (or, clipped, the last one): it is odd anyway
        odd_cells = odd_cells | _OPENS[np.take(data, offsets[:-1], mode="clip")]
        odd_cells |= _CLOSES[np.take(data, offsets[1:] - 1, mode="clip")]
    odd = np.flatnonzero(odd_cells & ~s.is_null().to_numpy())
    if len(odd) == 0:
        return s
    at = pl.Series(odd, dtype=pl.get_index_type())
    fixed = pl.select(pl.lit(s.gather(at)).str.strip_chars(BLANKS).alias("t")).to_series()
    fixed = pl.select(pl.when(pl.lit(fixed) != "").then(pl.lit(fixed)).alias("t")).to_series()
    return s.scatter(at, fixed)


def resident_id_ok(s: pl.Series) -> np.ndarray:
    """Whether each cell of a canonical text column is a valid resident ID (17 digits, then a
    digit or X — ``x`` also, for text not yet upper-cased — the check digit right and the
    birth date a calendar date); false for null."""
    n = s.len()
    ok = np.zeros(n, dtype=bool)
    if n == 0:
        return ok
    offsets, data = _buffers(s)
    rows = np.flatnonzero((np.diff(offsets) == 18) & ~s.is_null().to_numpy())
    if len(rows) == 0:
        return ok
    if len(rows) == n and offsets[-1] - offsets[0] == 18 * n:
        matrix = data[offsets[0] : offsets[-1]].reshape(n, 18)  # the usual case: no copy
    else:
        matrix = data[offsets[rows][:, None] + np.arange(18)]
    d = matrix - np.uint8(48)  # digits as 0-9; anything else wraps above 9
    # column by column: NumPy's reductions along a short row axis are slow
    digits = np.ones(len(rows), dtype=bool)
    total = np.zeros(len(rows), dtype=np.uint16)
    for i, weight in enumerate(_WEIGHTS):
        column = d[:, i]
        digits &= column <= 9
        total += column.astype(np.uint16) * np.uint16(weight)
    last = d[:, 17]
    x = (last == ord("X") - 48) | (last == ord("x") - 48)
    good = digits & ((last <= 9) | x)
    good &= (total + np.where(x, 10, last)) % 11 == 1
    c = [d[:, i].astype(np.int16) for i in range(6, 14)]  # YYYYMMDD
    year = ((c[0] * 10 + c[1]) * 10 + c[2]) * 10 + c[3]
    month, day = c[4] * 10 + c[5], c[6] * 10 + c[7]
    good &= (month >= 1) & (month <= 12) & (year >= 1) & (day >= 1)
    good &= day <= _MONTH_DAYS[np.minimum(month, 13) % 13]  # February: 29 here, leap years below
    feb29 = np.flatnonzero(good & (month == 2) & (day == 29))
    y = year[feb29]
    good[feb29] = (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))
    ok[rows] = good
    return ok
