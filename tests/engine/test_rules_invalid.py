"""Every golden bad rule folder fails to load with exactly its expected problems."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine import RuleLoadError, load
from tests.conftest import FIXTURES, RULES

CASES = sorted(p for p in (FIXTURES / "rules_invalid").iterdir() if p.is_dir())


def _overlay(tmp: Path, *cases: Path, rename: bool = False) -> Path:
    target = tmp / "rules"
    shutil.copytree(RULES, target)
    for case in cases:
        for f in case.rglob("*.yaml"):
            rel = f.relative_to(case)
            dest = target / rel
            if rename:
                dest = dest.with_name(f"{case.name}_{rel.name}")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(f, dest)
    return target


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_bad_file(tmp_path: Path, case: Path) -> None:
    with pytest.raises(RuleLoadError) as info:
        load(_overlay(tmp_path, case))
    got = [str(p) for p in info.value.problems]
    assert got == (case / "expected.txt").read_text(encoding="utf-8").splitlines()


def test_every_problem_is_reported_in_one_run(tmp_path: Path) -> None:
    with pytest.raises(RuleLoadError) as info:
        load(_overlay(tmp_path, *CASES, rename=True))
    kinds = {p.kind for p in info.value.problems}
    expected = {
        line.split(": ")[1].split(" ")[0]
        for c in CASES
        for line in (c / "expected.txt").read_text(encoding="utf-8").splitlines()
    }
    assert expected <= kinds


def test_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RuleLoadError, match="does not exist"):
        load(tmp_path / "nowhere")


def test_report_names_are_checked(tmp_path: Path) -> None:
    target = _overlay(tmp_path)
    text = (
        (target / "ruleset.yaml")
        .read_text(encoding="utf-8")
        .replace("    dibao_status: {zh: 低保", "    dibao_stauts: {zh: 低保", 1)
    )
    (target / "ruleset.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(
        RuleLoadError,
        match=r"reports: `dibao_stauts` is not a decision field or named value, did you mean `dibao_status`\?",
    ):
        load(target)
