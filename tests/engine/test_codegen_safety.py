"""Text from rule files reaches the generated source only as quoted literals.

A copy of rules/ gets an outcome value, a finding code and a table row id made of quotes, a
backslash, a newline and ``__import__('os')``: the ruleset still decides as the closure
backend does, and in the generated source those strings are string constants (or objects
the source names by a generated name), never code.
"""

from __future__ import annotations

import ast
import io
import json
import shutil
import tokenize
from pathlib import Path

import pytest

from engine import Evaluator, load
from engine.evaluator import ClosureEvaluator
from tests.conftest import FIXTURES, RULES

CRAFTED = "x'\"\\\n__import__('os').getcwd()"


def _yaml(text: str) -> str:
    return json.dumps(text)  # a JSON string is a YAML double-quoted scalar


@pytest.fixture(scope="module")
def crafted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rules = tmp_path_factory.mktemp("crafted") / "rules"
    shutil.copytree(RULES, rules)
    low = rules / "programs" / "low_income.yaml"
    low.write_text(low.read_text(encoding="utf-8").replace("value: ineligible", f"value: {_yaml(CRAFTED)}", 1))
    findings = rules / "programs" / "findings.yaml"
    text = findings.read_text(encoding="utf-8")
    assert "code: remove" in text
    findings.write_text(text.replace("code: remove", f"code: {_yaml('remove' + CRAFTED)}", 1))
    review = rules / "programs" / "review.yaml"
    text = review.read_text(encoding="utf-8")
    assert "id: review.interval.able" in text
    review.write_text(text.replace("id: review.interval.able", f"id: {_yaml('review' + CRAFTED)}", 1))
    shutil.rmtree(rules / "tests")  # the bundled rule tests expect the real values
    (rules / "tests").mkdir()
    return rules


def test_crafted_strings_decide_like_the_reference(crafted: Path) -> None:
    rs = load(crafted)
    ev, ref = Evaluator(rs), ClosureEvaluator(rs)
    seen_value = seen_code = seen_row = False
    for path in sorted((FIXTURES / "households").glob("*.json")):
        h = json.loads(path.read_text(encoding="utf-8"))
        got, want = ev.decide(h), ref.decide(h)
        assert got.to_dict() == want.to_dict()
        assert got.explain_text("en") == want.explain_text("en")
        seen_value |= got.fields["low_income_status"] == CRAFTED
        seen_code |= "remove" + CRAFTED in got.findings
        seen_row |= any(r.rule_id == "review" + CRAFTED for r in got.rules)
    assert seen_value
    assert seen_code
    assert seen_row


def test_crafted_strings_are_only_literals_in_the_source(crafted: Path) -> None:
    program = Evaluator(load(crafted)).program
    assert program is not None
    source = program.source
    tree = ast.parse(source)
    constants = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)}
    assert CRAFTED in constants
    assert "remove" + CRAFTED in constants
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    attributes = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    assert "__import__" not in names
    assert "getcwd" not in attributes
    # every occurrence of the text is inside a string token, none in code
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if "__import__" in tok.string:
            assert tok.type == tokenize.STRING, tok
    # and nothing the generator wrote calls anything but its own helpers and builtins
    called = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    allowed = {"len", "sum", "any", "all", "id"}
    assert all(c in allowed or c.startswith(("_", "L", "M")) for c in called), called
