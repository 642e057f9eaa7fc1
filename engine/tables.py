"""Decision tables: interval notation and the unique hit policy's gap/overlap check."""

from __future__ import annotations

import re
from decimal import Decimal

from engine.errors import ProblemKind
from engine.plan import Interval, TableRow

__all__ = ["check_unique", "parse_interval"]

_INTERVAL = re.compile(r"^\s*([\[(])\s*(-?inf|-?[0-9]+(?:\.[0-9]+)?)\s*,\s*(-?inf|-?[0-9]+(?:\.[0-9]+)?)\s*([\])])\s*$")


def parse_interval(text: str) -> Interval | None:
    """Parse ``[a, b]``, ``(a, b]``, ``[a, inf)``; None when ``text`` is not an interval.

    >>> str(parse_interval("(20000, 50000]"))
    '(20000, 50000]'
    """
    m = _INTERVAL.match(text)
    if not m:
        return None
    lo_s, hi_s = m.group(2), m.group(3)
    lo = None if lo_s.endswith("inf") else Decimal(lo_s)
    hi = None if hi_s.endswith("inf") else Decimal(hi_s)
    return Interval(lo, m.group(1) == "[" and lo is not None, hi, m.group(4) == "]" and hi is not None)


def _int_closed(iv: Interval) -> tuple[Decimal | None, Decimal | None]:
    """Closed integer bounds of an interval over whole numbers."""
    lo = iv.lo
    if lo is not None:
        lo = lo.to_integral_value(rounding="ROUND_CEILING")
        if not iv.lo_closed and lo == iv.lo:
            lo += 1
    hi = iv.hi
    if hi is not None:
        hi = hi.to_integral_value(rounding="ROUND_FLOOR")
        if not iv.hi_closed and hi == iv.hi:
            hi -= 1
    return lo, hi


def check_unique(rows: list[TableRow], domain: Interval, integer: bool) -> list[tuple[TableRow, ProblemKind, str]]:
    """Rows that overlap or leave a gap: the row, which of the two, and the message."""
    problems: list[tuple[TableRow, ProblemKind, str]] = []
    gap, overlap = ProblemKind.TABLE_GAP, ProblemKind.TABLE_OVERLAP
    ivs = [(r, r.interval) for r in rows if r.interval is not None]
    if integer:
        closed = [(r, *_int_closed(iv)) for r, iv in ivs]
        closed.sort(key=lambda t: Decimal("-Infinity") if t[1] is None else t[1])
        d_lo, d_hi = _int_closed(domain)
        expect = d_lo
        for r, lo, hi in closed:
            if expect is not None and (lo is None or lo < expect):
                problems.append(
                    (r, overlap, f"row `{r.id}` overlaps the row before it (starts at {lo}, expected {expect})")
                )
            elif lo != expect:
                problems.append(
                    (r, gap, f"gap before row `{r.id}`: values {expect}..{None if lo is None else lo - 1} match no row")
                )
            expect = None if hi is None else hi + 1
        if (closed and (d_hi is None) != (expect is None)) or (
            d_hi is not None and expect is not None and expect != d_hi + 1
        ):
            problems.append(
                (
                    closed[-1][0],
                    gap,
                    f"gap after row `{closed[-1][0].id}`: the domain {domain} is not covered to its end",
                )
            )
        return problems
    ivs.sort(key=lambda t: Decimal("-Infinity") if t[1].lo is None else t[1].lo)
    prev_hi: Decimal | None = domain.lo
    prev_closed = not domain.lo_closed  # the point before the domain is "taken"
    first = True
    for r, iv in ivs:
        if first and domain.lo is None:
            if iv.lo is not None:
                problems.append((r, gap, f"gap before row `{r.id}`: values below {iv.lo} match no row"))
        elif prev_hi is None or (iv.lo is not None and iv.lo < prev_hi) or (iv.lo is None):
            problems.append((r, overlap, f"row `{r.id}` {iv} overlaps the row before it"))
        elif iv.lo > prev_hi:
            problems.append((r, gap, f"gap before row `{r.id}`: values in ({prev_hi}, {iv.lo}) match no row"))
        elif iv.lo_closed == prev_closed:
            what = "overlaps the row before it at" if iv.lo_closed else "leaves a gap at"
            problems.append((r, overlap if iv.lo_closed else gap, f"row `{r.id}` {iv} {what} {iv.lo}"))
        prev_hi, prev_closed, first = iv.hi, iv.hi_closed, False
    if ivs:
        last = ivs[-1][0]
        if domain.hi is None and prev_hi is not None:
            problems.append((last, gap, f"gap after row `{last.id}`: values above {prev_hi} match no row"))
        elif domain.hi is not None and (prev_hi != domain.hi or prev_closed != domain.hi_closed):
            problems.append((last, gap, f"row `{last.id}` does not end at the domain's end {domain}"))
    return problems
