"""Unique tables over several inputs: the loader's check over the cross product of the
inputs' domains, and the shipped level table (MZ/T 039-2013 表6 with 附录D) decided alike
by every backend and by the independent oracle, for every combination of domain grades."""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
from typing import Any

import pytest

from engine import Evaluator
from engine.errors import ProblemKind
from engine.evaluator import ClosureEvaluator
from engine.loading.check_multi import SHOWN, combination_problems
from engine.source import Pos
from engine.vector import decide_caseload, jsonl_to_tables
from fixtures.oracle_ability import preliminary
from tests.engine.test_member_objects import ASSESSMENT, _household

HERE = Pos("t.yaml", 1, 1)


def test_gaps_and_overlaps_are_listed_with_their_combinations() -> None:
    rows = [
        ("a", Pos("t.yaml", 2, 1), [{"x": frozenset({0}), "y": frozenset({0, 1})}]),
        ("b", Pos("t.yaml", 3, 1), [{"x": frozenset({1})}, {"y": frozenset({1})}]),
    ]
    found = combination_problems(["x", "y"], [(0, 1, 2), (0, 1)], rows, HERE)
    assert [(p.line, k, m) for p, k, m in found] == [
        (1, ProblemKind.TABLE_GAP, "no row covers x=2, y=0"),
        (3, ProblemKind.TABLE_OVERLAP, "rows `a` and `b` both cover x=0, y=1"),
    ]


def test_only_the_first_are_listed_then_counted() -> None:
    rows = [("a", HERE, [{"x": frozenset({0})}])]
    found = combination_problems(["x"], [tuple(range(SHOWN + 3))], rows, HERE)
    assert len(found) == SHOWN + 1
    assert found[-1][2] == f"{SHOWN + 2} combinations are covered by no row; the first {SHOWN} are listed"


# items that give each domain grade (0-3), from the record's best scores down
ADL_TOTAL = {0: 100, 1: 80, 2: 50, 3: 20}
MENTAL = {0: (0, 0, 0), 1: (0, 1, 0), 2: (0, 1, 1), 3: (0, 2, 2)}
SENSORY = {0: (0, 0, 0, 0), 1: (0, 2, 0, 0), 2: (0, 3, 0, 0), 3: (0, 4, 0, 0)}
SOCIAL = {0: 0, 1: 3, 2: 8, 3: 14}


def _adl(total: int) -> dict[str, int]:
    adl = dict(ASSESSMENT["adl"])
    need = 100 - total
    for key in reversed(list(adl)):
        cut = min(adl[key], need)
        adl[key] -= cut
        need -= cut
    return adl


def _graded(i: int, coma: bool, a: int, m: int, s: int, p: int) -> dict[str, Any]:
    h = _household()
    h["household_id"] = f"G-{i}"
    x = h["members"][0]["ability_assessment"]
    x["adl"] = _adl(ADL_TOTAL[a])
    x["mental"] = dict(zip(("cognition", "aggression", "depression"), MENTAL[m], strict=True))
    if coma:
        x["sensory"] = {"consciousness": 3, "vision": None, "hearing": None, "communication": None}
        x["social"] = None
    else:
        x["sensory"] = dict(zip(("consciousness", "vision", "hearing", "communication"), SENSORY[s], strict=True))
        social = dict.fromkeys(ASSESSMENT["social"], 0)
        left = SOCIAL[p]
        for key in social:
            social[key], left = min(4, left), left - min(4, left)
        x["social"] = social
    return copy.deepcopy(h)


def _row(reasons: str) -> str:
    return next(r for r in reasons.split(";") if r.startswith("ability.level."))


@pytest.fixture(scope="module")
def every_combination() -> list[tuple[tuple[bool, int, int, int, int], dict[str, Any]]]:
    combos = [(False, a, m, s, p) for a, m, s, p in itertools.product(range(4), repeat=4)]
    combos += [(True, a, m, 3, 0) for a in range(4) for m in range(4)]
    return [(c, _graded(i, *c)) for i, c in enumerate(combos)]


def test_every_backend_and_the_oracle_choose_the_same_level_row(
    evaluator: Evaluator, every_combination: list[tuple[tuple[bool, int, int, int, int], dict[str, Any]]]
) -> None:
    closures = ClosureEvaluator(evaluator.ruleset)
    households = [h for _, h in every_combination]
    hh, mm, _ = jsonl_to_tables([json.dumps(h) for h in households], evaluator.ruleset.record)
    bulk, rejects = decide_caseload(evaluator, hh, mm, today=dt.date(2019, 8, 1))
    assert rejects.height == 0
    vector = dict(zip(bulk.get_column("household_id"), bulk.get_column("reasons"), strict=True))
    for (coma, a, m, s, p), h in every_combination:
        _, row = preliminary(coma, a, m, s, None if coma else p)
        want = f"ability.level.{row}"
        got = _row(evaluator.decide(h).flat()["reasons"])
        assert got == want, (coma, a, m, s, p)
        assert _row(closures.decide(h).flat()["reasons"]) == want
        assert _row(vector[h["household_id"]]) == want
