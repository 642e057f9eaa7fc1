"""The console's words: one catalogue (``messages.yaml``: key -> {zh, en}), Chinese by default.

Pages never hold their own words; a template writes ``t("nav.inbox")`` and a screen module
``ctx.t("...")``. A key missing from the catalogue, or missing a language, is an error (a test
reads every template and screen module for the keys they use).
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml

__all__ = ["DEFAULT", "LANGS", "catalogue", "pick_lang", "translate"]

LANGS = ("zh", "en")
DEFAULT = "zh"


@cache
def catalogue() -> dict[str, dict[str, str]]:
    text = (resources.files("api.console") / "messages.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError("api/console/messages.yaml must map keys to {zh, en}")
    out: dict[str, dict[str, str]] = {}
    for key, entry in data.items():
        if not isinstance(entry, dict) or set(entry) != set(LANGS):
            raise ValueError(f"api/console/messages.yaml: {key} needs exactly {', '.join(LANGS)}")
        out[str(key)] = {lang: str(entry[lang]) for lang in LANGS}
    return out


def translate(lang: str, key: str, **values: Any) -> str:
    """The text of ``key`` in ``lang``, with ``{name}`` fields filled from ``values``."""
    text = catalogue()[key][lang if lang in LANGS else DEFAULT]
    return text.format(**values) if values else text


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
