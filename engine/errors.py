"""One error hierarchy for the whole engine, split by phase.

Every error carries structured fields; the command line maps ``exit_code`` and the HTTP
layer maps ``http_status`` once, at the edge.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = [
    "EvaluateError",
    "FieldProblem",
    "InputError",
    "JiuzhuError",
    "Problem",
    "RuleLoadError",
    "did_you_mean",
]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ``", did you mean `x`?"`` for the closest choice, or ``""``.

    >>> did_you_mean("monthy_income", ["monthly_income", "birth_date"])
    ', did you mean `monthly_income`?'
    """
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f", did you mean `{close[0]}`?" if close else ""


class JiuzhuError(Exception):
    """Root of every error the engine raises on purpose."""

    exit_code = 1
    http_status = 500


@dataclass(frozen=True)
class Problem:
    """One problem found while loading or checking rule files."""

    kind: str
    message: str
    file: str = "<unknown>"
    line: int = 0
    col: int = 0
    rule_id: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}"
        rule = f" [{self.rule_id}]" if self.rule_id else ""
        return f"{where}: {self.kind}{rule}: {self.message}"

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "rule_id": self.rule_id,
        }


class RuleLoadError(JiuzhuError):
    """The rule files have problems; all of them are listed, never just the first."""

    exit_code = 2
    http_status = 422

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.file, p.line, p.col, p.kind))
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class FieldProblem:
    """One bad input field: its path in the record and what is wrong."""

    field: str
    message: str
    rule_id: str | None = None

    def __str__(self) -> str:
        rule = f" (rule {self.rule_id})" if self.rule_id else ""
        return f"{self.field}: {self.message}{rule}"

    def as_dict(self) -> dict[str, object]:
        return {"field": self.field, "message": self.message, "rule_id": self.rule_id}


@dataclass
class InputError(JiuzhuError):
    """A household record is missing a required field or has a bad value."""

    problems: list[FieldProblem] = field(default_factory=list)
    record_id: str | None = None
    exit_code = 3
    http_status = 422

    def __post_init__(self) -> None:
        Exception.__init__(self, str(self))

    def __str__(self) -> str:
        who = f"household {self.record_id}: " if self.record_id else ""
        return who + "; ".join(str(p) for p in self.problems)


class EvaluateError(JiuzhuError):
    """A rule could not be evaluated for a household, e.g. it needs a value that is absent."""

    exit_code = 3
    http_status = 422

    def __init__(self, message: str, *, field: str | None = None, rule_id: str | None = None):
        self.message = message
        self.field = field
        self.rule_id = rule_id
        super().__init__(message)

    def __str__(self) -> str:
        rule = f" (rule {self.rule_id})" if self.rule_id else ""
        return f"{self.message}{rule}"
