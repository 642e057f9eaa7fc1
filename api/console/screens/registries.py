"""Screen 8, registries: each registry's versions (rows, rejected rows, when), a new version
uploaded as CSV with its row report (refused whole when a row is rejected or none is left,
unless the upload says so, as the API does), and what changed between two versions: the keys
added and removed (resident IDs masked for every role but data staff)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from starlette.datastructures import UploadFile

from api.console.pages import Ctx, Page, checked, page, register, render
from api.console_data import registry_diff, registry_history
from api.masking import mask_id
from api.service import Refused, Service
from engine import FieldProblem, InputError
from engine import text as catalogue_text

router = APIRouter()
register(
    Page("registries", "/registries", api=("GET", "/v1/registries"), nav="nav.registries"),
    Page("registries.upload", "/registries/{name}", api=("PUT", "/v1/registries/{name}")),
)

Name = Annotated[str, Path(max_length=50, pattern=r"^[a-z_][a-z0-9_]*$")]
VersionId = Annotated[int, Query(ge=1, le=2**62)]
_REGISTRY_FORM = 64 * 1024 * 1024  # the API's default limit for a registry (`Settings.limits`)
_UNMASKED = ("data",)  # who uploads a registry reads its keys as they are


def _overview(service: Service) -> list[dict[str, Any]]:
    return [
        {"name": name, "latest": row, "history": registry_history(service, name)}
        for name, row in sorted(service.all_registry_versions().items())
    ]


def _page(ctx: Ctx, status: int = 200, **values: Any) -> HTMLResponse:
    base: dict[str, Any] = {"registries": _overview(ctx.service), "report": None, "error": None, "uploaded": None}
    base.update(values)
    return render(ctx, "registries.html", status, **base)


@router.get("/registries")
async def registries(ctx: Annotated[Ctx, page("registries")]) -> HTMLResponse:
    return await run_in_threadpool(_page, ctx)


@router.post("/registries/{name}")
async def upload(
    name: Name, ctx: Annotated[Ctx, checked("registries.upload", max_part_size=_REGISTRY_FORM)]
) -> HTMLResponse:
    """A new version from a CSV file; the row report is shown whether it was stored or refused."""
    sent = ctx.form.get("file") if ctx.form is not None else None
    if not isinstance(sent, UploadFile) or not sent.filename:
        raise InputError([FieldProblem("file", ctx.t("registries.no_file"))])
    limit = ctx.service.settings.limits["registry"]
    try:
        data = await sent.read(limit + 1)
    finally:
        await sent.close()  # the form's spooled file, at once
    if len(data) > limit:
        raise InputError([FieldProblem("file", ctx.t("jobs.too_large", n=limit))])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError([FieldProblem("file", catalogue_text("input.csv_utf8", "en"))]) from None
    partial = ctx.field("accept_partial") == "1"
    empty = ctx.field("allow_empty") == "1"

    def work() -> HTMLResponse:
        try:
            stored = ctx.service.upload_registry(name, text, ctx.user, accept_partial=partial, allow_empty=empty)
        except Refused as exc:
            return _page(ctx, 422, report=exc.report, error=str(exc), uploaded=name)
        return _page(ctx, report=stored, uploaded=name)

    return await run_in_threadpool(work)


@router.get("/registries/{name}/diff")
async def diff(name: Name, old: VersionId, new: VersionId, ctx: Annotated[Ctx, page("registries")]) -> HTMLResponse:
    found = await run_in_threadpool(registry_diff, ctx.service, old, new)
    if ctx.user.role not in _UNMASKED:
        found["added"] = [mask_id(k) for k in found["added"]]
        found["removed"] = [mask_id(k) for k in found["removed"]]
    return render(ctx, "registry_diff.html", diff=found)
