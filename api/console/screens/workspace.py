"""Screen 6, the rule change workspace (policy staff): a draft bundle, uploaded or started from
the rules in force and edited one file at a time in the browser; lint with each problem beside
its line; the rule tests; one household decided both ways; an impact preview job; publishing
with an effective date; rolling back and reinstating versions. Every action goes through the
service functions the API uses (``Service.publish``, ``rollback``, ``reinstate``,
``start_impact``), with the same roles."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import UploadFile

from api.console.pages import PREFIX, Ctx, Page, checked, page, redirect, register, render
from api.console.screens.rules import versions
from api.console_data import caseload_choices
from api.jobs import Busy
from api.rule_diff import diff_rulesets
from api.rule_workspace import (
    CheckReport,
    annotate,
    bundle_of,
    candidate_ruleset,
    check_candidate,
    drop_draft,
    edited,
    load_draft,
    marked_lines,
    save_draft,
    try_household,
)
from api.service import Service
from api.store import User
from engine import BadJson, BadValue, FieldProblem, InputError, RuleLoadError, json_value, parse_value

router = APIRouter()
_PUBLISH = ("POST", "/v1/rulesets")
register(
    Page("workspace", "/workspace", api=_PUBLISH, nav="nav.workspace"),
    Page("workspace.edit", "/workspace/file", api=_PUBLISH),
    Page("workspace.publish", "/workspace/publish", api=_PUBLISH),
    Page("workspace.impact", "/workspace/impact", api=("POST", "/v1/impact")),
    Page(
        "rules.rollback",
        "/workspace/rulesets/{ruleset_id}/rollback",
        api=("POST", "/v1/rulesets/{ruleset_id}/rollback"),
    ),
    Page(
        "rules.reinstate",
        "/workspace/rulesets/{ruleset_id}/reinstate",
        api=("POST", "/v1/rulesets/{ruleset_id}/reinstate"),
    ),
)

RulesetId = Annotated[int, Path(ge=1, le=2**62)]
_UPLOAD_BYTES = 8 * 1024 * 1024 + 64 * 1024  # a form part: the API's limit for a bundle, and the form around it


def _draft_files(service: Service, user: User) -> dict[str, str] | None:
    """The user's draft, unpacked within the zip limits (no YAML read here)."""
    from api.bundles import unpack_bundle

    data = load_draft(service.settings.data_dir, user.id)
    if data is None:
        return None
    try:
        return unpack_bundle(data, service.settings.bundle)
    except InputError:
        return None


def _page(ctx: Ctx, status: int = 200, **values: Any) -> HTMLResponse:
    """The workspace page with whatever the last action produced (a check, a try, an error)."""
    service = ctx.service
    files = _draft_files(service, ctx.user)
    base: dict[str, Any] = {
        "files": sorted(files) if files else [],
        "has_draft": files is not None,
        "versions": versions(service),
        "caseloads": caseload_choices(service),
        "report": None,
        "tried": None,
        "household": "",
        "error": None,
        "diff": None,
    }
    base.update(values)
    return render(ctx, "workspace.html", status, **base)


@router.get("/workspace")
async def workspace(ctx: Annotated[Ctx, page("workspace")]) -> HTMLResponse:
    return await run_in_threadpool(_page, ctx)


def _check(ctx: Ctx, data: bytes, tests: bool) -> CheckReport:
    return check_candidate(data, ctx.service.settings.bundle, tests)


@router.post("/workspace/start")
async def start(ctx: Annotated[Ctx, checked("workspace")]) -> HTMLResponse:
    """A draft copied from the rules in force today."""

    def work() -> HTMLResponse:
        files = ctx.service.ruleset(ctx.service.current_ruleset()).files
        save_draft(ctx.service.settings.data_dir, ctx.user.id, bundle_of(files))
        return _page(ctx)

    return await run_in_threadpool(work)


@router.post("/workspace/upload")
async def upload(ctx: Annotated[Ctx, checked("workspace", max_part_size=_UPLOAD_BYTES)]) -> HTMLResponse:
    """A bundle (.zip) as the draft, linted at once."""
    sent = ctx.form.get("bundle") if ctx.form is not None else None
    if not isinstance(sent, UploadFile):
        return await run_in_threadpool(_page, ctx, 422, error=ctx.t("workspace.no_file"))
    try:
        data = await sent.read()
    finally:
        await sent.close()  # the form's spooled file, at once
    if len(data) > ctx.service.settings.limits["rules"]:
        limit = ctx.service.settings.limits["rules"]
        return await run_in_threadpool(_page, ctx, 413, error=ctx.t("workspace.too_large", n=limit))

    def work() -> HTMLResponse:
        report = _check(ctx, data, tests=False)
        if report.stage != "unpack":  # a zip that unpacks is kept, problems and all, to be mended here
            save_draft(ctx.service.settings.data_dir, ctx.user.id, data)
        return _page(ctx, 200 if report.ok else 422, report=report)

    return await run_in_threadpool(work)


@router.post("/workspace/discard")
async def discard(ctx: Annotated[Ctx, checked("workspace")]) -> Response:
    drop_draft(ctx.service.settings.data_dir, ctx.user.id)
    return redirect(ctx.request, f"{PREFIX}/workspace")


def _draft_or_error(ctx: Ctx) -> bytes | HTMLResponse:
    data = load_draft(ctx.service.settings.data_dir, ctx.user.id)
    if data is None:
        return _page(ctx, 409, error=ctx.t("workspace.no_draft"))
    return data


@router.post("/workspace/lint")
async def lint(ctx: Annotated[Ctx, checked("workspace")]) -> HTMLResponse:
    return await run_in_threadpool(_checked_page, ctx, False)


@router.post("/workspace/test")
async def test(ctx: Annotated[Ctx, checked("workspace")]) -> HTMLResponse:
    return await run_in_threadpool(_checked_page, ctx, True)


def _checked_page(ctx: Ctx, tests: bool) -> HTMLResponse:
    data = _draft_or_error(ctx)
    if isinstance(data, HTMLResponse):
        return data
    report = _check(ctx, data, tests)
    return _page(ctx, 200 if report.ok else 422, report=report)


@router.get("/workspace/diff")
async def draft_diff(ctx: Annotated[Ctx, page("workspace")]) -> HTMLResponse:
    """The draft against the rules in force today (once the draft loads)."""

    def work() -> HTMLResponse:
        data = _draft_or_error(ctx)
        if isinstance(data, HTMLResponse):
            return data
        report = _check(ctx, data, tests=False)
        if not report.ok:
            return _page(ctx, 422, report=report)
        live = ctx.service.ruleset(ctx.service.current_ruleset())
        return _page(ctx, diff=diff_rulesets(live, candidate_ruleset(report)))

    return await run_in_threadpool(work)


# ------------------------------------------------------------------ one file in the browser


@router.get("/workspace/file")
async def edit_form(
    ctx: Annotated[Ctx, page("workspace.edit")], name: Annotated[str, Query(max_length=300)]
) -> HTMLResponse:
    files = await run_in_threadpool(_draft_files, ctx.service, ctx.user)
    if files is None or name not in files:
        return await run_in_threadpool(_page, ctx, 404, error=ctx.t("workspace.no_such_file", name=name))
    return render(ctx, "workspace_file.html", name=name, text=files[name], lines=None, problems=[], others=[])


@router.post("/workspace/file")
async def edit_save(ctx: Annotated[Ctx, checked("workspace.edit", max_part_size=2 * 1024 * 1024)]) -> HTMLResponse:
    """Save one edited file into the draft and lint the draft: the file's problems are shown
    beside its lines, the other files' problems listed under it."""
    name, text = ctx.field("name"), ctx.form.get("text") if ctx.form is not None else None
    if not isinstance(text, str):
        text = ""

    def work() -> HTMLResponse:
        files = _draft_files(ctx.service, ctx.user)
        if files is None or name not in files:
            return _page(ctx, 404, error=ctx.t("workspace.no_such_file", name=name))
        changed = edited(files, name, text, ctx.service.settings.bundle)
        data = bundle_of(changed)
        save_draft(ctx.service.settings.data_dir, ctx.user.id, data)
        report = _check(ctx, data, tests=False)
        mine = [p for p in report.problems if p["file"] == name]
        others = [p for p in report.problems if p["file"] != name]
        lines = marked_lines(changed[name], mine)
        status = 200 if report.ok else 422
        return render(
            ctx, "workspace_file.html", status, name=name, text=changed[name], lines=lines, problems=mine, others=others
        )

    return await run_in_threadpool(work)


# ------------------------------------------------------------------ trying it


@router.post("/workspace/try")
async def try_one(ctx: Annotated[Ctx, checked("workspace")]) -> HTMLResponse:
    """One household (JSON) decided under the rules in force and under the draft."""
    raw_text = ctx.field("household")

    def work() -> HTMLResponse:
        data = _draft_or_error(ctx)
        if isinstance(data, HTMLResponse):
            return data
        try:
            raw = json_value(raw_text)
        except BadJson as exc:
            return _page(ctx, 422, household=raw_text, error=ctx.t("workspace.bad_json", why=str(exc)))
        report = _check(ctx, data, tests=False)
        if not report.ok:
            return _page(ctx, 422, report=report, household=raw_text)
        tried = try_household(ctx.service, candidate_ruleset(report), raw, ctx.lang)
        return _page(ctx, household=raw_text, tried=tried)

    return await run_in_threadpool(work)


@router.post("/workspace/impact")
async def impact(ctx: Annotated[Ctx, checked("workspace.impact")]) -> Response:
    """An impact preview of the draft over a caseload in the data folder, as a job."""
    caseload, day_text = ctx.field("caseload"), ctx.field("date")

    def work() -> Response:
        data = _draft_or_error(ctx)
        if isinstance(data, HTMLResponse):
            return data
        day = None
        if day_text:
            try:
                day = parse_value("date", day_text)
            except BadValue as exc:
                raise InputError([FieldProblem("date", str(exc))]) from None
        report = _check(ctx, data, tests=False)
        if not report.ok:
            return _page(ctx, 422, report=report)
        source = ctx.service.server_path(caseload, "caseload")
        try:
            jid = ctx.service.start_impact(source, ctx.user, None, [], day, candidate=candidate_ruleset(report))
        except Busy as exc:
            return _page(ctx, 429, error=str(exc))
        return redirect(ctx.request, f"{PREFIX}/jobs/{jid}")

    return await run_in_threadpool(work)


# ------------------------------------------------------------------ publishing and versions


@router.post("/workspace/publish")
async def publish(ctx: Annotated[Ctx, checked("workspace.publish")]) -> Response:
    """Publish the draft from an effective date (checked again, tests included, by the
    service); then the diff against the version that was in force."""
    day_text = ctx.field("effective_from")

    def work() -> Response:
        data = _draft_or_error(ctx)
        if isinstance(data, HTMLResponse):
            return data
        try:
            day = parse_value("date", day_text)
        except BadValue as exc:
            return _page(ctx, 422, error=f"{ctx.t('workspace.effective_from')}: {exc}")
        before = ctx.service.current_ruleset()  # the diff shown after: from the rules in force today
        try:
            done = ctx.service.publish(data, day, ctx.user)
        except RuleLoadError as exc:
            files = _draft_files(ctx.service, ctx.user) or {}
            report = CheckReport("lint", files, annotate([p.as_dict() for p in exc.problems], files))
            return _page(ctx, 422, report=report)
        except InputError as exc:
            files = _draft_files(ctx.service, ctx.user) or {}
            found = annotate([p.as_dict() for p in exc.problems], files)
            stage = "tests" if any(p["kind"] == "rule-test" for p in found) else "refused"  # or the worker's limits
            report = CheckReport(stage, files, found, tested=True)
            return _page(ctx, 422, report=report)
        drop_draft(ctx.service.settings.data_dir, ctx.user.id)
        return redirect(ctx.request, f"{PREFIX}/rules/diff?base={before}&head={done['id']}&published=1")

    return await run_in_threadpool(work)


@router.post("/workspace/rulesets/{ruleset_id}/rollback")
async def rollback(ruleset_id: RulesetId, ctx: Annotated[Ctx, checked("rules.rollback")]) -> Response:
    await run_in_threadpool(ctx.service.rollback, ruleset_id, ctx.user)
    return redirect(ctx.request, f"{PREFIX}/workspace")


@router.post("/workspace/rulesets/{ruleset_id}/reinstate")
async def reinstate(ruleset_id: RulesetId, ctx: Annotated[Ctx, checked("rules.reinstate")]) -> Response:
    await run_in_threadpool(ctx.service.reinstate, ruleset_id, ctx.user)
    return redirect(ctx.request, f"{PREFIX}/workspace")
