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
from collections.abc import Callable, Sequence
from typing import Any

from engine import ir

__all__ = ["MAX_SITUATIONS", "dead_cases"]

MAX_SITUATIONS = 4096  # beyond this, enumeration is skipped (the bundled outcomes need far fewer)


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


Test = Callable[[tuple[Any, ...]], bool]


def _variables(e: ir.Expr | None, found: dict[ir.Expr, tuple[Any, ...]]) -> None:
    """Add the variables of ``e`` to ``found`` (each with its values), in first-seen order."""
    if e is None or (isinstance(e, ir.Const) and isinstance(e.value, bool)):
        return
    if isinstance(e, ir.BoolOp):
        for operand in e.operands:
            _variables(operand, found)
    elif isinstance(e, ir.Not):
        _variables(e.operand, found)
    else:
        test = _enum_test(e)
        if test:
            found.setdefault(test[0], test[0].type.values)
        else:
            found.setdefault(e, (False, True))


def _compile(e: ir.Expr | None, index: dict[ir.Expr, int]) -> Test:
    """``e`` as a function of one situation (a value per variable, in ``index`` order)."""
    if e is None:
        return lambda env: True
    if isinstance(e, ir.Const) and isinstance(e.value, bool):
        value = e.value
        return lambda env: value
    if isinstance(e, ir.BoolOp):
        parts = [_compile(x, index) for x in e.operands]
        if e.op == "and":
            return lambda env: all(f(env) for f in parts)
        return lambda env: any(f(env) for f in parts)
    if isinstance(e, ir.Not):
        inner = _compile(e.operand, index)
        return lambda env: not inner(env)
    test = _enum_test(e)
    if test:
        at, holds = index[test[0]], test[1]
        return lambda env: env[at] in holds
    at = index[e]
    return lambda env: bool(env[at])


def _covered(cond: ir.Expr | None, earlier: list[ir.Expr | None]) -> bool:
    """Whether, in every situation, ``cond`` holding means some earlier condition holds."""
    found: dict[ir.Expr, tuple[Any, ...]] = {}
    try:
        for e in [cond, *earlier]:
            _variables(e, found)
    except TypeError:  # a literal that cannot be hashed: say nothing rather than guess
        return False
    if math.prod(len(d) for d in found.values()) > MAX_SITUATIONS:
        return False
    index = {v: i for i, v in enumerate(found)}
    this, before = _compile(cond, index), [_compile(e, index) for e in earlier]
    return all(any(f(env) for f in before) for env in itertools.product(*found.values()) if this(env))
