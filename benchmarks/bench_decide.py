"""One household decided: jiuzhu (with its full explanation) vs a hand-written baseline,
durable_rules and zen-engine; and loading + checking every rule file."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from benchmarks import peers
from engine import Evaluator, load
from fixtures import oracle

ROOT = Path(__file__).resolve().parent.parent
HOUSEHOLD: dict[str, Any] = json.loads(
    (ROOT / "fixtures" / "households" / "HM-2019-000114.json").read_text(encoding="utf-8")
)


@pytest.fixture(scope="module")
def evaluator() -> Evaluator:
    return Evaluator(load(ROOT / "rules"))


@pytest.mark.benchmark(group="decide-one-household")
def bench_jiuzhu_decide_with_explanation(benchmark: Any, evaluator: Evaluator) -> None:
    """Validate, decide every program, and keep every rule's outcome and values."""
    d = benchmark(evaluator.decide, HOUSEHOLD)
    assert d.fields["dibao_status"] == "eligible"
    assert len(d.rules) > 40


@pytest.mark.benchmark(group="decide-one-household")
def bench_jiuzhu_decide_and_render_json(benchmark: Any, evaluator: Evaluator) -> None:
    """The same, plus rendering the explanation (zh and en messages) into JSON-ready dicts."""
    out = benchmark(lambda: evaluator.decide(HOUSEHOLD).to_dict())
    assert out["dibao_amount"] == "1238.00"


@pytest.mark.benchmark(group="decide-one-household")
def bench_handwritten_baseline(benchmark: Any) -> None:
    """Plain Python from DOMAIN.md, integer fen, every program, no explanation."""
    out = benchmark(oracle.decide, HOUSEHOLD)
    assert out["dibao_amount"] == "1238.00"


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
