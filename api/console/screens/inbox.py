"""Screen 1, 待审批: the decisions waiting for this officer (their township and approval level,
never their own requests), oldest first, with counts: ``GET /v1/approvals/pending`` as a page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from api import workflow
from api.console.pages import Ctx, Page, page, register, render

router = APIRouter()
register(Page("inbox", "/inbox", api=("GET", "/v1/approvals/pending"), nav="nav.inbox"))


@router.get("/inbox")
async def inbox(
    ctx: Annotated[Ctx, page("inbox")], p: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1
) -> HTMLResponse:
    found = await run_in_threadpool(workflow.pending, ctx.service, ctx.user, p)
    return render(ctx, "inbox.html", found=found, pages=_pages(found), page_url=lambda n: f"?page={n}")


def _pages(found: dict[str, int]) -> int:
    return max(1, -(-int(found["total"]) // int(found["per_page"])))
