"""Declarations of tables and outcomes: besides themselves they declare the names they give
values to (a table's output columns; an outcome's field, its cases and the fields they set)."""

from __future__ import annotations

from engine.errors import ProblemKind
from engine.plan import Case, CaseSet, CaseValue, Outcome, Table, TableOutput
from engine.source import Pos, YList, YMap, pos_of
from engine.types import BOOL, INT, STR

from .draft import Draft
from .items import explained, messages, report, scope
from .shapes import check_keys, checked_name, declared_type, item_id, text
from .state import Declared

__all__ = ["declare_outcome", "declare_table"]

_OUTCOME_POLICIES = ("first",)


def declare_table(d: Declared, item: YMap, program: str, basis: str) -> None:
    """A table, and one name per output column (``table.column``)."""
    rid = str(item["id"])
    per = scope(d, item, rid)
    sym = explained(d, item, rid, per, Table, STR, program, basis, report=report(d, item, rid, "fire"))
    d.add(sym)
    outputs = item.get("outputs")
    if not isinstance(outputs, YMap):
        d.problems.append(
            pos_of(item, "outputs").problem(ProblemKind.BAD_TYPE, "`outputs` maps column names to types", rid)
        )
        return
    for col, tname in outputs.items():
        t = declared_type(tname, outputs.value_pos[col], d.problems, rid)
        checked_name(col, outputs.key_pos[col], d.problems, "column", rid, dotted=False)
        d.add(
            Draft(
                f"{rid}.{col}",
                per,
                TableOutput,
                t,
                title=sym.title,
                program=program,
                pos=outputs.value_pos[col],
                owner=rid,
                column=str(col),
            )
        )


def declare_outcome(d: Declared, item: YMap, program: str, basis: str) -> None:
    """An outcome (its case index), its field, each case, and each field a case sets."""
    rid = str(item["id"])
    per = scope(d, item, rid)
    basis = str(item.get("legal_basis", basis))
    d.add(
        Draft(
            rid,
            per,
            Outcome,
            INT,
            title=text(item, "title", d.problems),
            legal_basis=basis,
            program=program,
            pos=item.pos,
            raw=item,
        )
    )
    field = str(item.get("field"))
    if "field" in item:
        checked_name(item["field"], pos_of(item, "field"), d.problems, "field", rid, dotted=False)
    d.add(
        Draft(
            field,
            per,
            CaseValue,
            None,
            title=text(item, "title", d.problems),
            legal_basis=basis,
            program=program,
            pos=pos_of(item, "field"),
            owner=rid,
        )
    )
    policy = item.get("hit_policy")
    if policy is not None and policy not in _OUTCOME_POLICIES:
        d.problems.append(
            pos_of(item, "hit_policy").problem(
                ProblemKind.BAD_VALUE,
                f"an outcome's hit_policy is `first` (cases in the order written), not `{policy}`",
                rid,
            )
        )
    cases = item.get("cases")
    if not isinstance(cases, YList):
        d.problems.append(pos_of(item, "cases").problem(ProblemKind.BAD_TYPE, "`cases` must be a list", rid))
        return
    all_cases = [(c, cases.item_pos[i]) for i, c in enumerate(cases)]
    other = item.get("otherwise")
    if other is not None:
        all_cases.append((other, pos_of(item, "otherwise")))
    sets: dict[str, Pos] = {}
    for c, cpos in all_cases:
        cid = item_id(d.problems, c, cpos)
        if not check_keys(c, "case", d.problems, cid or rid, cpos) or not cid:
            continue
        _declare_case(d, c, cid, c is other, per, rid, program, basis, sets)
    for k, kpos in sets.items():
        d.add(
            Draft(
                k,
                per,
                CaseSet,
                None,
                title=text(item, "title", d.problems),
                program=program,
                pos=kpos,
                owner=rid,
                column=k,
            )
        )


def _declare_case(
    d: Declared,
    c: YMap,
    cid: str,
    is_other: bool,
    per: str,
    rid: str,
    program: str,
    basis: str,
    sets: dict[str, Pos],
) -> None:
    """One case; the fields it sets are gathered into ``sets`` (first place each is set)."""
    if not is_other and "when" not in c:
        d.problems.append(c.pos.problem(ProblemKind.MISSING_KEY, "case needs `when`", cid))
    if is_other and "when" in c:
        d.problems.append(pos_of(c, "when").problem(ProblemKind.BAD_VALUE, "`otherwise` has no `when`", cid))
    d.add(
        explained(
            d,
            c,
            cid,
            per,
            Case,
            BOOL,
            program,
            basis,
            report=report(d, c, cid, "fire"),
            messages=messages(d, c, cid),
            owner=rid,
        )
    )
    s = c.get("set") or YMap()
    if isinstance(s, YMap):
        for k in s:
            if checked_name(k, s.key_pos[k], d.problems, "field", cid, dotted=False):
                sets.setdefault(str(k), s.key_pos[k])
    else:
        d.problems.append(
            pos_of(c, "set").problem(ProblemKind.BAD_TYPE, "`set` maps decision fields to expressions", cid)
        )
