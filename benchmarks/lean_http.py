"""The floor for `POST /v1/decisions`: the leanest hand-written server doing the same work as
the service, measured beside it by `bench_http.py`.

A raw ASGI app on uvicorn, no framework: read the body, parse it (orjson), validate and
decide it with the same compiled engine (`Evaluator.decide`: the generated row validator,
then the generated household function, the same sample registries), append one
hash-chained row (the compact record: household, decision values, versions) to a SQLite
file through one writer thread that commits whatever is waiting in one transaction (group
commit), and answer the decision as JSON with its record number and the explanation's rules
in the asked language (the same engine call the service makes). Only bearer-token presence is checked (no user
table, roles, township binding, idempotency, search index, security headers or access log):
what the service does beyond this is what the ratio ours ÷ floor measures.

Run: `python -m benchmarks.lean_http --port P --db FILE`; it prints ``ready`` when it listens.
"""

from __future__ import annotations

import argparse
import hashlib
import queue
import sqlite3
import sys
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import orjson

from engine import BadJson, Evaluator, InputError, Registries, json_value, load

ROOT = Path(__file__).resolve().parent.parent
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
_JSON = [(b"content-type", b"application/json")]


class Chain:
    """One writer thread; each transaction appends every row waiting at that moment."""

    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS ledger (seq INTEGER PRIMARY KEY, body TEXT NOT NULL,"
            " prev_hash TEXT NOT NULL UNIQUE, hash TEXT NOT NULL)"
        )
        self.queue: queue.SimpleQueue[tuple[bytes, Future[int]]] = queue.SimpleQueue()
        threading.Thread(target=self._run, daemon=True).start()

    def append(self, body: bytes) -> Future[int]:
        future: Future[int] = Future()
        self.queue.put((body, future))
        return future

    def _run(self) -> None:
        while True:
            group = [self.queue.get()]
            while True:
                try:
                    group.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            self.db.execute("BEGIN IMMEDIATE")
            head = self.db.execute("SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1").fetchone()
            seq, prev = head if head else (0, "0" * 64)
            rows = []
            for body, _ in group:
                seq += 1
                digest = hashlib.sha256(prev.encode() + body).hexdigest()
                rows.append((seq, body.decode(), prev, digest))
                prev = digest
            self.db.executemany("INSERT INTO ledger VALUES (?, ?, ?, ?)", rows)
            self.db.execute("COMMIT")
            for (_, future), row in zip(group, rows, strict=True):
                future.set_result(row[0])


def make_app(evaluator: Evaluator, chain: Chain) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    import asyncio

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                while (await receive())["type"] != "lifespan.shutdown":
                    await send({"type": "lifespan.startup.complete"})
                await send({"type": "lifespan.shutdown.complete"})
            return
        status, answer = 404, b'{"detail":"not found"}'
        if scope["path"] == "/healthz":
            status, answer = 200, b'{"status":"ok"}'
        elif scope["path"] == "/v1/decisions" and scope["method"] == "POST":
            headers = dict(scope["headers"])
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            if not headers.get(b"authorization", b"").startswith(b"Bearer "):
                status, answer = 401, b'{"detail":"a bearer token is required"}'
            else:
                lang = "en" if headers.get(b"accept-language", b"").lower().startswith(b"en") else "zh"
                try:
                    household = json_value(body.decode())  # money as Decimal, as the service reads it
                    decision = evaluator.decide(household)
                except (InputError, BadJson, UnicodeDecodeError) as exc:
                    status, answer = 422, orjson.dumps({"detail": str(exc)})
                else:
                    out = decision.to_dict(explain=False)
                    record = {"household": household, "decision": out, "ruleset": decision.ruleset_version}
                    seq = await asyncio.wrap_future(chain.append(orjson.dumps(record, default=str)))
                    out["decision_id"] = seq
                    out["explanation"] = decision.explanation(lang)
                    status, answer = 201, orjson.dumps(out, default=str)
        await send({"type": "http.response.start", "status": status, "headers": _JSON})
        await send({"type": "http.response.body", "body": answer})

    return app


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", required=True)
    args = parser.parse_args(argv)
    ruleset = load(ROOT / "rules")
    registries = Registries.from_files(
        ruleset,
        {
            "relatives": ROOT / "fixtures" / "registries" / "relatives.csv",
            "filings": ROOT / "fixtures" / "registries" / "filings.csv",
        },
    )
    evaluator = Evaluator(ruleset, registries)
    app = make_app(evaluator, Chain(args.db))
    print("ready", flush=True)
    sys.stdout.flush()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False, log_config=None)


if __name__ == "__main__":
    main()
