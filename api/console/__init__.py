"""The web console: server-rendered pages (Jinja2, htmx served from here) over the same service,
roles and township scoping as the API. ``create_console(service)`` is mounted at /console by
api/app.py; each screen is a module of ``api.console.screens`` with its own router."""

from __future__ import annotations

import importlib
import secrets
import time
from importlib import resources
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from api.console.pages import (
    PREFIX,
    Ctx,
    Page,
    SignInNeeded,
    arrange,
    checked,
    home_of,
    lang_of,
    page,
    redirect,
    register,
    render,
    render_bare,
    safe_next,
    sign_in_redirect,
)
from api.console.session import COOKIE, PRE_COOKIE, Sessions, signing_key
from api.roles import ROLES
from api.service import Conflict, Forbidden, NotFound, Refused, Service
from engine import InputError, JiuzhuError, Said, reason_text

__all__ = ["PREFIX", "SCREENS", "create_console"]

# one module per screen under api/console/screens/, each with `router` (and its pages registered)
SCREENS = (
    "inbox",
    "search",
    "decision",
    "new",
    "audit",
    # screens 5-8
    "rules",
    "workspace",
    "jobs",
    "registries",
)


register(Page("account", "/account", roles=ROLES))  # who is signed in, and signing out: every role


def create_console(service: Service) -> FastAPI:
    console = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    console.state.service = service
    console.state.sessions = Sessions(service.store, signing_key(service.settings.data_dir))
    static = resources.files("api.console") / "static"
    console.mount("/static", StaticFiles(directory=str(static)), name="static")
    modules = [f"api.console.screens.{name}" for name in SCREENS]
    for module in modules:
        console.include_router(importlib.import_module(module).router)
    arrange(modules)
    _errors(console)

    @console.get("/", include_in_schema=False)
    async def start(request: Request) -> Response:
        sessions: Sessions = console.state.sessions
        found = await run_in_threadpool(sessions.session, request.cookies.get(COOKIE))
        return redirect(request, home_of(found.user) if found else f"{PREFIX}/signin")

    @console.get("/signin", include_in_schema=False)
    async def signin_form(request: Request, next: Annotated[str | None, Query(max_length=500)] = None) -> Response:
        return _signin_page(request, next, None, 200)

    @console.post("/signin", include_in_schema=False)
    async def signin(request: Request) -> Response:
        sessions: Sessions = console.state.sessions
        form = await request.form(max_files=0, max_fields=10, max_part_size=4096)
        pre = request.cookies.get(PRE_COOKIE)
        sent = form.get("csrf")
        if not sessions.csrf_ok(pre, sent if isinstance(sent, str) else None):
            return _signin_page(request, None, "error.csrf", 403)
        token = form.get("token")
        back = form.get("next")
        found = await run_in_threadpool(sessions.sign_in, token) if isinstance(token, str) and token.strip() else None
        if found is None:
            return _signin_page(request, back if isinstance(back, str) else None, "signin.bad_token", 401)
        response = redirect(request, safe_next(back if isinstance(back, str) else None) or home_of(found.user))
        response.set_cookie(
            COOKIE,
            found.cookie,
            max_age=max(1, found.ends - int(time.time())),
            path=PREFIX,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        response.delete_cookie(PRE_COOKIE, path=PREFIX, httponly=True, samesite="strict")
        return response

    @console.get("/account", include_in_schema=False)
    async def account(ctx: Annotated[Ctx, page("account")]) -> Response:
        return render(ctx, "account.html", ends=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ctx.session.ends)))

    @console.post("/signout", include_in_schema=False)
    async def signout(request: Request, ctx: Annotated[Ctx, checked("account")]) -> Response:
        response = redirect(request, f"{PREFIX}/signin")
        response.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="strict")
        return response

    return console


def _signin_page(request: Request, back: str | None, error: str | None, status: int) -> Response:
    """The sign-in form, tied to a pre-session cookie for its CSRF token."""
    sessions: Sessions = request.app.state.sessions
    pre = request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(24)
    response = render_bare(
        request, "signin.html", status, csrf=sessions.csrf(pre), next=safe_next(back) or "", error=error
    )
    response.set_cookie(
        PRE_COOKIE,
        pre,
        max_age=3600,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


def _error_page(
    request: Request, status: int, message: str | Said, problems: list[dict[str, Any]] | None = None
) -> Response:
    """The error page; a catalogue message (``Said``) in the reader's language."""
    ctx: Ctx | None = getattr(request.state, "console_ctx", None)
    lang = ctx.lang if ctx is not None else lang_of(request)[0]
    if isinstance(message, Said):
        message = message.said(lang)
    # each field's problem in the reader's language (worded in English, read back by the catalogue)
    problems = [{**p, "message": reason_text(str(p.get("message", "")), lang)} for p in problems or []]
    values = {"code": status, "message": request.app.state.service.scrub(message), "problems": problems or []}
    if ctx is not None:
        return render(ctx, "error.html", status, **values)
    return render_bare(request, "error.html", status, **values)


def _errors(console: FastAPI) -> None:
    @console.exception_handler(SignInNeeded)
    async def sign_in_needed(request: Request, _: SignInNeeded) -> Response:
        return sign_in_redirect(request)

    @console.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        return _error_page(request, 403, exc)

    @console.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> Response:
        return _error_page(request, 404, exc)

    @console.exception_handler(Conflict)
    async def conflict(request: Request, exc: Conflict) -> Response:
        return _error_page(request, 409, exc)

    @console.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> Response:
        return _error_page(request, 422, str(exc), [p.as_dict() for p in exc.problems])

    @console.exception_handler(InputError)
    async def input_error(request: Request, exc: InputError) -> Response:
        return _error_page(request, 422, str(exc), [p.as_dict() for p in exc.problems])

    @console.exception_handler(JiuzhuError)
    async def engine_error(request: Request, exc: JiuzhuError) -> Response:
        from engine import error_codes

        return _error_page(request, error_codes(exc).http_status, str(exc))


def root_redirect(_: Request) -> RedirectResponse:
    """``GET /``: the console (which sends the caller to their first page or to sign in)."""
    return RedirectResponse(f"{PREFIX}/", status_code=303)
