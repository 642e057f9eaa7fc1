"""One validation: for awkward households, the row validator (`check`, the API, the monitor)
and the column validator (`screen`, impact) accept or reject the same households, with the
same fields and reasons, and parse accepted values identically."""

from __future__ import annotations

import copy
import datetime as dt
import json
from decimal import Decimal
from functools import cache
from typing import Any

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import InputError, load
from engine.record import RecordSchema
from engine.types import BadValue, value_text
from engine.vector.caseload import jsonl_to_tables, validate_frames
from tests.conftest import RULES
from tests.strategies import ability_assessments, households

TODAY = dt.date(2020, 1, 1)
# ("ok", household values, member values) or ("rejected", {(field, reason), ...})
Answer = tuple[Any, ...]


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, str) else value


def by_row(schema: RecordSchema, obj: Any, today: dt.date, *, decimals: bool = False) -> Answer:
    """As `check` and the API read it: the JSON text parsed, floats as float (or Decimal)."""
    raw = json.loads(json.dumps(obj), parse_float=Decimal) if decimals else json.loads(json.dumps(obj))
    try:
        hh, members = schema.validate(raw, today)
    except InputError as exc:
        return ("rejected", {(p.field, p.message) for p in exc.problems})
    money = _money_keys(schema)
    return ("ok", _fen(hh, money[0]), [_fen(m, money[1]) for m in members])


def by_columns(schema: RecordSchema, obj: Any, today: dt.date) -> Answer:
    """As `screen` reads a JSON Lines caseload: flattened to tables, validated by columns."""
    hh, mm, bad = jsonl_to_tables([json.dumps(obj)], schema)
    h, m, rejects = validate_frames(schema, hh, mm, today)
    rejects = pl.concat([bad, rejects])
    if rejects.height:
        assert h.height == 0, "a household is either decided or rejected"
        return ("rejected", {(r["field"], r["reason"]) for r in rejects.iter_rows(named=True)})
    assert h.height == 1
    row = {k: _plain(v) for k, v in h.row(0, named=True).items()}
    members = [{k: _plain(v) for k, v in r.items() if k != "_h"} for r in m.iter_rows(named=True)]
    return ("ok", row, members)


def _money_keys(schema: RecordSchema) -> tuple[set[str], set[str]]:
    hh = {s.name for s in schema.household if s.kind == "money"}
    hh |= {f.name for s in schema.household if s.kind == "group" for f in s.fields if f.kind == "money"}
    member = {s.name for s in schema.member if s.kind == "money"}
    # the money inside a member's objects (`child.current_allowance`), at any depth
    member |= {
        f.name for s in schema.member if s.kind == "group" for g in s.groups() for f in g.fields if f.kind == "money"
    }
    return hh, member


def _fen(values: dict[str, Any], money: set[str]) -> dict[str, Any]:
    """Money as integer fen, the column validator's form."""
    return {k: (int(v * 100) if k in money and v is not None else v) for k, v in values.items()}


AWKWARD: list[Any] = [
    None, "", "  ", " x ", "TRUE", "true", "False", True, False, 0, 1, -1, 3, 51, 101, "3", " 3 ", "3.0", 3.5,
    100.0, "1e2", "-0", "007", "+7", 10**20, -(10**20), "99999999999999999999", "999999999999.99",
    "1000000000000", 10**12, "0000000000001.50", "12.345", "12.3", " 12.30 ", "-5.00", 12.345, 0.1,
    [], {}, [1], {"a": 1}, "2019-02-30", "2019-2-3", "0000-01-01", "20190801", "2019-08-01", "2030-01-01",
    "1900-01-01", "٢٠١٩-٠٨-٠١", "fire", "medical", "emergency", "expenditure", "head", "sever", " none ",
    "320684195001010014", "32068419511010057x", "320684196803120010", "320684190002300011", "x" * 18,
    "999999", "320681", "2010-01-01", "2018-07-01", "\u3000head\u3000",
    # strict dates, sane years, short texts without control characters
    "2019-W31-1", "19500101", "9999-12-31", "1899-12-31", "2100-12-31", "2101-01-01", "a\x00b", "x\x85y",
    "\tab\x1f", "x" * 200, "x" * 201, "名" * 201, "a\u2028b",
]  # fmt: skip

HOUSEHOLD_KEYS = ["household_id", "region", "township", "decision_date", "local_hukou", "members", "assets",
                  "status", "request", "nonsense", "asets", "Region", "~row", "~group:request", "~shape"]  # fmt: skip
GROUP_KEYS = {
    "assets": ["financial_assets", "non_exempt_vehicles", "houses", "commercial_property", "registered_business",
               "house"],
    "status": ["dibao", "low_income", "tekun", "illness_expenditure", "registered_poor", "dibao_monthly_amount",
               "last_review_date", "dibao_amount"],
    "request": ["type", "cause", "tier", "deceased_in_event", "out_of_pocket_12m", "tyep"],
}  # fmt: skip
MEMBER_KEYS = ["person_id", "name", "relation", "birth_date", "monthly_income", "labor_capacity", "disability",
               "serious_illness", "employed_recently", "empty_nest", "entitled_veteran_family", "fixed_income",
               "has_supporter", "support_mode", "enrolling_in_school", "death_date", "monthy_income", "household_id",
               "~row"]  # fmt: skip
# a member's object fields (DOMAIN-2.md §9.1): (path inside the member, keys to put there)
MEMBER_OBJECT_KEYS = {
    (): ["ability_assessment"],
    ("ability_assessment",): ["assessed_on", "adl", "mental", "sensory", "social", "mental_illness_diagnosed",
                              "risk_events_30d", "asessed_on", "~row"],
    ("ability_assessment", "adl"): ["feeding", "bathing", "stairs", "walking", "feding"],
    ("ability_assessment", "sensory"): ["consciousness", "vision", "hearing", "communication"],
    ("ability_assessment", "social"): ["daily_living", "interaction"],
    ("ability_assessment", "risk_events_30d"): ["falls", "other"],
}  # fmt: skip
OBJECT_VALUES: list[Any] = [
    None,
    {},
    0,
    2,
    3,
    5,
    10,
    15,
    "5",
    " 10 ",
    -1,
    4,
    True,
    "2019-07-01",
    "2030-01-01",
    [],
    {"a": 1},
]
DELETE = object()


@st.composite
def awkward_households(draw: st.DrawFn) -> dict[str, Any]:
    h: dict[str, Any] = copy.deepcopy(draw(households()))
    for _ in range(draw(st.integers(1, 3))):
        value = draw(st.sampled_from([*AWKWARD, DELETE]))
        where = draw(st.sampled_from(["top", "group", "member", "member", "special", "object", "object"]))
        if where == "top":
            key = draw(st.sampled_from(HOUSEHOLD_KEYS))
            _put(h, key, value)
        elif where == "group":
            group = draw(st.sampled_from(list(GROUP_KEYS)))
            if not isinstance(h.get(group), dict):
                h[group] = {}
            _put(h[group], draw(st.sampled_from(GROUP_KEYS[group])), value)
        elif where == "member" and isinstance(h.get("members"), list) and h["members"]:
            i = draw(st.integers(0, len(h["members"]) - 1))
            if isinstance(h["members"][i], dict):
                _put(h["members"][i], draw(st.sampled_from(MEMBER_KEYS)), value)
        elif where == "object":
            _object_value(draw, h, value)
        else:
            _special(draw, h)
    return h


def _object_value(draw: st.DrawFn, h: dict[str, Any], value: Any) -> None:
    """Put an awkward value somewhere inside a member's object (made when absent)."""
    members = h.get("members")
    if not isinstance(members, list) or not members or not isinstance(members[0], dict):
        return
    path = draw(st.sampled_from(list(MEMBER_OBJECT_KEYS)))
    obj: Any = members[0]
    if path and not isinstance(obj.get(path[0]), dict):
        obj[path[0]] = copy.deepcopy(draw(ability_assessments(dt.date(2019, 8, 1))))
    for key in path:
        if not isinstance(obj.get(key), dict):
            obj[key] = {}
        obj = obj[key]
    if draw(st.booleans()):
        value = draw(st.sampled_from(OBJECT_VALUES))
    _put(obj, draw(st.sampled_from(MEMBER_OBJECT_KEYS[path])), value)


def _put(obj: dict[str, Any], key: str, value: Any) -> None:
    if value is DELETE:
        obj.pop(key, None)
    else:
        obj[key] = copy.deepcopy(value)


def _special(draw: st.DrawFn, h: dict[str, Any]) -> None:
    members: list[Any] = h["members"] if isinstance(h.get("members"), list) else []
    kind = draw(st.sampled_from(["same_person", "born_after", "died_before_born", "empty_request", "no_request",
                                 "member_not_object", "no_members"]))  # fmt: skip
    if kind == "same_person" and members:
        members.append(copy.deepcopy(members[0]))
    elif kind == "born_after" and members and isinstance(members[-1], dict):
        members[-1]["birth_date"] = "2099-01-01"
    elif kind == "died_before_born" and members and isinstance(members[0], dict):
        members[0]["death_date"] = "1900-01-01"
    elif kind == "empty_request":
        h["request"] = {}
    elif kind == "no_request":
        h["request"] = None
    elif kind == "member_not_object":
        members.append(draw(st.sampled_from(["x", 1, None, []])))
    else:
        h["members"] = draw(st.sampled_from([[], None, "x", {}]))


@settings(max_examples=150, deadline=None)
@given(awkward_households(), st.booleans())
def test_row_and_column_validators_agree(household: dict[str, Any], decimals: bool) -> None:
    row = by_row(_schema(), household, TODAY, decimals=decimals)
    column = by_columns(_schema(), household, TODAY)
    assert row == column


@settings(max_examples=60, deadline=None)
@given(households())
def test_plain_households_are_accepted_alike(household: dict[str, Any]) -> None:
    row = by_row(_schema(), household, TODAY)
    assert row[0] == "ok"
    assert row == by_columns(_schema(), household, TODAY)


@cache
def _schema() -> RecordSchema:
    """The bundled record schema, with its parameter coverage (not a fixture: Hypothesis
    would print the whole ruleset with every failing example)."""
    return load(RULES).record


@st.composite
def batches(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A few households, some awkward, with IDs from a small pool so that some repeat."""
    out = []
    for _ in range(draw(st.integers(1, 4))):
        h = draw(st.one_of(households(), awkward_households()))
        if draw(st.booleans()):
            h["household_id"] = draw(st.sampled_from(["H-1", "H-2", " H-1 ", None]))
        out.append(h)
    return out


@settings(max_examples=100, deadline=None)
@given(batches())
def test_a_batch_is_decided_and_rejected_alike(batch: list[dict[str, Any]]) -> None:
    """`check` on a .jsonl file and `screen` on it: the same households accepted, the same
    reasons, rows in = accepted + rejected, every copy of a repeated ID rejected."""
    schema = _schema()
    objs = [json.loads(json.dumps(h)) for h in batch]
    repeated = schema.repeated_ids(objs)
    row_ok, row_bad = [], []
    for obj in objs:
        try:
            values, _ = schema.validate(obj, TODAY, repeated=repeated)
            row_ok.append(values["household_id"])
        except InputError as exc:
            hid = _id_text(obj.get("household_id")) if isinstance(obj, dict) else None
            row_bad += [(hid, p.field, p.message) for p in exc.problems]
    hh, mm, pre = jsonl_to_tables([json.dumps(h) for h in batch], schema)
    good, _, rejects = validate_frames(schema, hh, mm, TODAY)
    col_bad = pre.rows() + rejects.rows()
    assert good.get_column("household_id").to_list() == row_ok
    assert sorted(col_bad, key=repr) == sorted(row_bad, key=repr)
    rejected_rows = len(batch) - len(row_ok)
    assert good.height + rejected_rows == len(batch)


def _id_text(value: Any) -> str | None:
    try:
        return value_text(value)
    except BadValue:
        return None
