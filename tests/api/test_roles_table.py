"""Every route × role pair of api/roles.py against a real server: an allowed role is never
refused (401/403), every other role is refused with 403, no token gets 401; the table covers
exactly the service's routes, and README.md's role table is the one generated from it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from api.roles import ROLES, ROUTES, with_table
from fixtures.server import Server, start
from tests.conftest import FIXTURES

ROOT = FIXTURES.parent
PAIRS = [(method, path, role) for (method, path) in ROUTES for role in ROLES]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = start(tmp_path_factory.mktemp("roles"))
    s.add_user("officer", "officer", "--level", "city", "--certificate", "JS-1", "--valid-until", "2099-12-31")
    for role in ("policy", "data", "auditor"):
        s.add_user(role, role)
    s.tokens["admin"] = s.admin
    (s.folder / "caseload.jsonl").write_bytes((FIXTURES / "households.jsonl").read_bytes())
    yield s
    s.stop()


@pytest.fixture(scope="module")
def objects(server: Server) -> dict[str, Any]:
    """One real object per path parameter: a decision, the policy user's own job, a ruleset."""
    household = json.loads((FIXTURES / "households" / "HM-2019-000101.json").read_text(encoding="utf-8"))
    decision = server.client(server.tokens["data"]).post("/v1/decisions", json=household).json()["decision_id"]
    policy = server.client(server.tokens["policy"])
    job = policy.post("/v1/impact", json={"caseload": "caseload.jsonl", "date": "2019-08-01"}).json()["id"]
    for _ in range(600):
        if policy.get(f"/v1/screenings/{job}").json()["status"] in ("done", "failed"):
            break
        time.sleep(0.1)
    return {"decision_id": decision, "job_id": job, "ruleset_id": 1, "name": "summary", "review_id": decision}


def _call(server: Server, method: str, path: str, objects: dict[str, Any], token: str | None) -> int:
    """One request that passes the role check without changing anything the others need:
    mutating routes get an empty or unknown target, so an allowed role gets 404/422, not 2xx."""
    url = path.format(**objects)
    mutating_unknown = {
        "/v1/decisions/{decision_id}/approve",
        "/v1/decisions/{decision_id}/reject",
        "/v1/rulesets/{ruleset_id}/rollback",
    }
    if path in mutating_unknown:
        url = path.format(**{**objects, "decision_id": 999_999, "ruleset_id": 999_999})
    if path == "/v1/registries/{name}":
        url = "/v1/registries/relatives"
    client = server.client(token)
    if method == "GET":
        params = {"from": "2019-01-01", "to": "2019-12-31"} if path == "/v1/disclosure" else None
        return client.get(url, params=params).status_code
    if method == "PUT":
        return client.put(url, content=b"nothing,useful\n", headers={"Content-Type": "text/csv"}).status_code
    if path == "/v1/decisions":
        household = json.loads((FIXTURES / "households" / "HM-2019-000102.json").read_text(encoding="utf-8"))
        return client.post(url, json=household).status_code
    return client.post(url, content=b"", headers={"Content-Type": "application/json"}).status_code


@pytest.mark.parametrize(("method", "path", "role"), PAIRS, ids=[f"{m} {p} {r}" for m, p, r in PAIRS])
def test_route_role_pair(server: Server, objects: dict[str, Any], method: str, path: str, role: str) -> None:
    allowed = ROUTES[(method, path)].allows(role)
    status = _call(server, method, path, objects, server.tokens[role])
    if allowed:
        assert status not in (401, 403), f"{role} should be able to use {method} {path}: got {status}"
        assert status < 500
    else:
        assert status == 403, f"{role} must be refused {method} {path}: got {status}"


@pytest.mark.parametrize(("method", "path"), list(ROUTES), ids=[f"{m} {p}" for m, p in ROUTES])
def test_no_token_is_401_except_public_routes(server: Server, objects: dict[str, Any], method: str, path: str) -> None:
    status = _call(server, method, path, objects, None)
    if ROUTES[(method, path)].public:
        assert status == 200
    else:
        assert status == 401


def test_table_covers_exactly_the_service_routes(server: Server) -> None:
    spec = server.client().get("/openapi.json").json()
    served = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    served.add(("GET", "/docs"))  # the documentation page itself is not part of the schema it shows
    assert server.client().get("/docs").status_code == 200
    assert served == set(ROUTES), {"not in api/roles.py": served - set(ROUTES), "not served": set(ROUTES) - served}


def test_readme_role_table_is_generated_from_the_table() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert with_table(readme) == readme, "README.md's role table is stale: run `python -m api.roles --write`"
