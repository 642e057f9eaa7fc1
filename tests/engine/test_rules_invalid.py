"""Every golden bad rule folder fails to load with exactly its expected problems."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine import RuleLoadError, load
from engine.errors import READ_KINDS
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


def _kinds(*cases: Path) -> set[str]:
    return {
        line.split(": ")[1].split(" ")[0]
        for c in cases
        for line in (c / "expected.txt").read_text(encoding="utf-8").splitlines()
    }


# folders whose file cannot be read at all: then only reading problems are reported
UNREAD = [c for c in CASES if _kinds(c) <= READ_KINDS]
CHECKED = [c for c in CASES if c not in UNREAD]


def test_every_problem_is_reported_in_one_run(tmp_path: Path) -> None:
    with pytest.raises(RuleLoadError) as info:
        load(_overlay(tmp_path, *CHECKED, rename=True))
    assert _kinds(*CHECKED) <= {p.kind for p in info.value.problems}


def test_every_unreadable_file_is_reported_and_nothing_else(tmp_path: Path) -> None:
    """A file that cannot be read defines nothing, so nothing that follows from it is reported."""
    assert len(UNREAD) >= 3
    with pytest.raises(RuleLoadError) as info:
        load(_overlay(tmp_path, *UNREAD, *CHECKED, rename=True))
    got = info.value.problems
    assert sorted(str(p) for p in got if p.kind in READ_KINDS) == sorted(
        line.replace("zz_bad.yaml", f"{c.name}_zz_bad.yaml")
        for c in UNREAD
        for line in (c / "expected.txt").read_text(encoding="utf-8").splitlines()
    )
    # besides those, only what reading a readable file finds (a key written twice)
    assert {p.kind for p in got if p.kind not in READ_KINDS} <= {"duplicate-key", "bad-key", "bad-date"}


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


_OUTCOME = """\
program: zz
title: {{zh: 优先顺序, en: Precedence}}
legal_basis: test
outcomes:
  - id: zz.outcome
    title: {{zh: 结果, en: Result}}
    field: zz_status
    hit_policy: {policy}
    cases:
{cases}
    otherwise: {{id: zz.other, title: {{zh: 其他, en: Other}}, value: other}}
    labels: {{{labels}}}
"""


def _load_outcome(tmp_path: Path, *whens: str, policy: str = "first") -> list[str]:
    """Load the rules with one more outcome whose cases have these conditions; its problems."""
    cases = "".join(
        f"      - {{id: zz.c{i}, title: {{zh: 情形, en: Case}}, value: c{i}, when: {when!r}}}\n"
        for i, when in enumerate(whens)
    )
    labels = ", ".join(f"{v}: {{zh: 情形, en: case}}" for v in [*(f"c{i}" for i in range(len(whens))), "other"])
    target = _overlay(tmp_path)
    text = _OUTCOME.format(policy=policy, cases=cases, labels=labels)
    (target / "programs" / "zz_outcome.yaml").write_text(text, "utf-8")
    try:
        load(target)
    except RuleLoadError as exc:
        return [f"{p.kind} [{p.rule_id}]" for p in exc.problems]
    return []


@pytest.mark.parametrize(
    ("whens", "dead"),
    [
        # an earlier conjunction with fewer conjuncts
        (
            ["common.residence and common.assets", "common.assets and common.residence and common.has_counted_member"],
            ["zz.c1"],
        ),
        # a case after `true`, and then `otherwise` too
        (["True", "common.residence"], ["zz.c1", "zz.other"]),
        # enumerations: every value of dibao_status is taken before `otherwise`
        (
            [
                "dibao_status in ('eligible', 'gradual_exit')",
                "dibao_status == 'single_person'",
                "dibao_status != 'eligible' and dibao_status != 'gradual_exit'",
            ],
            ["zz.other"],
        ),
        # true/false values: the third case needs one of the first two
        (["common.residence", "common.assets and not common.residence", "common.assets"], ["zz.c2"]),
    ],
)
def test_a_case_that_can_never_apply_is_reported(tmp_path: Path, whens: list[str], dead: list[str]) -> None:
    assert _load_outcome(tmp_path, *whens) == [f"unreachable-case [{d}]" for d in dead]


@pytest.mark.parametrize(
    "whens",
    [
        ["common.residence and common.assets", "common.residence"],  # the narrower case first: both can apply
        ["dibao_status == 'eligible'", "dibao_status != 'single_person'"],
        ["T < 100", "T < 50"],  # dead, but comparisons of numbers are not reasoned about: never a false alarm
        ["common.residence", "not common.residence and low_income_status == 'eligible'"],
    ],
)
def test_cases_that_can_apply_are_not_reported(tmp_path: Path, whens: list[str]) -> None:
    assert _load_outcome(tmp_path, *whens) == []


def test_an_outcome_hit_policy_other_than_first_is_refused(tmp_path: Path) -> None:
    assert _load_outcome(tmp_path, "common.residence", policy="unique") == ["bad-value [zz.outcome]"]
