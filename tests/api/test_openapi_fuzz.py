"""Schemathesis against the live service's OpenAPI: no client input may cause a 500."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fixtures.server import start


def test_no_server_errors_for_generated_requests(tmp_path: Path) -> None:
    server = start(tmp_path)
    try:
        result = subprocess.run(
            [
                str(Path(sys.executable).parent / "schemathesis"),
                "run",
                f"{server.url}/openapi.json",
                "-H",
                f"Authorization: Bearer {server.admin}",
                "--max-examples",
                "8",
                "--checks",
                "not_a_server_error",
                "--seed",
                "2019",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    finally:
        log = server.stop()
    assert result.returncode == 0, result.stdout[-4000:]
    assert "Traceback" not in log
