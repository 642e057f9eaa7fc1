"""What the HTTP service does, independent of HTTP: decide and store, approve, publish rule
versions, keep registry versions, run screening jobs, export public disclosures."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from api.idempotency import IdempotencyKey, KeyTaken, request_hash, store_decisions, stored_result, valid_key
from api.masking import mask_id, mask_name
from api.store import AlreadyDecided, LedgerRecord, Store, User
from engine import (
    Decision,
    Evaluator,
    FieldProblem,
    InputError,
    Registries,
    Registry,
    Ruleset,
    load,
    parse_registry_csv,
    run_tests,
)

__all__ = ["Conflict", "Forbidden", "NotFound", "Service", "Settings"]

_BUNDLED_FROM = dt.date(1900, 1, 1)


@dataclass
class Settings:
    db_url: str
    rules_dir: Path
    data_dir: Path
    relatives: Path | None = None
    filings: Path | None = None
    limits: dict[str, int] = field(
        default_factory=lambda: {
            "decision": 256 * 1024,
            "batch": 16 * 1024 * 1024,
            "rules": 8 * 1024 * 1024,
            "registry": 64 * 1024 * 1024,
            "caseload": 1024 * 1024 * 1024,
        }
    )


class NotFound(Exception):
    pass


class Forbidden(Exception):
    pass


class Conflict(Exception):
    pass


def _parse_day(raw: Mapping[str, Any]) -> dt.date:
    value = raw.get("decision_date")
    if value is None:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise InputError([FieldProblem("decision_date", f"must be a date YYYY-MM-DD (got {value!r})")]) from None


class Service:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = Store(settings.db_url)
        self._lock = threading.Lock()
        self._rulesets: dict[int, Ruleset] = {}
        self._evaluators: dict[tuple[int, tuple[int, ...]], Evaluator] = {}
        self._registries: dict[str, dict[str, Any]] | None = None
        self._bootstrap()

    # ------------------------------------------------------------ start-up

    def _bootstrap(self) -> None:
        if not self.store.rulesets():
            rs = load(self.settings.rules_dir)
            self.store.add_ruleset(rs.ruleset_version, _BUNDLED_FROM, rs.files, None)
        for name, path in (("relatives", self.settings.relatives), ("filings", self.settings.filings)):
            if path is not None and self.store.latest_registry(name) is None:
                self.upload_registry(name, Path(path).read_text(encoding="utf-8"), None)

    # ------------------------------------------------------------ rules and registries

    def ruleset(self, rid: int) -> Ruleset:
        with self._lock:
            rs = self._rulesets.get(rid)
            if rs is None:
                files = self.store.ruleset_files(rid)
                if files is None:
                    raise NotFound(f"ruleset {rid}")
                with tempfile.TemporaryDirectory() as tmp:
                    _write_files(Path(tmp), files)
                    rs = load(tmp)
                self._rulesets[rid] = rs
            return rs

    def ruleset_for(self, day: dt.date) -> int:
        row = self.store.ruleset_in_force(day)
        if row is None:
            raise InputError([FieldProblem("decision_date", f"no published ruleset is in force on {day}")])
        return int(row["id"])

    def registry_versions(self) -> dict[str, dict[str, Any]]:
        """The latest version of each registry (cached; an upload refreshes it)."""
        cached = self._registries
        if cached is None:
            cached = {}
            for name in ("relatives", "filings"):
                row = self.store.latest_registry(name)
                if row is not None:
                    cached[name] = row
            self._registries = cached
        return cached

    def evaluator(self, rid: int, versions: Mapping[str, int] | None = None) -> tuple[Evaluator, dict[str, int]]:
        """The evaluator for a ruleset with the given registry versions (default: the latest)."""
        rows = (
            {n: self.store.registry_version(v) for n, v in versions.items()}
            if versions is not None
            else self.registry_versions()
        )
        ids = {n: int(r["id"]) for n, r in rows.items() if r}
        key = (rid, tuple(sorted(ids.values())))
        with self._lock:
            ev = self._evaluators.get(key)
        if ev is None:
            rs = self.ruleset(rid)
            regs = Registries.empty(rs)
            for name, row in rows.items():
                if row and name in rs.registries:
                    keys = frozenset(json.loads(row["keys"]))
                    regs.by_name[name] = Registry(name, keys, f"v{row['id']}:{row['version']}", int(row["rows"]))
            ev = Evaluator(rs, regs)
            with self._lock:
                self._evaluators[key] = ev
        return ev, ids

    # ------------------------------------------------------------ decisions

    def decide(self, raw: Any, user: User, lang: str, text: bool = False) -> dict[str, Any]:
        return self.decide_once(raw, user, lang, text)[1]

    def _decided(self, raw: Any) -> tuple[dict[str, Any], Decision]:
        """The ledger body of one household's decision (not stored yet) and the decision."""
        if not isinstance(raw, Mapping):
            raise InputError([FieldProblem("(body)", "must be a JSON object: one household")])
        rid = self.ruleset_for(_parse_day(raw))
        ev, reg_ids = self.evaluator(rid)
        decision = ev.decide(raw)
        body = {
            "household": raw,
            "decision": decision.to_dict(explain=True),
            "ruleset_id": rid,
            "registry_versions": reg_ids,
        }
        return body, decision

    def _replayed(self, user: User, key: str | None, route: str, raw: Any) -> tuple[IdempotencyKey | None, Any]:
        """(the key to store with new decisions, or None; what a key already stored, or None).
        The same key with another request is refused: it would silently answer the wrong one."""
        if key is None:
            return None, None
        if not valid_key(key):
            raise InputError([FieldProblem("Idempotency-Key", "must be 1 to 200 visible ASCII characters")])
        digest = request_hash(route, raw)
        stored = stored_result(self.store, user.id, key)
        if stored is None:
            return IdempotencyKey(user.id, key, digest), None
        if stored[0] != digest:
            raise InputError(
                [FieldProblem("Idempotency-Key", "was used before with another request; use a new key for new work")]
            )
        return None, stored[1]

    def decide_once(
        self, raw: Any, user: User, lang: str, text: bool = False, key: str | None = None
    ) -> tuple[bool, dict[str, Any]]:
        """(stored now, the decision): with an Idempotency-Key already used for this request,
        the decision it stored (not stored now)."""
        fresh, stored = self._replayed(user, key, "decision", raw)
        if stored is None:
            body, decision = self._decided(raw)
            try:
                (rec,) = store_decisions(self.store, user.id, [body], fresh)
            except KeyTaken:  # the same request with the same key committed a moment ago
                return self.decide_once(raw, user, lang, text, key)
            return True, self.present(rec, decision if text else None, lang, approvals=False)
        return False, self.get(int(stored["decisions"][0]), lang, text)

    def decide_batch(
        self, households: list[Any], user: User, lang: str, key: str | None = None
    ) -> tuple[bool, dict[str, Any]]:
        """Decide every household, then store all the decisions in one transaction (all or
        none); a household that cannot be decided is reported in its place."""
        fresh, stored = self._replayed(user, key, "batch", households)
        if stored is None:
            layout: list[dict[str, Any] | None] = []
            bodies: list[dict[str, Any]] = []
            for i, household in enumerate(households):
                try:
                    bodies.append(self._decided(household)[0])
                    layout.append(None)
                except InputError as exc:
                    layout.append({"index": i, "rejected": True, "errors": [p.as_dict() for p in exc.problems]})
            if fresh is not None:
                fresh = IdempotencyKey(fresh.user_id, fresh.key, fresh.request_hash, layout)
            try:
                records = store_decisions(self.store, user.id, bodies, fresh)
            except KeyTaken:
                return self.decide_batch(households, user, lang, key)
            decided = iter([self.present(rec, None, lang, approvals=False) for rec in records])
        else:
            layout = stored["layout"]
            decided = iter([self.get(int(seq), lang) for seq in stored["decisions"]])
        results = [entry if entry is not None else next(decided) for entry in layout]
        return stored is None, {
            "decided": sum(1 for r in results if not r.get("rejected")),
            "rejected": sum(1 for r in results if r.get("rejected")),
            "results": results,
        }

    def present(
        self, rec: LedgerRecord, decision: Decision | None, lang: str, approvals: bool = True
    ) -> dict[str, Any]:
        stored = rec.body["decision"]
        out = {k: v for k, v in stored.items() if k != "explanation"}
        explanation = dict(stored.get("explanation") or {})
        explanation["language"] = lang
        explanation["rules"] = [{**r, "message": r["message"][lang]} for r in explanation.get("rules", [])]
        if decision is not None:
            explanation["text"] = decision.explain_text(lang)
        out["explanation"] = explanation
        out["decision_id"] = rec.seq
        out["recorded_at"] = rec.created_at
        out["ruleset_id"] = rec.body["ruleset_id"]
        out["registry_versions"] = rec.body["registry_versions"]
        out["approvals"] = [self._approval(a) for a in self.store.records_for(rec.seq, "approval")] if approvals else []
        return out

    def _approval(self, rec: LedgerRecord) -> dict[str, Any]:
        return {"approval_id": rec.seq, "recorded_at": rec.created_at, **rec.body}

    def get(self, seq: int, lang: str, text: bool = False) -> dict[str, Any]:
        rec = self.store.record(seq)
        if rec is None or rec.kind != "decision":
            raise NotFound(f"decision {seq}")
        decision = None
        if text:  # the officer's reading of the stored decision, re-derived under its own versions
            ev, _ = self.evaluator(int(rec.body["ruleset_id"]), rec.body["registry_versions"])
            decision = ev.decide(rec.body["household"])
        return self.present(rec, decision, lang)

    def replay(self, seq: int) -> dict[str, Any]:
        rec = self.store.record(seq)
        if rec is None or rec.kind != "decision":
            raise NotFound(f"decision {seq}")
        ev, _ = self.evaluator(int(rec.body["ruleset_id"]), rec.body["registry_versions"])
        again = ev.decide(rec.body["household"]).to_dict(explain=True)
        same = again == rec.body["decision"]
        return {
            "decision_id": seq,
            "same": same,
            "ruleset_version": again["ruleset_version"],
            "decision": {k: v for k, v in again.items() if k != "explanation"},
        }

    # ------------------------------------------------------------ approvals

    def approve(self, seq: int, user: User, action: str, note: str, today: dt.date | None = None) -> dict[str, Any]:
        rec = self.store.record(seq)
        if rec is None or rec.kind != "decision":
            raise NotFound(f"decision {seq}")
        day = today or dt.date.today()
        if user.role != "officer":
            raise Forbidden("only certified officers approve or reject (持证上岗)")
        if not user.certified_on(day):
            raise Forbidden(f"officer {user.name} has no enforcement certificate valid on {day}")
        decision = rec.body["decision"]
        if action == "approve":
            # which decision fields block approval and name the approving level: rules/ruleset.yaml
            rule = self.ruleset(int(rec.body["ruleset_id"])).reports.get("approval") or {}
            if "blocked" in rule and decision.get(rule["blocked"]):
                raise Conflict(
                    "kin registration missing (近亲属未备案): this case cannot be approved until the filing is made"
                )
            needed = decision.get(rule["authority"]) if "authority" in rule else None
            if needed in LEVELS and LEVELS.index(user.level or "") < LEVELS.index(needed):
                amount = decision.get(rule["amount"]) if "amount" in rule else ""
                raise Forbidden(
                    f"the amount {amount} is above the {user.level} approval limit; the {needed} level approves it"
                )
        if self.store.records_for(seq, "approval"):
            raise Conflict(f"decision {seq} already has an approval or rejection")
        body = {
            "decision_id": seq,
            "action": action,
            "officer": {"id": user.id, "name": user.name, "certificate_no": user.certificate_no, "level": user.level},
            "authority": user.level,
            "note": note,
            "household_id": decision.get("household_id"),
        }
        try:
            return self._approval(self.store.add_approval(seq, user.id, body))
        except AlreadyDecided:  # another officer (or server) decided it since the check above
            raise Conflict(f"decision {seq} already has an approval or rejection") from None

    # ------------------------------------------------------------ rule versions

    def publish(self, files: dict[str, str], effective_from: dt.date, user: User) -> dict[str, Any]:
        """Check a bundle, run its rule tests, and publish it; a bad bundle is never stored."""
        with tempfile.TemporaryDirectory() as tmp:
            _write_files(Path(tmp), files)
            rs = load(tmp)  # RuleLoadError -> 422 with file:line:col
            failed = [r for r in run_tests(rs) if not r.ok]
        if failed:
            problems = [
                FieldProblem(f"{r.test.file}:{r.test.pos.line}", f"{r.test.name}: {msg}", "rule-test")
                for r in failed
                for msg in r.failures
            ]
            raise InputError(problems)
        rid = self.store.add_ruleset(rs.ruleset_version, effective_from, rs.files, user.id)
        self.store.append(
            "ruleset",
            user.id,
            {
                "ruleset_id": rid,
                "version": rs.ruleset_version,
                "effective_from": effective_from.isoformat(),
                "action": "publish",
            },
            ref=rid,
        )
        return {
            "id": rid,
            "version": rs.ruleset_version,
            "effective_from": effective_from.isoformat(),
            "tests": len(rs.tests),
        }

    def rollback(self, rid: int, user: User) -> dict[str, Any]:
        rows = {r["id"]: r for r in self.store.rulesets()}
        if rid not in rows:
            raise NotFound(f"ruleset {rid}")
        published = [r for r in rows.values() if r["status"] == "published"]
        if rows[rid]["status"] != "published":
            raise Conflict(f"ruleset {rid} is already withdrawn")
        if len(published) == 1:
            raise Conflict("the only published ruleset cannot be withdrawn")
        self.store.set_ruleset_status(rid, "withdrawn")
        self.store.append("ruleset", user.id, {"ruleset_id": rid, "action": "rollback"}, ref=rid)
        return {"id": rid, "status": "withdrawn"}

    def rules_of(self, rid: int) -> list[dict[str, Any]]:
        rs = self.ruleset(rid)
        return [
            {
                "id": s.name,
                "kind": s.kind,
                "program": s.program,
                "per": s.scope,
                "title": s.title,
                "legal_basis": s.legal_basis,
            }
            for s in rs.rules()
        ]

    # ------------------------------------------------------------ registries

    def upload_registry(self, name: str, text: str, user: User | None) -> dict[str, Any]:
        rs = self.ruleset(self.ruleset_for(dt.date.today()))
        spec = rs.registries.get(name)
        if spec is None or spec.computed:
            raise NotFound(f"registry {name}")
        reg = parse_registry_csv(spec, text)
        rejected = [r.as_dict() for r in reg.rejects]
        vid = self.store.add_registry_version(
            name, reg.version, sorted(reg.keys), reg.rows, rejected, user.id if user else None
        )
        self._registries = None
        return {
            "registry": name,
            "version_id": vid,
            "version": reg.version,
            "rows": reg.rows,
            "accepted": reg.rows - len({r.line for r in reg.rejects}),
            "rejected": rejected,
        }

    # ------------------------------------------------------------ screening jobs

    def _job(self, kind: str, user: User, work: Callable[[int, Path], dict[str, Any]]) -> int:
        """Run ``work(job id, output folder)`` in a thread; its summary or its failure is stored."""
        jid = self.store.add_job(kind, "", user.id)
        out = self.settings.data_dir / "jobs" / f"job-{jid}"
        out.mkdir(parents=True, exist_ok=True)
        self.store.update_job(jid, folder=str(out))

        def run() -> None:
            self.store.update_job(jid, status="running")
            try:
                summary = work(jid, out)
                self.store.update_job(jid, status="done", summary=json.dumps(summary, ensure_ascii=False))
            except Exception as exc:  # a job reports its failure instead of dying silently
                self.store.update_job(jid, status="failed", error=str(exc))

        threading.Thread(target=run, name=f"{kind}-{jid}", daemon=True).start()
        return jid

    def start_screening(self, source: Path, user: User, decision_date: dt.date | None, fmt: str) -> int:
        from engine import screen

        ev, _ = self.evaluator(self.ruleset_for(decision_date or dt.date.today()))

        def work(jid: int, out: Path) -> dict[str, Any]:
            progress = lambda d, t: self.store.update_job(jid, done=d, total=t)  # noqa: E731
            return screen(ev, source, out, fmt=fmt, decision_date=decision_date, progress=progress)

        return self._job("screen", user, work)

    def start_monitoring(self, caseload: Path, events: bytes, user: User) -> int:
        """Run change events against a server-side caseload as a job (findings.jsonl etc.)."""
        from engine import Monitor, load_households

        ev, _ = self.evaluator(self.ruleset_for(dt.date.today()))

        def work(jid: int, out: Path) -> dict[str, Any]:
            result = Monitor(ev, load_households(caseload, ev.ruleset.record)).run(events.decode("utf-8").splitlines())
            result.write(out)
            self.store.update_job(jid, done=1, total=1)
            return result.summary()

        return self._job("monitor", user, work)

    def start_impact(
        self, caseload: Path, user: User, head_id: int | None, sets: list[str], decision_date: dt.date | None
    ) -> int:
        """Compare the ruleset in force with a published version and/or parameter what-ifs."""
        from engine import impact, with_settings

        base, _ = self.evaluator(self.ruleset_for(decision_date or dt.date.today()))
        head_rules = with_settings(self.ruleset(head_id) if head_id is not None else base.ruleset, sets, "set[{i}]")
        head = Evaluator(head_rules, base.registries)

        def work(jid: int, out: Path) -> dict[str, Any]:
            summary = impact(base, head, caseload, out, decision_date=decision_date)
            self.store.update_job(jid, done=1, total=1)
            return summary

        return self._job("impact", user, work)

    def monitor_findings(self, jid: int) -> list[dict[str, Any]]:
        path = self.job_file(jid, "findings")
        return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]

    def job(self, jid: int) -> dict[str, Any]:
        row = self.store.job(jid)
        if row is None:
            raise NotFound(f"job {jid}")
        return {
            "id": jid,
            "status": row["status"],
            "done": row["done"],
            "total": row["total"],
            "summary": json.loads(row["summary"]) if row["summary"] else None,
            "error": row["error"],
        }

    def job_file(self, jid: int, name: str) -> Path:
        row = self.store.job(jid)
        if row is None or row["status"] != "done":
            raise NotFound(f"job {jid} has no finished output")
        folder = Path(row["folder"])
        matches = [p for p in folder.iterdir() if p.is_file() and p.stem == name]
        if not matches:
            raise NotFound(f"job {jid} has no {name}")
        return matches[0]

    def server_path(self, relative: str) -> Path:
        root = self.settings.data_dir.resolve()
        path = (root / relative).resolve()
        if root not in path.parents and path != root:
            raise InputError([FieldProblem("path", "must be inside the service's data folder")])
        if not path.exists():
            raise InputError([FieldProblem("path", f"{relative} does not exist in the data folder")])
        return path

    def stash_upload(self, data: bytes) -> Path:
        folder = self.settings.data_dir / "uploads"
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, suffix=".jsonl", delete=False) as f:
            f.write(data)
        return Path(f.name)

    # ------------------------------------------------------------ public disclosure

    def disclosure(self, since: dt.date, until: dt.date) -> tuple[dict[str, str], list[dict[str, Any]]]:
        """Approved decisions in [since, until] with IDs and names masked (行政执法公示): the
        column headers (the decision columns come from the ruleset in force on ``until``) and rows."""
        shown: dict[str, dict[str, str]] = self.ruleset(self.ruleset_for(until)).reports.get("disclosure") or {}
        headers = dict(_DISCLOSURE_HOUSEHOLD)
        headers.update({name: f"{label.get('zh', '')} {label.get('en', '')}".strip() for name, label in shown.items()})
        headers["authority"] = "审批机关 Authority"
        rows = []
        for a in self.store.records("approval", since.isoformat(), (until + dt.timedelta(days=1)).isoformat()):
            if a.body.get("action") != "approve":
                continue
            rec = self.store.record(int(a.body["decision_id"]))
            if rec is None:
                continue
            household = rec.body["household"]
            decision = rec.body["decision"]
            head = next(
                (m for m in household.get("members", []) if m.get("relation") == "head"),
                (household.get("members") or [{}])[0],
            )
            row = {
                "approved_on": a.created_at[:10],
                "township": household.get("township") or "",
                "head_name": mask_name(head.get("name") or ""),
                "head_id": mask_id(str(head.get("person_id", ""))),
                "members": len(household.get("members", [])),
            }
            row.update({name: decision.get(name) or "" for name in shown})
            row["authority"] = a.body.get("authority") or ""
            rows.append(row)
        return headers, rows


# approval levels, lowest first: an officer approves decisions whose authority is at or below theirs
LEVELS = ("township", "city")

_DISCLOSURE_HOUSEHOLD = {
    "approved_on": "审批日期 Approved on",
    "township": "区镇 Township",
    "head_name": "户主 Head",
    "head_id": "身份证号 ID",
    "members": "人数 Members",
}


def disclosure_csv(headers: Mapping[str, str], rows: list[dict[str, Any]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(headers.values())
    for r in rows:
        writer.writerow([r[k] for k in headers])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def disclosure_xlsx(headers: Mapping[str, str], rows: list[dict[str, Any]]) -> bytes:
    import xlsxwriter

    buf = io.BytesIO()
    book = xlsxwriter.Workbook(buf, {"in_memory": True})
    sheet = book.add_worksheet("公示 Disclosure")
    for c, title in enumerate(headers.values()):
        sheet.write(0, c, title)
    for r, row in enumerate(rows, start=1):
        for c, key in enumerate(headers):
            sheet.write(r, c, row[key])
    book.close()
    return buf.getvalue()


def _write_files(root: Path, files: Mapping[str, str]) -> None:
    for rel, text in files.items():
        path = (root / rel).resolve()
        if root.resolve() not in path.parents:
            raise InputError([FieldProblem(rel, "bundle paths must stay inside the rules folder")])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def unpack_bundle(data: bytes) -> dict[str, str]:
    """A rules bundle: a .zip of the rules folder (files at its root or in one top folder)."""
    import zipfile

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise InputError([FieldProblem("(body)", "a rules bundle must be a .zip of the rules folder")]) from None
    names = [n for n in archive.namelist() if not n.endswith("/") and n.endswith((".yaml", ".json", ".md"))]
    heads = [
        n.removesuffix("ruleset.yaml")
        for n in names
        if n == "ruleset.yaml" or (n.endswith("/ruleset.yaml") and n.count("/") == 1)
    ]
    prefix = heads[0] if len(heads) == 1 else ""
    files = {}
    for n in names:
        if not n.startswith(prefix):
            continue
        try:
            files[n.removeprefix(prefix)] = archive.read(n).decode("utf-8")
        except UnicodeDecodeError:
            raise InputError([FieldProblem(n, "must be UTF-8 text")]) from None
    if "ruleset.yaml" not in files:
        raise InputError([FieldProblem("ruleset.yaml", "the bundle has no ruleset.yaml at its root")])
    return files
