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
