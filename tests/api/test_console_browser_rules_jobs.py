"""Browser journeys through console screens 6 and 7 in Debian's Chromium (Playwright, no browser
download) against a real `jiuzhu serve` on a free loopback port with a temporary store: one
server and one browser for the module, a fresh browser context per person. Each journey's last
step, and any failure, is kept as a screenshot under .artifacts/."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.rule_workspace import bundle_of
from engine import load
from fixtures.server import Server, start
from tests.api.browser import journey, launch, needs_chromium, sign_in
from tests.conftest import FIXTURES, RULES, rule_line

pytestmark = needs_chromium

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
    with launch() as b:
        yield b


def test_policy_sees_a_typo_at_its_line_then_publishes_a_good_bundle_and_the_diff(
    browser: Any, server: Server, tmp_path: Path
) -> None:
    typo = _bundle(tmp_path, "typo.zip", "programs/dibao.yaml", *TYPO)
    good = _bundle(tmp_path, "good.zip", "parameters/dibao.yaml", NEW_STANDARD, NEW_STANDARD + ADDED)
    with journey(browser, "workspace-lint-publish-diff") as page:
        sign_in(page, server, "policy")
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
        sign_in(page, server, "policy")
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
        sign_in(page, server, "data")
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
