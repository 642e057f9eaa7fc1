"""The caseload generator: deterministic for a seed, realistic, valid, and writable in every format."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import polars as pl

from fixtures.caseload import generate, write


def test_same_seed_same_caseload_other_seed_another() -> None:
    a = generate(2000, seed=5)
    b = generate(2000, seed=5)
    c = generate(2000, seed=6)
    assert all(x.equals(y) for x, y in zip(a, b, strict=True))
    assert not a[1].equals(c[1])


def test_realistic_mix() -> None:
    households, members, relatives, filings = generate(20000, seed=11)
    assert households.height == 20000
    sizes = members.group_by("household_id").len().get_column("len")
    assert sizes.min() == 1
    assert sizes.max() == 5
    assert members.get_column("person_id").is_duplicated().sum() > 0  # people in two households
    assert members.get_column("death_date").is_not_null().sum() > 0
    assert households.get_column("status_dibao").sum() > 0
    assert households.get_column("request_type").drop_nulls().n_unique() == 2
    birthdays = members.filter(pl.col("birth_date") == dt.date(1959, 8, 1)).height
    assert birthdays > 0  # 60 on the decision date
    assert relatives.height > 0
    assert filings.height > 0


def test_all_formats_write(tmp_path: Path) -> None:
    for fmt in ("parquet", "csv", "jsonl"):
        paths = write(tmp_path / fmt, 300, seed=1, fmt=fmt)
        assert Path(paths["households"]).exists()
        assert Path(paths["relatives"]).exists()
    first = json.loads((tmp_path / "jsonl" / "households.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert set(first) >= {"household_id", "members", "assets", "status", "request"}


def test_cli_generates_and_screens(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "api", *args], capture_output=True, text=True, check=False, timeout=300
        )

    gen = run("fixtures", "caseload", "--households", "3000", "--seed", "9", "--out", str(tmp_path / "c"))
    assert gen.returncode == 0, gen.stderr
    out = tmp_path / "o"
    r = run(
        "screen",
        str(tmp_path / "c"),
        "--out",
        str(out),
        "--relatives",
        str(tmp_path / "c" / "relatives.csv"),
        "--filings",
        str(tmp_path / "c" / "filings.csv"),
        "--chunk-size",
        "1000",
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"rows_in": 3000, "decided": 3000, "rejected": 0, "out": str(out)}
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["findings"]["kin_registration_missing"] > 0
    assert summary["findings"]["duplicate_person"] > 0
    assert pl.read_parquet(out / "decisions.parquet").height == 3000
