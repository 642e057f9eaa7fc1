"""What every console page shares: the page table (who may open which page, from api/roles.py),
the guard that signs the caller in from the session cookie, the CSRF check of every POST, and
rendering a template (the whole page, or only its content for an htmx request)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from api.console.i18n import LANGS, bilingual, pick_lang, translate
from api.console.session import COOKIE, Session, Sessions
from api.roles import Access, access
from api.service import Forbidden, Service
from api.store import User

__all__ = [
    "PAGES",
    "PREFIX",
    "Ctx",
    "Page",
    "SignInNeeded",
    "checked",
    "home_of",
    "lang_of",
    "page",
    "redirect",
    "register",
    "render",
]

LANG_COOKIE = "jiuzhu_lang"
PREFIX = "/console"


@dataclass(frozen=True)
class Page:
    """One console page or action. ``api`` names the API route it stands for, whose row in
    api/roles.py decides who may use it; ``roles`` is for pages with no API route of their own.
    ``nav`` is the catalogue key of its navigation entry (None: not in the bar)."""

    name: str
    path: str
    api: tuple[str, str] | None = None
    roles: tuple[str, ...] = ()
    nav: str | None = None

    @property
    def access(self) -> Access:
        if self.api is not None:
            found = access(*self.api)
            if found is None:
                raise KeyError(f"console page {self.name}: {self.api} is not in api/roles.py")
            return found
        return Access(self.roles, self.name)

    def allows(self, user: User) -> bool:
        a = self.access
        return not a.public and a.allows(user.role)


PAGES: dict[str, Page] = {}
_MODULE: dict[str, str] = {}  # page name -> the module that registered it


def register(*pages: Page) -> None:
    """Add pages to the table (each screen module registers its own, once, at import)."""
    module = str(sys._getframe(1).f_globals.get("__name__", ""))
    for p in pages:
        if p.name in PAGES and PAGES[p.name] != p:
            raise ValueError(f"console page {p.name} registered twice")
        PAGES[p.name] = p
        _MODULE[p.name] = module


def arrange(modules: Sequence[str]) -> None:
    """The table in the order of ``modules`` (the navigation bar's order and each role's first
    page), whatever order the modules happened to be imported in."""
    rank = {m: i for i, m in enumerate(modules)}
    ordered = sorted(PAGES.values(), key=lambda p: rank.get(_MODULE.get(p.name, ""), -1))
    PAGES.clear()
    PAGES.update((p.name, p) for p in ordered)


class SignInNeeded(Exception):
    """No valid session: the page redirects to the sign-in form."""


@dataclass
class Ctx:
    """The caller of one page request and what its templates need."""

    request: Request
    service: Service
    sessions: Sessions
    session: Session
    lang: str
    page: Page
    set_lang: bool = False
    form: FormData | None = None

    @property
    def user(self) -> User:
        return self.session.user

    def t(self, key: str, **values: Any) -> str:
        return translate(self.lang, key, **values)

    def label(self, value: Any) -> str:
        return bilingual(value, self.lang)

    @property
    def csrf(self) -> str:
        return self.sessions.csrf(self.session.cookie)

    def can(self, name: str) -> bool:
        """Whether the caller's role may use page or action ``name`` (the nav bar, buttons)."""
        p = PAGES.get(name)
        return p is not None and p.allows(self.user)

    @property
    def htmx(self) -> bool:
        return self.request.headers.get("hx-request") == "true"

    def field(self, name: str, default: str = "") -> str:
        value = self.form.get(name) if self.form is not None else None
        return value.strip() if isinstance(value, str) else default


def lang_of(request: Request) -> tuple[str, bool]:
    asked = request.query_params.get("lang")
    return pick_lang(asked, request.cookies.get(LANG_COOKIE)), asked in LANGS


async def _ctx(request: Request, name: str) -> Ctx:
    p = PAGES[name]
    sessions: Sessions = request.app.state.sessions
    found = await run_in_threadpool(sessions.session, request.cookies.get(COOKIE))
    if found is None:
        raise SignInNeeded
    request.state.user_id = found.user.id  # for the access log
    lang, set_lang = lang_of(request)
    ctx = Ctx(request, request.app.state.service, sessions, found, lang, p, set_lang)
    request.state.console_ctx = ctx  # an error page shows the caller's navigation bar too
    if not p.allows(found.user):
        raise Forbidden("console.error.role", role=found.user.role)
    return ctx


def page(name: str) -> Any:
    """The guard of a page that reads: ``ctx: Annotated[Ctx, page("inbox")]``."""

    async def guard(request: Request) -> Ctx:
        return await _ctx(request, name)

    return Depends(guard)


def checked(name: str, max_part_size: int = 1024 * 1024) -> Any:
    """The guard of a POST: the page's roles, then the CSRF token (form field ``csrf`` or the
    ``X-CSRF-Token`` header htmx sends); the form is read once into ``ctx.form``."""

    async def guard(request: Request) -> AsyncIterator[Ctx]:
        ctx = await _ctx(request, name)
        declared = request.headers.get("content-length", "")
        if not declared.isdigit() or int(declared) > max_part_size + 64 * 1024:
            # a form is sent with its length; a body past the limit is never read (nor spooled to disk)
            raise HTTPException(413, ctx.t("error.too_large", limit=max_part_size))
        form = await request.form(max_files=2, max_fields=2000, max_part_size=max_part_size)
        try:
            sent = form.get("csrf") if isinstance(form.get("csrf"), str) else request.headers.get("x-csrf-token")
            if not ctx.sessions.csrf_ok(ctx.session.cookie, str(sent) if sent else None):
                raise Forbidden("console.error.csrf")
            ctx.form = form
            yield ctx
        finally:
            await form.close()  # an uploaded file's temporary copy goes now, not at garbage collection

    return Depends(guard)


def home_of(user: User) -> str:
    """The first page of the navigation bar the user may open."""
    for p in PAGES.values():
        if p.nav and p.allows(user):
            return PREFIX + p.path
    return PREFIX + "/account"


def safe_next(value: str | None) -> str | None:
    """A page to return to after signing in: a console path only, never another site."""
    if value and value.startswith(PREFIX + "/") and "//" not in value and "\\" not in value:
        return value
    return None


_env = jinja2.Environment(
    loader=jinja2.PackageLoader("api.console", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _nav(ctx: Ctx) -> list[tuple[str, str, bool]]:
    """(href, label, current) of each page the caller may open."""
    return [
        (PREFIX + p.path, ctx.t(p.nav), p.name == ctx.page.name) for p in PAGES.values() if p.nav and p.allows(ctx.user)
    ]


def render(ctx: Ctx, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    """The page (or, for an htmx request, its content block only) in the caller's language."""
    return _render(ctx.request, ctx, ctx.lang, ctx.set_lang, template, status, values)


def render_bare(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    """A page for a caller not signed in (the sign-in form, an error before the guard passed)."""
    lang, asked = lang_of(request)
    return _render(request, None, lang, asked, template, status, values)


def _render(
    request: Request, ctx: Ctx | None, lang: str, asked: bool, template: str, status: int, values: dict[str, Any]
) -> HTMLResponse:
    html = _env.get_template(template).render(
        layout="partial.html" if request.headers.get("hx-request") == "true" else "base.html",
        ctx=ctx,
        lang=lang,
        t=lambda key, **kw: translate(lang, key, **kw),
        nav=_nav(ctx) if ctx is not None else [],
        prefix=PREFIX,
        **values,
    )
    response = HTMLResponse(html, status_code=status)
    remember_lang(response, request, lang, asked)
    response.headers["Vary"] = "HX-Request, Cookie"
    return response


def remember_lang(response: Response, request: Request, lang: str, asked: bool) -> None:
    if asked:
        response.set_cookie(
            LANG_COOKIE, lang, max_age=365 * 86400, path=PREFIX, samesite="strict", secure=_https(request)
        )


def _https(request: Request) -> bool:
    return request.url.scheme == "https"


def redirect(request: Request, url: str) -> Response:
    """303 to ``url``; an htmx request gets ``HX-Redirect`` so that the whole page changes."""
    if request.headers.get("hx-request") == "true":
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def sign_in_redirect(request: Request) -> Response:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return redirect(request, f"{PREFIX}/signin?next={quote(here, safe='')}")
