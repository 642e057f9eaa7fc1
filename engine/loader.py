"""Load a rules folder into a checked ``Ruleset``: every problem at once, with ``file:line:col``.

Layout of a rules folder::

    ruleset.yaml          name, version, decision field order
    record.yaml           household and member fields, registries
    parameters/*.yaml     dated parameters per region
    programs/*.yaml       derived values, rules, tables, outcomes, outputs, findings
    tests/*.yaml          rule tests as data
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import itertools
import os
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine import ir
from engine.errors import Problem, ProblemKind, RuleLoadError, did_you_mean
from engine.expressions import ExprError, parse_expression, unify
from engine.precedence import dead_cases
from engine.record import RecordSchema, load_record_schema
from engine.ruleset import (
    Case,
    Interval,
    Outcome,
    Parameter,
    ParameterVersion,
    RegistrySpec,
    Ruleset,
    RuleTest,
    Symbol,
    Table,
    TableRow,
)
from engine.source import MAX_FILES, Pos, YList, YMap, YStr, count_files, pos_of, read_yaml
from engine.tables import check_unique, parse_interval
from engine.types import BOOL, INT, STR, Type, enum_type, registry_type

__all__ = ["BUILTIN_FIELDS", "load"]

BUILTIN_FIELDS = ("household_id", "decision_date", "ruleset_version", "findings", "reasons")
_TYPE_NAMES = {"money", "decimal", "int", "bool", "date", "str", "enum"}
_REPORTS = {"fail", "fire", "pass", "always", "never"}
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][\w.]*)\}")

_KEYS: dict[str, tuple[set[str], set[str]]] = {
    # section: (allowed keys, required keys)
    "ruleset.yaml": ({"ruleset", "decision", "explain_members", "default_region", "reports"}, {"ruleset", "decision"}),
    "ruleset": ({"name", "version", "title"}, {"name", "version"}),
    "program": (
        {"program", "title", "legal_basis", "derived", "rules", "tables", "outcomes", "outputs", "findings"},
        {"program", "title", "legal_basis"},
    ),
    "derived": ({"id", "title", "per", "expr", "type", "description"}, {"id", "title", "expr"}),
    "rule": ({"id", "title", "legal_basis", "per", "applies", "when", "report", "messages"}, {"id", "title", "when"}),
    "table": (
        {
            "id",
            "title",
            "legal_basis",
            "per",
            "applies",
            "hit_policy",
            "input",
            "domain",
            "outputs",
            "rows",
            "otherwise",
            "max_by",
            "report",
        },
        {"id", "title", "outputs", "rows"},
    ),
    "outcome": (
        {"id", "title", "legal_basis", "per", "field", "hit_policy", "cases", "otherwise"},
        {"id", "title", "field", "hit_policy", "cases", "otherwise"},
    ),
    "case": ({"id", "title", "legal_basis", "when", "value", "set", "messages", "report"}, {"id", "title", "value"}),
    "output": ({"id", "title", "type", "expr"}, {"id", "title", "type", "expr"}),
    "finding": ({"id", "code", "title", "legal_basis", "when", "messages"}, {"id", "code", "title", "when"}),
    "parameter": ({"title", "unit", "values", "description"}, {"title", "unit", "values"}),
    "version": ({"value", "formula", "reference"}, {"reference"}),
    "registry": ({"title", "key", "columns", "computed"}, {"title", "key"}),
    "test": ({"name", "date", "household", "extends", "set", "registries", "expected"}, {"name", "expected"}),
}


# why a required key matters, where the key's name alone does not say
_WHY = {
    "reference": " (the document the value comes from, shown with every decision)",
    "hit_policy": " (how its cases take precedence: `hit_policy: first` tries them in the order written)",
}
_OUTCOME_POLICIES = ("first",)


class _Silent(Exception):
    """A dependency already failed and was reported; stop without a second error."""


def _check_keys(
    m: Any, section: str, problems: list[Problem], rule_id: str | None = None, where: Pos | None = None
) -> bool:
    allowed, required = _KEYS[section]
    if not isinstance(m, YMap):
        p = where or pos_of(m)
        problems.append(p.problem(ProblemKind.BAD_TYPE, f"a {section} must be a mapping", rule_id))
        return False
    for key in m:
        if key not in allowed:
            hint = did_you_mean(str(key), allowed)
            problems.append(
                m.key_pos[key].problem(ProblemKind.UNKNOWN_KEY, f"unknown key `{key}` in {section}{hint}", rule_id)
            )
    for key in sorted(required - set(m)):
        problems.append(m.pos.problem(ProblemKind.MISSING_KEY, f"{section} needs `{key}`{_WHY.get(key, '')}", rule_id))
    return True


_LANGS = ("zh", "en")


def _text(m: Any, key: str, problems: list[Problem] | None = None) -> dict[str, str]:
    """A {zh, en} text; with ``problems``, anything else in it is reported."""
    v = m.get(key) if isinstance(m, YMap) else None
    if isinstance(v, YMap):
        if problems is not None:
            for k in v:
                if k not in _LANGS:
                    hint = "; a comma inside unquoted text splits it, so quote the text"
                    problems.append(
                        v.key_pos[k].problem(
                            ProblemKind.UNKNOWN_KEY, f"`{key}` has only `zh` and `en`, not `{k}`{hint}"
                        )
                    )
            for lang in _LANGS:
                if lang not in v:
                    problems.append(v.pos.problem(ProblemKind.MISSING_KEY, f"`{key}` needs `{lang}`"))
        return {str(k): str(x) for k, x in v.items()}
    if isinstance(v, str):
        return {"zh": v, "en": v}
    return {}


def _declared_type(name: Any, pos: Pos, problems: list[Problem], rule_id: str) -> Type | None:
    text = str(name)
    nullable = text.endswith("?")
    base = text.rstrip("?")
    if base not in _TYPE_NAMES:
        problems.append(
            pos.problem(ProblemKind.UNKNOWN_TYPE, f"unknown type `{base}`{did_you_mean(base, _TYPE_NAMES)}", rule_id)
        )
        return None
    return Type(base, nullable)


class _Loader:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.problems: list[Problem] = []
        self.files: dict[str, str] = {}
        self.symbols: dict[tuple[str, str], Symbol] = {}
        self.parameters: dict[str, Parameter] = {}
        self.registries: dict[str, RegistrySpec] = {}
        self.programs: list[dict[str, Any]] = []
        self.templates: dict[str, tuple[Any, Pos]] = {}
        self.raw_tests: list[tuple[str, YMap]] = []
        self.stack: list[tuple[str, str]] = []
        self.failed: set[tuple[str, str]] = set()
        self.record: RecordSchema | None = None
        self.reports: dict[str, Any] = {}
        self.unread = False  # some file could not be read (syntax, size, depth, aliases)
        self.formulas: dict[tuple[str, str, dt.date], YStr] = {}  # parameter formulas as written

    # ------------------------------------------------------------ files

    def _yaml(self, path: Path) -> tuple[str, Any]:
        display = path.relative_to(self.root).as_posix()
        text, doc, ok = read_yaml(path, display, self.problems)
        if text is not None:
            self.files[display] = text
        self.unread |= not ok
        return display, doc

    def _glob(self, sub: str) -> list[Path]:
        """The folder's rule files, sorted; listing stops past the file limit (a folder of a
        million files costs no more than one just over the limit)."""
        folder = self.root / sub
        if not folder.is_dir():
            return []
        with os.scandir(folder) as entries:
            yaml_files = (Path(e.path) for e in entries if e.name.endswith(".yaml") and e.is_file())
            return sorted(itertools.islice(yaml_files, MAX_FILES + 1))

    def _read_all(self) -> dict[str, list[tuple[str, Any]]]:
        """Phase 1: read every rule file, within the engine's limits, before checking any."""
        if not self.root.is_dir():
            raise RuleLoadError(
                [Problem(ProblemKind.MISSING_FOLDER, f"rules folder {self.root} does not exist", str(self.root), 0, 0)]
            )
        for name in ("ruleset.yaml", "record.yaml"):
            if not (self.root / name).exists():
                self.problems.append(Problem(ProblemKind.MISSING_FILE, f"{name} is missing", name, 0, 0))
        if self.problems:
            raise RuleLoadError(self.problems)
        listed = {sub: self._glob(sub) for sub in ("parameters", "programs", "tests")}
        singles = [self.root / "ruleset.yaml", self.root / "record.yaml", self.root / "events.yaml"]
        _, too_many = count_files(itertools.chain(singles, *listed.values()), ".")
        if too_many is not None:
            raise RuleLoadError([too_many])
        docs = {path.name: [self._yaml(path)] for path in singles[:2]}
        docs.update({sub: [self._yaml(path) for path in paths] for sub, paths in listed.items()})
        if singles[2].exists():
            docs[singles[2].name] = [self._yaml(singles[2])]
        if self.unread:
            # a file that could not be read defines nothing, so every later check would only
            # report what it lacks: report the reading problems alone
            raise RuleLoadError(self.problems)
        return docs

    def run(self) -> Ruleset:
        docs = self._read_all()
        head_file, head = docs["ruleset.yaml"][0]
        record_file, record_doc = docs["record.yaml"][0]
        self.record = load_record_schema(record_doc, record_file, self.problems)
        if self.record:
            self._inputs(self.record)
        if isinstance(record_doc, YMap) and "registries" in record_doc:
            self._registries(record_doc["registries"])
        for display, doc in docs["parameters"]:
            self._parameter_file(display, doc)
        for display, doc in docs["programs"]:
            self._program_file(display, doc)
        for display, doc in docs["tests"]:
            self._test_file(display, doc)
        events_file, events_doc = docs.get("events.yaml", [("events.yaml", None)])[0]
        decision, name, version, explain, default_region = self._head(head_file, head)
        self._compile_all()
        self._set_shown()
        self._check_parameter_coverage()
        self._check_parameter_regions()
        tests = self._tests()
        events = {}
        if events_doc is not None and self.record is not None:
            from engine.events import load_events

            programs = {str(p["id"]) for p in self.programs}
            events = load_events(events_doc, events_file, self.record, programs, set(self.registries), self.problems)
        if self.problems or self.record is None:
            raise RuleLoadError(self.problems)
        digest = hashlib.sha256()
        for display in sorted(self.files):
            digest.update(display.encode() + b"\0" + self.files[display].encode() + b"\0")
        return Ruleset(
            name=name,
            version=version,
            digest=digest.hexdigest(),
            record=self.record,
            symbols=self.symbols,
            parameters=self.parameters,
            parameter_order=self._parameter_order(),
            registries=self.registries,
            decision_fields=decision,
            explain_members=explain,
            programs=self.programs,
            tests=tests,
            files=dict(self.files),
            default_region=default_region,
            events=events,
            reports=self.reports,
        )

    # ------------------------------------------------------------ head and inputs

    def _head(self, display: str, doc: Any) -> tuple[list[str], str, str, str, str]:
        if not _check_keys(doc, "ruleset.yaml", self.problems, where=Pos(display, 1, 1)):
            return [], "", "", "", ""
        meta = doc.get("ruleset")
        name = version = ""
        if _check_keys(meta, "ruleset", self.problems, where=doc.pos):
            name, version = str(meta.get("name", "")), str(meta.get("version", ""))
        fields = doc.get("decision")
        decision: list[str] = []
        if not isinstance(fields, YList):
            self.problems.append(
                pos_of(doc, "decision").problem(
                    ProblemKind.BAD_TYPE, "`decision` must list the decision fields in order"
                )
            )
            return [], name, version, "", ""
        known = [
            n for (sc, n), s in self.symbols.items() if sc == "household" and s.kind in ("output", "outcome", "set")
        ]
        for i, f in enumerate(fields):
            f = str(f)
            if f not in BUILTIN_FIELDS and ("household", f) not in self.symbols:
                self.problems.append(
                    fields.item_pos[i].problem(
                        ProblemKind.UNKNOWN_NAME,
                        f"decision field `{f}` is not defined by any program{did_you_mean(f, known)}",
                    )
                )
            decision.append(f)
        explain = str(doc.get("explain_members", "members"))
        if ("household", explain) not in self.symbols:
            self.problems.append(
                pos_of(doc, "explain_members").problem(ProblemKind.UNKNOWN_NAME, f"`{explain}` is not a member list")
            )
        region = str(doc.get("default_region", ""))
        self.reports = self._reports(doc.get("reports"), pos_of(doc, "reports"), decision)
        return decision, name, version, explain, region

    def _reports(self, raw: Any, where: Pos, decision: list[str]) -> dict[str, Any]:
        """The `reports` section: every name must be a decision field or a named value."""
        if raw is None:
            return {}
        if not isinstance(raw, YMap):
            self.problems.append(where.problem(ProblemKind.BAD_TYPE, "`reports` must be a mapping"))
            return {}
        known = set(decision) | {n for (sc, n) in self.symbols if sc == "household"}
        out = _plain(raw)

        def check(name: Any, pos: Pos) -> None:
            if str(name) not in known:
                self.problems.append(
                    pos.problem(
                        ProblemKind.UNKNOWN_NAME,
                        f"reports: `{name}` is not a decision field or named value{did_you_mean(str(name), known)}",
                    )
                )

        for key in ("statuses", "amounts", "disclosure"):
            section = raw.get(key)
            if isinstance(section, YMap):
                for name in section:
                    check(name, section.key_pos[name])
        for key in ("paid_before", "income", "approval"):
            section = raw.get(key)
            if isinstance(section, YMap):
                for k, v in section.items():
                    check(v, section.value_pos[k])
        monitored = raw.get("monitored")
        if isinstance(monitored, YList):
            for i, name in enumerate(monitored):
                check(name, monitored.item_pos[i])
        return out if isinstance(out, dict) else {}

    def _add(self, sym: Symbol) -> None:
        key = (sym.scope, sym.name)
        other = self.symbols.get(key)
        if other is not None:
            self.problems.append(
                sym.pos.problem(
                    ProblemKind.DUPLICATE_ID,
                    f"`{sym.name}` is already defined at {other.pos.file}:{other.pos.line}:{other.pos.col}",
                    sym.name,
                )
            )
            return
        self.symbols[key] = sym

    def _inputs(self, record: RecordSchema) -> None:
        for name, t in record.household_types().items():
            self._add(Symbol(name, "household", "input", t, title={}))
        for name, t in record.member_types().items():
            self._add(Symbol(name, "member", "input", t, title={}))
        titles = {s.name: s.title for s in record.household}
        titles.update({sub.name: sub.title for s in record.household for sub in s.fields})
        for (scope, name), sym in self.symbols.items():
            sym.title = (
                titles.get(name, {})
                if scope == "household"
                else next((s.title for s in record.member if s.name == name), {})
            )

    def _registries(self, doc: Any) -> None:
        if not isinstance(doc, YMap):
            self.problems.append(pos_of(doc).problem(ProblemKind.BAD_TYPE, "`registries` must be a mapping"))
            return
        from engine.record import _spec  # the same field-spec reader as record fields

        for name, spec in doc.items():
            if not _check_keys(spec, "registry", self.problems, f"registry.{name}", doc.value_pos[name]):
                continue
            columns = []
            cols = spec.get("columns")
            if isinstance(cols, YMap):
                for col, raw in cols.items():
                    fs = _spec(
                        str(col), raw, cols.value_pos[col], self.problems, {"str", "resident_id", "date", "enum", "int"}
                    )
                    if fs:
                        columns.append(fs)
            elif "computed" not in spec:
                self.problems.append(
                    spec.pos.problem(
                        ProblemKind.MISSING_KEY, "a registry needs `columns` or `computed`", f"registry.{name}"
                    )
                )
            reg = RegistrySpec(
                str(name), _text(spec, "title", self.problems), str(spec.get("key")), columns, spec.get("computed")
            )
            if columns and reg.key not in {c.name for c in columns}:
                self.problems.append(
                    pos_of(spec, "key").problem(
                        ProblemKind.UNKNOWN_NAME, f"key `{reg.key}` is not one of the columns", f"registry.{name}"
                    )
                )
            self.registries[reg.name] = reg
            self._add(
                Symbol(f"registry.{name}", "household", "registry", registry_type(), title=reg.title, pos=spec.pos)
            )

    # ------------------------------------------------------------ parameters

    def _parameter_file(self, display: str, doc: Any) -> None:
        if doc is None:
            return
        if not isinstance(doc, YMap) or set(doc) != {"parameters"} or not isinstance(doc["parameters"], YMap):
            self.problems.append(
                Problem(ProblemKind.BAD_FILE, "a parameter file holds one mapping `parameters:`", display, 1, 1)
            )
            return
        params = doc["parameters"]
        for name, spec in params.items():
            name = str(name)
            if not _check_keys(spec, "parameter", self.problems, name, params.value_pos[name]):
                continue
            t = _declared_type(spec.get("unit"), pos_of(spec, "unit"), self.problems, name)
            regions: dict[str, list[ParameterVersion]] = {}
            values = spec.get("values")
            if not isinstance(values, YMap):
                self.problems.append(
                    pos_of(spec, "values").problem(
                        ProblemKind.BAD_TYPE, "`values` maps region -> {date: {value, reference}}", name
                    )
                )
                continue
            for region, dated in values.items():
                if not isinstance(dated, YMap) or not dated:
                    self.problems.append(
                        values.value_pos[region].problem(
                            ProblemKind.BAD_TYPE, f"region {region}: map dates to values", name
                        )
                    )
                    continue
                versions = []
                for start, v in dated.items():
                    vpos = dated.key_pos[start]
                    if not isinstance(start, dt.date):
                        self.problems.append(
                            vpos.problem(ProblemKind.BAD_DATE, f"`{start}` is not a date YYYY-MM-DD", name)
                        )
                        continue
                    if not _check_keys(v, "version", self.problems, name, dated.value_pos[start]):
                        continue
                    if ("value" in v) == ("formula" in v):
                        self.problems.append(
                            v.pos.problem(ProblemKind.BAD_VERSION, "give exactly one of `value` or `formula`", name)
                        )
                        continue
                    formula = v.get("formula")
                    if isinstance(formula, YStr):  # kept so an error inside it points into the text
                        self.formulas[(name, str(region), start)] = formula
                    # a missing `reference` is reported by _check_keys; "" keeps the value usable,
                    # so the one problem is not followed by "no value on <date>" everywhere
                    reference = str(v.get("reference", ""))
                    versions.append(ParameterVersion(start, v.get("value"), None, str(formula or ""), reference, v.pos))
                regions[str(region)] = sorted(versions, key=lambda x: x.start)
            p = Parameter(name, _text(spec, "title", self.problems), t or STR, regions, spec.pos)
            self.parameters[name] = p
            sym = Symbol(name, "household", "parameter", None, title=p.title, pos=p.pos, raw={"param": p})
            sym.type = None if t else STR
            self._add(sym)

    def _compile_parameter(self, sym: Symbol) -> Type:
        p: Parameter = sym.raw["param"]
        for region, versions in p.regions.items():
            for v in versions:
                if v.formula_text:
                    text = self.formulas.get((p.name, region, v.start), v.formula_text)
                    expr = self._expr(text, v.pos, "household", p.name, only_parameters=True)
                    if expr is not None:
                        self._expect_type(expr, p.type, v.pos, p.name)
                        v.formula = expr
                else:
                    v.value = self._literal(v.value, p.type, v.pos, p.name)
        return p.type

    def _literal(self, value: Any, t: Type, pos: Pos, rule_id: str) -> Any:
        checks: dict[str, Callable[[Any], bool]] = {
            "money": lambda x: isinstance(x, int | Decimal) and not isinstance(x, bool),
            "decimal": lambda x: isinstance(x, int | Decimal) and not isinstance(x, bool),
            "int": lambda x: isinstance(x, int) and not isinstance(x, bool),
            "bool": lambda x: isinstance(x, bool),
            "date": lambda x: isinstance(x, dt.date),
            "str": lambda x: isinstance(x, str),
        }
        ok = checks.get(t.kind, lambda x: True)
        if isinstance(value, str) and t.kind in ("money", "decimal"):
            with contextlib.suppress(ArithmeticError):
                value = Decimal(value)
        if not ok(value):
            self.problems.append(pos.problem(ProblemKind.TYPE_ERROR, f"`{value}` is not {t.describe()}", rule_id))
            return value
        if t.kind in ("money", "decimal"):
            value = Decimal(value)
            if t.kind == "money":
                value = value.quantize(Decimal("0.01"))
        return value

    def _check_parameter_coverage(self) -> None:
        """A formula must find a value of every parameter it uses from its own start date."""
        for p in self.parameters.values():
            for region, versions in p.regions.items():
                for i, v in enumerate(versions):
                    if v.formula is None:
                        continue
                    end = versions[i + 1].start if i + 1 < len(versions) else None
                    for dep in _refs(v.formula):
                        dp = self.parameters.get(dep)
                        if dp is None:
                            continue
                        regions = [region] if region != "*" else [r for r in dp.regions if r != "*"] or ["*"]
                        for r in regions:
                            found = dp.version(r, v.start)
                            if found is None:
                                first = min((x.start for x in dp.regions.get(r, dp.regions.get("*", []))), default=None)
                                until = f" (its first value is from {first})" if first else ""
                                span = f"{v.start}" + (f"..{end}" if end else " on")
                                self.problems.append(
                                    v.pos.problem(
                                        ProblemKind.MISSING_PARAMETER_VERSION,
                                        f"`{p.name}` for region {r} from {span} uses `{dep}`, which has no value for region {r} on {v.start}{until}",
                                        p.name,
                                    )
                                )

    def _check_parameter_regions(self) -> None:
        """Every parameter has values for every region any parameter names (or for `*`)."""
        regions: dict[str, str] = {}
        for p in self.parameters.values():
            for r in p.regions:
                if r != "*":
                    regions.setdefault(r, p.name)
        for p in self.parameters.values():
            if "*" in p.regions:
                continue
            for r, owner in sorted(regions.items()):
                if r not in p.regions:
                    self.problems.append(
                        p.pos.problem(
                            ProblemKind.MISSING_PARAMETER_VERSION,
                            f'`{p.name}` has no values for region {r}, which `{owner}` defines; add "{r}" or "*"',
                            p.name,
                        )
                    )

    def _parameter_order(self) -> list[str]:
        order: list[str] = []
        seen: set[str] = set()

        def visit(name: str) -> None:
            if name in seen or name not in self.parameters:
                return
            seen.add(name)
            for versions in self.parameters[name].regions.values():
                for v in versions:
                    if v.formula is not None:
                        for dep in _refs(v.formula):
                            visit(dep)
            order.append(name)

        for name in sorted(self.parameters):
            visit(name)
        return order

    # ------------------------------------------------------------ programs

    def _program_file(self, display: str, doc: Any) -> None:
        if doc is None:
            return
        if not _check_keys(doc, "program", self.problems, where=Pos(display, 1, 1)):
            return
        program = str(doc.get("program"))
        basis = str(doc.get("legal_basis", ""))
        self.programs.append(
            {"id": program, "title": _text(doc, "title", self.problems), "legal_basis": basis, "file": display}
        )
        for section, handler in (
            ("derived", self._derived),
            ("rules", self._rule),
            ("tables", self._table),
            ("outcomes", self._outcome),
            ("outputs", self._output),
            ("findings", self._finding),
        ):
            items = doc.get(section)
            if items is None:
                continue
            if not isinstance(items, YList):
                self.problems.append(pos_of(doc, section).problem(ProblemKind.BAD_TYPE, f"`{section}` must be a list"))
                continue
            for i, item in enumerate(items):
                kind = {
                    "derived": "derived",
                    "rules": "rule",
                    "tables": "table",
                    "outcomes": "outcome",
                    "outputs": "output",
                    "findings": "finding",
                }[section]
                rid = str(item.get("id")) if isinstance(item, YMap) and "id" in item else None
                if _check_keys(item, kind, self.problems, rid, items.item_pos[i]) and rid:
                    handler(item, program, basis)

    def _scope(self, item: YMap, rid: str) -> str:
        per = str(item.get("per", "household"))
        if per not in ("household", "member"):
            self.problems.append(
                pos_of(item, "per").problem(ProblemKind.BAD_VALUE, f"`per` is household or member, not `{per}`", rid)
            )
            return "household"
        return per

    def _report(self, item: YMap, rid: str, default: str) -> str:
        report = str(item.get("report", default))
        if report not in _REPORTS:
            self.problems.append(
                pos_of(item, "report").problem(
                    ProblemKind.BAD_VALUE, f"`report` is one of {', '.join(sorted(_REPORTS))}", rid
                )
            )
            return default
        return report

    def _derived(self, item: YMap, program: str, basis: str) -> None:
        rid = str(item["id"])
        self._add(
            Symbol(
                rid,
                self._scope(item, rid),
                "derived",
                title=_text(item, "title", self.problems),
                legal_basis=basis,
                program=program,
                pos=item.pos,
                raw=item,
            )
        )

    def _rule(self, item: YMap, program: str, basis: str) -> None:
        rid = str(item["id"])
        sym = Symbol(
            rid,
            self._scope(item, rid),
            "rule",
            title=_text(item, "title", self.problems),
            legal_basis=str(item.get("legal_basis", basis)),
            program=program,
            pos=item.pos,
            report=self._report(item, rid, "fail"),
            messages=self._messages(item, rid),
            raw=item,
        )
        self._add(sym)

    def _messages(self, item: YMap, rid: str) -> dict[str, dict[str, str]]:
        msgs = item.get("messages")
        if msgs is None:
            return {}
        if not isinstance(msgs, YMap):
            self.problems.append(
                pos_of(item, "messages").problem(ProblemKind.BAD_TYPE, "`messages` maps pass/fail to {zh, en}", rid)
            )
            return {}
        out = {}
        for k, v in msgs.items():
            if k not in ("pass", "fail") or not isinstance(v, YMap):
                self.problems.append(
                    msgs.key_pos[k].problem(
                        ProblemKind.BAD_VALUE, "messages has `pass` and `fail`, each {zh: ..., en: ...}", rid
                    )
                )
                continue
            out[str(k)] = {str(lang): str(text) for lang, text in v.items()}
        return out

    def _table(self, item: YMap, program: str, basis: str) -> None:
        rid = str(item["id"])
        scope = self._scope(item, rid)
        sym = Symbol(
            rid,
            scope,
            "table",
            STR,
            title=_text(item, "title", self.problems),
            legal_basis=str(item.get("legal_basis", basis)),
            program=program,
            pos=item.pos,
            report=self._report(item, rid, "fire"),
            raw=item,
        )
        self._add(sym)
        outputs = item.get("outputs")
        if isinstance(outputs, YMap):
            for col, tname in outputs.items():
                t = _declared_type(tname, outputs.value_pos[col], self.problems, rid)
                self._add(
                    Symbol(
                        f"{rid}.{col}",
                        scope,
                        "table_output",
                        t,
                        title=sym.title,
                        program=program,
                        pos=outputs.value_pos[col],
                        owner=rid,
                        column=str(col),
                    )
                )
        else:
            self.problems.append(
                pos_of(item, "outputs").problem(ProblemKind.BAD_TYPE, "`outputs` maps column names to types", rid)
            )

    def _outcome(self, item: YMap, program: str, basis: str) -> None:
        rid = str(item["id"])
        scope = self._scope(item, rid)
        basis = str(item.get("legal_basis", basis))
        self._add(
            Symbol(
                rid,
                scope,
                "outcome_index",
                INT,
                title=_text(item, "title", self.problems),
                legal_basis=basis,
                program=program,
                pos=item.pos,
                raw=item,
            )
        )
        field = str(item.get("field"))
        self._add(
            Symbol(
                field,
                scope,
                "outcome",
                None,
                title=_text(item, "title", self.problems),
                legal_basis=basis,
                program=program,
                pos=pos_of(item, "field"),
                owner=rid,
            )
        )
        policy = item.get("hit_policy")
        if policy is not None and policy not in _OUTCOME_POLICIES:
            self.problems.append(
                pos_of(item, "hit_policy").problem(
                    ProblemKind.BAD_VALUE,
                    f"an outcome's hit_policy is `first` (cases in the order written), not `{policy}`",
                    rid,
                )
            )
        cases = item.get("cases")
        sets: dict[str, Pos] = {}
        if not isinstance(cases, YList):
            self.problems.append(pos_of(item, "cases").problem(ProblemKind.BAD_TYPE, "`cases` must be a list", rid))
            return
        all_cases = [(c, cases.item_pos[i]) for i, c in enumerate(cases)]
        other = item.get("otherwise")
        if other is not None:
            all_cases.append((other, pos_of(item, "otherwise")))
        for c, cpos in all_cases:
            cid = str(c.get("id")) if isinstance(c, YMap) else None
            if not _check_keys(c, "case", self.problems, cid or rid, cpos) or not cid:
                continue
            is_other = c is other
            if not is_other and "when" not in c:
                self.problems.append(c.pos.problem(ProblemKind.MISSING_KEY, "case needs `when`", cid))
            if is_other and "when" in c:
                self.problems.append(pos_of(c, "when").problem(ProblemKind.BAD_VALUE, "`otherwise` has no `when`", cid))
            self._add(
                Symbol(
                    cid,
                    scope,
                    "case",
                    BOOL,
                    title=_text(c, "title", self.problems),
                    legal_basis=str(c.get("legal_basis", basis)),
                    program=program,
                    pos=c.pos,
                    report=self._report(c, cid, "fire"),
                    messages=self._messages(c, cid),
                    owner=rid,
                    raw=c,
                )
            )
            s = c.get("set") or YMap()
            if isinstance(s, YMap):
                for k in s:
                    sets.setdefault(str(k), s.key_pos[k])
            else:
                self.problems.append(
                    pos_of(c, "set").problem(ProblemKind.BAD_TYPE, "`set` maps decision fields to expressions", cid)
                )
        for k, kpos in sets.items():
            self._add(
                Symbol(
                    k,
                    scope,
                    "set",
                    None,
                    title=_text(item, "title", self.problems),
                    program=program,
                    pos=kpos,
                    owner=rid,
                    column=k,
                )
            )

    def _output(self, item: YMap, program: str, basis: str) -> None:
        rid = str(item["id"])
        t = _declared_type(item.get("type"), pos_of(item, "type"), self.problems, rid)
        self._add(
            Symbol(
                rid,
                "household",
                "output",
                None,
                title=_text(item, "title", self.problems),
                legal_basis=basis,
                program=program,
                pos=item.pos,
                raw={"item": item, "declared": t},
            )
        )

    def _finding(self, item: YMap, program: str, basis: str) -> None:
        rid = str(item["id"])
        self._add(
            Symbol(
                rid,
                "household",
                "finding",
                BOOL,
                title=_text(item, "title", self.problems),
                legal_basis=str(item.get("legal_basis", basis)),
                program=program,
                pos=item.pos,
                report="fire",
                code=str(item.get("code")),
                messages=self._messages(item, rid),
                raw=item,
            )
        )

    # ------------------------------------------------------------ checking

    def lookup(self, name: str, scope: str) -> Type | None:
        sym = self.symbols.get((scope, name))
        if sym is None:
            return None
        if self._only_parameters and sym.kind != "parameter":
            return None
        key = (scope, name)
        if key in self.failed:
            raise _Silent
        if sym.type is None or (
            sym.kind in ("table", "outcome_index", "case", "rule", "finding", "derived") and key not in self.done
        ):
            self._compile(sym)
        if sym.type is None:
            raise _Silent
        return sym.type

    def names(self, scope: str) -> list[str]:
        return [
            n
            for (sc, n), s in self.symbols.items()
            if sc == scope and (not self._only_parameters or s.kind == "parameter")
        ]

    def is_registry(self, name: str) -> bool:
        return name in self.registries or (name.startswith("registry.") and name[9:] in self.registries)

    _only_parameters = False
    done: set[tuple[str, str]]

    def _compile_all(self) -> None:
        self.done = set()
        for sym in list(self.symbols.values()):
            if sym.kind not in ("input", "registry"):
                with contextlib.suppress(_Silent):
                    self._compile(sym)

    def _compile(self, sym: Symbol) -> None:
        key = (sym.scope, sym.name)
        if key in self.done:
            return
        if key in self.failed:
            raise _Silent
        if key in self.stack:
            cycle = [n for _, n in self.stack[self.stack.index(key) :]] + [sym.name]
            self.problems.append(
                sym.pos.problem(ProblemKind.CYCLE, "definitions depend on themselves: " + " -> ".join(cycle), sym.name)
            )
            for k in self.stack[self.stack.index(key) :]:
                self.failed.add(k)
            raise _Silent
        self.stack.append(key)
        try:
            handler = getattr(self, f"_c_{sym.kind}")
            handler(sym)
            self.done.add(key)
        except _Silent:
            self.failed.add(key)
            raise
        finally:
            self.stack.pop()
        if sym.type is None:
            self.failed.add(key)

    def _expr(self, text: Any, pos: Pos, scope: str, rule_id: str, only_parameters: bool = False) -> ir.Expr | None:
        if isinstance(text, bool | int):
            text = str(text)
        if not isinstance(text, str):
            self.problems.append(pos.problem(ProblemKind.BAD_TYPE, "an expression must be text", rule_id))
            return None
        saved = self._only_parameters
        self._only_parameters = only_parameters
        try:
            return parse_expression(text, self, scope)
        except ExprError as exc:
            base = text.pos if isinstance(text, YStr) else pos
            quoted = 1 if isinstance(text, YStr) and text.style in ("'", '"') else 0
            if exc.line <= 1:
                where = Pos(base.file, base.line, base.col + quoted + exc.col)
            else:
                where = Pos(base.file, base.line + exc.line - 1, exc.col + 1)
            self.problems.append(where.problem(exc.kind, exc.message, rule_id))
            return None
        finally:
            self._only_parameters = saved

    def _expect_type(self, expr: ir.Expr, want: Type, pos: Pos, rule_id: str) -> None:
        got = expr.type
        if got.kind == "null" and want.nullable:
            return
        same = (
            got.kind == want.kind
            or (want.kind == "decimal" and got.kind == "int")
            or (want.kind == "money" and isinstance(expr, ir.Const) and got.numeric)
        )
        if want.kind == "enum" and got.kind == "enum":
            same = True
        if not same:
            self.problems.append(
                pos.problem(ProblemKind.TYPE_ERROR, f"expected {want.describe()}, got {got.describe()}", rule_id)
            )
        elif got.nullable and not want.nullable:
            self.problems.append(
                pos.problem(
                    ProblemKind.TYPE_ERROR,
                    f"this may be None but the declared type `{want.kind}` is not optional (write `{want.kind}?`)",
                    rule_id,
                )
            )

    def _bool(self, item: YMap, key: str, scope: str, rid: str) -> ir.Expr | None:
        expr = self._expr(item.get(key), pos_of(item, key), scope, rid)
        if expr is not None and expr.type.kind != "bool":
            self.problems.append(
                pos_of(item, key).problem(
                    ProblemKind.TYPE_ERROR, f"`{key}` must be true/false, got {expr.type.describe()}", rid
                )
            )
            return None
        if expr is not None and expr.type.nullable:
            self.problems.append(
                pos_of(item, key).problem(ProblemKind.TYPE_ERROR, f"`{key}` may be None; test `is None` first", rid)
            )
        return expr

    def _check_messages(self, sym: Symbol) -> None:
        for texts in sym.messages.values():
            for text in texts.values():
                for name in _PLACEHOLDER.findall(text):
                    if ("household", name) in self.symbols or (
                        sym.scope == "member" and ("member", name) in self.symbols
                    ):
                        continue
                    pool = self.names("household") + (self.names("member") if sym.scope == "member" else [])
                    self.problems.append(
                        sym.pos.problem(
                            ProblemKind.UNKNOWN_NAME,
                            f"message placeholder `{{{name}}}` is not a known name{did_you_mean(name, pool)}",
                            sym.name,
                        )
                    )

    def _set_shown(self) -> None:
        """What each traced definition shows: the values its condition reads, then its message's."""
        for sym in self.symbols.values():
            exprs: list[ir.Expr | None] = [sym.expr, sym.applies]
            if sym.kind == "case":
                owner = self.symbols.get((sym.scope, sym.owner))
                case = (
                    next((c for c in owner.outcome.cases if c.id == sym.name), None)
                    if owner and owner.outcome
                    else None
                )
                exprs = [case.cond] if case else []
            if sym.kind == "table" and sym.table is not None:
                exprs = [sym.table.input, *(r.cond for r in sym.table.rows)]
            shown: dict[tuple[str, str], None] = {}
            for e in exprs:
                for ref in _ref_nodes(e):
                    if ref.scope == "household" or (sym.scope == "member" and not ref.var):
                        shown.setdefault((ref.scope, ref.name))
            for texts in sym.messages.values():
                for text in texts.values():
                    for name in _PLACEHOLDER.findall(text):
                        scope = "member" if sym.scope == "member" and ("member", name) in self.symbols else "household"
                        shown.setdefault((scope, name))
            sym.shown = tuple(k for k in shown if not k[1].startswith("registry."))

    def _c_parameter(self, sym: Symbol) -> None:
        sym.type = self._compile_parameter(sym)
        sym.deps = tuple(
            sorted({d for vs in sym.raw["param"].regions.values() for v in vs if v.formula for d in _refs(v.formula)})
        )

    def _c_derived(self, sym: Symbol) -> None:
        expr = self._expr(sym.raw.get("expr"), pos_of(sym.raw, "expr"), sym.scope, sym.name)
        if expr is None:
            raise _Silent
        if "type" in sym.raw:
            t = _declared_type(sym.raw["type"], pos_of(sym.raw, "type"), self.problems, sym.name)
            if t:
                self._expect_type(expr, t, pos_of(sym.raw, "expr"), sym.name)
        sym.expr, sym.type, sym.deps = expr, expr.type, _refs(expr)

    def _c_rule(self, sym: Symbol) -> None:
        item = sym.raw
        if "when" not in item:
            raise _Silent  # reported as a missing key already
        sym.applies = self._bool(item, "applies", sym.scope, sym.name) if "applies" in item else None
        sym.expr = self._bool(item, "when", sym.scope, sym.name)
        if sym.expr is None:
            raise _Silent
        sym.type, sym.deps = BOOL, _refs(sym.expr)
        self._check_messages(sym)

    def _c_finding(self, sym: Symbol) -> None:
        sym.expr = self._bool(sym.raw, "when", "household", sym.name)
        if sym.expr is None:
            raise _Silent
        sym.deps = _refs(sym.expr)
        self._check_messages(sym)

    def _c_output(self, sym: Symbol) -> None:
        item, declared = sym.raw["item"], sym.raw["declared"]
        expr = self._expr(item.get("expr"), pos_of(item, "expr"), "household", sym.name)
        if expr is None or declared is None:
            raise _Silent
        self._expect_type(expr, declared, pos_of(item, "expr"), sym.name)
        t = declared if declared.kind != "enum" else expr.type.with_nullable(declared.nullable)
        sym.expr, sym.type, sym.deps = expr, t, _refs(expr)

    def _c_table(self, sym: Symbol) -> None:
        item, rid, scope = sym.raw, sym.name, sym.scope
        outputs = {
            s.column: s.type
            for s in self.symbols.values()
            if s.kind == "table_output" and s.owner == rid and s.scope == scope
        }
        policy = str(item.get("hit_policy", "unique"))
        if policy not in ("unique", "first", "max"):
            self.problems.append(
                pos_of(item, "hit_policy").problem(
                    ProblemKind.BAD_VALUE, f"hit_policy is unique, first or max, not `{policy}`", rid
                )
            )
            raise _Silent
        sym.applies = self._bool(item, "applies", scope, rid) if "applies" in item else None
        inp = self._expr(item.get("input"), pos_of(item, "input"), scope, rid) if "input" in item else None
        if policy == "unique" and inp is None:
            self.problems.append(
                item.pos.problem(ProblemKind.MISSING_KEY, "a unique table needs an `input` and interval rows", rid)
            )
            raise _Silent
        rows: list[TableRow] = []
        raw_rows = item.get("rows")
        if not isinstance(raw_rows, YList) or not raw_rows:
            self.problems.append(
                pos_of(item, "rows").problem(ProblemKind.BAD_TYPE, "`rows` must be a non-empty list", rid)
            )
            raise _Silent
        for i, raw in enumerate(raw_rows):
            row = self._row(raw, raw_rows.item_pos[i], rid, scope, outputs, policy, inp)
            if row:
                rows.append(row)
        other = (
            self._row(item["otherwise"], pos_of(item, "otherwise"), rid, scope, outputs, "otherwise", inp)
            if "otherwise" in item
            else None
        )
        max_by = str(item.get("max_by", next(iter(outputs), "")))
        if policy == "max" and outputs.get(max_by) is None:
            self.problems.append(
                item.pos.problem(ProblemKind.BAD_VALUE, "hit_policy max needs `max_by`, a numeric output column", rid)
            )
        if policy == "unique" and inp is not None:
            dom_text = item.get("domain")
            domain = (
                parse_interval(str(dom_text))
                if dom_text is not None
                else Interval(Decimal(0), True, None, False)
                if inp.type.kind == "money"
                else Interval(None, False, None, False)
            )
            if domain is None:
                self.problems.append(
                    pos_of(item, "domain").problem(
                        ProblemKind.BAD_VALUE, f"`{dom_text}` is not an interval like [1, 3] or [0, inf)", rid
                    )
                )
            else:
                for row, kind, msg in check_unique(rows, domain, inp.type.kind == "int"):
                    self.problems.append(row.pos.problem(kind, msg, rid))
        sym.table = Table(policy, inp, dict(outputs), rows, other, max_by if policy == "max" else None)  # type: ignore[arg-type]
        sym.deps = tuple(
            sorted(set(_refs(inp) if inp else ()) | {d for r in rows for d in (_refs(r.cond) if r.cond else ())})
        )

    def _row(
        self,
        raw: Any,
        where: Pos,
        rid: str,
        scope: str,
        outputs: dict[str, Type | None],
        policy: str,
        inp: ir.Expr | None,
    ) -> TableRow | None:
        if not isinstance(raw, YMap) or "id" not in raw:
            self.problems.append(where.problem(ProblemKind.BAD_TYPE, "a table row is a mapping with an `id`", rid))
            return None
        row_id = str(raw["id"])
        for key in raw:
            if key not in ("id", "title", "when") and key not in outputs:
                self.problems.append(
                    raw.key_pos[key].problem(
                        ProblemKind.UNKNOWN_KEY,
                        f"row `{row_id}`: unknown column `{key}`{did_you_mean(str(key), list(outputs))}",
                        rid,
                    )
                )
        interval = None
        cond = None
        if policy == "unique":
            interval = parse_interval(str(raw.get("when", "")))
            if interval is None:
                self.problems.append(
                    pos_of(raw, "when").problem(
                        ProblemKind.BAD_VALUE,
                        f"row `{row_id}`: `when` must be an interval like [1, 1] or (20000, 50000]",
                        rid,
                    )
                )
        elif policy != "otherwise":
            if "when" not in raw:
                self.problems.append(raw.pos.problem(ProblemKind.MISSING_KEY, f"row `{row_id}` needs `when`", rid))
            else:
                cond = self._bool(raw, "when", scope, rid)
        cells: dict[str, ir.Expr] = {}
        for col, t in outputs.items():
            if col not in raw:
                self.problems.append(
                    raw.pos.problem(ProblemKind.MISSING_KEY, f"row `{row_id}` has no value for column `{col}`", rid)
                )
                continue
            cell = self._cell(raw[col], pos_of(raw, col), t, scope, rid)
            if cell is not None:
                cells[col] = cell
        return TableRow(row_id, _text(raw, "title"), interval, cond, cells, raw.pos)

    def _cell(self, value: Any, pos: Pos, t: Type | None, scope: str, rid: str) -> ir.Expr | None:
        if t is None:
            return None
        if isinstance(value, str) and t.kind not in ("str", "enum"):
            expr = self._expr(value, pos, scope, rid)
            if expr is not None:
                self._expect_type(expr, t, pos, rid)
            return expr
        return ir.Const(t, self._literal(value, t, pos, rid))

    def _c_table_output(self, sym: Symbol) -> None:
        if sym.type is None:
            raise _Silent
        owner = self.symbols[(sym.scope, sym.owner)]
        sym.deps = (owner.name,)

    def _c_outcome_index(self, sym: Symbol) -> None:
        cases = [s for s in self.symbols.values() if s.kind == "case" and s.owner == sym.name and s.scope == sym.scope]
        compiled: list[Case] = []
        for c in cases:
            item = c.raw
            cond = self._bool(item, "when", sym.scope, c.name) if "when" in item else None
            sets: dict[str, ir.Expr] = {}
            s = item.get("set")
            for k, text in s.items() if isinstance(s, YMap) else ():  # another shape is reported already
                e = self._expr(text, pos_of(s, k), sym.scope, c.name)
                if e is not None:
                    sets[str(k)] = e
            compiled.append(Case(c.name, item.get("value"), cond, sets, c.title, c.legal_basis, c.messages, c.pos))
            c.deps = _refs(cond) if cond else ()
            self._check_messages(c)
        otherwise = [case for case in compiled if case.cond is None]
        ordered = [case for case in compiled if case.cond is not None] + otherwise
        other = sym.raw.get("otherwise")
        if all(cc.cond is not None or c.raw is other for c, cc in zip(cases, compiled, strict=True)):
            self._check_precedence(ordered)  # only when every `when` compiled: a failed one is no `otherwise`
        all_sets = {k for case in ordered for k in case.sets}
        for case in ordered:
            for k in sorted(all_sets - set(case.sets)):
                self.problems.append(
                    case.pos.problem(
                        ProblemKind.MISSING_KEY,
                        f"case `{case.id}` does not set `{k}`, which other cases of `{sym.name}` set",
                        case.id,
                    )
                )
        field_sym = next(
            (s for s in self.symbols.values() if s.kind == "outcome" and s.owner == sym.name and s.scope == sym.scope),
            None,
        )
        if field_sym is None:
            raise _Silent  # its `field` clashed with another name: reported as a duplicate id
        values = tuple(dict.fromkeys(str(case.value) for case in ordered))
        field_sym.type = enum_type(values)
        for k in all_sets:
            set_sym = self.symbols[(sym.scope, k)]
            exprs = [c.sets[k] for c in ordered if k in c.sets]
            t = unify(exprs) if exprs else None
            if isinstance(t, str):
                self.problems.append(
                    set_sym.pos.problem(ProblemKind.TYPE_ERROR, f"cases set `{k}` to different types: {t}", sym.name)
                )
                continue
            if t is not None and t.kind == "null":
                t = None
            set_sym.type = t
            set_sym.deps = (sym.name,)
        sym.outcome = Outcome(field_sym.name, ordered)
        field_sym.deps = (sym.name,)

    def _check_precedence(self, ordered: list[Case]) -> None:
        """Report each case that earlier cases always pre-empt (``engine.precedence``)."""
        for i, covers in dead_cases([c.cond for c in ordered]):
            case = ordered[i]
            before = ", ".join(f"`{ordered[j].id}`" for j in covers)
            if case.cond is None:
                why = f"`otherwise` (`{case.id}`) can never apply: one of the cases before it ({before}) always holds"
            elif len(covers) == 1:
                why = f"case `{case.id}` can never apply: {before} comes first and holds whenever it would"
            else:
                why = f"case `{case.id}` can never apply: one of the cases before it ({before}) holds whenever it would"
            hint = "; reorder the cases or narrow the earlier `when`"
            self.problems.append(case.pos.problem(ProblemKind.UNREACHABLE_CASE, why + hint, case.id))

    def _c_case(self, sym: Symbol) -> None:
        self.lookup(sym.owner, sym.scope)

    def _c_outcome(self, sym: Symbol) -> None:
        self.lookup(sym.owner, sym.scope)

    def _c_set(self, sym: Symbol) -> None:
        self.lookup(sym.owner, sym.scope)

    # ------------------------------------------------------------ rule tests

    def _test_file(self, display: str, doc: Any) -> None:
        if doc is None:
            return
        if not isinstance(doc, YMap):
            self.problems.append(
                Problem(ProblemKind.BAD_FILE, "a test file maps `tests:` (and optional `templates:`)", display, 1, 1)
            )
            return
        for key in doc:
            if key not in ("tests", "templates"):
                self.problems.append(
                    doc.key_pos[key].problem(
                        ProblemKind.UNKNOWN_KEY, f"unknown key `{key}`{did_you_mean(str(key), ['tests', 'templates'])}"
                    )
                )
        templates = doc.get("templates") or YMap()
        if not isinstance(templates, YMap):
            self.problems.append(
                pos_of(doc, "templates").problem(ProblemKind.BAD_TYPE, "`templates` maps names to households")
            )
            templates = YMap()
        for name, household in templates.items():
            self.templates[str(name)] = (household, templates.value_pos[name])
        tests = doc.get("tests") or YList()
        if not isinstance(tests, YList):
            self.problems.append(pos_of(doc, "tests").problem(ProblemKind.BAD_TYPE, "`tests` must be a list"))
            tests = YList()
        for i, t in enumerate(tests):
            name = str(t.get("name")) if isinstance(t, YMap) else None
            if _check_keys(t, "test", self.problems, name, tests.item_pos[i]) and "name" in t:
                self.raw_tests.append((display, t))

    def _tests(self) -> list[RuleTest]:
        out = []
        decision = {
            n for (sc, n), s in self.symbols.items() if sc == "household" and s.kind in ("output", "outcome", "set")
        } | set(BUILTIN_FIELDS)
        for display, t in self.raw_tests:
            name = str(t["name"])
            household = _plain(t.get("household")) if "household" in t else None
            if "extends" in t:
                tpl = self.templates.get(str(t["extends"]))
                if tpl is None:
                    self.problems.append(
                        pos_of(t, "extends").problem(
                            ProblemKind.UNKNOWN_NAME,
                            f"no template `{t['extends']}`{did_you_mean(str(t['extends']), self.templates)}",
                            name,
                        )
                    )
                    continue
                household = _plain(tpl[0])
            if household is None:
                self.problems.append(
                    t.pos.problem(ProblemKind.MISSING_KEY, "a test needs `household` or `extends`", name)
                )
                continue
            if not self._shape(household, dict, "a test household is a mapping", t, "household", name):
                continue
            changes = t.get("set") or YMap()
            if not self._shape(changes, YMap, "`set` maps paths like `members[0].age` to values", t, "set", name):
                changes = YMap()
            for path, value in changes.items():
                if not _set_path(household, str(path), _plain(value)):
                    self.problems.append(
                        changes.key_pos[path].problem(
                            ProblemKind.UNKNOWN_NAME, f"cannot set `{path}`: no such place in the household", name
                        )
                    )
            date = t.get("date")
            if date is not None:
                household["decision_date"] = date.isoformat() if isinstance(date, dt.date) else str(date)
            expected = t.get("expected")
            if expected is not None and not self._shape(
                expected, YMap, "`expected` maps decision fields to values", t, "expected", name
            ):
                continue
            if isinstance(expected, YMap):
                for key in expected:
                    if key not in decision and key not in ("reasons_include", "error"):
                        self.problems.append(
                            expected.key_pos[key].problem(
                                ProblemKind.UNKNOWN_NAME,
                                f"`{key}` is not a decision field{did_you_mean(str(key), decision)}",
                                name,
                            )
                        )
            on = date if isinstance(date, dt.date) else None
            region = str(household.get("region") or self._default_region())
            if on is not None:
                for p in self.parameters.values():
                    if p.version(region, on) is None and (region in p.regions or "*" in p.regions):
                        self.problems.append(
                            t.pos.problem(
                                ProblemKind.MISSING_PARAMETER_VERSION,
                                f"parameter `{p.name}` has no value for region {region} on {on}",
                                name,
                            )
                        )
            raw_regs = t.get("registries") or YMap()
            if not self._shape(raw_regs, YMap, "`registries` maps registry names to lists", t, "registries", name):
                raw_regs = YMap()
            regs = {str(k): [str(x) for x in v] if isinstance(v, list) else [str(v)] for k, v in raw_regs.items()}
            for k in regs:
                if k not in self.registries:
                    self.problems.append(
                        raw_regs.key_pos[k].problem(
                            ProblemKind.UNKNOWN_NAME, f"unknown registry `{k}`{did_you_mean(k, self.registries)}", name
                        )
                    )
            out.append(RuleTest(name, display, t.pos, on, household, _plain(expected) or {}, regs))
        return out

    def _shape(self, value: Any, want: type, message: str, where: YMap, key: str, rule_id: str) -> bool:
        """Whether ``value`` (``where[key]``) is a ``want``; if not, say so."""
        if isinstance(value, want):
            return True
        self.problems.append(pos_of(where, key).problem(ProblemKind.BAD_TYPE, message, rule_id))
        return False

    def _default_region(self) -> str:
        if self.record:
            for spec in self.record.household:
                if spec.name == "region" and spec.has_default:
                    return str(spec.default)
        return ""


def _refs(expr: ir.Expr | None) -> tuple[str, ...]:
    """Names an expression reads, in first-use order."""
    return tuple(dict.fromkeys(r.name for r in _ref_nodes(expr)))


def _ref_nodes(expr: ir.Expr | None) -> list[ir.Ref]:
    """Every name reference in an expression (registries as household refs), in order."""
    seen: list[ir.Ref] = []

    def walk(e: Any) -> None:
        if isinstance(e, ir.Ref):
            seen.append(e)
        elif isinstance(e, ir.InSet) and e.registry:
            name = e.registry if e.registry.startswith("registry.") else f"registry.{e.registry}"
            seen.append(ir.Ref(e.type, name, "household"))
        if isinstance(e, ir.Expr):
            for v in vars(e).values():
                if isinstance(v, ir.Expr):
                    walk(v)
                elif isinstance(v, tuple):
                    for x in v:
                        walk(x)

    walk(expr)
    return seen


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, YStr):
        return str(v)
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, Decimal):
        return str(v)
    return v


_PATH = re.compile(r"([A-Za-z_]\w*)(?:\[(\d+)\])?")


def _set_path(doc: dict[str, Any], path: str, value: Any) -> bool:
    """Set ``members[0].monthly_income``-style paths inside a household copy."""
    parts = path.split(".")
    cur: Any = doc
    for i, part in enumerate(parts):
        m = _PATH.fullmatch(part)
        if not m or not isinstance(cur, dict):
            return False
        key, idx = m.group(1), m.group(2)
        last = i == len(parts) - 1
        if idx is not None:
            seq = cur.get(key)
            if not isinstance(seq, list) or int(idx) > len(seq):
                return False
            if int(idx) == len(seq):
                seq.append(dict(seq[-1]) if seq and isinstance(seq[-1], dict) else {})
            if last:
                seq[int(idx)] = value
                return True
            cur = seq[int(idx)]
        elif last:
            cur[key] = value
            return True
        else:
            if cur.get(key) is None:
                cur[key] = {}
            cur = cur[key]
    return True


def load(path: str | Path) -> Ruleset:
    """Load and check a rules folder; raise ``RuleLoadError`` listing every problem.

    >>> rs = load("rules")
    >>> rs.name
    'haimen-social-assistance'
    """
    loader = _Loader(Path(path))
    try:
        return loader.run()
    except RuleLoadError:
        raise
    except Exception as exc:  # a check that met a shape it did not expect: still only our error
        message = (
            f"the checks stopped on an unexpected {type(exc).__name__} ({exc}); the problems listed"
            " with it are the likely cause. Please report this with the rule files"
        )
        raise RuleLoadError([*loader.problems, Problem(ProblemKind.INTERNAL, message, ".", 0, 0)]) from exc
