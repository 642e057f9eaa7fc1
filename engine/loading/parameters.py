"""Parameters: their files (dated values per region), then, once checked, that every formula
finds the values it uses, that every parameter covers every region, and their order."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from engine.errors import Problem, ProblemKind
from engine.plan import ParameterRef
from engine.ruleset import Parameter, ParameterVersion
from engine.source import YMap, YStr, pos_of
from engine.types import STR

from .draft import Draft
from .shapes import check_keys, checked_name, declared_type, text
from .state import Declared, refs

__all__ = ["check_coverage", "check_regions", "declare_parameters", "parameter_order"]


def declare_parameters(d: Declared, display: str, doc: Any) -> None:
    """A parameter file: its parameters, their versions unchecked (values and formulas as written)."""
    if doc is None:
        return
    if not isinstance(doc, YMap) or set(doc) != {"parameters"} or not isinstance(doc["parameters"], YMap):
        d.problems.append(
            Problem(ProblemKind.BAD_FILE, "a parameter file holds one mapping `parameters:`", display, 1, 1)
        )
        return
    params = doc["parameters"]
    for name, spec in params.items():
        if checked_name(name, params.key_pos[name], d.problems, "parameter") is None:
            continue
        name = str(name)
        if not check_keys(spec, "parameter", d.problems, name, params.value_pos[name]):
            continue
        t = declared_type(spec.get("unit"), pos_of(spec, "unit"), d.problems, name)
        values = spec.get("values")
        if not isinstance(values, YMap):
            d.problems.append(
                pos_of(spec, "values").problem(
                    ProblemKind.BAD_TYPE, "`values` maps region -> {date: {value, reference}}", name
                )
            )
            continue
        regions: dict[str, list[ParameterVersion]] = {}
        for region, dated in values.items():
            if not isinstance(dated, YMap) or not dated:
                d.problems.append(
                    values.value_pos[region].problem(
                        ProblemKind.BAD_TYPE, f"region {region}: map dates to values", name
                    )
                )
                continue
            regions[str(region)] = _versions(d, name, str(region), dated)
        p = Parameter(name, text(spec, "title", d.problems), t or STR, regions, spec.pos)
        d.parameters[name] = p
        sym = Draft(name, "household", ParameterRef, None, title=p.title, pos=p.pos, raw={"param": p})
        sym.type = None if t else STR
        d.add(sym)


def _versions(d: Declared, name: str, region: str, dated: YMap) -> list[ParameterVersion]:
    """A region's versions by start date; a formula keeps its text's place for its errors."""
    versions = []
    for start, v in dated.items():
        vpos = dated.key_pos[start]
        if not isinstance(start, dt.date):
            why = (
                f"`{start}` is in quotes, so it is text, not a date: write the date without quotes ({start}:)"
                if _DATE.fullmatch(str(start))  # unquoted, it would have been read as a date
                else f"`{start}` is not a date: a value starts on a date written YYYY-MM-DD"
            )
            d.problems.append(vpos.problem(ProblemKind.BAD_DATE, why, name))
            continue
        if not check_keys(v, "version", d.problems, name, dated.value_pos[start]):
            continue
        if ("value" in v) == ("formula" in v):
            d.problems.append(v.pos.problem(ProblemKind.BAD_VERSION, "give exactly one of `value` or `formula`", name))
            continue
        formula = v.get("formula")
        if isinstance(formula, YStr):  # kept so an error inside it points into the text
            d.formulas[(name, region, start)] = formula
        # a missing `reference` is reported by check_keys; "" keeps the value usable,
        # so the one problem is not followed by "no value on <date>" everywhere
        reference = str(v.get("reference", ""))
        versions.append(ParameterVersion(start, v.get("value"), None, str(formula or ""), reference, v.pos))
    return sorted(versions, key=lambda x: x.start)


_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def check_coverage(d: Declared) -> None:
    """A formula must find a value of every parameter it uses from its own start date."""
    for p in d.parameters.values():
        for region, versions in p.regions.items():
            for i, v in enumerate(versions):
                if v.formula is None:
                    continue
                end = versions[i + 1].start if i + 1 < len(versions) else None
                for dep in refs(v.formula):
                    dp = d.parameters.get(dep)
                    if dp is None:
                        continue
                    regions = [region] if region != "*" else [r for r in dp.regions if r != "*"] or ["*"]
                    for r in regions:
                        if dp.version(r, v.start) is not None:
                            continue
                        first = min((x.start for x in dp.regions.get(r, dp.regions.get("*", []))), default=None)
                        until = f" (its first value is from {first})" if first else ""
                        span = f"{v.start}" + (f"..{end}" if end else " on")
                        d.problems.append(
                            v.pos.problem(
                                ProblemKind.MISSING_PARAMETER_VERSION,
                                f"`{p.name}` for region {r} from {span} uses `{dep}`, which has no value for"
                                f" region {r} on {v.start}{until}",
                                p.name,
                            )
                        )


def check_regions(d: Declared) -> None:
    """Every parameter has values for every region any parameter names (or for `*`)."""
    regions: dict[str, str] = {}
    for p in d.parameters.values():
        for r in p.regions:
            if r != "*":
                regions.setdefault(r, p.name)
    for p in d.parameters.values():
        if "*" in p.regions:
            continue
        for r, owner in sorted(regions.items()):
            if r not in p.regions:
                d.problems.append(
                    p.pos.problem(
                        ProblemKind.MISSING_PARAMETER_VERSION,
                        f'`{p.name}` has no values for region {r}, which `{owner}` defines; add "{r}" or "*"',
                        p.name,
                    )
                )


def parameter_order(parameters: dict[str, Parameter]) -> list[str]:
    """Parameter names, each after the parameters its formulas use."""
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen or name not in parameters:
            return
        seen.add(name)
        for versions in parameters[name].regions.values():
            for v in versions:
                if v.formula is not None:
                    for dep in refs(v.formula):
                        visit(dep)
        order.append(name)

    for name in sorted(parameters):
        visit(name)
    return order
