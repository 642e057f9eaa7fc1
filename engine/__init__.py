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

from engine.decision import Decision, RuleTrace
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
from engine.monitor import Monitor
from engine.registries import Registries, Registry, parse_registry_csv
from engine.ruleset import Ruleset
from engine.ruletests import run_tests

if TYPE_CHECKING:
    from engine.vector.caseload import load_households
    from engine.vector.cluster import Cluster, screen_on_cluster
    from engine.vector.impact import impact, with_settings
    from engine.vector.impact_cluster import impact_on_cluster
    from engine.vector.screen import screen
    from engine.vector.screen_partitions import EvaluatorSpec

# name -> module that defines it, for the names imported on first use
_LAZY = {
    "Cluster": "engine.vector.cluster",
    "EvaluatorSpec": "engine.vector.screen_partitions",
    "impact_on_cluster": "engine.vector.impact_cluster",
    "screen_on_cluster": "engine.vector.cluster",
    "load_households": "engine.vector.caseload",
    "impact": "engine.vector.impact",
    "with_settings": "engine.vector.impact",
    "screen": "engine.vector.screen",
}

__all__ = [
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
    "Problem",
    "ProblemKind",
    "Registries",
    "Registry",
    "RuleLoadError",
    "RuleTrace",
    "Ruleset",
    "error_codes",
    "impact",
    "impact_on_cluster",
    "load",
    "load_households",
    "parse_registry_csv",
    "register_error",
    "run_tests",
    "screen",
    "screen_on_cluster",
    "with_settings",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
