"""Type check of decision tables: the input, each row's interval or condition and cells, the
hit policy, and (for a unique table) that the rows cover the input's domain without overlap."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from engine import ir
from engine.errors import ProblemKind, did_you_mean
from engine.plan import Interval, TableOutput, TableRow
from engine.source import Pos, YList, YMap, pos_of
from engine.tables import check_unique, parse_interval
from engine.types import BOOL, Type

from .check import AlreadyReported, Checker
from .check_multi import check_inputs, multi_rows
from .draft import Draft, TableBody
from .shapes import checked_name, text
from .validity import BY as DATED_BY
from .validity import KEY as VALID_FROM
from .validity import in_force, with_validity

__all__ = ["check_table", "check_table_output"]


def check_table(ck: Checker, sym: Draft) -> None:
    item, rid, scope = sym.raw, sym.name, sym.scope
    outputs = {
        s.column: s.type for s in ck.symbols.values() if s.kind is TableOutput and s.owner == rid and s.scope == scope
    }
    policy = str(item.get("hit_policy", "unique"))
    if policy not in ("unique", "first", "max"):
        ck.problems.append(
            pos_of(item, "hit_policy").problem(
                ProblemKind.BAD_VALUE, f"hit_policy is unique, first or max, not `{policy}`", rid
            )
        )
        raise AlreadyReported
    applies = ck.condition(item, "applies", scope, rid) if "applies" in item else None
    valid = in_force(ck, item, scope, rid)
    if applies is not None and valid is not None and DATED_BY in item:  # its date may be null where it does not apply
        sym.applies = ir.BoolOp(BOOL, "and", (applies, valid))
    else:
        sym.applies = with_validity(applies, valid)
    if DATED_BY in item and VALID_FROM not in item:
        ck.problems.append(
            pos_of(item, DATED_BY).problem(
                ProblemKind.MISSING_KEY, f"`{DATED_BY}` dates a table with `{VALID_FROM}`", rid
            )
        )
    if "inputs" in item:
        _check_multi(ck, sym, item, policy, outputs)
        return
    inp = ck.expr(item.get("input"), pos_of(item, "input"), scope, rid) if "input" in item else None
    if policy == "unique" and inp is None:
        ck.problems.append(
            item.pos.problem(ProblemKind.MISSING_KEY, "a unique table needs an `input` and interval rows", rid)
        )
        raise AlreadyReported
    raw_rows = item.get("rows")
    if not isinstance(raw_rows, YList) or not raw_rows:
        ck.problems.append(pos_of(item, "rows").problem(ProblemKind.BAD_TYPE, "`rows` must be a non-empty list", rid))
        raise AlreadyReported
    rows: list[TableRow] = []
    for i, raw in enumerate(raw_rows):
        row = _row(ck, raw, raw_rows.item_pos[i], rid, scope, outputs, policy, item)
        if row:
            rows.append(row)
    other = (
        _row(ck, item["otherwise"], pos_of(item, "otherwise"), rid, scope, outputs, "otherwise")
        if "otherwise" in item
        else None
    )
    max_by = str(item.get("max_by", next(iter(outputs), "")))
    if policy == "max" and outputs.get(max_by) is None:
        ck.problems.append(
            item.pos.problem(ProblemKind.BAD_VALUE, "hit_policy max needs `max_by`, a numeric output column", rid)
        )
    if policy == "unique" and inp is not None:
        _check_domain(ck, item, rid, inp, rows)
    typed = {k: t for k, t in outputs.items() if t is not None}  # a column without a type failed the load
    sym.table = TableBody(policy, inp, typed, tuple(rows), other, max_by if policy == "max" else None)


def _check_multi(ck: Checker, sym: Draft, item: YMap, policy: str, outputs: dict[str, Type | None]) -> None:
    """A unique table over several inputs (``engine.loading.check_multi``): evaluated as its
    rows' conditions once every combination of the inputs' values is covered exactly once."""
    rid, scope = sym.name, sym.scope
    if policy != "unique":
        ck.problems.append(
            pos_of(item, "inputs").problem(ProblemKind.BAD_VALUE, "`inputs` is for `hit_policy: unique`", rid)
        )
        raise AlreadyReported
    inputs = check_inputs(ck, item, rid, scope)
    raw_rows = item.get("rows")
    if not isinstance(raw_rows, YList) or not raw_rows:
        ck.problems.append(pos_of(item, "rows").problem(ProblemKind.BAD_TYPE, "`rows` must be a non-empty list", rid))
        raise AlreadyReported
    cells = [_row(ck, raw, raw_rows.item_pos[i], rid, scope, outputs, "otherwise") for i, raw in enumerate(raw_rows)]
    read = [r for r in cells if r is not None]
    if len(read) != len(cells):
        raise AlreadyReported
    rows, lookup = multi_rows(ck, item, rid, inputs, read)
    other = (
        _row(ck, item["otherwise"], pos_of(item, "otherwise"), rid, scope, outputs, "otherwise")
        if "otherwise" in item
        else None
    )
    typed = {k: t for k, t in outputs.items() if t is not None}
    sym.table = TableBody("first", None, typed, tuple(rows), other, None, lookup)


def _check_domain(ck: Checker, item: YMap, rid: str, inp: ir.Expr, rows: list[TableRow]) -> None:
    """The rows of a unique table cover its input's domain once each."""
    dom_text = item.get("domain")
    domain = (
        parse_interval(str(dom_text))
        if dom_text is not None
        else Interval(Decimal(0), True, None, False)
        if inp.type.kind == "money"
        else Interval(None, False, None, False)
    )
    if domain is None:
        ck.problems.append(
            pos_of(item, "domain").problem(
                ProblemKind.BAD_VALUE, f"`{dom_text}` is not an interval like [1, 3] or [0, inf)", rid
            )
        )
        return
    for row, kind, msg in check_unique(rows, domain, inp.type.kind == "int"):
        ck.problems.append(row.pos.problem(kind, msg, rid))


def _row(
    ck: Checker,
    raw: Any,
    where: Pos,
    rid: str,
    scope: str,
    outputs: dict[str, Type | None],
    policy: str,
    table: YMap | None = None,
) -> TableRow | None:
    if not isinstance(raw, YMap) or "id" not in raw:
        ck.problems.append(where.problem(ProblemKind.BAD_TYPE, "a table row is a mapping with an `id`", rid))
        return None
    row_id = str(raw["id"])
    checked_name(raw["id"], pos_of(raw, "id"), ck.problems, "id", rid)
    for key in raw:
        if key not in ("id", "title", "when", VALID_FROM) and key not in outputs:
            ck.problems.append(
                raw.key_pos[key].problem(
                    ProblemKind.UNKNOWN_KEY,
                    f"row `{row_id}`: unknown column `{key}`{did_you_mean(str(key), list(outputs))}",
                    rid,
                )
            )
    interval = None
    cond = None
    if VALID_FROM in raw and policy in ("unique", "otherwise"):
        ck.problems.append(
            raw.key_pos[VALID_FROM].problem(
                ProblemKind.UNKNOWN_KEY,
                f"row `{row_id}`: `{VALID_FROM}` dates a row with a `when` condition (hit_policy first or max)",
                rid,
            )
        )
    if policy == "unique":
        interval = parse_interval(str(raw.get("when", "")))
        if interval is None:
            ck.problems.append(
                pos_of(raw, "when").problem(
                    ProblemKind.BAD_VALUE,
                    f"row `{row_id}`: `when` must be an interval like [1, 1] or (20000, 50000]",
                    rid,
                )
            )
    elif policy != "otherwise":
        if "when" not in raw:
            ck.problems.append(raw.pos.problem(ProblemKind.MISSING_KEY, f"row `{row_id}` needs `when`", rid))
        else:
            cond = with_validity(ck.condition(raw, "when", scope, rid), in_force(ck, raw, scope, rid, table))
    cells: dict[str, ir.Expr] = {}
    for col, t in outputs.items():
        if col not in raw:
            ck.problems.append(
                raw.pos.problem(ProblemKind.MISSING_KEY, f"row `{row_id}` has no value for column `{col}`", rid)
            )
            continue
        cell = _cell(ck, raw[col], pos_of(raw, col), t, scope, rid)
        if cell is not None:
            cells[col] = cell
    return TableRow(row_id, text(raw, "title"), interval, cond, cells, raw.pos)


def _cell(ck: Checker, value: Any, pos: Pos, t: Type | None, scope: str, rid: str) -> ir.Expr | None:
    if t is None:
        return None
    if isinstance(value, str) and t.kind not in ("str", "enum"):
        expr = ck.expr(value, pos, scope, rid)
        if expr is not None:
            ck.expect_type(expr, t, pos, rid)
        return expr
    return ir.Const(t, ck.literal(value, t, pos, rid))


def check_table_output(ck: Checker, sym: Draft) -> None:
    if sym.type is None:
        raise AlreadyReported
