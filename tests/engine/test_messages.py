"""The message catalogue: both languages everywhere, same placeholders, negotiation, reasons rendered."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.messages import LANGS, catalogue, check_catalogue, negotiate, placeholders, text
from engine.validation.messages import MESSAGES, say
from engine.validation.wording import reason, reason_text


def test_bundled_catalogue_is_sound() -> None:
    assert check_catalogue() == []
    assert len(catalogue()) >= 30


def test_check_finds_a_missing_language_and_differing_placeholders(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text(
        'ok: {zh: "好 {n}", en: "fine {n}"}\n'
        'lonely: {en: "English only"}\n'
        'drift: {zh: "不得小于 {bound}", en: "must be at least {lo}"}\n'
        'broken: {zh: "坏 {", en: "bad {"}\n',
        encoding="utf-8",
    )
    problems = check_catalogue(tmp_path)
    assert any(p.startswith("x.lonely:") for p in problems)
    assert any(p.startswith("x.drift: placeholders differ") for p in problems)
    assert any(p.startswith("x.broken.zh") for p in problems)
    assert not any(p.startswith("x.ok") for p in problems)


def test_text_defaults_to_chinese_and_fills_placeholders() -> None:
    assert text("reject.max", bound=3, got=4) == "不得大于 3（实为 4）"
    assert text("reject.max", "en", bound=3, got=4) == "must be at most 3 (got 4)"
    assert text("reject.max", "fr", bound=3, got=4) == text("reject.max", "zh", bound=3, got=4)


@pytest.mark.parametrize(
    ("header", "want"),
    [
        (None, "zh"),
        ("", "zh"),
        ("en", "en"),
        ("en-GB,en;q=0.9", "en"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("fr-FR, en;q=0.3", "en"),
        ("en;q=0.2, zh;q=0.8", "zh"),
        ("en;q=0", "zh"),
        ("garbage;;q=x", "zh"),
    ],
)
def test_accept_language(header: str | None, want: str) -> None:
    assert negotiate(header) == want


def _sample(names: frozenset[str]) -> dict[str, str]:
    values = {"hint": ", did you mean `township`?", "cond": "type is emergency"}
    return {n: values.get(n, f"<{n}>") for n in names}


@pytest.mark.parametrize("kind", sorted(k for k in MESSAGES if not k.startswith(("did_you_mean", "cond_"))))
def test_every_reject_reason_reads_back_in_chinese(kind: str) -> None:
    """The English reason a validator words renders as the same message in Chinese, with its code."""
    params = _sample(placeholders(MESSAGES[kind]["en"]))
    english = say(kind, **params)
    assert reason(english).code == f"reject.{kind}"
    chinese = reason_text(english, "zh")
    assert chinese != english
    for name, value in params.items():
        if name not in {"hint", "cond"}:
            assert value in chinese
    assert reason_text(english, "en") == english


def test_languages_are_the_ones_we_promise() -> None:
    assert LANGS == ("zh", "en")
    assert all(set(entry) == set(LANGS) for entry in catalogue().values())


def test_lint_problems_of_the_golden_bad_files_read_in_chinese() -> None:
    """Every message `rules lint` gives for fixtures/rules_invalid has a Chinese form, except what
    the YAML reader itself says of a syntax error."""
    from engine.validation.wording import problem_text
    from tests.conftest import FIXTURES

    lines = [
        line
        for expected in sorted((FIXTURES / "rules_invalid").glob("*/expected.txt"))
        for line in expected.read_text(encoding="utf-8").splitlines()
    ]
    assert len(lines) > 40
    untranslated = []
    for line in lines:
        _, kind, message = line.split(": ", 2)
        if kind.startswith("yaml-syntax") and "control characters" not in message:
            continue
        if problem_text(message, "zh") == message:
            untranslated.append(line)
    assert untranslated == []


def test_problem_text_leaves_unknown_messages_alone() -> None:
    from engine.validation.wording import problem_text

    assert problem_text("a message nobody wrote a template for", "zh") == "a message nobody wrote a template for"
    assert problem_text("key `a` appears twice (first at line 2)", "en") == "key `a` appears twice (first at line 2)"
