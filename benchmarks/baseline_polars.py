"""A hand-written Polars implementation of DOMAIN.md's rules: the practical speed limit.

It takes the same validated frames as the engine (money in fen, members sorted by `_h`)
and computes every decision field and the findings, written the way a data engineer
would: a member -> household `group_by`, joins, `when/then`. No explanation, no reasons.
The DOMAIN.md default values are constants here; only this benchmark uses them.
"""

from __future__ import annotations

import polars as pl

STANDARD = {
    "320684": [("2018-07-01", 73000), ("2019-07-01", 79000), ("2020-07-01", 83000)],
    "320681": [("2018-07-01", 70000), ("2019-07-01", 76000), ("2020-07-01", 80000)],
}


def _standard(h: pl.DataFrame) -> pl.Expr:
    expr = pl.lit(None, dtype=pl.Int64)
    for region, versions in STANDARD.items():
        for start, fen in versions:
            expr = (
                pl.when((pl.col("region") == region) & (pl.col("decision_date") >= pl.lit(start).str.to_date()))
                .then(pl.lit(fen))
                .otherwise(expr)
            )
    return expr


def _fen_text(col: pl.Expr) -> pl.Expr:
    return pl.concat_str([(col // 100).cast(pl.Utf8), pl.lit("."), (col % 100).cast(pl.Utf8).str.zfill(2)])


def decide(
    h: pl.DataFrame, m: pl.DataFrame, relatives: frozenset[str], filings: frozenset[str], duplicates: frozenset[str]
) -> pl.DataFrame:
    on = pl.col("decision_date")
    hh = h.with_row_index("_h").with_columns(_standard(h).alias("std"))
    mm = m.join(
        hh.select("_h", "decision_date", "std", pl.col("assets.financial_assets").alias("fin")), on="_h", how="left"
    )
    age = (on.dt.year() - pl.col("birth_date").dt.year()).cast(pl.Int64) - (
        (on.dt.month().cast(pl.Int32) * 100 + on.dt.day())
        < (pl.col("birth_date").dt.month().cast(pl.Int32) * 100 + pl.col("birth_date").dt.day())
    ).cast(pl.Int64)
    mm = mm.with_columns(
        (pl.col("death_date").is_null() | (pl.col("death_date") >= on)).alias("counted"),
        age.alias("age"),
        ((pl.col("disability") == "severe") | pl.col("serious_illness")).alias("severe"),
    )
    c = pl.col("counted")
    per_h = mm.group_by("_h", maintain_order=True).agg(
        c.sum().alias("n"),
        pl.when(c).then(pl.col("monthly_income")).otherwise(0).sum().alias("T"),
        (c & pl.col("severe")).sum().alias("n_severe"),
        (c & pl.col("employed_recently")).any().alias("employed"),
        pl.when(c & pl.col("severe"))
        .then(pl.max_horizontal(pl.col("std") - pl.col("monthly_income"), pl.lit(0)))
        .otherwise(0)
        .sum()
        .alias("single_gap"),
        (c & pl.col("age").is_between(16, 59) & (pl.col("labor_capacity") == "full")).any().alias("able"),
        (
            c
            & (
                (pl.col("labor_capacity") == "partial")
                | pl.col("serious_illness")
                | pl.col("disability").is_in(["moderate", "severe"])
            )
        )
        .any()
        .alias("limited"),
        (c & pl.col("person_id").is_in(list(relatives))).any().alias("kin_related"),
        (c & pl.col("enrolling_in_school")).any().alias("enrolling"),
        (pl.col("death_date") < on).any().alias("has_dead"),
        pl.col("person_id").is_in(list(duplicates)).any().alias("dup"),
    )
    hh = hh.join(per_h, on="_h", how="left")
    std, n, total = pl.col("std"), pl.col("n"), pl.col("T")
    residence = pl.col("local_hukou")
    fin_ok = pl.col("assets.financial_assets") <= 24 * std * n
    assets_ok = (
        fin_ok
        & (pl.col("assets.non_exempt_vehicles") == 0)
        & (pl.col("assets.houses") <= 1)
        & ~pl.col("assets.commercial_property")
        & ~pl.col("assets.registered_business")
    )
    below_std = total < std * n
    below_line = 2 * total < 3 * std * n
    recipient = pl.col("status.dibao")
    eligible = (n > 0) & residence & assets_ok & below_std
    gradual = ~eligible & recipient & residence & assets_ok & pl.col("employed") & below_line
    single = ~eligible & ~gradual & residence & assets_ok & below_line & (pl.col("n_severe") > 0)
    status = (
        pl.when(eligible)
        .then(pl.lit("eligible"))
        .when(gradual)
        .then(pl.lit("gradual_exit"))
        .when(single)
        .then(pl.lit("single_person"))
        .otherwise(pl.lit("ineligible"))
    )
    gap = std * n - total
    amount = (
        pl.when(eligible)
        .then(-((-gap) // 100) * 100 + std * 20 // 100 * pl.col("n_severe"))
        .when(gradual)
        .then(pl.col("status.dibao_monthly_amount"))
        .when(single)
        .then(-((-pl.col("single_gap")) // 100) * 100)
        .otherwise(0)
    )
    hh = hh.with_columns(
        status.alias("dibao_status"),
        amount.alias("dibao_fen"),
        ((n > 0) & residence & assets_ok & ~below_std & below_line).alias("low"),
    )
    hh = hh.with_columns(
        pl.when(pl.col("low")).then(pl.lit("eligible")).otherwise(pl.lit("ineligible")).alias("low_income_status")
    )
    # tekun and elderly care need household results per member
    mm = mm.join(hh.select("_h", "dibao_status", "low_income_status", "T", "n"), on="_h", how="left")
    g = pl.col("age")
    category = (
        (g >= 60)
        | (g < 16)
        | (
            (g >= 16)
            & (g < 60)
            & (pl.col("labor_capacity") == "none")
            & pl.col("disability").is_in(["moderate", "severe"])
        )
    )
    tekun = (
        c
        & category
        & (pl.col("monthly_income") < pl.col("std"))
        & (pl.col("fin") <= 24 * pl.col("std") * pl.col("n"))
        & ~pl.col("has_supporter")
    )
    hours = pl.max_horizontal(
        pl.when((g >= 60) & tekun & (pl.col("support_mode") == "scattered")).then(20).otherwise(0),
        pl.when(
            (g >= 60)
            & ((pl.col("dibao_status") == "eligible") | (pl.col("low_income_status") == "eligible"))
            & pl.col("empty_nest")
            & pl.col("disability").is_in(["moderate", "severe"])
        )
        .then(20)
        .otherwise(0),
        pl.when((g >= 70) & pl.col("entitled_veteran_family") & ~pl.col("fixed_income")).then(10).otherwise(0),
        pl.when((g >= 80) & (2 * pl.col("T") < 3 * pl.col("std") * pl.col("n")) & (pl.col("disability") == "severe"))
        .then(30)
        .otherwise(0),
    )
    per_h2 = mm.group_by("_h", maintain_order=True).agg(
        tekun.sum().alias("tekun_persons"),
        (tekun & (pl.col("support_mode") == "scattered")).sum().alias("tekun_scattered_persons"),
        pl.when(c).then(hours).otherwise(0).sum().alias("elderly_care_hours"),
    )
    hh = hh.join(per_h2, on="_h", how="left")
    tekun_amount = -((-pl.col("std") * 13) // 1000) * 100 * pl.col("tekun_persons")
    # temporary assistance
    req = pl.col("request.type")
    emergency = req == "emergency"
    expenditure = req == "expenditure"
    mult = pl.col("request.tier").replace_strict([1, 2, 3], [1, 2, 4], default=None)
    em_amount = pl.max_horizontal(
        pl.min_horizontal(mult * std * n, pl.lit(2_000_000)), 500_000 * pl.col("request.deceased_in_event")
    )
    oop = pl.col("request.out_of_pocket_12m")
    rate = pl.when(oop <= 2_000_000).then(20).when(oop <= 5_000_000).then(25).otherwise(30)
    ex_base = pl.min_horizontal(-((-oop * rate) // 10000) * 100, pl.lit(3_000_000))
    floor_applies = (pl.col("request.cause") == "school_enrollment") & recipient & pl.col("enrolling")
    ex_amount = pl.when(floor_applies).then(pl.max_horizontal(ex_base, pl.lit(200_000))).otherwise(ex_base)
    ex_ok = expenditure & residence & (12 * total - oop < 12 * std * n)
    recognized = recipient | pl.col("status.tekun") | pl.col("status.low_income") | pl.col("status.illness_expenditure")
    no_request = req.is_null()
    ta_status = (
        pl.when(no_request)
        .then(pl.lit("not_requested"))
        .when(n == 0)
        .then(pl.lit("ineligible"))
        .when(emergency)
        .then(pl.lit("eligible"))
        .when(ex_ok)
        .then(pl.lit("eligible"))
        .otherwise(pl.lit("ineligible"))
    )
    ta_fen = (
        pl.when(no_request | (n == 0)).then(0).when(emergency).then(em_amount).when(ex_ok).then(ex_amount).otherwise(0)
    )
    limit = pl.when(on >= pl.lit("2019-01-01").str.to_date()).then(300_000).otherwise(2 * std)
    kin_filed = pl.col("household_id").is_in(list(filings))
    blocked = pl.col("kin_related") & ~kin_filed
    hh = hh.with_columns(
        ta_status.alias("ta_status"), ta_fen.alias("ta_fen"), kin_filed.alias("kin_filed"), blocked.alias("blocked")
    )
    authority = (
        pl.when(no_request)
        .then(None)
        .when(pl.col("blocked") | (pl.col("ta_fen") > limit))
        .then(pl.lit("city"))
        .otherwise(pl.lit("township"))
    )
    # review
    applies = recipient | (pl.col("dibao_status") != "ineligible")
    interval = pl.when(pl.col("able")).then(3).when(pl.col("limited")).then(6).otherwise(12)
    base = pl.coalesce(pl.col("status.last_review_date"), on)
    nxt = base.dt.offset_by(pl.format("{}mo", interval))
    out = hh.select(
        "household_id",
        "decision_date",
        "dibao_status",
        _fen_text(pl.col("dibao_fen")).alias("dibao_amount"),
        "low_income_status",
        "tekun_persons",
        _fen_text(tekun_amount).alias("tekun_amount"),
        "ta_status",
        pl.when(no_request).then(None).otherwise(req).alias("ta_type"),
        _fen_text(pl.col("ta_fen")).alias("ta_amount"),
        authority.alias("ta_authority"),
        (~no_request & emergency & (n > 0)).alias("ta_aid_first"),
        pl.when(no_request | (n == 0))
        .then(False)
        .when(ex_ok)
        .then(~recognized)
        .otherwise(expenditure & ~recognized)
        .alias("ta_economic_verification"),
        (~no_request & (n > 0) & expenditure).alias("ta_democratic_appraisal"),
        "kin_related",
        "kin_filed",
        "blocked",
        "elderly_care_hours",
        pl.when(applies).then(interval).alias("review_interval_months"),
        pl.when(applies).then(nxt).alias("next_review_date"),
        (applies & (nxt < on)).alias("review_overdue"),
        recipient.alias("_recipient"),
        pl.col("status.dibao_monthly_amount").alias("_old"),
        pl.col("has_dead"),
        pl.col("dup"),
        pl.col("dibao_fen"),
    )
    paid = pl.col("dibao_status").is_in(["eligible", "single_person"])
    codes = [
        ("remove", pl.col("_recipient") & (pl.col("dibao_status") == "ineligible")),
        ("gradual_exit", pl.col("dibao_status") == "gradual_exit"),
        ("add", ~pl.col("_recipient") & paid),
        ("amount_up", pl.col("_recipient") & paid & (pl.col("dibao_fen") > pl.col("_old"))),
        ("amount_down", pl.col("_recipient") & paid & (pl.col("dibao_fen") < pl.col("_old"))),
        ("paid_to_deceased", pl.col("_recipient") & pl.col("has_dead")),
        ("duplicate_person", pl.col("dup")),
        ("kin_registration_missing", pl.col("blocked")),
        ("review_overdue", pl.col("review_overdue")),
    ]
    findings = pl.concat_str(
        [pl.when(flag).then(pl.lit(code)) for code, flag in codes], separator=";", ignore_nulls=True
    )
    return out.with_columns(findings.alias("findings")).drop("_recipient", "_old", "has_dead", "dup", "dibao_fen")
