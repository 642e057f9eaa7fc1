"""An independent oracle written from DOMAIN.md's "precise semantics" alone.

It shares no code with the engine: integer fen, hand-written conditions, the DOMAIN.md
default values as constants. Property tests compare the engine against it.
"""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Any

STANDARD = [(dt.date(2018, 7, 1), 73000), (dt.date(2019, 7, 1), 79000), (dt.date(2020, 7, 1), 83000)]


def standard_fen(on: dt.date) -> int:
    value = None
    for start, fen in STANDARD:
        if on >= start:
            value = fen
    assert value is not None
    return value


def fen(amount: str) -> int:
    whole, _, frac = amount.partition(".")
    return int(whole) * 100 + int((frac + "00")[:2])


def yuan(f: int) -> str:
    return f"{f // 100}.{f % 100:02d}"


def ceil_yuan(f100: int, denom: int = 1) -> int:
    """Round an amount of fen/denom up to whole yuan, in fen."""
    per_yuan = 100 * denom
    return -(-f100 // per_yuan) * 100


def age(birth: dt.date, on: dt.date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def add_months(d: dt.date, n: int) -> dt.date:
    y, m = divmod(d.month - 1 + n, 12)
    return dt.date(d.year + y, m + 1, min(d.day, calendar.monthrange(d.year + y, m + 1)[1]))


def decide(h: dict[str, Any]) -> dict[str, Any]:
    on = dt.date.fromisoformat(h["decision_date"])
    std = standard_fen(on)
    line2 = 3 * std  # the low-income line is 1.5 × standard; compare 2T < 3·std·n
    members = h["members"]
    counted = [m for m in members if m.get("death_date") is None or dt.date.fromisoformat(m["death_date"]) >= on]
    n = len(counted)
    total = sum(fen(m["monthly_income"]) for m in counted)
    a = h["assets"]
    st: dict[str, Any] = {
        "dibao": False,
        "dibao_monthly_amount": "0.00",
        "last_review_date": None,
        "low_income": False,
        "tekun": False,
        "illness_expenditure": False,
    }
    st.update(h.get("status") or {})
    residence = h["local_hukou"]
    fin_ok = fen(a["financial_assets"]) <= 24 * std * n
    assets_ok = (
        fin_ok
        and a["non_exempt_vehicles"] == 0
        and a["houses"] <= 1
        and not a["commercial_property"]
        and not a["registered_business"]
    )
    severe = [m for m in counted if m["disability"] == "severe" or m["serious_illness"]]
    below_std = total < std * n
    below_line = 2 * total < line2 * n
    out: dict[str, Any] = {}
    if n > 0 and residence and assets_ok and below_std:
        status, amount = "eligible", ceil_yuan(std * n - total) + std * 20 // 100 * len(severe)
    elif st["dibao"] and residence and assets_ok and any(m["employed_recently"] for m in counted) and below_line:
        status, amount = "gradual_exit", fen(st["dibao_monthly_amount"])
    elif residence and assets_ok and below_line and severe:
        status, amount = "single_person", ceil_yuan(sum(max(0, std - fen(m["monthly_income"])) for m in severe))
    else:
        status, amount = "ineligible", 0
    out["dibao_status"], out["dibao_amount"] = status, yuan(amount)
    low = n > 0 and residence and assets_ok and not below_std and below_line
    out["low_income_status"] = "eligible" if low else "ineligible"
    tekun = 0
    for m in counted:
        g = age(dt.date.fromisoformat(m["birth_date"]), on)
        cat = (
            g >= 60
            or g < 16
            or (16 <= g < 60 and m["labor_capacity"] == "none" and m["disability"] in ("moderate", "severe"))
        )
        if cat and fen(m["monthly_income"]) < std and fin_ok and not m["has_supporter"]:
            tekun += 1
    out["tekun_persons"] = tekun
    out["tekun_amount"] = yuan(ceil_yuan(std * 13, 10) * tekun)
    limit = 300000 if on >= dt.date(2019, 1, 1) else 2 * std
    req = h.get("request")
    if req is None:
        out.update(ta_status="not_requested", ta_amount="0.00", ta_authority=None)
    elif n == 0:
        out.update(ta_status="ineligible", ta_amount="0.00", ta_authority="township")
    elif req["type"] == "emergency":
        mult = {1: 1, 2: 2, 3: 4}[req["tier"]]
        amt = max(min(mult * std * n, 2000000), 500000 * req.get("deceased_in_event", 0))
        out.update(ta_status="eligible", ta_amount=yuan(amt), ta_authority="township" if amt <= limit else "city")
    else:
        oop = fen(req["out_of_pocket_12m"])
        if residence and 12 * total - oop < 12 * std * n:
            pct = 20 if oop <= 2000000 else 25 if oop <= 5000000 else 30
            amt = min(ceil_yuan(oop * pct, 100), 3000000)
            if req["cause"] == "school_enrollment" and st["dibao"] and any(m["enrolling_in_school"] for m in counted):
                amt = max(amt, 200000)
            out.update(ta_status="eligible", ta_amount=yuan(amt), ta_authority="township" if amt <= limit else "city")
        else:
            out.update(ta_status="ineligible", ta_amount="0.00", ta_authority="township")
    if st["dibao"] or status != "ineligible":
        if any(
            16 <= age(dt.date.fromisoformat(m["birth_date"]), on) <= 59 and m["labor_capacity"] == "full"
            for m in counted
        ):
            interval = 3
        elif any(
            m["labor_capacity"] == "partial" or m["serious_illness"] or m["disability"] in ("moderate", "severe")
            for m in counted
        ):
            interval = 6
        else:
            interval = 12
        base = dt.date.fromisoformat(st["last_review_date"]) if st["last_review_date"] else on
        nxt = add_months(base, interval)
        out.update(review_interval_months=interval, next_review_date=nxt.isoformat(), review_overdue=nxt < on)
    else:
        out.update(review_interval_months=None, next_review_date=None, review_overdue=False)
    findings = []
    recipient = st["dibao"]
    if recipient and status == "ineligible":
        findings.append("remove")
    if status == "gradual_exit":
        findings.append("gradual_exit")
    if not recipient and status in ("eligible", "single_person"):
        findings.append("add")
    if recipient and status in ("eligible", "single_person"):
        if amount > fen(st["dibao_monthly_amount"]):
            findings.append("amount_up")
        elif amount < fen(st["dibao_monthly_amount"]):
            findings.append("amount_down")
    if recipient and any(m.get("death_date") and dt.date.fromisoformat(m["death_date"]) < on for m in members):
        findings.append("paid_to_deceased")
    if out["review_overdue"]:
        findings.append("review_overdue")
    out["findings"] = sorted(findings)
    return out
