"""Which decision dates the published rule versions cover.

A version applies from its ``effective_from`` until a later published version takes over,
so the published versions together cover every date from the earliest ``effective_from``
on. Withdrawing the version that starts that cover (with no other starting as early)
leaves the dates until the next one without any ruleset: a decision, a registry upload or
a restart on such a date would fail. These helpers say which dates, so that it is refused.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Gap", "nearest_published", "uncovered_after_withdrawal"]


@dataclass(frozen=True)
class Gap:
    """Dates ``first`` to ``last`` (``None``: every later date) without a ruleset in force."""

    first: dt.date
    last: dt.date | None

    def __str__(self) -> str:
        if self.last is None:
            return f"every decision date from {self.first.isoformat()} on without a ruleset in force"
        return f"{self.first.isoformat()}…{self.last.isoformat()} without a ruleset in force"


def _day(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def uncovered_after_withdrawal(rows: Iterable[Mapping[str, Any]], rid: int) -> Gap | None:
    """The dates left without a ruleset if version ``rid`` were withdrawn, or ``None``.

    ``rows`` are the store's rulesets (``id``, ``status``, ``effective_from``).

    >>> rows = [
    ...     {"id": 1, "status": "published", "effective_from": dt.date(1900, 1, 1)},
    ...     {"id": 2, "status": "published", "effective_from": dt.date(2031, 1, 1)},
    ... ]
    >>> print(uncovered_after_withdrawal(rows, 1))
    1900-01-01…2030-12-31 without a ruleset in force
    >>> print(uncovered_after_withdrawal(rows, 2))
    None
    >>> print(uncovered_after_withdrawal(rows[:1], 1))
    every decision date from 1900-01-01 on without a ruleset in force
    """
    published = [r for r in rows if r["status"] == "published"]
    target = next((r for r in published if r["id"] == rid), None)
    if target is None:
        return None
    start = _day(target["effective_from"])
    others = [_day(r["effective_from"]) for r in published if r["id"] != rid]
    if not others:
        return Gap(start, None)
    earliest_other = min(others)
    if earliest_other <= start:
        return None  # another version already covers every date this one did
    return Gap(start, earliest_other - dt.timedelta(days=1))


def nearest_published(rows: Iterable[Mapping[str, Any]], day: dt.date) -> int | None:
    """A version to describe the service with when none is in force on ``day`` (a store
    left with a gap by hand or by an older release): the earliest published version that
    starts after ``day``, else the newest version of all."""
    rows = list(rows)
    later = sorted(
        (r for r in rows if r["status"] == "published" and _day(r["effective_from"]) > day),
        key=lambda r: (_day(r["effective_from"]), r["id"]),
    )
    if later:
        return int(later[0]["id"])
    return int(max(r["id"] for r in rows)) if rows else None
