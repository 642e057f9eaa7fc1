"""A pytest plugin that runs the rule tests in ``<rules>/tests/*.yaml`` as test items.

Failures read ``file: case: message``. Enable it with ``pytest_plugins = ["engine.pytest_plugin"]``.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from engine.evaluator import Evaluator
from engine.loading import load
from engine.ruleset import RuleTest
from engine.ruletests import run_test
from engine.subjects.tests import SubjectTest, read_subject_tests, run_subject_test

__all__ = ["RuleTestFile", "RuleTestItem"]


@cache
def _evaluator(rules_dir: Path) -> Evaluator:
    return Evaluator(load(rules_dir))


class RuleTestFailure(Exception):
    """A rule test's decision differs from what the test expects."""


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if (
        file_path.suffix == ".yaml"
        and file_path.parent.name == "tests"
        and (file_path.parent.parent / "ruleset.yaml").exists()
    ):
        return RuleTestFile.from_parent(parent, path=file_path)
    return None


class RuleTestFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        rules_dir = self.path.parent.parent
        evaluator = _evaluator(rules_dir)
        display = self.path.relative_to(rules_dir).as_posix()
        for test in evaluator.ruleset.tests:
            if test.file == display:
                yield RuleTestItem.from_parent(self, name=test.name, test=test, evaluator=evaluator)
        rs = evaluator.ruleset
        for kind, docs in rs.record_type_tests.items():
            for subject_test in read_subject_tests([(f, doc) for f, doc in docs if f == display]):
                yield SubjectTestItem.from_parent(self, name=subject_test.name, test=subject_test, kind=kind)


class RuleTestItem(pytest.Item):
    def __init__(self, *, test: RuleTest, evaluator: Evaluator, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.test = test
        self.evaluator = evaluator

    def runtest(self) -> None:
        result = run_test(self.evaluator, self.test)
        if not result.ok:
            raise RuleTestFailure("\n".join(result.failures))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, RuleTestFailure):
            return "\n".join(f"{self.test.file}: {self.test.name}: {line}" for line in str(excinfo.value).splitlines())
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.test.pos.line - 1, f"rule test: {self.test.name}"


class SubjectTestItem(pytest.Item):
    """A rule test of a record type besides the household (``engine.subjects``)."""

    def __init__(self, *, test: SubjectTest, kind: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.test = test
        self.kind = kind

    def runtest(self) -> None:
        rules_dir = self.path.parent.parent
        ruleset = _evaluator(rules_dir).ruleset
        result = run_subject_test(ruleset.record_types[self.kind], self.test, ruleset.ruleset_version)
        if not result.ok:
            raise RuleTestFailure("\n".join(result.failures))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, RuleTestFailure):
            return "\n".join(f"{self.test.file}: {self.test.name}: {line}" for line in str(excinfo.value).splitlines())
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.test.pos.line - 1, f"rule test: {self.test.name}"
