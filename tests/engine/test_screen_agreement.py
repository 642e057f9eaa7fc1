"""One validation through `screen`: an awkward caseload given as JSON Lines and as Parquet
tables, and each household through `check`'s path (`RecordSchema.validate` with the file's
repeated IDs, then `Evaluator.decide`), gets the same verdict, fields and reasons per
household; rows in = decided + rejected."""

from __future__ import annotations

import copy
import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import Evaluator, InputError
from engine.types import BLANKS, check_resident_id, resident_id_check_digit
from engine.validation.byte_checks import canonical_text, resident_id_ok
from engine.validation.messages import say
from engine.vector.screen import screen
from tests.conftest import FIXTURES
from tests.engine.test_screen import flat_member
from tests.engine.test_validation_property import AWKWARD, DELETE, GROUP_KEYS, MEMBER_KEYS

TODAY = dt.date(2020, 1, 1)
# what a table cell can hold: scalars; keys a table names as JSON does (a group's unknown
# key is `request_tyep` in a table, `request.tyep` in JSON; `~` columns are the tables' own)
VALUES = [v for v in AWKWARD if not isinstance(v, list | dict)] + [DELETE]
TOP_KEYS = ["region", "township", "decision_date", "local_hukou", "nonsense", "Region"]
GROUPS = {g: [k for k in keys if k not in ("house", "dibao_amount", "tyep")] for g, keys in GROUP_KEYS.items()}
MEMBER = [k for k in MEMBER_KEYS if k not in ("household_id", "~row")]
Verdict = tuple[str, frozenset[tuple[str, str]]]


def _resident_id(parts: tuple[str, int, int, int, str]) -> str:
    year, month, day, seq, check = parts
    first = f"320684{year}{month:02d}{day:02d}{seq:03d}"
    return first + (check or resident_id_check_digit(first))


def _base() -> list[dict[str, Any]]:
    return [json.loads(line) for line in (FIXTURES / "households.jsonl").read_text(encoding="utf-8").splitlines()]


def awkward_caseload(seed: int, n: int = 60) -> list[dict[str, Any]]:
    """Fixture households under new IDs, most with one to three awkward values (a value
    from the property test's list put at, or deleted from, a top, group or member key,
    a person twice, a birth after the decision date), and one ID given twice."""
    rng = random.Random(seed)
    base = _base()
    out = []
    for i in range(n):
        h = copy.deepcopy(rng.choice(base))
        h["household_id"] = f"AW-{seed}-{i:03d}"
        for _ in range(rng.choice([0, 1, 1, 2, 3])):
            value = rng.choice(VALUES)
            where = rng.choice(["top", "group", "member", "member", "special"])
            if where == "top":
                _put(h, rng.choice(TOP_KEYS), value)
            elif where == "group":
                group = rng.choice(list(GROUPS))
                if not isinstance(h.get(group), dict):
                    h[group] = {}
                _put(h[group], rng.choice(GROUPS[group]), value)
            elif where == "member":
                _put(rng.choice(h["members"]), rng.choice(MEMBER), value)
            elif rng.random() < 0.5:
                h["members"].append(copy.deepcopy(h["members"][0]))
            else:
                h["members"][-1]["birth_date"] = "2099-01-01"
        out.append(h)
    # the same household twice: identical, so a table (members linked by ID) holds its members once
    out.insert(n // 2, copy.deepcopy(out[3]))
    return out


def _put(obj: dict[str, Any], key: str, value: Any) -> None:
    if value is DELETE:
        obj.pop(key, None)
    else:
        obj[key] = copy.deepcopy(value)


def _cell(v: Any) -> str | None:
    """A value as an export's text cell: JSON's own text for numbers and booleans."""
    return v if v is None or isinstance(v, str) else json.dumps(v)


def as_tables(households: list[dict[str, Any]], folder: Path) -> Path:
    """Households and members Parquet tables of text cells (a repeated ID's members once)."""
    rows, members, seen = [], [], set()
    for h in households:
        row = {k: _cell(v) for k, v in h.items() if k not in ("members", *GROUP_KEYS)}
        for group in GROUP_KEYS:
            row |= {f"{group}_{k}": _cell(v) for k, v in (h.get(group) or {}).items()}
        rows.append(row)
        if h["household_id"] not in seen:
            members += [
                {"household_id": h["household_id"], **{k: _cell(v) for k, v in flat_member(m).items()}}
                for m in h["members"]
            ]
        seen.add(h["household_id"])
    folder.mkdir()
    for name, table in (("households", rows), ("members", members)):
        columns = list(dict.fromkeys(k for r in table for k in r))
        pl.DataFrame(
            {c: [r.get(c) for r in table] for c in columns}, schema=dict.fromkeys(columns, pl.Utf8)
        ).write_parquet(folder / f"{name}.parquet")
    return folder


def by_check(evaluator: Evaluator, households: list[dict[str, Any]]) -> dict[str, Verdict]:
    """Each household as `check` reads a .jsonl file: repeated IDs rejected, each copy."""
    schema = evaluator.ruleset.record
    repeated = schema.repeated_ids(households)
    out: dict[str, Verdict] = {}
    for h in households:
        raw = json.loads(json.dumps(h))
        try:
            schema.validate(raw, TODAY, repeated=repeated)
            evaluator.decide(raw, today=TODAY)
            verdict: Verdict = ("decided", frozenset())
        except InputError as exc:
            verdict = ("rejected", frozenset((p.field, p.message) for p in exc.problems))
        hid = h["household_id"]
        if hid in out:  # a repeated ID: the reasons of every copy
            verdict = ("rejected", out[hid][1] | verdict[1])
        out[hid] = verdict
    return out


def by_screen(evaluator: Evaluator, caseload: Path, out: Path, **options: Any) -> tuple[dict[str, Verdict], Any]:
    summary = screen(evaluator, caseload, out, today=TODAY, **options)
    decided = pl.read_parquet(out / "decisions.parquet").get_column("household_id").to_list()
    verdicts: dict[str, Verdict] = {hid: ("decided", frozenset()) for hid in decided}
    for r in pl.read_parquet(out / "rejects.parquet").iter_rows(named=True):
        reasons = verdicts.get(r["household_id"], ("rejected", frozenset()))[1]
        verdicts[r["household_id"]] = ("rejected", reasons | {(r["field"], r["reason"])})
    assert len(decided) == len(set(decided)), "a household is decided once"
    assert summary["rows_in"] == summary["decided"] + summary["rejected"]
    return verdicts, summary


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_jsonl_tables_and_check_agree(evaluator: Evaluator, tmp_path: Path, seed: int) -> None:
    households = awkward_caseload(seed)
    src = tmp_path / "c.jsonl"
    src.write_text("".join(json.dumps(h, ensure_ascii=False) + "\n" for h in households), encoding="utf-8")
    tables = as_tables(households, tmp_path / "tables")
    want = by_check(evaluator, households)
    from_jsonl, s1 = by_screen(evaluator, src, tmp_path / "a", chunk_size=16)
    from_tables, s2 = by_screen(evaluator, tables, tmp_path / "b", chunk_size=16)
    assert from_jsonl == want
    assert from_tables == want
    assert s1["rows_in"] == s2["rows_in"] == len(households)
    assert s1["decided"] == s2["decided"] == sum(v[0] == "decided" for v in want.values())
    assert ("household_id", say("repeated_household")) in want[households[3]["household_id"]][1]
    assert 0 < s1["decided"] < len(households)
    left = pl.read_parquet(tmp_path / "a" / "decisions.parquet").sort("household_id")
    assert left.equals(pl.read_parquet(tmp_path / "b" / "decisions.parquet").sort("household_id"))


def test_jsonl_rows_in_are_decided_plus_rejected(
    evaluator: Evaluator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Good rows, a household of the wrong shape, a broken line, a repeated ID (in two
    batches), an unknown field and an unknown region, converted in batches of 4 so the
    parts differ in their columns (`~shape`, the unknown field)."""
    from engine.vector.screen import _Screening

    convert = _Screening._jsonl
    monkeypatch.setattr(_Screening, "_jsonl", lambda self: convert(self, batch=4))
    lines = [json.dumps(h, ensure_ascii=False) for h in _base()]
    shaped = json.loads(lines[1]) | {"members": "x"}
    lines[1] = json.dumps(shaped, ensure_ascii=False)
    lines[6] = json.dumps(json.loads(lines[6]) | {"nickname": "x"}, ensure_ascii=False)
    lines[9] = json.dumps(json.loads(lines[9]) | {"region": "999999"}, ensure_ascii=False)
    lines.insert(5, "{broken")
    lines.append(lines[2])  # the same household again, in another batch
    src = tmp_path / "c.jsonl"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    verdicts, summary = by_screen(evaluator, src, tmp_path / "out", chunk_size=5)
    assert summary["rows_in"] == len(lines)
    assert (summary["decided"], summary["rejected"]) == (len(lines) - 6, 6)
    assert summary["member_rows_without_household"] == 0
    assert verdicts[shaped["household_id"]] == ("rejected", frozenset({("members", say("members"))}))
    assert verdicts["(line 6)"][0] == "rejected"
    assert ("household_id", say("repeated_household")) in verdicts[json.loads(lines[2])["household_id"]][1]
    assert {f for f, _ in verdicts[json.loads(lines[7])["household_id"]][1]} == {"nickname"}
    assert {f for f, _ in verdicts[json.loads(lines[10])["household_id"]][1]} == {"region"}
    rejects = pl.read_parquet(tmp_path / "out" / "rejects.parquet")
    assert rejects.filter(pl.col("household_id") == json.loads(lines[2])["household_id"]).height == 2


@given(
    st.lists(
        st.one_of(
            st.tuples(
                st.sampled_from(["0000", "1900", "2000", "2019", "2100"]),
                st.integers(0, 13),
                st.integers(0, 32),
                st.integers(0, 999),
                st.sampled_from(["", *"0123456789Xx"]),
            ).map(_resident_id),
            st.text(alphabet="0123456789Xx \u3000a", max_size=20),
            st.none(),
        ),
        max_size=30,
    )
)
def test_byte_level_checks_agree_with_the_canonical_ones(cells: list[str | None]) -> None:
    """Trimming on the bytes and the resident-ID check on a byte matrix, against the
    row validator's own functions, on nulls, blanks, lower-case x and impossible dates."""
    column = pl.Series(cells, dtype=pl.Utf8)
    text = canonical_text(column)
    want = [None if c is None or not c.strip(BLANKS) else c.strip(BLANKS) for c in cells]
    assert text.to_list() == want
    ok = resident_id_ok(text)
    assert ok.tolist() == [t is not None and check_resident_id(t.upper()) is None for t in want]
