"""What changed between two rulesets: programs, rules and parameters added, removed and
changed, per program, with the dated parameter values per region, and the files line by line.

Works on the plain descriptions ``engine.describe_rules`` and ``describe_parameters`` give,
so two published versions and a published version against an uploaded bundle compare the same
way.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from engine import Ruleset, describe_parameters, describe_rules

__all__ = ["MAX_DIFF_LINES", "diff_rulesets", "file_diff", "program_of"]

MAX_DIFF_LINES = 400  # lines of one file's diff shown; the rest is counted, not shown
_RULE_FIELDS = ("kind", "program", "title", "legal_basis", "report", "conditions")
_OTHER = ""  # the group of a parameter whose prefix names no program


def program_of(name: str, programs: Iterable[str]) -> str:
    """The program a parameter belongs to: its name's first part when a program has that id.

    >>> program_of("dibao.standard", ["dibao", "tekun"]), program_of("care.rate", ["dibao"])
    ('dibao', '')
    """
    head = name.split(".", 1)[0]
    return head if head in set(programs) else _OTHER


def _conditions_text(rule: Mapping[str, Any]) -> list[str]:
    return [f"{c['label']}: {c['text']['en']}" + (f" → {c['gives']}" if c["gives"] else "") for c in rule["conditions"]]


def _rule_changes(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[dict[str, Any]]:
    changes = []
    for key in _RULE_FIELDS:
        before, after = a[key], b[key]
        if key == "conditions":
            before, after = "; ".join(_conditions_text(a)), "; ".join(_conditions_text(b))
        if before != after:
            changes.append({"what": key, "before": before, "after": after})
    return changes


def _versions(p: Mapping[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """(region, from) -> the value, formula and reference of that dated entry."""
    return {
        (r["region"], v["from"]): {"value": v["value"], "formula": v["formula"], "reference": v["reference"]}
        for r in p["regions"]
        for v in r["values"]
    }


def _parameter_changes(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[dict[str, Any]]:
    va, vb = _versions(a), _versions(b)
    changes = []
    for key in sorted(set(va) | set(vb)):
        region, start = key
        before, after = va.get(key), vb.get(key)
        if before == after:
            continue
        what = "added" if before is None else "removed" if after is None else "changed"
        changes.append({"region": region, "from": start, "what": what, "before": before, "after": after})
    if a["title"] != b["title"]:
        changes.append({"region": "", "from": "", "what": "title", "before": a["title"], "after": b["title"]})
    if a["unit"] != b["unit"]:
        changes.append({"region": "", "from": "", "what": "unit", "before": a["unit"], "after": b["unit"]})
    return changes


def file_diff(before: Mapping[str, str], after: Mapping[str, str]) -> list[dict[str, Any]]:
    """Each file added, removed or changed, with its unified diff (at most ``MAX_DIFF_LINES``)."""
    out = []
    for name in sorted(set(before) | set(after)):
        a, b = before.get(name), after.get(name)
        if a == b:
            continue
        status = "added" if a is None else "removed" if b is None else "changed"
        lines = list(
            difflib.unified_diff(
                (a or "").splitlines(), (b or "").splitlines(), f"a/{name}", f"b/{name}", n=2, lineterm=""
            )
        )
        out.append(
            {
                "file": name,
                "status": status,
                "lines": lines[:MAX_DIFF_LINES],
                "more": max(0, len(lines) - MAX_DIFF_LINES),
            }
        )
    return out


def _by_id(items: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {str(i[key]): i for i in items}


def diff_rulesets(base: Ruleset, head: Ruleset) -> dict[str, Any]:
    """Everything that differs from ``base`` to ``head``.

    ``programs``: added and removed ids, and those whose title or legal basis changed;
    ``rules`` and ``parameters``: ``added``, ``removed`` (the whole description) and
    ``changed`` (id, title, program, each change with before and after), each item with its
    ``program``; ``by_program``: the counts per program; ``files``: line diffs.
    """
    pa = _by_id(base.programs, "id")
    pb = _by_id(head.programs, "id")
    programs = {
        "added": [pb[k] for k in pb if k not in pa],
        "removed": [pa[k] for k in pa if k not in pb],
        "changed": [
            {"id": k, "before": pa[k], "after": pb[k]}
            for k in pb
            if k in pa and (pa[k]["title"], pa[k]["legal_basis"]) != (pb[k]["title"], pb[k]["legal_basis"])
        ],
    }
    ra = _by_id(describe_rules(base), "id")
    rb = _by_id(describe_rules(head), "id")
    rules: dict[str, list[dict[str, Any]]] = {
        "added": [rb[k] for k in rb if k not in ra],
        "removed": [ra[k] for k in ra if k not in rb],
        "changed": [],
    }
    for k in rb:
        if k in ra:
            changes = _rule_changes(ra[k], rb[k])
            if changes:
                rules["changed"].append(
                    {"id": k, "program": rb[k]["program"], "title": rb[k]["title"], "changes": changes}
                )
    names = set(pa) | set(pb)
    xa = _by_id(describe_parameters(base), "name")
    xb = _by_id(describe_parameters(head), "name")
    for p in [*xa.values(), *xb.values()]:
        p["program"] = program_of(p["name"], names)
    parameters: dict[str, list[dict[str, Any]]] = {
        "added": [xb[k] for k in xb if k not in xa],
        "removed": [xa[k] for k in xa if k not in xb],
        "changed": [],
    }
    for k in xb:
        if k in xa:
            changes = _parameter_changes(xa[k], xb[k])
            if changes:
                parameters["changed"].append(
                    {"name": k, "program": xb[k]["program"], "title": xb[k]["title"], "changes": changes}
                )
    counts: dict[str, dict[str, int]] = {}
    for section, items in (("rules", rules), ("parameters", parameters)):
        for what, listed in items.items():
            for item in listed:
                row = counts.setdefault(item["program"], {})
                row[f"{section}_{what}"] = row.get(f"{section}_{what}", 0) + 1
    return {
        "base": {"version": base.ruleset_version},
        "head": {"version": head.ruleset_version},
        "same": base.digest == head.digest,
        "programs": programs,
        "rules": rules,
        "parameters": parameters,
        "by_program": dict(sorted(counts.items())),
        "files": file_diff(base.files, head.files),
    }
