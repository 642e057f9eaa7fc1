"""Screen 4, a new decision: a household form (members added and removed in the browser), a
pasted JSON household or an uploaded XLSX one (sheets ``households`` and ``members``, the
caseload tables' columns); the server's own validator checks it as the officer types (htmx
posts the form to ``/new/check``, each message lands next to its field); a preview decides
without storing, and only the officer's confirmation stores it (once: the preview carries an
Idempotency-Key, so a second click returns the same decision)."""

from __future__ import annotations

import datetime as dt
import io
import json
import secrets
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import UploadFile

from api.console.forms import form_fields, form_values, household_from_form, place_problems
from api.console.pages import PREFIX, Ctx, Page, checked, page, redirect, register, render
from api.workflow import check_township
from engine import BadJson, BadValue, FieldProblem, InputError, json_value, parse_value

router = APIRouter()
register(Page("new", "/new", api=("POST", "/v1/decisions"), nav="nav.new"))
_XLSX_LIMIT = 2 * 1024 * 1024


def _schema(ctx: Ctx) -> Mapping[str, Any]:
    service = ctx.service
    schema: Mapping[str, Any] = service.ruleset(service.current_ruleset()).record.json_schema()
    return schema


def _form_page(
    ctx: Ctx,
    values: Mapping[str, str] | None = None,
    members: int = 1,
    errors: Mapping[str, str] | None = None,
    general: list[str] | None = None,
    pasted: str = "",
    status: int = 200,
) -> HTMLResponse:
    groups, member_fields = form_fields(_schema(ctx))
    return render(
        ctx,
        "new.html",
        status,
        groups=groups,
        member_fields=member_fields,
        values=values or {},
        members=members,
        errors=errors or {},
        general=general or [],
        pasted=pasted,
    )


@router.get("/new")
async def new(ctx: Annotated[Ctx, page("new")]) -> HTMLResponse:
    return await run_in_threadpool(_form_page, ctx)


def _decide_dry(ctx: Ctx, raw: Any) -> Any:
    """The decision the household would get now, without storing it (InputError names fields)."""
    if not isinstance(raw, Mapping):
        raise InputError([FieldProblem("(body)", ctx.t("new.json_object"))])
    service = ctx.service
    try:
        day: dt.date = parse_value("date", raw.get("decision_date") or dt.date.today().isoformat())
    except BadValue:
        day = dt.date.today()  # the validator names decision_date beside any other problem
    ev, _ = service.evaluator(service.ruleset_for(day))
    return ev.decide(raw)


def _check(ctx: Ctx) -> HTMLResponse:
    """Every form field's message, as out-of-band swaps; only fields with a value are judged
    (a field not typed yet is not an error while typing; the preview judges them all)."""
    assert ctx.form is not None
    schema = _schema(ctx)
    household, count = household_from_form(ctx.form, schema)
    try:
        _decide_dry(ctx, household)
        placed: dict[str, str] = {}
    except InputError as exc:
        placed, _ = place_problems([p.as_dict() for p in exc.problems], household)
    typed = {k.replace(":", "-").replace(".", "-") for k, v in ctx.form.items() if isinstance(v, str) and v.strip()}
    groups, member_fields = form_fields(schema)
    ids = ["h-" + f.dom for _, fields in groups for f in fields]
    ids += [f"m{i}-{f.dom}" for i in range(count) for f in member_fields]
    shown = {i: placed.get(i, "") if i in typed else "" for i in ids}
    return render(ctx, "new_check.html", shown=shown, bad=sum(1 for m in shown.values() if m))


@router.post("/new/check")
async def check(ctx: Annotated[Ctx, checked("new")]) -> HTMLResponse:
    return await run_in_threadpool(_check, ctx)


def _xlsx_household(data: bytes, ctx: Ctx) -> dict[str, Any]:
    """One household from a workbook with sheets ``households`` (one row) and ``members``,
    read as the caseload tables are read (engine ``load_households``)."""
    import csv
    import tempfile
    from pathlib import Path

    import openpyxl

    from engine import load_households

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # a file that is not a workbook: openpyxl raises many kinds
        raise InputError([FieldProblem("xlsx", ctx.t("new.xlsx_bad"))]) from None
    with tempfile.TemporaryDirectory() as tmp:
        for sheet in ("households", "members"):
            if sheet not in book.sheetnames:
                raise InputError([FieldProblem("xlsx", ctx.t("new.xlsx_sheets"))])
            with (Path(tmp) / f"{sheet}.csv").open("w", encoding="utf-8", newline="") as f:
                writer = csv.writer(f)
                for row in book[sheet].iter_rows(values_only=True, max_row=MAX_ROWS):
                    writer.writerow([_cell(v) for v in row])
        found = load_households(Path(tmp), ctx.service.ruleset(ctx.service.current_ruleset()).record)
    if len(found) != 1:
        raise InputError([FieldProblem("xlsx", ctx.t("new.xlsx_one", n=len(found)))])
    return dict(found[0])


MAX_ROWS = 102  # a header and at most 100 members, and one more to tell a larger table


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


async def _source(ctx: Ctx) -> tuple[Any, str]:
    """(the household: pasted JSON, an uploaded workbook, or the form; the pasted text)."""
    assert ctx.form is not None
    pasted = ctx.field("json")
    if pasted:
        try:
            return json_value(pasted), pasted
        except BadJson as exc:
            raise InputError([FieldProblem("json", str(exc))]) from None
    upload = ctx.form.get("xlsx")
    if isinstance(upload, UploadFile) and upload.filename:
        data = await upload.read(_XLSX_LIMIT + 1)
        if len(data) > _XLSX_LIMIT:
            raise InputError([FieldProblem("xlsx", ctx.t("new.xlsx_large"))])
        return await run_in_threadpool(_xlsx_household, data, ctx), ""
    return household_from_form(ctx.form, _schema(ctx))[0], ""


def _preview(ctx: Ctx, raw: Any, pasted: str) -> HTMLResponse:
    try:
        if isinstance(raw, Mapping):
            check_township(ctx.user, raw)  # a township officer: their own township's households only
        decision = _decide_dry(ctx, raw)
    except InputError as exc:
        household = raw if isinstance(raw, Mapping) else {}
        placed, rest = place_problems([p.as_dict() for p in exc.problems], household)
        values, members = form_values(household)
        return _form_page(ctx, values, members, placed, rest, pasted, status=422)
    shown = decision.to_dict(explain=False)
    rs = decision_ruleset(ctx)
    reports = rs.reports
    statuses = [(ctx.label(label), shown.get(name)) for name, label in (reports.get("statuses") or {}).items()]
    amounts = [(ctx.label(label), shown.get(name)) for name, label in (reports.get("amounts") or {}).items()]
    reasons = [r for r in shown.get("reasons") or [] if isinstance(r, Mapping)]
    return render(
        ctx,
        "new_preview.html",
        statuses=statuses,
        amounts=amounts,
        reasons=[(ctx.label(r.get("title")), r.get("outcome"), _message(r, ctx.lang)) for r in reasons],
        household=json.dumps(raw, ensure_ascii=False),
        key=secrets.token_urlsafe(16),
        household_id=shown.get("household_id"),
    )


def decision_ruleset(ctx: Ctx) -> Any:
    return ctx.service.ruleset(ctx.service.current_ruleset())


def _message(reason: Mapping[str, Any], lang: str) -> str:
    message = reason.get("message")
    if isinstance(message, Mapping):
        return str(message.get(lang) or "")
    return str(message or "")


@router.post("/new/preview")
async def preview(ctx: Annotated[Ctx, checked("new", max_part_size=_XLSX_LIMIT + 1024)]) -> HTMLResponse:
    try:
        raw, pasted = await _source(ctx)
    except InputError as exc:
        return _form_page(ctx, general=[str(p) for p in exc.problems], pasted=ctx.field("json"), status=422)
    return await run_in_threadpool(_preview, ctx, raw, pasted)


@router.post("/new/store")
async def store(ctx: Annotated[Ctx, checked("new", max_part_size=512 * 1024)]) -> Response:
    try:
        raw = json_value(ctx.field("household"))
    except BadJson as exc:
        raise InputError([FieldProblem("household", str(exc))]) from None
    key = ctx.field("key") or None
    _, out = await run_in_threadpool(ctx.service.decide_once, raw, ctx.user, ctx.lang, False, key)
    return redirect(ctx.request, f"{PREFIX}/decisions/{out['decision_id']}")
