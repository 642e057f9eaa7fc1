"""Files bureau staff open in Excel or WPS: money as numbers, headers in their language.

Every XLSX the engine writes goes through ``write_xlsx``: money columns are numbers with the
``#,##0.00`` format, so a sheet can sum them; text cells pass through ``safe_frame`` and the
workbook never reads text as a formula, number or link (formula injection). ``for_people``
turns a table's headers into the reader's language (``--headers zh``): a decision field by
its ``title`` in the rule files, every other column by the catalogue's ``files.column.*``;
machines keep the English codes, the default. Polars and xlsxwriter are imported only when a
file is written.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.cells import safe_frame
from engine.messages import has, text
from engine.validation.wording import reason_text

if TYPE_CHECKING:
    import polars as pl

    from engine.ruleset import Ruleset

__all__ = ["HEADER_LANGS", "MONEY_FORMAT", "column_labels", "for_people", "money_columns", "value_label", "write_xlsx"]

MONEY_FORMAT = "#,##0.00"
HEADER_LANGS = ("en", "zh")  # `en`: the columns' codes, as machines read them

# how the engine names the columns it derives from a decision field: an impact's changes
# (`base_<field>`, `head_<field>`) and its budget table (`amount_base`, ...)
_SIDES = ("base", "head")
_AMOUNTS = ("amount_base", "amount_head", "amount_change")


def _symbol(ruleset: Ruleset | None, name: str) -> Any:
    if ruleset is None:
        return None
    try:
        return ruleset.symbol(name)
    except KeyError:
        return None


def _split(name: str) -> tuple[str | None, str]:
    """``base_dibao_amount`` -> (``base``, ``dibao_amount``); any other name -> (None, name)."""
    for side in _SIDES:
        if name.startswith(side + "_"):
            return side, name[len(side) + 1 :]
    return None, name


def money_columns(ruleset: Ruleset | None, columns: Iterable[str]) -> list[str]:
    """The columns that hold money: a decision field of type ``money`` (also as an impact's
    ``base_``/``head_`` column) and a budget table's amounts.

    >>> from engine import load
    >>> money_columns(load("rules"), ["household_id", "dibao_amount", "head_ta_amount", "dibao_status", "amount_change"])
    ['dibao_amount', 'head_ta_amount', 'amount_change']
    """
    out = []
    for name in columns:
        symbol = _symbol(ruleset, name) or _symbol(ruleset, _split(name)[1])
        if name in _AMOUNTS or (symbol is not None and symbol.type.kind == "money"):
            out.append(name)
    return out


def _label(ruleset: Ruleset | None, name: str, lang: str) -> str:
    key = f"files.column.{name}"
    if has(key):
        return text(key, lang)
    declared = (ruleset.labels.get(name) or {}).get("title") or {} if ruleset is not None else {}
    if declared.get(lang):  # a decision field's title in ruleset.yaml `labels`
        return str(declared[lang])
    symbol = _symbol(ruleset, name)
    if symbol is not None and symbol.title.get(lang):
        return str(symbol.title[lang])
    side, field = _split(name)
    if side is not None and (_symbol(ruleset, field) is not None or has(f"files.column.{field}")):
        return text(f"files.side.{side}", lang, label=_label(ruleset, field, lang))
    return name


def column_labels(ruleset: Ruleset | None, columns: Iterable[str], lang: str) -> dict[str, str]:
    """A header for each column in ``lang``: ``en`` keeps the codes; otherwise the catalogue's
    ``files.column.NAME``, else the rule files' ``title`` of the field, else the code. Two
    columns that would read the same get their code added, so no header is given twice.

    >>> from engine import load
    >>> column_labels(load("rules"), ["household_id", "tekun_amount", "reason"], "zh")
    {'household_id': '户编号', 'tekun_amount': '特困基本生活费合计（元/月）', 'reason': '原因'}
    """
    names = list(columns)
    if lang == "en":
        return {n: n for n in names}
    labels = {name: _label(ruleset, name, lang) for name in names}
    counts: dict[str, int] = {}
    for label in labels.values():
        counts[label] = counts.get(label, 0) + 1
    return {n: (f"{label}（{n}）" if counts[label] > 1 and label != n else label) for n, label in labels.items()}


def for_people(frame: pl.DataFrame, ruleset: Ruleset | None, lang: str) -> pl.DataFrame:
    """``frame`` with its headers in ``lang``, and a rejects table's reasons in that language."""
    import polars as pl

    if lang == "en":
        return frame
    if "reason" in frame.columns and frame.schema["reason"] == pl.String:
        said = {r: reason_text(r, lang) for r in frame.get_column("reason").drop_nulls().unique().to_list()}
        frame = frame.with_columns(pl.col("reason").replace(said))
    return frame.rename(column_labels(ruleset, frame.columns, lang))


def write_xlsx(
    frame: pl.DataFrame,
    path: Path | Any,
    *,
    ruleset: Ruleset | None = None,
    headers: str = "en",
    worksheet: str = "Sheet1",
) -> None:
    """``frame`` as one XLSX sheet at ``path`` (a path or a binary file): its money columns as
    numbers formatted ``#,##0.00``, its headers in ``headers``, no text cell able to run."""
    import polars as pl
    import xlsxwriter

    money = money_columns(ruleset, frame.columns)
    frame = safe_frame(frame).with_columns(pl.col(c).cast(pl.Float64, strict=False) for c in money)
    labels = column_labels(ruleset, frame.columns, headers)
    frame = for_people(frame, ruleset, headers)
    book = xlsxwriter.Workbook(
        path, {"strings_to_formulas": False, "strings_to_numbers": False, "strings_to_urls": False}
    )
    try:
        frame.write_excel(
            book, worksheet=worksheet, column_formats={labels[c]: MONEY_FORMAT for c in money}, autofit=True
        )
    finally:
        book.close()


def value_label(ruleset: Ruleset | None, name: str, value: Any, lang: str) -> Any:
    """A decision field's value as people read it: by its label in ruleset.yaml `labels`, else an
    outcome's value by the ``title`` of the first case that gives it (``eligible`` -> 符合低保条件);
    any other value as it is.

    >>> from engine import load
    >>> value_label(load("rules"), "dibao_status", "ineligible", "zh"), value_label(None, "x", "y", "zh")
    ('不符合低保条件', 'y')
    """
    from engine.plan import CaseValue

    declared = ((ruleset.labels.get(name) or {}).get("values") or {}).get(str(value)) if ruleset is not None else None
    if lang != "en" and declared and declared.get(lang):
        return declared[lang]
    symbol = _symbol(ruleset, name)
    if lang != "en" and isinstance(symbol, CaseValue):
        for arm in symbol.outcome.cases:
            if arm.value == value and arm.title.get(lang):
                return arm.title[lang]
    return value
