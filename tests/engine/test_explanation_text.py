"""The explanation an officer reads aloud: golden texts for every sample household, in Chinese
and English, and no name or code of the rule files in the Chinese.

Regenerate the goldens after an intended change of wording or rules with
``UPDATE_GOLDENS=1 .venv/bin/pytest tests/engine/test_explanation_text.py`` and read the diff.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from engine import Evaluator, Registries, Ruleset, SubjectEvaluator, explain_subject, subject_registries
from engine.evaluator import ClosureEvaluator
from engine.record import FieldSpec
from tests.conftest import FIXTURES

GOLDENS = Path(__file__).resolve().parent.parent / "goldens" / "explanations"
UPDATE = os.environ.get("UPDATE_GOLDENS") == "1"
HOUSEHOLDS = [json.loads(line) for line in (FIXTURES / "households.jsonl").read_text(encoding="utf-8").splitlines()]
CANDIDATES = [json.loads(line) for line in (FIXTURES / "candidates.jsonl").read_text(encoding="utf-8").splitlines()]
# an ASCII word in Chinese text: a field name or a code would be one
_WORD = re.compile(r"(?<![/A-Za-z0-9_.])[A-Za-z_][A-Za-z0-9_.]*")


@pytest.fixture(scope="module")
def decided(ruleset: Ruleset) -> dict[str, Any]:
    """Every sample household decided once, at its own date, with the sample registries and
    the file's repeated resident IDs (as `jiuzhu check FILE.jsonl` decides them)."""
    registries = Registries.from_files(
        ruleset,
        {
            "relatives": str(FIXTURES / "registries" / "relatives.csv"),
            "filings": str(FIXTURES / "registries" / "filings.csv"),
        },
    )
    ev = Evaluator(ruleset, registries)
    seen: dict[str, int] = {}
    for h in HOUSEHOLDS:
        for m in h["members"]:
            seen[m["person_id"]] = seen.get(m["person_id"], 0) + 1
    duplicates = frozenset(p for p, k in seen.items() if k > 1)
    return {h["household_id"]: ev.decide(h, duplicates=duplicates) for h in HOUSEHOLDS}


def _forbidden(ruleset: Ruleset) -> set[str]:
    """The names and codes of record.yaml and of the decision: field names (each part of a
    dotted one and the whole), enumeration values, decision fields and the codes they take."""
    out: set[str] = set()

    def walk(specs: list[FieldSpec]) -> None:
        for s in specs:
            out.update({s.name, *s.name.split(".")})
            out.update(s.values if s.kind == "enum" else ())
            out.update(v for vs in (s.values_by or ("", {}))[1].values() for v in vs)
            walk(s.fields)

    walk(ruleset.record.household)
    walk(ruleset.record.member)
    out.update(ruleset.decision_fields)
    for spec in ruleset.labels.values():
        out.update(spec.get("values") or ())
    out.update(d.name for d in ruleset.plan.definitions.values())  # rule ids, parameter names, named values
    return out


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text))


@pytest.mark.parametrize("hid", [h["household_id"] for h in HOUSEHOLDS])
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_explanation_matches_its_golden(decided: dict[str, Any], hid: str, lang: str) -> None:
    # the version names the rule files' digest: any edit changes it, so it is not compared
    d = decided[hid]
    text = d.explain_text(lang).replace(d.ruleset_version, "<ruleset>") + "\n"
    path = GOLDENS / f"{hid}.{lang}.txt"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no golden {path.name}: run with UPDATE_GOLDENS=1"
    assert text == path.read_text(encoding="utf-8")


def test_chinese_explanations_carry_no_names_or_codes(decided: dict[str, Any], ruleset: Ruleset) -> None:
    forbidden = _forbidden(ruleset)
    assert {"labor_capacity", "partial", "dibao_status", "single_person", "emergency", "person_id"} <= forbidden
    leaks = {hid: sorted(_words(d.explain_text("zh")) & forbidden) for hid, d in decided.items()}
    assert {hid: words for hid, words in leaks.items() if words} == {}


def test_chinese_candidate_explanations_carry_no_names_or_codes(ruleset: Ruleset) -> None:
    spec = ruleset.record_types["candidate"]
    registries = subject_registries(
        spec,
        {n: str(FIXTURES / "registries" / f"{n}.csv") for n in ("review_records", "review_returns")},
    )
    ev = SubjectEvaluator(spec, registries, ruleset.ruleset_version)
    forbidden = {f.name for f in spec.fields} | set(spec.category_ids) | set(spec.decision)
    forbidden |= {v for f in spec.fields for v in f.type.values}
    forbidden |= {d for p in spec.parameters.values() for v in p.regions.get("*", ()) for d in _codes(v)}
    leaks = {c[spec.role("id")]: sorted(_words(explain_subject(ev.decide(c), ("zh",))) & forbidden) for c in CANDIDATES}
    assert {cid: words for cid, words in leaks.items() if words} == {}


def _codes(version: Any) -> set[str]:
    value = getattr(version, "value", None)
    return {str(v) for v in value.values()} if isinstance(value, dict) else set()


def test_the_officer_text_is_the_same_from_both_backends(ruleset: Ruleset) -> None:
    fast, reference = Evaluator(ruleset), ClosureEvaluator(ruleset)
    for h in HOUSEHOLDS:
        for lang in ("zh", "en"):
            assert fast.decide(h).explain_text(lang) == reference.decide(h).explain_text(lang)


def test_person_findings_name_the_person(ruleset: Ruleset, evaluator: Evaluator) -> None:
    """A member who died yet is still paid for, and a resident ID in two households, are named
    by name and masked ID."""
    h = next(h for h in HOUSEHOLDS if h["household_id"] == "HM-2019-000101")
    h = json.loads(json.dumps(h))
    died, twice = h["members"]
    died.update(name="张大山", death_date="2019-01-05")
    twice["name"] = "李小红"
    text = evaluator.decide(h, duplicates=frozenset({twice["person_id"]})).explain_text("zh")
    finding = next(line for line in text.splitlines() if "认定日前已死亡的成员" in line)
    assert f"张大山（身份证号 {died['person_id'][:4]}**********{died['person_id'][-4:]}）" in finding
    duplicate = next(line for line in text.splitlines() if "身份证号同时出现在其他家庭" in line)
    assert "李小红（身份证号 " in duplicate
    assert twice["person_id"] not in text
