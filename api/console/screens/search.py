"""Screen 2, case search: ``GET /v1/decisions`` as a page, with the same township scoping and
masking per role; paginated, each row linking to its decision."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from api import workflow
from api.console.pages import Ctx, Page, page, register, render
from api.search import STATUSES
from engine import InputError

router = APIRouter()
register(Page("search", "/search", api=("GET", "/v1/decisions"), nav="nav.search"))

FILTERS = ("household_id", "person_id", "name", "township", "status", "from", "to")


@router.get("/search")
async def search(
    ctx: Annotated[Ctx, page("search")],
    household_id: Annotated[str, Query(max_length=200)] = "",
    person_id: Annotated[str, Query(max_length=64)] = "",
    name: Annotated[str, Query(max_length=100)] = "",
    township: Annotated[str, Query(max_length=200)] = "",
    status: Annotated[str, Query(max_length=20)] = "",
    since: Annotated[str, Query(alias="from", max_length=10)] = "",
    until: Annotated[str, Query(alias="to", max_length=10)] = "",
    p: Annotated[int, Query(alias="page", ge=1, le=1_000_000)] = 1,
) -> HTMLResponse:
    params = {
        "household_id": household_id.strip(),
        "person_id": person_id.strip(),
        "name": name.strip(),
        "township": township.strip(),
        "status": status.strip(),
        "from": since.strip(),
        "to": until.strip(),
    }
    masked = ctx.user.role in ctx.page.access.masked
    found: dict[str, Any] | None = None
    problems: list[dict[str, Any]] = []
    try:
        found = await run_in_threadpool(
            workflow.search, ctx.service, ctx.user, {k: v or None for k, v in params.items()}, p, masked
        )
    except InputError as exc:  # a bad date or status: shown beside the form, not as an error page
        problems = [x.as_dict() for x in exc.problems]
    pages = max(1, -(-int(found["total"]) // int(found["per_page"]))) if found else 1
    kept = {k: v for k, v in params.items() if v}
    return render(
        ctx,
        "search.html",
        params=params,
        found=found,
        problems={x["field"]: x["message"] for x in problems},
        statuses=STATUSES,
        pages=pages,
        page_url=lambda n: "?" + urlencode({**kept, "page": n}),
        bound=workflow.bound_township(ctx.user),
        masked=masked,
    )
