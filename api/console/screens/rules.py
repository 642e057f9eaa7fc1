"""Screen 5, the rules explorer: the published versions; for one, its programs, each rule with
its title, legal basis and condition in words, and the parameters as dated tables per region
with their references; the diff between any two versions."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from api.console.pages import Ctx, Page, page, register, render
from api.rule_diff import diff_rulesets, program_of
from api.service import NotFound, Service
from engine import describe_parameters, describe_rules

router = APIRouter()
register(
    Page("rules", "/rules", api=("GET", "/v1/rulesets/{ruleset_id}/rules"), nav="nav.rules"),
    Page("rules.diff", "/rules/diff", api=("GET", "/v1/rulesets/{ruleset_id}/rules")),
)

Id = Annotated[int | None, Query(ge=1, le=2**62)]


def versions(service: Service) -> list[dict[str, Any]]:
    """Every stored version, newest first, the one in force today marked."""
    rows = service.store.rulesets()
    in_force = service.current_ruleset() if rows else None
    return [
        {
            "id": r["id"],
            "version": r["version"],
            "effective_from": r["effective_from"].isoformat(),
            "status": r["status"],
            "created_at": r["created_at"].isoformat()[:16] if r["created_at"] else "",
            "in_force": r["id"] == in_force,
        }
        for r in sorted(rows, key=lambda r: r["id"], reverse=True)
    ]


def explorer(service: Service, rid: int) -> dict[str, Any]:
    """Programs in file order, each with its rules and parameters."""
    rs = service.ruleset(rid)
    ids = [p["id"] for p in rs.programs]
    rules = describe_rules(rs)
    params = describe_parameters(rs)
    programs = []
    for p in rs.programs:
        programs.append(
            {
                **p,
                "rules": [r for r in rules if r["program"] == p["id"]],
                "parameters": [x for x in params if program_of(x["name"], ids) == p["id"]],
            }
        )
    others = [x for x in params if program_of(x["name"], ids) == ""]
    return {"version": rs.ruleset_version, "programs": programs, "other_parameters": others}


@router.get("/rules")
async def rules_page(ctx: Annotated[Ctx, page("rules")], version: Id = None) -> HTMLResponse:
    listed = await run_in_threadpool(versions, ctx.service)
    rid = version or next((v["id"] for v in listed if v["in_force"]), listed[0]["id"])
    if rid not in {v["id"] for v in listed}:
        raise NotFound("api.not_found.ruleset", id=rid)
    shown = await run_in_threadpool(explorer, ctx.service, rid)
    return render(ctx, "rules.html", versions=listed, rid=rid, shown=shown, today=dt.date.today().isoformat())


@router.get("/rules/diff")
async def diff_page(ctx: Annotated[Ctx, page("rules.diff")], base: Id = None, head: Id = None) -> HTMLResponse:
    listed = await run_in_threadpool(versions, ctx.service)
    ids = [v["id"] for v in listed]
    head = head or ids[0]
    base = base or (ids[1] if len(ids) > 1 else ids[0])
    for rid in (base, head):
        if rid not in ids:
            raise NotFound("api.not_found.ruleset", id=rid)
    found = await run_in_threadpool(lambda: diff_rulesets(ctx.service.ruleset(base), ctx.service.ruleset(head)))
    return render(ctx, "rules_diff.html", versions=listed, base=base, head=head, diff=found)
