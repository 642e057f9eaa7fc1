"""Impact of a rule change: checked against an independent computation, and the report
rendered in a real headless Chromium."""

from __future__ import annotations

import datetime as dt
import shutil
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from engine import Evaluator, InputError, Ruleset
from engine.vector.caseload import tables_to_households
from engine.vector.impact import impact, with_parameter
from fixtures import oracle
from fixtures.caseload import generate

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def caseload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("impact")
    hh, mm, _, _ = generate(1500, seed=60)
    hh = hh.filter(pl.col("region") == "320684")
    mm = mm.join(hh.select("household_id"), on="household_id", how="semi")
    hh.write_parquet(folder / "households.parquet")
    mm.write_parquet(folder / "members.parquet")
    return folder


def _expected(ruleset: Ruleset, folder: Path, standard_2019: int) -> list[dict[str, Any]]:
    hh, mm = pl.read_parquet(folder / "households.parquet"), pl.read_parquet(folder / "members.parquet")
    saved = list(oracle.STANDARD)
    oracle.STANDARD[1] = (dt.date(2019, 7, 1), standard_2019)
    try:
        out = []
        for h in tables_to_households(ruleset.record, hh, mm):
            d = oracle.decide(h)
            d["township"] = h["township"]
            d["tekun_amount"] = d["tekun_amount"]
            out.append(d)
        return out
    finally:
        oracle.STANDARD[:] = saved


def test_raising_the_standard_by_60(evaluator: Evaluator, caseload: Path, tmp_path: Path) -> None:
    rs = evaluator.ruleset
    head = Evaluator(with_parameter(rs, "dibao.standard", "850", dt.date(2019, 7, 1)))
    summary = impact(evaluator, head, caseload, tmp_path, today=dt.date(2019, 8, 1))
    base_exp, head_exp = _expected(rs, caseload, 79000), _expected(rs, caseload, 85000)
    transitions = pl.read_csv(tmp_path / "transitions.csv")
    for program in ("dibao_status", "low_income_status", "ta_status"):
        want = Counter((b[program], h[program]) for b, h in zip(base_exp, head_exp, strict=True))
        got = {
            (r["base"], r["head"]): r["households"] for r in transitions.filter(pl.col("program") == program).to_dicts()
        }
        assert got == dict(want), program
    budget = pl.read_csv(tmp_path / "budget.csv", schema_overrides={"amount_base": pl.Utf8, "amount_head": pl.Utf8})
    for program, field in (("dibao", "dibao_amount"), ("tekun", "tekun_amount"), ("ta", "ta_amount")):
        total = budget.filter((pl.col("program") == program) & (pl.col("township") == "合计 Total")).to_dicts()[0]
        assert Decimal(total["amount_base"]) == sum(Decimal(d[field]) for d in base_exp)
        assert Decimal(total["amount_head"]) == sum(Decimal(d[field]) for d in head_exp)
    town = base_exp[0]["township"]
    row = budget.filter((pl.col("program") == "dibao") & (pl.col("township") == town)).to_dicts()[0]
    assert Decimal(row["amount_head"]) == sum(Decimal(d["dibao_amount"]) for d in head_exp if d["township"] == town)
    changes = pl.read_csv(tmp_path / "changes.csv", infer_schema=False)
    assert summary["changed"] == changes.height > 0
    assert changes.get_column("parameters_changed").str.contains("dibao.standard:790.00->850.00").all()


def test_identical_rules_change_nothing(evaluator: Evaluator, caseload: Path, tmp_path: Path) -> None:
    summary = impact(evaluator, evaluator, caseload, tmp_path, today=dt.date(2019, 8, 1))
    assert summary["changed"] == 0
    transitions = pl.read_csv(tmp_path / "transitions.csv")
    assert (transitions.get_column("base") == transitions.get_column("head")).all()
    assert pl.read_csv(tmp_path / "budget.csv").get_column("amount_change").abs().sum() == 0
    assert pl.read_csv(tmp_path / "changes.csv").height == 0


def test_bad_what_if_names_the_parameter(ruleset: Ruleset) -> None:
    with pytest.raises(InputError, match=r"did you mean `dibao\.standard`"):
        with_parameter(ruleset, "dibao.standad", "850", dt.date(2019, 7, 1))
    with pytest.raises(InputError, match=r"dibao\.standard: must be an amount"):
        with_parameter(ruleset, "dibao.standard", "lots", dt.date(2019, 7, 1))


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no Chromium here (.ci/run installs Debian's)")
def test_report_renders_in_chromium_with_the_budget_numbers(
    evaluator: Evaluator, caseload: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    head = Evaluator(with_parameter(evaluator.ruleset, "dibao.standard", "850", dt.date(2019, 7, 1)))
    impact(evaluator, head, caseload, tmp_path, today=dt.date(2019, 8, 1))
    budget = pl.read_csv(tmp_path / "budget.csv", schema_overrides={"amount_base": pl.Utf8, "amount_head": pl.Utf8})
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        page = browser.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((tmp_path / "report.html").as_uri())
        bars = page.eval_on_selector_all(
            "#chart-budget g.bar", "els => els.map(e => [e.dataset.group, e.dataset.series, e.dataset.value])"
        )
        heading = page.inner_text("h1")
        browser.close()
    assert errors == []
    assert "政策影响评估" in heading
    charted = {(g, s): Decimal(v) for g, s, v in bars}
    for row in budget.filter((pl.col("program") == "dibao") & (pl.col("township") != "合计 Total")).to_dicts():
        assert charted[(row["township"], "base")] == Decimal(row["amount_base"])
        assert charted[(row["township"], "head")] == Decimal(row["amount_head"])


def test_cli(caseload: Path, tmp_path: Path) -> None:
    import subprocess

    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "api",
            "impact",
            str(caseload),
            "--base",
            "rules",
            "--head",
            "rules",
            "--out",
            str(tmp_path),
            "--set",
            "dibao.standard=850@2019-07-01",
            "--date",
            "2019-08-01",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "report.html").exists()
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "api",
            "impact",
            str(caseload),
            "--base",
            "rules",
            "--head",
            "rules",
            "--out",
            str(tmp_path),
            "--set",
            "dibao.standard=850",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 3
    assert "PARAM=VALUE@YYYY-MM-DD" in bad.stderr
