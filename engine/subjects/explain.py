"""An officer's reading of a decision on a non-household record: Chinese first, then English."""

from __future__ import annotations

from typing import Any

from .evaluate import SubjectDecision

__all__ = ["explain_text"]

_WORDS = {
    "zh": {
        "date": "联审日期",
        "version": "规则版本",
        "result": "结论",
        "reasons": "理由",
        "none": "无",
        "record": "记录",
        "basis": "依据",
        "required": "应报送部门",
        "missing": "未反馈部门",
        "valid": "结论有效期至",
        "recheck": "选举日晚于有效期，须在选举前重新联审",
        "open": "至今",
        "open_paren": "（",
        "comma": "，",
        "close_paren": "）",
        "semicolon": "；",
    },
    "en": {
        "date": "review date",
        "version": "ruleset",
        "result": "Result",
        "reasons": "Reasons",
        "none": "none",
        "record": "record",
        "basis": "basis",
        "required": "Departments asked",
        "missing": "Departments not reported",
        "valid": "Valid until",
        "recheck": "The election is after the validity: review again before it",
        "open": "open",
        "open_paren": " (",
        "comma": ", ",
        "close_paren": ")",
        "semicolon": "; ",
    },
}


def explain_text(d: SubjectDecision, langs: tuple[str, ...] = ("zh", "en")) -> str:
    """The decision as text, one block per language (Chinese first by default)."""
    return "\n".join(_block(d, lang) for lang in langs)


def _block(d: SubjectDecision, lang: str) -> str:
    spec, f, w = d.spec, d.fields, _WORDS[lang]
    status = f[spec.status_field]
    status_title = next((t.get(lang, v) for v, _, t in spec.status_cases if v == status), status)
    action = f[spec.action_field]
    action_title = spec.action_titles.get(action, {}).get(lang, action)
    lines = [
        f"{spec.title.get(lang, spec.name)} {f[spec.role('id')]}{w['open_paren']}{w['date']} {f[spec.role('date')]}"
        f"{w['comma']}{w['version']} {f['ruleset_version']}{w['close_paren']}",
        f"  {w['result']}: {status_title} — {action_title}",
        f"  {w['reasons']}:" + ("" if d.reasons else f" {w['none']}"),
    ]
    for i, r in enumerate(d.reasons, start=1):
        lines.append(f"    {i}. {r['message'].get(lang, '')}")
        for rec in r["records"]:
            lines.append(f"       {w['record']}: {_record(spec, rec, w, lang)}")
        lines.append(f"       {w['basis']}: {r['legal_basis']}")
    lines.append(f"  {w['required']}: {_departments(spec, d.required_departments, lang) or w['none']}")
    lines.append(f"  {w['missing']}: {_departments(spec, f['missing_departments'], lang) or w['none']}")
    if "valid_until" in f:
        lines.append(
            f"  {w['valid']} {f['valid_until']}"
            + (f"{w['semicolon']}{w['recheck']}" if f.get("recheck_required") else "")
        )
    return "\n".join(lines)


def _departments(spec: Any, codes: list[str], lang: str) -> str:
    """Department codes as officers read them (the record type's `department_titles`)."""
    return ("、" if lang == "zh" else ", ").join(spec.department_titles.get(c, {}).get(lang, c) for c in codes)


def _record(spec: Any, rec: dict[str, Any], w: dict[str, str], lang: str) -> str:
    end = rec["end_date"] or w["open"]
    category = next((c.title.get(lang, c.id) for c in spec.categories if c.id == rec["category"]), rec["category"])
    department = _departments(spec, [rec["department"]], lang)
    return f"{category} {department} {rec['start_date']} – {end}{w['open_paren']}{rec['reference']}{w['close_paren']}"
