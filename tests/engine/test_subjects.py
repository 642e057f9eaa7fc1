"""A record type besides the household: its rule file is checked with positions, its
records and registry rows are validated naming the field, and nothing in the engine's
Python names a particular record type."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine import (
    InputError,
    RuleLoadError,
    SubjectEvaluator,
    explain_subject,
    load,
    parse_subject_registry,
    run_record_type_tests,
)
from engine.subjects.tests import SubjectTest, run_subject_test
from tests.conftest import FIXTURES, RULES

ROOT = RULES.parent
RECORD = {
    "candidate_id": "T-1",
    "region": "320684",
    "township": None,
    "village": None,
    "committee": "villagers",
    "subject": "candidate",
    "person_id": "320684197503020190",
    "name": None,
    "birth_date": "1975-03-02",
    "registered_voter": "TRUE",
    "term_start": None,
    "review_batch_id": "B",
    "review_date": " 2019-10-10 ",
    "election_date": "2019-11-05",
}


@pytest.fixture(scope="module")
def spec():  # type: ignore[no-untyped-def]
    return load(RULES).record_types["candidate"]


def test_engine_python_names_no_record_type() -> None:
    """Every name of the review lives in rules/: the engine only interprets it."""
    for path in (ROOT / "engine").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for word in ("candidate", "sitting_member", "criminal_penalty", "review_date", "court"):
            assert word not in text.replace("``candidates.csv``", ""), f"{path}: {word}"


def test_ruleset_declares_its_record_types() -> None:
    rs = load(RULES)
    assert list(rs.record_types) == ["candidate"]
    assert "record_types/candidate.yaml" in rs.files  # published, digested and replayed with the rules
    assert rs.record_types["candidate"].decision[0] == "candidate_id"


def _broken(tmp_path: Path, old: str, new: str) -> list[str]:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    path = rules / "record_types" / "candidate.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(RuleLoadError) as err:
        load(rules)
    return [str(p) for p in err.value.problems]


def test_unknown_category_in_a_dated_list_is_a_load_problem(tmp_path: Path) -> None:
    problems = _broken(tmp_path, "value: [criminal_penalty]", "value: [criminal_penaltie]")
    assert any(
        "record_types/candidate.yaml:" in p and "bad-value" in p and "candidate.negative_list" in p for p in problems
    )


def test_unknown_window_parameter_and_key_are_load_problems(tmp_path: Path) -> None:
    problems = _broken(
        tmp_path,
        "window: {within_years_of_end: candidate.criminal_lookback_years}",
        "window: {within_years_of_end: candidate.criminal_years}, colour: red",
    )
    assert any("unknown-name" in p and "candidate.criminal_years" in p for p in problems)
    assert any("unknown-key" in p and "colour" in p for p in problems)


def test_parameter_needs_a_label(tmp_path: Path) -> None:
    problems = _broken(tmp_path, "{value: 18, label: verified,", "{value: 18, label: guessed,")
    assert any("label" in p and "candidate.min_age" in p for p in problems)


def test_missing_record_type_file(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    (rules / "record_types" / "candidate.yaml").unlink()
    with pytest.raises(RuleLoadError, match=r"record_types/candidate\.yaml is missing"):
        load(rules)


def test_record_is_read_like_a_household_and_every_key_is_required(spec) -> None:  # type: ignore[no-untyped-def]
    d = SubjectEvaluator(spec).decide(RECORD)
    assert d.fields["review_date"].isoformat() == "2019-10-10"  # trimmed; "TRUE" is true
    missing = {k: v for k, v in RECORD.items() if k != "village"}
    with pytest.raises(InputError) as err:
        SubjectEvaluator(spec).decide({**missing, "vilage": "x"})
    assert {p.field for p in err.value.problems} == {"village", "vilage"}
    assert "did you mean" in str(err.value)


def test_registry_rows_rejected_naming_the_column(spec) -> None:  # type: ignore[no-untyped-def]
    text = (
        "person_id,category,department,start_date,end_date,reference\n"
        "320684197503020190,criminal_penalty,public_security,2010-03-15,2012-03-14,ok\n"
        "320684197503020190,criminal_penalti,public_security,2010-03-15,,bad category\n"
        "320684197503020191,criminal_penalty,public_security,2010-03-15,,bad check digit\n"
        "320684197503020190,criminal_penalty,public_security,2010-03-15,2010-03-15,end not after start\n"
    )
    reg = parse_subject_registry(spec, spec.registries["review_records"], text)
    assert [(r.line, r.field) for r in reg.rejects] == [(3, "category"), (4, "person_id"), (5, "end_date")]
    assert "did you mean" in reg.rejects[0].reason
    assert len(reg.of("320684197503020190")) == 1


def test_explanation_is_chinese_first_with_records_and_basis(spec) -> None:  # type: ignore[no-untyped-def]
    reg = parse_subject_registry(
        spec,
        spec.registries["review_records"],
        (FIXTURES / "registries" / "review_records.csv").read_text(encoding="utf-8"),
    )
    record = {**RECORD, "person_id": "320684196807210239", "birth_date": "1968-07-21"}
    text = explain_subject(SubjectEvaluator(spec, {"review_records": reg}).decide(record))
    zh, en = text.index("候选人资格"), text.index("candidate joint review")
    assert zh < en
    assert "不予确定为候选人" in text
    assert "受过刑事处罚" in text
    assert "受过刑事处罚 公安 2010-03-15 – 2012-03-14" in text  # codes read as the rule file labels them
    assert "未反馈部门: 法院、公安" in text  # no returns given: missing is never zero
    assert "Departments not reported: Court, Public security" in text


def test_a_wrong_expectation_fails(spec) -> None:  # type: ignore[no-untyped-def]
    from engine.source import Pos

    test = SubjectTest("wrong", "t", Pos("t", 1, 1), dict(RECORD), {}, {}, {"review_status": "qualified"})
    result = run_subject_test(spec, test)
    assert result.failures == ["review_status: expected 'qualified', got 'incomplete'"]


def test_bundled_rule_tests_pass() -> None:
    results = run_record_type_tests(load(RULES))
    assert len(results) >= 40
    assert [r.failures for r in results if not r.ok] == []


def test_rule_test_typos_are_lint_problems(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    path = rules / "tests" / "candidate.yaml"
    text = path.read_text(encoding="utf-8")
    text = text.replace(
        "expected: {review_status: qualified, action: none, reasons: [], missing",
        "expected: {review_statu: qualified, action: none, reasons: [], missing",
        1,
    )
    text = text.replace("extends: candidate_2021", "extends: candidate_2012", 1)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RuleLoadError) as err:
        load(rules)
    problems = [str(p) for p in err.value.problems]
    assert any(p.startswith("tests/candidate.yaml:") and "review_statu" in p and "did you mean" in p for p in problems)
    assert any("candidate_2012" in p for p in problems)
