"""The service side of record types besides the household (e.g. the candidate joint review).

Each record type of the ruleset in force gets ``POST /v1/<table>/reviews`` and
``GET /v1/<table>/reviews/{id}``, for the officer and data roles only: these records are
shown to no other role. A review is stored in the ledger like a decision (kind
``<type>_review``), with the record, the decision, the ruleset and the registry versions
used, so it can be read back and audited. The type's registries are CSV files uploaded
through ``PUT /v1/registries/{name}`` and versioned like the household ones.
"""

import datetime as dt
import json
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, Header, Path, Query, Request

from api.masking import mask_id
from api.store import User
from api.workflow import NotFound, refuse_partial
from engine import (
    FieldProblem,
    InputError,
    Ruleset,
    SubjectEvaluator,
    explain_subject,
    parse_subject_registry,
    registry_from_rows,
)
from engine import text as catalogue_text

if TYPE_CHECKING:
    from api.service import Service

__all__ = ["SubjectReviews", "add_review_routes"]

REVIEW_ROLES = ("officer", "data")


class SubjectReviews:
    """Reviews of non-household records: registries, evaluators per version, the ledger."""

    def __init__(self, service: "Service") -> None:
        self.service = service
        self._lock = threading.Lock()
        self._evaluators: dict[tuple[int, str, tuple[int, ...]], SubjectEvaluator] = {}

    def current(self) -> Ruleset:
        return self.service.ruleset(self.service.current_ruleset())

    def registry_names(self) -> list[str]:
        return [n for spec in self.current().record_types.values() for n in spec.registries]

    def upload(
        self,
        rs: Ruleset,
        name: str,
        text: str,
        user: User | None,
        accept_partial: bool = False,
        allow_empty: bool = False,
    ) -> dict[str, Any] | None:
        """Store a new version of a record type's registry; None if no type declares it.
        Refused whole, as the household registries are, if a row is rejected or none is left."""

        spec = next((s for s in rs.record_types.values() if name in s.registries), None)
        if spec is None:
            return None
        reg = parse_subject_registry(spec, spec.registries[name], text)
        rejected = [r.as_dict() for r in reg.rejects]
        bad_rows = len({r.line for r in reg.rejects})
        report = {
            "registry": name,
            "rows": reg.count,
            "accepted": reg.count - bad_rows,
            "rejected_rows": bad_rows,
            "rejected": rejected,
        }
        refuse_partial(report, accept_partial, allow_empty)
        rows = sorted(json.dumps(r, ensure_ascii=False, sort_keys=True) for r in reg.accepted())
        vid = self.service.store.add_registry_version(
            name, reg.version, rows, reg.count, rejected, user.id if user else None
        )
        return {**report, "version_id": vid, "version": reg.version}

    def evaluator(
        self, rid: int, kind: str, versions: Mapping[str, int] | None = None
    ) -> tuple[SubjectEvaluator, dict[str, int]]:
        rs = self.service.ruleset(rid)
        spec = rs.record_types[kind]
        store = self.service.store
        if versions is None:
            rows = {n: store.latest_registry(n) for n in spec.registries}
        else:
            rows = {n: store.registry_version(versions[n]) if n in versions else None for n in spec.registries}
        ids = {n: int(r["id"]) for n, r in rows.items() if r}
        key = (rid, kind, tuple(sorted(ids.values())))
        with self._lock:
            ev = self._evaluators.get(key)
        if ev is None:
            regs = {
                n: registry_from_rows(
                    spec,
                    spec.registries[n],
                    [json.loads(k) for k in json.loads(r["keys"])],
                    f"v{r['id']}:{r['version']}",
                )
                for n, r in rows.items()
                if r
            }
            ev = SubjectEvaluator(spec, regs, rs.ruleset_version)
            with self._lock:
                self._evaluators[key] = ev
        return ev, ids

    def review(self, kind: str, raw: Any, user: User, lang: str, text: bool) -> dict[str, Any]:
        if not isinstance(raw, Mapping):
            raise InputError([FieldProblem("(body)", catalogue_text("input.body_record", "en"))])
        spec = self.current().record_types[kind]
        rid = self.service.ruleset_for(_day(raw.get(spec.role("date"))))
        ev, reg_ids = self.evaluator(rid, kind)
        decision = ev.decide(raw)
        body = {"record": dict(raw), "decision": decision.to_dict(), "ruleset_id": rid, "registry_versions": reg_ids}
        rec = self.service.store.append(f"{kind}_review", user.id, body)
        out = self.present(kind, rec.seq, rec.created_at, body)
        if text:
            out["explanation_text"] = explain_subject(decision, (lang, "en" if lang == "zh" else "zh"))
        return out

    def get(self, kind: str, seq: int) -> dict[str, Any]:
        rec = self.service.store.record(seq)
        if rec is None or rec.kind != f"{kind}_review":
            raise NotFound("api.not_found.review", kind=kind, id=seq)
        return self.present(kind, rec.seq, rec.created_at, rec.body)

    def replay(self, kind: str, seq: int) -> dict[str, Any]:
        """Decide the stored record again under its ruleset and registry versions."""
        rec = self.service.store.record(seq)
        if rec is None or rec.kind != f"{kind}_review":
            raise NotFound("api.not_found.review", kind=kind, id=seq)
        ev, _ = self.evaluator(int(rec.body["ruleset_id"]), kind, rec.body["registry_versions"])
        again = ev.decide(rec.body["record"]).to_dict(explain=False)
        stored = {k: v for k, v in rec.body["decision"].items() if k != "explanation"}
        return {"review_id": seq, "identical": again == stored, "decision": again}

    def present(self, kind: str, seq: int, at: str, body: Mapping[str, Any]) -> dict[str, Any]:
        spec = self.service.ruleset(int(body["ruleset_id"])).record_types[kind]
        person = body["record"].get(spec.role("person"))
        return {
            "review_id": seq,
            "recorded_at": at,
            spec.role("person"): mask_id(str(person)) if person else None,  # IDs are masked
            **body["decision"],
            "ruleset_id": body["ruleset_id"],
            "registry_versions": body["registry_versions"],
        }


def _day(value: Any) -> dt.date:
    """The date that picks the ruleset (a bad one is named when the record is validated)."""
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        return dt.date.today()


def add_review_routes(
    app: FastAPI,
    reviews: SubjectReviews,
    guard: Callable[..., Any],
    read_json: Callable[[Request], Any],
    lang_of: Callable[[str | None], str],
) -> None:
    """A review route pair for each record type of the ruleset in force at start-up."""
    for kind, spec in reviews.current().record_types.items():
        _routes(app, reviews, guard, read_json, lang_of, kind, spec.table)


def _routes(
    app: FastAPI,
    reviews: SubjectReviews,
    guard: Callable[..., Any],
    read_json: Callable[[Request], Any],
    lang_of: Callable[[str | None], str],
    kind: str,
    table: str,
) -> None:
    body = {"requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}}

    @app.post(f"/v1/{table}/reviews", tags=[table], status_code=201, openapi_extra=body, name=f"post_{kind}_review")
    async def post_review(
        request: Request,
        user: Annotated[User, Depends(guard)],
        accept_language: Annotated[str | None, Header()] = None,
        explain: Annotated[str | None, Query(pattern="^text$")] = None,
    ) -> dict[str, Any]:
        raw = await read_json(request)
        return reviews.review(kind, raw, user, lang_of(accept_language), explain == "text")

    @app.get(f"/v1/{table}/reviews/{{review_id}}", tags=[table], name=f"get_{kind}_review")
    async def get_review(
        review_id: Annotated[int, Path(ge=1, le=2**62)], user: Annotated[User, Depends(guard)]
    ) -> dict[str, Any]:
        return reviews.get(kind, review_id)

    @app.get(f"/v1/{table}/reviews/{{review_id}}/replay", tags=[table], name=f"replay_{kind}_review")
    async def replay_review(
        review_id: Annotated[int, Path(ge=1, le=2**62)], user: Annotated[User, Depends(guard)]
    ) -> dict[str, Any]:
        return reviews.replay(kind, review_id)
