"""A record type's rules read into the plan: each test an ``engine.ir`` expression over the
record type's typed symbols, checked once with ``file:line:col`` problems.

The three tests a rule file writes are ways of spelling an expression: ``below_age`` is
``years_between(birth, at) < min``, ``is_false`` is ``field == False``, ``records`` is an
``ir.Records`` over the registry of dated rows. A field or parameter of the wrong type is a
``type-error``, as in a household rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from engine import ir
from engine.errors import ProblemKind, did_you_mean
from engine.plan import Text
from engine.plan_records import DatedParameter, RecordInput, SubjectRule
from engine.source import YList, YMap, pos_of
from engine.types import BOOL, DATE, INT, Type

__all__ = ["read_rules"]

_TESTS = ("below_age", "is_false", "records")
_ALLOWED = {"id", "title", "applies", "test", "each_category", "action", "label", "legal_basis", "message"}


class Reader(Protocol):
    display: str

    def bad(self, where: Any, kind: ProblemKind, message: str, key: Any = None, rule_id: str | None = None) -> None: ...

    def mapping(self, m: Any, what: str, allowed: set[str], required: set[str], where: Any) -> YMap | None: ...

    def label(self, m: YMap, what: str) -> str: ...


def _text(v: Any) -> Text:
    if isinstance(v, dict):
        return {str(k): str(x) for k, x in v.items()}
    return {"zh": str(v), "en": str(v)} if v is not None else {}


class _Scope:
    """The symbols one record type's rules may name, and the problems of one rule."""

    def __init__(
        self,
        r: Reader,
        scope: str,
        fields: Mapping[str, RecordInput],
        params: Mapping[str, DatedParameter],
        cats: set[str],
    ) -> None:
        self.r, self.scope, self.fields, self.params, self.cats = r, scope, fields, params, cats

    def field(self, where: Any, key: str, name: Any, want: Type | None, rid: str) -> ir.Ref | None:
        f = self.fields.get(str(name))
        if f is None:
            hint = did_you_mean(str(name), self.fields)
            self.r.bad(where, ProblemKind.UNKNOWN_NAME, f"no record field `{name}`{hint}", key, rid)
            return None
        if want is not None and f.type.kind != want.kind:
            msg = f"`{name}` is {f.type.describe()}, not {want.describe()}"
            self.r.bad(where, ProblemKind.TYPE_ERROR, msg, key, rid)
            return None
        return ir.Ref(f.type, f.name, self.scope)

    def param(self, where: Any, key: str, name: Any, units: tuple[str, ...], rid: str) -> ir.Ref | None:
        p = self.params.get(str(name))
        if p is None:
            hint = did_you_mean(str(name), self.params)
            self.r.bad(where, ProblemKind.UNKNOWN_NAME, f"no parameter `{name}`{hint}", key, rid)
            return None
        if p.unit not in units:
            msg = f"parameter `{name}` is {p.unit}, not {' or '.join(units)}"
            self.r.bad(where, ProblemKind.TYPE_ERROR, msg, key, rid)
            return None
        return ir.Ref(p.type, p.name, self.scope)


def read_rules(
    r: Reader,
    doc: Any,
    scope: str,
    fields: Mapping[str, RecordInput],
    params: Mapping[str, DatedParameter],
    cats: set[str],
    findings: str,
) -> tuple[SubjectRule, ...]:
    """The rules of a record type in reporting order; ``findings`` is its registry of dated rows."""
    s = _Scope(r, scope, fields, params, cats)
    out = []
    for i, item in enumerate(doc if isinstance(doc, YList) else []):
        m = r.mapping(
            item, "rule", _ALLOWED, {"id", "title", "test", "label", "legal_basis", "message"}, pos_of(doc, i)
        )
        if m is None:
            continue
        rid = str(m.get("id"))
        test = m.get("test")
        if not (isinstance(test, dict) and len(test) == 1 and str(next(iter(test))) in _TESTS):
            r.bad(m, ProblemKind.BAD_VALUE, f"`test` is one of {', '.join(_TESTS)}", "test", rid)
            continue
        kind, args = next(iter(test.items()))
        built = _TEST[str(kind)](s, test, str(kind), args if isinstance(args, dict) else {"field": args}, rid, findings)
        applies = _applies(s, m.get("applies"), rid)
        action = m.get("action")
        by = None
        if isinstance(action, dict):
            by = (str(action.get("by")), {str(k): str(v) for k, v in (action.get("values") or {}).items()})
            action = None
        if built is None:
            continue
        expr, values = built
        out.append(
            SubjectRule(
                name=rid,
                scope=scope,
                type=BOOL,
                title=_text(m.get("title")),
                legal_basis=str(m.get("legal_basis", "")),
                pos=m.pos,
                report="fail",
                test=expr,
                applies=applies,
                values=values,
                each_category=bool(m.get("each_category", False)),
                action=str(action) if action is not None else None,
                action_by=by,
                label=r.label(m, f"rule {rid}"),
                message=_text(m.get("message")),
            )
        )
    return tuple(out)


_Built = tuple[ir.Expr, dict[str, ir.Expr]] | None


def _below_age(s: _Scope, where: Any, key: str, args: Any, rid: str, findings: str) -> _Built:
    birth = s.field(where, key, args.get("birth"), DATE, rid)
    at = s.field(where, key, args.get("at"), DATE, rid)
    least = s.param(where, key, args.get("min"), ("int",), rid)
    if birth is None or at is None or least is None:
        return None
    age = ir.Call(INT, "years_between", (birth, at))
    return ir.Compare(BOOL, "<", age, least), {"age": age, "at": at, "min": least}


def _is_false(s: _Scope, where: Any, key: str, args: Any, rid: str, findings: str) -> _Built:
    f = s.field(where, key, args.get("field"), BOOL, rid)
    return None if f is None else (ir.Compare(BOOL, "==", f, ir.Const(BOOL, False)), {})


def _records(s: _Scope, where: Any, key: str, args: Any, rid: str, findings: str) -> _Built:
    ok = True
    for name in args.get("categories") or []:
        if str(name) not in s.cats:
            s.r.bad(where, ProblemKind.UNKNOWN_NAME, f"no category `{name}`{did_you_mean(str(name), s.cats)}", key, rid)
            ok = False
    source = None
    if "categories_from" in args:
        source = s.param(where, key, args["categories_from"], ("categories",), rid)
        ok = ok and source is not None
    elif not args.get("categories"):
        s.r.bad(where, ProblemKind.MISSING_KEY, "records: needs `categories` or `categories_from`", key, rid)
        ok = False
    window = str(args["window"]) if "window" in args else None
    if window is not None and window not in ("ever", "active"):
        s.r.bad(where, ProblemKind.BAD_VALUE, "records: `window` for all categories is ever or active", key, rid)
        ok = False
    bounds = {k: s.field(where, key, args[k], DATE, rid) for k in ("start_on_or_after", "start_before") if k in args}
    if not ok or any(b is None for b in bounds.values()):
        return None
    node = ir.Records(
        BOOL,
        findings,
        tuple(str(c) for c in args.get("categories") or ()),
        source,
        window,
        bounds.get("start_on_or_after"),
        bounds.get("start_before"),
    )
    return node, {}


_TEST = {"below_age": _below_age, "is_false": _is_false, "records": _records}


def _applies(s: _Scope, doc: Any, rid: str) -> ir.Expr | None:
    """``{field: value, ...}``: every field has that value (an enumeration's member)."""
    parts: list[ir.Expr] = []
    for k, v in doc.items() if isinstance(doc, YMap) else ():
        ref = s.field(doc, str(k), k, None, rid)
        if ref is None:
            continue
        if ref.type.kind == "enum" and str(v) not in ref.type.values:
            hint = did_you_mean(str(v), ref.type.values)
            s.r.bad(doc, ProblemKind.UNKNOWN_VALUE, f"`{k}` has no value `{v}`{hint}", k, rid)
        parts.append(ir.Compare(BOOL, "==", ref, ir.Const(ref.type, str(v))))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else ir.BoolOp(BOOL, "and", tuple(parts))
