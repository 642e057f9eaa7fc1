"""The vectorized backend's run: one caseload chunk, split into slices for the kernel.

A caseload chunk is two frames: households ``H`` (one row each) and members ``M`` (sorted
by ``_h``, the household's row in ``H``). The IR compiles to a NumPy kernel
(``engine.vector.kernel``); money is int64 fen, and every number carries a decimal scale
(money at least 2, whole numbers 0, ``0.25`` is 25 at scale 2; a parameter such as
1.5 × 791.35 keeps its 3 decimals), so all arithmetic and comparisons are exact integer
operations. Households are split into contiguous slices (members follow, being sorted) of
at most ``max_slice``, at least one per thread; NumPy releases the GIL, so the threads
taking slices run on every core.
"""

from __future__ import annotations

import os
import weakref
from typing import Any

import numpy as np
import polars as pl

from engine.parameters import ParameterResolver
from engine.ruleset import Ruleset
from engine.vector.kernel import Chunk, KernelPlan
from engine.vector.kernel_values import NUMERIC, V, full, recode, text_codes

__all__ = ["ColumnRun", "round_half_up"]

_PLANS: weakref.WeakKeyDictionary[ParameterResolver, KernelPlan] = weakref.WeakKeyDictionary()
_MIN_SLICE = 25_000  # households; below this a thread costs more than it saves
_MAX_SLICE = 1 << 17  # households; a slice's arrays stay in the CPU caches through the passes


def round_half_up(data: np.ndarray[Any, Any], scale: int, to: int) -> np.ndarray[Any, Any]:
    """Round a scaled integer to fewer decimals, halves away from zero (Decimal ROUND_HALF_UP)."""
    if scale <= to:
        out: np.ndarray[Any, Any] = data * np.int64(10 ** (to - scale))
        return out
    div = np.int64(10 ** (scale - to))
    half = div // 2
    return np.where(data >= 0, (data + half) // div, -((-data + half) // div))


def kernel_plan(ruleset: Ruleset, resolver: ParameterResolver) -> KernelPlan:
    """The ruleset's compiled kernel, made once per parameter resolver (one per Evaluator)."""
    plan = _PLANS.get(resolver)
    if plan is None or plan.rs is not ruleset:
        plan = _PLANS[resolver] = KernelPlan(ruleset, resolver)
    return plan


class ColumnRun:
    """One evaluation of a ruleset over one chunk of households."""

    def __init__(
        self,
        ruleset: Ruleset,
        resolver: ParameterResolver,
        households: pl.DataFrame,
        members: pl.DataFrame,
        registries: dict[str, frozenset[str]],
        *,
        threads: int | None = None,
        min_slice: int = _MIN_SLICE,
        max_slice: int = _MAX_SLICE,
    ) -> None:
        self.rs = ruleset
        self.plan = kernel_plan(ruleset, resolver)
        self.households = households
        self.members = members
        self.registries = registries
        self.threads = threads
        self.min_slice = max(1, min_slice)
        self.max_slice = max(self.min_slice, max_slice)
        self.scales: dict[tuple[str, str], int] = {}
        self._extra: dict[str, pl.Series] = {}
        self._chunks: list[Chunk] | None = None
        self._keys: dict[int, pl.Series] = {}

    def slices(self, threads: int | None = None) -> list[tuple[int, int, int, int]]:
        """(household start, end, member start, end) of each slice, on household boundaries:
        at least one per thread, none larger than ``max_slice``."""
        nh = self.households.height
        want = threads or self.threads or os.cpu_count() or 1
        k = max(1, min(want, nh // self.min_slice), -(-nh // self.max_slice))
        bounds = [nh * i // k for i in range(k + 1)]
        hm = self.members.get_column("_h").to_numpy()
        mb = np.searchsorted(hm, bounds).tolist()
        return [(bounds[i], bounds[i + 1], mb[i], mb[i + 1]) for i in range(k)]

    def chunk(self, h0: int, h1: int, m0: int, m1: int) -> Chunk:
        hm = self.members.get_column("_h").slice(m0, m1 - m0).to_numpy().astype(np.intp) - h0
        return Chunk(
            self.plan,
            self.households.slice(h0, h1 - h0),
            self.members.slice(m0, m1 - m0),
            hm,
            self.registries,
            self._keys,
        )

    def workers(self, threads: int | None = None) -> int:
        return threads or self.threads or os.cpu_count() or 1

    def chunks(self, threads: int | None = None) -> list[Chunk]:
        if self._chunks is None:
            self._chunks = [self.chunk(*s) for s in self.slices(threads)]
        return self._chunks

    # ------------------------------------------------------------ reading values

    def ensure(self, name: str, scope: str = "household") -> str:
        """Make a household value a column of ``hh``: money in fen, other numbers as scaled
        integers (see ``scales``). The slices are evaluated again for it (only what the
        value needs): a decision keeps no slice's values."""
        if name in self._extra:
            return name
        parts = [widen(c.value(name, "household"), c.nh) for c in self.chunks()]
        self._extra[name] = series(name, parts, self.scales)
        return name

    @property
    def hh(self) -> pl.DataFrame:
        return self.households.with_columns(list(self._extra.values()))


def widen(v: V, n: int) -> V:
    """A value with one row per household (a constant broadcast)."""
    valid = None if v.valid is None else full(v.valid, n)
    return V(full(v.data, n), v.type, v.scale, valid, v.cats, v.raw)


def series(name: str, parts: list[V], scales: dict[tuple[str, str], int] | None = None) -> pl.Series:
    """Per-slice values of one name as one Polars column."""
    first = parts[0]
    valid = None
    if any(p.valid is not None for p in parts):
        valid = np.concatenate(
            [np.ones(len(p.data), bool) if p.valid is None else full(p.valid, len(p.data)) for p in parts]
        )
    if first.is_text:
        cats = tuple(dict.fromkeys(c for p in parts for c in text_codes(p)[1]))
        codes = np.concatenate([recode(p, cats) for p in parts])
        codes = np.where((codes < 0) if valid is None else (codes < 0) | ~valid, len(cats), codes)
        return pl.Series(name, [*cats, None], dtype=pl.Utf8).gather(pl.Series(codes))
    if first.type.kind in NUMERIC:
        # money reads as fen, as every report expects (a 3-decimal line rounds half up here only)
        scale = 2 if first.type.kind == "money" else max(p.scale for p in parts)
        if scales is not None:
            scales[("household", name)] = scale
        data = [round_half_up(full(p.data, len(p.data)), p.scale, scale) for p in parts]
        s = pl.Series(name, np.concatenate(data), dtype=pl.Int64)
    elif first.type.kind == "date":
        s = pl.Series(name, np.concatenate([p.data for p in parts]).astype(np.int32)).cast(pl.Date)
    else:
        s = pl.Series(name, np.concatenate([p.data for p in parts]))
    if valid is not None and not valid.all():
        s = s.set(pl.Series(~valid), None)
    return s.alias(name)
