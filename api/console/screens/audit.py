"""Screen 9, audit and administration: verify the ledger (the hash chain and the users against
their ledger records, as `jiuzhu audit verify` does), export the public disclosure, and, for
admins, users: list, add (the token shown once), renew (a new expiry) and revoke."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from api import accounts
from api.console.pages import Ctx, Page, checked, page, register, render
from api.roles import ROLES
from api.service import Conflict, NotFound, disclosure_csv, disclosure_xlsx
from api.workflow import LEVELS
from engine import BadValue, FieldProblem, InputError, parse_value

router = APIRouter()
_ADMIN = ("admin",)
register(
    Page("audit", "/audit", roles=("auditor", "admin"), nav="nav.audit"),
    Page("disclosure", "/disclosure", api=("GET", "/v1/disclosure"), nav="nav.disclosure"),
    Page("users", "/admin/users", api=("GET", "/v1/users"), nav="nav.users"),
    Page("user_add", "/admin/users/add", roles=_ADMIN),
    Page("user_renew", "/admin/users/{name}/renew", roles=_ADMIN),
    Page("user_revoke", "/admin/users/{name}/revoke", api=("POST", "/v1/users/{name}/revoke")),
)
Name = Annotated[str, Path(max_length=100)]


def _verify(ctx: Ctx) -> dict[str, Any]:
    store = ctx.service.store
    checked_count, bad = store.verify()
    problems = [] if bad is not None else accounts.users_unlike_ledger(store)
    return {"checked": checked_count, "bad": bad, "problems": problems}


@router.get("/audit")
async def audit(ctx: Annotated[Ctx, page("audit")]) -> HTMLResponse:
    return render(ctx, "audit.html", result=None)


@router.post("/audit/verify")
async def verify(ctx: Annotated[Ctx, checked("audit")]) -> HTMLResponse:
    result = await run_in_threadpool(_verify, ctx)
    return render(ctx, "audit.html", result=result)


def _day(value: str, name: str) -> dt.date:
    try:
        day: dt.date = parse_value("date", value)
    except BadValue as exc:
        raise InputError([FieldProblem(name, str(exc))]) from None
    return day


@router.get("/disclosure", response_model=None)
async def disclosure(
    ctx: Annotated[Ctx, page("disclosure")],
    since: Annotated[str, Query(alias="from", max_length=10)] = "",
    until: Annotated[str, Query(alias="to", max_length=10)] = "",
    fmt: Annotated[str, Query(alias="format", pattern="^(csv|xlsx)$")] = "csv",
) -> Response:
    if not since or not until:
        return render(ctx, "disclosure.html")
    start, end = _day(since, "from"), _day(until, "to")
    columns, rows = await run_in_threadpool(ctx.service.disclosure, start, end)
    if fmt == "xlsx":
        data = await run_in_threadpool(disclosure_xlsx, columns, rows)
        kind = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    else:
        data, kind = disclosure_csv(columns, rows), "text/csv; charset=utf-8"
    name = f"disclosure-{start.isoformat()}-{end.isoformat()}.{fmt}"
    return Response(data, media_type=kind, headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _users_page(ctx: Ctx, created: dict[str, str] | None = None, status: int = 200) -> HTMLResponse:
    found = accounts.list_users(ctx.service.store)
    return render(ctx, "users.html", status, users=found, created=created, roles=ROLES, levels=LEVELS)


@router.get("/admin/users")
async def users(ctx: Annotated[Ctx, page("users")]) -> HTMLResponse:
    return await run_in_threadpool(_users_page, ctx)


def _add(ctx: Ctx) -> HTMLResponse:
    name, role = ctx.field("name")[:100], ctx.field("role")
    level, township = ctx.field("level") or None, ctx.field("township")[:200] or None
    certificate, valid_until = ctx.field("certificate")[:100] or None, ctx.field("valid_until")
    problems = []
    if not name:
        problems.append(FieldProblem("name", ctx.t("users.name_needed")))
    if role not in ROLES:
        problems.append(FieldProblem("role", ctx.t("users.role_needed")))
    if role == "officer" and level not in LEVELS:
        problems.append(FieldProblem("level", ctx.t("users.level_needed")))
    if role != "officer" and (level or township or certificate):
        problems.append(FieldProblem("level", ctx.t("users.officer_only")))
    if (certificate is None) != (not valid_until):
        problems.append(FieldProblem("certificate", ctx.t("users.certificate_pair")))
    days = ctx.field("expires_in_days") or "90"
    if not days.isdigit() or not 1 <= int(days) <= 3650:
        problems.append(FieldProblem("expires_in_days", ctx.t("users.days")))
    day = _day(valid_until, "valid_until") if valid_until else None
    if problems:
        raise InputError(problems)
    store = ctx.service.store
    if store.has_user(name):
        raise Conflict("console.users.exists", name=name)
    user, token = store.add_user(
        name, role, level, certificate, day, township=township, expires_in=dt.timedelta(days=int(days))
    )
    return _users_page(ctx, created={"name": user.name, "token": token}, status=201)


@router.post("/admin/users/add")
async def add_user(ctx: Annotated[Ctx, checked("user_add")]) -> HTMLResponse:
    return await run_in_threadpool(_add, ctx)


@router.post("/admin/users/{name}/revoke")
async def revoke(ctx: Annotated[Ctx, checked("user_revoke")], name: Name) -> HTMLResponse:
    if not await run_in_threadpool(accounts.revoke_user, ctx.service.store, name):
        raise NotFound("api.not_found.user", name=name)
    ctx.service.tokens.clear()  # the API's token cache: at once here
    return await run_in_threadpool(_users_page, ctx)


@router.post("/admin/users/{name}/renew")
async def renew(ctx: Annotated[Ctx, checked("user_renew")], name: Name) -> HTMLResponse:
    days = ctx.field("expires_in_days") or "90"
    if not days.isdigit() or not 1 <= int(days) <= 3650:
        raise InputError([FieldProblem("expires_in_days", ctx.t("users.days"))])
    token = await run_in_threadpool(accounts.renew_token, ctx.service.store, name, dt.timedelta(days=int(days)))
    if token is None:
        raise NotFound("console.not_found.user", name=name)
    ctx.service.tokens.clear()
    return await run_in_threadpool(_users_page, ctx, {"name": name, "token": token}, 201)
