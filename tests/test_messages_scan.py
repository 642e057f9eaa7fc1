"""Every message the code names is in the catalogue, in both languages, with the values it
fills in; and no field problem is worded by a literal outside the catalogue."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.messages import catalogue, placeholders

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted(p for d in ("engine", "api") for p in (ROOT / d).rglob("*.py") if "migrations" not in p.parts)

# calls whose first argument is a catalogue key (``say`` names a ``reject.*`` kind)
KEYED = {"text", "catalogue_text", "both", "Said", "Phrase", "Forbidden", "Conflict", "NotFound", "Unauthorized"}


def _name(call: ast.Call) -> str:
    """The called name; ``x.text(...)`` (SQLAlchemy's) is not ours, so attributes count only by class."""
    f = call.func
    if isinstance(f, ast.Name):
        return f.id
    return f.attr if isinstance(f, ast.Attribute) and f.attr[:1].isupper() else ""


def _calls(path: Path) -> Iterator[ast.Call]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Call):
            yield node


def _where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"


def _keyed() -> Iterator[tuple[str, str, ast.Call]]:
    for path in SOURCES:
        for call in _calls(path):
            name = _name(call)
            if name not in KEYED | {"say"} or not call.args:
                continue
            first = call.args[0]
            # a key, or `"a" if c else "b"`: both keys
            for arg in (first.body, first.orelse) if isinstance(first, ast.IfExp) else (first,):
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    yield _where(path, call), ("reject." + arg.value if name == "say" else arg.value), call


def test_the_code_names_messages() -> None:
    assert sum(1 for _ in _keyed()) > 80


@pytest.mark.parametrize(("where", "key", "call"), list(_keyed()), ids=lambda v: v if isinstance(v, str) else "")
def test_every_key_exists_in_both_languages_with_its_values(where: str, key: str, call: ast.Call) -> None:
    entry = catalogue().get(key)
    assert entry is not None, f"{where}: {key} is not in engine/catalogue/"
    assert set(entry) == {"zh", "en"}
    if any(k.arg is None for k in call.keywords) or len(call.args) > 2 or _name(call) in {"Phrase", "say"}:
        return  # values passed on (**params), or filled in later
    given = {k.arg for k in call.keywords if k.arg is not None}
    assert given == placeholders(entry["en"]), f"{where}: {key} fills {sorted(given)}"


def test_refusals_are_worded_by_key_not_by_literal() -> None:
    """A refusal (403, 404, 409, ...) names a catalogue key (or passes on a text already put in
    the reader's language by a call), never an English text built in place."""
    bad = [
        _where(path, call)
        for path in SOURCES
        for call in _calls(path)
        if _name(call) in KEYED - {"text", "catalogue_text", "both", "Phrase"}
        and call.args
        and not isinstance(call.args[0], ast.Call)
        and not (isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str))
        and path.name != "messages.py"
    ]
    assert bad == []


def test_no_field_problem_is_worded_by_a_literal() -> None:
    """``FieldProblem(field, "...")`` with text written in place is a message outside the catalogue."""
    bad = [
        _where(path, call)
        for path in SOURCES
        for call in _calls(path)
        if _name(call) == "FieldProblem"
        and len(call.args) >= 2
        and isinstance(call.args[1], ast.JoinedStr | ast.Constant)
    ]
    assert bad == []
