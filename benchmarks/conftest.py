"""Benchmarks run side by side per group; the summary prints each one's median as a
multiple of jiuzhu's (the entry whose name starts with `jiuzhu`)."""

from __future__ import annotations

from typing import Any

import pytest


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    session = getattr(config, "_benchmarksession", None)
    if session is None or session.disabled:
        return
    groups: dict[str, list[Any]] = {}
    for bench in session.benchmarks:
        if bench.stats.data:  # a benchmark that failed before its first round has no time to compare
            groups.setdefault(bench.group or "", []).append(bench)
    terminalreporter.section("ratios (median time / jiuzhu median time)")
    for group, benches in sorted(groups.items()):
        ours = [b for b in benches if b.name.split("[")[0].removeprefix("bench_").startswith("jiuzhu")]
        if not ours:
            continue
        base = ours[0].stats.median
        terminalreporter.write_line(f"[{group}] jiuzhu median {base * 1e6:.1f} us")
        rate = ours[0].extra_info.get("requests_per_second")
        for b in sorted(benches, key=lambda b: b.stats.median):
            line = f"    {b.name:60s} {b.stats.median * 1e6:12.1f} us   x{b.stats.median / base:7.2f}"
            if rate and b.extra_info.get("requests_per_second"):  # a load run: its rate says more than its time
                other = b.extra_info["requests_per_second"]
                line += f"   {other:9.1f} req/s (jiuzhu x{rate / other:5.2f})"
            terminalreporter.write_line(line)
