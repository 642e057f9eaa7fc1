"""End to end: a real `jiuzhu serve` on 127.0.0.1 with a SQLite file, spoken to over HTTP."""

from __future__ import annotations

import copy
import io
import json
import sqlite3
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from engine import load
from fixtures.server import Server, jiuzhu, start
from tests.conftest import FIXTURES, RULES


def _household(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "households" / f"{name}.json").read_text(encoding="utf-8"))
    return data


def _finished(server: Server, jid: int) -> dict[str, Any]:
    """Poll a job until it is done or failed."""
    data = server.client(server.tokens["数据"])
    for _ in range(600):
        job: dict[str, Any] = data.get(f"/v1/screenings/{jid}").json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {jid} did not finish")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = start(tmp_path_factory.mktemp("service"))
    s.add_user(
        "王镇",
        "officer",
        "--level",
        "township",
        "--township",
        "常乐镇",
        "--certificate",
        "JS-2019-0001",
        "--valid-until",
        "2099-12-31",
    )
    s.add_user("李市", "officer", "--level", "city", "--certificate", "JS-2019-0002", "--valid-until", "2099-12-31")
    s.add_user("过期", "officer", "--level", "city", "--certificate", "JS-2015-0003", "--valid-until", "2016-01-01")
    s.add_user("政策", "policy")
    s.add_user("数据", "data")
    s.add_user("审计", "auditor")
    yield s
    s.stop()


def test_health_and_auth(server: Server) -> None:
    assert server.client().get("/healthz").status_code == 200
    assert server.client().post("/v1/decisions", json=_household("HM-2019-000101")).status_code == 401
    assert server.client("not-a-token").post("/v1/decisions", json=_household("HM-2019-000101")).status_code == 401
    r = server.client(server.tokens["审计"]).post("/v1/decisions", json=_household("HM-2019-000101"))
    assert r.status_code == 403
    assert "needs officer or data" in r.json()["detail"]


def test_decision_is_stored_explained_and_replayed(server: Server) -> None:
    officer = server.client(server.tokens["王镇"], **{"Accept-Language": "en"})
    r = officer.post("/v1/decisions", json=_household("HM-2019-000101"), params={"explain": "text"})
    assert r.status_code == 201
    d = r.json()
    assert (d["dibao_status"], d["dibao_amount"], d["findings"]) == ("eligible", "480.00", ["amount_up"])
    assert d["explanation"]["language"] == "en"
    assert "Income 1100.00 is below 2 × standard 790.00" in d["explanation"]["text"]
    assert any(p["name"] == "dibao.standard" and p["version"] == "2019-07-01" for p in d["explanation"]["parameters"])
    zh = (
        server.client(server.tokens["审计"], **{"Accept-Language": "zh-CN"})
        .get(f"/v1/decisions/{d['decision_id']}")
        .json()
    )
    assert zh["dibao_amount"] == "480.00"
    assert zh["explanation"]["language"] == "zh"
    assert any("家庭月收入" in r["message"] for r in zh["explanation"]["rules"])
    replay = server.client(server.tokens["审计"]).get(f"/v1/decisions/{d['decision_id']}/replay").json()
    assert replay["same"] is True
    assert replay["ruleset_version"] == d["ruleset_version"]


def test_each_replay_is_a_ledger_record_and_the_chain_stays_intact(server: Server) -> None:
    """A replay (an auditor's too: who looked is on the record) appends one "replay" record that
    refers to the decision, with what it found and the versions used; `audit verify` passes after."""
    made = server.client(server.tokens["王镇"]).post("/v1/decisions", json=_household("HM-2019-000101")).json()
    seq = made["decision_id"]
    auditor = server.client(server.tokens["审计"])
    first, second = (auditor.get(f"/v1/decisions/{seq}/replay").json() for _ in range(2))
    assert (first["same"], first["differs"]) == (True, [])
    assert second["replay_id"] > first["replay_id"] > seq
    con = sqlite3.connect(f"file:{server.db.removeprefix('sqlite:///')}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT l.seq, u.name, l.body FROM ledger l JOIN users u ON u.id = l.actor_id"
            " WHERE l.kind = 'replay' AND l.ref = ? ORDER BY l.seq",
            (seq,),
        ).fetchall()
        stored = json.loads(con.execute("SELECT body FROM ledger WHERE seq = ?", (seq,)).fetchone()[0])
    finally:
        con.close()
    assert [(r[0], r[1]) for r in rows] == [(first["replay_id"], "审计"), (second["replay_id"], "审计")]
    body = json.loads(rows[0][2])
    assert (body["decision_id"], body["matches"], body["differs"]) == (seq, True, [])
    assert (body["ruleset_id"], body["registry_versions"]) == (stored["ruleset_id"], stored["registry_versions"])
    assert body["ruleset_version"] == made["ruleset_version"]
    verified = jiuzhu("audit", "verify", "--db", server.db)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "ledger intact" in verified.stdout


def test_bad_input_gets_4xx_naming_the_field(server: Server) -> None:
    officer = server.client(server.tokens["王镇"])
    h = _household("HM-2019-000101")
    del h["members"][0]["monthly_income"]
    r = officer.post("/v1/decisions", json=h)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "members[0].monthly_income"
    r = officer.post("/v1/decisions", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "(body)"
    assert officer.post("/v1/decisions", content=b"[" + b" " * 300_000 + b"]").status_code == 413
    assert officer.get("/v1/decisions/999999").status_code == 404
    assert officer.get("/v1/decisions/abc").status_code == 422
    assert officer.post("/v1/decisions", json=[1, 2]).status_code == 422


def test_batch(server: Server) -> None:
    data = server.client(server.tokens["数据"])
    bad = _household("HM-2019-000103")
    bad["members"][0]["disability"] = "sever"
    r = data.post("/v1/decisions/batch", json=[_household("HM-2019-000102"), bad, _household("HM-2019-000104")])
    assert r.status_code == 201
    body = r.json()
    assert (body["decided"], body["rejected"]) == (2, 1)
    assert body["results"][1]["errors"][0]["field"] == "members[0].disability"
    assert data.post("/v1/decisions/batch", json=[]).status_code == 422


def test_approvals_respect_certificates_authority_and_kin_blocks(server: Server) -> None:
    township = server.client(server.tokens["王镇"])
    city = server.client(server.tokens["李市"])
    data = server.client(server.tokens["数据"])
    here = {"township": "常乐镇"}  # the township officer's own households
    small = data.post("/v1/decisions", json={**_household("HM-2019-000105"), **here}).json()
    large = data.post("/v1/decisions", json={**_household("HM-2019-000106"), **here}).json()
    blocked = data.post("/v1/decisions", json=_household("HM-2019-000109")).json()
    assert large["ta_authority"] == "city"
    assert blocked["blocked"] is True
    r = township.post(f"/v1/decisions/{small['decision_id']}/approve", json={"note": "入户核查属实"})
    assert r.status_code == 201
    approval = r.json()
    assert approval["officer"]["certificate_no"] == "JS-2019-0001"
    assert (approval["authority"], approval["note"], approval["action"]) == ("township", "入户核查属实", "approve")
    assert township.post(f"/v1/decisions/{small['decision_id']}/approve").status_code == 409
    r = township.post(f"/v1/decisions/{large['decision_id']}/approve")
    assert r.status_code == 403
    assert "township approval limit" in r.json()["detail"]
    assert city.post(f"/v1/decisions/{large['decision_id']}/approve", json={"note": "市局审批"}).status_code == 201
    r = city.post(f"/v1/decisions/{blocked['decision_id']}/approve")
    assert r.status_code == 409
    assert "近亲属未备案" in r.json()["detail"]
    expired = server.client(server.tokens["过期"]).post(f"/v1/decisions/{blocked['decision_id']}/reject")
    assert expired.status_code == 403
    assert "certificate" in expired.json()["detail"]
    assert (
        server.client(server.tokens["数据"]).post(f"/v1/decisions/{blocked['decision_id']}/reject").status_code == 403
    )
    assert city.post(f"/v1/decisions/{blocked['decision_id']}/reject", json={"note": "待备案"}).status_code == 201
    stored = city.get(f"/v1/decisions/{small['decision_id']}").json()
    assert stored["approvals"][0]["officer"]["name"] == "王镇"


def _bundle(change: tuple[str, str, str] | None = None, extra: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for path in sorted(RULES.rglob("*")):
            if path.is_file() and path.suffix in (".yaml", ".json", ".md"):
                rel = path.relative_to(RULES).as_posix()
                text = path.read_text(encoding="utf-8")
                if change and rel == change[0]:
                    assert change[1] in text
                    text = text.replace(change[1], change[2])
                z.writestr(f"rules/{rel}", text)
        for rel, text in (extra or {}).items():
            z.writestr(f"rules/{rel}", text)
    return buf.getvalue()


def test_rule_versions_publish_pick_by_date_and_roll_back(server: Server) -> None:
    policy = server.client(server.tokens["政策"], **{"Content-Type": "application/zip"})
    officer = server.client(server.tokens["李市"])
    raised = (
        "parameters/dibao.yaml",
        '2019-07-01: {value: 790, reference: "[default] 海门市城乡低保标准 2019 年调整"}',
        '2019-07-01: {value: 790, reference: "[default] 海门市城乡低保标准 2019 年调整"}\n        2019-09-01: {value: 850, reference: "测试调整"}',
    )
    broken = _bundle(
        extra={
            "programs/zz.yaml": "program: zz\ntitle: {zh: 错, en: Bad}\nlegal_basis: x\nrules:\n  - id: zz.r\n    title: {zh: r, en: r}\n    when: T < decision_date\n"
        }
    )
    r = policy.post("/v1/rulesets", params={"effective_from": "2019-09-01"}, content=broken)
    assert r.status_code == 422
    assert r.json()["errors"][0]["file"] == "programs/zz.yaml"
    assert (r.json()["errors"][0]["line"], r.json()["errors"][0]["col"]) == (7, 11)
    failing = _bundle(
        (
            "tests/dibao.yaml",
            'dibao_amount: "80.00", low_income_status: ineligible',
            'dibao_amount: "81.00", low_income_status: ineligible',
        )
    )
    r = policy.post("/v1/rulesets", params={"effective_from": "2019-09-01"}, content=failing)
    assert r.status_code == 422
    assert "expected '81.00'" in r.json()["errors"][0]["message"]
    before = len(officer.get("/v1/rulesets").json())
    r = policy.post("/v1/rulesets", params={"effective_from": "2019-09-01"}, content=_bundle(raised))
    assert r.status_code == 201, r.text
    new_id = r.json()["id"]
    assert len(officer.get("/v1/rulesets").json()) == before + 1
    august = officer.post("/v1/decisions", json=_household("HM-2019-000101")).json()
    september = officer.post(
        "/v1/decisions", json={**_household("HM-2019-000101"), "decision_date": "2019-09-15"}
    ).json()
    assert (august["dibao_amount"], september["dibao_amount"]) == ("480.00", "600.00")
    assert september["ruleset_id"] == new_id
    rules = officer.get(f"/v1/rulesets/{new_id}/rules").json()
    assert any(x["id"] == "dibao.eligible" and x["legal_basis"] for x in rules)
    assert server.client(server.tokens["政策"]).post(f"/v1/rulesets/{new_id}/rollback").status_code == 200
    again = officer.post("/v1/decisions", json={**_household("HM-2019-000101"), "decision_date": "2019-09-15"}).json()
    assert again["dibao_amount"] == "480.00"
    assert server.client(server.tokens["政策"]).post(f"/v1/rulesets/{new_id}/rollback").status_code == 409


def test_registry_versions(server: Server) -> None:
    data = server.client(server.tokens["数据"], **{"Content-Type": "text/csv"})
    csv_text = (FIXTURES / "registries" / "relatives.csv").read_text(
        encoding="utf-8"
    ) + "320684196510100371,X,张,专干,spouse\n"
    r = data.put("/v1/registries/relatives", content=csv_text.encode())
    assert r.status_code == 422  # a rejected row refuses the version unless the upload accepts it
    assert (r.json()["report"]["rows"], r.json()["report"]["rejected_rows"]) == (3, 1)
    r = data.put("/v1/registries/relatives", content=csv_text.encode(), params={"accept_partial": "true"})
    assert r.status_code == 200
    report = r.json()
    assert (report["rows"], report["accepted"], report["rejected_rows"]) == (3, 2, 1)
    assert report["rejected"][0]["line"] == 4
    assert data.put("/v1/registries/unknown", content=b"a\n").status_code == 404
    assert data.put("/v1/registries/filings", content=b"household_id\nX\n").status_code == 422
    d = server.client(server.tokens["王镇"]).post("/v1/decisions", json=_household("HM-2019-000109")).json()
    assert d["registry_versions"]["relatives"] == report["version_id"]


def test_disclosure_is_masked(server: Server) -> None:
    officer = server.client(server.tokens["李市"])
    h = _household("HM-2019-000114")
    h["members"][0]["name"] = "张三丰"
    d = server.client(server.tokens["数据"]).post("/v1/decisions", json=h).json()
    assert officer.post(f"/v1/decisions/{d['decision_id']}/approve").status_code == 201
    auditor = server.client(server.tokens["审计"])
    today = time.strftime("%Y-%m-%d")
    text = auditor.get("/v1/disclosure", params={"from": today, "to": today}).content.decode("utf-8-sig")
    assert "张**" in text
    assert "3206**********" in text
    # the decision columns and their labels come from rules/ruleset.yaml, not from Python
    header, *rows = text.splitlines()
    row = next(r for r in rows if "张**" in r)
    shown = load(RULES).reports["disclosure"]
    assert [c for c in header.split(",") if c in {v["zh"] for v in shown.values()}] == [v["zh"] for v in shown.values()]
    assert d["dibao_amount"] in row.split(",")
    assert h["members"][0]["person_id"] not in text
    xlsx = auditor.get("/v1/disclosure", params={"from": today, "to": today, "format": "xlsx"})
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet is not None
    values = [c.value for row in sheet.iter_rows() for c in row]
    assert "张**" in values
    assert auditor.get("/v1/disclosure", params={"from": today, "to": today, "format": "pdf"}).status_code == 422


def test_screening_job(server: Server) -> None:
    data = server.client(server.tokens["数据"])
    lines = (FIXTURES / "households.jsonl").read_bytes()
    r = data.post("/v1/screenings", content=lines, headers={"Content-Type": "application/x-ndjson"})
    assert r.status_code == 202
    jid = r.json()["id"]
    job = _finished(server, jid)
    assert job["status"] == "done", job
    samples = len(lines.splitlines())  # every sample household is decidable
    assert job["summary"]["decided"] == samples
    summary = data.get(f"/v1/screenings/{jid}/files/summary")
    assert summary.json()["rows_in"] == samples
    assert data.get(f"/v1/screenings/{jid}/files/decisions").status_code == 200
    assert data.post("/v1/screenings", json={"path": "../../etc"}).status_code == 422


def test_events_flag_households_for_officers(server: Server) -> None:
    caseload = server.folder / "caseload.jsonl"
    caseload.write_bytes((FIXTURES / "households.jsonl").read_bytes())
    person = _household("HM-2019-000101")["members"][0]["person_id"]
    event = {
        "event_id": "ev-1",
        "type": "income_changed",
        "person_id": person,
        "date": "2019-07-15",
        "monthly_income": "3000.00",
    }
    data = server.client(server.tokens["数据"])
    r = data.post(
        "/v1/events",
        params={"caseload": "caseload.jsonl"},
        content=json.dumps(event).encode(),
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert r.status_code == 202
    jid = r.json()["id"]
    job = _finished(server, jid)
    assert job["status"] == "done", job
    findings = server.client(server.tokens["王镇"]).get(f"/v1/events/{jid}/findings").json()
    assert [(f["household_id"], f["event_ids"], f["dibao_status"]) for f in findings] == [
        ("HM-2019-000101", ["ev-1"], "ineligible")
    ]
    assert (
        server.client(server.tokens["审计"])
        .post("/v1/events", params={"caseload": "caseload.jsonl"}, content=b"")
        .status_code
        == 403
    )


def test_impact_job(server: Server) -> None:
    caseload = server.folder / "impact.jsonl"
    caseload.write_bytes((FIXTURES / "households.jsonl").read_bytes())
    policy = server.client(server.tokens["政策"])
    body = {"caseload": "impact.jsonl", "set": ["dibao.standard=850@2019-07-01"], "date": "2019-08-01"}
    r = policy.post("/v1/impact", json=body)
    assert r.status_code == 202
    jid = r.json()["id"]
    job = _finished(server, jid)
    assert job["status"] == "done", job
    assert job["summary"]["changed"] > 0
    report = server.client(server.tokens["数据"]).get(f"/v1/screenings/{jid}/files/report")
    assert "政策影响评估" in report.text
    assert policy.post("/v1/impact", json={**body, "set": ["dibao.standard=850"]}).status_code == 422
    assert server.client(server.tokens["数据"]).post("/v1/impact", json=body).status_code == 403


def test_ledger_is_tamper_evident(server: Server, tmp_path: Path) -> None:
    ok = jiuzhu("audit", "verify", "--db", server.db)
    assert ok.returncode == 0
    assert "ledger intact" in ok.stdout
    copy_db = tmp_path / "copy.db"
    source = sqlite3.connect(server.db.removeprefix("sqlite:///"))
    con = sqlite3.connect(copy_db)
    source.backup(con)
    source.close()
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            con.execute("UPDATE ledger SET body = '{}' WHERE seq = 1")
        con.execute("DROP TRIGGER ledger_no_update")
        (first,) = con.execute("SELECT min(seq) FROM ledger WHERE kind = 'decision'").fetchone()
        con.execute("UPDATE ledger SET body = replace(body, '480.00', '980.00') WHERE seq = ?", (first,))
        con.commit()
    finally:
        con.close()
    bad = jiuzhu("audit", "verify", "--db", f"sqlite:///{copy_db}")
    assert bad.returncode == 1
    assert f"broken at record {first}" in bad.stdout


def test_ids_are_masked_in_the_log(server: Server) -> None:
    h = copy.deepcopy(_household("HM-2019-000101"))
    server.client(server.tokens["王镇"]).post("/v1/decisions", json=h)
    assert h["members"][0]["person_id"] not in "".join(server.output)
