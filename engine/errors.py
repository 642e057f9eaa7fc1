"""One error hierarchy for the whole engine, split by phase.

Every error carries structured fields. What an error means at the edge (the command line's
exit code, the HTTP status) is one table here, ``error_codes``, never an attribute that
each caller reads differently. A rule-file problem names its kind from ``ProblemKind``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from engine.messages import text

__all__ = [
    "ErrorCodes",
    "EvaluateError",
    "FieldProblem",
    "InputError",
    "JiuzhuError",
    "Problem",
    "ProblemKind",
    "RuleLoadError",
    "did_you_mean",
    "error_codes",
    "register_error",
]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ``", did you mean `x`?"`` for the closest choice, or ``""``.

    >>> did_you_mean("monthy_income", ["monthly_income", "birth_date"])
    ', did you mean `monthly_income`?'
    """
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return text("reject.did_you_mean", "en", name=close[0]) if close else ""


class JiuzhuError(Exception):
    """Root of every error the engine raises on purpose."""


class ProblemKind(StrEnum):
    """What is wrong in a rule file; the value is what ``rules lint`` prints."""

    # reading a file (after one of these, nothing else is checked: the rest would only echo it)
    MISSING_FOLDER = "missing-folder"
    MISSING_FILE = "missing-file"
    UNREADABLE = "unreadable"
    TOO_LARGE = "too-large"
    TOO_MANY_FILES = "too-many-files"
    YAML_SYNTAX = "yaml-syntax"
    TOO_DEEP = "too-deep"
    YAML_ALIAS = "yaml-alias"
    TOO_LONG = "too-long"  # a number written with more digits than any rule needs
    # keys and shapes
    DUPLICATE_KEY = "duplicate-key"
    BAD_KEY = "bad-key"
    BAD_NAME = "bad-name"  # an id or field name that is not a dotted name
    BAD_DATE = "bad-date"
    BAD_FILE = "bad-file"
    BAD_TYPE = "bad-type"
    BAD_VALUE = "bad-value"
    BAD_VERSION = "bad-version"
    BAD_DEFAULT = "bad-default"
    BAD_FIELD_SPEC = "bad-field-spec"
    MISSING_KEY = "missing-key"
    MISSING_SECTION = "missing-section"
    UNKNOWN_KEY = "unknown-key"
    # declarations and types
    DUPLICATE_ID = "duplicate-id"
    UNKNOWN_NAME = "unknown-name"
    UNKNOWN_TYPE = "unknown-type"
    UNKNOWN_VALUE = "unknown-value"
    TYPE_ERROR = "type-error"
    EXPRESSION = "expression"
    CYCLE = "cycle"
    # tables, outcomes, parameters
    TABLE_GAP = "table-gap"
    TABLE_OVERLAP = "table-overlap"
    UNREACHABLE_CASE = "unreachable-case"
    MISSING_PARAMETER_VERSION = "missing-parameter-version"
    OUT_OF_RANGE = "out-of-range"  # a parameter value (written or computed) outside the engine's limits
    TOO_COMPLEX = "too-complex"  # an expression nested too deep or too large
    # a check met a shape it did not expect (a bug: reported, never raised as another error)
    INTERNAL = "internal"


# a file with one of these was not read, so every later check would only report its absence
READ_KINDS = frozenset(
    {
        ProblemKind.MISSING_FOLDER,
        ProblemKind.MISSING_FILE,
        ProblemKind.UNREADABLE,
        ProblemKind.TOO_LARGE,
        ProblemKind.TOO_MANY_FILES,
        ProblemKind.YAML_SYNTAX,
        ProblemKind.TOO_DEEP,
        ProblemKind.YAML_ALIAS,
        ProblemKind.TOO_LONG,
    }
)


@dataclass(frozen=True)
class Problem:
    """One problem found while loading or checking rule files.

    ``kind`` is always a ``ProblemKind`` once made; its text is accepted too and checked
    against the enum, so a misspelt kind fails where the problem is made.
    """

    kind: ProblemKind | str
    message: str
    file: str = "<unknown>"
    line: int = 0
    col: int = 0
    rule_id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", ProblemKind(self.kind))

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}"
        rule = f" [{self.rule_id}]" if self.rule_id else ""
        return f"{where}: {self.kind}{rule}: {self.message}"

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": str(self.kind),
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "rule_id": self.rule_id,
        }


class RuleLoadError(JiuzhuError):
    """The rule files have problems; all of them are listed, never just the first."""

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

    def __post_init__(self) -> None:
        Exception.__init__(self, str(self))

    def __str__(self) -> str:
        who = f"household {self.record_id}: " if self.record_id else ""
        return who + "; ".join(str(p) for p in self.problems)


class EvaluateError(JiuzhuError):
    """A rule could not be evaluated for a household, e.g. it needs a value that is absent."""

    def __init__(self, message: str, *, field: str | None = None, rule_id: str | None = None):
        self.message = message
        self.field = field
        self.rule_id = rule_id
        super().__init__(message)

    def __str__(self) -> str:
        rule = f" (rule {self.rule_id})" if self.rule_id else ""
        return f"{self.message}{rule}"


class ErrorCodes(NamedTuple):
    """What an engine error means at the edge."""

    exit_code: int
    http_status: int


# the one place that says how each engine error surfaces; subclasses inherit their parent's
_CODES: dict[type[BaseException], ErrorCodes] = {
    JiuzhuError: ErrorCodes(1, 500),
    RuleLoadError: ErrorCodes(2, 422),
    InputError: ErrorCodes(3, 422),
    EvaluateError: ErrorCodes(3, 422),
}


def register_error(cls: type[JiuzhuError], exit_code: int, http_status: int) -> None:
    """Give an engine error defined elsewhere (e.g. a caseload run's) its own codes."""
    _CODES[cls] = ErrorCodes(exit_code, http_status)


def error_codes(error: BaseException | type[BaseException]) -> ErrorCodes:
    """Exit code and HTTP status of an error (or error class): its nearest registered class.

    >>> error_codes(RuleLoadError([]))
    ErrorCodes(exit_code=2, http_status=422)
    >>> error_codes(ValueError("not ours")).http_status
    500
    """
    cls = error if isinstance(error, type) else type(error)
    for base in cls.__mro__:
        codes = _CODES.get(base)
        if codes is not None:
            return codes
    return _CODES[JiuzhuError]
