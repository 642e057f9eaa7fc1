"""The service answers in the reader's language (Accept-Language, Chinese by default), with the
stable English text and the catalogue code beside it: a real `jiuzhu serve` over HTTP."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator
from typing import Any

import openpyxl
import pytest

from fixtures.server import Server, start
from tests.conftest import FIXTURES


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = start(tmp_path_factory.mktemp("messages"))
    s.add_user("数据", "data")
    yield s
    s.stop()


def _bad_household() -> dict[str, Any]:
    """A sample household with one field missing and one out of bounds."""
    h: dict[str, Any] = json.loads((FIXTURES / "households" / "HM-2019-000101.json").read_text(encoding="utf-8"))
    del h["local_hukou"]
    h["assets"]["houses"] = 51
    return h


def test_the_same_bad_household_in_chinese_and_in_english(server: Server) -> None:
    token = server.tokens["数据"]
    answers = {
        lang: server.client(token, **({"Accept-Language": header} if header else {})).post(
            "/v1/decisions", json=_bad_household()
        )
        for lang, header in (("default", None), ("zh", "zh-CN,zh;q=0.9"), ("en", "en-GB,en;q=0.8,zh;q=0.5"))
    }
    assert {r.status_code for r in answers.values()} == {422}
    zh, en, default = answers["zh"].json(), answers["en"].json(), answers["default"].json()
    assert zh == default  # Chinese unless asked otherwise
    assert zh["detail"] == en["detail"]  # the stable English text, the same for every reader
    by_field = {lang: {e["field"]: e for e in body["errors"]} for lang, body in (("zh", zh), ("en", en))}
    assert by_field["zh"]["local_hukou"]["code"] == by_field["en"]["local_hukou"]["code"] == "reject.required"
    assert by_field["zh"]["local_hukou"]["text"] == "必填"
    assert by_field["en"]["local_hukou"]["text"] == "is required" == by_field["en"]["local_hukou"]["message"]
    houses = by_field["zh"]["assets.houses"]
    assert houses["code"] == "reject.max"
    assert houses["text"] == "不得大于 50（实为 51）"
    assert by_field["en"]["assets.houses"]["text"] == "must be at most 50 (got 51)"
    assert "必填" in zh["text"]
    assert "is required" in en["text"]


@pytest.mark.parametrize(
    ("path", "status", "code", "zh", "en"),
    [
        ("/v1/screenings/999999", 404, "api.not_found.job", "找不到任务 999999", "job 999999 not found"),
    ],
)
def test_a_refusal_in_both_languages(server: Server, path: str, status: int, code: str, zh: str, en: str) -> None:
    token = server.tokens["数据"]
    chinese = server.client(token).get(path)
    english = server.client(token, **{"Accept-Language": "en"}).get(path)
    assert chinese.status_code == english.status_code == status
    assert chinese.json()["code"] == english.json()["code"] == code
    assert chinese.json()["text"] == zh
    assert english.json()["text"] == en == english.json()["detail"]


def test_no_token_and_the_wrong_role(server: Server) -> None:
    anonymous = server.client().post("/v1/decisions", json={})
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert anonymous.json()["code"] == "api.token_required"
    assert anonymous.json()["text"] == "需要 Bearer 令牌"
    admin = server.client(server.admin, **{"Accept-Language": "en"}).post("/v1/decisions", json={})
    assert admin.status_code == 403
    assert admin.json()["code"] == "api.role_forbidden"
    assert admin.json()["text"].startswith("role admin may not do this")
    assert server.client(server.admin).post("/v1/decisions", json={}).json()["text"].startswith("角色 admin 无权")


def test_disclosure_in_chinese_with_the_head_of_household_named(server: Server) -> None:
    """行政执法公示: Chinese headers and values, the head's masked name, amounts as numbers."""
    server.add_user(
        "李市", "officer", "--level", "city", "--certificate", "JS-2019-0002", "--valid-until", "2099-12-31"
    )
    h = json.loads((FIXTURES / "households" / "HM-2019-000114.json").read_text(encoding="utf-8"))
    h["members"][0]["name"] = "张三丰"
    decided = server.client(server.tokens["数据"]).post("/v1/decisions", json=h)
    assert decided.status_code == 201, decided.text
    d = decided.json()
    approved = server.client(server.tokens["李市"]).post(f"/v1/decisions/{d['decision_id']}/approve")
    assert approved.status_code == 201, approved.text
    auditor = server.add_user("审计", "auditor")
    today = dt.date.today().isoformat()
    book = openpyxl.load_workbook(
        io.BytesIO(
            server.client(auditor).get("/v1/disclosure", params={"from": today, "to": today, "format": "xlsx"}).content
        )
    )
    (sheet,) = book.worksheets
    assert sheet.title == "公示"
    header, row = ([c for c in r] for r in sheet.iter_rows(max_row=2))
    names = [c.value for c in header]
    assert names[:5] == ["审批日期", "区镇", "户主", "身份证号", "人数"]
    assert "低保金额" in names
    assert row[names.index("户主")].value == "张**"
    amount = row[names.index("低保金额")]
    assert amount.value == float(d["dibao_amount"])
    assert amount.number_format == "#,##0.00"
    assert row[names.index("低保")].value not in {"eligible", "ineligible", "gradual_exit", "single_person"}
    english = server.client(auditor, **{"Accept-Language": "en"}).get(
        "/v1/disclosure", params={"from": today, "to": today}
    )
    first = english.content.decode("utf-8-sig").splitlines()[0].split(",")
    assert first[:3] == ["Approved on", "Township", "Head of household"]
