"""The type check phase: every definition's expressions, tables, outcomes and messages, then
what each traced definition shows."""

from __future__ import annotations

from .check import Checker, Handler
from .check_defs import check_derived, check_finding, check_output, check_parameter, check_rule
from .check_outcomes import check_outcome, check_owned
from .check_tables import check_table, check_table_output
from .shown import set_shown
from .state import Declared

__all__ = ["CHECKS", "typecheck"]

CHECKS: dict[str, Handler] = {
    "parameter": check_parameter,
    "derived": check_derived,
    "rule": check_rule,
    "finding": check_finding,
    "output": check_output,
    "table": check_table,
    "table_output": check_table_output,
    "outcome_index": check_outcome,
    "case": check_owned,
    "outcome": check_owned,
    "set": check_owned,
}


def typecheck(d: Declared) -> None:
    Checker(d, CHECKS).check_all()
    set_shown(d)
