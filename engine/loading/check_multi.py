"""Unique tables over several inputs (``inputs:``), as standards write them: each row's
``when`` gives, for some inputs, the values it covers (an interval, a value or a list of
values; an input a row leaves out is any value), or a list of such boxes, any of which.

The check enumerates the cross product of the inputs' finite domains (an int input's
``domain`` interval, true/false, an enumeration's values) and reports the first
combinations that no row covers (gaps) and that more than one row covers (overlaps).
A table that passes is evaluated as its rows' conditions: at most one holds for any
combination, so their order does not matter.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from engine import ir
from engine.errors import ProblemKind
from engine.plan import Lookup, TableRow
from engine.source import Pos, YList, YMap, pos_of
from engine.tables import parse_interval
from engine.types import BOOL

from .check import AlreadyReported, Checker

__all__ = [
    "MAX_COMBINATIONS",
    "SHOWN",
    "check_inputs",
    "combination_problems",
    "multi_rows",
    "row_boxes",
    "row_condition",
]

MAX_COMBINATIONS = 1_000_000  # the cross product a load may enumerate
SHOWN = 5  # gaps and overlaps listed one by one; the rest are counted

Domain = tuple[Any, ...]
Box = dict[str, frozenset[Any]]


def check_inputs(ck: Checker, item: YMap, rid: str, scope: str) -> dict[str, tuple[ir.Expr, Domain]]:
    """Each input's expression and finite domain, in the order written."""
    raw = item.get("inputs")
    if not isinstance(raw, YMap) or not raw:
        ck.problems.append(
            pos_of(item, "inputs").problem(ProblemKind.BAD_TYPE, "`inputs` maps names to expressions", rid)
        )
        raise AlreadyReported
    domains = item.get("domain")
    domains = domains if isinstance(domains, YMap) else YMap()
    out: dict[str, tuple[ir.Expr, Domain]] = {}
    size = 1
    for name, text in raw.items():
        expr = ck.expr(text, raw.value_pos[name], scope, rid)
        if expr is None:
            continue
        where = raw.key_pos[name]
        kind = expr.type.kind
        if kind == "bool":
            domain: Domain = (False, True)
        elif kind == "enum":
            domain = expr.type.values
        elif kind == "int":
            iv = parse_interval(str(domains.get(name, "")))
            if iv is None or iv.lo is None or iv.hi is None:
                ck.problems.append(
                    where.problem(
                        ProblemKind.BAD_VALUE,
                        f'input `{name}` needs a finite `domain` interval, like `domain: {{{name}: "[0, 3]"}}`',
                        rid,
                    )
                )
                continue
            domain = tuple(v for v in range(int(iv.lo) - 1, int(iv.hi) + 2) if iv.contains(Decimal(v)))
        else:
            ck.problems.append(
                where.problem(
                    ProblemKind.TYPE_ERROR,
                    f"input `{name}` is {expr.type.describe()}; a table over several inputs takes whole "
                    "numbers, true/false or enumerations",
                    rid,
                )
            )
            continue
        size *= max(len(domain), 1)
        out[str(name)] = (expr, domain)
    if len(out) != len(raw):
        raise AlreadyReported
    if size > MAX_COMBINATIONS:
        ck.problems.append(
            pos_of(item, "inputs").problem(
                ProblemKind.BAD_VALUE, f"the inputs have {size} combinations, more than {MAX_COMBINATIONS}", rid
            )
        )
        raise AlreadyReported
    return out


def _cell(value: Any, domain: Domain) -> frozenset[Any] | None:
    """The values of ``domain`` a cell covers, or None when the cell cannot be read."""
    if isinstance(value, list):
        picked = [_cell(v, domain) for v in value]
        return None if any(p is None for p in picked) else frozenset().union(*(p for p in picked if p))
    if isinstance(value, bool) or (isinstance(value, str) and value in domain):
        return frozenset({value}) if value in domain else None
    if isinstance(value, int):
        return frozenset({value}) if any(type(d) is int for d in domain) else None
    if isinstance(value, str) and domain and type(domain[0]) is int:
        iv = parse_interval(value)
        return None if iv is None else frozenset(d for d in domain if iv.contains(Decimal(d)))
    return None


def row_boxes(ck: Checker, raw: YMap, rid: str, inputs: dict[str, tuple[ir.Expr, Domain]]) -> list[Box] | None:
    """The boxes of one row's ``when``: a mapping, or a list of mappings (any of them)."""
    when = raw.get("when")
    alternatives = list(when) if isinstance(when, YList) else [when]
    boxes: list[Box] = []
    for alt in alternatives:
        if not isinstance(alt, YMap) or not alt:
            ck.problems.append(
                pos_of(raw, "when").problem(
                    ProblemKind.BAD_VALUE,
                    f"row `{raw.get('id')}`: `when` gives values for some of {', '.join(inputs)}, "
                    'like {A: 0, P: "[0, 1]"}, or a list of such',
                    rid,
                )
            )
            return None
        box: Box = {}
        for name, cell in alt.items():
            if name not in inputs:
                ck.problems.append(
                    alt.key_pos[name].problem(ProblemKind.UNKNOWN_NAME, f"`{name}` is not one of the inputs", rid)
                )
                return None
            values = _cell(cell, inputs[name][1])
            if values is None:
                ck.problems.append(
                    alt.value_pos[name].problem(
                        ProblemKind.BAD_VALUE,
                        f'`{cell}` is not a value of input `{name}`, an interval like "[0, 1]" or a list of values',
                        rid,
                    )
                )
                return None
            box[str(name)] = values
        boxes.append(box)
    return boxes


def row_condition(inputs: dict[str, tuple[ir.Expr, Domain]], boxes: list[Box]) -> ir.Expr:
    """The condition a row's boxes stand for (a null input is in no box)."""
    alts = [_box_condition(inputs, box) for box in boxes]
    return alts[0] if len(alts) == 1 else ir.BoolOp(BOOL, "or", tuple(alts))


def _box_condition(inputs: dict[str, tuple[ir.Expr, Domain]], box: Box) -> ir.Expr:
    tests = [_within(inputs[name][0], values) for name, values in box.items()]
    if not tests:
        return ir.Const(BOOL, True)
    return tests[0] if len(tests) == 1 else ir.BoolOp(BOOL, "and", tuple(tests))


def _within(expr: ir.Expr, values: frozenset[Any]) -> ir.Expr:
    """One input in its values: a membership test (false where the input is null, one
    operation over a caseload's column), or the true/false value itself."""
    if expr.type.kind == "bool" and len(values) == 1 and not expr.type.nullable:
        return expr if True in values else ir.Not(BOOL, expr)
    return ir.InSet(BOOL, expr, frozenset(values), None)


def _shown(names: Sequence[str], combo: Iterable[Any]) -> str:
    def word(v: Any) -> str:
        return ("true" if v else "false") if isinstance(v, bool) else str(v)

    return ", ".join(f"{n}={word(v)}" for n, v in zip(names, combo, strict=True))


def combination_problems(
    names: Sequence[str], domains: Sequence[Domain], rows: Sequence[tuple[str, Pos, list[Box]]], table: Pos
) -> list[tuple[Pos, ProblemKind, str]]:
    """The first combinations of the inputs' values that no row covers or that several rows
    cover (each with the rows), then how many more there are."""
    covered: Counter[tuple[Any, ...]] = Counter()
    for _, _, boxes in rows:
        mine: set[tuple[Any, ...]] = set()
        for box in boxes:
            axes = [[v for v in d if v in box.get(n, frozenset(d))] for n, d in zip(names, domains, strict=True)]
            mine.update(itertools.product(*axes))
        covered.update(mine)
    gaps = [c for c in itertools.product(*domains) if covered[c] == 0]
    overlaps = [c for c in itertools.product(*domains) if covered[c] > 1]
    out: list[tuple[Pos, ProblemKind, str]] = []
    for combo in gaps[:SHOWN]:
        out.append((table, ProblemKind.TABLE_GAP, f"no row covers {_shown(names, combo)}"))
    if len(gaps) > SHOWN:
        out.append(
            (
                table,
                ProblemKind.TABLE_GAP,
                f"{len(gaps)} combinations are covered by no row; the first {SHOWN} are listed",
            )
        )
    for combo in overlaps[:SHOWN]:
        hits = _matching(rows, names, domains, combo)
        ids = " and ".join(f"`{rows[i][0]}`" for i in hits)
        out.append((rows[hits[-1]][1], ProblemKind.TABLE_OVERLAP, f"rows {ids} both cover {_shown(names, combo)}"))
    if len(overlaps) > SHOWN:
        out.append(
            (
                table,
                ProblemKind.TABLE_OVERLAP,
                f"{len(overlaps)} combinations are covered by more than one row; the first {SHOWN} are listed",
            )
        )
    return out


def _matching(
    rows: Sequence[tuple[str, Pos, list[Box]]], names: Sequence[str], domains: Sequence[Domain], combo: tuple[Any, ...]
) -> list[int]:
    def inside(box: Box) -> bool:
        return all(v in box.get(n, frozenset(d)) for n, d, v in zip(names, domains, combo, strict=True))

    return [i for i, (_, _, boxes) in enumerate(rows) if any(inside(b) for b in boxes)]


def multi_rows(
    ck: Checker,
    item: YMap,
    rid: str,
    inputs: dict[str, tuple[ir.Expr, Domain]],
    rows: list[TableRow],
) -> tuple[list[TableRow], Lookup | None]:
    """``rows`` (cells read, no condition yet) with their conditions, and the same as a
    lookup (``engine.plan.Lookup``, for a caseload); the coverage checked."""
    raw_rows = item.get("rows")
    assert isinstance(raw_rows, YList)
    by_id = {str(r.get("id")): r for r in raw_rows if isinstance(r, YMap)}
    out: list[TableRow] = []
    checked: list[tuple[str, Pos, list[Box]]] = []
    for row in rows:
        boxes = row_boxes(ck, by_id[row.id], rid, inputs)
        if boxes is None:
            continue
        checked.append((row.id, row.pos, boxes))
        out.append(TableRow(row.id, row.title, None, row_condition(inputs, boxes), row.cells, row.pos))
    if len(out) != len(rows):
        return out, None
    names = list(inputs)
    found = combination_problems(names, [inputs[n][1] for n in names], checked, item.pos)
    ck.problems.extend(pos.problem(kind, msg, rid) for pos, kind, msg in found)
    return out, lookup(names, inputs, [boxes for _, _, boxes in checked])


def lookup(names: list[str], inputs: dict[str, tuple[ir.Expr, Domain]], rows: list[list[Box]]) -> Lookup:
    """The first row whose boxes cover each combination, a null or other value in a slot
    after each domain (covered only by a box that leaves the input out), as the rows'
    conditions decide it."""
    other = object()

    def covers(box: Box, combo: tuple[Any, ...]) -> bool:
        return all(n not in box or (v is not other and v in box[n]) for n, v in zip(names, combo, strict=True))

    firsts = []
    for combo in itertools.product(*([*inputs[n][1], other] for n in names)):
        firsts.append(next((i for i, boxes in enumerate(rows) if any(covers(b, combo) for b in boxes)), -1))
    return Lookup(tuple(inputs[n][0] for n in names), tuple(inputs[n][1] for n in names), tuple(firsts))
