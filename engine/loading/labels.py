"""The `labels` section of ruleset.yaml: what officers read for each decision field and for
the codes it takes. Every decision field needs a title in both languages (its own, or the
title of the output or outcome defining it), and every value an outcome gives its field a
label (in ruleset.yaml, or in the outcome's own `labels`): a missing one is a lint problem
where it should be."""

from __future__ import annotations

from typing import Any

from engine.errors import ProblemKind
from engine.plan import CaseValue, Output
from engine.source import Pos, YList, YMap

from .shapes import text
from .state import Declared

__all__ = ["read_labels"]

_LANGS = ("zh", "en")


def read_labels(d: Declared, raw: Any, where: Pos, decision: list[str]) -> dict[str, dict[str, Any]]:
    """{field: {"title": {zh, en}, "values": {code: {zh, en}}}} for every decision field."""
    if raw is not None and not isinstance(raw, YMap):
        d.problems.append(where.problem(ProblemKind.BAD_TYPE, "`labels` maps decision fields to title and values"))
        raw = None
    raw = raw if isinstance(raw, YMap) else YMap()
    out: dict[str, dict[str, Any]] = {}
    outcome_fields = {s.name for s in d.symbols.values() if s.kind is CaseValue}
    for name in raw:
        if str(name) not in decision and str(name) not in outcome_fields:
            d.problems.append(
                raw.key_pos[name].problem(
                    ProblemKind.UNKNOWN_NAME, f"labels: `{name}` is neither a decision field nor an outcome's field"
                )
            )
    for name in dict.fromkeys([*decision, *outcome_fields]):
        spec = raw.get(name)
        pos = raw.value_pos.get(name, where)
        if spec is not None and not isinstance(spec, YMap):
            d.problems.append(pos.problem(ProblemKind.BAD_TYPE, f"labels: `{name}` needs `title` and/or `values`"))
            spec = None
        for key in spec or ():
            if key not in ("title", "values"):
                d.problems.append(
                    spec.key_pos[key].problem(
                        ProblemKind.UNKNOWN_KEY,
                        f"labels: `{name}` has an unknown key `{key}` (only `title` and `values`)",
                    )
                )
        sym = d.symbols.get(("household", name))
        title = text(spec, "title", d.problems) if spec is not None and "title" in spec else {}
        if not title and sym is not None and sym.kind in (Output, CaseValue):
            title = dict(sym.title)
        for lang in _LANGS if name in decision else ():
            if not title.get(lang):
                d.problems.append(
                    pos.problem(ProblemKind.MISSING_KEY, f"decision field `{name}` needs a title with `{lang}`")
                )
        values: dict[str, dict[str, str]] = {}
        vraw = spec.get("values") if spec is not None else None
        if isinstance(vraw, YMap):
            values = {str(code): text(vraw, code, d.problems) for code in vraw}
        out[name] = {"title": title, "values": values}
    for sym in d.symbols.values():
        if sym.kind is CaseValue:
            _check_values(d, sym.owner, sym.name, out[sym.name]["values"])
    return out


def _check_values(d: Declared, outcome: str, name: str, labels: dict[str, dict[str, str]]) -> None:
    """Every value an outcome's cases (and its `otherwise`) give its field has a label, in
    ruleset.yaml or in the outcome's own `labels`; a missing one is reported where the value is
    written. The outcome's labels are added to ``labels``."""
    sym = d.symbols.get(("household", outcome)) or d.symbols.get(("member", outcome))
    item = sym.raw if sym is not None else None
    if not isinstance(item, YMap):
        return
    own = item.get("labels")
    if isinstance(own, YMap):
        for code in own:
            labels.setdefault(str(code), text(own, code, d.problems))
    cases = list(item["cases"]) if isinstance(item.get("cases"), YList) else []
    if isinstance(item.get("otherwise"), YMap):
        cases.append(item["otherwise"])
    for c in cases:
        if not isinstance(c, YMap) or "value" not in c:
            continue
        code = str(c["value"])
        missing = [lang for lang in _LANGS if not labels.get(code, {}).get(lang)]
        if missing:
            d.problems.append(
                c.value_pos["value"].problem(
                    ProblemKind.MISSING_KEY,
                    f"value `{code}` of `{name}` needs a label ({', '.join(f'`{x}`' for x in missing)})"
                    " in ruleset.yaml `labels` or the outcome's own `labels`",
                    outcome,
                )
            )
