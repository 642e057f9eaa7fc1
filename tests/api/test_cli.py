"""The `jiuzhu` command line, run as a real process."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import FIXTURES, RULES

JIUZHU = [sys.executable, "-m", "api"]
REGS = [
    "--relatives",
    str(FIXTURES / "registries" / "relatives.csv"),
    "--filings",
    str(FIXTURES / "registries" / "filings.csv"),
]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*JIUZHU, *args], capture_output=True, text=True, check=False, timeout=120)


def test_check_one_household_prints_records_fields_at_top_level() -> None:
    r = _run("check", str(FIXTURES / "households" / "HM-2019-000109.json"), *REGS)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["household_id"] == "HM-2019-000109"
    assert d["blocked"] is True
    assert d["ta_authority"] == "city"
    assert "kin_registration_missing" in d["findings"]
    assert any(reason["rule"] == "kin.blocked" and reason["legal_basis"] for reason in d["reasons"])
    assert {p["name"] for p in d["explanation"]["parameters"]} >= {"dibao.standard", "temporary.township_limit"}


def test_check_jsonl_one_line_per_household_with_duplicates_found(tmp_path: Path) -> None:
    lines = (FIXTURES / "households.jsonl").read_text(encoding="utf-8").splitlines()
    twin = json.loads(lines[0])
    twin["household_id"] = "HM-TWIN"
    caseload = tmp_path / "c.jsonl"
    caseload.write_text("\n".join([*lines, json.dumps(twin, ensure_ascii=False)]) + "\n", encoding="utf-8")
    r = _run("check", str(caseload), "--date", "2019-08-01")
    assert r.returncode == 0, r.stderr
    out = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(out) == len(lines) + 1
    assert "duplicate_person" in out[0]["findings"]
    assert "duplicate_person" in out[-1]["findings"]
    assert "duplicate_person" not in out[1]["findings"]


def test_check_rejects_bad_line_naming_the_field_and_continues(tmp_path: Path) -> None:
    good = (FIXTURES / "households.jsonl").read_text(encoding="utf-8").splitlines()[0]
    bad = json.loads(good)
    bad["household_id"] = "HM-BAD"
    bad["members"][0]["monthly_income"] = "-3"
    f = tmp_path / "c.jsonl"
    f.write_text("\n".join([good, json.dumps(bad), "{not json"]) + "\n", encoding="utf-8")
    r = _run("check", str(f))
    assert r.returncode == 3
    out = [json.loads(x) for x in r.stdout.splitlines()]
    assert out[0]["dibao_status"] == "eligible"
    assert out[1] == {
        "household_id": "HM-BAD",
        "line": 2,
        "rejected": True,
        "errors": [
            {"field": "members[0].monthly_income", "message": "must not be negative (got '-3')", "rule_id": None}
        ],
    }
    assert out[2]["errors"][0]["field"] == "(json)"
    assert "c.jsonl:2: rejected: members[0].monthly_income" in r.stderr


def test_explain_is_readable_in_chinese_and_english() -> None:
    f = str(FIXTURES / "households" / "HM-2019-000107.json")
    zh = _run("check", f, "--explain")
    en = _run("check", f, "--explain", "--lang", "en")
    assert zh.returncode == 0
    assert en.returncode == 0
    assert "支出型救助 10000.00 元" in zh.stdout
    assert "Expenditure assistance 10000.00" in en.stdout
    assert "民发〔2018〕23号" in zh.stdout


def test_rules_lint_ok_and_bad(tmp_path: Path) -> None:
    ok = _run("rules", "lint", str(RULES))
    assert ok.returncode == 0
    assert ok.stdout.startswith("ok:")
    bad = tmp_path / "rules"
    shutil.copytree(RULES, bad)
    shutil.copy(FIXTURES / "rules_invalid" / "type_error" / "programs" / "zz_bad.yaml", bad / "programs")
    r = _run("--lang", "en", "rules", "lint", str(bad))
    assert r.returncode == 2
    assert "programs/zz_bad.yaml:7:11: type-error [zz.type_error]: cannot compare money (yuan) with a date" in r.stdout
    j = _run("rules", "lint", str(bad), "--json")
    assert json.loads(j.stdout)[0]["line"] == 7


def test_rules_test_passes_and_reports_a_failure(tmp_path: Path) -> None:
    assert _run("rules", "test", str(RULES)).returncode == 0
    bad = tmp_path / "rules"
    shutil.copytree(RULES, bad)
    text = (
        (bad / "tests" / "dibao.yaml")
        .read_text(encoding="utf-8")
        .replace('dibao_amount: "80.00"', 'dibao_amount: "81.00"', 1)
    )
    (bad / "tests" / "dibao.yaml").write_text(text, encoding="utf-8")
    r = _run("rules", "test", str(bad))
    assert r.returncode == 1
    assert "差额补足 gap to the standard: dibao_amount: expected '81.00', got '80.00'" in r.stdout
