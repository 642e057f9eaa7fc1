"""Shared fixtures: the bundled ruleset, loaded once."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from engine import Evaluator, Ruleset, load

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"
FIXTURES = ROOT / "fixtures"

settings.register_profile(
    "ci", derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
settings.load_profile("ci")


@pytest.fixture(scope="session")
def ruleset() -> Ruleset:
    return load(RULES)


@pytest.fixture(scope="session")
def evaluator(ruleset: Ruleset) -> Evaluator:
    return Evaluator(ruleset)


def rule_line(name: str, text: str) -> int:
    """The line (1-based) of the bundled rule file ``name`` that holds ``text``: tests that point
    at a line find it rather than hard-code it, so edits elsewhere in the file do not break them."""
    lines = (RULES / name).read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)
