"""Browser journeys through console screens 6 and 7 in Debian's Chromium (Playwright, no browser
download) against a real `jiuzhu serve` on a free loopback port with a temporary store: one
server and one browser for the module, a fresh browser context per person. Each journey's last
step, and any failure, is kept as a screenshot under .artifacts/."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from api.rule_workspace import bundle_of
from engine import load
from fixtures.server import Server, start
from tests.conftest import FIXTURES, RULES, rule_line

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("JIUZHU_ARTIFACTS", Path(__file__).resolve().parents[2] / ".artifacts"))
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no Chromium here (.ci/run installs Debian's)")

TYPO = ("when: T < dibao.standard * n", "when: T < dibao.standrd * n")
NEW_STANDARD = '        2020-07-01: {value: 830, reference: "[default] 海门市城乡低保标准 2020 年调整"}\n'
ADDED = '        2021-07-01: {value: 870, reference: "海门市城乡低保标准 2021 年调整"}\n'


def _bundle(folder: Path, name: str, file: str, old: str, new: str) -> Path:
    files = dict(load(RULES).files)
    assert old in files[file]
    files[file] = files[file].replace(old, new, 1)
    path = folder / name
    path.write_bytes(bundle_of(files))
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("console-browser-58")
    shutil.copy(FIXTURES / "households.jsonl", folder / "households.jsonl")
    s = start(folder)
    s.add_user("policy", "policy")
    s.add_user("data", "data")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
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
    """A fresh context at 1366×768; page errors fail the journey; a screenshot at the end or on failure."""
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN", accept_downloads=True)
    context.set_default_timeout(30_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # a page that shows problems answers 422 (the browser logs that as a failed load): what
    # fails a journey is a script error, a console error of another kind, or a 5xx answer
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


def _sign_in(page: Any, server: Server, name: str) -> None:
    page.goto(server.url + "/")
    assert page.url.endswith("/console/signin")
    page.fill("#token", server.tokens[name])
    page.click("button[type=submit]")
    page.wait_for_load_state()


def test_policy_sees_a_typo_at_its_line_then_publishes_a_good_bundle_and_the_diff(
    browser: Any, server: Server, tmp_path: Path
) -> None:
    typo = _bundle(tmp_path, "typo.zip", "programs/dibao.yaml", *TYPO)
    good = _bundle(tmp_path, "good.zip", "parameters/dibao.yaml", NEW_STANDARD, NEW_STANDARD + ADDED)
    with journey(browser, "workspace-lint-publish-diff") as page:
        _sign_in(page, server, "policy")
        page.click("nav >> text=规则修改")
        page.set_input_files("#bundle", str(typo))
        page.click("#upload")
        problem = page.locator(".lint .problem").first
        assert (
            problem.locator("code.where").inner_text()
            == f"programs/dibao.yaml:{rule_line('programs/dibao.yaml', TYPO[0])}:15"
        )
        assert "dibao.standrd" in problem.locator("tr.at").inner_text()  # the line, beside the problem
        assert "unknown-name" in problem.inner_text()
        page.set_input_files("#bundle", str(good))
        page.click("#upload")
        assert "检查通过" in page.locator("#check-ok").inner_text()
        page.fill("#effective_from", "2030-01-01")
        page.click("#publish")
        page.wait_for_url(re.compile(r"/console/rules/diff\?"))
        diff = page.locator("#diff")
        text = diff.inner_text()
        assert "dibao.standard" in text
        assert "2021-07-01" in text
        assert "870.00" in text
        assert "海门市城乡低保标准 2021 年调整" in text


def test_policy_runs_an_impact_preview_and_opens_the_report(browser: Any, server: Server, tmp_path: Path) -> None:
    raised = _bundle(
        tmp_path, "raised.zip", "parameters/dibao.yaml", "2019-07-01: {value: 790", "2019-07-01: {value: 800"
    )
    with journey(browser, "workspace-impact-report") as page:
        _sign_in(page, server, "policy")
        page.goto(server.url + "/console/workspace")
        page.set_input_files("#bundle", str(raised))
        page.click("#upload")
        page.select_option("#caseload", "households.jsonl")
        page.fill("#impact-date", "2019-08-01")
        page.click("#impact")
        page.wait_for_url(re.compile(r"/console/jobs/[0-9]+$"))
        page.wait_for_selector("#open-report", timeout=60_000)  # htmx polls the job until it ends
        assert page.locator("#job-percent").inner_text() == "100 %"
        with page.expect_popup() as opened:
            page.click("#open-report")
        report = opened.value
        report.wait_for_load_state()
        assert "政策影响评估" in report.locator("h1").inner_text()
        report.close()


def test_data_staff_screen_a_caseload_watch_it_reach_100_and_download_the_decisions(
    browser: Any, server: Server, tmp_path: Path
) -> None:
    with journey(browser, "jobs-screening-download") as page:
        _sign_in(page, server, "data")
        page.click("nav >> text=批量任务")
        page.select_option("#path", "households.jsonl")
        page.select_option("#format", "csv")
        page.click("#start-screening")
        page.wait_for_url(re.compile(r"/console/jobs/[0-9]+$"))
        page.wait_for_selector("#download-decisions", timeout=60_000)
        assert page.locator("#job-percent").inner_text() == "100 %"
        assert page.locator("#job-progress").get_attribute("value") == "100"
        with page.expect_download() as got:
            page.click("#download-decisions")
        path = tmp_path / "decisions.csv"
        got.value.save_as(path)
        text = path.read_text(encoding="utf-8-sig")
        assert text.startswith("household_id,")
        assert "HM-2019-000101" in text
