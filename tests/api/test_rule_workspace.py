"""A rule change before publishing: rules described readably, the diff between two versions,
lint problems at their lines, and one household decided both ways (no HTTP here)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.bundles import BundleLimits
from api.rule_diff import diff_rulesets
from api.rule_workspace import bundle_of, check_candidate, load_files, try_household
from api.service import Service, Settings
from engine import Ruleset, describe_parameters, describe_rules, load
from tests.conftest import rule_line

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"
# a new dated value of the Haimen dibao standard, after every rule test's date: the tests still pass
NEW_STANDARD = '        2020-07-01: {value: 830, reference: "[default] 海门市城乡低保标准 2020 年调整"}\n'
ADDED = '        2021-07-01: {value: 870, reference: "海门市城乡低保标准 2021 年调整"}\n'


@pytest.fixture(scope="module")
def base() -> Ruleset:
    return load(ROOT / "rules")


def changed(base: Ruleset, name: str, old: str, new: str) -> dict[str, str]:
    files = dict(base.files)
    assert old in files[name]
    files[name] = files[name].replace(old, new, 1)
    return files


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    folder = tmp_path_factory.mktemp("workspace")
    settings = Settings(
        f"sqlite:///{folder / 'store.db'}",
        ROOT / "rules",
        folder,
        relatives=FIXTURES / "registries" / "relatives.csv",
        filings=FIXTURES / "registries" / "filings.csv",
    )
    s = Service(settings)
    yield s
    s.close()


def test_rules_are_described_with_condition_titles_and_legal_basis(base: Ruleset) -> None:
    rules = {r["id"]: r for r in describe_rules(base)}
    assert len(rules) == len(base.rules())
    case = rules["dibao.gradual_exit"]
    assert case["kind"] == "case"
    assert case["legal_basis"].startswith("《社会救助暂行办法》第十三条")
    text = case["conditions"][0]["text"]
    assert "status.dibao 且 common.residence" in text["zh"]
    assert "status.dibao and common.residence" in text["en"]
    titles = {n["name"]: n["title"].get("zh") for n in case["names"]}
    assert titles["dibao.employed_member"] == "有新近就业成员"
    table = rules["review.interval"]
    assert [c["label"] for c in table["conditions"]][:2] == ["applies", "review.interval.able"]
    assert "m.age ≥ 16" in table["conditions"][1]["text"]["zh"]


def test_parameters_are_dated_tables_per_region(base: Ruleset) -> None:
    params = {p["name"]: p for p in describe_parameters(base)}
    haimen = next(r for r in params["dibao.standard"]["regions"] if r["region"] == "320684")
    assert [(v["from"], v["until"], v["value"]) for v in haimen["values"]] == [
        ("2018-07-01", "2019-06-30", "730.00"),
        ("2019-07-01", "2020-06-30", "790.00"),
        ("2020-07-01", None, "830.00"),
    ]
    assert "2019 年调整" in haimen["values"][1]["reference"]
    line = params["low_income.line"]["regions"][0]["values"][0]
    assert line["formula"] == "1.5 * dibao.standard"
    assert line["value"] is None


def test_diff_names_a_dated_parameter_value_and_a_changed_rule(base: Ruleset) -> None:
    files = changed(base, "parameters/dibao.yaml", NEW_STANDARD, NEW_STANDARD + ADDED)
    files["programs/dibao.yaml"] = files["programs/dibao.yaml"].replace(
        "title: {zh: 有新近就业成员, en: A member recently took up work}",
        "title: {zh: 有新近就业的成员, en: A member recently took up work}",
    )
    head = load_files(files)
    d = diff_rulesets(base, head)
    assert not d["same"]
    [param] = d["parameters"]["changed"]
    assert param["name"] == "dibao.standard"
    assert param["program"] == "dibao"
    assert param["changes"] == [
        {
            "region": "320684",
            "from": "2021-07-01",
            "what": "added",
            "before": None,
            "after": {"value": "870.00", "formula": None, "reference": "海门市城乡低保标准 2021 年调整"},
        }
    ]
    [rule] = d["rules"]["changed"]
    assert rule["id"] == "dibao.employed_member"
    assert rule["changes"][0]["what"] == "title"
    assert d["by_program"] == {"dibao": {"parameters_changed": 1, "rules_changed": 1}}
    assert {f["file"] for f in d["files"]} == {"parameters/dibao.yaml", "programs/dibao.yaml"}
    assert diff_rulesets(base, base)["same"] is True
    assert diff_rulesets(base, base)["files"] == []


def test_diff_names_rules_added_and_removed(base: Ruleset) -> None:
    # a rule renamed where it is declared and where it is read
    files = dict(base.files)
    files["programs/dibao.yaml"] = files["programs/dibao.yaml"].replace("dibao.severe_member", "dibao.severe_one")
    d = diff_rulesets(base, load_files(files))
    assert [r["id"] for r in d["rules"]["added"]] == ["dibao.severe_one"]
    assert [r["id"] for r in d["rules"]["removed"]] == ["dibao.severe_member"]
    assert "dibao.single_person" in {r["id"] for r in d["rules"]["changed"]}


def test_a_typo_is_shown_at_its_file_line_and_column(base: Ruleset) -> None:
    files = changed(base, "programs/dibao.yaml", "when: T < dibao.standard * n", "when: T < dibao.standrd * n")
    report = check_candidate(bundle_of(files), BundleLimits(), tests=True)
    assert report.stage == "lint"
    [p] = report.problems
    line = rule_line("programs/dibao.yaml", "when: T < dibao.standard * n")
    assert (p["file"], p["line"], p["col"], p["kind"]) == ("programs/dibao.yaml", line, 15, "unknown-name")
    assert p["source"] == "    when: T < dibao.standrd * n"
    assert p["source"][p["col"] - 1 :].startswith("dibao.standrd")
    assert [n for n, _ in p["context"]] == list(range(line - 2, line + 3))


def test_failed_rule_tests_are_shown_at_their_line(base: Ruleset) -> None:
    files = changed(base, "parameters/dibao.yaml", "2020-07-01: {value: 830", "2020-07-01: {value: 850")
    data = bundle_of(files)
    assert check_candidate(data, BundleLimits(), tests=False).ok  # it loads: lint is clean
    report = check_candidate(data, BundleLimits(), tests=True)
    assert report.stage == "tests"
    assert report.problems
    assert all(p["kind"] == "rule-test" and p["file"].startswith("tests/") for p in report.problems)
    first = report.problems[0]
    assert first["source"] == files[first["file"]].splitlines()[first["line"] - 1]


def test_a_bundle_that_is_no_zip_is_an_unpack_problem() -> None:
    report = check_candidate(b"not a zip", BundleLimits(), tests=True)
    assert report.stage == "unpack"
    assert "zip" in report.problems[0]["message"]


def test_one_household_side_by_side(base: Ruleset, service: Service) -> None:
    raw = json.loads((FIXTURES / "households" / "HM-2019-000101.json").read_text(encoding="utf-8"))
    raw["decision_date"] = "2021-08-01"
    files = changed(base, "parameters/dibao.yaml", NEW_STANDARD, NEW_STANDARD + ADDED)
    out = try_household(service, load_files(files), raw, "zh")
    assert out["current_errors"] == []
    assert out["candidate_errors"] == []
    by_field = {f["field"]: f for f in out["fields"]}
    assert by_field["household_id"]["changed"] is False
    standard = next(p for p in out["parameters"] if p["name"] == "dibao.standard")
    assert (standard["current"]["value"], standard["candidate"]["value"]) == ("830.00", "870.00")
    assert standard["candidate"]["version"] == "2021-07-01"
    # the same rules decide the same household the same way before the new value starts
    raw["decision_date"] = "2020-08-01"
    same = try_household(service, load_files(files), raw, "en")
    assert same["changed"] == []
    assert same["rules"] == []
    assert same["parameters"] == []
