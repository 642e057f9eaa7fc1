"""The HTTP service (FastAPI). Routes translate HTTP to the service and back; every error
class maps to one status here: 422 names the field, 401/403 the role, 404 the object,
409 the conflict, 413 the size. ``create_app(settings)`` does all the work; importing this
module does none."""

import datetime as dt
import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response

from api import accounts
from api.service import Conflict, Forbidden, NotFound, Service, Settings, disclosure_csv, disclosure_xlsx, unpack_bundle
from api.store import User
from engine import FieldProblem, InputError, JiuzhuError, RuleLoadError, error_codes

__all__ = ["create_app"]

ROLES = ("officer", "policy", "data", "auditor", "admin")
IDEMPOTENCY = (
    "a key of your choosing (e.g. a UUID): a retry with the same key and body returns the decisions the first "
    "request stored (200) instead of storing them again; the same key with another body is 422"
)
Id = Annotated[int, Path(ge=1, le=2**62, description="a record number")]


def _lang(accept_language: str | None) -> str:
    if accept_language and accept_language.strip().lower().startswith("en"):
        return "en"
    return "zh"


class JSON(JSONResponse):
    """Chinese stays readable; no re-encoding pass over the (large) decision."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")


def _error(status: int, message: str, errors: list[dict[str, Any]] | None = None) -> JSONResponse:
    return JSONResponse({"detail": message, "errors": errors or []}, status_code=status)


class TooLarge(Exception):
    def __init__(self, limit: int) -> None:
        self.limit = limit


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past ``limit`` bytes (before and while reading)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _date_field(body: dict[str, Any], name: str) -> dt.date | None:
    if body.get(name) is None:
        return None
    try:
        return dt.date.fromisoformat(str(body[name]))
    except ValueError:
        raise InputError([FieldProblem(name, "must be a date YYYY-MM-DD")]) from None


def _json(data: bytes) -> Any:
    try:
        return json.loads(data, parse_float=Decimal)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError([FieldProblem("(body)", f"is not valid JSON: {exc}")]) from None


def create_app(settings: Settings) -> FastAPI:
    service = Service(settings)
    schema = service.ruleset(service.ruleset_for(dt.date.today())).record.json_schema()
    app = FastAPI(
        default_response_class=JSON,
        title="jiuzhu 救助",
        description="Social assistance decisions, approvals, rule versions and registries for a Civil Affairs Bureau.",
        version="1.0",
    )
    app.state.service = service

    # ------------------------------------------------------------ errors

    @app.exception_handler(InputError)
    async def input_error(_: Request, exc: InputError) -> JSONResponse:
        return _error(error_codes(exc).http_status, str(exc), [p.as_dict() for p in exc.problems])

    @app.exception_handler(RuleLoadError)
    async def rules_error(_: Request, exc: RuleLoadError) -> JSONResponse:
        status = error_codes(exc).http_status
        return _error(status, "the rules bundle has problems", [p.as_dict() for p in exc.problems])

    @app.exception_handler(JiuzhuError)
    async def engine_error(_: Request, exc: JiuzhuError) -> JSONResponse:
        return _error(error_codes(exc).http_status, str(exc))

    @app.exception_handler(TooLarge)
    async def too_large(_: Request, exc: TooLarge) -> JSONResponse:
        return _error(413, f"the request body is larger than {exc.limit} bytes")

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> JSONResponse:
        return _error(404, f"{exc} not found")

    @app.exception_handler(Forbidden)
    async def forbidden(_: Request, exc: Forbidden) -> JSONResponse:
        return _error(403, str(exc))

    @app.exception_handler(Conflict)
    async def conflict(_: Request, exc: Conflict) -> JSONResponse:
        return _error(409, str(exc))

    @app.exception_handler(RequestValidationError)
    async def request_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(x) for x in e.get("loc", ())), "message": e.get("msg", ""), "rule_id": None}
            for e in exc.errors()
        ]
        return _error(422, "invalid request", errors)

    # ------------------------------------------------------------ security

    def require(*roles: str) -> Callable[..., Awaitable[User]]:
        async def check(authorization: Annotated[str | None, Header()] = None) -> User:
            if not authorization or not authorization.lower().startswith("bearer "):
                raise HTTPException(401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"})
            user = service.store.user_by_token(authorization[7:].strip())
            if user is None:
                raise HTTPException(401, "unknown token", headers={"WWW-Authenticate": "Bearer"})
            if user.role != "admin" and user.role not in roles:
                raise HTTPException(403, f"role {user.role} may not do this; needs {' or '.join(roles)}")
            return user

        return check

    household_body = {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
    batch_body = {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "array", "items": schema, "maxItems": 1000}}},
        }
    }

    # ------------------------------------------------------------ routes

    @app.get("/healthz", tags=["service"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/decisions", tags=["decisions"], status_code=201, openapi_extra=household_body)
    async def post_decision(
        request: Request,
        user: Annotated[User, Depends(require("officer", "data"))],
        accept_language: Annotated[str | None, Header()] = None,
        explain: Annotated[
            str | None, Query(pattern="^text$", description="`text`: add the explanation as an officer reads it")
        ] = None,
        idempotency_key: Annotated[str | None, Header(description=IDEMPOTENCY)] = None,
    ) -> JSONResponse:
        raw = _json(await _body(request, settings.limits["decision"]))
        lang = _lang(accept_language)
        fresh, out = service.decide_once(raw, user, lang, text=explain == "text", key=idempotency_key)
        return JSON(out, status_code=201 if fresh else 200)

    @app.post("/v1/decisions/batch", tags=["decisions"], status_code=201, openapi_extra=batch_body)
    async def post_batch(
        request: Request,
        user: Annotated[User, Depends(require("officer", "data"))],
        accept_language: Annotated[str | None, Header()] = None,
        idempotency_key: Annotated[str | None, Header(description=IDEMPOTENCY)] = None,
    ) -> JSONResponse:
        raw = _json(await _body(request, settings.limits["batch"]))
        if not isinstance(raw, list) or not raw:
            raise InputError([FieldProblem("(body)", "must be a non-empty JSON array of households")])
        if len(raw) > 1000:
            raise InputError([FieldProblem("(body)", f"at most 1000 households per batch (got {len(raw)})")])
        fresh, out = service.decide_batch(raw, user, _lang(accept_language), key=idempotency_key)
        return JSON(out, status_code=201 if fresh else 200)

    @app.get("/v1/decisions/{decision_id}", tags=["decisions"])
    async def get_decision(
        decision_id: Id,
        user: Annotated[User, Depends(require("officer", "auditor", "data"))],
        accept_language: Annotated[str | None, Header()] = None,
        explain: Annotated[
            str | None, Query(pattern="^text$", description="`text`: add the explanation as an officer reads it")
        ] = None,
    ) -> JSONResponse:
        return JSON(service.get(decision_id, _lang(accept_language), text=explain == "text"))

    @app.get("/v1/decisions/{decision_id}/replay", tags=["decisions"])
    async def replay(decision_id: Id, user: Annotated[User, Depends(require("officer", "auditor"))]) -> dict[str, Any]:
        return service.replay(decision_id)

    async def _note(request: Request) -> str:
        data = await _body(request, 64 * 1024)
        if not data:
            return ""
        body = _json(data)
        if not isinstance(body, dict) or not isinstance(body.get("note", ""), str):
            raise InputError([FieldProblem("note", 'send {"note": "..."}')])
        return str(body.get("note", ""))

    note_body = {
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": {"type": "object", "properties": {"note": {"type": "string"}}}}},
        }
    }

    @app.post("/v1/decisions/{decision_id}/approve", tags=["approvals"], status_code=201, openapi_extra=note_body)
    async def approve(
        decision_id: Id, request: Request, user: Annotated[User, Depends(require("officer"))]
    ) -> dict[str, Any]:
        return service.approve(decision_id, user, "approve", await _note(request))

    @app.post("/v1/decisions/{decision_id}/reject", tags=["approvals"], status_code=201, openapi_extra=note_body)
    async def reject(
        decision_id: Id, request: Request, user: Annotated[User, Depends(require("officer"))]
    ) -> dict[str, Any]:
        return service.approve(decision_id, user, "reject", await _note(request))

    @app.get("/v1/rulesets", tags=["rules"])
    async def list_rulesets(
        user: Annotated[User, Depends(require("policy", "officer", "auditor", "data"))],
    ) -> list[dict[str, Any]]:
        return [
            {
                **r,
                "effective_from": r["effective_from"].isoformat(),
                "created_at": r["created_at"].isoformat() if r["created_at"] else None,
            }
            for r in service.store.rulesets()
        ]

    @app.get("/v1/rulesets/{ruleset_id}/rules", tags=["rules"])
    async def list_rules(
        ruleset_id: Id, user: Annotated[User, Depends(require("policy", "officer", "auditor", "data"))]
    ) -> list[dict[str, Any]]:
        return service.rules_of(ruleset_id)

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
        user: Annotated[User, Depends(require("policy"))],
        effective_from: Annotated[dt.date, Query(description="first decision date the new rules apply to")],
    ) -> dict[str, Any]:
        files = unpack_bundle(await _body(request, settings.limits["rules"]))
        return service.publish(files, effective_from, user)

    @app.post("/v1/rulesets/{ruleset_id}/rollback", tags=["rules"])
    async def rollback(ruleset_id: Id, user: Annotated[User, Depends(require("policy"))]) -> dict[str, Any]:
        return service.rollback(ruleset_id, user)

    csv_body = {"requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}}

    @app.put("/v1/registries/{name}", tags=["registries"], openapi_extra=csv_body)
    async def put_registry(
        name: str, request: Request, user: Annotated[User, Depends(require("data"))]
    ) -> dict[str, Any]:
        data = await _body(request, settings.limits["registry"])
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError([FieldProblem("(body)", "must be UTF-8 CSV text")]) from None
        return service.upload_registry(name, text, user)

    @app.get("/v1/registries", tags=["registries"])
    async def registries(user: Annotated[User, Depends(require("data", "officer", "auditor"))]) -> dict[str, Any]:
        return {
            n: {"version_id": r["id"], "version": r["version"], "rows": r["rows"]}
            for n, r in service.registry_versions().items()
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
    async def start_screening(request: Request, user: Annotated[User, Depends(require("data"))]) -> dict[str, Any]:
        kind = request.headers.get("content-type", "").split(";")[0].strip()
        date: dt.date | None = None
        fmt = "parquet"
        if kind == "application/x-ndjson":
            source = service.stash_upload(await _body(request, settings.limits["caseload"]))
        else:
            body = _json(await _body(request, 64 * 1024))
            if not isinstance(body, dict) or not isinstance(body.get("path"), str):
                raise InputError(
                    [FieldProblem("path", "give a caseload path inside the data folder, or upload JSON Lines")]
                )
            source = service.server_path(body["path"])
            date = _date_field(body, "date")
            fmt = str(body.get("format", "parquet"))
            if fmt not in ("parquet", "csv", "xlsx"):
                raise InputError([FieldProblem("format", "use parquet, csv or xlsx")])
        jid = service.start_screening(source, user, date, fmt)
        return {"id": jid, "status": "queued"}

    @app.get("/v1/screenings/{job_id}", tags=["screenings"])
    async def screening(job_id: Id, user: Annotated[User, Depends(require("data", "auditor"))]) -> dict[str, Any]:
        return service.job(job_id)

    @app.get("/v1/screenings/{job_id}/files/{name}", tags=["screenings"])
    async def screening_file(
        job_id: Id, name: str, user: Annotated[User, Depends(require("data", "auditor"))]
    ) -> FileResponse:
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
            raise NotFound(f"file {name}")
        path = service.job_file(job_id, name)
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
        user: Annotated[User, Depends(require("data"))],
        caseload: Annotated[
            str, Query(description="the caseload (a .jsonl file or a folder of tables) in the data folder")
        ],
    ) -> dict[str, Any]:
        source = service.server_path(caseload)
        jid = service.start_monitoring(source, await _body(request, settings.limits["caseload"]), user)
        return {"id": jid, "status": "queued"}

    @app.get("/v1/events/{job_id}/findings", tags=["events"])
    async def event_findings(
        job_id: Id, user: Annotated[User, Depends(require("officer", "data", "auditor"))]
    ) -> list[dict[str, Any]]:
        return service.monitor_findings(job_id)

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
    async def post_impact(request: Request, user: Annotated[User, Depends(require("policy"))]) -> dict[str, Any]:
        body = _json(await _body(request, 64 * 1024))
        if not isinstance(body, dict) or not isinstance(body.get("caseload"), str):
            raise InputError([FieldProblem("caseload", "give a caseload path inside the data folder")])
        sets = body.get("set") or []
        if not isinstance(sets, list) or not all(isinstance(x, str) for x in sets):
            raise InputError([FieldProblem("set", "a list of PARAM=VALUE@YYYY-MM-DD")])
        head = body.get("head_ruleset_id")
        if head is not None and (not isinstance(head, int) or isinstance(head, bool) or head < 1 or head > 2**62):
            raise InputError([FieldProblem("head_ruleset_id", "a published ruleset id")])
        jid = service.start_impact(service.server_path(body["caseload"]), user, head, sets, _date_field(body, "date"))
        return {"id": jid, "status": "queued"}

    @app.get("/v1/disclosure", tags=["disclosure"])
    async def disclosure(
        user: Annotated[User, Depends(require("auditor", "officer"))],
        since: Annotated[dt.date, Query(alias="from")],
        until: Annotated[dt.date, Query(alias="to")],
        fmt: Annotated[str, Query(alias="format", pattern="^(csv|xlsx)$")] = "csv",
    ) -> Response:
        columns, rows = service.disclosure(since, until)
        if fmt == "xlsx":
            return Response(
                disclosure_xlsx(columns, rows),
                media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                headers={"Content-Disposition": 'attachment; filename="disclosure.xlsx"'},
            )
        return Response(
            disclosure_csv(columns, rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="disclosure.csv"'},
        )

    @app.get("/v1/users", tags=["users"])
    async def list_users(user: Annotated[User, Depends(require("admin"))]) -> list[dict[str, Any]]:
        """Every user, role, township, token expiry and revocation; never a token."""
        return accounts.list_users(service.store)

    @app.post("/v1/users/{name}/revoke", tags=["users"])
    async def revoke_user(
        name: Annotated[str, Path(max_length=100)], user: Annotated[User, Depends(require("admin"))]
    ) -> dict[str, Any]:
        if not accounts.revoke_user(service.store, name):
            raise NotFound(f"active user {name}")
        return {"name": name, "revoked": True}

    return app


SETTINGS_ENV = "JIUZHU_SERVE_SETTINGS"


def app_from_environment() -> FastAPI:
    """The app of one `jiuzhu serve --workers N` worker process, from the settings the parent
    process put in the environment (uvicorn starts workers from an import string)."""
    import logging
    import os
    from pathlib import Path as FilePath

    from api.masking import IdMaskingFilter

    raw = json.loads(os.environ[SETTINGS_ENV])
    for name in ("", "uvicorn", "uvicorn.access", "uvicorn.error"):
        logging.getLogger(name).addFilter(IdMaskingFilter())
    optional = {k: FilePath(raw[k]) if raw.get(k) else None for k in ("relatives", "filings")}
    return create_app(
        Settings(
            raw["db_url"],
            FilePath(raw["rules_dir"]),
            FilePath(raw["data_dir"]),
            optional["relatives"],
            optional["filings"],
        )
    )
