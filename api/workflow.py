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
from engine import FieldProblem, InputError

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


class Forbidden(Exception):
    pass


class Conflict(Exception):
    pass


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
        raise Forbidden(
            f"township officer {user.name} is not bound to a township; "
            "add the officer with --township before they decide, read or approve"
        )
    return user.township


def check_township(user: User, household: Mapping[str, Any]) -> None:
    town = bound_township(user)
    if town is not None and township_of(household) != town:
        raise Forbidden(
            f"officer {user.name} works for {town}; household {household.get('household_id')} is in "
            f"{township_of(household) or '(no township)'}"
        )


def check_approval(svc: Service, rec: LedgerRecord, user: User, action: str, day: dt.date) -> None:
    """Everything an approval or rejection must pass before it is recorded."""
    verb = "approves" if action == "approve" else "rejects"
    if user.role != "officer":
        raise Forbidden("only certified officers approve or reject (持证上岗)")
    if not user.certified_on(day):
        raise Forbidden(f"officer {user.name} has no enforcement certificate valid on {day}")
    check_township(user, rec.body.get("household") or {})
    if rec.actor_id is not None and rec.actor_id == user.id:
        raise Forbidden(
            f"four eyes (双人审核): officer {user.name} requested decision {rec.seq}; another officer {verb} it"
        )
    decision = rec.body["decision"]
    # which decision fields block approval and name the approving level: rules/ruleset.yaml
    rule = svc.ruleset(int(rec.body["ruleset_id"])).reports.get("approval") or {}
    needed = decision.get(rule["authority"]) if "authority" in rule else None
    if needed in LEVELS:
        mine = LEVELS.index(user.level) if user.level in LEVELS else -1
        if mine < LEVELS.index(needed):
            amount = decision.get(rule["amount"]) if "amount" in rule else ""
            raise Forbidden(
                f"the amount {amount} is above the {user.level} approval limit; the {needed} level {verb} it"
            )
    if action != "approve":
        return
    if "blocked" in rule and decision.get(rule["blocked"]):
        raise Conflict("kin registration missing (近亲属未备案): this case cannot be approved until the filing is made")
    _check_versions(svc, rec)


def _check_versions(svc: Service, rec: LedgerRecord) -> None:
    """A decision is approved only under the ruleset and registries in force now (else re-decide)."""
    decision = rec.body["decision"]
    day = dt.date.fromisoformat(str(decision["decision_date"]))
    used = int(rec.body["ruleset_id"])
    try:
        now = svc.ruleset_for(day)
    except InputError:
        raise Conflict(
            f"re-decide: no ruleset is in force on {day} any more; decision {rec.seq} used ruleset {used}"
        ) from None
    if now != used:
        raise Conflict(
            f"re-decide: the ruleset in force on {day} is now {svc.ruleset(now).ruleset_version} (id {now}); "
            f"decision {rec.seq} used {svc.ruleset(used).ruleset_version} (id {used})"
        )
    stored = {str(k): int(v) for k, v in (rec.body.get("registry_versions") or {}).items()}
    names = [n for n, spec in svc.ruleset(used).registries.items() if not spec.computed]
    current = {n: int(r["id"]) for n, r in svc.registry_versions().items()}
    for name in names:
        if stored.get(name) != current.get(name):
            raise Conflict(
                f"re-decide: the {name} registry is now version {current.get(name)}; "
                f"decision {rec.seq} used version {stored.get(name)}"
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
        raise InputError([FieldProblem(name, "must be a date YYYY-MM-DD")]) from None


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
        raise InputError([FieldProblem("status", f"use one of {', '.join(STATUSES)}")])
    town = bound_township(user)
    asked = params.get("township")
    if town is not None and asked and asked.strip() != town:
        raise Forbidden(f"officer {user.name} works for {town} and cannot search {asked.strip()}")
    q = Query(
        household_id=params.get("household_id") or None,
        person_id=params.get("person_id") or None,
        township=town if town is not None else (asked.strip() if asked else None),
        status=status,
        since=_day(params.get("from"), "from"),
        until=_day(params.get("to"), "to"),
    )
    return _page(svc, q, page, masked, oldest_first=False)


def pending(svc: Service, user: User, page: int) -> dict[str, Any]:
    """``GET /v1/approvals/pending``: decisions this officer may approve or reject, oldest first."""
    if user.level not in LEVELS:
        raise Forbidden(f"officer {user.name} has no approval level")
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
        problems.append(
            FieldProblem(
                "(body)", f"{bad_rows} of {rows} rows are rejected; fix them or upload with ?accept_partial=true"
            )
        )
    if rows - bad_rows == 0 and not allow_empty:
        problems.append(
            FieldProblem("(body)", "no row would be left in the registry; upload with ?allow_empty=true to empty it")
        )
    if problems:
        raise Refused(problems, dict(report))
