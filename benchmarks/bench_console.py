"""The console's two busiest pages with 10^5 stored decisions: the decision page (a decision
read, its explanation re-derived under its own versions, rendered) and the search page (a
township's pending decisions, counted and paginated). Target: < 50 ms median each.

The store is built once through the store's own API (the ledger chain and the search index
written as the service writes them, in groups of 1000) and cached under .benchmarks/, keyed
by the number of decisions and the rules; each run works on a copy.
JIUZHU_BENCH_CONSOLE_DECISIONS sizes it (default 100 000; a smoke run uses 500)."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures.console import TestClient, add_user, app_on, sign_in

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".benchmarks"
HOUSEHOLDS = [
    json.loads(p.read_text(encoding="utf-8")) for p in sorted((ROOT / "fixtures" / "households").glob("*.json"))
]


def _rules_key() -> str:
    digest = hashlib.sha256()
    for path in sorted((ROOT / "rules").rglob("*.yaml")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _build(folder: Path, count: int) -> None:
    """A store with ``count`` decisions of the fixture households (ids made unique)."""
    app = app_on(folder)
    service = app.state.service
    clerk = service.store.add_user("clerk", "officer", "city", "JS-0", None)[0]
    decided = [service._decide(h)[0] for h in HOUSEHOLDS]
    for start in range(0, count, 1000):
        bodies = []
        for i in range(start, min(count, start + 1000)):
            body = json.loads(json.dumps(decided[i % len(decided)]))
            hid = f"B{i:07d}"
            body["household"]["household_id"] = hid
            body["decision"]["household_id"] = hid
            bodies.append(body)
        service.store.append_many([service.submission(bodies, clerk, None)])
    service.close()


@pytest.fixture(scope="module")
def console(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    smoke = bool(request.config.getoption("benchmark_disable", False))
    count = 500 if smoke else int(os.environ.get("JIUZHU_BENCH_CONSOLE_DECISIONS", "100000"))
    cached = CACHE / f"console-{count}-{_rules_key()}"
    if not (cached / "store.db").exists():
        building = tmp_path_factory.mktemp("console-build")
        _build(building, count)
        CACHE.mkdir(exist_ok=True)
        shutil.rmtree(cached, ignore_errors=True)
        shutil.copytree(building, cached, ignore=shutil.ignore_patterns("jobs", "uploads"))
    folder = tmp_path_factory.mktemp("console-bench")
    shutil.copy(cached / "store.db", folder / "store.db")
    app = app_on(folder)
    with TestClient(app):
        client = sign_in(app, add_user(app, "reader", "officer", "city"))
        yield client, count


def bench_jiuzhu_console_decision_page(benchmark: Any, console: Any) -> None:
    client, count = console
    picks = random.Random(7)
    seqs = iter([picks.randint(2, count) for _ in range(100_000)])  # mostly not in the explanation cache

    def read() -> int:
        r = client.get(f"/console/decisions/{next(seqs)}")
        assert r.status_code == 200
        assert "逐条说明" in r.text
        return len(r.content)

    assert benchmark(read) > 0


def bench_jiuzhu_console_search_page(benchmark: Any, console: Any) -> None:
    client, count = console
    towns = sorted({h["township"] for h in HOUSEHOLDS})
    picks = random.Random(11)
    pages = max(1, min(20, count // (len(HOUSEHOLDS) * 50)))  # pages every township has

    def search() -> int:
        params = {"township": picks.choice(towns), "status": "pending", "page": picks.randint(1, pages)}
        r = client.get("/console/search", params=params)
        assert r.status_code == 200
        assert "/console/decisions/" in r.text
        return len(r.content)

    assert benchmark(search) > 0
