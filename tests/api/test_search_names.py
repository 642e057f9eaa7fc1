"""Case search by a member's name (issue 12, screen 2): ``GET /v1/decisions?name=`` on a real
server and the console's search form, with the township scoping and masking of the other
filters; a store made before names were indexed is migrated and its index rebuilt on start."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures.console import TestClient, add_user, app_on, sign_in
from fixtures.server import Server, start
from tests.api.test_search import CHANGLE, household, users


def named(hid: str, *names: str, **changes: Any) -> dict[str, Any]:
    """A fixture household whose members carry these names, in order."""
    h = household(hid, **changes)
    h["members"] = [{**m, "name": n} for m, n in zip(h["members"], names, strict=False)] + h["members"][len(names) :]
    return h


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = start(tmp_path_factory.mktemp("names"))
    users(s)
    yield s
    s.stop()


def ids(body: dict[str, Any]) -> list[int]:
    return [int(i["decision_id"]) for i in body["items"]]


def test_a_household_is_found_by_a_members_name_within_the_callers_scope(server: Server) -> None:
    data = server.client(server.tokens["数据"])
    here = data.post("/v1/decisions", json=named("HM-2019-000101", "张三丰", "李秀英")).json()["decision_id"]
    there = data.post("/v1/decisions", json=named("HM-2019-000105", "王大川")).json()["decision_id"]  # 正余镇
    nameless = data.post("/v1/decisions", json=household("HM-2019-000101", household_id="HM-N-1")).json()
    city = server.client(server.tokens["市官"])
    assert ids(city.get("/v1/decisions", params={"name": "张三丰"}).json()) == [here]
    assert ids(city.get("/v1/decisions", params={"name": " 李 秀英 "}).json()) == [here]  # a spouse; spaces ignored
    assert ids(city.get("/v1/decisions", params={"name": "王大川"}).json()) == [there]
    assert city.get("/v1/decisions", params={"name": "张三"}).json()["total"] == 0  # exact, not a prefix
    # a household without names is indexed as before
    assert ids(city.get("/v1/decisions", params={"household_id": "HM-N-1"}).json()) == [nameless["decision_id"]]
    both = city.get("/v1/decisions", params={"name": "张三丰", "township": "正余镇"}).json()
    assert both["total"] == 0  # the name combines with the other filters
    # a township officer of 常乐镇 finds its own case by name, never 正余镇's
    town = server.client(server.tokens["镇官"])
    assert ids(town.get("/v1/decisions", params={"name": "张三丰"}).json()) == [here]
    assert town.get("/v1/decisions", params={"name": "王大川"}).json()["total"] == 0
    # the auditor finds it too, and reads the head's name masked
    audited = server.client(server.tokens["审计"]).get("/v1/decisions", params={"name": "张三丰"}).json()
    assert ids(audited) == [here]
    assert audited["items"][0]["head_name"] == "张**"
    assert city.get("/v1/decisions", params={"name": "张三丰"}).json()["items"][0]["head_name"] == "张三丰"


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    application = app_on(tmp_path_factory.mktemp("console-names"))
    tokens = {
        "city": add_user(application, "city", "officer", "city"),
        "town": add_user(application, "town", "officer", "township", CHANGLE),
        "auditor": add_user(application, "auditor", "auditor"),
    }
    with TestClient(application):
        service = application.state.service
        city = service.user_by_token(tokens["city"])
        application.state.ids = {
            who: service.decide(h, city, "zh")["decision_id"]
            for who, h in (
                ("here", named("HM-2019-000101", "赵一鸣")),
                ("there", named("HM-2019-000105", "钱二娃")),
            )
        }
        application.state.clients = {role: sign_in(application, token) for role, token in tokens.items()}
        yield application


def rows(page: str) -> list[int]:
    return [int(n) for n in re.findall(r'href="/console/decisions/([0-9]+)">#', page)]


def test_the_console_search_form_finds_by_name_scoped_and_masked(console: Any) -> None:
    found, clients = console.state.ids, console.state.clients
    page = clients["city"].get("/console/search", params={"name": "赵一鸣"})
    assert page.status_code == 200
    assert 'name="name"' in page.text
    assert 'value="赵一鸣"' in page.text
    assert rows(page.text) == [found["here"]]
    assert rows(clients["city"].get("/console/search", params={"name": "钱二娃"}).text) == [found["there"]]
    assert rows(clients["town"].get("/console/search", params={"name": "钱二娃"}).text) == []
    assert rows(clients["town"].get("/console/search", params={"name": "赵一鸣"}).text) == [found["here"]]
    audited = clients["auditor"].get("/console/search", params={"name": "赵一鸣"}).text
    assert rows(audited) == [found["here"]]
    table = audited.split("<table", 1)[1]  # the form above keeps what the auditor typed
    assert "赵一鸣" not in table
    assert "赵**" in table


def test_an_old_store_is_migrated_and_its_names_caught_up(tmp_path: Path) -> None:
    """A store at the previous migration (index filled, no names table) gets the table and,
    on start, the names of the decisions it already holds, their statuses kept."""
    s = start(tmp_path)
    users(s)
    d = s.client(s.tokens["数据"]).post("/v1/decisions", json=named("HM-2019-000101", "孙小美")).json()
    assert s.client(s.tokens["市官"]).post(f"/v1/decisions/{d['decision_id']}/reject").is_success
    s.stop()
    with sqlite3.connect(tmp_path / "store.db") as con:  # as the store was before names were indexed
        con.execute("DROP TABLE decision_names")
        con.execute("UPDATE alembic_version SET version_num = '0003_decision_search_index'")
    again = start(tmp_path)
    try:
        found = again.client(s.tokens["市官"]).get("/v1/decisions", params={"name": "孙小美"}).json()
        assert [(i["decision_id"], i["status"]) for i in found["items"]] == [(d["decision_id"], "rejected")]
        everything = again.client(s.tokens["市官"]).get("/v1/decisions").json()
        assert everything["total"] == 1  # the rebuilt index holds each decision once
    finally:
        again.stop()
    with sqlite3.connect(tmp_path / "store.db") as con:
        assert con.execute("SELECT version_num FROM alembic_version").fetchone() == ("0004_decision_names",)
