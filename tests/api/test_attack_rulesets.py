"""Rules bundles and rule versions under attack (issue 10, rows 1, 2, 3 and 6), against a real
`jiuzhu serve` on 127.0.0.1 with a SQLite file."""

from __future__ import annotations

import functools
import io
import os
import random
import signal
import sqlite3
import struct
import threading
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine import InputError
from fixtures.server import Server, jiuzhu, start
from tests.conftest import FIXTURES, RULES

# the worker's limits for this server: small, so that a bomb reaches them in seconds
SERVE = ("--bundle-memory", "96", "--bundle-seconds", "60")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = start(tmp_path_factory.mktemp("attack-rules"), *SERVE)
    _users(s)
    yield s
    s.stop()


def _users(s: Server) -> None:
    s.add_user("政策", "policy")
    s.add_user("李市", "officer", "--level", "city", "--certificate", "JS-2019-0002", "--valid-until", "2099-12-31")


def _rules_files() -> dict[str, bytes]:
    return {
        f"rules/{p.relative_to(RULES).as_posix()}": p.read_bytes()
        for p in sorted(RULES.rglob("*"))
        if p.is_file() and p.suffix in (".yaml", ".json", ".md")
    }


def _bundle(extra: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in _rules_files().items():
            z.writestr(name, data)
        for rel, text in (extra or {}).items():
            z.writestr(f"rules/{rel}", text)
    return buf.getvalue()


def _publish(s: Server, data: bytes, effective_from: str = "2019-09-01") -> httpx.Response:
    policy = s.client(s.tokens["政策"], **{"Content-Type": "application/zip"})
    return policy.post("/v1/rulesets", params={"effective_from": effective_from}, content=data)


def _decide(s: Server, **changes: Any) -> httpx.Response:
    import json

    household = json.loads((FIXTURES / "households" / "HM-2019-000101.json").read_text(encoding="utf-8"))
    return s.client(s.tokens["李市"]).post("/v1/decisions", json={**household, **changes})


def _alive(s: Server) -> None:
    assert s.process.poll() is None, "the server process is gone"
    assert s.client().get("/healthz").status_code == 200
    assert _decide(s).status_code == 201


def _while_in_flight(s: Server, send: Callable[[], httpx.Response]) -> tuple[httpx.Response | None, list[float]]:
    """Send a request from a thread and probe /healthz until it is answered: the response and
    the seconds (after sending) at which a probe was answered while it was still in flight."""
    result: dict[str, httpx.Response] = {}
    worker = threading.Thread(target=lambda: result.update(r=send()), daemon=True)
    began = time.monotonic()
    worker.start()
    answered: list[float] = []
    with httpx.Client(base_url=s.url, timeout=10) as probe:
        while worker.is_alive() and time.monotonic() - began < 45:
            try:
                ok = probe.get("/healthz").status_code == 200
            except httpx.TimeoutException:
                ok = False
            if ok and worker.is_alive():
                answered.append(time.monotonic() - began)
            time.sleep(0.2)
    worker.join(timeout=60)
    return result.get("r"), answered


def _crash(data: bytes, limits: Any) -> Any:
    """A check that dies as a segfault in the engine would (the first line missed something)."""
    os.kill(os.getpid(), signal.SIGSEGV)


# ------------------------------------------------------------------ row 1


def test_row01_deeply_nested_bundle_does_not_kill_server(server: Server) -> None:
    r = _publish(server, _bundle({"programs/deep.yaml": "[" * 30_000}))
    assert r.status_code == 422, r.text
    problem = r.json()["errors"][0]
    assert (problem["file"], problem["kind"]) == ("programs/deep.yaml", "too-deep")
    _alive(server)
    # the second line: whatever the reader misses, a checker that dies takes only itself down
    from api.bundles import BundleLimits, BundleRefused, check_bundle

    with pytest.raises(BundleRefused, match="killed by SIGSEGV"):
        check_bundle(_bundle(), BundleLimits(seconds=20), check=_crash)
    _alive(server)


# ------------------------------------------------------------------ row 2

# 387 bytes that PyYAML's own composer would expand to 9^9 strings
_ALIAS_BOMB = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(f"{n}: &{n} [{','.join([f'*{p}'] * 9)}]" for p, n in zip("abcdefgh", "bcdefghi", strict=True)),
    ]
)


@functools.cache
def _node_bomb(seed: int) -> str:
    """The alias bomb written out instead: 1 MiB of tiny nested lists and maps, within every
    limit of the reader (size, depth, no aliases) and of the zip (it packs only ~4 : 1), that
    costs some hundred MiB of nodes to hold."""
    rnd = random.Random(seed)
    parts: list[str] = []
    size = 2
    while size < (1 << 20) - 16:
        part = (
            rnd.choice(["[]", "{}", "[[]]", "[{}]"]) if rnd.random() < 0.8 else "".join(rnd.choices("abcxyz019", k=2))
        )
        parts.append(part)
        size += len(part) + 1
    return "[" + ",".join(parts) + "]"


def test_row02_alias_bomb_bundle_keeps_server_responsive(server: Server) -> None:
    assert len(_ALIAS_BOMB.encode()) <= 400
    r = _publish(server, _bundle({"programs/bomb.yaml": _ALIAS_BOMB}))
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["kind"] == "yaml-alias"
    before = len(server.client(server.tokens["政策"]).get("/v1/rulesets").json())
    bomb = _bundle({f"programs/bomb{i}.yaml": _node_bomb(0) for i in range(8)})
    response, answered = _while_in_flight(server, lambda: _publish(server, bomb))
    # probes answered one after another while the check ran elsewhere (a server checking on its
    # event loop answers at most the probe sent before the upload arrived, then none until done)
    assert len(answered) >= 2, answered
    assert response is not None
    assert response.status_code == 422, response.text
    assert "96 MiB (memory limit)" in response.json()["detail"]
    assert len(server.client(server.tokens["政策"]).get("/v1/rulesets").json()) == before
    _alive(server)


def test_row02_a_check_past_its_deadline_is_stopped() -> None:
    from api.bundles import BundleLimits, BundleRefused, check_bundle

    bomb = _bundle({f"programs/bomb{i}.yaml": _node_bomb(0) for i in range(8)})
    with pytest.raises(BundleRefused, match=r"longer than 1 s \(time limit\)"):
        check_bundle(bomb, BundleLimits(seconds=1))


# ------------------------------------------------------------------ row 3


def _zip(entries: list[tuple[str, int, int, int, bytes]]) -> bytes:
    """A zip written by hand from (name, method, CRC, unpacked size, packed bytes), so that a
    test can pack a gigabyte without deflating it, or give an entry a size it does not have."""
    out = io.BytesIO()
    central = io.BytesIO()
    for name, method, crc, size, packed in entries:
        raw = name.encode()
        offset = out.tell()
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, len(packed), size, len(raw), 0))
        out.write(raw + packed)
        central.write(
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                *(0x02014B50, 20, 20, 0, method, 0, 0x21, crc, len(packed), size, len(raw), 0, 0, 0, 0, 0, offset),
            )
        )
        central.write(raw)
    start_of_central = out.tell()
    out.write(central.getvalue())
    out.write(
        struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), central.tell(), start_of_central, 0)
    )
    return out.getvalue()


def _deflated(name: str, data: bytes) -> tuple[str, int, int, int, bytes]:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return name, 8, zlib.crc32(data), len(data), c.compress(data) + c.flush()


def _newlines(name: str, mib: int, claimed: int | None = None) -> tuple[str, int, int, int, bytes]:
    """``mib`` MiB of newlines as one deflated entry: one self-contained deflate block of 1 MiB
    (a full flush drops the history) written ``mib`` times, then an empty final block."""
    chunk = b"\n" * (1 << 20)
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    block = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(mib):
        crc = zlib.crc32(chunk, crc)
    final = zlib.compressobj(6, zlib.DEFLATED, -15).flush()
    return name, 8, crc, (mib << 20) if claimed is None else claimed, block * mib + final


def test_row03_newline_gigabyte_bundle_refused(server: Server) -> None:
    rules = [_deflated(name, data) for name, data in _rules_files().items()]
    data = _zip([*rules, _newlines("rules/notes.md", 1024)])
    assert len(data) < 2 << 20  # a gigabyte unpacked, about a mebibyte sent
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.getinfo("rules/notes.md").file_size == 1 << 30
    before = len(server.client(server.tokens["政策"]).get("/v1/rulesets").json())
    r = _publish(server, data)
    assert r.status_code == 413, r.text
    assert "more than 1048576 bytes (limit per file)" in r.json()["detail"]
    assert r.json()["errors"][0]["field"] == "rules/notes.md"
    assert len(server.client(server.tokens["政策"]).get("/v1/rulesets").json()) == before
    _alive(server)


def test_row03_zip_limits_are_counted_on_what_is_unpacked() -> None:
    from api.bundles import BundleLimits, BundleTooLarge, unpack_bundle
    from engine.source import MAX_FILE_BYTES

    assert BundleLimits().entry_bytes == MAX_FILE_BYTES  # no larger file could be a rule file
    rules = [_deflated(name, data) for name, data in _rules_files().items()]
    with zipfile.ZipFile(io.BytesIO(_zip([_newlines("rules/a.md", 3)]))) as z:  # the hand-made zip is sound
        assert z.read("rules/a.md") == b"\n" * (3 << 20)
    # packed 1000 : 1, within the size limits: refused on the ratio
    with pytest.raises(
        BundleTooLarge, match=r"rules/b.md.*100 times its packed size \(limit on the compression ratio\)"
    ):
        unpack_bundle(_zip([*rules, _newlines("rules/b.md", 1)]), BundleLimits(entry_bytes=4 << 20))
    # a header that claims 2 bytes for 8 MiB: never trusted, and the rest is not unpacked either
    lying = _zip([*rules, _newlines("rules/notes.md", 8, claimed=2)])
    with pytest.raises(InputError, match=r"rules/notes\.md: cannot be unpacked: Bad CRC-32"):
        unpack_bundle(lying)
    with pytest.raises(BundleTooLarge, match=r"more than 200 bytes \(limit per file\)"):
        unpack_bundle(_zip(rules), BundleLimits(entry_bytes=200))
    with pytest.raises(BundleTooLarge, match=r"more than 30000 bytes \(limit for all files\)"):
        unpack_bundle(_zip(rules), BundleLimits(total_bytes=30_000))
    many = _zip([*rules, *(_deflated(f"rules/notes/{i}.txt", b"x") for i in range(len(rules)))])
    with pytest.raises(BundleTooLarge, match=r"more than 25 \(limit on entries\)"):
        unpack_bundle(many, BundleLimits(entries=25))
    assert "ruleset.yaml" in unpack_bundle(_zip(rules))


# ------------------------------------------------------------------ row 6


def _rulesets(s: Server) -> dict[int, dict[str, Any]]:
    return {r["id"]: r for r in s.client(s.tokens["政策"]).get("/v1/rulesets").json()}


def test_row06_rollback_cannot_leave_dates_without_ruleset(tmp_path: Path) -> None:
    s = start(tmp_path, *SERVE)
    try:
        _users(s)
        policy = s.client(s.tokens["政策"])
        (first,) = _rulesets(s)
        r = _publish(s, _bundle(), effective_from="2031-01-01")
        assert r.status_code == 201, r.text
        future = r.json()["id"]
        r = policy.post(f"/v1/rulesets/{first}/rollback")
        assert r.status_code == 409, r.text
        assert "1900-01-01…2030-12-31 without a ruleset in force" in r.json()["detail"]
        assert _decide(s).status_code == 201
        assert _decide(s, decision_date="2031-02-01").json()["ruleset_id"] == future
        # the future version may go: the first still covers every date
        assert policy.post(f"/v1/rulesets/{future}/rollback").status_code == 200
        assert _decide(s, decision_date="2031-02-01").json()["ruleset_id"] == first
        r = policy.post(f"/v1/rulesets/{first}/rollback")
        assert r.status_code == 409
        assert "every decision date from 1900-01-01 on" in r.json()["detail"]
        # a withdrawn version comes back
        r = policy.post(f"/v1/rulesets/{future}/reinstate")
        assert r.status_code == 200, r.text
        assert r.json() == {"id": future, "status": "published", "effective_from": "2031-01-01"}
        assert policy.post(f"/v1/rulesets/{future}/reinstate").status_code == 409
        assert s.client(s.tokens["李市"]).post(f"/v1/rulesets/{future}/reinstate").status_code == 403
        assert _decide(s, decision_date="2031-02-01").json()["ruleset_id"] == future
        assert {k: v["status"] for k, v in _rulesets(s).items()} == {first: "published", future: "published"}
    finally:
        s.stop()


def test_row06_server_restarts_after_a_gap_and_reinstates(tmp_path: Path) -> None:
    s = start(tmp_path, *SERVE)
    _users(s)
    (first,) = _rulesets(s)
    r = _publish(s, _bundle(), effective_from="2031-01-01")
    assert r.status_code == 201, r.text
    s.stop()
    # the state an older release let a rollback leave: only a version effective in 2031
    with sqlite3.connect(tmp_path / "store.db") as db:
        db.execute("UPDATE rulesets SET status = 'withdrawn' WHERE id = ?", (first,))
    again = start(tmp_path, *SERVE)
    try:
        again.tokens.update(s.tokens)
        r = _decide(again)
        assert r.status_code == 422
        assert "no published ruleset is in force" in r.text
        r = again.client(again.tokens["政策"]).post(f"/v1/rulesets/{first}/reinstate")
        assert r.status_code == 200, r.text
        assert _decide(again).status_code == 201
    finally:
        again.stop()


def test_rules_lint_checks_a_bundle_as_the_service_does(tmp_path: Path) -> None:
    good, deep, huge = tmp_path / "good.zip", tmp_path / "deep.zip", tmp_path / "huge.zip"
    good.write_bytes(_bundle())
    deep.write_bytes(_bundle({"programs/deep.yaml": "[" * 30_000}))
    rules = [_deflated(name, data) for name, data in _rules_files().items()]
    huge.write_bytes(_zip([*rules, _newlines("rules/notes.md", 1024)]))
    r = jiuzhu("rules", "lint", str(good))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ok: bundle ")
    r = jiuzhu("rules", "lint", str(deep))
    assert r.returncode == 2
    assert "programs/deep.yaml:1:65: too-deep" in r.stdout
    r = jiuzhu("--lang", "en", "rules", "lint", str(huge))
    assert r.returncode == 2
    assert "rules/notes.md: unpacks to more than 1048576 bytes (limit per file)" in r.stderr


def test_row06_two_servers_cannot_each_withdraw_one_of_the_versions_covering_a_date(tmp_path: Path) -> None:
    """Two versions in force from the same day: either may go, not both; two stores on one
    file (two servers) racing to withdraw one each leave exactly one published."""
    import datetime as dt

    from api.rulesets import uncovered_after_withdrawal
    from api.store import Store

    url = f"sqlite:///{tmp_path / 'store.db'}"
    servers = [Store(url), Store(url)]
    ids = [servers[0].add_ruleset(v, dt.date(1900, 1, 1), {}, None) for v in ("a", "b")]

    def withdraw(store: Store, rid: int, barrier: threading.Barrier, out: list[bool]) -> None:
        def check(after: list[dict[str, Any]]) -> None:
            time.sleep(0.05)  # a slow check: the other server tries while this one holds the change
            before = [{**r, "status": "published"} if r["id"] == rid else r for r in after]
            if uncovered_after_withdrawal(before, rid) is not None:
                raise LookupError("would leave a gap")

        barrier.wait()
        try:
            out.append(store.change_ruleset_status(rid, "withdrawn", check))
        except LookupError:
            out.append(False)

    for _ in range(5):
        barrier, out = threading.Barrier(2), list[bool]()
        threads = [
            threading.Thread(target=withdraw, args=(s, r, barrier, out)) for s, r in zip(servers, ids, strict=True)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert sorted(out) == [False, True]
        published = [r["id"] for r in servers[0].rulesets() if r["status"] == "published"]
        assert len(published) == 1
        assert servers[1].change_ruleset_status(next(i for i in ids if i not in published), "published")
