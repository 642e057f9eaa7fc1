"""The console's foundation through the test client: sign-in and the session cookie, CSRF on
every POST, the navigation bar per role, the language switch, htmx fragments, the assets
served by the app, and the catalogue holding every key the pages use."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.console.i18n import LANGS, catalogue
from fixtures.console import TestClient, add_user, app_on, csrf_of, sign_in

CONSOLE = Path(__file__).resolve().parents[2] / "api" / "console"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    application = app_on(tmp_path_factory.mktemp("console"))
    application.state.tokens = {
        "officer": add_user(application, "officer1", "officer", "city"),
        "auditor": add_user(application, "auditor1", "auditor"),
        "policy": add_user(application, "policy1", "policy"),
    }
    with TestClient(application):  # runs the lifespan once: the ledger writer is closed at the end
        yield application


def test_root_and_pages_send_a_stranger_to_sign_in(app: Any) -> None:
    client = TestClient(app)
    assert client.get("/", follow_redirects=False).headers["location"] == "/console/"
    assert client.get("/console/", follow_redirects=False).headers["location"] == "/console/signin"
    r = client.get("/console/inbox?page=2", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/console/signin?next=%2Fconsole%2Finbox%3Fpage%3D2"
    r = client.get("/console/inbox", headers={"HX-Request": "true"}, follow_redirects=False)
    assert r.headers["HX-Redirect"].startswith("/console/signin")


def test_sign_in_gives_an_httponly_strict_session_cookie(app: Any) -> None:
    client = TestClient(app)
    form = client.get("/console/signin")
    assert "登录" in form.text
    r = client.post(
        "/console/signin",
        data={"csrf": csrf_of(form.text), "token": app.state.tokens["officer"], "next": "/console/search"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/console/search"
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("jiuzhu_session="))
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/console" in cookie
    assert app.state.tokens["officer"] not in cookie  # the token itself never travels in the cookie


def test_sign_in_refuses_a_bad_token_and_a_missing_csrf(app: Any) -> None:
    client = TestClient(app)
    form = client.get("/console/signin")
    r = client.post("/console/signin", data={"csrf": csrf_of(form.text), "token": "nope"}, follow_redirects=False)
    assert r.status_code == 401
    assert "jiuzhu_session" not in r.headers.get("set-cookie", "")
    r = client.post("/console/signin", data={"token": app.state.tokens["officer"]}, follow_redirects=False)
    assert r.status_code == 403
    assert "jiuzhu_session" not in r.headers.get("set-cookie", "")


def test_sign_in_never_returns_to_another_site(app: Any) -> None:
    client = TestClient(app)
    form = client.get("/console/signin")
    data = {"csrf": csrf_of(form.text), "token": app.state.tokens["auditor"], "next": "//evil.example/x"}
    r = client.post("/console/signin", data=data, follow_redirects=False)
    assert r.headers["location"] == "/console/search"  # the auditor's first page


def test_a_forged_cookie_or_a_revoked_token_signs_nobody_in(app: Any) -> None:
    client = sign_in(app, add_user(app, "short", "auditor"))
    assert client.get("/console/search").status_code == 200
    cookie = client.cookies["jiuzhu_session"]
    uid, fingerprint, ends, mac = cookie.split(".")
    other = "1" if uid != "1" else "2"  # another user's id under this signature
    forged = TestClient(app, cookies={"jiuzhu_session": f"{other}.{fingerprint}.{ends}.{mac}"})
    assert forged.get("/console/search", follow_redirects=False).status_code == 303
    from api import accounts

    assert accounts.revoke_user(app.state.service.store, "short")
    assert client.get("/console/search", follow_redirects=False).status_code == 303


def test_sign_out_needs_the_csrf_token(app: Any) -> None:
    client = sign_in(app, app.state.tokens["policy"])
    page = client.get("/console/account")
    assert client.post("/console/signout", data={}, follow_redirects=False).status_code == 403
    assert client.post("/console/signout", data={"csrf": "wrong"}, follow_redirects=False).status_code == 403
    assert client.get("/console/account").status_code == 200  # still signed in
    r = client.post("/console/signout", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get("/console/account", follow_redirects=False).status_code == 303


def _nav(html: str) -> list[str]:
    bar = html.split("<nav", 1)[1].split("</nav>", 1)[0]
    return re.findall(r'href="([^"]+)"', bar)


def test_the_navigation_bar_shows_what_the_role_may_use(app: Any) -> None:
    officer = _nav(sign_in(app, app.state.tokens["officer"]).get("/console/account").text)
    auditor = _nav(sign_in(app, app.state.tokens["auditor"]).get("/console/account").text)
    policy = _nav(sign_in(app, app.state.tokens["policy"]).get("/console/account").text)
    assert "/console/inbox" in officer
    assert "/console/search" in officer
    assert "/console/inbox" not in auditor
    assert "/console/search" in auditor
    assert "/console/inbox" not in policy
    assert "/console/search" not in policy
    # and a page the bar hides is refused when asked for directly
    r = sign_in(app, app.state.tokens["policy"]).get("/console/inbox")
    assert r.status_code == 403
    assert "policy" in r.text


def test_chinese_by_default_english_on_request_and_remembered(app: Any) -> None:
    client = sign_in(app, app.state.tokens["officer"])
    assert "待审批" in client.get("/console/inbox").text
    r = client.get("/console/inbox?lang=en")
    assert "Awaiting approval" in r.text
    assert "待审批" not in r.text
    assert "Awaiting approval" in client.get("/console/inbox").text  # the cookie keeps it
    assert "待审批" in client.get("/console/inbox?lang=zh").text


def test_an_htmx_request_gets_the_content_only(app: Any) -> None:
    client = sign_in(app, app.state.tokens["officer"])
    full = client.get("/console/search")
    part = client.get("/console/search", headers={"HX-Request": "true"})
    assert full.text.startswith("<!doctype html>")
    assert "<nav" in full.text
    assert "<html" not in part.text
    assert "<nav" not in part.text
    assert "<form" in part.text


def test_assets_are_served_by_the_app_and_pages_load_nothing_else(app: Any) -> None:
    client = sign_in(app, app.state.tokens["officer"])
    page = client.get("/console/inbox")
    sources = re.findall(r'(?:src|href)="([^"#?]+)"', page.text)
    assert sources
    assert all(s.startswith("/console/") or s == "data:," for s in sources), sources
    for asset in ("htmx.min.js", "console.js", "console.css", "htmx-LICENSE.txt"):
        assert client.get(f"/console/static/{asset}").status_code == 200
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "<script>" not in page.text
    assert " style=" not in page.text


def _keys_used() -> set[str]:
    keys: set[str] = set()
    for path in [*(CONSOLE / "templates").glob("*.html"), *CONSOLE.rglob("*.py")]:
        text = path.read_text(encoding="utf-8")
        keys |= set(re.findall(r'\bt\(\s*"([a-z_]+\.[a-z_.0-9]+)"', text))
        keys |= set(re.findall(r'nav="([a-z_]+\.[a-z_.0-9]+)"', text))
    return keys


def test_every_key_the_pages_use_is_in_the_catalogue_in_both_languages() -> None:
    words = catalogue()
    used = _keys_used()
    assert len(used) > 20
    assert sorted(used - set(words)) == []
    assert all(set(words[k]) == set(LANGS) for k in words)


def test_a_post_past_its_size_limit_is_refused_unread(app: Any) -> None:
    client = sign_in(app, app.state.tokens["policy"])
    page = client.get("/console/account")
    r = client.post("/console/signout", data={"csrf": csrf_of(page.text), "pad": "x" * (2 * 1024 * 1024)})
    assert r.status_code == 413
    assert client.get("/console/account").status_code == 200  # not signed out


def test_the_session_ends_when_the_token_does(app: Any) -> None:
    import datetime as dt

    _, token = app.state.service.store.add_user("brief", "auditor", expires_in=dt.timedelta(minutes=30))
    client = TestClient(app)
    form = client.get("/console/signin")
    r = client.post("/console/signin", data={"csrf": csrf_of(form.text), "token": token}, follow_redirects=False)
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("jiuzhu_session="))
    max_age = int(re.search(r"Max-Age=([0-9]+)", cookie).group(1))  # type: ignore[union-attr]
    assert 0 < max_age <= 30 * 60
    ends = int(cookie.split(";")[0].split(".")[2])
    console = next(r.app for r in app.routes if getattr(r, "path", "") == "/console")
    session = console.state.sessions.session(cookie.split(";")[0].split("=", 1)[1])
    assert session is not None
    assert session.ends == ends


def test_the_navigation_bar_keeps_the_screens_order_whatever_the_import_order(app: Any) -> None:
    from api.console import SCREENS
    from api.console.pages import PAGES, arrange, home_of

    modules = [f"api.console.screens.{name}" for name in SCREENS]
    arrange(list(reversed(modules)))  # as if the modules had been imported the other way round
    try:
        auditor = app.state.service.user_by_token(app.state.tokens["auditor"])
        assert home_of(auditor) != "/console/search"
    finally:
        arrange(modules)
    assert home_of(auditor) == "/console/search"
    assert list(PAGES).index("inbox") < list(PAGES).index("search") < list(PAGES).index("audit")
