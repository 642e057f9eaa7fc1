"""What the HTTP service does, independent of HTTP: decide and store, approve, publish rule
versions, keep registry versions, run screening jobs, export public disclosures."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError

from api.bundles import BundleLimits, check_bundle, write_files
from api.by_version import join_screenings, split_by_ruleset
from api.cache import LRU, TTLCache
from api.candidates import SubjectReviews
from api.idempotency import IdempotencyKey, KeyTaken, remember, request_hash, stored_result, valid_key
from api.job_progress import JobProgress, read_progress
from api.jobs import JobRunner
from api.ledger_writer import GroupCommitter
from api.masking import mask_id, mask_name
from api.paths import inside, scrub, server_roots
from api.rulesets import nearest_published, uncovered_after_withdrawal
from api.search import DecisionIndex, township_of
from api.store import AlreadyDecided, Insert, LedgerRecord, Store, Submission, User
from api.workflow import (
    Conflict,
    Forbidden,
    NotFound,
    Refused,
    bound_township,
    check_approval,
    check_township,
    refuse_partial,
)
from engine import (
    MONEY_FORMAT,
    BadValue,
    Decision,
    Evaluator,
    FieldProblem,
    InputError,
    Registries,
    Registry,
    Ruleset,
    has,
    load,
    parse_registry_csv,
    parse_value,
    safe_cell,
    value_label,
)
from engine import text as catalogue_text

__all__ = ["Conflict", "Forbidden", "NotFound", "Refused", "Service", "Settings"]

_BUNDLED_FROM = dt.date(1900, 1, 1)
_FRESH_SECONDS = 1.0  # how long another server's change (token, ruleset, registry) may go unseen
_EXPLAINED_CACHE = 2048  # decisions whose explanation is kept derived


@dataclass
class Settings:
    db_url: str
    rules_dir: Path
    data_dir: Path
    relatives: Path | None = None
    filings: Path | None = None
    registries: dict[str, Path] = field(default_factory=dict)  # other record types' registries to seed
    limits: dict[str, int] = field(
        default_factory=lambda: {
            "decision": 256 * 1024,
            "batch": 16 * 1024 * 1024,
            "rules": 8 * 1024 * 1024,
            "registry": 64 * 1024 * 1024,
            "caseload": 1024 * 1024 * 1024,
            "events": 256 * 1024 * 1024,
            "jobs": 4,  # jobs queued or running at once, all kinds
            "rulesets_cached": 8,  # loaded rulesets kept in memory
            "evaluators_cached": 16,  # one per ruleset and registry versions, ~10 MB each
            "screen_chunk": 250_000,  # households per chunk of a screening job (its progress steps)
        }
    )
    bundle: BundleLimits = field(default_factory=BundleLimits)


def _parse_day(raw: Mapping[str, Any]) -> dt.date:
    value = raw.get("decision_date")
    if value is None:
        return dt.date.today()
    try:
        day: dt.date = parse_value("date", value)  # strict YYYY-MM-DD, as the validator reads it
    except BadValue:
        return dt.date.today()  # the validator then names decision_date beside every other problem
    return day


class Service:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = Store(settings.db_url)
        self._lock = threading.Lock()
        self._rulesets: LRU[int, Ruleset] = LRU(settings.limits["rulesets_cached"])
        self._evaluators: LRU[tuple[int, tuple[int, ...]], Evaluator] = LRU(settings.limits["evaluators_cached"])
        self._explained: OrderedDict[int, Decision] = OrderedDict()
        self._in_force: TTLCache[dt.date, int | None] = TTLCache(_FRESH_SECONDS)
        self._latest: TTLCache[str, dict[str, dict[str, Any]]] = TTLCache(_FRESH_SECONDS, size=1)
        self.tokens: TTLCache[str, User | None] = TTLCache(_FRESH_SECONDS, size=4096)
        self.writer = GroupCommitter(self.store.append_many)
        self.roots = server_roots(settings.rules_dir)
        self.jobs = JobRunner(self.store, settings.data_dir / "jobs", settings.limits["jobs"], self.scrub)
        self.index = DecisionIndex(self.store)
        self.reviews = SubjectReviews(self)
        self._bootstrap()
        self.store.checkpoints()

    def close(self) -> None:
        """Write what is queued for the ledger, stop its writer, and checkpoint the store."""
        self.writer.close()
        self.store.close()

    def user_by_token(self, token: str) -> User | None:
        """The user a token belongs to (cached for a moment: auth is on every request)."""
        return self.tokens.get(token, lambda: self.store.user_by_token(token))

    # ------------------------------------------------------------ start-up

    def scrub(self, text: str) -> str:
        """An error text as a client may see it: no absolute server paths."""
        return scrub(text, self.settings.data_dir, self.roots)

    def _bootstrap(self) -> None:
        self.jobs.recover(lambda params: params.get("kind") == "screen" and Path(params.get("source", "")).exists())
        if not self.store.rulesets():
            rs = load(self.settings.rules_dir)
            self.store.add_ruleset(rs.ruleset_version, _BUNDLED_FROM, rs.files, None)
        for name, path in (("relatives", self.settings.relatives), ("filings", self.settings.filings)):
            if path is not None and self.store.latest_registry(name) is None:
                self.upload_registry(name, Path(path).read_text(encoding="utf-8"), None)
        for name, seed in self.settings.registries.items():
            if self.store.latest_registry(name) is None:
                self.upload_registry(name, seed.read_text(encoding="utf-8"), None)
        self.index.catch_up(self.authority_field)

    def authority_field(self, rid: int) -> str | None:
        """The decision field naming the level that approves (rules/ruleset.yaml `reports.approval`)."""
        try:
            rule = self.ruleset(rid).reports.get("approval") or {}
        except NotFound:
            return None
        return str(rule["authority"]) if "authority" in rule else None

    # ------------------------------------------------------------ rules and registries

    def ruleset(self, rid: int) -> Ruleset:
        with self._lock:
            rs = self._rulesets.get(rid)
            if rs is None:
                files = self.store.ruleset_files(rid)
                if files is None:
                    raise NotFound("api.not_found.ruleset", id=rid)
                with tempfile.TemporaryDirectory() as tmp:
                    write_files(Path(tmp), files)
                    rs = load(tmp)
                self._rulesets.put(rid, rs)
            return rs

    def cache_sizes(self) -> dict[str, int]:
        """How many rulesets and evaluators are held in memory (each cache is bounded)."""
        return {"rulesets": len(self._rulesets), "evaluators": len(self._evaluators)}

    def ruleset_for(self, day: dt.date) -> int:
        def lookup() -> int | None:
            row = self.store.ruleset_in_force(day)
            return None if row is None else int(row["id"])

        rid = self._in_force.get(day, lookup)
        if rid is None:
            raise InputError([FieldProblem("decision_date", catalogue_text("input.no_ruleset_on", "en", day=day))])
        return rid

    def current_ruleset(self) -> int:
        """The ruleset in force today; in a store left with a gap today (by hand, or by an
        older release that let a rollback leave one) a published neighbour, so that the
        service still starts and a withdrawn version can be reinstated."""
        today = dt.date.today()
        row = self.store.ruleset_in_force(today)
        rid = int(row["id"]) if row is not None else nearest_published(self.store.rulesets(), today)
        if rid is None:
            raise NotFound("api.not_found.any_ruleset")
        return rid

    def registry_versions(self) -> dict[str, dict[str, Any]]:
        """The latest version of each registry (cached for a moment; an upload here refreshes it)."""

        def latest() -> dict[str, dict[str, Any]]:
            found = {}
            for name in ("relatives", "filings"):
                row = self.store.latest_registry(name)
                if row is not None:
                    found[name] = row
            return found

        return self._latest.get("latest", latest)

    def all_registry_versions(self) -> dict[str, dict[str, Any]]:
        """The latest version of every registry, other record types' included."""
        out = dict(self.registry_versions())
        for name in self.reviews.registry_names():
            row = self.store.latest_registry(name)
            if row is not None:
                out[name] = row
        return out

    def evaluator(self, rid: int, versions: Mapping[str, int] | None = None) -> tuple[Evaluator, dict[str, int]]:
        """The evaluator for a ruleset with the given registry versions (default: the latest)."""
        rows = (
            {n: self.store.registry_version(v) for n, v in versions.items()}
            if versions is not None
            else self.registry_versions()
        )
        ids = {n: int(r["id"]) for n, r in rows.items() if r}
        key = (rid, tuple(sorted(ids.values())))
        ev = self._evaluators.get(key)
        if ev is None:
            rs = self.ruleset(rid)
            regs = Registries.empty(rs)
            for name, row in rows.items():
                if row and name in rs.registries:
                    keys = frozenset(json.loads(row["keys"]))
                    regs.by_name[name] = Registry(name, keys, f"v{row['id']}:{row['version']}", int(row["rows"]))
            ev = Evaluator(rs, regs)
            self._evaluators.put(key, ev)
        return ev, ids

    # ------------------------------------------------------------ decisions

    def decide(self, raw: Any, user: User, lang: str, text: bool = False) -> dict[str, Any]:
        return self.decide_once(raw, user, lang, text)[1]

    def decide_once(
        self, raw: Any, user: User, lang: str, text: bool = False, key: str | None = None
    ) -> tuple[bool, dict[str, Any]]:
        """(stored now, the decision): with an Idempotency-Key already used for this request,
        the decision it stored (not stored now)."""
        if isinstance(raw, Mapping):
            check_township(user, raw)
        fresh, stored = self._replayed(user, key, "decision", raw)
        if stored is not None:
            return False, self.get(int(stored["decisions"][0]), lang, text, user)
        body, decision = self._decide(raw)
        try:
            (rec,) = self._store([body], user, fresh)
        except KeyTaken:  # the same request with the same key committed a moment ago
            return self.decide_once(raw, user, lang, text, key)
        return True, self.present(rec, decision, lang, text=text, approvals=False)

    def decide_batch(
        self, raws: list[Any], user: User, lang: str, key: str | None = None
    ) -> tuple[bool, dict[str, Any]]:
        """Decide every household, then store all the decisions in one transaction (all or
        none); a household that cannot be decided is reported at its index, naming the field."""
        self.check_households(raws, user)
        fresh, stored = self._replayed(user, key, "batch", raws)
        if stored is None:
            layout: list[dict[str, Any] | None] = []
            decided: list[tuple[dict[str, Any], Decision]] = []
            for i, raw in enumerate(raws):
                try:
                    decided.append(self._decide(raw))
                    layout.append(None)
                except InputError as exc:
                    layout.append({"index": i, "rejected": True, "errors": [p.as_dict() for p in exc.problems]})
            if fresh is not None:
                fresh = IdempotencyKey(fresh.user_id, fresh.key, fresh.request_hash, layout)
            try:
                records = self._store([body for body, _ in decided], user, fresh) if decided or fresh else []
            except KeyTaken:
                return self.decide_batch(raws, user, lang, key)
            shown = iter(
                [self.present(rec, d, lang, approvals=False) for rec, (_, d) in zip(records, decided, strict=True)]
            )
        else:
            layout = stored["layout"]
            shown = iter([self.get(int(seq), lang, user=user) for seq in stored["decisions"]])
        results = [entry if entry is not None else next(shown) for entry in layout]
        return stored is None, {
            "decided": sum(1 for r in results if not r.get("rejected")),
            "rejected": sum(1 for r in results if r.get("rejected")),
            "results": results,
        }

    def submission(self, bodies: list[dict[str, Any]], user: User, key: IdempotencyKey | None) -> Submission:
        """Decisions to append as one unit, with their search index rows and the
        Idempotency-Key, if any, for the same transaction."""
        writes = [self.index.writes(self.authority_field(int(body["ruleset_id"]))) for body in bodies]

        def after(conn: Any, records: list[LedgerRecord]) -> list[Insert]:
            rows = [row for write, rec in zip(writes, records, strict=True) for row in write(rec)]
            if key is not None:
                remember(conn, key, records)
            return rows

        return Submission([("decision", user.id, body, None) for body in bodies], after)

    def decide_warm(self, raw: Any, user: User) -> tuple[dict[str, Any], Decision] | None:
        """``raw`` decided here when that costs only the deciding (its evaluator is compiled
        and cached; the ruleset and registry lookups are cached too), else None: cheap enough
        for the event loop, where compiling a ruleset is not."""
        if not isinstance(raw, Mapping):
            return None
        check_township(user, raw)
        rid = self.ruleset_for(_parse_day(raw))
        ids = tuple(sorted(int(r["id"]) for r in self.registry_versions().values() if r))
        if self._evaluators.get((rid, ids)) is None:
            return None
        return self._decide(raw)

    def _store(self, bodies: list[dict[str, Any]], user: User, key: IdempotencyKey | None) -> list[LedgerRecord]:
        """Decisions appended through the ledger writer as one unit (group commit), with their
        search index rows and the Idempotency-Key, if any, in the same transaction; KeyTaken
        when a request with that key committed first."""
        try:
            result: list[LedgerRecord] = self.writer.submit(self.submission(bodies, user, key))
        except IntegrityError:
            if key is None or stored_result(self.store, key.user_id, key.key) is None:
                raise
            raise KeyTaken(key.key) from None
        return result

    def _replayed(self, user: User, key: str | None, route: str, raw: Any) -> tuple[IdempotencyKey | None, Any]:
        """(the key to store with new decisions, or None; what a key already stored, or None).
        The same key with another request is refused: it would silently answer the wrong one."""
        if key is None:
            return None, None
        if not valid_key(key):
            raise InputError([FieldProblem("Idempotency-Key", catalogue_text("input.idempotency_key", "en"))])
        digest = request_hash(route, raw)
        stored = stored_result(self.store, user.id, key)
        if stored is None:
            return IdempotencyKey(user.id, key, digest), None
        if stored[0] != digest:
            raise InputError([FieldProblem("Idempotency-Key", catalogue_text("input.idempotency_reused", "en"))])
        return None, stored[1]

    def _decide(self, raw: Any) -> tuple[dict[str, Any], Decision]:
        """One household decided, and the compact, replayable record the ledger keeps of it:
        the household, the decision's values and the ruleset and registry versions. The
        explanation is derived from them when the decision is read."""
        if not isinstance(raw, Mapping):
            raise InputError([FieldProblem("(body)", catalogue_text("input.body_household", "en"))])
        rid = self.ruleset_for(_parse_day(raw))
        ev, reg_ids = self.evaluator(rid)
        decision = ev.decide(raw)
        body = {
            "household": raw,
            "decision": decision.to_dict(explain=False),
            "ruleset_id": rid,
            "registry_versions": reg_ids,
        }
        return body, decision

    def explained(self, rec: LedgerRecord) -> Decision:
        """The stored decision re-derived under its own ruleset and registry versions (cached)."""
        with self._lock:
            hit = self._explained.get(rec.seq)
            if hit is not None:
                self._explained.move_to_end(rec.seq)
                return hit
        ev, _ = self.evaluator(int(rec.body["ruleset_id"]), rec.body["registry_versions"])
        decision = ev.decide(rec.body["household"])
        with self._lock:
            self._explained[rec.seq] = decision
            while len(self._explained) > _EXPLAINED_CACHE:
                self._explained.popitem(last=False)
        return decision

    def present(
        self,
        rec: LedgerRecord,
        decision: Decision | None,
        lang: str,
        text: bool = False,
        approvals: bool = True,
    ) -> dict[str, Any]:
        stored = rec.body["decision"]
        out = {k: v for k, v in stored.items() if k != "explanation"}
        if "explanation" in stored:  # a record written before the ledger kept compact records
            explanation = dict(stored["explanation"])
            if text:
                decision = decision or self.explained(rec)
            explanation["language"] = lang
            explanation["rules"] = [{**r, "message": r["message"][lang]} for r in explanation.get("rules", [])]
        else:
            decision = decision or self.explained(rec)
            explanation = decision.explanation(lang)  # each rule's message in the asked language only
        if text and decision is not None:
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

    def check_households(self, raws: list[Any], user: User) -> None:
        """A township officer's batch holds only their township's households (checked before any is stored)."""
        town = bound_township(user)
        if town is None:
            return
        outside = [i for i, h in enumerate(raws) if isinstance(h, Mapping) and township_of(h) != town]
        if outside:
            shown = ", ".join(str(i) for i in outside[:20])
            raise Forbidden("api.town_batch", user=user.name, town=town, indexes=shown)

    def stored(self, seq: int, user: User | None = None) -> LedgerRecord:
        """A stored decision, as far as ``user`` may see it (a township officer: their township's)."""
        rec = self.store.record(seq)
        if rec is None or rec.kind != "decision":
            raise NotFound("api.not_found.decision", id=seq)
        if user is not None:
            check_township(user, rec.body.get("household") or {})
        return rec

    def get(self, seq: int, lang: str, text: bool = False, user: User | None = None) -> dict[str, Any]:
        return self.present(self.stored(seq, user), None, lang, text=text)

    def replay(self, seq: int, user: User | None = None) -> dict[str, Any]:
        rec = self.stored(seq, user)
        ev, _ = self.evaluator(int(rec.body["ruleset_id"]), rec.body["registry_versions"])
        explain = "explanation" in rec.body["decision"]  # older records kept the explanation: compare it too
        again = ev.decide(rec.body["household"]).to_dict(explain=explain)
        stored = rec.body["decision"]
        differs = sorted(k for k in {*again, *stored} if k not in again or k not in stored or again[k] != stored[k])
        # each replay is itself a ledger record (who looked, when, with which versions, what it found)
        body = {
            "decision_id": seq,
            "matches": not differs,
            "differs": differs,
            "ruleset_id": rec.body["ruleset_id"],
            "ruleset_version": again["ruleset_version"],
            "registry_versions": rec.body["registry_versions"],
        }
        (replayed,) = self.writer.submit(Submission([("replay", user.id if user else None, body, seq)]))
        return {
            "decision_id": seq,
            "same": not differs,
            "differs": differs,
            "replay_id": replayed.seq,
            "recorded_at": replayed.created_at,
            "ruleset_version": again["ruleset_version"],
            "decision": {k: v for k, v in again.items() if k != "explanation"},
        }

    # ------------------------------------------------------------ approvals

    def approve(self, seq: int, user: User, action: str, note: str, today: dt.date | None = None) -> dict[str, Any]:
        rec = self.stored(seq)
        check_approval(self, rec, user, action, today or dt.date.today())
        decision = rec.body["decision"]
        if self.store.records_for(seq, "approval"):
            raise Conflict("api.decided_already", seq=seq)
        body = {
            "decision_id": seq,
            "action": action,
            "officer": {"id": user.id, "name": user.name, "certificate_no": user.certificate_no, "level": user.level},
            "authority": user.level,
            "note": note,
            "household_id": decision.get("household_id"),
        }
        try:
            rec = self.store.add_approval(seq, user.id, body, also=self.index.closes(seq, action))
        except AlreadyDecided:  # another officer (or server) decided it since the check above
            raise Conflict("api.decided_already", seq=seq) from None
        return self._approval(rec)

    # ------------------------------------------------------------ rule versions

    def publish(self, bundle: bytes, effective_from: dt.date, user: User) -> dict[str, Any]:
        """Check a bundle (a worker process: unpack, load, rule tests) and publish it; a bad
        bundle is never stored. Blocks while the worker runs: call it off the event loop."""
        checked = check_bundle(bundle, self.settings.bundle)
        rid = self.store.add_ruleset(checked.version, effective_from, checked.files, user.id)
        self._in_force.clear()
        self.store.append(
            "ruleset",
            user.id,
            {
                "ruleset_id": rid,
                "version": checked.version,
                "effective_from": effective_from.isoformat(),
                "action": "publish",
            },
            ref=rid,
        )
        return {
            "id": rid,
            "version": checked.version,
            "effective_from": effective_from.isoformat(),
            "tests": checked.tests,
        }

    def rollback(self, rid: int, user: User) -> dict[str, Any]:
        """Withdraw a version, unless that leaves decision dates without a ruleset in force."""
        rows = {r["id"]: r for r in self.store.rulesets()}
        if rid not in rows:
            raise NotFound("api.not_found.ruleset", id=rid)

        def keep_covered(after: list[dict[str, Any]]) -> None:
            before = [{**r, "status": "published"} if r["id"] == rid else r for r in after]
            gap = uncovered_after_withdrawal(before, rid)
            if gap is not None:
                raise Conflict("api.rollback_gap", id=rid, version=rows[rid]["version"], gap=gap)

        if not self.store.change_ruleset_status(rid, "withdrawn", keep_covered):
            raise Conflict("api.withdrawn_already", id=rid)
        self._in_force.clear()
        self.store.append("ruleset", user.id, {"ruleset_id": rid, "action": "rollback"}, ref=rid)
        return {"id": rid, "status": "withdrawn"}

    def reinstate(self, rid: int, user: User) -> dict[str, Any]:
        """Publish a withdrawn version again: the way back from a rollback."""
        rows = {r["id"]: r for r in self.store.rulesets()}
        if rid not in rows:
            raise NotFound("api.not_found.ruleset", id=rid)
        if not self.store.change_ruleset_status(rid, "published"):
            raise Conflict("api.published_already", id=rid)
        self._in_force.clear()
        self.store.append("ruleset", user.id, {"ruleset_id": rid, "action": "reinstate"}, ref=rid)
        return {"id": rid, "status": "published", "effective_from": rows[rid]["effective_from"].isoformat()}

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

    def upload_registry(
        self, name: str, text: str, user: User | None, accept_partial: bool = False, allow_empty: bool = False
    ) -> dict[str, Any]:
        """Store a new registry version. A version with any rejected row, or with no row left,
        is refused whole (422 with the row report) unless the upload accepts that explicitly:
        a registry that silently lost rows unblocks cases it should block."""
        rs = self.ruleset(self.current_ruleset())
        spec = rs.registries.get(name)
        if spec is None:
            # a registry of another record type: refused on the same terms
            other = self.reviews.upload(rs, name, text, user, accept_partial, allow_empty)
            if other is not None:
                return other
        if spec is None or spec.computed:
            raise NotFound("api.not_found.registry", name=name)
        header = next(csv.reader(io.StringIO(text.lstrip("\ufeff"))), [])
        seen = [c.strip() for c in header]
        doubled = sorted({c for c in seen if c and seen.count(c) > 1})
        if doubled:
            raise InputError([FieldProblem(c, catalogue_text("input.header_twice", "en")) for c in doubled])
        reg = parse_registry_csv(spec, text)
        rejected = [r.as_dict() for r in reg.rejects]
        bad_rows = len({r.line for r in reg.rejects})
        report = {
            "registry": name,
            "rows": reg.rows,
            "accepted": reg.rows - bad_rows,
            "rejected_rows": bad_rows,
            "rejected": rejected,
        }
        refuse_partial(report, accept_partial, allow_empty)
        vid = self.store.add_registry_version(
            name, reg.version, sorted(reg.keys), reg.rows, rejected, user.id if user else None
        )
        self._latest.clear()
        return {**report, "version_id": vid, "version": reg.version}

    # ------------------------------------------------------------ screening jobs

    def start_screening(
        self,
        source: Path,
        user: User,
        decision_date: dt.date | None,
        fmt: str,
        upload: bool = False,
        again: int | None = None,
    ) -> int:
        """Screen a caseload as a job; canceled between chunks, resumed by chunk (``again``)."""
        from engine import screen

        fixed = self.evaluator(self.ruleset_for(decision_date))[0] if decision_date else None

        def work(jid: int, out: Path) -> dict[str, Any]:
            stop = self.jobs.stopper(jid)
            meter = JobProgress(out)
            meter.clear()

            def progress(done: int, total: int, households: int, seconds: float) -> None:
                stop()
                self.store.update_job(jid, done=done, total=total)
                meter(done, total, households, seconds)

            parts = {} if fixed else self.caseload_parts(source, out / ".by-ruleset")
            if len(parts) > 1:  # each part under the ruleset in force on its rows' dates, then joined
                plan = {rid: (out / ".by-ruleset" / f"out-{rid}", self.evaluator(rid)[0]) for rid in sorted(parts)}
                results = {
                    rid: (folder, screen(ev, parts[rid], folder, fmt="parquet", row_progress=progress))
                    for rid, (folder, ev) in plan.items()
                }
                return join_screenings(results, out, fmt)
            ev = fixed or self.evaluator(self.ruleset_for_caseload(source))[0]
            return screen(
                ev,
                source,
                out,
                fmt=fmt,
                decision_date=decision_date,
                chunk_size=self.settings.limits["screen_chunk"],
                row_progress=progress,
            )

        params = {
            "source": str(source),
            "date": decision_date.isoformat() if decision_date else None,
            "format": fmt,
            "upload": upload,
        }
        return self.jobs.start("screen", user.id, work, params, (source,) if upload else (), again)

    def resume(self, jid: int, user: User) -> int:
        """Start again a screening a dead server left: finished chunks are kept."""
        row = self.store.job(jid)
        if row is None:
            raise NotFound("api.not_found.job", id=jid)
        resumable = row["status"] == "failed" and json.loads(row["summary"] or "{}").get("resumable")
        params = self.jobs.params(jid)
        if not resumable or params.get("kind") != "screen" or not Path(params["source"]).exists():
            raise Conflict("api.job_not_resumable", id=jid)
        day = dt.date.fromisoformat(params["date"]) if params.get("date") else None
        return self.start_screening(Path(params["source"]), user, day, params["format"], params["upload"], jid)

    def cancel(self, jid: int) -> dict[str, Any]:
        if self.store.job(jid) is None:
            raise NotFound("api.not_found.job", id=jid)
        if not self.jobs.cancel(jid):
            raise Conflict("api.job_ended", id=jid)
        return self.job(jid)

    def start_monitoring(self, caseload: Path, events: Path, user: User) -> int:
        """Run change events (an uploaded file, deleted when the job ends) against a
        server-side caseload as a job (findings.jsonl etc.)."""
        from engine import Monitor, load_households

        def work(jid: int, out: Path) -> dict[str, Any]:
            ev, _ = self.evaluator(self.ruleset_for_caseload(caseload))
            monitor = Monitor(ev, load_households(caseload, ev.ruleset.record))
            result = monitor.run(events.read_text(encoding="utf-8").splitlines())
            for finding in result.findings:  # officers read the findings of their township only
                finding["township"] = township_of(monitor.households.get(str(finding.get("household_id")), {}))
            result.write(out)
            self.store.update_job(jid, done=1, total=1)
            return result.summary()

        return self.jobs.start("monitor", user.id, work, uploads=(events,))

    def start_impact(
        self,
        caseload: Path,
        user: User,
        head_id: int | None,
        sets: list[str],
        decision_date: dt.date | None,
        candidate: Ruleset | None = None,
    ) -> int:
        """Compare the ruleset in force with a published version, a candidate not yet
        published (checked by the bundle worker) and/or parameter what-ifs."""
        from engine import impact, impact_parts, with_settings

        def pair(rid: int) -> tuple[Evaluator, Evaluator]:
            base, _ = self.evaluator(rid)
            head = candidate or (self.ruleset(head_id) if head_id is not None else base.ruleset)
            head_rules = with_settings(head, sets, "set[{i}]")
            return base, Evaluator(head_rules, base.registries)

        # checked now, so that a bad `set` is a 422 of this request; the job decides under the
        # ruleset in force on the caseload's dates unless one date is given
        checked = pair(self.ruleset_for(decision_date or dt.date.today()))

        def work(jid: int, out: Path) -> dict[str, Any]:
            meter, start = JobProgress(out), time.monotonic()
            meter(0, 1, 0, 0.0)  # one step in one process: the status says it has begun
            parts = {} if decision_date else self.caseload_parts(caseload, out / ".by-ruleset")
            if len(parts) > 1:  # each part compared under the ruleset in force on its rows' dates
                summary = impact_parts([(*pair(rid), path) for rid, path in sorted(parts.items())], out)
            else:
                base, head = checked if decision_date else pair(self.ruleset_for_caseload(caseload))
                summary = impact(base, head, caseload, out, decision_date=decision_date)
            self.store.update_job(jid, done=1, total=1)
            meter(1, 1, int(summary["rows_in"]), time.monotonic() - start)
            return summary

        return self.jobs.start("impact", user.id, work)

    def caseload_parts(self, source: Path, folder: Path) -> dict[int, Path]:
        """Ruleset id -> the part of the caseload it decides, cut into ``folder`` when its rows'
        decision dates fall under several versions; empty when they fall under one."""
        from api.by_date import caseload_dates, rulesets_in_force

        today = dt.date.today()
        if len(rulesets_in_force(caseload_dates(source), self.ruleset_for, today)) < 2:
            return {}
        return split_by_ruleset(source, self.ruleset_for, today, folder)

    def ruleset_for_caseload(self, source: Path) -> int:
        """The ruleset in force on a caseload's decision dates (one; refused if several)."""
        from api.by_date import caseload_dates, ruleset_for_dates

        return ruleset_for_dates(
            caseload_dates(source), self.ruleset_for, lambda rid: self.ruleset(rid).ruleset_version, dt.date.today()
        )

    def monitor_findings(self, jid: int, user: User | None = None) -> list[dict[str, Any]]:
        path = self.job_file(jid, "findings")
        found = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
        town = bound_township(user) if user is not None else None
        return found if town is None else [f for f in found if f.get("township") == town]

    def check_job(self, jid: int, user: User, own_roles: tuple[str, ...]) -> None:
        """Roles in ``own_roles`` reach only the jobs they started."""
        row = self.store.job(jid)
        if row is None:
            raise NotFound("api.not_found.job", id=jid)
        if user.role in own_roles and row["created_by"] != user.id:
            raise Forbidden("api.job_other_user", id=jid, role=user.role)

    def job(self, jid: int) -> dict[str, Any]:
        row = self.store.job(jid)
        if row is None:
            raise NotFound("api.not_found.job", id=jid)
        summary = json.loads(row["summary"]) if row["summary"] else None
        resumable = row["status"] == "failed" and bool((summary or {}).get("resumable"))
        return {
            "id": jid,
            "kind": row["kind"],
            "status": row["status"],
            "done": row["done"],
            "total": row["total"],
            "summary": None if row["status"] == "failed" else summary,
            "error": row["error"],
            "resumable": resumable,
            "progress": read_progress(row["folder"]),  # fields: api/job_progress.py
        }

    def job_file(self, jid: int, name: str) -> Path:
        row = self.store.job(jid)
        if row is None or row["status"] != "done":
            raise NotFound("api.not_found.job_output", id=jid)
        folder = Path(row["folder"])
        matches = [p for p in folder.iterdir() if p.is_file() and p.stem == name]
        if not matches:
            raise NotFound("api.not_found.job_file", id=jid, name=name)
        return matches[0]

    def server_path(self, relative: str, field: str = "path") -> Path:
        return inside(self.settings.data_dir, relative, field)

    def upload_folder(self) -> Path:
        """Where uploads are streamed; each is deleted when its job ends."""
        folder = self.settings.data_dir / "uploads"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    # ------------------------------------------------------------ public disclosure

    def disclosure(
        self, since: dt.date, until: dt.date, lang: str = "zh"
    ) -> tuple[dict[str, str], list[dict[str, Any]]]:
        """Approved decisions in [since, until] with IDs and names masked (行政执法公示): the
        column headers and rows in ``lang`` (Chinese: a public notice); the decision columns,
        their labels and the words for their values come from the ruleset in force on ``until``."""
        rs = self.ruleset(self.ruleset_for(until))
        shown: dict[str, dict[str, str]] = rs.reports.get("disclosure") or {}
        headers = {name: catalogue_text(f"files.column.{name}", lang) for name in _DISCLOSURE_HOUSEHOLD}
        headers.update({name: label.get(lang) or label.get("zh") or name for name, label in shown.items()})
        headers["authority"] = catalogue_text("files.column.authority", lang)
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
            row.update({name: value_label(rs, name, decision.get(name), lang) or "" for name in shown})
            level = a.body.get("authority") or ""
            row["authority"] = catalogue_text(f"api.level.{level}", lang) if has(f"api.level.{level}") else level
            rows.append(row)
        return headers, rows


# the household's own columns, before the decision columns (headers: files.column.*)
_DISCLOSURE_HOUSEHOLD = ("approved_on", "township", "head_name", "head_id", "members")


_AMOUNT = re.compile(r"-?[0-9]{1,12}\.[0-9]{2}")  # a decision's money text, shown as a number


def disclosure_csv(headers: Mapping[str, str], rows: list[dict[str, Any]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([safe_cell(h) for h in headers.values()])
    for r in rows:
        writer.writerow([safe_cell(r[k]) for k in headers])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def disclosure_xlsx(headers: Mapping[str, str], rows: list[dict[str, Any]], lang: str = "zh") -> bytes:
    import xlsxwriter

    buf = io.BytesIO()
    # text is written as text, never read as a formula, number or link (and neutralised too,
    # for the copy a reader pastes or saves as CSV); amounts are written as numbers
    book = xlsxwriter.Workbook(
        buf, {"in_memory": True, "strings_to_formulas": False, "strings_to_numbers": False, "strings_to_urls": False}
    )
    sheet = book.add_worksheet(catalogue_text("files.sheet.disclosure", lang))
    money = book.add_format({"num_format": MONEY_FORMAT})
    for c, title in enumerate(headers.values()):
        sheet.write_string(0, c, str(safe_cell(title)))
    for r, row in enumerate(rows, start=1):
        for c, key in enumerate(headers):
            value = row[key]
            if isinstance(value, str) and _AMOUNT.fullmatch(value):
                sheet.write_number(r, c, float(value), money)
            elif isinstance(value, int | float) and not isinstance(value, bool):
                sheet.write_number(r, c, value)
            else:
                sheet.write_string(r, c, str(safe_cell(value)))
    book.close()
    return buf.getvalue()
