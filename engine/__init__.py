"""jiuzhu engine: load rule files, check them, decide households and explain why.

This module is the engine's public face: ``api/`` and every other caller import from here.
Caseload work (``screen``, ``impact``, ``load_households``) needs Polars; those names are
imported on first use, so deciding one household never pays for the columnar engine's start-up.

>>> from engine import Evaluator, load
>>> rules = load("rules")
>>> Evaluator(rules).ruleset is rules
True
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from engine.cells import safe_cell, safe_frame
from engine.decision import Decision, RuleTrace
from engine.describe import describe_parameters, describe_rules
from engine.errors import (
    ErrorCodes,
    EvaluateError,
    FieldProblem,
    InputError,
    JiuzhuError,
    Problem,
    ProblemKind,
    RuleLoadError,
    error_codes,
    register_error,
)
from engine.evaluator import Evaluator
from engine.loading import load
from engine.messages import Phrase, Said, has, lang_from_env, negotiate, text
from engine.monitor import Monitor
from engine.registries import Registries, Registry, parse_registry_csv
from engine.ruleset import Ruleset
from engine.ruletests import run_tests
from engine.source import MAX_FILE_BYTES
from engine.spreadsheet import MONEY_FORMAT, value_label
from engine.subjects import (
    SubjectDecision,
    SubjectEvaluator,
    SubjectRegistry,
    parse_subject_registry,
    registry_from_rows,
)
from engine.subjects.bulk import read_records, record_type_of, screen_records, subject_registries
from engine.subjects.explain import explain_text as explain_subject
from engine.subjects.tests import run_record_type_tests
from engine.types import BadValue, parse_value
from engine.validation.rules import BadJson, json_items, json_value
from engine.validation.wording import problem_text, reason, reason_text

if TYPE_CHECKING:
    from engine.vector.caseload import caseload_values, load_households, read_table
    from engine.vector.cluster import Cluster, screen_on_cluster
    from engine.vector.impact import impact, impact_parts, with_settings
    from engine.vector.impact_cluster import impact_on_cluster
    from engine.vector.screen import find_tables, screen
    from engine.vector.screen_partitions import EvaluatorSpec

# name -> module that defines it, for the names imported on first use
_LAZY = {
    "caseload_values": "engine.vector.caseload",
    "Cluster": "engine.vector.cluster",
    "EvaluatorSpec": "engine.vector.screen_partitions",
    "impact_on_cluster": "engine.vector.impact_cluster",
    "screen_on_cluster": "engine.vector.cluster",
    "load_households": "engine.vector.caseload",
    "impact": "engine.vector.impact",
    "impact_parts": "engine.vector.impact",
    "with_settings": "engine.vector.impact",
    "screen": "engine.vector.screen",
    "find_tables": "engine.vector.screen",
    "read_table": "engine.vector.caseload",
}

__all__ = [
    "MAX_FILE_BYTES",
    "MONEY_FORMAT",
    "BadJson",
    "BadValue",
    "Cluster",
    "Decision",
    "ErrorCodes",
    "EvaluateError",
    "Evaluator",
    "EvaluatorSpec",
    "FieldProblem",
    "InputError",
    "JiuzhuError",
    "Monitor",
    "Phrase",
    "Problem",
    "ProblemKind",
    "Registries",
    "Registry",
    "RuleLoadError",
    "RuleTrace",
    "Ruleset",
    "Said",
    "SubjectDecision",
    "SubjectEvaluator",
    "SubjectRegistry",
    "caseload_values",
    "describe_parameters",
    "describe_rules",
    "error_codes",
    "explain_subject",
    "find_tables",
    "has",
    "impact",
    "impact_on_cluster",
    "impact_parts",
    "json_items",
    "json_value",
    "lang_from_env",
    "load",
    "load_households",
    "negotiate",
    "parse_registry_csv",
    "parse_subject_registry",
    "parse_value",
    "problem_text",
    "read_records",
    "read_table",
    "reason",
    "reason_text",
    "record_type_of",
    "register_error",
    "registry_from_rows",
    "run_record_type_tests",
    "run_tests",
    "safe_cell",
    "safe_frame",
    "screen",
    "screen_on_cluster",
    "screen_records",
    "subject_registries",
    "text",
    "value_label",
    "with_settings",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
