"""Screen 3, the decision page: each program's outcome and amount, the approving authority and
the other decision fields, the explanation rule by rule (outcome, values compared, legal
basis), parameter and registry versions, the history from the ledger, approve / reject where
the service would accept it, and replay.

Buttons are shown only when the service's own checks (api/workflow.py ``check_approval``)
pass for the caller now; the POST runs the same checks again, so a forged request is refused
whatever the page showed. Field labels and which fields are outcomes, amounts, the authority
and the kin-registration block come from the ruleset (rules/ruleset.yaml ``reports``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from api.console.pages import PREFIX, Ctx, Page, checked, page, redirect, register, render
from api.service import Service
from api.store import LedgerRecord
from api.workflow import Conflict, Forbidden, check_approval
from engine import FieldProblem, InputError, Ruleset

router = APIRouter()
register(
    Page("decision", "/decisions/{decision_id}", api=("GET", "/v1/decisions/{decision_id}")),
    Page("replay", "/decisions/{decision_id}/replay", api=("GET", "/v1/decisions/{decision_id}/replay")),
    Page("approve", "/decisions/{decision_id}/approve", api=("POST", "/v1/decisions/{decision_id}/approve")),
    Page("reject", "/decisions/{decision_id}/reject", api=("POST", "/v1/decisions/{decision_id}/reject")),
)
Id = Annotated[int, Path(ge=1, le=2**62)]
_SHOWN_FIRST = ("pass", "fail", "fired")  # the rules that decided something; the rest fold away


_CASE_FIELDS: dict[int, dict[str, str]] = {}


def _case_fields(rid: int, rs: Ruleset) -> dict[str, str]:
    """Outcome case id -> the decision field it gives a value to (per ruleset, kept)."""
    found = _CASE_FIELDS.get(rid)
    if found is None:
        found = {d.name: str(d.outcome.field) for d in rs.plan.definitions.values() if d.kind == "case"}  # type: ignore[attr-defined]
        if len(_CASE_FIELDS) > 32:
            _CASE_FIELDS.clear()
        _CASE_FIELDS[rid] = found
    return found


def _may(service: Service, ctx: Ctx, seq: int, action: str, closed: bool) -> tuple[bool, str]:
    """(whether the caller may ``action`` the decision now, why not): the service's checks, dry."""
    if not ctx.can(action):
        return False, ""
    if closed:
        return False, ctx.t("decision.closed")
    try:
        check_approval(service, service.stored(seq), ctx.user, action, dt.date.today())
    except (Forbidden, Conflict) as exc:
        return False, service.scrub(exc.said(ctx.lang))
    return True, ""


def _value_label(ctx: Ctx, rs: Any, name: str, value: Any) -> Any:
    """A decision field's code as officers read it (its label in rules/ruleset.yaml), else the value."""
    label = ((rs.labels.get(name) or {}).get("values") or {}).get(str(value)) if value is not None else None
    return ctx.label(label) if label else value


def _history(service: Service, rec: LedgerRecord, approvals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The decision's records in the ledger, in order: decided, approved or rejected, replayed."""
    names: dict[int, str] = {}

    def who(uid: int | None) -> str:
        if uid is None:
            return ""
        if uid not in names:
            user = service.store.user(uid)
            names[uid] = user.name if user else f"#{uid}"
        return names[uid]

    rows = [(rec.seq, {"when": rec.created_at, "what": "decided", "who": who(rec.actor_id), "note": ""})]
    for a in approvals:
        officer = a.get("officer") or {}
        entry = {
            "when": a["recorded_at"],
            "what": str(a.get("action")),
            "who": officer.get("name", ""),
            "note": a.get("note"),
        }
        rows.append((int(a["approval_id"]), entry))
    for r in service.store.records_for(rec.seq, "replay"):
        matches = bool(r.body.get("matches"))
        entry = {"when": r.created_at, "what": "replay", "who": who(r.actor_id), "matches": matches}
        entry["differs"] = ", ".join(str(k) for k in r.body.get("differs") or ())
        rows.append((r.seq, entry))
    return [entry for _, entry in sorted(rows, key=lambda row: row[0])]


def _view(ctx: Ctx, seq: int) -> dict[str, Any]:
    """Everything the page shows, read in one worker thread."""
    service = ctx.service
    shown = service.get(seq, ctx.lang, user=ctx.user)  # township scoping: the API's own check
    rec = service.stored(seq)
    rs = service.ruleset(int(rec.body["ruleset_id"]))
    reports: Mapping[str, Any] = rs.reports
    approval_rule: Mapping[str, Any] = reports.get("approval") or {}
    titles = {f.name: f.definition.title for f in rs.plan.fields}
    programs = {f.name: f.definition.program for f in rs.plan.fields}
    statuses: Mapping[str, Any] = reports.get("statuses") or {}
    amounts: Mapping[str, Any] = reports.get("amounts") or {}
    highlighted = {*statuses, *amounts, *(str(v) for v in approval_rule.values())}
    other: dict[str, list[tuple[str, str, Any]]] = {}
    for name, title in titles.items():
        if name not in highlighted and name in shown:
            other.setdefault(programs.get(name) or "", []).append((name, ctx.label(title), shown[name]))
    rules: dict[str, list[dict[str, Any]]] = {}
    cases = _case_fields(int(rec.body["ruleset_id"]), rs)
    why: dict[str, list[str]] = {}  # a status field -> the messages of the cases that gave its value
    for r in shown["explanation"]["rules"]:
        rules.setdefault(str(r.get("program") or ""), []).append(r)
        if r.get("outcome") == "fired" and r.get("rule") in cases:
            why.setdefault(cases[r["rule"]], []).append(str(r.get("message") or ""))
    history = _history(service, rec, shown["approvals"])
    closed = bool(shown["approvals"])
    state = str(shown["approvals"][-1].get("action")) + "d" if closed else "pending"
    household = rec.body.get("household") or {}
    may_approve = _may(service, ctx, seq, "approve", closed)
    may_reject = _may(service, ctx, seq, "reject", closed)
    return {
        "d": shown,
        "household": household,
        "state": state,
        "statuses": [
            (ctx.label(label), _value_label(ctx, rs, name, shown.get(name)), why.get(name, []))
            for name, label in statuses.items()
        ],
        "program_titles": {str(p["id"]): ctx.label(p.get("title")) for p in rs.programs},
        "amounts": [(ctx.label(label), shown.get(name)) for name, label in amounts.items()],
        "authority": (
            (ctx.label(titles.get(approval_rule["authority"])), shown.get(approval_rule["authority"]))
            if "authority" in approval_rule
            else None
        ),
        "blocked": (
            (ctx.label(titles.get(approval_rule["blocked"])), shown.get(approval_rule["blocked"]))
            if "blocked" in approval_rule
            else None
        ),
        "other": other,
        "rules": rules,
        "shown_first": _SHOWN_FIRST,
        "history": history,
        "may_approve": may_approve,
        "may_reject": may_reject,
        "ruleset_version": rs.ruleset_version,
    }


@router.get("/decisions/{decision_id}")
async def decision(
    ctx: Annotated[Ctx, page("decision")], decision_id: Id, done: Annotated[str, Query(max_length=20)] = ""
) -> HTMLResponse:
    view = await run_in_threadpool(_view, ctx, decision_id)
    notice = ctx.t(f"decision.done.{done}") if done in ("approve", "reject") else ""
    return render(ctx, "decision.html", seq=decision_id, notice=notice, **view)


@router.get("/decisions/{decision_id}/replay")
async def replay(ctx: Annotated[Ctx, page("replay")], decision_id: Id) -> HTMLResponse:
    result = await run_in_threadpool(ctx.service.replay, decision_id, ctx.user)
    rec = await run_in_threadpool(ctx.service.stored, decision_id)
    stored = rec.body["decision"]
    differs = [
        (k, stored.get(k), v) for k, v in result["decision"].items() if k != "explanation" and stored.get(k) != v
    ]
    # the page's history gains the replay just recorded (an htmx out-of-band swap)
    history = await run_in_threadpool(_history_of, ctx.service, rec) if ctx.htmx else None
    return render(ctx, "replay.html", result=result, differs=differs, history=history)


def _history_of(service: Service, rec: LedgerRecord) -> list[dict[str, Any]]:
    records = service.store.records_for(rec.seq, "approval")
    approvals = [{"approval_id": a.seq, "recorded_at": a.created_at, **a.body} for a in records]
    return _history(service, rec, approvals)


async def _act(ctx: Ctx, decision_id: int, action: str) -> Response:
    note = ctx.field("note")[:2000]
    if action == "reject" and not note:
        raise InputError([FieldProblem("note", ctx.t("decision.reason_needed"))])
    await run_in_threadpool(ctx.service.approve, decision_id, ctx.user, action, note)
    return redirect(ctx.request, f"{PREFIX}/decisions/{decision_id}?done={action}")


@router.post("/decisions/{decision_id}/approve")
async def approve(ctx: Annotated[Ctx, checked("approve")], decision_id: Id) -> Response:
    return await _act(ctx, decision_id, "approve")


@router.post("/decisions/{decision_id}/reject")
async def reject(ctx: Annotated[Ctx, checked("reject")], decision_id: Id) -> Response:
    return await _act(ctx, decision_id, "reject")
