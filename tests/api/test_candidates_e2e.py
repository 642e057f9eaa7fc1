"""End to end: the candidate joint review through a real `jiuzhu serve` and SQLite store.

Registries are uploaded as CSV and versioned; reviews are stored in the ledger; only the
officer and data roles see candidate records."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.server import Server, jiuzhu, start

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def _candidates() -> dict[str, dict[str, object]]:
    lines = (FIXTURES / "candidates.jsonl").read_text(encoding="utf-8").splitlines()
    return {str(c["candidate_id"]): c for c in map(json.loads, lines)}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("candidates")
    srv = start(folder, "--registry", f"review_returns={FIXTURES / 'registries' / 'review_returns.csv'}")
    srv.add_user(
        "officer", "officer", "--level", "township", "--certificate", "JS-2019-0009", "--valid-until", "2099-12-31"
    )
    for name in ("data", "auditor", "policy"):
        srv.add_user(name, name)
    yield srv
    srv.stop()


def test_review_uses_uploaded_registry_versions(server: Server) -> None:
    data = server.client(server.tokens["data"])
    officer = server.client(server.tokens["officer"], **{"Accept-Language": "zh"})
    cand = _candidates()["HM-2019-C-0002"]
    before = officer.post("/v1/candidates/reviews", json=cand)
    assert before.status_code == 201, before.text
    assert before.json()["review_status"] == "qualified"  # no review records uploaded yet
    csv_text = (FIXTURES / "registries" / "review_records.csv").read_text(encoding="utf-8")
    bad_row = "320684196807210239,no_such_category,court,2019-01-01,,x\n320684196807210239,criminal_penalty,court,2019-01-01,2018-01-01,x\n"
    headers = {"Content-Type": "text/csv"}
    refused = data.put("/v1/registries/review_records", content=csv_text + bad_row, headers=headers)
    assert refused.status_code == 422, refused.text  # rows rejected: refused whole unless accepted
    assert refused.json()["report"]["rejected_rows"] == 2
    up = data.put("/v1/registries/review_records?accept_partial=true", content=csv_text + bad_row, headers=headers)
    assert up.status_code == 200, up.text
    body = up.json()
    assert [r["field"] for r in body["rejected"]] == ["category", "end_date"]
    after = officer.post("/v1/candidates/reviews?explain=text", json=cand)
    assert after.status_code == 201, after.text
    review = after.json()
    assert review["review_status"] == "disqualified"
    assert review["action"] == "exclude"
    assert [r["id"] for r in review["reasons"]] == ["candidate.negative.criminal_penalty"]
    assert review["reasons"][0]["records"][0]["department"] == "public_security"
    assert review["registry_versions"]["review_records"] == body["version_id"]
    assert review["person_id"] == "3206**********0239"
    assert review["explanation_text"].startswith("村(居)委会换届候选人资格联审")
    again = officer.get(f"/v1/candidates/reviews/{review['review_id']}")
    assert again.status_code == 200
    assert again.json()["reasons"] == review["reasons"]
    # the first review keeps what it was decided with, and replays to the same decision
    first = officer.get(f"/v1/candidates/reviews/{before.json()['review_id']}").json()
    assert first["review_status"] == "qualified"
    replay = officer.get(f"/v1/candidates/reviews/{before.json()['review_id']}/replay").json()
    assert replay["identical"] is True
    assert replay["decision"]["review_status"] == "qualified"
    listed = data.get("/v1/registries").json()
    assert {"review_records", "review_returns"} <= set(listed)


def test_missing_return_and_sitting_member(server: Server) -> None:
    data = server.client(server.tokens["data"])
    cands = _candidates()
    incomplete = data.post("/v1/candidates/reviews", json=cands["HM-2019-C-0004"]).json()
    assert (incomplete["review_status"], incomplete["action"], incomplete["missing_departments"]) == (
        "incomplete",
        "await_returns",
        ["court"],
    )


def test_other_roles_see_no_candidate_records(server: Server) -> None:
    cand = _candidates()["HM-2019-C-0001"]
    officer = server.client(server.tokens["officer"])
    made = officer.post("/v1/candidates/reviews", json=cand).json()
    for who in ("auditor", "policy"):
        c = server.client(server.tokens[who])
        assert c.post("/v1/candidates/reviews", json=cand).status_code == 403
        assert c.get(f"/v1/candidates/reviews/{made['review_id']}").status_code == 403
    assert server.client().post("/v1/candidates/reviews", json=cand).status_code == 401
    # a review is not a household decision, whoever asks
    assert officer.get(f"/v1/decisions/{made['review_id']}").status_code == 404


def test_bad_record_names_the_field(server: Server) -> None:
    cand = {**_candidates()["HM-2019-C-0001"], "election_date": None}
    r = server.client(server.tokens["officer"]).post("/v1/candidates/reviews", json=cand)
    assert r.status_code == 422
    assert "election_date" in r.text


def test_reviews_are_in_the_audit_chain(server: Server) -> None:
    out = jiuzhu("audit", "verify", "--db", server.db)
    assert out.returncode == 0, out.stdout + out.stderr
