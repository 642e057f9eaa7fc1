"""Screen 7, jobs: data staff start a screening (an uploaded caseload or one picked from the
data folder) or an event monitoring job, watch its progress (htmx polls the job's part of the
page every second until it ends), read the summary, download the files and browse the rejects;
policy staff see their impact previews and open the report; officers see monitoring findings
of their township. Roles, own-job and township rules are the API's (``api/roles.py``)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.datastructures import UploadFile

from api.console.pages import PREFIX, Ctx, Page, checked, page, redirect, register, render
from api.console_data import caseload_choices, job_rows, percent, rejects_page
from api.jobs import Busy
from api.service import NotFound, Service
from engine import BadValue, FieldProblem, InputError, parse_value
from engine import text as catalogue_text

router = APIRouter()
register(
    Page("jobs", "/jobs", roles=("data", "policy", "auditor", "officer"), nav="nav.jobs"),
    Page("jobs.screen", "/jobs/screening", api=("POST", "/v1/screenings")),
    Page("jobs.monitor", "/jobs/monitor", api=("POST", "/v1/events")),
    Page("jobs.view", "/jobs/{job_id}", api=("GET", "/v1/screenings/{job_id}")),
    Page("jobs.files", "/jobs/{job_id}/files/{name}", api=("GET", "/v1/screenings/{job_id}/files/{name}")),
    Page("jobs.cancel", "/jobs/{job_id}/cancel", api=("POST", "/v1/screenings/{job_id}/cancel")),
    Page("jobs.findings", "/jobs/{job_id}/findings", api=("GET", "/v1/events/{job_id}/findings")),
)

JobId = Annotated[int, Path(ge=1, le=2**62)]
FILE_NAMES = (
    "decisions",
    "rejects",
    "summary",
    "findings",
    "rejected_events",
    "report",
    "changes",
    "transitions",
    "budget",
)
_REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'"
_CHUNK = 1 << 20
# the largest form each upload page reads: the API's default limits (`Settings.limits`); a file
# part is spooled to disk by the form parser, and the server's own limit is checked as it is copied
_CASELOAD_FORM = 1024 * 1024 * 1024
_EVENTS_FORM = 256 * 1024 * 1024


def _kinds_for(role: str) -> tuple[tuple[str, ...], bool]:
    """(job kinds listed, only the caller's own) for a role."""
    if role == "officer":
        return ("monitor",), False
    if role == "policy":
        return ("impact",), True
    return ("screen", "monitor", "impact"), False


@router.get("/jobs")
async def jobs_page(ctx: Annotated[Ctx, page("jobs")]) -> HTMLResponse:
    return await run_in_threadpool(_jobs_page, ctx, 200, None)


def _jobs_page(ctx: Ctx, status: int, error: str | None) -> HTMLResponse:
    kinds, own = _kinds_for(ctx.user.role)
    rows = job_rows(ctx.service, ctx.user, kinds, own)
    if ctx.user.role == "officer":
        rows = [r for r in rows if r["status"] == "done"]
    choices = caseload_choices(ctx.service) if ctx.can("jobs.screen") or ctx.can("jobs.monitor") else []
    return render(ctx, "jobs.html", status, rows=rows, caseloads=choices, error=error)


async def _upload(ctx: Ctx, sent: UploadFile, limit: int, suffix: str) -> FilePath:
    """An uploaded file copied, in chunks, into the service's upload folder (0600); refused
    past ``limit`` bytes. The job deletes it when it ends."""
    folder = ctx.service.upload_folder()
    fd, name = tempfile.mkstemp(dir=folder, suffix=suffix)
    path = FilePath(name)
    size = 0
    try:
        with os.fdopen(fd, "wb") as f:
            while chunk := await sent.read(_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise InputError([FieldProblem("file", ctx.t("jobs.too_large", n=limit))])
                f.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    finally:
        await sent.close()  # the form's spooled copy, at once
    return path


def _day(text: str) -> Any:
    if not text:
        return None
    try:
        return parse_value("date", text)
    except BadValue as exc:
        raise InputError([FieldProblem("date", str(exc))]) from None


@router.post("/jobs/screening")
async def start_screening(ctx: Annotated[Ctx, checked("jobs.screen", max_part_size=_CASELOAD_FORM)]) -> Response:
    """A screening of an uploaded JSON Lines caseload, or of one in the data folder."""
    service: Service = ctx.service
    day = _day(ctx.field("date"))
    fmt = ctx.field("format") or "parquet"
    if fmt not in ("parquet", "csv", "xlsx"):
        raise InputError([FieldProblem("format", catalogue_text("input.output_format", "en"))])
    sent = ctx.form.get("file") if ctx.form is not None else None
    if isinstance(sent, UploadFile) and not sent.filename:
        await sent.close()  # the field was left empty: a caseload from the data folder
        sent = None
    try:
        if isinstance(sent, UploadFile):
            upload = await _upload(ctx, sent, service.settings.limits["caseload"], ".jsonl")
            try:
                jid = await run_in_threadpool(service.start_screening, upload, ctx.user, day, fmt, True)
            except BaseException:
                upload.unlink(missing_ok=True)
                raise
        else:
            source = await run_in_threadpool(service.server_path, ctx.field("path"), "path")
            jid = await run_in_threadpool(service.start_screening, source, ctx.user, day, fmt)
    except Busy as exc:
        return await run_in_threadpool(_jobs_page, ctx, 429, exc.said(ctx.lang))
    return redirect(ctx.request, f"{PREFIX}/jobs/{jid}")


@router.post("/jobs/monitor")
async def start_monitor(ctx: Annotated[Ctx, checked("jobs.monitor", max_part_size=_EVENTS_FORM)]) -> Response:
    """Change events (an uploaded JSON Lines file) against a caseload in the data folder."""
    service: Service = ctx.service
    sent = ctx.form.get("events") if ctx.form is not None else None
    if not isinstance(sent, UploadFile) or not sent.filename:
        if isinstance(sent, UploadFile):
            await sent.close()
        raise InputError([FieldProblem("events", ctx.t("jobs.no_events"))])
    source = await run_in_threadpool(service.server_path, ctx.field("caseload"), "caseload")
    events = await _upload(ctx, sent, service.settings.limits["events"], ".jsonl")
    try:
        jid = await run_in_threadpool(service.start_monitoring, source, events, ctx.user)
    except Busy as exc:
        events.unlink(missing_ok=True)
        return await run_in_threadpool(_jobs_page, ctx, 429, exc.said(ctx.lang))
    except BaseException:
        events.unlink(missing_ok=True)
        raise
    return redirect(ctx.request, f"{PREFIX}/jobs/{jid}")


def readable(value: Any, depth: int = 0) -> str:
    """A summary value as a line of text: counts per status read as ``a 3, b 2``.

    >>> readable({"dibao_status": {"eligible": 14, "ineligible": 7}, "ta_status": {"eligible": 5}})
    'dibao_status: eligible 14, ineligible 7; ta_status: eligible 5'
    """
    if isinstance(value, dict):
        if depth == 0:
            return "; ".join(f"{k}: {readable(v, 1)}" for k, v in value.items())
        return ", ".join(f"{k} {readable(v, 2)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(readable(v, depth + 1) for v in value)
    if value is None:
        return "—"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _job(ctx: Ctx, jid: int) -> dict[str, Any]:
    """The job as its page shows it, after the API's own-job check."""
    service: Service = ctx.service
    service.check_job(jid, ctx.user, ctx.page.access.own)
    job = service.job(jid)
    job["percent"] = percent(int(job["done"]), int(job["total"]), str(job["status"]))
    job["active"] = job["status"] in ("queued", "running")
    files = []
    if job["status"] == "done":
        for name in FILE_NAMES:
            try:
                files.append((name, service.job_file(jid, name).name))
            except NotFound:
                continue
    job["files"] = files
    job["summary_rows"] = [(k, readable(v)) for k, v in (job["summary"] or {}).items()]
    return job


@router.get("/jobs/{job_id}")
async def job_page(job_id: JobId, ctx: Annotated[Ctx, page("jobs.view")]) -> HTMLResponse:
    job = await run_in_threadpool(_job, ctx, job_id)
    return render(ctx, "job.html", job=job)


@router.get("/jobs/{job_id}/progress")
async def job_progress(job_id: JobId, ctx: Annotated[Ctx, page("jobs.view")]) -> HTMLResponse:
    """The job's part of the page alone: what htmx polls while the job runs."""
    job = await run_in_threadpool(_job, ctx, job_id)
    return render(ctx, "job_part.html", job=job)


@router.post("/jobs/{job_id}/cancel")
async def cancel(job_id: JobId, ctx: Annotated[Ctx, checked("jobs.cancel")]) -> Response:
    ctx.service.check_job(job_id, ctx.user, ctx.page.access.own)
    await run_in_threadpool(ctx.service.cancel, job_id)
    return redirect(ctx.request, f"{PREFIX}/jobs/{job_id}")


@router.get("/jobs/{job_id}/files/{name}")
async def job_file(
    job_id: JobId, name: Annotated[str, Path(max_length=40)], ctx: Annotated[Ctx, page("jobs.files")]
) -> Response:
    """A job's file: the impact report opens in the browser, every other file downloads."""
    if name not in FILE_NAMES:
        raise NotFound("api.not_found.file", name=name)
    ctx.service.check_job(job_id, ctx.user, ctx.page.access.own)
    path = await run_in_threadpool(ctx.service.job_file, job_id, name)
    if path.suffix == ".html":
        # the report is one self-contained page with its own inline styles and no script
        return FileResponse(
            path, media_type="text/html; charset=utf-8", headers={"Content-Security-Policy": _REPORT_CSP}
        )
    return FileResponse(path, filename=path.name)


@router.get("/jobs/{job_id}/rejects")
async def rejects(
    job_id: JobId,
    ctx: Annotated[Ctx, page("jobs.files")],
    p: Annotated[int, Query(alias="page", ge=1, le=1_000_000)] = 1,
) -> HTMLResponse:
    """The households a screening could not decide, a page at a time, with field and reason."""
    ctx.service.check_job(job_id, ctx.user, ctx.page.access.own)
    path = await run_in_threadpool(ctx.service.job_file, job_id, "rejects")
    found = await run_in_threadpool(rejects_page, path, p)
    return render(ctx, "job_rejects.html", jid=job_id, found=found, page_url=lambda n: f"?page={n}")


@router.get("/jobs/{job_id}/findings")
async def findings(job_id: JobId, ctx: Annotated[Ctx, page("jobs.findings")]) -> HTMLResponse:
    """A monitoring job's findings (a township officer sees those of their township only)."""
    found = await run_in_threadpool(ctx.service.monitor_findings, job_id, ctx.user)
    rows = [
        {
            "household_id": f.get("household_id"),
            "township": f.get("township"),
            "findings": f.get("findings") or [],
            "events": f.get("event_ids") or [],
            "changes": _changes(f.get("old"), f.get("new")),
        }
        for f in found[:1000]
    ]
    return render(ctx, "job_findings.html", jid=job_id, findings=rows, total=len(found))


def _changes(old: Any, new: Any) -> list[tuple[str, Any, Any]]:
    """(field, before, after) of what an event changed in a decision."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return []
    return [(k, old.get(k), new.get(k)) for k in dict.fromkeys([*old, *new]) if old.get(k) != new.get(k)]
