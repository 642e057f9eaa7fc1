"""Rule tests as data (``rules/tests/*.yaml``): run them and say exactly what differed."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from engine.errors import InputError
from engine.evaluator import Evaluator
from engine.registries import Registries
from engine.ruleset import Ruleset, RuleTest

__all__ = ["TestResult", "run_test", "run_tests"]


@dataclass
class TestResult:
    test: RuleTest
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def _same(expected: Any, actual: Any) -> bool:
    if isinstance(expected, str) and isinstance(actual, str):
        try:
            return Decimal(expected) == Decimal(actual)
        except InvalidOperation:
            return expected == actual
    if isinstance(expected, int) and not isinstance(expected, bool) and isinstance(actual, str):
        try:
            return Decimal(expected) == Decimal(actual)
        except InvalidOperation:
            return False
    return (bool(expected == actual) and type(expected) is type(actual)) or (expected is None and actual is None)


def run_test(evaluator: Evaluator, test: RuleTest) -> TestResult:
    result = TestResult(test)
    regs = evaluator.registries
    for name, keys in test.registries.items():
        regs = regs.with_keys(name, keys, f"test:{test.name}")
    ev = evaluator.with_registries(regs) if test.registries else evaluator
    expected = dict(test.expected)
    want_error = expected.pop("error", None)
    try:
        decision = ev.decide(test.household)
    except InputError as exc:
        fields = [p.field for p in exc.problems]
        if want_error is None:
            result.failures.append(f"rejected: {exc}")
        elif not any(str(want_error) in f for f in fields):
            result.failures.append(f"expected an error naming `{want_error}`, got: {exc}")
        return result
    if want_error is not None:
        result.failures.append(f"expected an error naming `{want_error}`, but the household was decided")
        return result
    top = decision.top_level()
    include = expected.pop("reasons_include", None) or []
    reason_ids = {r.rule_id for r in decision.reasons}
    for rule_id in include:
        if rule_id not in reason_ids:
            result.failures.append(f"reasons: expected `{rule_id}` among {sorted(reason_ids)}")
    for key, want in expected.items():
        got = top.get(key)
        if key == "findings":
            if sorted(want or []) != sorted(got or []):
                result.failures.append(f"findings: expected {sorted(want or [])}, got {sorted(got or [])}")
        elif not _same(want, got):
            result.failures.append(f"{key}: expected {want!r}, got {got!r}")
    return result


def run_tests(ruleset: Ruleset, registries: Registries | None = None) -> list[TestResult]:
    """Run every rule test of a ruleset."""
    evaluator = Evaluator(ruleset, registries)
    return [run_test(evaluator, t) for t in ruleset.tests]
