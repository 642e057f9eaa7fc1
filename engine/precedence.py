"""Outcome precedence: find a case that can never apply because the cases before it cover it.

An outcome's cases are tried in the written order (``hit_policy: first``). A case is dead
when every household that meets its ``when`` already met an earlier one. Two cheap checks,
both sound (a case reported dead is dead; some dead cases may go unseen):

- an earlier condition is ``true`` or a conjunction of a subset of this case's conjuncts
  (``a and b`` covers ``a and b and c``);
- enumeration: every part of the conditions that is not ``and``/``or``/``not`` is a
  variable: an enumeration compared with literals ranges over its values, anything else
  is a free true/false. Free variables only add situations that cannot happen, so "no
  situation reaches this case" stays true of the real ones.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

from engine import ir

__all__ = ["MAX_SITUATIONS", "dead_cases"]

MAX_SITUATIONS = 4096  # beyond this, enumeration is skipped (outcomes today need at most 2^6)


def dead_cases(conds: Sequence[ir.Expr | None]) -> list[tuple[int, list[int]]]:
    """Each case that cannot apply, as (its index, the indexes of the cases that cover it).

    ``None`` is ``otherwise``: it holds when nothing before it does.
    """
    out: list[tuple[int, list[int]]] = []
    for i, cond in enumerate(conds):
        earlier = list(conds[:i])
        if not earlier:
            continue
        mine = _conjuncts(cond)
        cover = next((j for j, e in enumerate(earlier) if all(c in mine for c in _conjuncts(e))), None)
        if cover is not None:
            out.append((i, [cover]))
        elif _covered(cond, earlier):
            out.append((i, list(range(i))))
    return out


def _conjuncts(e: ir.Expr | None) -> list[ir.Expr]:
    """The parts of ``a and b and ...``; ``true`` (and ``otherwise``) has none."""
    if e is None or (isinstance(e, ir.Const) and e.value is True):
        return []
    if isinstance(e, ir.BoolOp) and e.op == "and":
        return [c for operand in e.operands for c in _conjuncts(operand)]
    return [e]


def _enum_test(e: ir.Expr) -> tuple[ir.Ref, frozenset[Any]] | None:
    """``x == 'a'``, ``x != 'a'``, ``x in (...)`` on a never-None enumeration ``x``: the
    enumeration and the values of it for which the test holds."""

    def enum_ref(x: ir.Expr) -> ir.Ref | None:
        ok = isinstance(x, ir.Ref) and x.type.kind == "enum" and not x.type.nullable and x.type.values
        return x if ok and isinstance(x, ir.Ref) else None

    if isinstance(e, ir.Compare) and e.op in ("==", "!="):
        for ref_side, lit in ((e.left, e.right), (e.right, e.left)):
            ref = enum_ref(ref_side)
            if ref is not None and isinstance(lit, ir.Const):
                same = frozenset(v for v in ref.type.values if v == lit.value)
                return ref, same if e.op == "==" else frozenset(ref.type.values) - same
    if isinstance(e, ir.InSet) and e.values is not None:
        ref = enum_ref(e.item)
        if ref is not None:
            inside = frozenset(v for v in ref.type.values if v in e.values)
            return ref, frozenset(ref.type.values) - inside if e.negate else inside
    return None


def _variables(e: ir.Expr | None, found: list[tuple[ir.Expr, tuple[Any, ...]]]) -> None:
    if e is None or (isinstance(e, ir.Const) and isinstance(e.value, bool)):
        return
    if isinstance(e, ir.BoolOp):
        for operand in e.operands:
            _variables(operand, found)
        return
    if isinstance(e, ir.Not):
        _variables(e.operand, found)
        return
    test = _enum_test(e)
    var: ir.Expr = test[0] if test else e
    domain: tuple[Any, ...] = test[0].type.values if test else (False, True)
    if all(v != var for v, _ in found):
        found.append((var, domain))


def _holds(e: ir.Expr | None, env: list[tuple[ir.Expr, Any]]) -> bool:
    if e is None:
        return True
    if isinstance(e, ir.Const) and isinstance(e.value, bool):
        return e.value
    if isinstance(e, ir.BoolOp):
        parts = (_holds(x, env) for x in e.operands)
        return all(parts) if e.op == "and" else any(parts)
    if isinstance(e, ir.Not):
        return not _holds(e.operand, env)
    test = _enum_test(e)
    key: ir.Expr = test[0] if test else e
    value = next(v for k, v in env if k == key)
    return value in test[1] if test else bool(value)


def _covered(cond: ir.Expr | None, earlier: list[ir.Expr | None]) -> bool:
    """Whether, in every situation, ``cond`` holding means some earlier condition holds."""
    found: list[tuple[ir.Expr, tuple[Any, ...]]] = []
    for e in [cond, *earlier]:
        _variables(e, found)
    if math.prod(len(d) for _, d in found) > MAX_SITUATIONS:
        return False
    names = [v for v, _ in found]
    for values in itertools.product(*(d for _, d in found)):
        env = list(zip(names, values, strict=True))
        if _holds(cond, env) and not any(_holds(e, env) for e in earlier):
            return False
    return True
