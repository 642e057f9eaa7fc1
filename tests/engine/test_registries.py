"""Registry CSVs are validated row by row; bad rows are reported, never dropped silently."""

from __future__ import annotations

import pytest

from engine import InputError, Registries, Ruleset, parse_registry_csv
from tests.conftest import FIXTURES


def test_bundled_registries_load(ruleset: Ruleset) -> None:
    regs = Registries.from_files(
        ruleset,
        {"relatives": FIXTURES / "registries" / "relatives.csv", "filings": FIXTURES / "registries" / "filings.csv"},
    )
    assert "320684196510100370" in regs.by_name["relatives"].keys
    assert regs.by_name["filings"].keys == frozenset({"HM-2019-000113", "HM-2018-000077"})
    assert regs.versions()["relatives"] != "empty"
    assert regs.versions()["caseload_duplicates"] == "empty"


def test_bad_rows_are_rejected_with_line_and_reason(ruleset: Ruleset) -> None:
    text = (
        "relative_person_id,official_id,official_name,position,relation\n"
        "320684196510100370,O-1,王,专干,spouse\n"
        "320684196510100371,O-2,李,专干,spouse\n"
        ",O-3,张,专干,child\n"
        "320684196510100370,O-4,赵,专干,cousin\n"
    )
    reg = parse_registry_csv(ruleset.registries["relatives"], text)
    assert reg.keys == frozenset({"320684196510100370"})
    assert reg.rows == 4
    assert [(r.line, r.field) for r in reg.rejects] == [
        (3, "relative_person_id"),
        (4, "relative_person_id"),
        (5, "relation"),
    ]
    assert "check digit" in reg.rejects[0].reason
    assert "must be one of spouse" in reg.rejects[2].reason


def test_missing_column_is_an_error(ruleset: Ruleset) -> None:
    with pytest.raises(InputError, match="filed_on: column missing"):
        parse_registry_csv(ruleset.registries["filings"], "household_id\nHM-1\n")
