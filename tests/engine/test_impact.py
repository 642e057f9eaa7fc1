"""Impact of a rule change: checked against an independent computation, and the report
rendered in a real headless Chromium."""

from __future__ import annotations

import datetime as dt
import os
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


ARTIFACTS = Path(os.environ.get("JIUZHU_ARTIFACTS", Path(__file__).resolve().parents[2] / ".artifacts"))
_BOXES = """svg => {
  const box = e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  return {texts: [...svg.querySelectorAll('text')].map(t => [t.textContent, box(t)]),
          rects: [...svg.querySelectorAll('rect')].filter(r => r.getBoundingClientRect().width > 0).map(box)};
}"""


def _overlap(a: list[float], b: list[float]) -> bool:
    return a[0] < b[2] - 0.5 and b[0] < a[2] - 0.5 and a[1] < b[3] - 0.5 and b[1] < a[3] - 0.5


def _number(text: str) -> Decimal:
    return Decimal(text.replace(",", "").replace("+", "").strip() or "0")


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no Chromium here (.ci/run installs Debian's)")
def test_report_renders_in_chromium_with_the_budget_numbers(
    evaluator: Evaluator, caseload: Path, tmp_path: Path
) -> None:
    """The report in Debian's Chromium at 1366 px and printed on A4: the headline, the charts
    and the township tables carry budget.csv's numbers exactly; no chart label overlaps a bar
    or another label; screenshots of both are kept under .artifacts/."""
    from playwright.sync_api import sync_playwright

    head = Evaluator(with_parameter(evaluator.ruleset, "dibao.standard", "850", dt.date(2019, 7, 1)))
    impact(evaluator, head, caseload, tmp_path, today=dt.date(2019, 8, 1))
    budget = pl.read_csv(tmp_path / "budget.csv", infer_schema=False)
    totals = budget.filter(pl.col("township") == "合计 Total")
    monthly = sum((Decimal(v) for v in totals.get_column("amount_change")), Decimal(0))
    errors: list[str] = []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((tmp_path / "report.html").as_uri())
        heading = page.inner_text("h1")
        cards = {k: page.inner_text(f"#headline-{k} .v") for k in ("monthly-change", "yearly-change")}
        bars = page.eval_on_selector_all(
            "#chart-budget-dibao g.bar", "els => els.map(e => [e.dataset.group, e.dataset.series, e.dataset.value])"
        )
        towns = page.eval_on_selector_all(
            "#townships-dibao tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
        )
        distribution = page.eval_on_selector_all(
            "#chart-distribution g.bar", "els => els.map(e => [e.dataset.group, e.dataset.value])"
        )
        layouts = {"1366": page.eval_on_selector_all("svg", f"els => els.map({_BOXES})")}
        page.screenshot(path=str(ARTIFACTS / "impact-report-1366.png"), full_page=True)
        page.set_viewport_size({"width": 794, "height": 1123})  # A4 at 96 dpi, as printed
        page.emulate_media(media="print")
        layouts["a4"] = page.eval_on_selector_all("svg", f"els => els.map({_BOXES})")
        page.screenshot(path=str(ARTIFACTS / "impact-report-a4.png"), full_page=True)
        browser.close()
    assert errors == []
    assert "政策影响评估" in heading
    assert _number(cards["monthly-change"]) == monthly
    assert _number(cards["yearly-change"]) == monthly * 12
    charted = {(g, s): Decimal(v) for g, s, v in bars}
    dibao = budget.filter((pl.col("program") == "dibao") & (pl.col("township") != "合计 Total")).to_dicts()
    for row in dibao:
        paid = Decimal(row["amount_base"]) or Decimal(row["amount_head"])
        assert ((row["township"], "base") in charted) == bool(paid)
        if paid:
            assert charted[(row["township"], "base")] == Decimal(row["amount_base"])
            assert charted[(row["township"], "head")] == Decimal(row["amount_head"])
    tabled = {r[0]: r[1:] for r in towns}
    for row in budget.filter(pl.col("program") == "dibao").to_dicts():
        cells = tabled[row["township"]]
        assert [_number(c) for c in cells] == [
            Decimal(row[k])
            for k in (
                "households_base",
                "households_head",
                "people_base",
                "people_head",
                "amount_base",
                "amount_head",
                "amount_change",
            )
        ]
    assert distribution[-1][0].endswith("≥ 300 %")  # the open-ended bucket says so
    households = tables_to_households(evaluator.ruleset.record, *_tables(caseload))
    alive = [  # the distribution is over households with a counted member (per-capita income needs one)
        h
        for h in households
        if any(m.get("death_date") is None or m["death_date"] >= h["decision_date"] for m in h["members"])
    ]
    assert sum(int(v) for _, v in distribution) == len(alive) < len(households)
    for size, svgs in layouts.items():
        for svg in svgs:
            texts, rects = svg["texts"], svg["rects"]
            for i, (label, box) in enumerate(texts):
                for other, other_box in texts[i + 1 :]:
                    assert not _overlap(box, other_box), (size, label, other)
                for rect in rects:
                    assert not _overlap(box, rect), (size, label)


def _tables(folder: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    return pl.read_parquet(folder / "households.parquet"), pl.read_parquet(folder / "members.parquet")


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no Chromium here (.ci/run installs Debian's)")
def test_cli_prints_the_report_to_an_a4_pdf(caseload: Path, tmp_path: Path) -> None:
    import re
    import subprocess

    run = [sys.executable, "-m", "api", "impact", str(caseload), "--base", "rules", "--head", "rules"]
    r = subprocess.run(
        [*run, "--out", str(tmp_path), "--set", "dibao.standard=850@2019-07-01", "--date", "2019-08-01", "--pdf"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    pdf = (tmp_path / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF")
    boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([0-9.]+) ([0-9.]+)\s*\]", pdf)
    assert boxes  # every page is A4: 595 × 842 points
    assert all(abs(float(w) - 595.3) < 2 and abs(float(h) - 841.9) < 2 for w, h in boxes)
    assert not (tmp_path / "report.pdf.partial").exists()


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
