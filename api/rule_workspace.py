"""A rule change before it is published: a candidate bundle linted, tested, compared with the
rules in force and tried on one household.

A candidate is a bundle's bytes, as the API receives them. It is unpacked within the zip
limits here (no YAML is read in the server process), and loaded and tested only in the
limited worker of ``api.bundles``; only a bundle the worker loaded is loaded again here, the
same way the service loads a published version from the store. Publishing goes through
``Service.publish``, as the API's does.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import re
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from api.bundles import BundleLimits, CheckedBundle, check_bundle, unpack_bundle, write_files
from api.cache import LRU
from engine import (
    BadValue,
    Evaluator,
    FieldProblem,
    InputError,
    RuleLoadError,
    Ruleset,
    load,
    parse_value,
)
from engine import text as catalogue_text

if TYPE_CHECKING:
    from api.service import Service

__all__ = [
    "CheckReport",
    "annotate",
    "bundle_of",
    "candidate_ruleset",
    "check_candidate",
    "drop_draft",
    "edited",
    "load_draft",
    "load_files",
    "marked_lines",
    "save_draft",
    "try_household",
]

_TEST_AT = re.compile(r"^(?P<file>[^:]+):(?P<line>[0-9]+)$")  # a failed rule test's field: file:line
_CONTEXT = 2  # lines shown above and below a problem


def bundle_of(files: Mapping[str, str]) -> bytes:
    """A bundle (.zip, files at its root) of a rules folder's files."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name in sorted(files):
            z.writestr(name, files[name])
    return buf.getvalue()


def load_files(files: Mapping[str, str]) -> Ruleset:
    """A ruleset from files the bundle worker has already loaded once within its limits."""
    with tempfile.TemporaryDirectory() as tmp:
        write_files(Path(tmp), files)
        return load(tmp)


# ------------------------------------------------------------------ problems at their lines


def _problem(p: Mapping[str, Any]) -> dict[str, Any]:
    """A problem as ``{file, line, col, kind, message, rule_id}``: a loader problem as it is,
    a failed rule test (field ``file:line``) or a zip problem (field ``name``) made alike."""
    if "file" in p:
        return {k: p.get(k) for k in ("file", "line", "col", "kind", "message", "rule_id")}
    where = str(p.get("field", ""))
    m = _TEST_AT.match(where)
    if m:
        return {
            "file": m["file"],
            "line": int(m["line"]),
            "col": 0,
            "kind": "rule-test",
            "message": p.get("message"),
            "rule_id": None,
        }
    return {"file": where, "line": 0, "col": 0, "kind": "bundle", "message": p.get("message"), "rule_id": None}


def annotate(problems: Sequence[Mapping[str, Any]], files: Mapping[str, str]) -> list[dict[str, Any]]:
    """Each problem with the text of its line (``source``) and the lines around it (``context``:
    ``[line number, text]``), for showing the problem next to the line it is about.

    >>> p = {"kind": "unknown-name", "message": "unknown name", "file": "a.yaml", "line": 2, "col": 7, "rule_id": None}
    >>> shown = annotate([p], {"a.yaml": "x: 1\\nwhen: T < y\\n"})[0]
    >>> shown["source"], shown["context"][-1]
    ('when: T < y', [2, 'when: T < y'])
    """
    out = []
    for raw in problems:
        p = _problem(raw)
        lines = files.get(str(p["file"]), "").splitlines()
        n = int(p["line"] or 0)
        p["source"] = lines[n - 1] if 0 < n <= len(lines) else ""
        p["context"] = [[i, lines[i - 1]] for i in range(max(1, n - _CONTEXT), min(len(lines), n + _CONTEXT) + 1)]
        out.append(p)
    return out


def marked_lines(text: str, problems: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A file's lines, each with the problems at that line: an editor shows them beside it.

    >>> rows = marked_lines("a\\nb", [{"line": 2, "col": 1, "kind": "k", "message": "m"}])
    >>> [(r["n"], len(r["problems"])) for r in rows]
    [(1, 0), (2, 1)]
    """
    by_line: dict[int, list[Mapping[str, Any]]] = {}
    for p in problems:
        by_line.setdefault(int(p.get("line") or 0), []).append(p)
    return [{"n": i, "text": t, "problems": by_line.get(i, [])} for i, t in enumerate(text.splitlines(), start=1)]


# ------------------------------------------------------------------ checking a candidate


def _load_only(data: bytes, limits: BundleLimits) -> CheckedBundle:
    """The worker's check without the rule tests: unpack and load (lint)."""
    files = unpack_bundle(data, limits)
    with tempfile.TemporaryDirectory() as tmp:
        write_files(Path(tmp), files)
        rs = load(tmp)
    return CheckedBundle(rs.ruleset_version, dict(rs.files), 0)


@dataclass
class CheckReport:
    """What checking a candidate found. ``stage`` is how far it got: ``unpack`` (a zip
    problem), ``lint`` (rule file problems), ``tests`` (failed rule tests) or ``ok``."""

    stage: str
    files: dict[str, str] = field(default_factory=dict)
    problems: list[dict[str, Any]] = field(default_factory=list)
    version: str = ""
    tests: int = 0
    tested: bool = False

    @property
    def ok(self) -> bool:
        return self.stage == "ok"


# the last few bundles checked, by content: a draft is linted once, then tried, compared and
# previewed without another worker run (the same bytes always give the same report)
_REPORTS: LRU[tuple[str, bool, BundleLimits], CheckReport] = LRU(8)
_LOADED: LRU[str, Ruleset] = LRU(2)  # a loaded ruleset is ~10 MB: only the drafts in use


def check_candidate(data: bytes, limits: BundleLimits, tests: bool) -> CheckReport:
    """Lint a candidate bundle (and run its rule tests when ``tests``) in the limited worker;
    every problem comes back at its file:line:col with the line's text. Blocks while the
    worker runs: call it off the event loop."""
    digest = hashlib.sha256(data).hexdigest()
    found = _REPORTS.get((digest, tests, limits))
    if found is None and not tests:
        tested = _REPORTS.get((digest, True, limits))
        found = tested if tested is not None and tested.stage in ("ok", "lint") else None
    if found is None:
        found = _check_candidate(data, limits, tests)
        _REPORTS.put((digest, tests, limits), found)
    return found


def candidate_ruleset(report: CheckReport) -> Ruleset:
    """The ruleset of a bundle the worker loaded (``report.ok``), loaded here once per content."""
    key = hashlib.sha256(json.dumps(report.files, sort_keys=True).encode("utf-8")).hexdigest()
    rs = _LOADED.get(key)
    if rs is None:
        rs = load_files(report.files)
        _LOADED.put(key, rs)
    return rs


def _check_candidate(data: bytes, limits: BundleLimits, tests: bool) -> CheckReport:
    try:
        files = unpack_bundle(data, limits)
    except InputError as exc:
        return CheckReport("unpack", problems=annotate([p.as_dict() for p in exc.problems], {}))
    try:
        checked = check_bundle(data, limits) if tests else check_bundle(data, limits, check=_load_only)
    except RuleLoadError as exc:
        return CheckReport("lint", files, annotate([p.as_dict() for p in exc.problems], files))
    except InputError as exc:  # failed rule tests, or the worker's limits
        found = annotate([p.as_dict() for p in exc.problems], files)
        stage = "tests" if any(p["kind"] == "rule-test" for p in found) else "refused"
        return CheckReport(stage, files, found, tested=tests)
    return CheckReport("ok", files, [], checked.version, checked.tests, tests)


# ------------------------------------------------------------------ one household, both ways


def _day(raw: Mapping[str, Any]) -> dt.date:
    try:
        day: dt.date = parse_value("date", raw.get("decision_date"))
    except (BadValue, TypeError):
        return dt.date.today()
    return day or dt.date.today()


def _side(ev: Evaluator, raw: Mapping[str, Any]) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """A decision (JSON form, explanation included) or the problems that reject the household."""
    try:
        return ev.decide(raw).to_dict(explain=True), []
    except InputError as exc:
        return None, [p.as_dict() for p in exc.problems]


def try_household(service: Service, candidate: Ruleset, raw: Any, lang: str) -> dict[str, Any]:
    """One household decided under the rules in force on its decision date and under the
    candidate, side by side: every decision field, the rules whose outcome differs and the
    parameter values that differ. Nothing is stored."""
    if not isinstance(raw, Mapping):
        raise InputError([FieldProblem("(body)", catalogue_text("input.one_household", "en"))])
    rid = service.ruleset_for(_day(raw))
    base_ev, _ = service.evaluator(rid)
    head_ev = Evaluator(candidate, base_ev.registries)
    base, base_errors = _side(base_ev, raw)
    head, head_errors = _side(head_ev, raw)
    fields = []
    names = list((base or {}).keys()) + [k for k in (head or {}) if k not in (base or {})]
    for name in names:
        if name in ("explanation", "reasons", "ruleset_version"):  # the versions head the page
            continue
        a, b = (base or {}).get(name), (head or {}).get(name)
        fields.append({"field": name, "current": a, "candidate": b, "changed": a != b})
    rules = _rule_outcomes(base, head, lang)
    params = _parameter_values(base, head)
    return {
        "ruleset_id": rid,
        "current_version": base_ev.ruleset.ruleset_version,
        "candidate_version": candidate.ruleset_version,
        "current_errors": base_errors,
        "candidate_errors": head_errors,
        "fields": fields,
        "changed": [f["field"] for f in fields if f["changed"]],
        "rules": rules,
        "parameters": params,
    }


def _key(r: Mapping[str, Any]) -> tuple[str, str]:
    return (str(r["rule"]), str(r.get("person_id") or ""))


def _rule_outcomes(base: Mapping[str, Any] | None, head: Mapping[str, Any] | None, lang: str) -> list[dict[str, Any]]:
    """Rules (per member where per-member) whose outcome or message differs."""
    ra = {_key(r): r for r in ((base or {}).get("explanation") or {}).get("rules", [])}
    rb = {_key(r): r for r in ((head or {}).get("explanation") or {}).get("rules", [])}
    out = []
    for key in [*ra, *(k for k in rb if k not in ra)]:
        a, b = ra.get(key), rb.get(key)
        oa = a["outcome"] if a else None
        ob = b["outcome"] if b else None
        ma = a["message"][lang] if a else ""
        mb = b["message"][lang] if b else ""
        if oa != ob or ma != mb:
            title = (b or a or {}).get("title", {})
            out.append(
                {
                    "rule": key[0],
                    "person_id": key[1] or None,
                    "title": title,
                    "current": oa,
                    "candidate": ob,
                    "current_message": ma,
                    "candidate_message": mb,
                }
            )
    return out


def _parameter_values(base: Mapping[str, Any] | None, head: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    pa = {p["name"]: p for p in ((base or {}).get("explanation") or {}).get("parameters", [])}
    pb = {p["name"]: p for p in ((head or {}).get("explanation") or {}).get("parameters", [])}
    out = []
    for name in [*pa, *(k for k in pb if k not in pa)]:
        a, b = pa.get(name), pb.get(name)
        if (a or {}).get("value") != (b or {}).get("value") or (a or {}).get("version") != (b or {}).get("version"):
            out.append({"name": name, "current": a, "candidate": b})
    return out


# ------------------------------------------------------------------ a policy officer's draft


def _draft_path(data_dir: Path, user_id: int) -> Path:
    return data_dir / "drafts" / f"user-{int(user_id)}.zip"


def save_draft(data_dir: Path, user_id: int, data: bytes) -> None:
    """Keep a candidate bundle as the user's draft (one each, on disk: every server process
    of the service sees it), readable by the service's user only."""
    path = _draft_path(data_dir, user_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o600)
    tmp.replace(path)


def load_draft(data_dir: Path, user_id: int) -> bytes | None:
    path = _draft_path(data_dir, user_id)
    return path.read_bytes() if path.is_file() else None


def drop_draft(data_dir: Path, user_id: int) -> None:
    _draft_path(data_dir, user_id).unlink(missing_ok=True)


def edited(files: Mapping[str, str], name: str, text: str, limits: BundleLimits) -> dict[str, str]:
    """The files with one of them replaced by ``text`` (as a browser sends it: CRLF becomes LF).

    >>> edited({"a.yaml": "x"}, "a.yaml", "y\\r\\n", BundleLimits())
    {'a.yaml': 'y\\n'}
    """
    if name not in files:
        raise InputError([FieldProblem("file", catalogue_text("input.draft_no_file", "en", name=name))])
    text = text.replace("\r\n", "\n")
    if len(text.encode("utf-8")) > limits.entry_bytes:
        raise InputError(
            [FieldProblem("text", catalogue_text("input.rule_file_bytes", "en", bound=limits.entry_bytes))]
        )
    return {**files, name: text}
