"""Values of the columnar kernel: NumPy arrays with a validity mask and a decimal scale.

Numbers are int64 scaled integers (money 2 decimals at least, ``0.25`` is 25 at scale 2);
dates are int32 days since 1970-01-01; text is int32 codes into a small tuple of
categories (``-1`` for none), so statuses and enum values are compared and selected as
integers and turned into text once per distinct value. A raw text input column (IDs)
stays a Polars Series: it is only ever looked up in a registry or compared with a literal.
Nulls follow Polars' rules (propagated, Kleene ``and``/``or``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import polars as pl

from engine.types import Type

_EPOCH = dt.date(1970, 1, 1)

__all__ = [
    "NUMERIC",
    "V",
    "both_valid",
    "const",
    "dec_scale",
    "epoch_days",
    "full",
    "recode",
    "rescale",
    "scaled",
    "select",
    "spread",
    "take",
    "text_codes",
]

NUMERIC = ("int", "decimal", "money")
_TEXT = ("enum", "str")
Array = np.ndarray[Any, Any]


@dataclass
class V:
    """One value over the rows of a scope (or a 0-d constant that broadcasts)."""

    data: Array
    type: Type
    scale: int = 0
    valid: Array | None = None  # None: no nulls
    cats: tuple[str, ...] = ()  # text: what the codes mean
    raw: pl.Series | None = None  # text kept as Polars strings (IDs)

    @property
    def is_text(self) -> bool:
        return self.type.kind in _TEXT or bool(self.cats) or self.raw is not None

    def filled(self) -> Array:
        """A boolean value with nulls read as false."""
        return self.data if self.valid is None else self.data & self.valid


def scaled(value: Decimal | int, scale: int) -> int:
    q = Decimal(value).scaleb(scale)
    if q != q.to_integral_value():
        raise ValueError(f"{value} needs more than {scale} decimals")
    return int(q)


def dec_scale(value: Decimal | int) -> int:
    if isinstance(value, int):
        return 0
    exp = value.normalize().as_tuple().exponent
    return max(0, -int(exp))


def rescale(v: V, scale: int) -> Array:
    return v.data if scale == v.scale else v.data * np.int64(10 ** (scale - v.scale))


def both_valid(*vs: V) -> Array | None:
    out: Array | None = None
    for v in vs:
        if v.valid is not None:
            out = v.valid if out is None else out & v.valid
    return out


def full(a: Array, n: int) -> Array:
    return a if a.ndim else np.broadcast_to(a, (n,))


def text_codes(v: V) -> tuple[Array, tuple[str, ...]]:
    """Codes and categories of a text value (a raw column is encoded here, rarely needed)."""
    if v.raw is None:
        return v.data, v.cats
    cats = tuple(str(x) for x in v.raw.drop_nulls().unique().sort().to_list())
    codes = v.raw.replace_strict(list(cats), list(range(len(cats))), default=-1, return_dtype=pl.Int32)
    return codes.to_numpy(), cats


def recode(v: V, cats: tuple[str, ...]) -> Array:
    """The codes of a text value in another category list (a superset of its own)."""
    codes, own = text_codes(v)
    if own == cats:
        return codes
    index = {c: i for i, c in enumerate(cats)}
    lut = np.array([index[c] for c in own] + [-1], dtype=np.int32)
    return lut[codes]


def select(idx: V, branches: list[V], n: int, t: Type) -> V:
    """``branches[idx]`` row by row; null where ``idx`` is null. Constant branches are one
    lookup by index; only the array branches are copied where they are chosen."""
    k = len(branches)
    numeric = [b for b in branches if b.type.kind in NUMERIC]
    text = [b for b in branches if b.is_text]
    cats: tuple[str, ...] = ()
    scale = 0
    if text:
        cats = tuple(dict.fromkeys(c for b in text for c in text_codes(b)[1]))
        datas = [recode(b, cats) if b.is_text else np.int32(-1) for b in branches]
        default: Any = np.int32(-1)
    elif numeric:
        scale = max(b.scale for b in numeric)
        datas = [rescale(b, scale) if b.type.kind in NUMERIC else b.data for b in branches]
        default = np.int64(0)
    else:
        datas = [b.data for b in branches]
        default = branches[0].data.dtype.type(0) if branches else np.int64(0)
    arrays = [np.asarray(d) for d in datas]
    at = full(idx.data, n) if idx.valid is None else np.where(idx.valid, idx.data, k)
    lut = np.array([d if d.ndim == 0 else default for d in arrays] + [default])
    data = lut[at]
    for i, d in enumerate(arrays):
        if d.ndim:
            np.copyto(data, d, where=at == i, casting="unsafe")
    sure = [b.valid is None or (b.valid.ndim == 0 and bool(b.valid)) for b in branches]
    if idx.valid is None and all(sure):
        return V(data, t, scale, None, cats)
    valid = np.array([*(b.valid is None or (b.valid.ndim == 0 and bool(b.valid)) for b in branches), False])[at]
    for i, b in enumerate(branches):
        if b.valid is not None and b.valid.ndim:
            np.copyto(valid, b.valid, where=at == i)
    return V(data, t, scale, None if valid.all() else valid, cats)


def const(value: Any, t: Type) -> V:
    """A literal as a 0-d value."""
    if value is None:
        return V(np.int64(0) * np.ones((), np.int64), t, 0, np.zeros((), dtype=bool))
    if t.kind in NUMERIC:
        s = 2 if t.kind == "money" else (dec_scale(value) if t.kind == "decimal" else 0)
        s = max(s, dec_scale(value)) if not isinstance(value, bool) else s
        return V(np.asarray(scaled(value, s), dtype=np.int64), t, s)
    if t.kind == "bool" or isinstance(value, bool):
        return V(np.asarray(bool(value)), t)
    if t.kind == "date":
        return V(np.asarray((value - _EPOCH).days, dtype=np.int32), t)
    return V(np.asarray(0, dtype=np.int32), t, 0, None, (str(value),))


def epoch_days(d: Any) -> int:
    return int((d - _EPOCH).days)


def take(v: V, rows: Array) -> V:
    """The value at some rows (ascending)."""
    data = v.data[rows] if v.data.ndim else v.data
    valid = v.valid[rows] if v.valid is not None and v.valid.ndim else v.valid
    raw = v.raw.gather(pl.Series(rows)) if v.raw is not None else None
    return V(data, v.type, v.scale, valid, v.cats, raw)


def spread(v: V, rows: Array, n: int, outside: bool | None) -> V:
    """A value at some rows (ascending) over all ``n``: ``outside`` elsewhere (None: null)."""
    assert v.raw is None, "rules and tables make no raw text"
    data = np.zeros(n, dtype=v.data.dtype)
    if outside:
        data[:] = outside
    data[rows] = v.data
    valid: Array | None = None
    if outside is None:
        valid = np.zeros(n, dtype=bool)
        valid[rows] = True if v.valid is None else v.valid
    elif v.valid is not None:
        valid = np.ones(n, dtype=bool)
        valid[rows] = v.valid
    return V(data, v.type, v.scale, valid, v.cats)
