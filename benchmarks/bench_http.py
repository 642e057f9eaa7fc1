"""Load on `POST /v1/decisions` from 50 concurrent clients over loopback, beside the same
load on `/healthz` (the floor of the web stack: no decision, no store). Reports p50, p99
and requests per second in extra_info.

The load comes from `wrk` (Debian's package) in a second process when it is installed, and
otherwise from an asyncio client in this process, which then competes with the server for
the two cores (its figures are a lower bound; the run says which it used).
JIUZHU_BENCH_HTTP_SECONDS (wrk) and JIUZHU_BENCH_HTTP_REQUESTS (Python client) size it;
`make test` smoke-runs 100 requests with the Python client."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from fixtures.server import Server, free_port, jiuzhu, start

ROOT = Path(__file__).resolve().parent.parent
REQUESTS = int(os.environ.get("JIUZHU_BENCH_HTTP_REQUESTS", "3000"))
SECONDS = int(os.environ.get("JIUZHU_BENCH_HTTP_SECONDS", "10"))
WRK = shutil.which("wrk") if os.environ.get("JIUZHU_BENCH_HTTP_CLIENT", "wrk") == "wrk" else None
CLIENTS = 50
BATCH = int(os.environ.get("JIUZHU_BENCH_HTTP_BATCH", "1000"))
HOUSEHOLD = json.loads((ROOT / "fixtures" / "households" / "HM-2019-000101.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    s = start(tmp_path_factory.mktemp("load"))
    s.add_user("officer", "officer", "--level", "city", "--certificate", "JS-1", "--valid-until", "2099-12-31")
    yield s
    s.stop()


async def _load(server: Server, method: str, path: str, body: Any, clients: int) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(REQUESTS):
        queue.put_nowait(i)
    headers = {"Authorization": f"Bearer {server.tokens['officer']}"}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async with httpx.AsyncClient(base_url=server.url, headers=headers, limits=limits, timeout=60) as client:

        async def worker() -> None:
            nonlocal errors
            while not queue.empty():
                queue.get_nowait()
                t = time.perf_counter()
                r = await client.request(method, path, json=body)
                latencies.append(time.perf_counter() - t)
                errors += r.status_code >= 400

        start_time = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - start_time
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": errors,
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 2),
        "requests_per_second": round(len(latencies) / elapsed, 1),
    }


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def _found(pattern: str, out: str) -> str:
    """A figure of wrk's report; its whole report in the failure when it is not there."""
    match = re.search(pattern, out)
    if match is None:
        raise AssertionError(f"wrk's report has no {pattern!r}:\n{out}")
    return match.group(1)


def _ms(text: str) -> float:
    """wrk's latency (``812.00us``, ``3.20ms``, ``1.02s``, ``1.50m``) in milliseconds."""
    match = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", text)
    if match is None:
        raise AssertionError(f"not a wrk latency: {text!r}")
    return round(float(match.group(1)) * _UNITS[match.group(2)], 2)


def _wrk(server: Server, method: str, path: str, body: Any, tmp: Path, clients: int) -> dict[str, Any]:
    script = tmp / "request.lua"
    payload = json.dumps(body) if body is not None else ""  # ASCII JSON inside a Lua long string
    script.write_text(
        f"wrk.method = {json.dumps(method)}\n"
        f"wrk.body = [==[{payload}]==]\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {server.tokens["officer"]}"\n',
        encoding="utf-8",
    )
    out = subprocess.run(
        [
            str(WRK),
            f"-t{min(2, clients)}",
            f"-c{clients}",
            f"-d{SECONDS}s",
            "--latency",
            "-s",
            str(script),
            server.url + path,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    failed = re.search(r"Socket errors: (.*)", out)
    return {
        "client": "wrk",
        "requests": int(_found(r"(\d+) requests in", out)),
        "errors": int(errors.group(1)) if errors else 0,
        "socket_errors": failed.group(1) if failed else "",
        "p50_ms": _ms(_found(r"50%\s+(\S+)", out)),
        "p99_ms": _ms(_found(r"99%\s+(\S+)", out)),
        "requests_per_second": float(_found(r"Requests/sec:\s+([0-9.]+)", out)),
    }


def _cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) of a server process and its worker processes, from /proc:
    on a shared machine, CPU per request varies far less than requests per second."""
    try:
        pids = [pid, *map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split())]
        ticks = 0
        for p in pids:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
    except (OSError, ValueError, IndexError):
        return None
    return ticks / os.sysconf("SC_CLK_TCK")


def _run(server: Server, method: str, path: str, body: Any, tmp: Path, clients: int = CLIENTS) -> dict[str, Any]:
    before = _cpu_seconds(server.process.pid)
    if WRK:
        stats = _wrk(server, method, path, body, tmp, clients)
    else:
        stats = {"client": "python", **asyncio.run(_load(server, method, path, body, clients))}
    after = _cpu_seconds(server.process.pid)
    if before is not None and after is not None and stats["requests"]:
        stats["server_cpu_us_per_request"] = round((after - before) / stats["requests"] * 1e6)
    return stats


@pytest.mark.benchmark(group="http-50-clients")
def bench_jiuzhu_post_decisions(benchmark: Any, server: Server, tmp_path: Path) -> None:
    stats = benchmark.pedantic(
        lambda: _run(server, "POST", "/v1/decisions", HOUSEHOLD, tmp_path), rounds=1, iterations=1
    )
    benchmark.extra_info.update(stats)
    assert stats["errors"] == 0
    assert stats["requests"] > 0


@pytest.fixture(scope="module")
def floor(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The lean hand-written server (`benchmarks/lean_http.py`) doing the same work."""
    folder = tmp_path_factory.mktemp("floor")
    port = free_port()
    db = folder / "floor.db"
    args = [sys.executable, "-m", "benchmarks.lean_http", "--port", str(port), "--db", str(db)]
    process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    s = Server(url, str(db), folder, "", process, tokens={"officer": "floor"})
    yield s
    s.stop()


def _decided(server: Server) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {server.tokens['officer']}", "Accept-Language": "en"}
    r = httpx.post(server.url + "/v1/decisions", json=HOUSEHOLD, headers=headers, timeout=60)
    assert r.status_code == 201, r.text
    answer: dict[str, Any] = r.json()
    return answer


def _comparable(answer: dict[str, Any]) -> dict[str, Any]:
    """An answer without what names stored records (ids, times, the store's registry versions)."""
    store = ("decision_id", "recorded_at", "approvals", "ruleset_id", "registry_versions")
    out = {k: v for k, v in answer.items() if k not in store}
    out["explanation"] = {k: v for k, v in answer["explanation"].items() if k != "registries"}
    return out


@pytest.mark.benchmark(group="http-50-clients")
def bench_floor_post_decisions(benchmark: Any, floor: Server, server: Server, tmp_path: Path) -> None:
    """The same decisions through the lean hand-written server: ours ÷ this is the cost of the
    service's own parts (framework, roles, index, idempotency, headers, access log)."""
    assert _comparable(_decided(floor)) == _comparable(_decided(server))  # the same answer, bar record ids
    stats = benchmark.pedantic(
        lambda: _run(floor, "POST", "/v1/decisions", HOUSEHOLD, tmp_path), rounds=1, iterations=1
    )
    benchmark.extra_info.update(stats)
    assert stats["errors"] == 0


@pytest.mark.benchmark(group="http-1-client")
def bench_floor_post_decisions_one_client(benchmark: Any, floor: Server, tmp_path: Path) -> None:
    stats = benchmark.pedantic(
        lambda: _run(floor, "POST", "/v1/decisions", HOUSEHOLD, tmp_path, clients=1), rounds=1, iterations=1
    )
    benchmark.extra_info.update(stats)
    assert stats["errors"] == 0


@pytest.fixture(scope="module")
def server_two_workers(tmp_path_factory: pytest.TempPathFactory) -> Any:
    s = start(tmp_path_factory.mktemp("load2"), "--workers", "2")
    s.add_user("officer", "officer", "--level", "city", "--certificate", "JS-1", "--valid-until", "2099-12-31")
    yield s
    s.stop()


@pytest.mark.benchmark(group="http-50-clients")
def bench_jiuzhu_post_decisions_two_workers(benchmark: Any, server_two_workers: Server, tmp_path: Path) -> None:
    """`jiuzhu serve --workers 2` on one SQLite file: one ledger writer at a time across them."""
    stats = benchmark.pedantic(
        lambda: _run(server_two_workers, "POST", "/v1/decisions", HOUSEHOLD, tmp_path), rounds=1, iterations=1
    )
    benchmark.extra_info.update(stats)
    assert stats["errors"] == 0
    verified = jiuzhu("audit", "verify", "--db", server_two_workers.db)
    assert verified.returncode == 0, verified.stdout + verified.stderr  # the chain held under two writers


@pytest.mark.benchmark(group="http-50-clients")
def bench_web_stack_floor_healthz(benchmark: Any, server: Server, tmp_path: Path) -> None:
    stats = benchmark.pedantic(lambda: _run(server, "GET", "/healthz", None, tmp_path), rounds=1, iterations=1)
    benchmark.extra_info.update(stats)
    assert stats["errors"] == 0


@pytest.mark.benchmark(group="http-1-client")
def bench_jiuzhu_post_decisions_one_client(benchmark: Any, server: Server, tmp_path: Path) -> None:
    """Latency as one officer sees it: one request in flight at a time."""
    stats = benchmark.pedantic(
        lambda: _run(server, "POST", "/v1/decisions", HOUSEHOLD, tmp_path, clients=1), rounds=1, iterations=1
    )
    benchmark.extra_info.update(stats)
    assert stats["errors"] == 0


@pytest.mark.benchmark(group="http-batch-beside-healthz")
def bench_batch_delays_healthz(benchmark: Any, server: Server) -> None:
    """How long `/healthz` waits while a 1000-household batch is decided and stored: the
    worst `/healthz` latency during the batch, beside its median when the server is idle."""
    # encoded beforehand: encoding it in the posting thread would hold this process's GIL, and
    # so delay the probe, for as long as one json.dumps over megabytes takes
    batch = json.dumps([HOUSEHOLD] * BATCH).encode()
    headers = {"Authorization": f"Bearer {server.tokens['officer']}", "Content-Type": "application/json"}

    def run() -> dict[str, Any]:
        with httpx.Client(base_url=server.url, timeout=120) as probe:
            idle = []
            for _ in range(50):
                t = time.perf_counter()
                probe.get("/healthz")
                idle.append(time.perf_counter() - t)
            done = threading.Event()
            status: list[int] = []

            def post() -> None:
                with httpx.Client(base_url=server.url, headers=headers, timeout=300) as c:
                    status.append(c.post("/v1/decisions/batch", content=batch).status_code)
                done.set()

            poster = threading.Thread(target=post)
            poster.start()
            during = []
            while not done.is_set():
                t = time.perf_counter()
                probe.get("/healthz")
                during.append(time.perf_counter() - t)
                time.sleep(0.005)
            poster.join()
        return {
            "batch": BATCH,
            "batch_status": status[0],
            "healthz_probes_during_batch": len(during),
            "healthz_idle_p50_ms": round(statistics.median(idle) * 1000, 2),
            "healthz_worst_during_batch_ms": round(max(during, default=0.0) * 1000, 2),
        }

    stats = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(stats)
    assert stats["batch_status"] == 201
