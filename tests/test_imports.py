"""The layering holds: `import engine` stays light, `api` sees only the engine's face,
and nothing outside `tests/` imports from `tests/`."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _imported(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def test_engine_imports_no_delivery_packages() -> None:
    code = "import sys, engine; print(sorted(m for m in ('fastapi', 'uvicorn', 'click', 'pytest', 'sqlalchemy', 'starlette') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_one_household_does_not_start_the_columnar_engine() -> None:
    """Deciding one household must not import Polars, PyArrow or NumPy."""
    code = (
        "import json, sys; from engine import Evaluator, load; "
        "h = json.load(open('fixtures/households/HM-2019-000101.json', encoding='utf-8')); "
        "Evaluator(load('rules')).decide(h).to_dict(); "
        "print(sorted(m for m in ('polars', 'pyarrow', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_lazy_face_names_resolve() -> None:
    import engine

    for name in engine.__all__:
        assert getattr(engine, name) is not None
    with pytest.raises(AttributeError, match="no attribute"):
        _ = engine.no_such_name


@pytest.mark.parametrize("path", sorted((ROOT / "api").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_api_imports_only_the_engine_face(path: Path) -> None:
    inner = [n for n in _imported(path) if n.startswith("engine.")]
    assert inner == [], f"{path.name} reaches past engine/__init__.py: {inner}"


def test_nothing_outside_tests_imports_tests() -> None:
    offenders = [
        f"{p.relative_to(ROOT)}: {n}"
        for folder in ("engine", "api", "benchmarks", "fixtures", "rules")
        for p in (ROOT / folder).rglob("*.py")
        for n in _imported(p)
        if n == "tests" or n.startswith("tests.")
    ]
    assert offenders == []


@pytest.mark.parametrize("command", ["screen", "impact"])
def test_no_dask_without_a_cluster_flag(command: str, tmp_path: Path) -> None:
    """`screen` and `impact` in one process never import Dask (an optional extra)."""
    caseload = str(ROOT / "fixtures" / "households.jsonl")
    args = [command, caseload, "--out", str(tmp_path / "out"), "--date", "2019-08-01"]
    if command == "impact":
        args += ["--base", str(ROOT / "rules"), "--head", str(ROOT / "rules")]
    code = (
        "import sys; from api.cli import main; main(sys.argv[1:], standalone_mode=False); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))"
    )
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "out" / "summary.json").exists()
