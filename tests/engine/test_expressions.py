"""The expression language: what parses, what type it has, and precise errors for the rest."""

from __future__ import annotations

import pytest

from engine import Ruleset
from engine.expressions import ExprError, parse_expression
from engine.loading.check import Checker
from engine.types import Type


class _Names:
    """A resolver over the bundled ruleset's symbols."""

    def __init__(self, ruleset: Ruleset) -> None:
        self.rs = ruleset

    def lookup(self, name: str, scope: str) -> Type | None:
        sym = self.rs.symbols.get((scope, name))
        return sym.type if sym else None

    def names(self, scope: str) -> list[str]:
        return [n for (sc, n) in self.rs.symbols if sc == scope]

    def is_registry(self, name: str) -> bool:
        return name.removeprefix("registry.") in self.rs.registries


GOOD = [
    ("compare-money", "T < dibao.standard * n", "bool"),
    ("arith-money", "roundup(dibao.standard * n - T)", "money"),
    ("decimal-literal", "1.5 * dibao.standard", "money"),
    ("membership", "request.cause in ('fire', 'medical')", "bool"),
    ("conditional", "T if n > 0 else 0", "money"),
    ("aggregate-sum", "sum(m.monthly_income for m in counted_members if m.age >= 60)", "money"),
    ("aggregate-any", "any(m.serious_illness for m in members)", "bool"),
    ("count", "count(counted_members)", "int"),
    ("dates", "add_months(decision_date, 3) < decision_date", "bool"),
    ("years", "years_between(decision_date, decision_date)", "int"),
    ("minmax", "max(min(T, 100), 5)", "money"),
    ("registry", "household_id in registry.filings", "bool"),
    ("none-test", "status.last_review_date is None", "bool"),
]


@pytest.mark.parametrize(("text", "kind"), [g[1:] for g in GOOD], ids=[g[0] for g in GOOD])
def test_good_expressions(ruleset: Ruleset, text: str, kind: str) -> None:
    assert parse_expression(text, _Names(ruleset)).type.kind == kind


BAD = [
    ("money-vs-date", "T < decision_date", "cannot compare money (yuan) with a date"),
    ("money-times-money", "T * T", "cannot multiply money by money"),
    ("add-money-count", "T + n", "cannot add money (yuan) and a plain number"),
    ("power", "T ** 2", "not allowed"),
    ("lambda", "(lambda: 1)()", "only built-in functions"),
    ("dunder", "__import__('os')", "unknown function `__import__`"),
    ("attribute-call", "T.real", "unknown name `T.real`"),
    ("typo", "monthy_income", "unknown name `monthy_income`"),
    ("enum-typo", "request.type == 'emergancy'", "did you mean `emergency`"),
    ("eq-none", "status.last_review_date == None", "is None"),
    ("not-nullable", "T is None", "never None"),
    ("and-number", "n and T", "needs true/false"),
    ("syntax", "T <", "cannot parse"),
    ("nested-aggregate", "any(any(x.serious_illness for x in members) for m in members)", "aggregation"),
]


@pytest.mark.parametrize(("text", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_expressions(ruleset: Ruleset, text: str, message: str) -> None:
    with pytest.raises(ExprError) as info:
        parse_expression(text, _Names(ruleset))
    assert message in info.value.message


def test_loader_is_the_resolver_used_at_load() -> None:
    assert hasattr(Checker, "lookup")
