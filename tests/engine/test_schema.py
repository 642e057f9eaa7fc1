"""The JSON Schemas editors use accept every bundled rule file and catch typos."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.conftest import FIXTURES, RULES

KINDS = {"programs": "program", "parameters": "parameters", "tests": "tests"}
FILES = sorted((folder, p) for folder in KINDS for p in (RULES / folder).glob("*.yaml"))


def _plain(path: Path) -> Any:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))

    def fix(v: Any) -> Any:
        if isinstance(v, dict):
            return {(k.isoformat() if isinstance(k, dt.date) else str(k)): fix(x) for k, x in v.items()}
        if isinstance(v, list):
            return [fix(x) for x in v]
        return v.isoformat() if isinstance(v, dt.date) else v

    return fix(data)


def _schema(kind: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((RULES / "schema" / f"{kind}.schema.json").read_text(encoding="utf-8"))
    return schema


@pytest.mark.parametrize(("folder", "path"), FILES, ids=[f"{f}/{p.name}" for f, p in FILES])
def test_bundled_files_validate(folder: str, path: Path) -> None:
    doc = _plain(path)
    kind = "record_type_tests" if folder == "tests" and "record_type" in doc else KINDS[folder]
    jsonschema.validate(doc, _schema(kind))


def test_schema_rejects_unknown_key() -> None:
    bad = _plain(FIXTURES / "rules_invalid" / "unknown_key" / "programs" / "zz_bad.yaml")
    with pytest.raises(jsonschema.ValidationError, match="whn"):
        jsonschema.validate(bad, _schema("program"))
