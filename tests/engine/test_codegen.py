"""The generated household function decides and explains exactly as the closure backend.

Compared on ``Decision.to_dict()`` (fields, findings, every rule's trace with its values and
messages), ``flat()`` and the officer's text, for every fixture household at several dates
and for generated households, with and without registry hits and caseload duplicates.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import Evaluator, InputError, Ruleset, load
from engine.evaluator import ClosureEvaluator
from tests.conftest import FIXTURES, RULES
from tests.strategies import households

DATES = ["2018-12-31", "2019-07-01", "2020-02-29", "2020-07-01", "2021-03-15"]
HOUSEHOLDS = sorted((FIXTURES / "households").glob("*.json"))


@pytest.fixture(scope="module")
def reference(ruleset: Ruleset) -> ClosureEvaluator:
    return ClosureEvaluator(ruleset)


def _outcome(ev: Evaluator, h: dict[str, Any], duplicates: frozenset[str] = frozenset()) -> Any:
    """Everything a caller can see of a decision, or of the rejection."""
    try:
        d = ev.decide(h, duplicates=duplicates)
    except InputError as exc:
        return ("rejected", [p.as_dict() for p in exc.problems], str(exc))
    return (d.to_dict(), d.flat(), d.explain_text("zh"), d.explain_text("en"), dict(d.fields))


def test_every_fixture_household_at_several_dates(evaluator: Evaluator, reference: ClosureEvaluator) -> None:
    compared = 0
    for path in HOUSEHOLDS:
        base = json.loads(path.read_text(encoding="utf-8"))
        for on in [base["decision_date"], *DATES]:
            h = dict(base, decision_date=on)
            got, want = _outcome(evaluator, h), _outcome(reference, h)
            assert got == want, f"{path.name} on {on}"
            compared += got[0] != "rejected"
    assert compared >= len(HOUSEHOLDS) * 4  # most are decided, so the comparison is not vacuous


@settings(max_examples=300, deadline=None)
@given(households(), st.booleans(), st.booleans(), st.booleans())
def test_generated_households(
    evaluator: Evaluator,
    reference: ClosureEvaluator,
    household: dict[str, Any],
    related: bool,
    filed: bool,
    duplicated: bool,
) -> None:
    first = household["members"][0]["person_id"]
    regs = evaluator.registries
    if related:
        regs = regs.with_keys("relatives", [first], "test")
    if filed:
        regs = regs.with_keys("filings", [household["household_id"]], "test")
    dups = frozenset([first]) if duplicated else frozenset()
    got = _outcome(evaluator.with_registries(regs), household, dups)
    want = _outcome(reference.with_registries(regs), household, dups)
    assert got == want


def test_explanation_is_built_only_when_asked(evaluator: Evaluator, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    render = Evaluator._render

    def counted(self: Evaluator, kept: Any) -> Any:
        calls.append(1)
        return render(self, kept)

    monkeypatch.setattr(Evaluator, "_render", counted)
    h = json.loads(HOUSEHOLDS[0].read_text(encoding="utf-8"))
    d = evaluator.decide(h)
    assert d.fields
    assert calls == []
    assert d.rules
    assert d.to_dict()["explanation"]["rules"]
    assert calls == [1]


def test_compiled_once_per_evaluator_and_shared_with_its_registry_variants(evaluator: Evaluator) -> None:
    other = evaluator.with_registries(evaluator.registries.with_keys("filings", ["x"], "test"))
    assert other.program is evaluator.program
    assert (
        other.decide(json.loads(HOUSEHOLDS[0].read_text(encoding="utf-8"))).fields
        == evaluator.decide(json.loads(HOUSEHOLDS[0].read_text(encoding="utf-8"))).fields
    )


def test_decisions_on_a_date_with_no_parameter_are_rejected_alike(
    evaluator: Evaluator, reference: ClosureEvaluator
) -> None:
    h = dict(json.loads(HOUSEHOLDS[0].read_text(encoding="utf-8")), decision_date=str(dt.date(2001, 1, 1)))
    got = _outcome(evaluator, h)
    assert got[0] == "rejected"
    assert got == _outcome(reference, h)


@pytest.fixture(scope="module")
def failing(tmp_path_factory: pytest.TempPathFactory) -> tuple[Evaluator, ClosureEvaluator]:
    """A copy of rules/ where some households cannot be decided: a division by ``n`` that may
    be 0 on a decision's path, and a table with no ``otherwise`` row."""
    rules = tmp_path_factory.mktemp("failing") / "rules"
    shutil.copytree(RULES, rules)
    common = rules / "programs" / "common.yaml"
    common.write_text(common.read_text(encoding="utf-8").replace('"T / n if n > 0 else T"', '"T / n"'))
    dibao = rules / "programs" / "dibao.yaml"
    text = dibao.read_text(encoding="utf-8")
    dibao.write_text(text.replace("when: T < dibao.standard * n", "when: per_capita_income < dibao.standard", 1))
    review = rules / "programs" / "review.yaml"
    lines = review.read_text(encoding="utf-8").splitlines(keepends=True)
    review.write_text("".join(line for line in lines if not line.strip().startswith("otherwise:")))
    shutil.rmtree(rules / "tests")
    (rules / "tests").mkdir()
    rs = load(rules)
    return Evaluator(rs), ClosureEvaluator(rs)


@settings(max_examples=200, deadline=None)
@given(households())
def test_failures_are_the_same_failures(failing: tuple[Evaluator, ClosureEvaluator], household: dict[str, Any]) -> None:
    """Where the closure backend cannot decide, the generated code fails alike (same field,
    message and innermost rule), and nowhere else: values needed only on some paths stay lazy."""
    ev, ref = failing
    assert _outcome(ev, household) == _outcome(ref, household)


def test_failing_rules_do_fail_somewhere(failing: tuple[Evaluator, ClosureEvaluator]) -> None:
    """The comparison above is not vacuous: both failures happen, each where it should."""
    ev, ref = failing
    h = json.loads(HOUSEHOLDS[0].read_text(encoding="utf-8"))
    for m in h["members"]:
        m["death_date"] = "2019-01-01"  # nobody counted: n = 0
    for recipient, error in ((False, "division by zero"), (True, "table `review.interval` has no row")):
        h["status"] = dict(h.get("status") or {}, dibao=recipient, dibao_monthly_amount="100.00")
        with pytest.raises(InputError, match=error):
            ev.decide(h)
        assert _outcome(ev, h) == _outcome(ref, h)


def test_a_ruleset_too_large_to_compile_is_decided_by_the_closures(
    ruleset: Ruleset, reference: ClosureEvaluator, monkeypatch: pytest.MonkeyPatch
) -> None:
    def too_deep(*args: Any) -> Any:
        raise RecursionError("maximum recursion depth exceeded during compilation")

    monkeypatch.setattr("engine.evaluator.compile_ruleset", too_deep)
    ev = Evaluator(ruleset)
    assert ev.program is None
    for path in HOUSEHOLDS[:3]:
        h = json.loads(path.read_text(encoding="utf-8"))
        assert _outcome(ev, h) == _outcome(reference, h)
