"""A lean hand-written NumPy implementation of DOMAIN.md's rules: the practical speed limit.

It takes the same validated frames as the engine (money in fen, members sorted by `_h`)
and returns the same decision frame, `findings` and `reasons` included, written the way
a performance-minded engineer would: member -> household sums by one running sum,
"any member" flags as bits of one word OR-reduced per household, household values read
per member by one gather, texts made once per distinct value. Polars only reads the
columns, looks IDs up in the registries and holds the result. The DOMAIN.md default
values are constants here; only this benchmark uses them.
"""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

Array = np.ndarray[Any, Any]
_EPOCH = dt.date(1970, 1, 1)
STANDARD = {  # fen, by region and start date
    "320684": [("2018-07-01", 73000), ("2019-07-01", 79000), ("2020-07-01", 83000)],
    "320681": [("2018-07-01", 70000), ("2019-07-01", 76000), ("2020-07-01", 80000)],
}
TOWNSHIP_LIMIT_FROM = dt.date(2019, 1, 1)
CAMPAIGN = (dt.date(2018, 8, 1), dt.date(2021, 1, 1))  # registered-poor gradual exit, end exclusive
EXIT_MONTHS, RP_EXIT_MONTHS = 6, 12
DEFACTO_FROM = dt.date(2020, 1, 1)  # 民发〔2019〕62号
FINDINGS = ["remove", "gradual_exit", "add", "amount_up", "amount_down", "paid_to_deceased"]
FINDINGS += ["duplicate_person", "kin_registration_missing", "registered_poor_not_covered", "review_overdue"]
REASONS = [
    "common.has_counted_member",
    "common.residence",
    "common.financial_assets",
    "common.no_vehicle",
    "common.houses",
    "common.no_commercial_property",
    "common.no_business",
    "dibao.income_below_standard",
    "dibao.eligible",
    "dibao.gradual_exit",
    "dibao.gradual_exit_registered_poor",
    "dibao.single_person",
    "dibao.ineligible",
    *("finding." + f for f in FINDINGS[:7]),
    "kin.blocked",
    "low_income.eligible",
    "registered_poor.not_covered",
    "review.interval.able",
    "review.interval.limited",
    "review.interval.stable",
    "review.overdue",
    "temporary.expenditure_need",
    "temporary.expenditure_residence",
    "temporary.emergency_tier.1",
    "temporary.emergency_tier.2",
    "temporary.emergency_tier.3",
    "temporary.expenditure_rate.low",
    "temporary.expenditure_rate.mid",
    "temporary.expenditure_rate.high",
    "temporary.no_counted_member",
    "temporary.emergency",
    "temporary.expenditure",
    "temporary.ineligible",
    "elderly_care.group_a",
    "elderly_care.group_b",
    "elderly_care.group_c",
    "elderly_care.group_d",
    "elderly_care.none",
    "kin.related_member",
    "tekun.category",
    "tekun.own_income",
    "tekun.no_supporter",
    "tekun.eligible",
]
DIBAO = ["eligible", "gradual_exit", "single_person", "ineligible"]
TA = ["not_requested", "ineligible", "eligible"]


def _num(s: pl.Series, fill: Any = 0) -> Array:
    """A column as NumPy: enums as their codes, nulls as ``fill``."""
    if s.dtype == pl.Boolean:
        out: Array = s.fill_null(bool(fill)).to_numpy()
        return out
    if isinstance(s.dtype, pl.Enum) or s.dtype == pl.Date:
        s = s.to_physical().cast(pl.Int32)
    out = s.fill_null(fill).to_numpy()
    return out


def _ymd_key(days: Array) -> Array:
    """yyyymmdd of each day, looked up over the range of days present."""
    lo, hi = int(days.min()), int(days.max())
    d = np.arange(lo, hi + 1).astype("datetime64[D]")
    month = d.astype("datetime64[M]")
    table = (d.astype("datetime64[Y]").astype(np.int64) + 1970) * 10000 + (month.astype(np.int64) % 12 + 1) * 100
    table += (d - month.astype("datetime64[D]")).astype(np.int64) + 1
    out: Array = table[days - lo]
    return out


def _add_months(days: Array, months: Array) -> Array:
    key = _ymd_key(days)
    index = (key // 10000 - 1970) * 12 + key // 100 % 100 - 1 + months
    lo = int(index.min())
    starts = np.arange(lo, int(index.max()) + 2).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    start = starts[index - lo]
    out: Array = start + np.minimum(key % 100, starts[index - lo + 1] - start) - 1
    return out


class _Members:
    """Segment reductions over members sorted by household."""

    def __init__(self, h: Array, nh: int) -> None:
        self.h, self.nh = h, nh
        counts = np.bincount(h, minlength=nh)
        self.starts, self.ends = np.cumsum(counts) - counts, np.cumsum(counts)

    def sums(self, rows: list[Array]) -> Array:
        run = np.cumsum(np.stack(rows), axis=1)
        run = np.concatenate([np.zeros((len(rows), 1), np.int64), run], axis=1)
        out: Array = run[:, self.ends] - run[:, self.starts]
        return out

    def any(self, flags: list[Array]) -> list[Array]:
        word = np.zeros(len(self.h), dtype=np.uint64)
        for i, f in enumerate(flags):
            word |= f.astype(np.uint64) << np.uint64(i)
        nonempty = self.ends > self.starts
        red = np.zeros(self.nh, dtype=np.uint64)
        if len(word):
            red[nonempty] = np.bitwise_or.reduceat(word, self.starts[nonempty])
        return [(red >> np.uint64(i) & np.uint64(1)).astype(bool) for i in range(len(flags))]


def _slice(h: pl.DataFrame, m: pl.DataFrame, hm: Array, reg: dict[str, pl.Series]) -> dict[str, Any]:
    nh = h.height
    on = _num(h["decision_date"]).astype(np.int64)
    region = h["region"].to_numpy()
    std = np.zeros(nh, dtype=np.int64)
    for r, versions in STANDARD.items():
        at = region == r
        for start, fen in versions:
            std[at & (on >= (dt.date.fromisoformat(start) - _EPOCH).days)] = fen
    seg = _Members(hm, nh)
    g = hm
    mon = on[g]
    death = m["death_date"]
    dead_at = _num(death)
    has_death = death.is_not_null().to_numpy()
    counted = ~has_death | (dead_at >= mon)
    birth = _num(m["birth_date"])
    age = (_ymd_key(mon) - _ymd_key(birth)) // 10000
    income = _num(m["monthly_income"])
    labor = _num(m["labor_capacity"])  # full partial none
    disab = _num(m["disability"])  # none mild moderate severe
    ill = _num(m["serious_illness"])
    severe = (disab == 3) | ill
    mod_sev = disab >= 2
    fin = _num(h["assets.financial_assets"])
    n, total, n_severe, gap = seg.sums(
        [
            counted.astype(np.int64),
            np.where(counted, income, 0),
            (counted & severe).astype(np.int64),
            np.where(counted & severe, np.maximum(std[g] - income, 0), 0),
        ]
    )
    related = m["person_id"].is_in(reg["relatives"]).to_numpy()
    dup = m["person_id"].is_in(reg["caseload_duplicates"]).to_numpy()
    employed, enrolling, able, limited, kin_related, has_dead, any_dup = seg.any(
        [
            counted & _num(m["employed_recently"]),
            counted & _num(m["enrolling_in_school"]),
            counted & (age >= 16) & (age <= 59) & (labor == 0),
            counted & ((labor == 1) | ill | mod_sev),
            counted & related,
            has_death & (dead_at < mon),
            dup,
        ]
    )
    res = _num(h["local_hukou"])
    fin_ok = fin <= 24 * std * n
    no_vehicle, houses_ok = _num(h["assets.non_exempt_vehicles"]) == 0, _num(h["assets.houses"]) <= 1
    commercial, business = _num(h["assets.commercial_property"]), _num(h["assets.registered_business"])
    assets = fin_ok & no_vehicle & houses_ok & ~commercial & ~business
    below_std, below_line = total < std * n, 2 * total < 3 * std * n
    recipient = _num(h["status.dibao"])
    old = _num(h["status.dibao_monthly_amount"])
    eligible = (n > 0) & res & assets & below_std
    gradual = recipient & res & assets & employed & below_line
    first, end = ((d - _EPOCH).days for d in CAMPAIGN)
    poor = _num(h["status.registered_poor"])
    gradual_rp = (on >= first) & (on < end) & recipient & poor & (n > 0) & res & assets & ~below_std
    single = res & assets & below_line & (n_severe > 0)
    case = np.select([eligible, gradual, gradual_rp, single], [0, 1, 2, 3], 4)
    status = np.choose(case, [0, 1, 1, 2, 3])
    amount = np.select(
        [eligible, gradual, gradual_rp, single],
        [-(-(std * n - total) // 100) * 100 + std * 20 // 100 * n_severe, old, old, -(-gap // 100) * 100],
        0,
    )
    low = (n > 0) & res & assets & ~below_std & below_line
    # per member: tekun and home care
    category = (age >= 60) | (age < 16) | ((age >= 16) & (age < 60) & (labor == 2) & mod_sev)
    own_income = income < std[g]
    no_supporter = ~_num(m["has_supporter"])
    tekun = category & own_income & fin_ok[g] & no_supporter
    scattered = _num(m["support_mode"], -1) == 1
    dibao_or_low = ((status == 0) | low)[g]
    groups = [
        (age >= 60) & tekun & scattered,
        (age >= 60) & dibao_or_low & _num(m["empty_nest"]) & mod_sev,
        (age >= 70) & _num(m["entitled_veteran_family"]) & ~_num(m["fixed_income"]),
        (age >= 80) & below_line[g] & (disab == 3),
    ]
    group_hours = [20, 20, 10, 30]
    best = np.max(np.stack([np.where(c, x, -1) for c, x in zip(groups, group_hours, strict=True)]), axis=0)
    row = np.select([c & (best == x) for c, x in zip(groups, group_hours, strict=True)], [0, 1, 2, 3], 4)
    hours = np.maximum(best, 0)
    tekun_n, scattered_n, care = seg.sums(
        [
            (counted & tekun).astype(np.int64),
            (counted & tekun & scattered).astype(np.int64),
            np.where(counted, hours, 0),
        ]
    )
    member_reasons = seg.any(
        [counted & (row == i) for i in range(5)]
        + [counted & related, counted & ~category, counted & ~own_income, counted & ~no_supporter, counted & tekun]
    )
    # temporary assistance
    requested = h["request"].is_not_null().to_numpy()
    rtype = _num(h["request.type"], -1)
    emergency, expenditure = requested & (rtype == 0), requested & (rtype == 1)
    tier = _num(h["request.tier"])
    mult = np.choose(np.clip(tier, 0, 3), [0, 1, 2, 4])
    em_amount = np.maximum(np.minimum(mult * std * n, 2_000_000), 500_000 * _num(h["request.deceased_in_event"]))
    oop_s = h["request.out_of_pocket_12m"]
    oop, has_oop = _num(oop_s), oop_s.is_not_null().to_numpy()
    rate_row = np.where(oop <= 2_000_000, 0, np.where(oop <= 5_000_000, 1, 2))
    rate = np.choose(rate_row, [20, 25, 30])
    ex_base = np.minimum(-(-oop * rate // 10000) * 100, 3_000_000)
    cause = h["request.cause"].cast(pl.Utf8).eq("school_enrollment").fill_null(False).to_numpy()
    ex_amount = np.where(cause & recipient & enrolling, np.maximum(ex_base, 200_000), ex_base)
    need = 12 * total - oop < 12 * std * n
    ex_ok = expenditure & res & need
    recognized = recipient | _num(h["status.tekun"]) | _num(h["status.low_income"])
    recognized = recognized | _num(h["status.illness_expenditure"])
    ta = np.select([~requested, n == 0, emergency, ex_ok], [0, 1, 2, 3], 4)
    ta_amount = np.select([ta == 2, ta == 3], [em_amount, ex_amount], 0)
    kin_filed = h["household_id"].is_in(reg["filings"]).to_numpy()
    blocked = kin_related & ~kin_filed
    limit = np.where(on >= (TOWNSHIP_LIMIT_FROM - _EPOCH).days, 300_000, 2 * std)
    # review
    applies = recipient | (status != 3)
    interval = np.where(able, 3, np.where(limited, 6, 12))
    last = h["status.last_review_date"]
    base = np.where(last.is_not_null().to_numpy(), _num(last), on)
    nxt = _add_months(base, interval)
    overdue = applies & (nxt < on)
    paid = status <= 2
    added = ~recipient & ((status == 0) | (status == 2))
    found = [
        recipient & (status == 3),
        status == 1,
        added,
        recipient & paid & (amount > old),
        recipient & paid & (amount < old),
        recipient & has_dead,
        any_dup,
        blocked,
        added & poor,
        overdue,
    ]
    reasons = [n == 0, ~res, ~fin_ok, ~no_vehicle, ~houses_ok, commercial, business, ~below_std]
    reasons += [case == i for i in range(5)] + found[:8] + [low, found[8]]
    reasons += [applies & able, applies & ~able & limited, applies & ~able & ~limited, overdue]
    reasons += [expenditure & ~need, expenditure & ~res]
    reasons += [emergency & (tier == k) for k in (1, 2, 3)] + [
        expenditure & has_oop & (rate_row == k) for k in range(3)
    ]
    reasons += [ta == k for k in (1, 2, 3, 4)] + member_reasons
    return {
        "dibao_status": status,
        "dibao_amount": amount,
        "dibao_exit_months": np.select([case == 1, case == 2], [EXIT_MONTHS, RP_EXIT_MONTHS], -1),
        "low_income_status": np.where(low, 2, 1),
        "tekun_persons": tekun_n,
        "tekun_amount": -(-std * 13 // 1000) * 100 * tekun_n,
        "tekun_scattered_persons": scattered_n,
        "ta_status": np.select([ta == 0, (ta == 2) | (ta == 3)], [0, 2], 1),
        "ta_type": np.where(requested, rtype, -1),
        "ta_amount": ta_amount,
        "ta_authority": np.where(requested, np.where(blocked | (ta_amount > limit), 0, 1), -1),
        "ta_aid_first": (ta == 2) | ((ta == 4) & emergency),
        "ta_economic_verification": ((ta == 3) | ((ta == 4) & expenditure)) & ~recognized,
        "ta_democratic_appraisal": (ta == 3) | ((ta == 4) & expenditure),
        "kin_related": kin_related,
        "kin_filed": kin_filed,
        "blocked": blocked,
        "elderly_care_hours": care,
        "review_interval_months": np.where(applies, interval, -1),
        "next_review_date": np.where(applies, nxt, np.iinfo(np.int64).min),
        "review_overdue": overdue,
        "findings": _words(found),
        "reasons": _words(reasons),
    }


def _no_children(h: pl.DataFrame) -> list[pl.Series]:
    """DOMAIN-2.md §10's columns for households with no `child` record, all the generator
    draws: nobody counted, no allowance, and `defacto_children` null before 62号's date."""
    zero = pl.repeat(0, h.height, dtype=pl.Int64, eager=True)
    defacto = h.select(pl.when(pl.col("decision_date") >= DEFACTO_FROM).then(pl.lit(0, pl.Int64))).to_series()
    return [
        zero.alias("children_recorded"),
        zero.alias("orphans"),
        defacto.alias("defacto_children"),
        zero.alias("left_behind_children"),
        pl.repeat("0.00", h.height, dtype=pl.Utf8, eager=True).alias("children_allowance_total"),
    ]


def _words(flags: list[Array]) -> Array:
    word = np.zeros(len(flags[0]), dtype=np.uint64)
    for i, f in enumerate(flags):
        word |= f.astype(np.uint64) << np.uint64(i)
    return word


def _texts(values: Array, make: Any) -> pl.Series:
    """Text made once per distinct value (Arrow's hash dictionary encoding), then gathered."""
    d = pc.dictionary_encode(pa.array(values))
    texts = [make(v) for v in d.dictionary.to_numpy().tolist()]
    return pl.Series(texts, dtype=pl.Utf8).gather(pl.Series(d.indices.to_numpy()))


def _bits(names: list[str]) -> Any:
    return lambda w: ";".join(names[i] for i in range(len(names)) if w >> i & 1)


def decide(
    h: pl.DataFrame,
    m: pl.DataFrame,
    relatives: frozenset[str],
    filings: frozenset[str],
    duplicates: frozenset[str],
    version: str = "",
    threads: int = 1,
    max_slice: int = 1 << 17,
) -> pl.DataFrame:
    reg = {
        "relatives": pl.Series(sorted(relatives), dtype=pl.Utf8),
        "filings": pl.Series(sorted(filings), dtype=pl.Utf8),
        "caseload_duplicates": pl.Series(sorted(duplicates), dtype=pl.Utf8),
    }
    hm_all = m["_h"].to_numpy()
    k = max(1, threads, -(-h.height // max_slice))  # slices small enough for the CPU caches
    bounds = [h.height * i // k for i in range(k + 1)]
    mb = np.searchsorted(hm_all, bounds).tolist()
    todo, lock = iter(range(k)), threading.Lock()
    parts: list[dict[str, Any]] = [{} for _ in range(k)]

    def drain() -> None:  # threads (the calling one too) take the next slice until none is left
        while True:
            with lock:
                i = next(todo, None)
            if i is None:
                return
            a, b = bounds[i], bounds[i + 1]
            hm = hm_all[mb[i] : mb[i + 1]].astype(np.intp) - a
            parts[i] = _slice(h.slice(a, b - a), m.slice(mb[i], mb[i + 1] - mb[i]), hm, reg)

    with ThreadPoolExecutor(max(1, threads - 1)) as pool:
        others = [pool.submit(drain) for _ in range(threads - 1)]
        drain()
        for f in others:
            f.result()
    col = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def fen(x: int) -> str:
        return f"{x // 100}.{x % 100:02d}"

    def coded(name: str, cats: list[str]) -> pl.Series:
        codes = np.where(col[name] < 0, len(cats), col[name])
        return pl.Series([*cats, None], dtype=pl.Utf8).gather(pl.Series(codes)).alias(name)

    def nullable(name: str, valid: Array) -> pl.Series:
        return pl.select(pl.when(pl.lit(pl.Series(valid))).then(pl.lit(pl.Series(col[name])))).to_series().alias(name)

    nxt = col["next_review_date"]
    has_next = nxt != np.iinfo(np.int64).min
    out = [
        h["household_id"],
        h["decision_date"],
        pl.repeat(version, h.height, dtype=pl.Utf8, eager=True).alias("ruleset_version"),
        coded("dibao_status", DIBAO),
        _texts(col["dibao_amount"], fen).alias("dibao_amount"),
        nullable("dibao_exit_months", col["dibao_exit_months"] >= 0).cast(pl.Int64),
        coded("low_income_status", ["", "ineligible", "eligible"]),
        pl.Series("tekun_persons", col["tekun_persons"], dtype=pl.Int64),
        _texts(col["tekun_amount"], fen).alias("tekun_amount"),
        pl.Series("tekun_scattered_persons", col["tekun_scattered_persons"], dtype=pl.Int64),
        coded("ta_status", TA),
        coded("ta_type", ["emergency", "expenditure"]),
        _texts(col["ta_amount"], fen).alias("ta_amount"),
        coded("ta_authority", ["city", "township"]),
        *(pl.Series(k, col[k]) for k in ("ta_aid_first", "ta_economic_verification", "ta_democratic_appraisal")),
        *(pl.Series(k, col[k]) for k in ("kin_related", "kin_filed", "blocked")),
        pl.Series("elderly_care_hours", col["elderly_care_hours"], dtype=pl.Int64),
        nullable("review_interval_months", col["review_interval_months"] >= 0).cast(pl.Int64),
        pl.Series("next_review_date", np.where(has_next, nxt, 0).astype(np.int32))
        .cast(pl.Date)
        .to_frame()
        .select(pl.when(pl.lit(pl.Series(has_next))).then(pl.col("next_review_date")))
        .to_series(),
        pl.Series("review_overdue", col["review_overdue"]),
        *_no_children(h),
        _texts(col["findings"], _bits(FINDINGS)).alias("findings"),
        _texts(col["reasons"], _bits(REASONS)).alias("reasons"),
    ]
    return pl.DataFrame(out)
