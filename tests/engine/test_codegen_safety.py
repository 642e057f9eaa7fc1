"""Text from rule files reaches the generated source only as quoted literals.

Two layers. Names (rule and row ids, finding codes) must be plain names, so crafted text there
is a load problem. Free text that does reach decisions (an outcome's value) is carried only
as a quoted literal: a copy of rules/ gets two outcome values made of quotes, a backslash, a
newline and ``__import__('os')``, still decides as the closure backend does, and in the
generated source those strings are string constants, never code.
"""

from __future__ import annotations

import ast
import io
import json
import shutil
import tokenize
from pathlib import Path

import pytest

from engine import Evaluator, RuleLoadError, load
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
    temporary = rules / "programs" / "temporary.yaml"
    text = temporary.read_text(encoding="utf-8")
    assert "value: not_requested" in text
    temporary.write_text(text.replace("value: not_requested", f"value: {_yaml('none' + CRAFTED)}", 1))
    head = rules / "ruleset.yaml"  # every value of an outcome has a label: the crafted ones too
    text = head.read_text(encoding="utf-8")
    for code, crafted_code in (
        ("      ineligible: {zh: 不认定为低收入家庭", CRAFTED),
        ("      not_requested:", "none" + CRAFTED),
    ):
        assert code in text
        text = text.replace(code, f"      {_yaml(crafted_code)}: {{zh: 特殊, en: crafted}}\n{code}", 1)
    head.write_text(text, encoding="utf-8")
    shutil.rmtree(rules / "tests")  # the bundled rule tests expect the real values
    (rules / "tests").mkdir()
    return rules


def test_crafted_strings_decide_like_the_reference(crafted: Path) -> None:
    rs = load(crafted)
    ev, ref = Evaluator(rs), ClosureEvaluator(rs)
    seen_value = seen_other = False
    for path in sorted((FIXTURES / "households").glob("*.json")):
        h = json.loads(path.read_text(encoding="utf-8"))
        got, want = ev.decide(h), ref.decide(h)
        assert got.to_dict() == want.to_dict()
        assert got.explain_text("en") == want.explain_text("en")
        seen_value |= got.fields["low_income_status"] == CRAFTED
        seen_other |= got.fields["ta_status"] == "none" + CRAFTED
    assert seen_value
    assert seen_other


@pytest.mark.parametrize(
    ("file", "old", "new"),
    [
        ("findings.yaml", "code: remove", "code: {}"),
        ("review.yaml", "id: review.interval.able", "id: {}"),
    ],
    ids=["finding-code", "row-id"],
)
def test_crafted_names_are_refused_at_load(tmp_path: Path, file: str, old: str, new: str) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    path = rules / "programs" / file
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new.format(_yaml("x" + CRAFTED)), 1))
    with pytest.raises(RuleLoadError) as err:
        load(rules)
    assert [p.kind for p in err.value.problems] == ["bad-name"]


def test_crafted_strings_are_only_literals_in_the_source(crafted: Path) -> None:
    program = Evaluator(load(crafted)).program
    assert program is not None
    source = program.source
    tree = ast.parse(source)
    constants = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)}
    assert CRAFTED in constants
    assert "none" + CRAFTED in constants
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
