"""Derived parameters are exact: 1.5 × 791.35 is 1187.025, never rounded to the fen.

DOMAIN.md compares ``T < line × n`` exactly, so a member earning 1187.02 is below a line of
1187.025 and one earning 1187.03 is not; both backends must agree.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from engine import Evaluator, Ruleset
from engine.vector import decide_caseload, jsonl_to_tables
from engine.vector.impact import with_parameter

ON = dt.date(2019, 8, 1)


def _household(income: str) -> dict[str, Any]:
    return {
        "household_id": f"H-{income}",
        "region": "320684",
        "decision_date": ON.isoformat(),
        "local_hukou": True,
        "members": [
            {
                "person_id": "320684198001010018",
                "relation": "head",
                "birth_date": "1980-01-01",
                "monthly_income": income,
                "labor_capacity": "full",
                "disability": "none",
                "serious_illness": False,
                "employed_recently": False,
                "empty_nest": False,
                "entitled_veteran_family": False,
                "fixed_income": False,
                "has_supporter": True,
                "enrolling_in_school": False,
            }
        ],
        "assets": {
            "financial_assets": "0.00",
            "non_exempt_vehicles": 0,
            "houses": 1,
            "commercial_property": False,
            "registered_business": False,
        },
    }


@pytest.fixture(scope="module")
def odd_standard(ruleset: Ruleset) -> Evaluator:
    """The bundled rules with a standard of 791.35 from 2019-07-01."""
    return Evaluator(with_parameter(ruleset, "dibao.standard", "791.35", dt.date(2019, 7, 1)))


CASES = [("1187.02", "eligible"), ("1187.03", "ineligible"), ("791.35", "eligible"), ("791.34", "ineligible")]


@pytest.mark.parametrize(("income", "want"), CASES, ids=[c[0] for c in CASES])
def test_scalar_line_is_exact(odd_standard: Evaluator, income: str, want: str) -> None:
    d = odd_standard.decide(_household(income))
    assert d.fields["low_income_status"] == want
    line = next(u for u in d.parameters if u.name == "low_income.line")
    assert str(line.value) == "1187.025"


def test_columnar_line_is_exact(odd_standard: Evaluator) -> None:
    lines = [json.dumps(_household(income)) for income, _ in CASES]
    hh, mm, rejects = jsonl_to_tables(lines, odd_standard.ruleset.record)
    decisions, more = decide_caseload(odd_standard, hh, mm, today=ON)
    assert rejects.height == 0
    assert more.height == 0
    got = dict(zip(decisions["household_id"], decisions["low_income_status"], strict=True))
    assert got == {f"H-{income}": want for income, want in CASES}
