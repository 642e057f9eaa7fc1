"""The command line speaks the reader's language: `--lang`, else LANG, else Chinese."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, RULES


def _run(*args: str, lang: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LC_ALL", "LC_MESSAGES")} | {"LANG": lang}
    return subprocess.run(
        [sys.executable, "-m", "api", *args], capture_output=True, text=True, check=False, timeout=120, env=env
    )


@pytest.fixture(scope="module")
def bad_household(tmp_path_factory: pytest.TempPathFactory) -> Path:
    h = json.loads((FIXTURES / "households" / "HM-2019-000101.json").read_text(encoding="utf-8"))
    h["members"][0]["monthly_income"] = "-3"
    path = tmp_path_factory.mktemp("lang") / "bad.json"
    path.write_text(json.dumps(h, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("args", "lang", "said"),
    [
        ((), "C.UTF-8", "不得为负（实为 '-3'）"),  # no language in the environment: Chinese
        (("--lang", "en"), "zh_CN.UTF-8", "must not be negative (got '-3')"),
    ],
)
def test_a_rejected_household_in_the_readers_language(
    bad_household: Path, args: tuple[str, ...], lang: str, said: str
) -> None:
    r = _run(*args, "check", str(bad_household), lang=lang)
    assert r.returncode == 3
    assert f"members[0].monthly_income: {said}" in r.stderr
    # the JSON keeps the stable English message for machines
    assert json.loads(r.stdout)["errors"][0]["message"] == "must not be negative (got '-3')"


def test_lint_in_chinese_and_in_english(tmp_path: Path) -> None:
    bad = tmp_path / "rules"
    shutil.copytree(RULES, bad)
    shutil.copy(FIXTURES / "rules_invalid" / "duplicate_key" / "programs" / "zz_bad.yaml", bad / "programs")
    zh = _run("rules", "lint", str(bad), lang="zh_CN.UTF-8")
    en = _run("rules", "lint", str(bad), lang="en_GB.UTF-8")  # English from the environment
    assert zh.returncode == en.returncode == 2
    assert "出现两次" in zh.stdout
    assert "（键重复）" in zh.stdout
    assert "共 1 个问题" in zh.stderr
    assert "appears twice" in en.stdout
    assert "1 problem(s)" in en.stderr
