"""The service attacked over HTTP (issue 10, rows 10, 11, 17, 18, 19, 22): a real `jiuzhu
serve` on 127.0.0.1 with a SQLite file; the engine's file writers called as the jobs call them."""

from __future__ import annotations

import asyncio
import copy
import csv
import datetime as dt
import io
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest

from api.masking import IdMaskingFilter
from engine import Evaluator, impact, safe_cell, screen, with_settings
from fixtures.server import Server, jiuzhu, start
from tests.conftest import FIXTURES

FORMULA = '=HYPERLINK("http://evil.example","x")'
RISKY = tuple("=+-@\t\r")


def _household(name: str = "HM-2019-000114") -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "households" / f"{name}.json").read_text(encoding="utf-8"))
    return data


def _risky(cell: str) -> bool:
    """A text cell a spreadsheet would run: starts like a formula and is not a plain number."""
    if not cell.startswith(RISKY):
        return False
    try:
        float(cell)
    except ValueError:
        return True
    return False


def _csv_cells(text: str) -> list[str]:
    return [c for row in csv.reader(io.StringIO(text.lstrip("\ufeff"))) for c in row]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = start(tmp_path_factory.mktemp("attack"))
    s.add_user("市官", "officer", "--level", "city", "--certificate", "JS-1", "--valid-until", "2099-12-31")
    s.add_user("官二", "officer", "--level", "city", "--certificate", "JS-2", "--valid-until", "2099-12-31")
    s.add_user("数据", "data")
    s.add_user("审计", "auditor")
    s.add_user("政策", "policy")
    yield s
    s.stop()


# ---------------------------------------------------------------- row 10


def test_row10_formula_cells_neutralised_in_disclosure(server: Server) -> None:
    h = _household()
    h["township"] = FORMULA
    h["members"][0]["name"] = "@SUM(1+1)"
    officer = server.client(server.tokens["市官"])
    d = officer.post("/v1/decisions", json=h)
    assert d.status_code == 201, d.text
    approver = server.client(server.tokens["官二"])
    assert approver.post(f"/v1/decisions/{d.json()['decision_id']}/approve").status_code == 201
    auditor = server.client(server.tokens["审计"])
    today = dt.date.today().isoformat()
    text = auditor.get("/v1/disclosure", params={"from": today, "to": today}).content.decode("utf-8")
    cells = _csv_cells(text)
    assert "'" + FORMULA in cells
    assert not [c for c in cells if _risky(c)]
    xlsx = auditor.get("/v1/disclosure", params={"from": today, "to": today, "format": "xlsx"})
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet is not None
    found = [c for row in sheet.iter_rows() for c in row]
    assert all(c.data_type != "f" for c in found), "no cell is a formula"
    assert "'" + FORMULA in [c.value for c in found]
    assert not [c.value for c in found if isinstance(c.value, str) and _risky(c.value)]
    # money stays a number: the decision's amount is a numeric cell
    amount = d.json()["dibao_amount"]
    assert float(amount) in [c.value for c in found if isinstance(c.value, float | int)]


def test_row10_formula_cells_neutralised_in_screening_csv_and_xlsx(evaluator: Evaluator, tmp_path: Path) -> None:
    caseload = tmp_path / "caseload.jsonl"
    rows = []
    for i, start_with in enumerate(RISKY):
        h = _household()
        h["household_id"] = f"{start_with}cmd|' /C calc'!A{i}"
        h["township"] = f"{start_with}1+1"
        rows.append(json.dumps(h, ensure_ascii=False))
    bad = _household()
    bad["household_id"] = "=BAD()"
    bad["members"][0]["birth_date"] = "not a date"
    rows.append(json.dumps(bad, ensure_ascii=False))
    caseload.write_text("\n".join(rows) + "\n", encoding="utf-8")
    for fmt in ("csv", "xlsx"):
        out = tmp_path / fmt
        summary = screen(evaluator, caseload, out, fmt=fmt, decision_date=dt.date(2019, 8, 1))
        assert (summary["decided"], summary["rejected"]) == (len(RISKY), 1)
        for name in ("decisions", "rejects"):
            if fmt == "csv":
                cells = _csv_cells((out / f"{name}.csv").read_text(encoding="utf-8"))
            else:
                book = openpyxl.load_workbook(out / f"{name}.xlsx")
                found = [c for sheet in book.worksheets for row in sheet.iter_rows() for c in row]
                assert all(c.data_type != "f" for c in found)
                cells = [c.value for c in found if isinstance(c.value, str)]
            assert not [c for c in cells if _risky(c)], (fmt, name)
            assert any(c.startswith("'=") for c in cells), (fmt, name)


def test_row10_formula_cells_neutralised_in_impact_files(evaluator: Evaluator, tmp_path: Path) -> None:
    caseload = tmp_path / "caseload.jsonl"
    h = _household()
    h["township"] = FORMULA
    caseload.write_text(json.dumps(h, ensure_ascii=False) + "\n", encoding="utf-8")
    head = Evaluator(with_settings(evaluator.ruleset, ["dibao.standard=950@2019-07-01"]), evaluator.registries)
    for fmt in ("csv", "xlsx"):
        out = tmp_path / fmt
        impact(evaluator, head, caseload, out, decision_date=dt.date(2019, 8, 1), fmt=fmt)
        for name in ("changes", "budget"):
            path = out / f"{name}.{fmt if name == 'changes' else 'csv'}"
            if path.suffix == ".csv":
                cells = _csv_cells(path.read_text(encoding="utf-8"))
            else:
                sheet = openpyxl.load_workbook(path).active
                assert sheet is not None
                found = [c for row in sheet.iter_rows() for c in row]
                assert all(c.data_type != "f" for c in found)
                cells = [c.value for c in found if isinstance(c.value, str)]
            assert "'" + FORMULA in cells, (fmt, name)
            assert not [c for c in cells if _risky(c)], (fmt, name)


def test_row10_one_helper_keeps_numbers() -> None:
    assert safe_cell("-12.50") == "-12.50"
    assert safe_cell(-12.5) == -12.5
    assert safe_cell("+86") == "+86"
    assert safe_cell("-1+2") == "'-1+2"
    assert safe_cell("\t=x") == "'\t=x"
    assert safe_cell("") == ""


# ---------------------------------------------------------------- row 11


def _ledger_count(server: Server) -> int:
    con = sqlite3.connect(server.db.removeprefix("sqlite:///"), timeout=30)
    try:
        return int(con.execute("SELECT count(*) FROM ledger").fetchone()[0])
    finally:
        con.close()


def test_row11_batch_does_not_block_healthz(server: Server) -> None:
    base = _household("HM-2019-000101")
    batch = []
    for i in range(1000):
        h = copy.deepcopy(base)
        h["household_id"] = f"HB-{i:04d}"
        batch.append(h)
    before = _ledger_count(server)
    answers: list[httpx.Response] = []

    def send() -> None:
        with httpx.Client(base_url=server.url, timeout=300) as c:
            answers.append(
                c.post("/v1/decisions/batch", json=batch, headers={"Authorization": f"Bearer {server.tokens['数据']}"})
            )

    sender = threading.Thread(target=send)
    sender.start()
    # /healthz asked again and again while the batch is in flight: a server deciding on its
    # event loop answers one or two (those that arrive before the batch's body) and then none
    # until the batch is done; one deciding in worker threads answers them all along
    answered_during = 0
    with httpx.Client(base_url=server.url, timeout=120) as probe:
        while sender.is_alive():
            health = probe.get("/healthz")
            assert health.status_code == 200
            answered_during += sender.is_alive()
    sender.join(timeout=300)
    assert answers, "the batch got no answer"
    assert answers[0].status_code == 201, answers[0].text[:300]
    assert answers[0].json()["decided"] == 1000
    assert answered_during >= 10, f"healthz answered only {answered_during} times while the batch ran"
    assert _ledger_count(server) == before + 1000


# ---------------------------------------------------------------- rows 17, 18


def _fields(r: httpx.Response) -> set[str]:
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    return {e["field"] for e in r.json()["errors"]}


def test_row17_hostile_bodies_get_4xx_naming_the_field(server: Server) -> None:
    officer = server.client(server.tokens["市官"])
    deep = officer.post("/v1/decisions", content=b"[" * 100_000, headers={"Content-Type": "application/json"})
    assert _fields(deep) == {"(body)"}
    deep_object = officer.post(
        "/v1/decisions", content=b'{"a":' * 5000 + b"1" + b"}" * 5000, headers={"Content-Type": "application/json"}
    )
    assert _fields(deep_object) == {"(body)"}
    h = _household()
    text = json.dumps(h).replace('"houses": 1', '"houses": ' + "9" * 5000)
    huge = officer.post("/v1/decisions", content=text.encode(), headers={"Content-Type": "application/json"})
    assert "assets.houses" in _fields(huge)
    assert officer.get("/v1/decisions/" + "9" * 5000).status_code in (404, 422)
    data = server.client(server.tokens["数据"])
    assert _fields(data.post("/v1/screenings", json={"path": "a\x00b.jsonl"})) == {"path"}
    assert _fields(data.post("/v1/screenings", json={"path": "x" * 5000})) == {"path"}
    assert _fields(data.post("/v1/screenings", json={"path": "/".join(["y" * 255] * 20)})) == {"path"}
    assert _fields(data.post("/v1/events", params={"caseload": "a\x00"}, content=b"{}\n")) == {"caseload"}
    (server.folder / "impact17.jsonl").write_text(json.dumps(_household()) + "\n", encoding="utf-8")
    policy = server.client(server.tokens["政策"])
    body = {"caseload": "impact17.jsonl", "set": ["dibao.standard=850@2019-02-30"]}
    assert _fields(policy.post("/v1/impact", json=body)) == {"set[0]"}
    assert _fields(policy.post("/v1/impact", json={**body, "caseload": "z" * 5000, "set": []})) == {"caseload"}


def test_row18_dates_strict_and_strings_bounded(server: Server) -> None:
    officer = server.client(server.tokens["市官"])

    def refused(change: Any) -> set[str]:
        h = _household()
        change(h)
        return _fields(officer.post("/v1/decisions", json=h))

    assert "decision_date" in refused(lambda h: h.update(decision_date="2019-W31-1"))
    assert "decision_date" in refused(lambda h: h.update(decision_date="20190801"))
    assert "decision_date" in refused(lambda h: h.update(decision_date="9999-12-31"))
    assert "members[0].birth_date" in refused(lambda h: h["members"][0].update(birth_date="19500101"))
    assert "members[0].birth_date" in refused(lambda h: h["members"][0].update(birth_date="1850-01-01"))
    assert "township" in refused(lambda h: h.update(township="常乐\x07镇"))
    assert "members[0].name" in refused(lambda h: h["members"][0].update(name="张\x00三"))
    assert "household_id" in refused(lambda h: h.update(household_id="H" * 200_000))
    auditor = server.client(server.tokens["审计"])
    for bad in ("2019-W31-1", "19500101", "9999-12-31", "86400"):
        r = auditor.get("/v1/disclosure", params={"from": bad, "to": "2019-08-01"})
        assert r.status_code == 422, (bad, r.text)
        assert any("from" in f for f in _fields(r))
    policy = server.client(server.tokens["政策"])
    (server.folder / "impact18.jsonl").write_text(json.dumps(_household()) + "\n", encoding="utf-8")
    assert _fields(policy.post("/v1/impact", json={"caseload": "impact18.jsonl", "date": "19500101"})) == {"date"}
    data = server.client(server.tokens["数据"])
    assert _fields(data.post("/v1/screenings", json={"path": "impact18.jsonl", "date": "2019-W31-1"})) == {"date"}


def test_row18_cli_dates_are_strict_too() -> None:
    household = str(FIXTURES / "households" / "HM-2019-000101.json")
    for bad in ("2019-W31-1", "19500101", "9999-12-31", "2019-8-1"):
        r = jiuzhu("check", household, "--date", bad)
        assert r.returncode == 2, (bad, r.stdout[:200])
        assert "--date" in r.stderr
    assert jiuzhu("check", household, "--date", "2019-08-01").returncode == 0


# ---------------------------------------------------------------- row 19


def test_row19_no_server_paths_in_errors_and_ids_masked_in_logs(server: Server) -> None:
    data = server.client(server.tokens["数据"])
    (server.folder / "empty-folder").mkdir(exist_ok=True)
    r = data.post("/v1/screenings", json={"path": "empty-folder", "format": "csv"})
    bodies = [r.text]
    if r.status_code == 202:
        jid = r.json()["id"]
        for _ in range(600):
            job = data.get(f"/v1/screenings/{jid}").json()
            if job["status"] not in ("queued", "running"):
                break
            time.sleep(0.05)
        assert job["status"] == "failed", job
        bodies.append(json.dumps(job, ensure_ascii=False))
    bodies.append(data.post("/v1/screenings", json={"path": "../outside"}).text)
    for body in bodies:
        assert str(server.folder) not in body, body
        assert str(server.folder.resolve()) not in body, body
        assert str(Path.cwd()) not in body, body
    person = _household()["members"][0]["person_id"]
    server.client(server.tokens["数据"]).put(f"/v1/registries/{person}", content=b"x")
    assert person not in "".join(server.output)


def test_row19_tracebacks_in_the_log_are_masked() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(IdMaskingFilter())
    log = logging.getLogger("jiuzhu.test.row19")
    log.addHandler(handler)
    log.propagate = False
    try:
        try:
            raise ValueError("bad household with 320684195009090557")
        except ValueError:
            log.exception("failed for %s", "32068419511010057X")
    finally:
        log.removeHandler(handler)
    text = stream.getvalue()
    assert "Traceback" in text
    assert "320684195009090557" not in text
    assert "32068419511010057X" not in text
    assert "3206**********0557" in text


def test_row19_an_unexpected_error_is_a_bare_500_with_a_masked_traceback() -> None:
    from api.http_safety import SafetyMiddleware, error_log

    async def broken(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("cannot read /srv/secret/320684195009090557.json")

    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(IdMaskingFilter())
    error_log.addHandler(handler)
    try:
        scope = {"type": "http", "method": "GET", "path": "/boom", "query_string": b""}
        asyncio.run(SafetyMiddleware(broken)(scope, receive, send))
    finally:
        error_log.removeHandler(handler)
    assert sent[0]["status"] == 500
    assert (b"x-content-type-options", b"nosniff") in sent[0]["headers"]
    body = sent[1]["body"].decode()
    assert "/srv" not in body
    assert "320684" not in body
    log = stream.getvalue()
    assert "Traceback" in log
    assert "RuntimeError" in log
    assert "320684195009090557" not in log


# ---------------------------------------------------------------- row 22


def test_row22_security_headers_and_offline_docs(server: Server) -> None:
    anyone = server.client()
    for r in (
        anyone.get("/healthz"),
        anyone.post("/v1/decisions", json={}),
        anyone.get("/docs"),
        anyone.get("/nope"),
    ):
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "no-referrer"
    docs = anyone.get("/docs")
    assert docs.status_code == 200
    assert "http://" not in docs.text, "no asset from outside the service"
    assert "https://" not in docs.text, "no asset from outside the service"
    assert "/docs/assets/swagger-ui-bundle.js" in docs.text
    js = anyone.get("/docs/assets/swagger-ui-bundle.js")
    assert js.status_code == 200
    assert len(js.content) > 100_000
    assert anyone.get("/docs/assets/swagger-ui.css").status_code == 200
    spec = anyone.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert any(s["type"] == "http" and s["scheme"].lower() == "bearer" for s in schemes.values())
    assert spec["paths"]["/v1/decisions"]["post"]["security"]
    # the access log: method, path (IDs masked), status, milliseconds, user id
    person = "320684195009090557"
    server.client(server.tokens["审计"]).get(f"/v1/decisions/{person}")
    time.sleep(0.2)
    log = "".join(server.output)
    assert person not in log
    line = next(x for x in log.splitlines() if "GET /v1/decisions/3206**********0557" in x)
    assert " 404 " in line
    assert "ms user=" in line
    assert "user=-" not in line
