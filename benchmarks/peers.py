"""The engines we measure against, each deciding the same sample household.

- hand-written: the DOMAIN.md oracle of the test suite (plain Python, integer fen, no
  explanation): the practical lower bound for Python code;
- durable_rules: the dibao income and asset rules as a Rete ruleset, one post per household;
- zen-engine (GoRules, Rust core): the dibao rules as a JDM expression graph.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

from durable.lang import m, post, ruleset
from durable.lang import when_all as _when_all

when_all: Callable[..., Callable[[Callable[[Any], None]], Callable[[Any], None]]] = _when_all

_results: dict[int, str] = {}
_ids = itertools.count(1)
_RULESET = "jiuzhu_bench_dibao"
_defined = False


def _define_durable() -> None:
    global _defined
    if _defined:
        return
    with ruleset(_RULESET):

        @when_all(
            (m.local_hukou == True)  # noqa: E712 - durable_rules builds its condition from ==
            & (m.financial_assets <= m.asset_limit)
            & (m.vehicles == 0)
            & (m.houses <= 1)
            & (m.income < m.need)
        )
        def eligible(c: Any) -> None:
            _results[c.m.seq] = "eligible"

        @when_all(
            (m.local_hukou == False)  # noqa: E712
            | (m.financial_assets > m.asset_limit)
            | (m.vehicles > 0)
            | (m.houses > 1)
            | (m.income >= m.need)
        )
        def ineligible(c: Any) -> None:
            _results[c.m.seq] = "ineligible"

    _defined = True


def _fen(s: str) -> int:
    whole, _, frac = s.partition(".")
    return int(whole) * 100 + int((frac + "00")[:2])


def durable_fact(h: dict[str, Any], standard_fen: int) -> dict[str, Any]:
    counted = [x for x in h["members"] if x.get("death_date") is None]
    n = len(counted)
    a = h["assets"]
    return {
        "local_hukou": h["local_hukou"],
        "financial_assets": _fen(a["financial_assets"]),
        "asset_limit": 24 * standard_fen * n,
        "vehicles": a["non_exempt_vehicles"],
        "houses": a["houses"],
        "income": sum(_fen(x["monthly_income"]) for x in counted),
        "need": standard_fen * n,
    }


def durable_decide(fact: dict[str, Any]) -> str:
    """Post one household to the durable_rules host; the action records the result."""
    _define_durable()
    seq = next(_ids)
    post(_RULESET, {**fact, "seq": seq})
    return _results.pop(seq)


ZEN_GRAPH = {
    "nodes": [
        {"id": "in", "type": "inputNode", "name": "request", "position": {"x": 0, "y": 0}},
        {
            "id": "dibao",
            "type": "expressionNode",
            "name": "dibao",
            "position": {"x": 100, "y": 0},
            "content": {
                "expressions": [
                    {"id": "1", "key": "n", "value": "len(members)"},
                    {"id": "2", "key": "T", "value": "sum(map(members, #.income))"},
                    {
                        "id": "3",
                        "key": "eligible",
                        "value": "local_hukou and financial_assets <= 24 * standard * $.n and vehicles == 0 and houses <= 1 and $.T < standard * $.n",
                    },
                    {"id": "4", "key": "amount", "value": "$.eligible ? ceil(standard * $.n - $.T) : 0"},
                ]
            },
        },
        {"id": "out", "type": "outputNode", "name": "response", "position": {"x": 200, "y": 0}},
    ],
    "edges": [
        {"id": "e1", "sourceId": "in", "targetId": "dibao", "type": "edge"},
        {"id": "e2", "sourceId": "dibao", "targetId": "out", "type": "edge"},
    ],
}


def zen_decision() -> Any:
    import zen

    return zen.ZenEngine().create_decision(json.dumps(ZEN_GRAPH))


def zen_context(h: dict[str, Any], standard: int) -> dict[str, Any]:
    a = h["assets"]
    return {
        "local_hukou": h["local_hukou"],
        "financial_assets": float(a["financial_assets"]),
        "vehicles": a["non_exempt_vehicles"],
        "houses": a["houses"],
        "standard": standard,
        "members": [{"income": float(x["monthly_income"])} for x in h["members"] if x.get("death_date") is None],
    }
