"""A console test client: the app on a temporary store, signed in through the sign-in form
as a user of a given role (cookies kept per client, as a browser keeps them)."""

from __future__ import annotations

import datetime as dt
import re
import warnings
from pathlib import Path
from typing import Any

from api.app import create_app
from api.service import Settings
from tests.conftest import FIXTURES, RULES

with warnings.catch_warnings():  # Starlette prefers httpx2 here; the httpx pinned works
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

__all__ = ["TestClient", "app_on", "csrf_of", "sign_in"]

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def app_on(folder: Path) -> Any:
    settings = Settings(
        f"sqlite:///{folder / 'store.db'}",
        RULES,
        folder,
        relatives=FIXTURES / "registries" / "relatives.csv",
        filings=FIXTURES / "registries" / "filings.csv",
    )
    return create_app(settings)


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def add_user(app: Any, name: str, role: str, level: str | None = None, township: str | None = None) -> str:
    certified = ("JS-" + name, dt.date(2099, 12, 31)) if role == "officer" else (None, None)
    _, token = app.state.service.store.add_user(name, role, level, *certified, township=township)
    return str(token)


def sign_in(app: Any, token: str) -> TestClient:
    """A client signed in through the form (so the session cookie is the one a browser gets)."""
    client = TestClient(app, base_url="http://testserver")
    form = client.get("/console/signin")
    r = client.post(
        "/console/signin", data={"csrf": csrf_of(form.text), "token": token, "next": ""}, follow_redirects=False
    )
    assert r.status_code == 303, r.text
    return client
