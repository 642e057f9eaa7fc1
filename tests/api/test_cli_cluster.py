"""`jiuzhu screen` and `jiuzhu impact` with ``--workers``: a local Dask cluster started and
stopped by the command, the same files as a run in one process, progress on stderr."""

from __future__ import annotations

import filecmp
import json
import re
from pathlib import Path

import polars as pl

from tests.api.test_cli import REGS, _run
from tests.conftest import FIXTURES, RULES

CASELOAD = str(FIXTURES / "households.jsonl")


def test_screen_with_workers_equals_one_process(tmp_path: Path) -> None:
    one = _run("screen", CASELOAD, "--out", str(tmp_path / "one"), "--date", "2019-08-01", *REGS)
    assert one.returncode == 0, one.stderr
    many = _run(
        "screen", CASELOAD, "--out", str(tmp_path / "many"), "--date", "2019-08-01", *REGS,
        "--workers", "2", "--partitions", "3",
    )  # fmt: skip
    assert many.returncode == 0, many.stderr
    assert json.loads(many.stdout)["decided"] == json.loads(one.stdout)["decided"] > 0
    assert re.search(r"screening: partitions 3/3 · [\d,]+ households/s", many.stderr), many.stderr
    for name in ("decisions", "rejects"):
        a, b = (pl.read_parquet(tmp_path / d / f"{name}.parquet") for d in ("one", "many"))
        assert a.sort(a.columns, nulls_last=True).equals(b.sort(b.columns, nulls_last=True))
    assert (tmp_path / "one" / "summary.json").read_bytes() == (tmp_path / "many" / "summary.json").read_bytes()


def test_impact_with_workers_writes_the_same_files(tmp_path: Path) -> None:
    args = ["impact", CASELOAD, "--base", str(RULES), "--head", str(RULES), "--date", "2019-08-01", *REGS]
    args += ["--set", "dibao.standard=850@2019-07-01"]
    one = _run(*args, "--out", str(tmp_path / "one"))
    many = _run(*args, "--out", str(tmp_path / "many"), "--workers", "2", "--partitions", "4")
    assert one.returncode == 0, one.stderr
    assert many.returncode == 0, many.stderr
    assert json.loads(one.stdout) == json.loads(many.stdout)
    assert json.loads(one.stdout)["changed"] > 0
    assert "impact: partitions 4/4" in many.stderr
    for name in ("transitions.csv", "changes.csv", "budget.csv", "report.html", "summary.json"):
        assert filecmp.cmp(tmp_path / "one" / name, tmp_path / "many" / name, shallow=False), name


def test_scheduler_and_workers_together_are_refused(tmp_path: Path) -> None:
    r = _run(
        "--lang", "en", "screen", CASELOAD, "--out", str(tmp_path), "--scheduler", "tcp://127.0.0.1:1", "--workers", "2"
    )
    assert r.returncode == 3
    assert "--scheduler or --workers" in r.stderr
