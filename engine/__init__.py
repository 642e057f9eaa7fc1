"""jiuzhu engine: load rule files, check them, decide households and explain why.

>>> from engine import Evaluator, load
>>> rules = load("rules")
>>> Evaluator(rules).ruleset is rules
True
"""

from engine.decision import Decision, RuleTrace
from engine.errors import EvaluateError, FieldProblem, InputError, JiuzhuError, Problem, RuleLoadError
from engine.evaluator import Evaluator
from engine.loader import load
from engine.registries import Registries, Registry, parse_registry_csv
from engine.ruleset import Ruleset

__all__ = [
    "Decision",
    "EvaluateError",
    "Evaluator",
    "FieldProblem",
    "InputError",
    "JiuzhuError",
    "Problem",
    "Registries",
    "Registry",
    "RuleLoadError",
    "RuleTrace",
    "Ruleset",
    "load",
    "parse_registry_csv",
]
