"""Decisions explain themselves: every rule, the values read, versions and legal basis."""

from __future__ import annotations

import json
import random
from decimal import Decimal

from engine import Evaluator
from tests.conftest import FIXTURES


def _household(name: str) -> dict[str, object]:
    data: dict[str, object] = json.loads((FIXTURES / "households" / f"{name}.json").read_text(encoding="utf-8"))
    return data


def test_reasons_carry_values_basis_and_both_languages(evaluator: Evaluator) -> None:
    d = evaluator.decide(_household("HM-2019-000113")).to_dict()
    vehicle = next(r for r in d["reasons"] if r["rule"] == "common.no_vehicle")
    assert vehicle["outcome"] == "fail"
    assert vehicle["values"] == {"assets.non_exempt_vehicles": 1}
    assert vehicle["legal_basis"] == "《社会救助暂行办法》第十一条"
    assert vehicle["message"] == {"zh": "拥有非豁免机动车 1 辆", "en": "Owns 1 non-exempt vehicle(s)"}
    assert d["findings"] == ["remove"]


def test_every_rule_is_in_the_explanation_with_parameter_versions(evaluator: Evaluator, ruleset: object) -> None:
    d = evaluator.decide(_household("HM-2019-000101"))
    explained = {r.rule_id for r in d.rules}
    assert {
        "dibao.income_below_standard",
        "common.residence",
        "tekun.category",
        "finding.remove",
        "temporary.expenditure_need",
    } <= explained
    income = next(r for r in d.rules if r.rule_id == "dibao.income_below_standard")
    assert income.outcome == "pass"
    assert income.values["T"] == Decimal("1100.00")
    assert income.values["n"] == 2
    assert "家庭月收入 1100.00 元低于 2 人 × 低保标准 790.00 元" in income.message("zh")
    standard = next(p for p in d.parameters if p.name == "dibao.standard")
    assert (standard.region, standard.start.isoformat(), standard.value) == ("320684", "2019-07-01", Decimal("790.00"))
    assert "2019" in standard.reference
    not_applicable = next(r for r in d.rules if r.rule_id == "temporary.expenditure_need")
    assert not_applicable.outcome == "not_applicable"


def test_table_rows_are_reported_by_their_id(evaluator: Evaluator) -> None:
    d = evaluator.decide(_household("HM-2019-000107"))
    rows = [r.rule_id for r in d.reasons if r.kind == "table"]
    assert "temporary.expenditure_rate.mid" in rows


def test_money_is_exact_where_float_is_not(evaluator: Evaluator) -> None:
    """With fen incomes, float sums disagree with exact sums often; the engine never does."""
    rng = random.Random(20191231)
    base = _household("HM-2019-000101")
    float_wrong = 0
    for _ in range(200):
        incomes = [rng.randint(0, 200000) for _ in range(3)]
        h = json.loads(json.dumps(base))
        member = h["members"][0]
        h["members"] = [
            dict(member, person_id=p, monthly_income=f"{c // 100}.{c % 100:02d}")
            for p, c in zip(["320684196803120017", "320684197005200025", "320684199001010012"], incomes, strict=True)
        ]
        exact = sum(Decimal(c) / 100 for c in incomes)
        float_wrong += sum(c / 100 for c in incomes) != float(exact)
        d = evaluator.decide(h)
        t = next(r for r in d.rules if r.rule_id == "dibao.income_below_standard").values["T"]
        assert t == exact
    assert float_wrong > 40  # float sums miss the exact total often; the check above is not vacuous


def test_english_explanation_text(evaluator: Evaluator) -> None:
    text = evaluator.decide(_household("HM-2019-000105")).explain_text("en")
    assert "Recognized for tekun support (scattered); basic living 1027.00 a month" in text
    assert ": 790.00 yuan (320684, in force from 2019-07-01;" in text
