"""`jiuzhu check`, `jiuzhu screen` and `jiuzhu rules test` on candidate records, as a real process."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import FIXTURES, RULES

REGS = [
    "--registry",
    f"review_records={FIXTURES / 'registries' / 'review_records.csv'}",
    "--registry",
    f"review_returns={FIXTURES / 'registries' / 'review_returns.csv'}",
]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api", *args], capture_output=True, text=True, check=False, timeout=120
    )


def test_check_candidates_jsonl() -> None:
    r = _run("check", str(FIXTURES / "candidates.jsonl"), *REGS)
    assert r.returncode == 0, r.stderr
    out = {d["candidate_id"]: d for d in map(json.loads, r.stdout.splitlines())}
    assert (out["HM-2019-C-0002"]["review_status"], out["HM-2019-C-0002"]["action"]) == ("disqualified", "exclude")
    assert out["HM-2019-C-0004"]["missing_departments"] == ["court"]
    assert out["HM-2019-M-0001"]["action"] == "office_terminated"
    assert out["HM-2019-M-0002"]["action"] == "start_procedure"
    reasons = out["HM-2021-C-0001"]["reasons"]
    assert [x["id"] for x in reasons] == ["candidate.negative.gang_or_tyrant"]  # land violation rectified on D
    assert reasons[0]["records"][0]["department"] == "politics_law"
    assert reasons[0]["legal_basis"]


def test_check_rejects_a_bad_line_and_goes_on(tmp_path: Path) -> None:
    lines = (FIXTURES / "candidates.jsonl").read_text(encoding="utf-8").splitlines()
    bad = {**json.loads(lines[0]), "candidate_id": "X-1", "term_start": "2019-01-01", "subject": "sitting_member"}
    bad["term_start"] = "2019-12-01"
    path = tmp_path / "c.jsonl"
    deep = '{"candidate_id": "D", "x": ' + "[" * 5000 + "]" * 5000 + "}"
    path.write_text("\n".join([lines[1], json.dumps(bad), "{not json", deep]) + "\n", encoding="utf-8")
    r = _run("check", str(path), *REGS)
    assert r.returncode == 3
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert rows[0]["candidate_id"] == "HM-2019-C-0002"
    assert rows[1]["rejected"]
    assert rows[1]["errors"][0]["field"] == "term_start"
    assert rows[2]["errors"][0]["field"] == "(json)"
    assert rows[3]["errors"][0]["field"] == "(json)"  # too deep: refused before anything recurses


def test_check_explain_in_chinese() -> None:
    r = _run("check", str(FIXTURES / "candidates.jsonl"), *REGS, "--explain")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("村(居)委会换届候选人资格联审 HM-2019-C-0001")


def test_screen_a_candidates_table(tmp_path: Path) -> None:
    rows = [json.loads(x) for x in (FIXTURES / "candidates.jsonl").read_text(encoding="utf-8").splitlines()]
    rows.append({**rows[0]})  # a repeated id rejects every copy
    folder = tmp_path / "in"
    folder.mkdir()
    with (folder / "candidates.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        for row in rows:
            w.writerow({k: "" if v is None else str(v).lower() if isinstance(v, bool) else v for k, v in row.items()})
    r = _run("screen", str(folder), "--out", str(tmp_path / "out"), "--format", "csv", *REGS)
    assert r.returncode == 0, r.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert (summary["rows"], summary["decided"], summary["rejected"]) == (9, 7, 2)
    decided = list(csv.DictReader((tmp_path / "out" / "decisions.csv").read_text(encoding="utf-8").splitlines()))
    by_id = {d["candidate_id"]: d for d in decided}
    assert by_id["HM-2019-C-0004"]["missing_departments"] == "court"
    assert by_id["HM-2019-C-0004"]["recheck_required"] == "true"
    rejects = list(csv.DictReader((tmp_path / "out" / "rejects.csv").read_text(encoding="utf-8").splitlines()))
    assert {r["field"] for r in rejects} == {"candidate_id"}


def test_rules_test_runs_candidate_tests() -> None:
    r = _run("rules", "test", str(RULES))
    assert r.returncode == 0, r.stdout + r.stderr
    passed = int(r.stdout.strip().splitlines()[-1].split()[0])
    assert passed >= 40 + 1
