"""The HTTP service (FastAPI). Routes translate HTTP to the service and back; every error
class maps to one status here: 422 names the field, 401/403 the role, 404 the object,
409 the conflict, 413 the size. ``create_app(settings)`` does all the work; importing this
module does none."""

import contextlib
import datetime as dt
import json
import os
import tempfile
from collections.abc import AsyncIterator, Callable
from importlib import resources
from pathlib import Path as FilePath
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BeforeValidator

from api import accounts, workflow
from api.candidates import add_review_routes
from api.console import PREFIX as CONSOLE
from api.console import create_console, root_redirect
from api.http_safety import SafetyMiddleware
from api.jobs import Busy
from api.masking import mask_ids
from api.roles import Access, access
from api.service import (
    Conflict,
    Forbidden,
    NotFound,
    Refused,
    Service,
    Settings,
    disclosure_csv,
    disclosure_xlsx,
)
from api.store import User
from engine import (
    BadJson,
    BadValue,
    FieldProblem,
    InputError,
    JiuzhuError,
    Phrase,
    RuleLoadError,
    Said,
    error_codes,
    json_items,
    json_value,
    negotiate,
    parse_value,
    reason,
    reason_text,
)
from engine import text as catalogue_text

__all__ = ["create_app"]

IDEMPOTENCY = (
    "a key of your choosing (e.g. a UUID): a retry with the same key and body returns the decisions the first "
    "request stored (200) instead of storing them again; the same key with another body is 422"
)
Id = Annotated[int, Path(ge=1, le=2**62, description="a record number")]


def _lang(accept_language: str | None) -> str:
    """The reader's language: ``Accept-Language`` negotiated, Chinese by default (README, Languages)."""
    return negotiate(accept_language)


class JSON(JSONResponse):
    """Chinese stays readable (UTF-8, not escapes); encoded by orjson, several times faster than
    the standard library on a 30 KB explanation. Decimals and timestamps are written as
    `str` writes them, as before; what orjson cannot encode (an integer past 64 bits) falls
    back to the standard library."""

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content, default=str, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME)
        except (orjson.JSONEncodeError, TypeError):
            return json.dumps(content, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")

    @classmethod
    def pieces(cls, content: dict[str, Any], listed: str, status_code: int) -> Response:
        """``content`` with its list ``listed`` encoded item by item: one encoder call over a
        batch's tens of megabytes would hold the GIL, and the event loop, for its whole length."""
        encoder = cls(None)
        head = encoder.render({k: v for k, v in content.items() if k != listed})
        items = b",".join(encoder.render(item) for item in content[listed])
        body = head[:-1] + (b"," if len(head) > 2 else b"") + b'"' + listed.encode() + b'":[' + items + b"]}"
        return Response(body, status_code=status_code, media_type="application/json")


class TooLarge(Said):
    """413: a request body past its limit."""

    def __init__(self, limit: int, what: Phrase) -> None:
        super().__init__("api.too_large", limit=limit, what=what)


class Unauthorized(Said):
    """401: no token, or one the store does not know."""


_REQUEST = Phrase("api.what.request")

# the HTTP status of each refusal the catalogue words (a subclass: its nearest listed class)
_SAID_STATUS: dict[type[Said], int] = {
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    TooLarge: 413,
    Busy: 429,
}


def _said_status(exc: Said) -> int:
    return next((_SAID_STATUS[c] for c in type(exc).__mro__ if c in _SAID_STATUS), 400)


def _too_large(request: Request, limit: int, what: Phrase) -> None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(limit, what)


async def _body(request: Request, limit: int, what: Phrase = _REQUEST) -> bytes:
    """The request body, refused with 413 past ``limit`` bytes (before and while reading)."""
    _too_large(request, limit, what)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(limit, what)
        chunks.append(chunk)
    return b"".join(chunks)


async def _stream_to_file(request: Request, limit: int, what: Phrase, folder: FilePath, suffix: str) -> FilePath:
    """The request body streamed to a new file (mode 0600) in ``folder``, never whole in
    memory; refused with 413 past ``limit`` bytes, the partial file deleted."""
    _too_large(request, limit, what)
    fd, name = tempfile.mkstemp(dir=folder, suffix=suffix)
    path = FilePath(name)
    size = 0
    try:
        with os.fdopen(fd, "wb") as f:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise TooLarge(limit, what)
                f.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def _strict_date(value: Any) -> Any:
    """A date field of the API read as the engine reads one: YYYY-MM-DD, a sane year."""
    if isinstance(value, str):
        try:
            return parse_value("date", value)
        except BadValue as exc:
            raise ValueError(str(exc)) from None
    return value


StrictDate = Annotated[dt.date, BeforeValidator(_strict_date)]


def _date_field(body: dict[str, Any], name: str) -> dt.date | None:
    if body.get(name) is None:
        return None
    try:
        day: dt.date = parse_value("date", body[name])
    except BadValue as exc:
        raise InputError([FieldProblem(name, str(exc))]) from None
    return day


def _json(data: bytes, read: Callable[[str], Any] = json_value) -> Any:
    """A JSON body as the engine reads JSON: no depth or digit limit reached as a 500."""
    try:
        return read(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError([FieldProblem("(body)", catalogue_text("input.body_utf8", "en"))]) from None
    except BadJson as exc:
        raise InputError([FieldProblem("(body)", catalogue_text("input.body_json", "en", error=exc))]) from None


def _route_access(request: Request) -> Access:
    """The route's row in api/roles.py; a route missing there is closed to everyone."""
    route = request.scope.get("route")
    found = access(request.method, str(getattr(route, "path", "")))
    if found is None:
        raise Forbidden("api.no_route_role")
    return found


async def route_access(request: Request) -> Access:
    """Every route, public ones too, must have its row (an app-wide dependency)."""
    return _route_access(request)


# declared as an HTTP Bearer scheme, so /docs has an Authorize button that sends the token
_bearer = HTTPBearer(auto_error=False, description="the token `jiuzhu users add` printed")


async def guard(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> User:
    """The caller, if api/roles.py lets their role use this route."""
    allowed = _route_access(request)
    if credentials is None or not credentials.credentials.strip():
        raise Unauthorized("api.token_required")
    service: Service = request.app.state.service
    user = service.user_by_token(credentials.credentials.strip())  # cached for a moment: no thread hop
    if user is None:
        raise Unauthorized("api.token_unknown")
    request.state.user_id = user.id  # for the access log
    if not allowed.allows(user.role):
        raise Forbidden("api.role_forbidden", role=user.role, roles=" or ".join(allowed.roles))
    request.state.access = allowed
    return user


Caller = Annotated[User, Depends(guard)]


def create_app(settings: Settings) -> FastAPI:
    service = Service(settings)
    schema = service.ruleset(service.current_ruleset()).record.json_schema()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        service.close()  # what the ledger writer holds is written before the process ends

    app = FastAPI(
        lifespan=lifespan,
        default_response_class=JSON,
        title="jiuzhu 救助",
        description="Social assistance decisions, approvals, rule versions and registries for a Civil Affairs Bureau.",
        version="1.0",
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(route_access)],
    )
    app.state.service = service
    app.add_middleware(SafetyMiddleware)
    # the web console: its own pages and guard (api/console/), outside the API's route table
    app.mount(CONSOLE, create_console(service))
    app.add_route("/", root_redirect, include_in_schema=False)

    def _error(
        request: Request,
        status: int,
        message: str,
        errors: list[dict[str, Any]] | None = None,
        said: Said | None = None,
    ) -> JSONResponse:
        """An error body: the stable English ``detail`` (and each error's ``message``), the
        catalogue ``code`` and the ``text`` in the reader's language beside them; no absolute
        server path reaches the client."""
        return JSONResponse(error_body(request, message, errors, said), status_code=status)

    def error_body(
        request: Request, message: str, errors: list[dict[str, Any]] | None = None, said: Said | None = None
    ) -> dict[str, Any]:
        lang = _lang(request.headers.get("accept-language"))
        shown = []
        for e in errors or []:
            english = service.scrub(str(e.get("message", "")))
            shown.append({**e, "message": english, "code": reason(english).code, "text": reason_text(english, lang)})
        return {
            "detail": service.scrub(message),
            "code": said.key if said is not None else None,
            "text": service.scrub(said.said(lang)) if said is not None else service.scrub(message),
            "errors": shown,
        }

    # ------------------------------------------------------------ errors

    @app.exception_handler(InputError)
    async def input_error(request: Request, exc: InputError) -> JSONResponse:
        lang = _lang(request.headers.get("accept-language"))
        body = error_body(request, str(exc), [p.as_dict() for p in exc.problems])
        body["code"] = "api.invalid_input"
        shown = "; ".join(f"{e['field']}: {e['text']}" for e in body["errors"])
        body["text"] = shown or catalogue_text("api.invalid_input", lang)
        return JSONResponse(body, status_code=error_codes(exc).http_status)

    @app.exception_handler(RuleLoadError)
    async def rules_error(request: Request, exc: RuleLoadError) -> JSONResponse:
        status = error_codes(exc).http_status
        said = Said("lint.bundle_problems")
        return _error(request, status, str(said), [p.as_dict() for p in exc.problems], said)

    @app.exception_handler(JiuzhuError)
    async def engine_error(request: Request, exc: JiuzhuError) -> JSONResponse:
        return _error(request, error_codes(exc).http_status, str(exc))

    @app.exception_handler(Said)
    async def said_error(request: Request, exc: Said) -> JSONResponse:
        """A refusal worded by the catalogue: 401, 403, 404, 409, 413 or 429 by its class."""
        response = _error(request, _said_status(exc), str(exc), said=exc)
        if isinstance(exc, Busy):
            response.headers["Retry-After"] = str(exc.retry_after)
        if isinstance(exc, Unauthorized):
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> JSONResponse:
        body = {**error_body(request, str(exc), [p.as_dict() for p in exc.problems]), "report": exc.report}
        body["text"] = "; ".join(f"{e['field']}: {e['text']}" for e in body["errors"]) or body["text"]
        return JSON(body, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def request_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(x) for x in e.get("loc", ())), "message": e.get("msg", ""), "rule_id": None}
            for e in exc.errors()
        ]
        said = Said("api.invalid_request")
        return _error(request, 422, str(said), errors, said)

    # ------------------------------------------------------------ security

    household_body = {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
    batch_body = {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "array", "items": schema, "maxItems": 1000}}},
        }
    }

    # ------------------------------------------------------------ routes

    async def _off_loop(status: int, work: Callable[..., Any], *args: Any) -> JSONResponse:
        """``work(*args)`` and the rendering of its (large) answer, in a worker thread."""
        return await run_in_threadpool(lambda: JSON(work(*args), status_code=status))

    async def read_record(request: Request) -> Any:
        return _json(await _body(request, settings.limits["decision"], Phrase("api.what.record")))

    add_review_routes(app, service.reviews, guard, read_record, _lang)

    @app.get("/healthz", tags=["service"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/decisions", tags=["decisions"], status_code=201, openapi_extra=household_body)
    async def post_decision(
        request: Request,
        user: Caller,
        accept_language: Annotated[str | None, Header()] = None,
        explain: Annotated[
            str | None, Query(pattern="^text$", description="`text`: add the explanation as an officer reads it")
        ] = None,
        idempotency_key: Annotated[str | None, Header(description=IDEMPOTENCY)] = None,
    ) -> JSONResponse:
        raw = _json(await _body(request, settings.limits["decision"], Phrase("api.what.household")))
        lang = _lang(accept_language)
        warm = None if idempotency_key else service.decide_warm(raw, user)
        if warm is not None:  # deciding is ~0.1 ms: here; the loop awaits the ledger writer's commit
            (rec,) = await service.writer.from_loop(service.submission([warm[0]], user, None))
            return JSON(service.present(rec, warm[1], lang, text=explain == "text", approvals=False), status_code=201)

        # a ruleset to compile first, or a key to look up: in a worker thread, answer rendered there too
        def decide() -> JSONResponse:
            fresh, out = service.decide_once(raw, user, lang, explain == "text", idempotency_key)
            return JSON(out, status_code=201 if fresh else 200)

        return await run_in_threadpool(decide)

    @app.post("/v1/decisions/batch", tags=["decisions"], status_code=201, openapi_extra=batch_body)
    async def post_batch(
        request: Request,
        user: Caller,
        accept_language: Annotated[str | None, Header()] = None,
        idempotency_key: Annotated[str | None, Header(description=IDEMPOTENCY)] = None,
    ) -> Response:
        data = await _body(request, settings.limits["batch"], Phrase("api.what.batch"))
        # parsing, deciding, storing and rendering run in a worker thread: the loop keeps answering
        return await run_in_threadpool(_batch, data, user, _lang(accept_language), idempotency_key)

    def _batch(data: bytes, user: User, lang: str, key: str | None) -> Response:
        raw = _json(data, json_items)  # item by item: the event loop gets its turns meanwhile
        if not isinstance(raw, list) or not raw:
            raise InputError([FieldProblem("(body)", catalogue_text("input.batch_empty", "en"))])
        if len(raw) > 1000:
            raise InputError(
                [FieldProblem("(body)", catalogue_text("input.batch_max", "en", bound=1000, got=len(raw)))]
            )
        fresh, out = service.decide_batch(raw, user, lang, key=key)
        return JSON.pieces(out, "results", status_code=201 if fresh else 200)

    @app.get("/v1/decisions", tags=["decisions"])
    async def search_decisions(
        request: Request,
        user: Caller,
        household_id: Annotated[str | None, Query(max_length=200)] = None,
        person_id: Annotated[str | None, Query(max_length=64)] = None,
        name: Annotated[str | None, Query(max_length=100, description="a member's name, spaces ignored")] = None,
        township: Annotated[str | None, Query(max_length=200)] = None,
        status: Annotated[str | None, Query(pattern="^(pending|approved|rejected)$")] = None,
        since: Annotated[str | None, Query(alias="from", max_length=10, description="decision date YYYY-MM-DD")] = None,
        until: Annotated[str | None, Query(alias="to", max_length=10, description="decision date YYYY-MM-DD")] = None,
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    ) -> dict[str, Any]:
        params = {
            "household_id": household_id,
            "person_id": person_id,
            "name": name,
            "township": township,
            "status": status,
            "from": since,
            "to": until,
        }
        masked = user.role in request.state.access.masked
        return workflow.search(service, user, params, page, masked)

    @app.get("/v1/approvals/pending", tags=["approvals"])
    async def pending_approvals(user: Caller, page: Annotated[int, Query(ge=1, le=1_000_000)] = 1) -> dict[str, Any]:
        return workflow.pending(service, user, page)

    def _shown(request: Request, user: User, answer: dict[str, Any]) -> dict[str, Any]:
        """An answer as the caller's role reads it: resident IDs masked for the roles the
        route masks (the children and ability lists and the explanation alike)."""
        masked: bool = user.role in request.state.access.masked
        return mask_ids(answer) if masked else answer

    @app.get("/v1/decisions/{decision_id}", tags=["decisions"])
    async def get_decision(
        request: Request,
        decision_id: Id,
        user: Caller,
        accept_language: Annotated[str | None, Header()] = None,
        explain: Annotated[
            str | None, Query(pattern="^text$", description="`text`: add the explanation as an officer reads it")
        ] = None,
    ) -> JSONResponse:
        lang, text = _lang(accept_language), explain == "text"
        return await _off_loop(200, lambda: _shown(request, user, service.get(decision_id, lang, text, user)))

    @app.get("/v1/decisions/{decision_id}/replay", tags=["decisions"])
    async def replay(request: Request, decision_id: Id, user: Caller) -> dict[str, Any]:
        return _shown(request, user, await run_in_threadpool(service.replay, decision_id, user))

    async def _note(request: Request) -> str:
        data = await _body(request, 64 * 1024)
        if not data:
            return ""
        body = _json(data)
        if not isinstance(body, dict) or not isinstance(body.get("note", ""), str):
            raise InputError([FieldProblem("note", catalogue_text("input.note", "en"))])
        return str(body.get("note", ""))

    note_body = {
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": {"type": "object", "properties": {"note": {"type": "string"}}}}},
        }
    }

    @app.post("/v1/decisions/{decision_id}/approve", tags=["approvals"], status_code=201, openapi_extra=note_body)
    async def approve(decision_id: Id, request: Request, user: Caller) -> dict[str, Any]:
        return await run_in_threadpool(service.approve, decision_id, user, "approve", await _note(request))

    @app.post("/v1/decisions/{decision_id}/reject", tags=["approvals"], status_code=201, openapi_extra=note_body)
    async def reject(decision_id: Id, request: Request, user: Caller) -> dict[str, Any]:
        return await run_in_threadpool(service.approve, decision_id, user, "reject", await _note(request))

    @app.get("/v1/rulesets", tags=["rules"])
    async def list_rulesets(
        user: Caller,
    ) -> list[dict[str, Any]]:
        return [
            {
                **r,
                "effective_from": r["effective_from"].isoformat(),
                "created_at": r["created_at"].isoformat() if r["created_at"] else None,
            }
            for r in await run_in_threadpool(service.store.rulesets)
        ]

    @app.get("/v1/rulesets/{ruleset_id}/rules", tags=["rules"])
    async def list_rules(ruleset_id: Id, user: Caller) -> list[dict[str, Any]]:
        return await run_in_threadpool(service.rules_of, ruleset_id)

    bundle_body = {
        "requestBody": {
            "required": True,
            "description": "a .zip of the rules folder, sent as application/zip or application/octet-stream",
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    }

    @app.post("/v1/rulesets", tags=["rules"], status_code=201, openapi_extra=bundle_body)
    async def publish(
        request: Request,
        user: Caller,
        effective_from: Annotated[StrictDate, Query(description="first decision date the new rules apply to")],
    ) -> dict[str, Any]:
        data = await _body(request, settings.limits["rules"], Phrase("api.what.bundle"))
        # checked in a worker process; this thread waits for it, the event loop does not
        return await run_in_threadpool(service.publish, data, effective_from, user)

    @app.post("/v1/rulesets/{ruleset_id}/rollback", tags=["rules"])
    async def rollback(ruleset_id: Id, user: Caller) -> dict[str, Any]:
        return await run_in_threadpool(service.rollback, ruleset_id, user)

    @app.post("/v1/rulesets/{ruleset_id}/reinstate", tags=["rules"])
    async def reinstate(ruleset_id: Id, user: Caller) -> dict[str, Any]:
        return await run_in_threadpool(service.reinstate, ruleset_id, user)

    csv_body = {"requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}}

    @app.put("/v1/registries/{name}", tags=["registries"], openapi_extra=csv_body)
    async def put_registry(
        name: str,
        request: Request,
        user: Caller,
        accept_partial: Annotated[bool, Query(description="store the version even if some rows are rejected")] = False,
        allow_empty: Annotated[bool, Query(description="store the version even if no row is left")] = False,
    ) -> dict[str, Any]:
        data = await _body(request, settings.limits["registry"], Phrase("api.what.registry"))
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError([FieldProblem("(body)", catalogue_text("input.csv_utf8", "en"))]) from None
        return await run_in_threadpool(
            lambda: service.upload_registry(name, text, user, accept_partial=accept_partial, allow_empty=allow_empty)
        )

    @app.get("/v1/registries", tags=["registries"])
    async def registries(user: Caller) -> dict[str, Any]:
        return {
            n: {"version_id": r["id"], "version": r["version"], "rows": r["rows"]}
            for n, r in (await run_in_threadpool(service.all_registry_versions)).items()
        }

    screening_body = {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "path": {"type": "string"},
                            "date": {"type": "string", "format": "date"},
                            "format": {"enum": ["parquet", "csv", "xlsx"]},
                        },
                        "required": ["path"],
                    }
                },
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        }
    }

    @app.post("/v1/screenings", tags=["screenings"], status_code=202, openapi_extra=screening_body)
    async def start_screening(request: Request, user: Caller) -> dict[str, Any]:
        kind = request.headers.get("content-type", "").split(";")[0].strip()
        fmt = "parquet"
        if kind == "application/x-ndjson":
            folder = service.upload_folder()
            upload = await _stream_to_file(
                request, settings.limits["caseload"], Phrase("api.what.caseload"), folder, ".jsonl"
            )
            try:
                jid = await run_in_threadpool(service.start_screening, upload, user, None, fmt, True)
            except BaseException:
                upload.unlink(missing_ok=True)
                raise
            return {"id": jid, "status": "queued"}
        body = _json(await _body(request, 64 * 1024, Phrase("api.what.screening")))
        if not isinstance(body, dict) or not isinstance(body.get("path"), str):
            raise InputError([FieldProblem("path", catalogue_text("input.caseload_or_upload", "en"))])
        source = await run_in_threadpool(service.server_path, body["path"], "path")
        date = _date_field(body, "date")
        fmt = str(body.get("format", "parquet"))
        if fmt not in ("parquet", "csv", "xlsx"):
            raise InputError(
                [FieldProblem("format", catalogue_text("input.formats", "en", formats="parquet, csv or xlsx"))]
            )
        jid = await run_in_threadpool(service.start_screening, source, user, date, fmt)
        return {"id": jid, "status": "queued"}

    @app.get("/v1/screenings/{job_id}", tags=["screenings"])
    async def screening(job_id: Id, request: Request, user: Caller) -> dict[str, Any]:
        service.check_job(job_id, user, request.state.access.own)
        return await run_in_threadpool(service.job, job_id)

    @app.post("/v1/screenings/{job_id}/cancel", tags=["screenings"])
    async def cancel_job(job_id: Id, request: Request, user: Caller) -> dict[str, Any]:
        """Cancel a queued or running job (a screening, monitoring or impact job); its
        uploads are deleted. A screening stops after its current chunk."""
        service.check_job(job_id, user, request.state.access.own)
        return await run_in_threadpool(service.cancel, job_id)

    @app.post("/v1/screenings/{job_id}/resume", tags=["screenings"], status_code=202)
    async def resume_job(job_id: Id, user: Caller) -> dict[str, Any]:
        """Start again a screening a stopped server left failed (`resumable: true`); the
        chunks it had finished are kept."""
        jid = await run_in_threadpool(service.resume, job_id, user)
        return {"id": jid, "status": "queued"}

    @app.get("/v1/screenings/{job_id}/files/{name}", tags=["screenings"])
    async def screening_file(job_id: Id, name: str, request: Request, user: Caller) -> FileResponse:
        service.check_job(job_id, user, request.state.access.own)
        if name not in (
            "decisions",
            "rejects",
            "summary",
            "transitions",
            "changes",
            "budget",
            "report",
            "findings",
            "rejected_events",
        ):
            raise NotFound("api.not_found.file", name=name)
        path = await run_in_threadpool(service.job_file, job_id, name)
        return FileResponse(path, filename=path.name)

    events_body = {
        "requestBody": {
            "required": True,
            "description": "JSON Lines: one event object per line (sent as application/x-ndjson or text/plain)",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    }

    @app.post("/v1/events", tags=["events"], status_code=202, openapi_extra=events_body)
    async def post_events(
        request: Request,
        user: Caller,
        caseload: Annotated[
            str, Query(description="the caseload (a .jsonl file or a folder of tables) in the data folder")
        ],
    ) -> dict[str, Any]:
        source = await run_in_threadpool(service.server_path, caseload, "caseload")
        folder = service.upload_folder()
        events = await _stream_to_file(request, settings.limits["events"], Phrase("api.what.events"), folder, ".jsonl")
        try:
            jid = await run_in_threadpool(service.start_monitoring, source, events, user)
        except BaseException:
            events.unlink(missing_ok=True)
            raise
        return {"id": jid, "status": "queued"}

    @app.get("/v1/events/{job_id}/findings", tags=["events"])
    async def event_findings(job_id: Id, user: Caller) -> list[dict[str, Any]]:
        return await run_in_threadpool(service.monitor_findings, job_id, user)

    impact_body = {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "caseload": {"type": "string"},
                            "head_ruleset_id": {"type": "integer", "minimum": 1},
                            "set": {"type": "array", "items": {"type": "string"}},
                            "date": {"type": "string", "format": "date"},
                        },
                        "required": ["caseload"],
                    }
                }
            },
        }
    }

    @app.post("/v1/impact", tags=["impact"], status_code=202, openapi_extra=impact_body)
    async def post_impact(request: Request, user: Caller) -> dict[str, Any]:
        body = _json(await _body(request, 64 * 1024, Phrase("api.what.impact")))
        if not isinstance(body, dict) or not isinstance(body.get("caseload"), str):
            raise InputError([FieldProblem("caseload", catalogue_text("input.caseload_path", "en"))])
        sets = body.get("set") or []
        if not isinstance(sets, list) or not all(isinstance(x, str) for x in sets):
            raise InputError([FieldProblem("set", catalogue_text("input.settings", "en"))])
        head = body.get("head_ruleset_id")
        if head is not None and (not isinstance(head, int) or isinstance(head, bool) or head < 1 or head > 2**62):
            raise InputError([FieldProblem("head_ruleset_id", catalogue_text("input.ruleset_id", "en"))])
        day = _date_field(body, "date")
        source = await run_in_threadpool(service.server_path, body["caseload"], "caseload")
        jid = await run_in_threadpool(service.start_impact, source, user, head, sets, day)
        return {"id": jid, "status": "queued"}

    @app.get("/v1/disclosure", tags=["disclosure"])
    async def disclosure(
        user: Caller,
        since: Annotated[StrictDate, Query(alias="from")],
        until: Annotated[StrictDate, Query(alias="to")],
        fmt: Annotated[str, Query(alias="format", pattern="^(csv|xlsx)$")] = "csv",
        accept_language: Annotated[str | None, Header()] = None,
    ) -> Response:
        """The public notice of approvals (行政执法公示), in Chinese unless Accept-Language asks for English."""
        lang = _lang(accept_language)
        columns, rows = await run_in_threadpool(service.disclosure, since, until, lang)
        if fmt == "xlsx":
            return Response(
                await run_in_threadpool(disclosure_xlsx, columns, rows, lang),
                media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                headers={"Content-Disposition": 'attachment; filename="disclosure.xlsx"'},
            )
        return Response(
            disclosure_csv(columns, rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="disclosure.csv"'},
        )

    @app.get("/v1/users", tags=["users"])
    async def list_users(user: Caller) -> list[dict[str, Any]]:
        """Every user, role, township, token expiry and revocation; never a token."""
        return accounts.list_users(service.store)

    @app.post("/v1/users/{name}/revoke", tags=["users"])
    async def revoke_user(name: Annotated[str, Path(max_length=100)], user: Caller) -> dict[str, Any]:
        if not accounts.revoke_user(service.store, name):
            raise NotFound("api.not_found.user", name=name)
        service.tokens.clear()  # at once here; other servers' caches within a second
        return {"name": name, "revoked": True}

    # ------------------------------------------------------------ offline docs

    # Swagger UI's files come from a pinned PyPI package (fastapi-offline, MIT), not a CDN
    assets = resources.files("fastapi_offline") / "static"
    app.mount("/docs/assets", StaticFiles(directory=str(assets)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} – API",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/docs/assets/favicon.png",
            swagger_ui_parameters={"persistAuthorization": True},
        )

    return app


SETTINGS_ENV = "JIUZHU_SERVE_SETTINGS"


def app_from_environment() -> FastAPI:
    """The app of one `jiuzhu serve --workers N` worker process, from the settings the parent
    process put in the environment (uvicorn starts workers from an import string)."""
    import os
    from pathlib import Path as FilePath

    from api.http_safety import configure_logging

    raw = json.loads(os.environ[SETTINGS_ENV])
    configure_logging()
    settings = Settings(raw["db_url"], FilePath(raw["rules_dir"]), FilePath(raw["data_dir"]))
    settings.limits.update(raw.get("limits") or {})
    return create_app(settings)
