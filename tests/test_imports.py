"""`import engine` stays light: no web framework, no CLI toolkit, no test tools."""

from __future__ import annotations

import subprocess
import sys


def test_engine_imports_no_delivery_packages() -> None:
    code = "import sys, engine; print(sorted(m for m in ('fastapi', 'uvicorn', 'click', 'pytest', 'sqlalchemy', 'starlette') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
