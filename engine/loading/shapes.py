"""Keys and shapes: which keys each section of a rule file allows and needs, and small readers
for the values every section shares (a {zh, en} text, a declared type, plain data)."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from engine.errors import Problem, ProblemKind, did_you_mean
from engine.source import Pos, YMap, YStr, pos_of
from engine.types import Type

__all__ = ["LANGS", "REPORTS", "check_keys", "checked_name", "declared_type", "item_id", "plain", "text"]

TYPE_NAMES = {"money", "decimal", "int", "bool", "date", "str", "enum"}
REPORTS = {"fail", "fire", "pass", "always", "never"}
LANGS = ("zh", "en")

KEYS: dict[str, tuple[set[str], set[str]]] = {
    # section: (allowed keys, required keys)
    "ruleset.yaml": (
        {
            "ruleset",
            "decision",
            "explain_members",
            "default_region",
            "reports",
            "record_types",
            "labels",
        },
        {"ruleset", "decision"},
    ),
    "ruleset": ({"name", "version", "title"}, {"name", "version"}),
    "program": (
        {"program", "title", "legal_basis", "derived", "rules", "tables", "outcomes", "outputs", "findings"},
        {"program", "title", "legal_basis"},
    ),
    "derived": ({"id", "title", "per", "expr", "type", "description"}, {"id", "title", "expr"}),
    "rule": (
        {"id", "title", "legal_basis", "per", "applies", "valid_from", "when", "report", "messages"},
        {"id", "title", "when"},
    ),
    "table": (
        {
            "id",
            "title",
            "legal_basis",
            "per",
            "applies",
            "hit_policy",
            "input",
            "inputs",
            "domain",
            "outputs",
            "rows",
            "otherwise",
            "max_by",
            "report",
            "valid_from",
            "dated_by",
        },
        {"id", "title", "outputs", "rows"},
    ),
    "outcome": (
        {"id", "title", "legal_basis", "per", "field", "hit_policy", "cases", "otherwise", "labels"},
        {"id", "title", "field", "hit_policy", "cases", "otherwise"},
    ),
    "case": ({"id", "title", "legal_basis", "when", "value", "set", "messages", "report"}, {"id", "title", "value"}),
    "output": ({"id", "title", "type", "expr"}, {"id", "title", "type", "expr"}),
    "finding": ({"id", "code", "title", "legal_basis", "when", "messages"}, {"id", "code", "title", "when"}),
    "parameter": ({"title", "unit", "values", "description"}, {"title", "unit", "values"}),
    "version": ({"value", "formula", "reference"}, {"reference"}),
    "registry": ({"title", "key", "columns", "computed"}, {"title", "key"}),
    "test": ({"name", "date", "household", "extends", "set", "registries", "expected"}, {"name", "expected"}),
}

# an id (`dibao.income_below_standard`) and a field name (`dibao_status`): what expressions can
# name, and never a character (`;`, `,`, a newline) that would split or fake a reason in bulk output
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*")
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def checked_name(
    value: Any, pos: Pos, problems: list[Problem], what: str, rule_id: str | None = None, dotted: bool = True
) -> str | None:
    """``value`` as a name if it is one (dotted: ``a.b_c``; else a plain identifier); otherwise
    report it at ``pos`` and return None."""
    pattern = _DOTTED if dotted else _PLAIN
    if isinstance(value, str) and pattern.fullmatch(value):
        return str(value)
    shown = "empty" if value is None or value == "" else f"`{plain(value)}`"
    form = (
        "letters, digits and `_`, in parts joined by `.` (like `dibao.income_below_standard`)"
        if dotted
        else "letters, digits and `_`, not starting with a digit (like `dibao_status`)"
    )
    problems.append(pos.problem(ProblemKind.BAD_NAME, f"{what} {shown} is not a name: write {form}", rule_id))
    return None


def item_id(problems: list[Problem], item: Any, where: Pos) -> str | None:
    """An item's `id` when it is a valid dotted name; a bad one is reported (a missing one is
    reported by ``check_keys``)."""
    if not isinstance(item, YMap) or "id" not in item:
        return None
    return checked_name(item["id"], pos_of(item, "id") if "id" in item.value_pos else where, problems, "id")


# why a required key matters, where the key's name alone does not say
_WHY = {
    "reference": " (the document the value comes from, shown with every decision)",
    "hit_policy": " (how its cases take precedence: `hit_policy: first` tries them in the order written)",
}


def check_keys(
    m: Any, section: str, problems: list[Problem], rule_id: str | None = None, where: Pos | None = None
) -> bool:
    """Whether ``m`` is a mapping; report its unknown and missing keys."""
    allowed, required = KEYS[section]
    if not isinstance(m, YMap):
        p = where or pos_of(m)
        problems.append(p.problem(ProblemKind.BAD_TYPE, f"a {section} must be a mapping", rule_id))
        return False
    for key in m:
        if key not in allowed:
            hint = did_you_mean(str(key), allowed)
            problems.append(
                m.key_pos[key].problem(ProblemKind.UNKNOWN_KEY, f"unknown key `{key}` in {section}{hint}", rule_id)
            )
    for key in sorted(required - set(m)):
        problems.append(m.pos.problem(ProblemKind.MISSING_KEY, f"{section} needs `{key}`{_WHY.get(key, '')}", rule_id))
    return True


def text(m: Any, key: str, problems: list[Problem] | None = None) -> dict[str, str]:
    """A {zh, en} text; with ``problems``, anything else in it is reported."""
    v = m.get(key) if isinstance(m, YMap) else None
    if isinstance(v, YMap):
        if problems is not None:
            for k in v:
                if k not in LANGS:
                    hint = "; a comma inside unquoted text splits it, so quote the text"
                    problems.append(
                        v.key_pos[k].problem(
                            ProblemKind.UNKNOWN_KEY, f"`{key}` has only `zh` and `en`, not `{k}`{hint}"
                        )
                    )
            for lang in LANGS:
                if lang not in v:
                    problems.append(v.pos.problem(ProblemKind.MISSING_KEY, f"`{key}` needs `{lang}`"))
        return {str(k): str(x) for k, x in v.items()}
    if isinstance(v, str):
        return {"zh": v, "en": v}
    return {}


def declared_type(name: Any, pos: Pos, problems: list[Problem], rule_id: str) -> Type | None:
    """The type a rule file names (``money``, ``int?``), or ``None`` after reporting it."""
    written = str(name)
    nullable = written.endswith("?")
    base = written.rstrip("?")
    if base not in TYPE_NAMES:
        problems.append(
            pos.problem(ProblemKind.UNKNOWN_TYPE, f"unknown type `{base}`{did_you_mean(base, TYPE_NAMES)}", rule_id)
        )
        return None
    return Type(base, nullable)


def plain(v: Any) -> Any:
    """Read YAML as plain JSON-like data: dates as ISO text, decimals as text."""
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [plain(x) for x in v]
    if isinstance(v, YStr):
        return str(v)
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, Decimal):
        return str(v)
    return v
