"""A parent's restriction (DOMAIN-2.md §10.1): ``end`` is the first day free, so an ``end``
on or before ``start`` is an error naming ``end``, worded alike by the row and the column
validators (``record.yaml``: ``after:``, an exclusive bound by another field)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tests.conftest import FIXTURES
from tests.engine.test_validation_property import TODAY, _schema, by_columns, by_row

F = "members[2].child.father.restriction."


def _household(start: str, end: str | None) -> dict[str, Any]:
    h: dict[str, Any] = json.loads((FIXTURES / "households" / "HM-2019-000131.json").read_text(encoding="utf-8"))
    h = copy.deepcopy(h)
    h["members"][2]["child"]["father"]["restriction"] = {"type": "imprisoned", "start": start, "end": end}
    return h


@pytest.mark.parametrize(
    ("start", "end", "problems"),
    [
        (
            "2019-05-01",
            "2019-05-01",
            {(F + "end", "must be after child.father.restriction.start 2019-05-01 (got 2019-05-01)")},
        ),
        (
            "2019-05-01",
            "2019-04-30",
            {(F + "end", "must be after child.father.restriction.start 2019-05-01 (got 2019-04-30)")},
        ),
        ("2019-05-01", "2019-05-02", None),  # one day in custody
        ("2019-05-01", None, None),  # no fixed end
    ],
)
def test_an_end_not_after_the_start_is_rejected_naming_end(
    start: str, end: str | None, problems: set[tuple[str, str]] | None
) -> None:
    h = _household(start, end)
    row = by_row(_schema(), h, TODAY)
    assert row == by_columns(_schema(), h, TODAY)
    if problems is None:
        assert row[0] == "ok"
    else:
        assert row == ("rejected", problems)
