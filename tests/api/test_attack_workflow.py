"""The bureau's workflow under attack (issue 10, rows 5, 7, 8, 14, 15, 16): a real `jiuzhu serve`
on a SQLite file, spoken to over HTTP, one test per row, each failing on the code before."""

from __future__ import annotations

import datetime as dt
import io
import json
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from api.store import Store
from fixtures.server import Server, start
from tests.conftest import FIXTURES, RULES

CHANGLE = "常乐镇"  # the township officer's township


def household(name: str, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "households" / f"{name}.json").read_text(encoding="utf-8"))
    return {**data, **changes}


def finished(server: Server, jid: int, token: str) -> dict[str, Any]:
    reader = server.client(token)
    for _ in range(600):
        job: dict[str, Any] = reader.get(f"/v1/screenings/{jid}").json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {jid} did not finish")


# name -> (role, level, township); made in the store directly (the CLI has its own tests): fast
USERS: dict[str, tuple[str, str | None, str | None]] = {
    "镇官": ("officer", "township", CHANGLE),
    "外镇官": ("officer", "township", "正余镇"),
    "市官": ("officer", "city", None),
    "市官二": ("officer", "city", None),
    "政策": ("policy", None, None),
    "政策二": ("policy", None, None),
    "数据": ("data", None, None),
    "审计": ("auditor", None, None),
}


def add_users(s: Server, *names: str) -> None:
    store = Store(s.db)
    try:
        for name in names or tuple(USERS):
            role, level, township = USERS[name]
            number, until = ("JS-2019-0101", dt.date(2099, 12, 31)) if role == "officer" else (None, None)
            _, s.tokens[name] = store.add_user(name, role, level, number, until, township=township)
    finally:
        store.engine.dispose()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = start(tmp_path_factory.mktemp("workflow"))
    add_users(s)
    yield s
    s.stop()


def as_(server: Server, name: str, **headers: str) -> Any:
    return server.client(server.tokens[name], **headers)


def decide(server: Server, who: str, h: dict[str, Any]) -> dict[str, Any]:
    r = as_(server, who).post("/v1/decisions", json=h)
    assert r.status_code == 201, r.text
    d: dict[str, Any] = r.json()
    return d


def bundle(change: tuple[str, str, str], *, tests: bool) -> bytes:
    """The bundled rules as a zip with one text changed (and without rule tests if asked)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for path in sorted(RULES.rglob("*")):
            rel = path.relative_to(RULES).as_posix()
            if not path.is_file() or path.suffix not in (".yaml", ".json") or (rel.startswith("tests/") and not tests):
                continue
            text = path.read_text(encoding="utf-8")
            if rel == change[0]:
                assert change[1] in text
                text = text.replace(change[1], change[2])
            z.writestr(f"rules/{rel}", text)
    return buf.getvalue()


# the July 2019 dibao standard of region 320684 raised, so a 2019-08-01 decision differs under it
RAISED_JULY = ("parameters/dibao.yaml", "2019-07-01: {value: 790,", "2019-07-01: {value: 850,")


def publish(server: Server, effective_from: str) -> int:
    r = as_(server, "政策", **{"Content-Type": "application/zip"}).post(
        "/v1/rulesets", params={"effective_from": effective_from}, content=bundle(RAISED_JULY, tests=False)
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


# ------------------------------------------------------------ row 5


def test_row05_header_only_registry_refused(server: Server) -> None:
    data = as_(server, "数据", **{"Content-Type": "text/csv"})
    relatives = (FIXTURES / "registries" / "relatives.csv").read_text(encoding="utf-8")
    header = relatives.splitlines()[0] + "\n"
    before = as_(server, "数据").get("/v1/registries").json()["relatives"]["version_id"]
    r = data.put("/v1/registries/relatives", content=header.encode())
    assert r.status_code == 422
    assert r.json()["report"]["rows"] == 0
    assert "allow_empty" in r.json()["detail"]
    # every row invalid: refused, and the report counts every row exactly
    bad_rows = header + "".join(f"3206841965101003{i:02d},X,张,专干,cousin\n" for i in range(5))
    r = data.put("/v1/registries/relatives", content=bad_rows.encode())
    assert r.status_code == 422
    report = r.json()["report"]
    assert (report["rows"], report["accepted"], report["rejected_rows"]) == (5, 0, 5)
    # a duplicated header column: refused naming it, whatever the flags say
    doubled = relatives.replace("relation", "relation,relation", 1)
    r = data.put("/v1/registries/relatives", content=doubled.encode(), params={"accept_partial": "true"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "relation"
    assert as_(server, "数据").get("/v1/registries").json()["relatives"]["version_id"] == before
    # the registry still blocks the kin case (the attack: an empty registry approved it)
    blocked = decide(server, "数据", household("HM-2019-000109"))
    assert blocked["blocked"] is True
    assert as_(server, "市官").post(f"/v1/decisions/{blocked['decision_id']}/approve").status_code == 409
    # emptying a registry is possible, but only when the upload says so
    r = data.put("/v1/registries/relatives", content=header.encode(), params={"allow_empty": "true"})
    assert r.status_code == 200
    assert (r.json()["rows"], r.json()["accepted"]) == (0, 0)
    assert data.put("/v1/registries/relatives", content=relatives.encode()).status_code == 200


# ------------------------------------------------------------ row 7


def test_row07_township_officer_cannot_reject_city_case(server: Server) -> None:
    large = decide(server, "数据", household("HM-2019-000106", township=CHANGLE))
    assert large["ta_authority"] == "city"
    r = as_(server, "镇官").post(f"/v1/decisions/{large['decision_id']}/reject")
    assert r.status_code == 403
    assert "township approval limit" in r.json()["detail"]
    assert "rejects" in r.json()["detail"]
    # the city officer is not locked out by the refused rejection
    assert as_(server, "市官").post(f"/v1/decisions/{large['decision_id']}/approve").status_code == 201


def test_row07_four_eyes_the_requester_never_approves(server: Server) -> None:
    own = decide(server, "市官", household("HM-2019-000105"))
    for action in ("approve", "reject"):
        r = as_(server, "市官").post(f"/v1/decisions/{own['decision_id']}/{action}")
        assert r.status_code == 403
        assert "four eyes" in r.json()["detail"]
    assert as_(server, "市官二").post(f"/v1/decisions/{own['decision_id']}/approve").status_code == 201


def test_row07_township_officers_are_bound_to_their_township(server: Server) -> None:
    elsewhere = decide(server, "数据", household("HM-2019-000105"))  # 正余镇
    home = decide(server, "数据", household("HM-2019-000101"))  # 常乐镇
    officer = as_(server, "镇官")
    assert officer.post("/v1/decisions", json=household("HM-2019-000105")).status_code == 403
    batch = [household("HM-2019-000101"), household("HM-2019-000105")]
    r = officer.post("/v1/decisions/batch", json=batch)
    assert r.status_code == 403
    assert "index 1" in r.json()["detail"]
    for path in ("", "/replay"):
        assert officer.get(f"/v1/decisions/{elsewhere['decision_id']}{path}").status_code == 403
        assert officer.get(f"/v1/decisions/{home['decision_id']}{path}").status_code == 200
    assert officer.post(f"/v1/decisions/{elsewhere['decision_id']}/reject").status_code == 403
    assert as_(server, "外镇官").post(f"/v1/decisions/{elsewhere['decision_id']}/reject").status_code == 201


# ------------------------------------------------------------ row 8


def test_row08_registry_change_between_decision_and_approval_needs_redecide(server: Server) -> None:
    h = household("HM-2019-000101", township=CHANGLE)
    stale = decide(server, "数据", h)
    assert stale["blocked"] is False
    relatives = (FIXTURES / "registries" / "relatives.csv").read_text(encoding="utf-8")
    kin = h["members"][0]["person_id"]
    r = as_(server, "数据", **{"Content-Type": "text/csv"}).put(
        "/v1/registries/relatives", content=(relatives + f"{kin},HM-OFF-0099,赵,镇干部,spouse\n").encode()
    )
    assert r.status_code == 200, r.text
    r = as_(server, "镇官").post(f"/v1/decisions/{stale['decision_id']}/approve")
    assert r.status_code == 409
    assert "re-decide: the relatives registry is now version" in r.json()["detail"]
    again = decide(server, "数据", h)
    assert again["blocked"] is True  # re-decided: the relative is in the registry again
    assert as_(server, "镇官").post(f"/v1/decisions/{again['decision_id']}/reject").status_code == 201
    assert (
        as_(server, "数据", **{"Content-Type": "text/csv"})
        .put("/v1/registries/relatives", content=relatives.encode())
        .is_success
    )


def test_row08_ruleset_change_between_decision_and_approval_needs_redecide(tmp_path: Path) -> None:
    s = start(tmp_path)
    try:
        add_users(s, "数据", "政策", "市官")
        stale = decide(s, "数据", household("HM-2019-000114"))
        new_id = publish(s, "2019-07-01")  # now in force on the decision's date
        r = as_(s, "市官").post(f"/v1/decisions/{stale['decision_id']}/approve")
        assert r.status_code == 409
        assert "re-decide" in r.json()["detail"]
        assert f"(id {new_id})" in r.json()["detail"]
        fresh = decide(s, "数据", household("HM-2019-000114"))
        assert fresh["ruleset_id"] == new_id
        assert as_(s, "市官").post(f"/v1/decisions/{fresh['decision_id']}/approve").status_code == 201
    finally:
        s.stop()


# ------------------------------------------------------------ row 14


def test_row14_roles_follow_the_readme_table(server: Server) -> None:
    d = decide(server, "数据", household("HM-2019-000102"))
    r = as_(server, "数据").get(f"/v1/decisions/{d['decision_id']}")
    assert r.status_code == 403  # data stores decisions, it does not read them back
    assert as_(server, "数据").get("/v1/decisions").status_code == 403
    caseload = server.folder / "row14.jsonl"
    caseload.write_bytes((FIXTURES / "households.jsonl").read_bytes())
    r = as_(server, "政策").post("/v1/impact", json={"caseload": "row14.jsonl", "date": "2019-08-01"})
    assert r.status_code == 202
    jid = r.json()["id"]
    assert finished(server, jid, server.tokens["政策"])["status"] == "done"  # its own impact job
    assert as_(server, "政策").get(f"/v1/screenings/{jid}/files/report").status_code == 200
    assert as_(server, "政策二").get(f"/v1/screenings/{jid}").status_code == 403  # not its job
    r = as_(server, "数据").post(
        "/v1/screenings", content=caseload.read_bytes(), headers={"Content-Type": "application/x-ndjson"}
    )
    assert as_(server, "政策").get(f"/v1/screenings/{r.json()['id']}").status_code == 403
    own = decide(server, "市官", household("HM-2019-000102"))
    assert as_(server, "市官").post(f"/v1/decisions/{own['decision_id']}/approve").status_code == 403
    assert as_(server, "镇官").get(f"/v1/decisions/{d['decision_id']}").status_code == 403  # 悦来镇


# ------------------------------------------------------------ row 15


def test_row15_screening_uses_ruleset_in_force_on_decision_date(tmp_path: Path) -> None:
    s = start(tmp_path)
    try:
        add_users(s, "数据", "政策", "审计")
        publish(s, "2019-09-01")  # in force today; 2019-08-01 stays under the bundled version
        single = decide(s, "数据", household("HM-2019-000114"))
        assert single["ruleset_id"] == 1
        # the samples decided on 2019-08-01 (one sample is a 2020 household, under another version)
        samples = (FIXTURES / "households.jsonl").read_text(encoding="utf-8").splitlines()
        lines = "".join(x + "\n" for x in samples if json.loads(x).get("decision_date") == "2019-08-01").encode()
        r = as_(s, "数据").post("/v1/screenings", content=lines, headers={"Content-Type": "application/x-ndjson"})
        job = finished(s, r.json()["id"], s.tokens["数据"])
        assert job["status"] == "done", job
        decisions = pl.read_parquet(
            io.BytesIO(as_(s, "数据").get(f"/v1/screenings/{job['id']}/files/decisions").content)
        )
        row = decisions.filter(pl.col("household_id") == "HM-2019-000114").to_dicts()[0]
        assert str(row["dibao_amount"]) == single["dibao_amount"]
        assert row["ruleset_version"] == single["ruleset_version"]
        # impact and monitoring read the same caseload under the same ruleset
        (tmp_path / "caseload.jsonl").write_bytes(lines)
        r = as_(s, "政策").post("/v1/impact", json={"caseload": "caseload.jsonl", "set": []})
        impact = finished(s, r.json()["id"], s.tokens["政策"])
        assert impact["status"] == "done", impact
        assert impact["summary"]["base"] == single["ruleset_version"]
        person = household("HM-2019-000114")["members"][0]["person_id"]
        event = {"event_id": "e1", "type": "income_changed", "person_id": person, "date": "2019-07-15"}
        event["monthly_income"] = "9000.00"
        r = as_(s, "数据").post("/v1/events", params={"caseload": "caseload.jsonl"}, content=json.dumps(event).encode())
        job = finished(s, r.json()["id"], s.tokens["数据"])
        assert job["status"] == "done", job
        findings = as_(s, "审计").get(f"/v1/events/{job['id']}/findings").json()
        assert findings[0]["old"]["dibao_amount"] == single["dibao_amount"]
        # rows under two versions (a 2019 row, a 2020 row): split by version, each part decided
        # under its own, joined; every row as POST /v1/decisions decides it alone
        later = household("HM-2019-000114", household_id="HM-2020-000199", decision_date="2020-03-01")
        alone = {d["household_id"]: d for d in (single, decide(s, "数据", later))}
        assert alone["HM-2020-000199"]["ruleset_id"] != single["ruleset_id"]
        first = json.dumps(household("HM-2019-000114")).encode()
        mixed = first + b"\n" + json.dumps(later).encode() + b"\n"
        r = as_(s, "数据").post("/v1/screenings", content=mixed, headers={"Content-Type": "application/x-ndjson"})
        job = finished(s, r.json()["id"], s.tokens["数据"])
        assert job["status"] == "done", job
        got = pl.read_parquet(io.BytesIO(as_(s, "数据").get(f"/v1/screenings/{job['id']}/files/decisions").content))
        assert sorted(got.get_column("household_id").to_list()) == sorted(alone)
        for row in got.to_dicts():
            expected = alone[row["household_id"]]
            assert row["ruleset_version"] == expected["ruleset_version"]
            assert str(row["dibao_amount"]) == expected["dibao_amount"]
            assert row["dibao_status"] == expected["dibao_status"]
        versions = {d["ruleset_version"] for d in alone.values()}
        assert len(versions) == 2
        assert {p["ruleset_version"] for p in job["summary"]["rulesets"]} == versions
        assert (job["summary"]["rows_in"], job["summary"]["decided"]) == (2, 2)
        # impact on the same caseload: each part compared under its own version
        (tmp_path / "mixed.jsonl").write_bytes(mixed)
        r = as_(s, "政策").post("/v1/impact", json={"caseload": "mixed.jsonl", "set": []})
        impact = finished(s, r.json()["id"], s.tokens["政策"])
        assert impact["status"] == "done", impact
        assert {p["base"] for p in impact["summary"]["parts"]} == versions
        assert impact["summary"]["households"] == 2
        assert impact["summary"]["changed"] == 0  # no `set`: each part's base and head agree
        # monitoring re-decides one reference caseload: still refused naming both versions
        r = as_(s, "数据").post("/v1/events", params={"caseload": "mixed.jsonl"}, content=json.dumps(event).encode())
        job = finished(s, r.json()["id"], s.tokens["数据"])
        assert job["status"] == "failed"
        assert "more than one ruleset" in job["error"]
        assert "2020-03-01" in job["error"]
    finally:
        s.stop()


# ------------------------------------------------------------ row 16


def test_row16_impact_jsonl_bad_lines_are_decided_or_rejected(server: Server) -> None:
    good = (FIXTURES / "households.jsonl").read_text(encoding="utf-8").splitlines()
    first = json.loads(good[0])
    bad = [
        "{not json",
        "[1, 2]",
        '"a string"',
        json.dumps({**first, "household_id": ""}),
        json.dumps({**first, "household_id": None}),
        good[1],  # a repeated household: both copies rejected
    ]
    (server.folder / "row16.jsonl").write_text("\n".join(good + bad) + "\n", encoding="utf-8")
    r = as_(server, "政策").post(
        "/v1/impact", json={"caseload": "row16.jsonl", "set": ["dibao.standard=850@2019-07-01"]}
    )
    job = finished(server, r.json()["id"], server.tokens["数据"])
    assert job["status"] == "done", job
    summary = job["summary"]
    assert summary["rows_in"] == len(good) + len(bad)
    assert summary["households"] + summary["rejected"] == summary["rows_in"]
    assert summary["households"] == len(good) - 1
    rejects = as_(server, "数据").get(f"/v1/screenings/{job['id']}/files/rejects").text
    assert "(json)" in rejects
    assert rejects.count("must be a JSON object") == 2
    assert rejects.count("is required") >= 2
