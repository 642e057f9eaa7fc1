"""The impact report: one self-contained HTML page a director can read on screen (1366 px)
or print on A4, with no script and no network access.

Every number is exact: money is summed as decimals and printed with thousands separators;
the charts are laid-out SVG whose labels sit on their own line above each bar, so no label
can run into a bar or another label whatever its length. Each chart element carries its
exact value (``data-value``) so a test can compare the page with ``budget.csv``.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import polars as pl

__all__ = ["TOTAL", "headline", "render"]

TOTAL = "合计 Total"
_FONT = '"Noto Sans CJK SC","Noto Sans SC","Source Han Sans SC","Microsoft YaHei","PingFang SC",sans-serif'
_BASE, _HEAD, _UP, _DOWN = "#7f8c8d", "#2471a3", "#1e8449", "#c0392b"
_BUCKET = 25  # width of a per-capita income bucket, in percent of the standard
_OPEN_FROM = 300  # the last bucket is open-ended: at or above this percentage


def money(value: Decimal | int | str | None, sign: bool = False) -> str:
    """Exact yuan with thousands separators: ``12,345.60``; ``+80.00`` with ``sign``."""
    d = Decimal(0) if value is None else Decimal(str(value))
    text = f"{d:,.2f}"
    return f"+{text}" if sign and d > 0 else text


def count(value: int, sign: bool = False) -> str:
    return f"{value:+,}" if sign and value != 0 else f"{value:,}"


def _amount(col: str) -> pl.Expr:
    return pl.col(col).cast(pl.Decimal(20, 2)).fill_null(Decimal(0))


def headline(joined: pl.DataFrame, programs: dict[str, str]) -> list[dict[str, Any]]:
    """Per program: households and people paid before and after, in and out, and the monthly
    amounts; the last entry is the total over programs (monthly and yearly change)."""
    rows: list[dict[str, Any]] = []
    for field, label in programs.items():
        base, head = _amount(field), _amount(field + "__head")
        stats = joined.select(
            (base > 0).sum().alias("households_base"),
            (head > 0).sum().alias("households_head"),
            ((base == 0) & (head > 0)).sum().alias("households_in"),
            ((base > 0) & (head == 0)).sum().alias("households_out"),
            pl.when(base > 0).then(pl.col("people")).otherwise(0).sum().alias("people_base"),
            pl.when(head > 0).then(pl.col("people")).otherwise(0).sum().alias("people_head"),
            pl.when((base == 0) & (head > 0)).then(pl.col("people")).otherwise(0).sum().alias("people_in"),
            pl.when((base > 0) & (head == 0)).then(pl.col("people")).otherwise(0).sum().alias("people_out"),
            base.sum().alias("monthly_base"),
            head.sum().alias("monthly_head"),
        ).to_dicts()[0]
        stats = {k: (Decimal(str(v or 0)) if k.startswith("monthly") else int(v or 0)) for k, v in stats.items()}
        change = stats["monthly_head"] - stats["monthly_base"]
        rows.append(
            {"program": field.removesuffix("_amount"), "label": label, **stats, "monthly_change": change}
            | {"yearly_change": change * 12}
        )
    total_change = sum((r["monthly_change"] for r in rows), Decimal(0))
    rows.append(
        {
            "program": "total",
            "label": TOTAL,
            "monthly_base": sum((r["monthly_base"] for r in rows), Decimal(0)),
            "monthly_head": sum((r["monthly_head"] for r in rows), Decimal(0)),
            "monthly_change": total_change,
            "yearly_change": total_change * 12,
        }
    )
    return rows


# ---------------------------------------------------------------- charts


def _bars(
    chart_id: str,
    title: str,
    groups: Sequence[tuple[str, Sequence[tuple[str, Decimal | int, str, str]]]],
    unit: str = "",
) -> str:
    """Horizontal bars in groups; each group's label on its own line, then one bar per series
    (name, value, shown text, colour) with its number right of the bar. Drawn in a 1000-unit
    wide viewBox that scales to the page: labels never share a line with bars."""
    width, value_room, bar_h, gap, label_h = 1000, 230, 16, 8, 22
    values = [abs(Decimal(str(v))) for _, bars in groups for _, v, _, _ in bars] or [Decimal(1)]
    top = max(max(values), Decimal(1))
    y = 6
    body: list[str] = []
    for label, bars in groups:
        body.append(f'<text class="label" x="0" y="{y + 14}">{html.escape(label)}</text>')
        y += label_h + 2
        for name, value, shown, colour in bars:
            length = int((width - value_room) * abs(Decimal(str(value))) / top)
            length = max(length, 1) if value else 0
            body.append(
                f'<g class="bar" data-group="{html.escape(label)}" data-series="{html.escape(name)}" '
                f'data-value="{value}"><rect x="0" y="{y}" width="{length}" height="{bar_h}" fill="{colour}"></rect>'
                f'<text class="value" x="{length + 6}" y="{y + bar_h - 3}">{html.escape(shown)}</text></g>'
            )
            y += bar_h + gap
        y += 10
    return (
        f'<figure id="{chart_id}"><figcaption>{html.escape(title)}'
        + (f' <span class="unit">{html.escape(unit)}</span>' if unit else "")
        + f'</figcaption><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {y}" '
        f'width="100%" role="img" aria-label="{html.escape(title)}">' + "".join(body) + "</svg></figure>"
    )


def _distribution(joined: pl.DataFrame) -> list[tuple[str, int, int]]:
    """(label, bucket start, households): per-capita income as a percentage of the standard in
    25-point buckets; the last bucket holds everything at or above 300 % and says so."""
    pct = joined.filter(pl.col("_n") > 0).select((pl.col("_T") * 100 // (pl.col("_std") * pl.col("_n"))).alias("p"))
    bucket = pl.when(pl.col("p") >= _OPEN_FROM).then(_OPEN_FROM).otherwise(pl.col("p").clip(0) // _BUCKET * _BUCKET)
    counts = dict(pct.group_by(bucket.alias("b")).len().iter_rows())
    out = []
    for start in range(0, _OPEN_FROM + 1, _BUCKET):
        label = f"≥ {_OPEN_FROM} %" if start == _OPEN_FROM else f"{start}–{start + _BUCKET - 1} %"
        out.append((label, start, int(counts.get(start, 0))))
    return out


# ---------------------------------------------------------------- tables


def _table(table_id: str, header: Sequence[str], rows: Sequence[Sequence[str]], numeric_from: int = 1) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="{"num" if i >= numeric_from else "txt"}">{html.escape(cell)}</td>'
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _township_table(program: str, budget: pl.DataFrame) -> str:
    rows = budget.filter(pl.col("program") == program).to_dicts()
    rows.sort(key=lambda r: (r["township"] == TOTAL, r["township"]))
    return _table(
        f"townships-{program}",
        [
            "区镇 Township",
            "户数 基准",
            "户数 调整",
            "人数 基准",
            "人数 调整",
            "月支出 基准 (元)",
            "月支出 调整 (元)",
            "变化 (元)",
        ],
        [
            [
                str(r["township"]),
                count(int(r["households_base"])),
                count(int(r["households_head"])),
                count(int(r["people_base"])),
                count(int(r["people_head"])),
                money(r["amount_base"]),
                money(r["amount_head"]),
                money(r["amount_change"], sign=True),
            ]
            for r in rows
        ],
    )


_STYLE = (
    "*{box-sizing:border-box}body{font-family:" + _FONT + ";margin:24px auto;max-width:1200px;padding:0 16px;"
    "color:#1c2833;line-height:1.5}h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;"
    "border-bottom:2px solid #d5d8dc;padding-bottom:4px}p.meta{color:#566573;font-size:13px;margin:0 0 16px}"
    ".cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(220px,1fr));gap:12px}"
    ".card{border:1px solid #d5d8dc;border-radius:6px;padding:10px 14px;break-inside:avoid}"
    ".card .k{font-size:13px;color:#566573}.card .v{font-size:22px;font-weight:600;white-space:nowrap}"
    ".up{color:" + _UP + "}.down{color:" + _DOWN + "}"
    "table{border-collapse:collapse;margin:8px 0 16px;width:100%;font-size:13px}"
    "th,td{border:1px solid #d5d8dc;padding:3px 8px}th{background:#f2f3f4;text-align:center}"
    "td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}"
    "figure{margin:12px 0 20px;break-inside:avoid}figcaption{font-weight:600;margin-bottom:6px}"
    ".unit{font-weight:400;color:#566573;font-size:13px}svg{display:block;max-width:100%;height:auto}"
    "svg text{font-family:" + _FONT + ";font-size:14px;fill:#1c2833}svg text.value{fill:#424949}"
    "@page{size:A4;margin:14mm}@media print{body{margin:0;max-width:none;padding:0}h2{break-after:avoid}"
    "tr{break-inside:avoid}}"
)


def render(
    summary: dict[str, Any],
    transitions: pl.DataFrame,
    budget: pl.DataFrame,
    joined: pl.DataFrame,
    statuses: dict[str, str],
    programs: dict[str, str],
    codes: dict[str, dict[str, str]] | None = None,
) -> str:
    """The report page; ``codes`` reads a status code as the rule files label it."""
    codes = codes or {}
    heads = headline(joined, programs)
    total = heads[-1]
    direction = "up" if total["monthly_change"] > 0 else "down" if total["monthly_change"] < 0 else ""
    cards = [
        ("月度预算变化 Monthly change (元)", money(total["monthly_change"], sign=True), direction, "monthly-change"),
        ("年度预算变化 Yearly change (元)", money(total["yearly_change"], sign=True), direction, "yearly-change"),
        ("调整后月支出 Monthly total after (元)", money(total["monthly_head"]), "", "monthly-head"),
        ("状态变化户数 Households changed", count(int(summary["changed"])), "", "changed"),
    ]
    card_html = "".join(
        f'<div class="card" id="headline-{key}"><div class="k">{html.escape(k)}</div>'
        f'<div class="v {cls}" data-value="{html.escape(v)}">{html.escape(v)}</div></div>'
        for k, v, cls, key in cards
    )
    program_rows = [
        [
            str(r["label"]),
            count(r["households_base"]),
            count(r["households_head"]),
            count(r["households_in"]),
            count(r["households_out"]),
            count(r["people_in"]),
            count(r["people_out"]),
            money(r["monthly_base"]),
            money(r["monthly_head"]),
            money(r["monthly_change"], sign=True),
            money(r["yearly_change"], sign=True),
        ]
        for r in heads[:-1]
    ]
    program_rows.append(
        [TOTAL, *[""] * 6]
        + [money(total[k], sign=k.endswith("change")) for k in ("monthly_base", "monthly_head")]
        + [money(total["monthly_change"], sign=True), money(total["yearly_change"], sign=True)]
    )
    programs_table = _table(
        "headline-programs",
        [
            "救助项目 Program",
            "户数 基准",
            "户数 调整",
            "新增户 In",
            "退出户 Out",
            "新增人 In",
            "退出人 Out",
            "月支出 基准 (元)",
            "月支出 调整 (元)",
            "月变化 (元)",
            "年变化 (元)",
        ],
        program_rows,
    )
    moved = transitions.filter(pl.col("base") != pl.col("head")).to_dicts()
    transition_groups = [
        (
            f"{statuses.get(str(r['program']), str(r['program']))}："
            f"{_code(codes, r['program'], r['base'])} → {_code(codes, r['program'], r['head'])}",
            [("households", int(r["households"]), f"{int(r['households']):,} 户", _DOWN)],
        )
        for r in moved
    ]
    charts = [
        _bars("chart-transitions", "状态变化 Status transitions", transition_groups, "户 households")
        if transition_groups
        else "<p>没有家庭的认定状态发生变化。No household's status changes.</p>"
    ]
    for field, label in programs.items():
        program = field.removesuffix("_amount")
        rows = budget.filter((pl.col("program") == program) & (pl.col("township") != TOTAL)).sort("township")
        groups = [
            (
                str(r["township"]),
                [
                    ("base", Decimal(str(r["amount_base"])), f"基准 {money(r['amount_base'])}", _BASE),
                    ("head", Decimal(str(r["amount_head"])), f"调整 {money(r['amount_head'])}", _HEAD),
                ],
            )
            for r in rows.to_dicts()
            if r["amount_base"] or r["amount_head"]  # the township table lists every township; the chart those paid
        ]
        if not groups:
            continue
        charts.append(_bars(f"chart-budget-{program}", f"各区镇月支出 {label}：基准 / 调整", groups, "元 yuan a month"))
    dist = _distribution(joined)
    dist_groups = [
        (
            f"人均收入为低保标准的 {label}",
            [("households", n, f"{n:,} 户", _UP if start < 100 else "#b9770e" if start < 150 else _BASE)],
        )
        for label, start, n in dist
    ]
    charts.append(
        _bars(
            "chart-distribution",
            "人均收入分布（基准）Per-capita income against the standard (base)",
            dist_groups,
            "户 households",
        )
    )
    parts = [
        "<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        "<title>政策影响评估 Impact report</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>政策影响评估 Impact of a rule change</h1>",
        f"<p class='meta'>基准 Base：<code>{html.escape(summary['base'])}</code>　调整 Head："
        f"<code>{html.escape(summary['head'])}</code><br>认定户数 Households：{count(int(summary['households']))}"
        f"　状态变化 changed：{count(int(summary['changed']))}　未能认定 rejected："
        f"{count(int(summary['rejected']))}</p>",
        f"<div class='cards'>{card_html}</div>",
        "<h2>各救助项目 By program</h2>",
        programs_table,
        "<h2>图表 Charts</h2>",
        *charts,
    ]
    for field, label in programs.items():
        program = field.removesuffix("_amount")
        parts += [f"<h2>{html.escape(label)}：各区镇 By township</h2>", _township_table(program, budget)]
    parts += [
        "<h2>人均收入分布 Per-capita income distribution</h2>",
        _table(
            "distribution",
            ["人均收入 / 低保标准 Per capita / standard", "户数 Households"],
            [[label, count(n)] for label, _, n in dist],
        ),
        *_nearest(joined, statuses),
        "</body></html>",
    ]
    return "\n".join(parts)


def _nearest(joined: pl.DataFrame, statuses: dict[str, str], size: int = 15) -> list[str]:
    """The households whose income is nearest the standard and the low-income line: the ones
    a small change of either moves."""
    first, second = [*statuses, "", ""][:2]
    near = joined.filter(pl.col("_n") > 0).with_columns(
        (pl.col("_T") - pl.col("_std") * pl.col("_n")).abs().alias("gap_standard"),
        (pl.col("_T") - pl.col("_line") * pl.col("_n")).abs().alias("gap_line"),
    )
    out = []
    for gap, status, title, table_id in (
        ("gap_standard", first, "最接近低保标准的家庭 Households nearest the standard", "nearest-standard"),
        ("gap_line", second, "最接近低收入线的家庭 Households nearest the low-income line", "nearest-line"),
    ):
        if not status:
            continue
        rows = near.sort(gap, "household_id").head(size).to_dicts()
        out += [
            f"<h2>{html.escape(title)}</h2>",
            _table(
                table_id,
                [
                    "户编号 Household",
                    "区镇 Township",
                    "差距 Gap (元)",
                    f"{statuses[status]} 基准",
                    f"{statuses[status]} 调整",
                ],
                [
                    [
                        str(r["household_id"]),
                        str(r["township"]),
                        money(Decimal(int(r[gap])) / 100),
                        str(r[status]),
                        str(r[status + "__head"]),
                    ]
                    for r in rows
                ],
                numeric_from=2,
            ),
        ]
    return out


def _code(codes: dict[str, dict[str, str]], field: str, code: Any) -> str:
    return codes.get(str(field), {}).get(str(code), str(code))
