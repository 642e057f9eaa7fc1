"""A real `jiuzhu serve` process on a free 127.0.0.1 port, with a temporary SQLite store."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.conftest import FIXTURES


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def jiuzhu(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api", *args], capture_output=True, text=True, check=False, timeout=120
    )


@dataclass
class Server:
    url: str
    db: str
    folder: Path
    admin: str
    process: subprocess.Popen[str]
    tokens: dict[str, str] = field(default_factory=dict)
    output: list[str] = field(default_factory=list)
    clients: dict[tuple[str, ...], httpx.Client] = field(default_factory=dict)
    drainer: threading.Thread | None = None

    def add_user(self, name: str, role: str, *extra: str) -> str:
        r = jiuzhu("users", "add", name, "--role", role, *extra, "--db", self.db)
        assert r.returncode == 0, r.stderr
        token = r.stdout.strip().splitlines()[-1]
        self.tokens[name] = token
        return token

    def client(self, token: str | None = None, **headers: str) -> httpx.Client:
        """One client per token and headers, closed when the server stops."""
        h = dict(headers)
        if token:
            h["Authorization"] = f"Bearer {token}"
        key = tuple(sorted(f"{k}={v}" for k, v in h.items()))
        if key not in self.clients:
            self.clients[key] = httpx.Client(base_url=self.url, headers=h, timeout=60)
        return self.clients[key]

    def stop(self) -> str:
        for c in self.clients.values():
            c.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.drainer is not None:
            self.drainer.join(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return "".join(self.output)


def start(folder: Path, *extra: str) -> Server:
    port = free_port()
    db = f"sqlite:///{folder / 'store.db'}"
    args = [sys.executable, "-m", "api", "serve", "--port", str(port), "--db", db, "--data-dir", str(folder)]
    args += [
        "--relatives",
        str(FIXTURES / "registries" / "relatives.csv"),
        "--filings",
        str(FIXTURES / "registries" / "filings.csv"),
        *extra,
    ]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    first = process.stdout.readline()
    if "token" not in first and "users" not in first:
        process.kill()
        raise RuntimeError(f"server did not start: {first}{process.stdout.read()}")
    admin = first.strip().rsplit(" ", 1)[-1]
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            with httpx.Client() as probe:
                if probe.get(url + "/healthz", timeout=1).status_code == 200:
                    break
        except httpx.HTTPError:
            time.sleep(0.05)
    else:
        process.kill()
        raise RuntimeError("server never became ready")
    server = Server(url, db, folder, admin, process)
    stream = process.stdout

    def drain() -> None:  # keep the pipe from filling; the log is checked by tests
        for line in stream:
            server.output.append(line)

    server.drainer = threading.Thread(target=drain, daemon=True)
    server.drainer.start()
    return server
