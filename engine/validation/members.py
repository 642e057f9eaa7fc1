"""Members beside their households for the column validator: each member's household row
and index among its members, and the checks that span fields (``cross_flags``), done so
that a caseload's members are neither joined nor sorted when they come in order.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from engine.validation.reasons import MEMBER_INDEX, MEMBER_OF, cross_flags
from engine.validation.rules import FieldRule, cross_rules

__all__ = ["cross_flagged", "link_members"]


def link_members(h: pl.DataFrame, m: pl.DataFrame, link: str, *, unique: bool) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(members of a household with its row, ``~id`` and index among its members, sorted by
    household; members without one). ``unique``: no household key is repeated."""
    keys = h.get_column(link)
    ours = m.get_column("~link")
    heads = ours.ne_missing(ours.shift(1))
    starts = heads.arg_true()
    if (
        unique
        and keys.null_count() == 0
        and ours.null_count() == 0
        and starts.len() == keys.len()
        and ours.gather(starts).equals(keys, check_names=False)
    ):
        # the members come in their households' order, each household with members (as most
        # exports and every JSON Lines conversion): the links are the runs, no join or sort
        # 32-bit (the row types): fewer pages to fault in for every buffer
        of = np.cumsum(heads.to_numpy(), dtype=np.uint32)
        of -= np.uint32(1)
        index = np.arange(m.height, dtype=np.uint32)
        index -= starts.to_numpy().astype(np.uint32)[of]
        member_of = pl.Series(MEMBER_OF, of, dtype=pl.UInt32)
        linked = m.with_columns(
            member_of,
            h.get_column("~id").gather(member_of).alias("~id"),
            pl.Series(MEMBER_INDEX, index, dtype=pl.UInt32),
        )
        return linked, linked.clear()
    pairs = h.select(pl.col(link).alias("~link"), pl.col("~i").alias(MEMBER_OF), pl.col("~id"))
    m = m.join(pairs, on="~link", how="left")
    # sorted by household, a member's index is its row less the row its household starts at
    row = pl.int_range(pl.len(), dtype=pl.UInt32)
    start = pl.when(pl.col(MEMBER_OF) != pl.col(MEMBER_OF).shift(1).fill_null(-1)).then(row).forward_fill()
    linked = (
        m.filter(pl.col(MEMBER_OF).is_not_null())
        .sort([MEMBER_OF, "~j"])
        .with_columns((row - start).alias(MEMBER_INDEX))
    )
    return linked, m.filter(pl.col(MEMBER_OF).is_null())


def cross_flagged(m: pl.DataFrame, h: pl.DataFrame, rules: list[FieldRule]) -> pl.DataFrame:
    """``m`` with the flags of ``cross_flags``, computed on the few columns they read (its
    joins would otherwise copy every column of ``m``), a ``unique`` value's only on the
    members whose value may repeat in their household (found by hashes, re-checked there)."""
    crossing = cross_rules(rules)
    if not crossing:
        return m
    unique = [r for r in crossing if r.unique and not (r.date_lo or r.date_hi)]
    dated = [r for r in crossing if r not in unique]
    read = {r.path for r in dated} | {ref for r in dated for ref in (r.date_lo, r.date_hi) if ref is not None}
    narrow = ["~j", MEMBER_OF, MEMBER_INDEX, *(c for c in m.columns if c in read)]
    flagged = cross_flags(m.select(narrow), h, dated)
    added = [flagged.get_column(c) for c in flagged.columns if c not in narrow]
    if not flagged.get_column("~j").equals(m.get_column("~j")):
        return cross_flags(m, h, rules)  # a join did not keep the order: the plain way
    for rule in unique:
        maybe = _maybe_repeated(m, rule.path)
        first = pl.Series(f"~first:{rule.path}", [None] * m.height, dtype=m.schema[MEMBER_INDEX])
        if maybe.len():
            few = m.select("~j", MEMBER_OF, MEMBER_INDEX, rule.path).gather(maybe).with_columns(maybe.alias("~p"))
            few = cross_flags(few, h, [rule]).sort("~p")
            first = first.scatter(maybe, few.get_column(first.name))
        added.append(first)
    return m.with_columns(added)


def _maybe_repeated(m: pl.DataFrame, column: str) -> pl.Series:
    """Rows (ascending) whose value may occur twice in their household: equal hashes."""
    values = m.get_column(column)
    of = m.get_column(MEMBER_OF).to_numpy().astype(np.uint64)
    key = values.hash(0x5EED).to_numpy() ^ (of * np.uint64(0x9E3779B97F4A7C15))
    key[values.is_null().to_numpy()] = np.arange(values.null_count(), dtype=np.uint64) ^ np.uint64(0xA5A5 << 40)
    size = (int(m.get_column(MEMBER_INDEX).to_numpy().max()) if m.height else 0) + 1
    hit = np.zeros(m.height, dtype=bool)
    if size <= 16:  # members sit together by household: compare each with the few before it
        for gap in range(1, size):
            same = (key[gap:] == key[:-gap]) & (of[gap:] == of[:-gap])
            hit[gap:] |= same
            hit[:-gap] |= same
    else:
        ordered = np.sort(key)
        hit = np.isin(key, ordered[1:][ordered[1:] == ordered[:-1]])
    return pl.Series(np.flatnonzero(hit), dtype=pl.get_index_type())
