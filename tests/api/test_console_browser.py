"""Browser journeys through the console in Debian's Chromium (Playwright, no browser download)
against a real `jiuzhu serve` on a free loopback port with a temporary store: one server and
one browser for the module, a fresh browser context (cookies) per person. Each journey's last
step, and any failure, is kept as a screenshot under .artifacts/."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from api.console.forms import form_text
from fixtures.server import Server, start
from tests.api.browser import journey, launch, needs_chromium, sign_in
from tests.conftest import FIXTURES

pytestmark = needs_chromium
TOWN = "常乐镇"


def _household(hid: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "households" / f"{hid}.json").read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = start(tmp_path_factory.mktemp("console-browser"))
    for name, level, town in (("clerk", "city", None), ("chief", "city", None), ("town", "township", TOWN)):
        extra = ["--level", level, "--certificate", f"JS-{name}", "--valid-until", "2099-12-31"]
        s.add_user(name, "officer", *extra, *(["--township", town] if town else []))
    s.add_user("auditor", "auditor")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launch() as b:
        yield b


def _fill(page: Any, selector: str, value: Any) -> None:
    if value is None or isinstance(value, dict | list):
        return
    element = page.locator(selector)
    if element.count() == 0:
        return
    if element.evaluate("e => e.tagName") == "SELECT":
        element.select_option(form_text(value))
    else:
        element.fill(form_text(value))


def test_an_officer_enters_a_household_and_another_approves_it(server: Server, browser: Any) -> None:
    from playwright.sync_api import expect

    household = {**_household("HM-2019-000116"), "household_id": "WEB-0001"}
    with journey(browser, "enter-and-approve") as page:
        sign_in(page, server, "clerk")
        page.click("nav >> text=新建认定")
        # the ID's check digit is checked by the server's validator as the officer types
        page.fill("#m0-person_id", "320684195001010015")
        expect(page.locator("#err-m0-person_id")).to_contain_text("check digit")
        for key, value in household.items():
            if isinstance(value, dict):
                for inner, v in value.items():
                    _fill(page, f"#h-{key}-{inner}", v)
            elif key != "members":
                _fill(page, f"#h-{key}", value)
        for i, member in enumerate(household["members"]):
            if i > 0:
                page.click("#add-member")
            for key, value in member.items():
                _fill(page, f"#m{i}-{key}", value)
        expect(page.locator("#err-m0-person_id")).to_have_text("")
        page.click("#preview")
        page.wait_for_selector("#preview-outcomes")
        assert "尚未保存" in page.inner_text("main")
        page.click("#store")
        page.wait_for_selector("#explanation")
        explanation = page.inner_text("#explanation")
        assert "逐条说明" in explanation
        assert "低保" in explanation
        assert page.locator("#approve").count() == 0  # four eyes: not for the officer who asked
        decision_url = page.url
        page.click("text=退出")
        page.wait_for_url("**/console/signin")
        sign_in(page, server, "chief")
        page.click("nav >> text=待审批")
        page.click("a:has-text('WEB-0001')")
        page.wait_for_url(decision_url)
        page.fill("#note", "材料齐全，同意")
        page.click("#approve")
        page.wait_for_selector("#decision-status")
        assert page.inner_text("#decision-status") == "已批准"
        assert "材料齐全，同意" in page.inner_text("#history")
        page.click("#replay")  # recorded in the ledger: the history gains the row without a reload
        page.wait_for_selector("#replay-outcome")
        page.locator("#history", has_text="重放核验").wait_for(timeout=5000)
        assert "与记录一致" in page.inner_text("#history")


def test_a_township_officer_sees_no_approve_button_and_a_forged_request_is_refused(
    server: Server, browser: Any
) -> None:
    stored = server.client(server.tokens["clerk"]).post("/v1/decisions", json=_household("HM-2019-000114"))
    assert stored.status_code == 201
    seq = stored.json()["decision_id"]
    with journey(browser, "township-refused") as page:
        sign_in(page, server, "town")
        page.goto(f"{server.url}/console/decisions/{seq}")
        page.wait_for_selector("#explanation")
        assert page.locator("#approve").count() == 0
        assert page.locator("#reject").count() == 0
        assert "超出区镇级审批权限" in page.inner_text("#actions")  # the service's reason, in Chinese
        token = page.get_attribute("body", "data-csrf")
        forged = page.request.post(
            f"{server.url}/console/decisions/{seq}/approve", form={"csrf": token or "", "note": "forged"}
        )
        assert forged.status == 403
        assert "超出区镇级审批权限" in forged.text()
        page.reload()  # the last step's screenshot: the page as the officer sees it, with the reason
    assert server.client(server.tokens["chief"]).get(f"/v1/decisions/{seq}").json()["approvals"] == []


def test_an_auditor_verifies_the_ledger(server: Server, browser: Any) -> None:
    with journey(browser, "auditor-verifies") as page:
        sign_in(page, server, "auditor")
        page.click("nav >> text=审计")
        page.click("#verify")
        page.wait_for_selector("#verify-result")
        assert "台账完整" in page.inner_text("#verify-result")
