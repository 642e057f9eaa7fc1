"""The officer and auditor screens through the test client: the inbox and search with the API's
township scoping and masking, the decision page's actions shown only where the service would
accept them (and forged requests refused anyway), the new-decision form's checks, preview and
store, ledger verification, disclosure and users."""

from __future__ import annotations

import html
import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.console.forms import form_text
from fixtures.console import TestClient, add_user, app_on, csrf_of, sign_in
from tests.conftest import FIXTURES

TOWN = "常乐镇"  # HM-2019-000101 (no approval level needed) and HM-2019-000114 (city level) are here


def _household(hid: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "households" / f"{hid}.json").read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    folder = tmp_path_factory.mktemp("screens")
    application = app_on(folder)
    application.state.folder = folder
    tokens = {
        "clerk": add_user(application, "clerk", "officer", "city"),
        "city": add_user(application, "city", "officer", "city"),
        "town": add_user(application, "town", "officer", "township", TOWN),
        "auditor": add_user(application, "auditor", "auditor"),
        "admin": add_user(application, "admin", "admin"),
    }
    application.state.tokens = tokens
    with TestClient(application):
        service = application.state.service
        clerk = service.user_by_token(tokens["clerk"])
        ids = {
            hid: service.decide(_household(hid), clerk, "zh")["decision_id"]
            for hid in ("HM-2019-000101", "HM-2019-000114", "HM-2019-000102")
        }
        application.state.ids = ids
        application.state.clients = {role: sign_in(application, token) for role, token in tokens.items()}
        yield application


def _client(app: Any, who: str) -> TestClient:
    client: TestClient = app.state.clients[who]
    return client


def _rows(page: str) -> list[str]:
    return re.findall(r'href="/console/decisions/([0-9]+)">#', page)


def test_the_inbox_lists_what_this_officer_may_approve_oldest_first(app: Any) -> None:
    ids = app.state.ids
    city = _client(app, "city").get("/console/inbox")
    assert city.status_code == 200
    assert _rows(city.text) == [str(ids[h]) for h in ("HM-2019-000101", "HM-2019-000114", "HM-2019-000102")]
    assert "待审批 3 件" in city.text
    # the township officer: their township only, and only what their level may approve
    assert _rows(_client(app, "town").get("/console/inbox").text) == [str(ids["HM-2019-000101"])]
    # four eyes: the officer who asked sees none of their own requests
    assert _rows(_client(app, "clerk").get("/console/inbox").text) == []
    part = _client(app, "city").get("/console/inbox", headers={"HX-Request": "true"})
    assert "<nav" not in part.text
    assert _rows(part.text) == _rows(city.text)


def test_search_is_scoped_to_the_township_and_masked_for_auditors(app: Any) -> None:
    ids = app.state.ids
    head = _household("HM-2019-000101")["members"][0]
    officer = _client(app, "city").get("/console/search", params={"household_id": "HM-2019-000101"})
    assert _rows(officer.text) == [str(ids["HM-2019-000101"])]
    assert head["person_id"] in officer.text
    auditor = _client(app, "auditor").get("/console/search", params={"person_id": head["person_id"]})
    assert _rows(auditor.text) == [str(ids["HM-2019-000101"])]
    table = auditor.text.split("<table", 1)[1]  # the form keeps what the auditor typed
    assert head["person_id"] not in table
    assert head["person_id"][:4] + "*" in table
    town = _client(app, "town").get("/console/search")
    assert sorted(_rows(town.text)) == sorted(str(ids[h]) for h in ("HM-2019-000101", "HM-2019-000114"))
    forged = _client(app, "town").get("/console/search", params={"township": "悦来镇"})
    assert forged.status_code == 403
    bad = _client(app, "city").get("/console/search", params={"from": "2019-02-30"})
    assert bad.status_code == 200
    assert 'aria-invalid="true"' in bad.text


def test_search_pages_through_the_results(app: Any) -> None:
    service = app.state.service
    clerk = service.user_by_token(app.state.tokens["clerk"])
    household = _household("HM-2019-000116")
    for i in range(51):
        service.decide({**household, "household_id": f"PAGE-{i:03d}"}, clerk, "zh")
    first = _client(app, "city").get("/console/search", params={"township": TOWN, "status": "pending"})
    assert len(_rows(first.text)) == 50
    assert 'rel="next"' in first.text
    second = _client(app, "city").get("/console/search", params={"township": TOWN, "status": "pending", "page": 2})
    assert len(_rows(second.text)) > 0
    assert not set(_rows(first.text)) & set(_rows(second.text))


def test_the_decision_page_explains_in_chinese_with_versions_and_history(app: Any) -> None:
    seq = app.state.ids["HM-2019-000101"]
    page = _client(app, "city").get(f"/console/decisions/{seq}")
    assert page.status_code == 200
    assert "逐条说明" in page.text
    assert "符合低保条件" in page.text  # a rule's title from the rules, in Chinese
    assert "dibao.standard" in page.text  # the parameter versions used
    assert "认定并记录" in page.text
    assert "clerk" in page.text  # who asked, from the ledger
    assert 'id="approve"' in page.text
    # programs under their titles and outcomes by their labels from the rules, not their codes
    rs = app.state.service.ruleset(int(app.state.service.stored(seq).body["ruleset_id"]))
    titles = {str(p["id"]): p["title"] for p in rs.programs}
    assert "<h3>dibao</h3>" not in page.text
    assert f"<h3>{titles['dibao']['zh']}</h3>" in page.text
    status = rs.labels["dibao_status"]["values"][page_value(app, seq, "dibao_status")]
    assert f"<strong>{status['zh']}</strong>" in page.text
    english = sign_in(app, app.state.tokens["city"]).get(f"/console/decisions/{seq}?lang=en")
    assert "Explanation rule by rule" in english.text
    assert "Values compared" in english.text
    assert "逐条说明" not in english.text


def test_replay_shows_the_match(app: Any) -> None:
    seq = app.state.ids["HM-2019-000102"]
    r = _client(app, "auditor").get(f"/console/decisions/{seq}/replay", headers={"HX-Request": "true"})
    assert r.status_code == 200
    assert "重放结果与记录一致" in r.text


def test_a_console_replay_is_recorded_and_listed_in_the_history(app: Any) -> None:
    from api.accounts import users_unlike_ledger

    service = app.state.service
    seq = app.state.ids["HM-2019-000101"]
    before = len(service.store.records_for(seq, "replay"))
    r = _client(app, "auditor").get(f"/console/decisions/{seq}/replay", headers={"HX-Request": "true"})
    assert r.status_code == 200
    replays = service.store.records_for(seq, "replay")
    assert len(replays) == before + 1
    assert replays[-1].actor_id == service.user_by_token(app.state.tokens["auditor"]).id
    assert replays[-1].body["matches"] is True
    # the page's history table is swapped in with the new row (htmx out of band)
    oob = r.text.split('id="history-rows"', 1)[1]
    assert 'hx-swap-oob="true"' in r.text
    assert oob.count("重放核验") == before + 1
    assert "auditor" in oob
    assert "与记录一致" in oob
    page = _client(app, "city").get(f"/console/decisions/{seq}")
    history = page.text.split('id="history"', 1)[1].split("</table>", 1)[0]
    assert history.count("重放核验") == before + 1
    assert history.index("认定并记录") < history.index("重放核验")
    assert "auditor" in history
    assert "与记录一致" in history
    english = sign_in(app, app.state.tokens["city"]).get(f"/console/decisions/{seq}?lang=en")
    history_en = english.text.split('id="history"', 1)[1].split("</table>", 1)[0]
    assert "replayed" in history_en
    assert "matches the stored decision" in history_en
    assert service.store.verify()[1] is None
    assert users_unlike_ledger(service.store) == []


def test_no_approve_button_where_the_service_would_refuse_and_a_forged_post_is_refused(app: Any) -> None:
    seq = app.state.ids["HM-2019-000114"]  # the city level approves it
    town = _client(app, "town")
    page = town.get(f"/console/decisions/{seq}")
    assert page.status_code == 200
    assert 'id="approve"' not in page.text
    assert 'id="reject"' not in page.text
    assert "超出区镇级审批权限" in page.text  # the service's reason, in the reader's language, shown instead
    token = csrf_of(page.text)
    forged = town.post(f"/console/decisions/{seq}/approve", data={"csrf": token, "note": "x"}, follow_redirects=False)
    assert forged.status_code == 403
    forged = town.post(f"/console/decisions/{seq}/reject", data={"csrf": token, "note": "x"}, follow_redirects=False)
    assert forged.status_code == 403
    assert app.state.service.store.records_for(seq, "approval") == []
    # the officer who asked for it sees no button either (four eyes)
    assert 'id="approve"' not in _client(app, "clerk").get(f"/console/decisions/{seq}").text
    # an auditor reads it and has no action at all
    assert 'id="approve"' not in _client(app, "auditor").get(f"/console/decisions/{seq}").text


def test_a_post_without_or_with_a_wrong_csrf_token_is_refused(app: Any) -> None:
    seq = app.state.ids["HM-2019-000114"]
    city = _client(app, "city")
    assert city.post(f"/console/decisions/{seq}/approve", data={"note": "x"}).status_code == 403
    wrong = city.post(f"/console/decisions/{seq}/approve", data={"csrf": "forged", "note": "x"})
    assert wrong.status_code == 403
    # another session's token does not pass either
    other = csrf_of(_client(app, "clerk").get("/console/inbox").text)
    assert city.post(f"/console/decisions/{seq}/approve", data={"csrf": other}).status_code == 403
    assert app.state.service.store.records_for(seq, "approval") == []


def test_a_township_officer_approves_and_the_page_shows_it(app: Any) -> None:
    seq = app.state.ids["HM-2019-000101"]
    town = _client(app, "town")
    page = town.get(f"/console/decisions/{seq}")
    assert 'id="approve"' in page.text
    r = town.post(
        f"/console/decisions/{seq}/approve",
        data={"csrf": csrf_of(page.text), "note": "核实无误"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    after = town.get(r.headers["location"])
    assert 'id="decision-status">已批准' in after.text
    assert "核实无误" in after.text
    assert 'id="approve"' not in after.text
    again = town.post(f"/console/decisions/{seq}/approve", data={"csrf": csrf_of(page.text)})
    assert again.status_code == 409


def test_a_rejection_needs_a_reason(app: Any) -> None:
    seq = app.state.ids["HM-2019-000102"]
    city = _client(app, "city")
    token = csrf_of(city.get(f"/console/decisions/{seq}").text)
    assert city.post(f"/console/decisions/{seq}/reject", data={"csrf": token, "note": " "}).status_code == 422
    assert app.state.service.store.records_for(seq, "approval") == []


def test_the_form_is_checked_by_the_servers_validator_as_the_officer_types(app: Any) -> None:
    city = _client(app, "city")
    token = csrf_of(city.get("/console/new").text)
    form = {
        "csrf": token,
        "m0:person_id": "320684195001010015",
        "h:assets.financial_assets": "12.345",
        "m0:name": "张三",
    }
    r = city.post("/console/new/check", data=form, headers={"HX-Request": "true"})
    assert r.status_code == 200
    spans = dict(re.findall(r'id="err-([^"]+)" hx-swap-oob="true"[^>]*>([^<]*)<', r.text))
    assert "check digit" in spans["m0-person_id"]
    assert "two decimals" in html.unescape(spans["h-assets-financial_assets"])
    assert spans["m0-name"] == ""
    assert spans["h-household_id"] == ""  # not typed yet: no message while typing
    fixed = city.post(
        "/console/new/check", data={**form, "m0:person_id": "320684195001010014"}, headers={"HX-Request": "true"}
    )
    spans = dict(re.findall(r'id="err-([^"]+)" hx-swap-oob="true"[^>]*>([^<]*)<', fixed.text))
    assert spans["m0-person_id"] == ""


def test_a_refused_household_comes_back_with_each_error_next_to_its_field(app: Any) -> None:
    city = _client(app, "city")
    token = csrf_of(city.get("/console/new").text)
    bad = _household("HM-2019-000105")
    bad["members"][0]["person_id"] = bad["members"][0]["person_id"][:-1] + (
        "0" if bad["members"][0]["person_id"][-1] != "0" else "1"
    )
    r = city.post("/console/new/preview", data={"csrf": token, "json": json.dumps(bad, ensure_ascii=False)})
    assert r.status_code == 422
    errors = dict(re.findall(r'id="err-([^"]+)"[^>]*>([^<]+)<', r.text))
    assert "check digit" in errors["m0-person_id"]
    assert f'value="{bad["household_id"]}"' in r.text  # the form shows the household again


def test_preview_stores_nothing_until_confirmed_and_stores_once(app: Any) -> None:
    city = _client(app, "city")
    service = app.state.service
    token = csrf_of(city.get("/console/new").text)
    household = {**_household("HM-2019-000110"), "household_id": "NEW-0001"}
    before = service.store.verify()[0]
    preview = city.post("/console/new/preview", data={"csrf": token, "json": json.dumps(household, ensure_ascii=False)})
    assert preview.status_code == 200
    assert "尚未保存" in preview.text
    assert service.store.verify()[0] == before
    key = re.search(r'name="key" value="([^"]+)"', preview.text)
    stored = re.search(r'<textarea name="household" hidden>(.*?)</textarea>', preview.text, re.S)
    assert key
    assert stored
    data = {"csrf": token, "key": key.group(1), "household": html.unescape(stored.group(1))}
    first = city.post("/console/new/store", data=data, follow_redirects=False)
    second = city.post("/console/new/store", data=data, follow_redirects=False)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert service.store.verify()[0] == before + 1


def test_the_form_builds_the_household_with_members_added(app: Any) -> None:
    city = _client(app, "city")
    token = csrf_of(city.get("/console/new").text)
    source = _household("HM-2019-000110")
    form: dict[str, str] = {"csrf": token}
    for key, value in source.items():
        if isinstance(value, dict):
            form.update({f"h:{key}.{k}": form_text(v) for k, v in value.items()})
        elif key != "members":
            form[f"h:{key}"] = form_text(value)
    for i, member in enumerate(source["members"]):
        form.update({f"m{i}:{k}": form_text(v) for k, v in member.items() if not isinstance(v, dict | list)})
    form["h:household_id"] = "NEW-FORM-1"
    r = city.post("/console/new/preview", data=form)
    assert r.status_code == 200, re.findall(r'field-error"[^>]*>([^<]+)<', r.text)
    stored = re.search(r'<textarea name="household" hidden>(.*?)</textarea>', r.text, re.S)
    assert stored
    assert len(json.loads(html.unescape(stored.group(1)))["members"]) == len(source["members"])


def test_a_township_officer_cannot_preview_another_townships_household(app: Any) -> None:
    town = _client(app, "town")
    token = csrf_of(town.get("/console/new").text)
    r = town.post("/console/new/preview", data={"csrf": token, "json": json.dumps(_household("HM-2019-000102"))})
    assert r.status_code == 403


def test_an_xlsx_household_is_read_like_a_caseload_table(app: Any, tmp_path: Path) -> None:
    import openpyxl

    source = _household("HM-2019-000110")
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "households"
    flat = {k: v for k, v in source.items() if k != "members" and not isinstance(v, dict)}
    flat.update({f"{k}_{i}": v for k, d in source.items() if isinstance(d, dict) for i, v in d.items()})
    sheet.append(list(flat))
    sheet.append([form_text(v) for v in flat.values()])
    members = book.create_sheet("members")
    columns = [k for k, v in source["members"][0].items() if not isinstance(v, dict | list)]
    members.append(["household_id", *columns])
    for m in source["members"]:
        members.append([source["household_id"], *(form_text(m.get(c)) for c in columns)])
    path = tmp_path / "one.xlsx"
    book.save(path)
    city = _client(app, "city")
    token = csrf_of(city.get("/console/new").text)
    with path.open("rb") as f:
        r = city.post("/console/new/preview", data={"csrf": token}, files={"xlsx": ("one.xlsx", f)})
    assert r.status_code == 200, re.findall(r"<li>([^<]+)</li>", r.text)
    assert source["household_id"] in r.text


def test_an_auditor_verifies_the_ledger_and_sees_a_broken_one(app: Any) -> None:
    auditor = _client(app, "auditor")
    page = auditor.get("/console/audit")
    r = auditor.post("/console/audit/verify", data={"csrf": csrf_of(page.text)})
    assert r.status_code == 200
    assert "台账完整" in r.text
    assert _client(app, "city").get("/console/audit").status_code == 403


def test_disclosure_export_is_masked(app: Any) -> None:
    r = _client(app, "auditor").get("/console/disclosure", params={"from": "2000-01-01", "to": "2099-12-31"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    head = _household("HM-2019-000101")["members"][0]["person_id"]
    assert head not in r.text
    assert head[:4] + "**" in r.text  # the approved decision is there, masked


def test_admins_add_renew_and_revoke_users(app: Any) -> None:
    admin = _client(app, "admin")
    page = admin.get("/console/admin/users")
    assert page.status_code == 200
    token = csrf_of(page.text)
    r = admin.post("/console/admin/users/add", data={"csrf": token, "name": "newbie", "role": "auditor"})
    assert r.status_code == 201
    found = re.search(r'id="new-token".*?<code>([^<]+)</code>', r.text, re.S)
    assert found
    newbie = sign_in(app, found.group(1))
    assert newbie.get("/console/search").status_code == 200
    bad = admin.post("/console/admin/users/add", data={"csrf": token, "name": "x", "role": "officer"})
    assert bad.status_code == 422  # an officer needs a level
    assert admin.post("/console/admin/users/newbie/revoke", data={"csrf": token}).status_code == 200
    assert newbie.get("/console/search", follow_redirects=False).status_code == 303
    assert _client(app, "auditor").get("/console/admin/users").status_code == 403
    forged = _client(app, "auditor").post(
        "/console/admin/users/add", data={"csrf": token, "name": "y", "role": "admin"}
    )
    assert forged.status_code == 403
    assert not app.state.service.store.has_user("y")


def test_a_rewritten_ledger_record_is_shown_broken(app: Any) -> None:
    """Last in this module: it breaks the store's ledger."""
    db = sqlite3.connect(app.state.folder / "store.db")
    with db:
        db.execute("DROP TRIGGER ledger_no_update")
        db.execute("UPDATE ledger SET body = replace(body, 'HM-2019-000102', 'HM-2019-999999') WHERE kind = 'decision'")
    db.close()
    auditor = _client(app, "auditor")
    r = auditor.post("/console/audit/verify", data={"csrf": csrf_of(auditor.get("/console/audit").text)})
    assert "台账在第" in r.text


def page_value(app: Any, seq: int, field: str) -> str:
    """A stored decision's value of ``field``, as the API answers it."""
    return str(app.state.service.stored(seq).body["decision"][field])
