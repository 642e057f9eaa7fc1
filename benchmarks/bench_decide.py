"""One household at a time: jiuzhu's generated evaluator beside the hand-written DOMAIN.md
oracle, the closure evaluator it replaced and validation alone; durable_rules and
zen-engine on one household; loading and compiling the rules.

Group ``decide-fixtures``: one round decides all 14 fixture households
(``fixtures/households/*.json``), so a median divided by 14 is the time per household.
"""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from benchmarks import peers
from engine import Evaluator, Ruleset, load
from engine.evaluator import ClosureEvaluator
from fixtures import oracle

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = sorted((ROOT / "fixtures" / "households").glob("*.json"))
HOUSEHOLDS: list[dict[str, Any]] = [json.loads(p.read_text(encoding="utf-8")) for p in FIXTURES]
HOUSEHOLD: dict[str, Any] = json.loads(
    (ROOT / "fixtures" / "households" / "HM-2019-000114.json").read_text(encoding="utf-8")
)


@pytest.fixture(scope="module")
def ruleset() -> Ruleset:
    return load(ROOT / "rules")


@pytest.fixture(scope="module")
def evaluator(ruleset: Ruleset) -> Evaluator:
    ev = Evaluator(ruleset)
    ev.decide(HOUSEHOLD)  # compile the ruleset before timing
    return ev


@pytest.fixture(scope="module")
def closures(ruleset: Ruleset) -> ClosureEvaluator:
    return ClosureEvaluator(ruleset)


def _agree(evaluator: Evaluator) -> None:
    """The compared engines decide the fixtures alike (benchmarks check, tests prove)."""
    for h in HOUSEHOLDS:
        want = oracle.decide(h)
        got = evaluator.decide(h).top_level()
        assert {f: got[f] for f in ("dibao_status", "dibao_amount", "ta_amount")} == {
            f: want[f] for f in ("dibao_status", "dibao_amount", "ta_amount")
        }


@pytest.mark.benchmark(group="decide-fixtures")
def bench_jiuzhu_decide(benchmark: Any, evaluator: Evaluator) -> None:
    """Validate, decide every program; every rule's outcome kept, the explanation built when asked."""
    _agree(evaluator)
    out = benchmark(lambda: [evaluator.decide(h) for h in HOUSEHOLDS])
    assert len(out) == len(HOUSEHOLDS)


@pytest.mark.benchmark(group="decide-fixtures")
def bench_handwritten_oracle(benchmark: Any) -> None:
    """Plain Python from DOMAIN.md (fixtures/oracle.py): integer fen, no validation, no explanation."""
    out = benchmark(lambda: [oracle.decide(h) for h in HOUSEHOLDS])
    assert len(out) == len(HOUSEHOLDS)


@pytest.mark.benchmark(group="decide-fixtures")
def bench_validation_alone(benchmark: Any, ruleset: Ruleset) -> None:
    """Only ``record.validate``: the part of ``decide`` before any rule runs."""
    out = benchmark(lambda: [ruleset.record.validate(h, None) for h in HOUSEHOLDS])
    assert len(out) == len(HOUSEHOLDS)


@pytest.mark.benchmark(group="decide-fixtures")
def bench_generated_evaluation_alone(benchmark: Any, evaluator: Evaluator, ruleset: Ruleset) -> None:
    """Only the evaluation: ``decide_record`` on records validated beforehand."""
    records = [ruleset.record.validate(h, None) for h in HOUSEHOLDS]
    out = benchmark(lambda: [evaluator.decide_record(hh, members) for hh, members in records])
    assert len(out) == len(HOUSEHOLDS)


@pytest.mark.benchmark(group="decide-fixtures")
def bench_closure_evaluator_decide(benchmark: Any, closures: ClosureEvaluator) -> None:
    """The previous backend: the same decisions through ~800 compiled closures per household."""
    out = benchmark(lambda: [closures.decide(h) for h in HOUSEHOLDS])
    assert len(out) == len(HOUSEHOLDS)


@pytest.mark.benchmark(group="decide-fixtures")
def bench_jiuzhu_decide_and_render_json(benchmark: Any, evaluator: Evaluator) -> None:
    """Decide and render the whole explanation (zh and en messages) into JSON-ready dicts."""
    out = benchmark(lambda: [evaluator.decide(h).to_dict() for h in HOUSEHOLDS])
    assert all(o["explanation"]["rules"] for o in out)


@pytest.mark.benchmark(group="decide-one-household")
def bench_jiuzhu_decide_one(benchmark: Any, evaluator: Evaluator) -> None:
    """One household (HM-2019-000114): validate and decide every program."""
    d = benchmark(evaluator.decide, HOUSEHOLD)
    assert d.fields["dibao_status"] == "eligible"
    assert len(d.rules) > 40


@pytest.mark.benchmark(group="decide-one-household")
def bench_durable_rules_dibao_income_and_assets(benchmark: Any) -> None:
    """durable_rules with only the dibao income and asset rules."""
    fact = peers.durable_fact(HOUSEHOLD, 79000)
    assert benchmark(peers.durable_decide, fact) == "eligible"


@pytest.mark.benchmark(group="decide-one-household")
def bench_zen_engine_dibao(benchmark: Any) -> None:
    """zen-engine (Rust core) with only the dibao rules."""
    decision = peers.zen_decision()
    ctx = peers.zen_context(HOUSEHOLD, 790)
    out = benchmark(decision.evaluate, ctx)
    assert Decimal(str(out["result"]["amount"])) == Decimal(1080)


@pytest.mark.benchmark(group="load-rules")
def bench_jiuzhu_load_and_check_rules(benchmark: Any) -> None:
    rs = benchmark(load, ROOT / "rules")
    assert len(rs.parameters) > 10


@pytest.mark.benchmark(group="load-rules")
def bench_generate_and_compile_household_function(benchmark: Any, ruleset: Ruleset) -> None:
    """Once per ruleset: its household function generated and compiled (a fresh copy of the
    ruleset each round, since a compiled function is shared by every evaluator of one)."""
    program = benchmark(lambda: Evaluator(dataclasses.replace(ruleset)).program)
    assert program is not None
    assert "def _decide(" in program.source
