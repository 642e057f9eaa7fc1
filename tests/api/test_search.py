"""Officers' search and inbox (issue 10, item 2) on a real server: filters, paging, masking per
role, township scoping, counts per status, the pending inbox, and the index rebuilt from the
ledger after it lost rows."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.store import Store
from fixtures.server import Server, start
from tests.conftest import FIXTURES

CHANGLE = "常乐镇"


def household(name: str, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "households" / f"{name}.json").read_text(encoding="utf-8"))
    return {**data, **changes}


def users(s: Server) -> None:
    """The officers, data and auditor users, made in the store directly (fast; the CLI has its tests)."""
    store = Store(s.db)
    try:
        for name, role, level, town in (("镇官", "officer", "township", CHANGLE), ("市官", "officer", "city", None)):
            _, s.tokens[name] = store.add_user(name, role, level, "JS-2019-0201", dt.date(2099, 12, 31), town)
        for name, role in (("数据", "data"), ("审计", "auditor")):
            _, s.tokens[name] = store.add_user(name, role)
    finally:
        store.engine.dispose()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = start(tmp_path_factory.mktemp("search"))
    users(s)
    yield s
    s.stop()


def every_item(client: Any, path: str) -> tuple[int, list[dict[str, Any]]]:
    """(total, every item over all pages) of a paged listing."""
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        body = client.get(path, params={"page": page}).json()
        items += body["items"]
        if not body["items"] or len(items) >= body["total"]:
            return int(body["total"]), items
        page += 1


def test_search_filters_pages_masks_and_counts(server: Server) -> None:
    data = server.client(server.tokens["数据"])
    # 55 households of 常乐镇 with their own IDs, decided in one batch, and one elsewhere
    base = household("HM-2019-000101")
    batch = [{**base, "household_id": f"HM-S-{i:04d}"} for i in range(55)]
    assert data.post("/v1/decisions/batch", json=batch).json()["decided"] == 55
    other = data.post("/v1/decisions", json=household("HM-2019-000105")).json()  # 正余镇
    city = server.client(server.tokens["市官"])
    r = city.get("/v1/decisions", params={"township": CHANGLE})
    page1 = r.json()
    assert (page1["total"], len(page1["items"]), page1["per_page"]) == (55, 50, 50)
    assert page1["items"][0]["household_id"] == "HM-S-0054"  # newest first
    page2 = city.get("/v1/decisions", params={"township": CHANGLE, "page": 2}).json()
    assert [i["household_id"] for i in page2["items"]] == [f"HM-S-{i:04d}" for i in range(4, -1, -1)]
    one = city.get("/v1/decisions", params={"household_id": "HM-S-0007"}).json()
    assert one["total"] == 1
    head = batch[7]["members"][0]
    assert one["items"][0]["head_id"] == head["person_id"]
    elsewhere = household("HM-2019-000105")["members"][-1]["person_id"]
    by_person = city.get("/v1/decisions", params={"person_id": elsewhere.lower()}).json()
    assert [i["decision_id"] for i in by_person["items"]] == [other["decision_id"]]
    # statuses: counts follow approvals and rejections
    first = one["items"][0]["decision_id"]
    assert server.client(server.tokens["镇官"]).post(f"/v1/decisions/{first}/approve").status_code == 201
    counts = city.get("/v1/decisions", params={"township": CHANGLE}).json()["counts"]
    assert counts == {"pending": 54, "approved": 1, "rejected": 0}
    approved = city.get("/v1/decisions", params={"status": "approved"}).json()
    assert [i["decision_id"] for i in approved["items"]] == [first]
    assert city.get("/v1/decisions", params={"status": "lost"}).status_code == 422
    # decision dates
    assert city.get("/v1/decisions", params={"from": "2019-08-02"}).json()["total"] == 0
    assert city.get("/v1/decisions", params={"from": "2019-08-01", "to": "2019-08-01"}).json()["total"] == 56
    assert city.get("/v1/decisions", params={"from": "2019-W31-1"}).status_code == 422
    # the auditor reads masked IDs and names; a township officer its township only
    masked = server.client(server.tokens["审计"]).get("/v1/decisions", params={"household_id": "HM-S-0007"}).json()
    assert masked["items"][0]["head_id"] != head["person_id"]
    assert masked["items"][0]["head_id"].endswith(head["person_id"][-4:])
    township = server.client(server.tokens["镇官"])
    mine = township.get("/v1/decisions").json()
    assert mine["total"] == 55
    assert other["decision_id"] not in [i["decision_id"] for i in mine["items"]]
    assert township.get("/v1/decisions", params={"township": "正余镇"}).status_code == 403


def test_pending_inbox_is_the_officers_township_and_authority_oldest_first(server: Server) -> None:
    data = server.client(server.tokens["数据"])
    city_case = data.post("/v1/decisions", json=household("HM-2019-000106", township=CHANGLE)).json()
    assert city_case["ta_authority"] == "city"
    small = data.post("/v1/decisions", json=household("HM-2019-000105", township=CHANGLE)).json()
    own = server.client(server.tokens["镇官"]).post("/v1/decisions", json=household("HM-2019-000114")).json()
    total, inbox = every_item(server.client(server.tokens["镇官"]), "/v1/approvals/pending")
    ids = [i["decision_id"] for i in inbox]
    assert total == len(ids)
    assert small["decision_id"] in ids
    assert city_case["decision_id"] not in ids  # above the township's authority
    assert own["decision_id"] not in ids  # four eyes
    assert ids == sorted(ids)  # oldest first
    assert all(i["township"] == CHANGLE and i["status"] == "pending" for i in inbox)
    city_total, city = every_item(server.client(server.tokens["市官"]), "/v1/approvals/pending")
    city_ids = [i["decision_id"] for i in city]
    assert city_case["decision_id"] in city_ids
    assert own["decision_id"] in city_ids
    assert server.client(server.tokens["市官"]).post(f"/v1/decisions/{city_case['decision_id']}/reject").is_success
    after_total, after = every_item(server.client(server.tokens["市官"]), "/v1/approvals/pending")
    assert city_case["decision_id"] not in [i["decision_id"] for i in after]
    assert after_total == city_total - 1


def test_index_is_rebuilt_from_the_ledger_on_start(tmp_path: Path) -> None:
    s = start(tmp_path)
    users(s)
    d = s.client(s.tokens["数据"]).post("/v1/decisions", json=household("HM-2019-000101")).json()
    assert s.client(s.tokens["市官"]).post(f"/v1/decisions/{d['decision_id']}/reject").is_success
    s.stop()
    with sqlite3.connect(tmp_path / "store.db") as con:  # as if the server died between the two writes
        con.execute("DELETE FROM decision_index")
        con.execute("DELETE FROM decision_persons")
    again = start(tmp_path)
    try:
        again.tokens.update(s.tokens)
        found = again.client(s.tokens["市官"]).get("/v1/decisions", params={"household_id": "HM-2019-000101"}).json()
        assert [(i["decision_id"], i["status"]) for i in found["items"]] == [(d["decision_id"], "rejected")]
    finally:
        again.stop()


def test_an_auditor_reads_a_decisions_member_lists_with_ids_masked(server: Server) -> None:
    """A child's person ID in the `children` list (and every other resident ID of the
    decision, its explanation's too) is masked for the auditor, as in search; an officer reads them."""
    h = household("HM-2019-000131")
    child = h["members"][2]["person_id"]
    made = server.client(server.tokens["数据"]).post("/v1/decisions", json=h).json()
    path = f"/v1/decisions/{made['decision_id']}"
    officer = server.client(server.tokens["市官"]).get(path).json()
    assert [c["person_id"] for c in officer["children"]] == [child]
    for route in (path, path + "/replay"):
        body = server.client(server.tokens["审计"]).get(route).json()
        lists = body.get("decision", body)["children"]
        assert [c["person_id"] for c in lists] == [child[:4] + "*" * 10 + child[-4:]]
        assert all(m["person_id"] not in json.dumps(body) for m in h["members"])
