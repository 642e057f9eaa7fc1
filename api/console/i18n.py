"""The console's words: the ``console.*`` messages of the one catalogue (``engine/catalogue/console.yaml``), Chinese by default.

Pages never hold their own words; a template writes ``t("nav.inbox")`` and a screen module
``ctx.t("...")``. A key missing from the catalogue, or missing a language, is an error (a test
reads every template and screen module for the keys they use).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from engine import messages

__all__ = ["DEFAULT", "LANGS", "catalogue", "pick_lang", "translate"]

LANGS = ("zh", "en")
DEFAULT = "zh"
_PREFIX = "console."


@cache
def catalogue() -> dict[str, dict[str, str]]:
    """The console's part of the one message catalogue (``engine/catalogue/console.yaml``), by short key."""
    return {
        key.removeprefix(_PREFIX): dict(entry) for key, entry in messages.catalogue().items() if key.startswith(_PREFIX)
    }


def translate(lang: str, key: str, **values: Any) -> str:
    """The text of ``key`` in ``lang``, with ``{name}`` fields filled from ``values``."""
    return messages.text(_PREFIX + key, lang if lang in LANGS else DEFAULT, **values)


def pick_lang(asked: str | None, cookie: str | None) -> str:
    """``?lang=`` first, then the cookie, then Chinese."""
    for value in (asked, cookie):
        if value in LANGS:
            return str(value)
    return DEFAULT


def bilingual(label: Any, lang: str) -> str:
    """A rules file's {zh, en} label in ``lang`` (policy words stay in rules/*.yaml)."""
    if isinstance(label, dict):
        return str(label.get(lang) or label.get(DEFAULT) or next(iter(label.values()), ""))
    return "" if label is None else str(label)
