"""The type check phase: every definition's expressions, tables, outcomes and messages, then
what each traced definition shows."""

from __future__ import annotations

from engine.plan import (
    Case,
    CaseSet,
    CaseValue,
    Definition,
    Derived,
    Finding,
    Outcome,
    Output,
    ParameterRef,
    Rule,
    Table,
    TableOutput,
)

from .check import Checker, Handler
from .check_defs import check_derived, check_finding, check_output, check_parameter, check_rule
from .check_outcomes import check_outcome, check_owned
from .check_tables import check_table, check_table_output
from .shown import set_shown
from .state import Declared

__all__ = ["CHECKS", "typecheck"]

CHECKS: dict[type[Definition], Handler] = {
    ParameterRef: check_parameter,
    Derived: check_derived,
    Rule: check_rule,
    Finding: check_finding,
    Output: check_output,
    Table: check_table,
    TableOutput: check_table_output,
    Outcome: check_outcome,
    Case: check_owned,
    CaseValue: check_owned,
    CaseSet: check_owned,
}


def typecheck(d: Declared) -> None:
    Checker(d, CHECKS).check_all()
    set_shown(d)
