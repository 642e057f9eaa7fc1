"""What every program item may declare alike: its scope, when it is reported, its messages."""

from __future__ import annotations

from typing import Any

from engine.errors import ProblemKind
from engine.plan import Definition
from engine.source import YMap, pos_of
from engine.types import Type

from .draft import Draft
from .shapes import REPORTS, text
from .state import Declared

__all__ = ["explained", "messages", "report", "scope"]


def explained(
    d: Declared,
    item: YMap,
    rid: str,
    per: str,
    kind: type[Definition],
    t: Type | None,
    program: str,
    basis: str,
    **rest: Any,
) -> Draft:
    """The draft of a definition an explanation shows: its title, its legal basis (its own, else
    its program's), where it is written; ``rest`` adds what its kind needs."""
    return Draft(
        rid,
        per,
        kind,
        t,
        title=text(item, "title", d.problems),
        legal_basis=str(item.get("legal_basis", basis)),
        program=program,
        pos=item.pos,
        raw=item,
        **rest,
    )


def scope(d: Declared, item: YMap, rid: str) -> str:
    """Whether the item is computed per household or per member."""
    per = str(item.get("per", "household"))
    if per not in ("household", "member"):
        d.problems.append(
            pos_of(item, "per").problem(ProblemKind.BAD_VALUE, f"`per` is household or member, not `{per}`", rid)
        )
        return "household"
    return per


def report(d: Declared, item: YMap, rid: str, default: str) -> str:
    """When the item is a reason in an explanation (``report:``)."""
    written = str(item.get("report", default))
    if written not in REPORTS:
        d.problems.append(
            pos_of(item, "report").problem(
                ProblemKind.BAD_VALUE, f"`report` is one of {', '.join(sorted(REPORTS))}", rid
            )
        )
        return default
    return written


def messages(d: Declared, item: YMap, rid: str) -> dict[str, dict[str, str]]:
    """The item's `pass`/`fail` messages, each {zh, en}."""
    msgs = item.get("messages")
    if msgs is None:
        return {}
    if not isinstance(msgs, YMap):
        d.problems.append(
            pos_of(item, "messages").problem(ProblemKind.BAD_TYPE, "`messages` maps pass/fail to {zh, en}", rid)
        )
        return {}
    out = {}
    for k, v in msgs.items():
        if k not in ("pass", "fail") or not isinstance(v, YMap):
            d.problems.append(
                msgs.key_pos[k].problem(
                    ProblemKind.BAD_VALUE, "messages has `pass` and `fail`, each {zh: ..., en: ...}", rid
                )
            )
            continue
        out[str(k)] = {str(lang): str(t) for lang, t in v.items()}
    return out
