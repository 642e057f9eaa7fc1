"""A reject reason in the reader's language, and its catalogue code.

Both validators (the generated row validator and the caseload's column checks) word every
reason in English from ``reject.*``, so they can be compared text for text. What a person
reads is rendered from that one English text: it is matched against the catalogue's English
templates, and the message with the same key is filled in with the same values in the
reader's language. A reason no template matches (never expected) is shown as it is.
"""

from __future__ import annotations

import re
import string
from functools import cache
from typing import NamedTuple

from engine.messages import catalogue, text

__all__ = ["Reason", "problem_text", "reason", "reason_text"]

# reasons a validator words (reject.*) and problems with a request's fields (input.*)
_PREFIXES = ("reject.", "input.")
_HINT = "reject.did_you_mean"
_PARTS = ("reject.did_you_mean", "reject.cond_")
_PROBLEMS = ("problem.",)  # what `rules lint` says of the rule files  # pieces of other messages, never a reason alone


class Reason(NamedTuple):
    """A reason read back: its catalogue key (``None`` if none matches) and its values."""

    code: str | None
    params: dict[str, str]


def _pattern(template: str) -> str:
    parts: list[str] = []
    for literal, name, _, _ in string.Formatter().parse(template):
        parts.append(re.escape(literal))
        if name is not None:
            parts.append(f"(?P<{name}>(?:, did you mean `[^`]*`\\?)?)" if name == "hint" else f"(?P<{name}>.*?)")
    return "".join(parts)


@cache
def _templates(prefixes: tuple[str, ...] = _PREFIXES) -> tuple[tuple[str, re.Pattern[str]], ...]:
    """Every template under ``prefixes`` as a regex, the most literal text first (so "is
    required when …" is tried before a shorter message that could swallow it)."""
    found = [
        (key, entry["en"])
        for key, entry in catalogue().items()
        if key.startswith(prefixes) and not key.startswith(_PARTS) and "en" in entry
    ]
    found.sort(key=lambda kv: -len(re.sub(r"\{[^}]*\}", "", kv[1])))
    return tuple((key, re.compile(_pattern(en), re.DOTALL)) for key, en in found)


def reason(message: str, prefixes: tuple[str, ...] = _PREFIXES) -> Reason:
    """The catalogue key and values of an English reason.

    >>> reason("must be at least 0 (got -1)")
    Reason(code='reject.min', params={'bound': '0', 'got': '-1'})
    >>> reason("something else").code is None
    True
    """
    for key, pattern in _templates(prefixes):
        m = pattern.fullmatch(message)
        if m is not None:
            return Reason(key, m.groupdict())
    return Reason(None, {})


def _hint(value: str, lang: str) -> str:
    m = re.fullmatch(r", did you mean `([^`]*)`\?", value)
    return text(_HINT, lang, name=m.group(1)) if m else value


def _cond(value: str, lang: str) -> str:
    """A ``required_when`` condition ("type is emergency, tier is 1 or 2") in ``lang``."""
    if lang == "en":
        return value
    return text("reject.cond_join", lang).join(
        text("reject.cond_is", lang, name=name, values=values.replace(" or ", text("reject.cond_or", lang)))
        for name, values in (part.split(" is ", 1) if " is " in part else (part, "") for part in value.split(", "))
    )


def reason_text(message: str, lang: str, prefixes: tuple[str, ...] = _PREFIXES) -> str:
    """An English reason as the reader of ``lang`` reads it.

    >>> reason_text("must be at least 0 (got -1)", "zh")
    '不得小于 0（实为 -1）'
    >>> reason_text("unknown field, did you mean `township`?", "zh")
    '未知字段，是否应为 `township`？'
    >>> reason_text("is required when type is emergency", "zh")
    'type 为 emergency 时必填'
    """
    code, params = reason(message, prefixes)
    if code is None or lang == "en":
        return message
    if "hint" in params:
        params["hint"] = _hint(params["hint"], lang)
    if "cond" in params:
        params["cond"] = _cond(params["cond"], lang)
    return text(code, lang, **params)


def problem_text(message: str, lang: str) -> str:
    """A rule-file problem's English message (``rules lint``) in ``lang``, where ``problem.*`` has it.

    >>> problem_text("key `rate` appears twice (first at line 3)", "zh")
    '键 `rate` 出现两次（第一次在第 3 行）'
    """
    return reason_text(message, lang, _PROBLEMS)
