"""Expressions within the engine's limits: one problem in the rule file for one past them, and
a generated program Python cannot compile is decided by the closures instead."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from engine import Evaluator, RuleLoadError, Ruleset, load
from engine.codegen import TooLargeToCompile, compile_ruleset
from engine.evaluator import ClosureEvaluator
from engine.expressions import MAX_EXPR_CHARS, MAX_EXPR_DEPTH, MAX_EXPR_NODES
from tests.conftest import FIXTURES, RULES

HOUSEHOLDS = sorted((FIXTURES / "households").glob("*.json"))[:4]
_ANCHOR = "when: common.has_counted_member and"


def _rules_with(tmp_path: Path, condition: str) -> Path:
    """The rules with ``condition and`` put first in dibao.eligible's `when`."""
    target = tmp_path / "rules"
    shutil.copytree(RULES, target)
    path = target / "programs" / "dibao.yaml"
    text = path.read_text(encoding="utf-8")
    assert _ANCHOR in text
    path.write_text(text.replace(_ANCHOR, f"when: {condition} and common.has_counted_member and", 1), "utf-8")
    return target


def _problems(rules: Path) -> list[str]:
    try:
        load(rules)
    except RuleLoadError as exc:
        return [f"{p.kind} {p.file}:{p.line}:{p.col}: {p.message}" for p in exc.problems]
    return []


def _sum(terms: int) -> str:
    """``n + n + ... > 0``: Python's parser nests one level per ``+``."""
    return " + ".join(["n"] * terms) + " > 0"


def _same(ev: Evaluator, ref: ClosureEvaluator) -> None:
    for path in HOUSEHOLDS:
        h = json.loads(path.read_text(encoding="utf-8"))
        got, want = ev.decide(h), ref.decide(h)
        assert got.to_dict() == want.to_dict()


def test_an_expression_as_deep_as_the_limit_loads_compiles_and_decides(tmp_path: Path) -> None:
    # the `and` (1), the comparison (2), one level per `+` and the names (k + 2 for k terms)
    rs = load(_rules_with(tmp_path, _sum(MAX_EXPR_DEPTH - 2)))
    ev = Evaluator(rs)
    assert ev.program is not None  # the generated source stays within Python's limits
    _same(ev, ClosureEvaluator(rs))


def test_an_expression_one_level_deeper_is_one_problem_in_the_rule_file(tmp_path: Path) -> None:
    got = _problems(_rules_with(tmp_path, _sum(MAX_EXPR_DEPTH - 1)))
    assert len(got) == 1, got
    assert got[0].startswith("too-complex programs/dibao.yaml:")
    assert f"nested more than {MAX_EXPR_DEPTH} levels deep; split it into named `derived` values" in got[0]


@pytest.mark.parametrize(
    ("condition", "says"),
    [
        (_sum(500), f"more than {MAX_EXPR_DEPTH} levels"),  # lint used to die with RecursionError
        (_sum(1100), f"characters, more than {MAX_EXPR_CHARS};"),
        (" and ".join(["n > 0"] * (MAX_EXPR_NODES // 3 + 1)), f"more than {MAX_EXPR_NODES} parts"),
        ("not " * 200 + "common.residence", f"more than {MAX_EXPR_DEPTH} levels"),
        ("(" * 250 + "n" + ")" * 250 + " > 0", "too many nested parentheses"),
    ],
)
def test_an_expression_past_a_limit_is_one_problem(tmp_path: Path, condition: str, says: str) -> None:
    got = _problems(_rules_with(tmp_path, condition))
    assert len(got) == 1, got
    assert got[0].startswith(("too-complex programs/dibao.yaml:", "expression programs/dibao.yaml:"))
    assert says in got[0]


def test_what_pythons_own_parser_gives_up_on_is_one_problem_too(tmp_path: Path, monkeypatch: Any) -> None:
    """Past the length limit ast.parse raises MemoryError or RecursionError: never seen, but
    caught all the same."""
    monkeypatch.setattr("engine.expressions.MAX_EXPR_CHARS", 10**6)
    got = _problems(_rules_with(tmp_path, "-" * 100_000 + "n > 0"))
    assert len(got) == 1, got
    assert "too-complex" in got[0]
    assert "nested too deeply for Python to read" in got[0]


@pytest.mark.parametrize("number", ["1000000000000000", "1e999999999", "1e15"])
def test_a_number_in_an_expression_too_large_to_be_meant_is_out_of_range(tmp_path: Path, number: str) -> None:
    got = _problems(_rules_with(tmp_path, f"n < {number}"))
    assert len(got) == 1, got
    assert got[0].startswith("out-of-range programs/dibao.yaml:")


# ---------------------------------------------------------------- codegen falls back


def test_a_sum_python_cannot_compile_is_decided_by_the_closures(tmp_path: Path, monkeypatch: Any) -> None:
    """With the expression limit lifted, 300 terms load, and the generated source nests more
    than Python's 200 parentheses (SyntaxError): the closures decide, the same as ever."""
    monkeypatch.setattr("engine.expressions.MAX_EXPR_DEPTH", 10_000)
    monkeypatch.setattr("engine.expressions.MAX_EXPR_CHARS", 10**6)
    rs = load(_rules_with(tmp_path, _sum(300)))
    ev = Evaluator(rs)
    assert ev.program is None
    _same(ev, ClosureEvaluator(rs))


@pytest.mark.parametrize("error", [SyntaxError("too many statically nested blocks"), MemoryError(), RecursionError()])
def test_any_failure_to_compile_the_generated_source_falls_back(
    ruleset: Ruleset, monkeypatch: Any, error: BaseException
) -> None:
    def fail(*args: Any) -> Any:
        raise error

    monkeypatch.setattr("engine.codegen.program.compile", fail, raising=False)
    monkeypatch.setattr("engine.codegen.program._COMPILED", {})
    with pytest.raises(TooLargeToCompile):
        compile_ruleset(ruleset, ["dibao_status"])
    ev = Evaluator(ruleset)
    assert ev.program is None
    _same(ev, ClosureEvaluator(ruleset))
