"""Input validation names the field and says what would be right; nothing defaults silently."""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

import pytest

from engine import Evaluator, InputError
from tests.conftest import FIXTURES


@pytest.fixture
def household() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "households" / "HM-2019-000101.json").read_text(encoding="utf-8"))
    return data


def _set(h: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    h = copy.deepcopy(h)
    cur: Any = h
    *parts, last = path.split(".")
    for p in parts:
        cur = cur[int(p)] if p.isdigit() else cur[p]
    if value is KeyError:
        del cur[last]
    else:
        cur[last] = value
    return h


BAD: list[tuple[str, str, Any, str, str]] = [
    ("missing-income", "members.0.monthly_income", KeyError, "members[0].monthly_income", "is required"),
    ("null-income", "members.0.monthly_income", None, "members[0].monthly_income", "is required"),
    ("negative-money", "assets.financial_assets", "-5.00", "assets.financial_assets", "negative"),
    ("three-decimals", "members.1.monthly_income", "10.005", "members[1].monthly_income", "two decimals"),
    ("float-three-decimals", "members.1.monthly_income", 10.005, "members[1].monthly_income", "two decimals"),
    ("bad-enum", "members.0.disability", "sever", "members[0].disability", "did you mean `severe`"),
    ("bad-check-digit", "members.0.person_id", "320684196803120010", "members[0].person_id", "check digit"),
    ("bad-date", "decision_date", "2019-02-30", "decision_date", "YYYY-MM-DD"),
    ("bool-as-text", "local_hukou", "yes", "local_hukou", "true or false"),
    ("unknown-field", "members.0.monthy_income", "1.00", "members[0].monthy_income", "did you mean `monthly_income`"),
    (
        "missing-tier",
        "request",
        {"type": "emergency", "cause": "fire"},
        "request.tier",
        "required when type is emergency",
    ),
    (
        "cause-of-other-type",
        "request",
        {"type": "emergency", "cause": "medical", "tier": 1},
        "request.cause",
        "must be one of",
    ),
    ("tier-out-of-range", "request", {"type": "emergency", "cause": "fire", "tier": 4}, "request.tier", "at most 3"),
    ("no-members", "members", [], "members", "non-empty"),
]


@pytest.mark.parametrize(("path", "value", "field", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_names_the_field(
    evaluator: Evaluator, household: dict[str, Any], path: str, value: Any, field: str, message: str
) -> None:
    with pytest.raises(InputError) as info:
        evaluator.decide(_set(household, path, value))
    problems = {p.field: p.message for p in info.value.problems}
    assert field in problems, problems
    assert message in problems[field]


def test_all_problems_at_once(evaluator: Evaluator, household: dict[str, Any]) -> None:
    bad = _set(_set(household, "local_hukou", "yes"), "members.1.birth_date", "someday")
    with pytest.raises(InputError) as info:
        evaluator.decide(bad)
    assert {p.field for p in info.value.problems} == {"local_hukou", "members[1].birth_date"}
    assert info.value.record_id == "HM-2019-000101"


def test_defaults_are_declared_not_guessed(evaluator: Evaluator, household: dict[str, Any]) -> None:
    """`status` and `request` may be absent (RECORDS.md); the result is the same as writing the defaults."""
    minimal = _set(_set(household, "status", KeyError), "region", KeyError)
    explicit = _set(
        _set(
            household,
            "status",
            {
                "dibao": False,
                "low_income": False,
                "tekun": False,
                "illness_expenditure": False,
                "registered_poor": False,
                "dibao_monthly_amount": "0.00",
                "last_review_date": None,
            },
        ),
        "region",
        "320684",
    )
    assert evaluator.decide(minimal).top_level() == evaluator.decide(explicit).top_level()


def test_parameter_missing_for_date_is_an_input_error(evaluator: Evaluator, household: dict[str, Any]) -> None:
    """Named as the record's field, not as an internal parameter."""
    with pytest.raises(InputError) as info:
        evaluator.decide(_set(household, "decision_date", "2010-01-01"))
    assert [p.field for p in info.value.problems] == ["decision_date"]
    assert "2010-01-01" in info.value.problems[0].message
    with pytest.raises(InputError) as info:
        evaluator.decide(_set(household, "region", "999999"))
    assert [p.field for p in info.value.problems] == ["region"]


def test_explicit_null_is_absent(evaluator: Evaluator, household: dict[str, Any]) -> None:
    """`region: null` and `decision_date: null` take their defaults, as when absent."""
    for path in ("region", "decision_date", "status"):
        nulled, absent = _set(household, path, None), _set(household, path, KeyError)
        assert (
            evaluator.decide(nulled, today=household_date(household)).top_level()
            == evaluator.decide(absent, today=household_date(household)).top_level()
        )


def household_date(h: dict[str, Any]) -> dt.date:
    return dt.date.fromisoformat(h["decision_date"])
