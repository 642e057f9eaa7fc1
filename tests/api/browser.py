"""What the console's browser journeys share: Debian's Chromium driven by Playwright (no
browser download), one browser per module, a fresh context (cookies) per person at 1366×768,
and a screenshot of each journey's last step, or of its failure, under .artifacts/."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from fixtures.server import Server

__all__ = ["CHROMIUM", "journey", "launch", "needs_chromium", "sign_in"]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("JIUZHU_ARTIFACTS", Path(__file__).resolve().parents[2] / ".artifacts"))
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no Chromium here (.ci/run installs Debian's)")


@contextmanager
def launch() -> Iterator[Any]:
    """Debian's Chromium, headless, for the length of a module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        yield b
        b.close()


@contextmanager
def journey(browser: Any, name: str) -> Iterator[Any]:
    """A fresh context at 1366×768; a script error, a console error or a 404/5xx answer fails the
    journey; a screenshot at the end or on failure."""
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN", accept_downloads=True)
    context.set_default_timeout(30_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # a page that shows problems answers 422 or 403 (the browser logs that as a failed load)
    page.on(
        "console",
        lambda m: errors.append(m.text) if m.type == "error" and "Failed to load resource" not in m.text else None,
    )
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 500 or r.status == 404 else None)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        yield page
        assert errors == [], errors
        page.screenshot(path=str(ARTIFACTS / f"console-{name}.png"), full_page=True)
    except BaseException:
        page.screenshot(path=str(ARTIFACTS / f"console-{name}-failed.png"), full_page=True)
        raise
    finally:
        context.close()


def sign_in(page: Any, server: Server, name: str) -> None:
    """Through the sign-in form with the user's token, as a person does."""
    page.goto(server.url + "/")
    assert page.url.endswith("/console/signin")
    page.fill("#token", server.tokens[name])
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert "/signin" not in page.url
