"""Rule files are read within limits: nothing a file holds can crash or stall the loader."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine import Problem, ProblemKind, RuleLoadError, load
from engine.source import MAX_DEPTH, MAX_FILE_BYTES, MAX_FILES, MAX_NUMBER_CHARS, YMap, read_yaml
from tests.conftest import RULES

# the classic "billion laughs": 387 bytes that PyYAML expands into ~10^9 list items
ALIAS_BOMB = textwrap.dedent("""\
    a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
    b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
    c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
    d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
    e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
    f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
    g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
    h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
    i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
""")


def _read(tmp_path: Path, text: str | bytes) -> tuple[Any, list[Problem]]:
    path = tmp_path / "f.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    problems: list[Problem] = []
    _, doc, _ = read_yaml(path, "f.yaml", problems)
    return doc, problems


def _rules(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(RULES, target)
    return target


def test_thirty_thousand_levels_are_one_problem_not_a_crash(tmp_path: Path) -> None:
    """PyYAML's composer recurses per level and segfaults here; run it apart so a crash fails."""
    rules = _rules(tmp_path)
    (rules / "programs" / "deep.yaml").write_text("[" * 30_000 + "]" * 30_000, encoding="utf-8")
    script = (
        "import sys\nfrom engine import RuleLoadError, load\n"
        "try:\n    load(sys.argv[1])\nexcept RuleLoadError as e:\n    print(*e.problems, sep='\\n')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(rules)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parents[2],
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"programs/deep.yaml:1:{MAX_DEPTH + 1}: too-deep: nested deeper than {MAX_DEPTH} levels; rule files need only a few"
    ]


def test_alias_bomb_is_refused_at_its_first_anchor(tmp_path: Path) -> None:
    assert len(ALIAS_BOMB.encode()) < 400
    doc, problems = _read(tmp_path, ALIAS_BOMB)
    assert doc is None
    assert [(p.kind, p.line, p.col) for p in problems] == [(ProblemKind.YAML_ALIAS, 1, 4)]
    assert "anchors (&) and aliases (*) are not allowed" in problems[0].message


def test_an_alias_without_its_anchor_is_refused_too(tmp_path: Path) -> None:
    doc, problems = _read(tmp_path, "a: 1\nb: *a\n")
    assert doc is None
    assert [(p.kind, p.line, p.col) for p in problems] == [(ProblemKind.YAML_ALIAS, 2, 4)]


def test_nesting_up_to_the_limit_is_read(tmp_path: Path) -> None:
    doc, problems = _read(tmp_path, "[" * MAX_DEPTH + "1" + "]" * MAX_DEPTH)
    assert problems == []
    for _ in range(MAX_DEPTH):
        doc = doc[0]
    assert doc == 1


def test_a_file_over_the_size_limit_is_not_read(tmp_path: Path) -> None:
    rules = _rules(tmp_path)
    (rules / "tests" / "huge.yaml").write_text("# " + "x" * MAX_FILE_BYTES + "\n", encoding="utf-8")
    with pytest.raises(RuleLoadError) as info:
        load(rules)
    assert [(p.kind, p.file, p.line) for p in info.value.problems] == [(ProblemKind.TOO_LARGE, "tests/huge.yaml", 1)]


def test_too_many_rule_files_are_refused_before_reading_any(tmp_path: Path) -> None:
    rules = _rules(tmp_path)
    for i in range(MAX_FILES):
        (rules / "tests" / f"zz_{i:04d}.yaml").write_text(":\n", encoding="utf-8")  # unreadable if read
    with pytest.raises(RuleLoadError) as info:
        load(rules)
    assert [p.kind for p in info.value.problems] == [ProblemKind.TOO_MANY_FILES]


def test_one_bad_indent_is_one_problem(tmp_path: Path) -> None:
    rules = _rules(tmp_path)
    path = rules / "programs" / "dibao.yaml"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith("    field: "))
    lines[at] = lines[at][1:]  # one space too few
    path.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(RuleLoadError) as info:
        load(rules)
    assert [(p.kind, p.file, p.line) for p in info.value.problems] == [
        (ProblemKind.YAML_SYNTAX, "programs/dibao.yaml", at + 1)
    ]


def test_after_a_syntax_error_nothing_else_from_that_file(tmp_path: Path) -> None:
    doc, problems = _read(tmp_path, "a: 1\na: 2\nb: 2019-02-30\nc: [1, 2\n")
    assert doc is None
    assert [p.kind for p in problems] == [ProblemKind.YAML_SYNTAX]


def test_a_second_document_is_a_syntax_problem(tmp_path: Path) -> None:
    doc, problems = _read(tmp_path, "a: 1\n---\nb: 2\n")
    assert doc is None
    assert [(p.kind, p.line) for p in problems] == [(ProblemKind.YAML_SYNTAX, 2)]


def test_a_file_that_is_not_utf8_is_one_problem(tmp_path: Path) -> None:
    doc, problems = _read(tmp_path, "a: 低保\n".encode("gb18030"))
    assert doc is None
    assert [p.kind for p in problems] == [ProblemKind.UNREADABLE]


def _exact(v: Any) -> Any:
    """A safe_load value as the rule reader keeps it: floats as written, so compare as floats."""
    if isinstance(v, dict):
        return {k: _exact(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_exact(x) for x in v]
    if isinstance(v, Decimal | float) and not isinstance(v, bool):
        return float(v)
    return v


@pytest.mark.parametrize("path", sorted(RULES.rglob("*.yaml")), ids=lambda p: p.relative_to(RULES).as_posix())
def test_every_rule_file_reads_as_the_safe_loader_reads_it(path: Path) -> None:
    problems: list[Problem] = []
    _, doc, ok = read_yaml(path, path.name, problems)
    assert ok
    assert problems == []
    assert isinstance(doc, YMap)
    want = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    assert _exact(doc) == _exact(want)


def test_a_fifo_named_like_a_rule_file_is_refused_not_waited_on(tmp_path: Path) -> None:
    """Opening a FIFO for reading blocks until a writer comes: `rules lint` used to hang."""
    rules = _rules(tmp_path)
    (rules / "events.yaml").unlink()
    os.mkfifo(rules / "events.yaml")
    os.mkfifo(rules / "programs" / "zz.yaml")
    with pytest.raises(RuleLoadError) as info:
        load(rules)
    assert [(p.kind, p.file, p.line, p.col) for p in info.value.problems] == [
        (ProblemKind.UNREADABLE, "events.yaml", 1, 1),
        (ProblemKind.UNREADABLE, "programs/zz.yaml", 1, 1),
    ]
    assert "not a regular file" in info.value.problems[0].message


def test_a_link_loop_or_a_broken_link_is_one_problem_each(tmp_path: Path) -> None:
    rules = _rules(tmp_path)
    (rules / "programs" / "loop.yaml").symlink_to(rules / "programs" / "loop.yaml")
    (rules / "tests" / "gone.yaml").symlink_to(tmp_path / "nowhere.yaml")
    (rules / "events.yaml").unlink()
    (rules / "events.yaml").symlink_to(rules / "events.yaml")
    with pytest.raises(RuleLoadError) as info:
        load(rules)
    assert [(p.kind, p.file) for p in info.value.problems] == [
        (ProblemKind.UNREADABLE, "events.yaml"),
        (ProblemKind.UNREADABLE, "programs/loop.yaml"),
        (ProblemKind.UNREADABLE, "tests/gone.yaml"),
    ]
    assert "link loop" in info.value.problems[0].message


def test_a_folder_named_like_a_rule_file_is_skipped(tmp_path: Path) -> None:
    rules = _rules(tmp_path)
    (rules / "programs" / "old.yaml").mkdir()
    assert load(rules).name


@pytest.mark.parametrize("digits", [MAX_NUMBER_CHARS + 1, 4301, 5000])
def test_a_number_too_long_to_be_meant_is_one_problem(tmp_path: Path, digits: int) -> None:
    """int() of more than 4300 digits raises ValueError: it must never reach it."""
    doc, problems = _read(tmp_path, "a: 1\nb: [2, " + "9" * digits + "]\nc: 2019-02-30\n")
    assert doc is None
    assert [(p.kind, p.line, p.col) for p in problems] == [(ProblemKind.TOO_LONG, 2, 8)]


def test_numbers_as_long_as_the_limit_are_read(tmp_path: Path) -> None:
    doc, problems = _read(tmp_path, f"a: {'9' * MAX_NUMBER_CHARS}\nb: 0.{'1' * (MAX_NUMBER_CHARS - 2)}\n")
    assert problems == []
    assert doc["a"] == int("9" * MAX_NUMBER_CHARS)
    assert doc["b"] == Decimal("0." + "1" * (MAX_NUMBER_CHARS - 2))


@pytest.mark.parametrize(("char", "col"), [("\x07", 8), ("\x00", 8), ("\x1b", 8), ("\ufffe", 8)])
def test_a_control_character_is_a_syntax_problem_at_its_place(tmp_path: Path, char: str, col: int) -> None:
    doc, problems = _read(tmp_path, f"a: 1\nb: 'one{char}two'\n")
    assert doc is None
    assert [(p.kind, p.line, p.col) for p in problems] == [(ProblemKind.YAML_SYNTAX, 2, col)]
    assert f"U+{ord(char):04X}" in problems[0].message


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("yes", "read as true/false"),
        ("off", "read as true/false"),
        ("320684", "read as a number"),
        ("1.5", "read as a number"),
        ("~", "keys must be plain text"),
        ("[a, b]", "keys must be plain text"),
    ],
)
def test_a_key_yaml_reads_as_no_text_is_refused_with_a_hint(tmp_path: Path, key: str, message: str) -> None:
    doc, problems = _read(tmp_path, f"a: 1\n? {key}\n: 2\n")
    assert [(p.kind, p.line, p.col) for p in problems] == [(ProblemKind.BAD_KEY, 2, 3)]
    assert message in problems[0].message
    assert doc == {"a": 1}  # the key is left out, so nothing later reads it


def test_quoted_keys_and_date_keys_are_read(tmp_path: Path) -> None:
    doc, problems = _read(tmp_path, "'yes': 1\n\"320684\": 2\n2019-07-01: 3\n")
    assert problems == []
    assert list(doc) == ["yes", "320684", dt.date(2019, 7, 1)]
