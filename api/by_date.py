"""Which published ruleset decides a caseload: the one in force on its rows' decision dates, as
``POST /v1/decisions`` picks it for one household, never simply today's.

A row without a decision date is decided today (RECORDS.md's default); a row whose date is
not a date is rejected by validation whichever ruleset reads it. When the rows' dates fall
under more than one published version, screenings and impact cut the caseload by version
(``api.by_version``); a monitoring job is refused naming them, instead of deciding some rows
under rules that were not in force on their dates.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from engine import FieldProblem, InputError, text

__all__ = ["caseload_dates", "day_of", "ruleset_for_dates", "rulesets_in_force"]

_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_FIELD = "decision_date"  # RECORDS.md: the date a household is decided on


def day_of(value: Any) -> dt.date | None:
    text = str(value).strip() if value is not None else ""
    if not _DAY.fullmatch(text):
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def caseload_dates(source: Path) -> set[dt.date | None]:
    """The distinct decision dates of a caseload (None: a row without one, or not a date)."""
    from engine import caseload_values

    return {day_of(v) for v in caseload_values(source, _FIELD)}


def rulesets_in_force(
    dates: Iterable[dt.date | None], ruleset_for: Callable[[dt.date], int], today: dt.date
) -> dict[int, list[dt.date]]:
    """Ruleset id -> the dates it is in force on, of those given (None: today); dates on
    which none is in force are left out (those rows are rejected naming decision_date)."""
    used: dict[int, list[dt.date]] = {}
    for day in dates:
        on = day or today
        try:
            rid = ruleset_for(on)
        except InputError:
            continue
        used.setdefault(rid, []).append(on)
    return used


def ruleset_for_dates(
    dates: Iterable[dt.date | None],
    ruleset_for: Callable[[dt.date], int],
    version_of: Callable[[int], str],
    today: dt.date,
) -> int:
    """The one ruleset in force on every date; refused naming the versions when there are several."""
    used = rulesets_in_force(dates, ruleset_for, today)
    if not used:
        return ruleset_for(today)
    if len(used) == 1:
        return next(iter(used))
    spans = "; ".join(f"{version_of(rid)} (id {rid}) for {min(days)}…{max(days)}" for rid, days in sorted(used.items()))
    raise InputError([FieldProblem(_FIELD, text("input.rulesets_split", "en", spans=spans))])
