"""Hypothesis strategies for households, heavy on boundaries: incomes at thresholds to the
fen, decision dates on parameter switches, birthdays and deaths on the decision date."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import strategies as st

from engine.types import resident_id_check_digit

SWITCH_DATES = [
    dt.date(2018, 12, 31),
    dt.date(2019, 1, 1),
    dt.date(2019, 6, 30),
    dt.date(2019, 7, 1),
    dt.date(2020, 6, 30),
    dt.date(2020, 7, 1),
    # the poverty campaign's first and last days and the days around them (DOMAIN-2.md §12)
    dt.date(2018, 7, 31),
    dt.date(2018, 8, 1),
    dt.date(2020, 12, 31),
    dt.date(2021, 1, 1),
]
STANDARDS = {dt.date(2018, 7, 1): 73000, dt.date(2019, 7, 1): 79000, dt.date(2020, 7, 1): 83000}


def _standard(on: dt.date) -> int:
    return max((d, v) for d, v in STANDARDS.items() if d <= on)[1]


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def person_id(birth: dt.date, seq: int) -> str:
    first = f"320684{birth:%Y%m%d}{seq % 1000:03d}"
    return first + resident_id_check_digit(first)


decision_dates = st.one_of(
    st.sampled_from(SWITCH_DATES),
    st.dates(min_value=dt.date(2018, 7, 1), max_value=dt.date(2021, 12, 31)),
)


ADL_ITEMS = {  # MZ/T 039-2013 B.1: the scores each item may take, in record order
    "feeding": (0, 5, 10), "bathing": (0, 5), "grooming": (0, 5), "dressing": (0, 5, 10), "bowel": (0, 5, 10),
    "bladder": (0, 5, 10), "toileting": (0, 5, 10), "transfer": (0, 5, 10, 15), "walking": (0, 5, 10, 15),
    "stairs": (0, 5, 10),
}  # fmt: skip
SOCIAL_ITEMS = ("daily_living", "work", "orientation_time_space", "orientation_person", "interaction")
RISK_EVENTS = ("falls", "wandering", "choking", "suicide", "other")


@st.composite
def ability_assessments(draw: st.DrawFn, on: dt.date) -> dict[str, Any]:
    """An ability assessment (DOMAIN-2.md §9.1) dated up to ~13 months before ``on``, its
    totals near the grade cut-offs: every item at its best, less a few steps, or anywhere."""
    mode = draw(st.sampled_from(["near_best", "anywhere", "anywhere"]))
    adl = {k: (max(v) if mode == "near_best" else draw(st.sampled_from(v))) for k, v in ADL_ITEMS.items()}
    for _ in range(draw(st.integers(0, 3)) if mode == "near_best" else 0):
        k = draw(st.sampled_from(sorted(ADL_ITEMS)))
        adl[k] = max(0, adl[k] - 5)
    low = st.sampled_from([0, 0, 0, 1, 2])
    consciousness = draw(st.sampled_from([0, 0, 0, 0, 1, 2, 3]))
    waived = consciousness == 3 and draw(st.booleans())  # the coma waiver: later items not assessed
    months = draw(st.sampled_from([6, 6, None]))
    if months is not None:  # on the reassessment date, or a day either side
        base = on.replace(day=min(on.day, 28))
        month = base.month - months
        assessed = base.replace(year=base.year + (month - 1) // 12, month=(month - 1) % 12 + 1)
        assessed += dt.timedelta(days=draw(st.sampled_from([-1, 0, 1])))
    else:
        assessed = on - dt.timedelta(days=draw(st.integers(0, 400)))
    return {
        "assessed_on": min(assessed, on).isoformat(),
        "adl": adl,
        "mental": {k: draw(low) for k in ("cognition", "aggression", "depression")},
        "sensory": {
            "consciousness": consciousness,
            "vision": None if waived else draw(st.integers(0, 4)),
            "hearing": None if waived else draw(st.integers(0, 4)),
            "communication": None if waived else draw(st.integers(0, 3)),
        },
        "social": None if waived else {k: draw(st.sampled_from([0, 0, 1, 2, 3, 4])) for k in SOCIAL_ITEMS},
        "mental_illness_diagnosed": draw(st.sampled_from([False, False, False, True])),
        "risk_events_30d": {k: draw(st.sampled_from([0, 0, 0, 1, 2, 3])) for k in RISK_EVENTS},
    }


DISABILITY_KINDS = ["visual", "hearing", "speech", "physical", "intellectual", "mental", "multiple"]


def _months_before(on: dt.date, months: int) -> dt.date:
    base = on.replace(day=min(on.day, 28))
    month = base.month - months
    return base.replace(year=base.year + (month - 1) // 12, month=(month - 1) % 12 + 1)


@st.composite
def _disability(draw: st.DrawFn) -> tuple[int | None, str | None]:
    grade = draw(st.sampled_from([None, None, None, 1, 2, 3, 4]))
    return grade, None if grade is None else draw(st.sampled_from(DISABILITY_KINDS))


@st.composite
def _parent(draw: st.DrawFn, on: dt.date) -> dict[str, Any]:
    """A parent block of DOMAIN-2.md §10.1: custody and contact dates on and around the
    6-month and decision-date boundaries."""
    rare = st.sampled_from([False] * 5 + [True])
    grade, kind = draw(_disability())
    restriction = None
    if draw(st.sampled_from([False, False, True])):
        start = draw(st.sampled_from([on, on + dt.timedelta(days=1), _months_before(on, 6), _months_before(on, 30)]))
        six = _months_before(start, -6)
        end = draw(
            st.sampled_from(
                [None, on, on + dt.timedelta(days=1), six, six - dt.timedelta(days=1), six + dt.timedelta(days=1)]
            )
        )
        if end is not None and end <= start:
            end = start + dt.timedelta(days=1)
        kind_of = draw(st.sampled_from(["imprisoned", "compulsory_rehab", "other"]))
        restriction = {"type": kind_of, "start": start.isoformat(), "end": None if end is None else end.isoformat()}
    lost = None
    if draw(st.sampled_from([False, False, True])):
        lost = _months_before(on, 6) + dt.timedelta(days=draw(st.sampled_from([-1, 0, 1])))
    return {
        "identity_unknown": draw(rare),
        "deceased": draw(st.sampled_from([False] * 3 + [True])),
        "declared_missing": draw(rare),
        "disability_grade": grade,
        "disability_kind": kind,
        "serious_illness": draw(rare),
        "restriction": restriction,
        "lost_contact_since": None if lost is None else min(lost, on).isoformat(),
        "working_away": draw(st.booleans()),
    }


@st.composite
def child_records(draw: st.DrawFn, on: dt.date) -> dict[str, Any]:
    """A member's `child` object (DOMAIN-2.md §10.1)."""
    grade, kind = draw(_disability())
    receiving = draw(st.booleans())
    review = draw(st.sampled_from([None, 12, 12, 3]))
    last = None if review is None else _months_before(on, review) + dt.timedelta(days=draw(st.sampled_from([-1, 0, 1])))
    current = draw(st.sampled_from([0, 84000, 112000, 140000, 21667])) if receiving else 0
    return {
        "rural_hukou": draw(st.booleans()),
        "hiv_infected": draw(st.sampled_from([False] * 5 + [True])),
        "disability_grade": grade,
        "disability_kind": kind,
        "major_illness": draw(st.sampled_from([False] * 5 + [True])),
        "entrusted_guardian": draw(st.booleans()),
        "receiving_allowance": receiving,
        "current_allowance": _yuan(current),
        "last_review_date": None if last is None else min(last, on).isoformat(),
        "father": draw(_parent(on)),
        "mother": draw(_parent(on)),
    }


@st.composite
def households(draw: st.DrawFn, hid: str = "H-1", seq_base: int = 0) -> dict[str, Any]:
    on = draw(decision_dates)
    std = _standard(on)
    n = draw(st.integers(1, 4))
    # Aim the counted income at a threshold, to the fen, or anywhere.
    factor = draw(st.sampled_from([100, 100, 150, 150, None]))
    delta = draw(st.sampled_from([-1, 0, 0, 1, -100]))
    members = []
    deaths = [draw(st.sampled_from([None, None, None, "before", "on"])) for _ in range(n)]
    counted = [i for i, d in enumerate(deaths) if d != "before"]
    k = len(counted)
    target = std * k * factor // 100 + delta if factor else draw(st.integers(0, std * max(k, 1) * 3))
    remaining = max(target, 0)
    for i in range(n):
        birth_kind = draw(
            st.sampled_from(["60th", "60th-1", "16th", "16th-1", "18th", "18th-1", "80th", "70th", "any"])
        )
        ages = {"60th": 60, "60th-1": 60, "16th": 16, "16th-1": 16, "18th": 18, "18th-1": 18, "80th": 80, "70th": 70}
        years = ages.get(birth_kind)
        if years is None:
            birth = draw(st.dates(min_value=dt.date(1925, 1, 1), max_value=on))
        else:
            try:
                birth = on.replace(year=on.year - years)
            except ValueError:  # 29 February
                birth = on.replace(year=on.year - years, day=28)
            if birth_kind.endswith("-1"):
                birth += dt.timedelta(days=1)
        if deaths[i] == "before":  # born by the day of death: a death before the birth is rejected
            birth = min(birth, on - dt.timedelta(days=1))
        # The target is the counted members' total; a member who died keeps any income.
        if i not in counted:
            income = draw(st.integers(0, std))
        elif i == counted[-1]:
            income = remaining
        else:
            income = draw(st.integers(0, remaining))
        if i in counted:
            remaining -= income
        death = deaths[i]
        members.append(
            {
                "person_id": person_id(birth, seq_base + i * 7 + 1),
                "relation": "head" if i == 0 else draw(st.sampled_from(["spouse", "child", "parent", "other"])),
                "birth_date": birth.isoformat(),
                "monthly_income": _yuan(income),
                "labor_capacity": draw(st.sampled_from(["full", "partial", "none"])),
                "disability": draw(st.sampled_from(["none", "mild", "moderate", "severe"])),
                "serious_illness": draw(st.booleans()),
                "employed_recently": draw(st.booleans()),
                "empty_nest": draw(st.booleans()),
                "entitled_veteran_family": draw(st.booleans()),
                "fixed_income": draw(st.booleans()),
                "has_supporter": draw(st.booleans()),
                "support_mode": draw(st.sampled_from([None, "centralized", "scattered"])),
                "enrolling_in_school": draw(st.booleans()),
                "death_date": None
                if death is None
                else (on - dt.timedelta(days=1) if death == "before" else on).isoformat(),
            }
        )
        if (on - birth).days >= 59 * 365 and draw(st.sampled_from([False, True, True])):
            members[-1]["ability_assessment"] = draw(ability_assessments(on))
        # a child record (DOMAIN-2.md §10) on most young members, now and then on an older one
        if draw(st.sampled_from([False, True, True] if (on - birth).days < 20 * 366 else [False] * 9 + [True])):
            members[-1]["child"] = draw(child_records(on))
    limit = 24 * std * n
    financial = draw(st.sampled_from([limit, limit + 1, 0, 0])) if draw(st.booleans()) else draw(st.integers(0, limit))
    household: dict[str, Any] = {
        "household_id": hid,
        "region": "320684",
        "decision_date": on.isoformat(),
        "local_hukou": draw(st.sampled_from([True] * 5 + [False])),
        "members": members,
        "assets": {
            "financial_assets": _yuan(financial),
            "non_exempt_vehicles": draw(st.sampled_from([0] * 7 + [1])),
            "houses": draw(st.sampled_from([0, 1, 1, 1, 1, 1, 1, 2])),
            "commercial_property": draw(st.sampled_from([False] * 7 + [True])),
            "registered_business": draw(st.sampled_from([False] * 7 + [True])),
        },
    }
    recipient = draw(st.booleans())
    last_review = draw(st.one_of(st.none(), st.dates(min_value=on - dt.timedelta(days=800), max_value=on)))
    household["status"] = {
        "dibao": recipient,
        "low_income": draw(st.booleans()),
        "tekun": draw(st.booleans()),
        "illness_expenditure": draw(st.booleans()),
        "registered_poor": draw(st.booleans()),
        "dibao_monthly_amount": _yuan(draw(st.integers(0, std * 2))) if recipient else "0.00",
        "last_review_date": last_review.isoformat() if last_review else None,
    }
    kind = draw(st.sampled_from([None, "emergency", "expenditure", "expenditure"]))
    if kind == "emergency":
        household["request"] = {
            "type": "emergency",
            "cause": draw(
                st.sampled_from(["fire", "traffic_accident", "natural_disaster", "sudden_illness", "sudden_death"])
            ),
            "tier": draw(st.integers(1, 3)),
            "deceased_in_event": draw(st.integers(0, 5)),
        }
    elif kind == "expenditure":
        boundaries = [2000000, 2000001, 5000000, 5000001, 1500000, 1500000, 1500005, 730000, 790000]
        oop = draw(st.sampled_from(boundaries)) if draw(st.integers(0, 3)) else draw(st.integers(0, 20000000))
        household["request"] = {
            "type": "expenditure",
            "cause": draw(st.sampled_from(["medical", "education", "school_enrollment"])),
            "out_of_pocket_12m": _yuan(oop),
        }
    return household
