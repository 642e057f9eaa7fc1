"""The bureau's workflow rules that sit above deciding: township scoping, four eyes, the
approving authority for approvals and rejections alike, re-deciding when versions changed,
and the officers' search and inbox."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from api.masking import mask_id, mask_name
from api.search import STATUSES, Query, township_of
from api.store import LedgerRecord, User
from engine import FieldProblem, InputError, Phrase, Said, has, text

if TYPE_CHECKING:
    from api.service import Service

__all__ = [
    "LEVELS",
    "PER_PAGE",
    "Conflict",
    "Forbidden",
    "Refused",
    "bound_township",
    "check_approval",
    "check_township",
    "pending",
    "search",
]

# approval levels, lowest first: an officer approves decisions whose authority is at or below theirs
LEVELS = ("township", "city")
PER_PAGE = 50
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class Forbidden(Said):
    """403: the caller may not do this (a catalogue message, ``api.*``)."""


class Conflict(Said):
    """409: the record's state does not allow this (a catalogue message, ``api.*``)."""


class NotFound(Said):
    """404: no such record (a catalogue message, ``api.not_found.*``)."""


class Refused(Exception):
    """A whole upload refused (422) with its report, e.g. a registry version with rejected rows."""

    def __init__(self, problems: list[FieldProblem], report: dict[str, Any]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems
        self.report = report


def bound_township(user: User) -> str | None:
    """The township a township-level officer is bound to; None for everyone else."""
    if user.role != "officer" or user.level != "township":
        return None
    if not user.township:
        raise Forbidden("api.town_unbound", user=user.name)
    return user.township


def check_township(user: User, household: Mapping[str, Any]) -> None:
    town = bound_township(user)
    if town is not None and township_of(household) != town:
        where = township_of(household) or Phrase("api.no_township")
        raise Forbidden(
            "api.town_household", user=user.name, town=town, household=household.get("household_id"), where=where
        )


def _level(level: object) -> object:
    """An approval level as the reader's language names it (a level the catalogue lacks, as it is)."""
    key = f"api.level.{level}"
    return Phrase(key) if isinstance(level, str) and has(key) else level


def check_approval(svc: Service, rec: LedgerRecord, user: User, action: str, day: dt.date) -> None:
    """Everything an approval or rejection must pass before it is recorded."""
    verb = Phrase("api.verb.approve" if action == "approve" else "api.verb.reject")
    if user.role != "officer":
        raise Forbidden("api.uncertified")
    if not user.certified_on(day):
        raise Forbidden("api.certificate", user=user.name, day=day)
    check_township(user, rec.body.get("household") or {})
    if rec.actor_id is not None and rec.actor_id == user.id:
        raise Forbidden("api.four_eyes", user=user.name, seq=rec.seq, verb=verb)
    decision = rec.body["decision"]
    # which decision fields block approval and name the approving level: rules/ruleset.yaml
    rule = svc.ruleset(int(rec.body["ruleset_id"])).reports.get("approval") or {}
    needed = decision.get(rule["authority"]) if "authority" in rule else None
    if needed in LEVELS:
        mine = LEVELS.index(user.level) if user.level in LEVELS else -1
        if mine < LEVELS.index(needed):
            amount = decision.get(rule["amount"]) if "amount" in rule else ""
            raise Forbidden(
                "api.approval_limit", amount=amount, level=_level(user.level), needed=_level(needed), verb=verb
            )
    if action != "approve":
        return
    if "blocked" in rule and decision.get(rule["blocked"]):
        raise Conflict("api.kin_missing")
    _check_versions(svc, rec)


def _check_versions(svc: Service, rec: LedgerRecord) -> None:
    """A decision is approved only under the ruleset and registries in force now (else re-decide)."""
    decision = rec.body["decision"]
    day = dt.date.fromisoformat(str(decision["decision_date"]))
    used = int(rec.body["ruleset_id"])
    try:
        now = svc.ruleset_for(day)
    except InputError:
        raise Conflict("api.redecide.no_ruleset", day=day, seq=rec.seq, used=used) from None
    if now != used:
        raise Conflict(
            "api.redecide.ruleset",
            day=day,
            now_version=svc.ruleset(now).ruleset_version,
            now=now,
            seq=rec.seq,
            used_version=svc.ruleset(used).ruleset_version,
            used=used,
        )
    stored = {str(k): int(v) for k, v in (rec.body.get("registry_versions") or {}).items()}
    names = [n for n, spec in svc.ruleset(used).registries.items() if not spec.computed]
    current = {n: int(r["id"]) for n, r in svc.registry_versions().items()}
    for name in names:
        if stored.get(name) != current.get(name):
            raise Conflict(
                "api.redecide.registry", name=name, now=current.get(name), seq=rec.seq, used=stored.get(name)
            )


# ------------------------------------------------------------ search and inbox


def _day(value: str | None, name: str) -> dt.date | None:
    if not value:
        return None
    try:
        if not _ISO_DAY.fullmatch(value):
            raise ValueError(value)
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InputError([FieldProblem(name, text("input.date", "en"))]) from None


def _item(row: Mapping[str, Any], rec: LedgerRecord | None, masked: bool) -> dict[str, Any]:
    household: Mapping[str, Any] = (rec.body.get("household") or {}) if rec else {}
    members = [m for m in household.get("members") or [] if isinstance(m, Mapping)]
    head = next((m for m in members if m.get("relation") == "head"), members[0] if members else {})
    name, pid = str(head.get("name") or ""), str(head.get("person_id") or "")
    return {
        "decision_id": row["seq"],
        "household_id": row["household_id"],
        "township": row["township"],
        "decision_date": row["decision_date"].isoformat() if row["decision_date"] else None,
        "status": row["status"],
        "authority": row["authority"],
        "recorded_at": row["recorded_at"],
        "requested_by": row["requested_by"],
        "head_name": mask_name(name) if masked else name,
        "head_id": mask_id(pid) if masked else pid,
        "members": len(members),
    }


def _page(svc: Service, q: Query, page: int, masked: bool, oldest_first: bool) -> dict[str, Any]:
    total, rows = svc.index.search(q, page, PER_PAGE, oldest_first)
    records = svc.store.records_by_seq([int(r["seq"]) for r in rows])  # one query for the page
    return {
        "page": page,
        "per_page": PER_PAGE,
        "total": total,
        "counts": svc.index.counts(q),
        "items": [_item(r, records.get(int(r["seq"])), masked) for r in rows],
    }


def search(svc: Service, user: User, params: Mapping[str, str | None], page: int, masked: bool) -> dict[str, Any]:
    """``GET /v1/decisions``: a township officer searches their own township only."""
    status = params.get("status") or None
    if status is not None and status not in STATUSES:
        raise InputError([FieldProblem("status", text("input.one_of", "en", values=", ".join(STATUSES)))])
    town = bound_township(user)
    asked = params.get("township")
    if town is not None and asked and asked.strip() != town:
        raise Forbidden("api.town_search", user=user.name, town=town, asked=asked.strip())
    q = Query(
        household_id=params.get("household_id") or None,
        person_id=params.get("person_id") or None,
        name=params.get("name") or None,
        township=town if town is not None else (asked.strip() if asked else None),
        status=status,
        since=_day(params.get("from"), "from"),
        until=_day(params.get("to"), "to"),
    )
    return _page(svc, q, page, masked, oldest_first=False)


def pending(svc: Service, user: User, page: int) -> dict[str, Any]:
    """``GET /v1/approvals/pending``: decisions this officer may approve or reject, oldest first."""
    if user.level not in LEVELS:
        raise Forbidden("api.no_level", user=user.name)
    q = Query(
        township=bound_township(user),
        status="pending",
        authority_at_most=LEVELS[: LEVELS.index(user.level) + 1],
        not_requested_by=user.id,
    )
    return _page(svc, q, page, masked=False, oldest_first=True)


def refuse_partial(report: Mapping[str, Any], accept_partial: bool, allow_empty: bool) -> None:
    """Refuse a registry version (422 with its row report) that lost rows or has none left,
    unless the upload accepts that explicitly: a registry that silently lost rows unblocks
    cases it should block."""
    rows, bad_rows = int(report["rows"]), int(report["rejected_rows"])
    problems = []
    if bad_rows and not accept_partial:
        problems.append(FieldProblem("(body)", text("input.rows_rejected", "en", bad=bad_rows, rows=rows)))
    if rows - bad_rows == 0 and not allow_empty:
        problems.append(FieldProblem("(body)", text("input.rows_none", "en")))
    if problems:
        raise Refused(problems, dict(report))
