"""Input-validation messages: the ``reject.*`` part of the one catalogue (``engine/catalogue/reject.yaml``).

Every validator (one household, a caseload's columns, a registry, an event) words a
problem through ``say``, so the same bad value reads the same on every path. Validators
word in English, the stable form rejects files and the agreement tests compare;
``engine.reasons.reason_text`` renders a worded reason in the reader's language.
"""

from __future__ import annotations

from typing import Any

from engine.messages import catalogue, text

__all__ = ["MESSAGES", "say"]

_PREFIX = "reject."

# kind -> {lang: template}; the same texts as the catalogue, by their short kind
MESSAGES: dict[str, dict[str, str]] = {
    key.removeprefix(_PREFIX): dict(entry) for key, entry in catalogue().items() if key.startswith(_PREFIX)
}


def say(kind: str, lang: str = "en", **values: Any) -> str:
    """One message of the table, filled in.

    >>> say("min", bound=0, got="-1")
    'must be at least 0 (got -1)'
    """
    return text(_PREFIX + kind, lang, **values)
