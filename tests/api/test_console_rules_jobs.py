"""Console screens 5-8 through the test client: the rules explorer and version diff, the rule
change workspace (lint at file:line:col, tests, one household both ways, publish, roll back),
jobs (a screening to 100 %, downloads, rejects, findings) and registries (row report, versions,
what changed); with and without htmx, and the roles the API enforces."""

from __future__ import annotations

import io
import json
import shutil
import time
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest

from api.masking import mask_id
from api.rule_workspace import bundle_of
from fixtures.console import TestClient, add_user, app_on, csrf_of, sign_in
from tests.conftest import FIXTURES, RULES, rule_line

TYPO = ("when: T < dibao.standard * n", "when: T < dibao.standrd * n")
# a new dated value of the Haimen standard, later than every rule test's date: the tests still pass
NEW_STANDARD = '        2020-07-01: {value: 830, reference: "[default] 海门市城乡低保标准 2020 年调整"}\n'
ADDED = '        2021-07-01: {value: 870, reference: "海门市城乡低保标准 2021 年调整"}\n'


def rules_files() -> dict[str, str]:
    from engine import load

    return dict(load(RULES).files)


def bundle(change: tuple[str, str, str] | None = None) -> bytes:
    files = rules_files()
    if change is not None:
        name, old, new = change
        assert old in files[name]
        files[name] = files[name].replace(old, new, 1)
    return bundle_of(files)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    folder = tmp_path_factory.mktemp("console58")
    shutil.copy(FIXTURES / "households.jsonl", folder / "households.jsonl")
    application = app_on(folder)
    application.state.tokens = {
        "policy": add_user(application, "policy1", "policy"),
        "policy2": add_user(application, "policy2", "policy"),
        "data": add_user(application, "data1", "data"),
        "officer": add_user(application, "officer1", "officer", "city"),
        "auditor": add_user(application, "auditor1", "auditor"),
        "admin": add_user(application, "admin1", "admin"),
    }
    with TestClient(application):
        yield application


@pytest.fixture(scope="module")
def clients(app: Any) -> dict[str, TestClient]:
    return {role: sign_in(app, token) for role, token in app.state.tokens.items()}


def _nav(html: str) -> str:
    return html.split("<nav", 1)[1].split("</nav>", 1)[0]


# ------------------------------------------------------------------ screen 5


def test_the_rules_explorer_shows_conditions_legal_basis_and_dated_parameters(clients: dict[str, TestClient]) -> None:
    r = clients["officer"].get("/console/rules")
    assert r.status_code == 200
    html = r.text
    assert "人均收入低于低保标准" in html  # a rule's title
    assert "T &lt; dibao.standard × n" in html  # its condition, written back from the plan
    assert "《社会救助暂行办法》第九条" in html  # its legal basis
    assert "2019-06-30" in html  # a parameter's value ends the day before the next starts
    assert "海门市城乡低保标准 2019 年调整" in html  # the reference of a dated value
    en = clients["officer"].get("/console/rules?lang=en").text
    assert "Per-capita income below the dibao standard" in en
    assert "T &lt; dibao.standard × n" in en
    zh = clients["officer"].get("/console/rules?lang=zh")  # the cookie goes back to Chinese
    assert zh.status_code == 200


def test_the_explorer_answers_htmx_with_its_content_only(clients: dict[str, TestClient]) -> None:
    r = clients["auditor"].get("/console/rules", headers={"HX-Request": "true"})
    assert r.status_code == 200
    assert "<html" not in r.text
    assert "dibao.income_below_standard" in r.text
    assert "<html" in clients["auditor"].get("/console/rules").text


def test_the_rules_pages_follow_the_api_roles(clients: dict[str, TestClient]) -> None:
    assert "/console/rules" in _nav(clients["data"].get("/console/account").text)
    assert "/console/rules" not in _nav(clients["admin"].get("/console/account").text)
    assert clients["admin"].get("/console/rules").status_code == 403
    assert clients["admin"].get("/console/rules/diff").status_code == 403
    assert clients["data"].get("/console/rules?version=999").status_code == 404


# ------------------------------------------------------------------ screen 6


def test_only_policy_staff_have_the_workspace(clients: dict[str, TestClient]) -> None:
    assert "/console/workspace" in _nav(clients["policy"].get("/console/account").text)
    for role in ("officer", "data", "auditor", "admin"):
        assert "/console/workspace" not in _nav(clients[role].get("/console/account").text)
        assert clients[role].get("/console/workspace").status_code == 403
    # a forged POST is refused whatever the page showed
    page = clients["officer"].get("/console/account").text
    r = clients["officer"].post(
        "/console/workspace/publish", data={"csrf": csrf_of(page), "effective_from": "2030-01-01"}
    )
    assert r.status_code == 403


def _upload(client: TestClient, data: bytes) -> Any:
    page = client.get("/console/workspace").text
    return client.post(
        "/console/workspace/upload",
        data={"csrf": csrf_of(page)},
        files={"bundle": ("rules.zip", data, "application/zip")},
    )


def test_a_typo_is_shown_at_its_file_line_and_column_then_mended_in_the_browser(
    clients: dict[str, TestClient],
) -> None:
    client = clients["policy2"]
    r = _upload(client, bundle(("programs/dibao.yaml", *TYPO)))
    assert r.status_code == 422
    line = rule_line("programs/dibao.yaml", TYPO[0])
    assert f"programs/dibao.yaml:{line}:15" in r.text
    assert "unknown-name" in r.text
    assert "    when: T &lt; dibao.standrd * n" in r.text  # the line itself, beside the problem
    assert "did you mean `dibao.standard`" in r.text
    # edit the file in the browser: the problem is shown beside its line, then gone once mended
    form = client.get("/console/workspace/file?name=programs/dibao.yaml")
    assert form.status_code == 200
    text = form.text.split('id="text"', 1)[1].split(">", 1)[1].split("</textarea>", 1)[0]
    assert "dibao.standrd" in text
    csrf = csrf_of(form.text)
    source = rules_files()["programs/dibao.yaml"].replace(*TYPO)
    saved = client.post("/console/workspace/file", data={"csrf": csrf, "name": "programs/dibao.yaml", "text": source})
    assert saved.status_code == 422
    assert f'id="L{line}" class="at"' in saved.text
    fixed = client.post(
        "/console/workspace/file",
        data={"csrf": csrf, "name": "programs/dibao.yaml", "text": rules_files()["programs/dibao.yaml"]},
    )
    assert fixed.status_code == 200
    assert 'id="check-ok"' in fixed.text
    # a file the draft does not hold is refused
    assert client.get("/console/workspace/file?name=../../etc/passwd").status_code == 404


def test_rule_tests_fail_at_their_line_and_pass_after(clients: dict[str, TestClient]) -> None:
    client = clients["policy2"]
    wrong = bundle(("parameters/dibao.yaml", "2020-07-01: {value: 830", "2020-07-01: {value: 850"))
    assert _upload(client, wrong).status_code == 200  # it loads: lint is clean
    page = client.get("/console/workspace").text
    r = client.post("/console/workspace/test", data={"csrf": csrf_of(page)}, headers={"HX-Request": "true"})
    assert r.status_code == 422
    assert "<html" not in r.text
    assert "rule-test" in r.text
    assert "tests/dibao.yaml:" in r.text
    _upload(client, bundle())
    ok = client.post("/console/workspace/test", data={"csrf": csrf_of(page)})
    assert ok.status_code == 200
    assert 'id="check-ok"' in ok.text


def test_one_household_side_by_side_then_publish_and_see_the_diff(app: Any, clients: dict[str, TestClient]) -> None:
    client = clients["policy"]
    good = bundle(("parameters/dibao.yaml", NEW_STANDARD, NEW_STANDARD + ADDED))
    assert _upload(client, good).status_code == 200
    page = client.get("/console/workspace").text
    household = json.loads((FIXTURES / "households" / "HM-2019-000101.json").read_text(encoding="utf-8"))
    household["decision_date"] = "2021-08-01"
    tried = client.post("/console/workspace/try", data={"csrf": csrf_of(page), "household": json.dumps(household)})
    assert tried.status_code == 200
    assert "dibao.standard" in tried.text
    assert "870.00" in tried.text
    assert "830.00" in tried.text
    bad = client.post("/console/workspace/try", data={"csrf": csrf_of(page), "household": "{nope"})
    assert bad.status_code == 422
    # the draft against the rules in force
    diff = client.get("/console/workspace/diff")
    assert "2021-07-01" in diff.text
    assert "870.00" in diff.text
    before = len(app.state.service.store.rulesets())
    r = client.post(
        "/console/workspace/publish",
        data={"csrf": csrf_of(page), "effective_from": "2030-01-01"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    new = len(app.state.service.store.rulesets())
    assert new == before + 1
    assert r.headers["location"].endswith(f"&head={new}&published=1")
    shown = client.get(r.headers["location"])
    assert shown.status_code == 200
    assert "dibao.standard" in shown.text
    assert "2021-07-01" in shown.text
    assert "海门市城乡低保标准 2021 年调整" in shown.text
    # the publication is in the ledger, by the policy officer, as through the API
    last = app.state.service.store.records("ruleset")[-1]
    assert last.body["action"] == "publish"
    assert last.body["ruleset_id"] == new


def test_roll_back_and_reinstate_through_the_service(app: Any, clients: dict[str, TestClient]) -> None:
    client = clients["policy"]
    rows = app.state.service.store.rulesets()
    newest = max(r["id"] for r in rows)
    page = client.get("/console/workspace").text
    assert f"/console/workspace/rulesets/{newest}/rollback" in page
    r = client.post(
        f"/console/workspace/rulesets/{newest}/rollback", data={"csrf": csrf_of(page)}, follow_redirects=False
    )
    assert r.status_code == 303
    assert {x["id"]: x["status"] for x in app.state.service.store.rulesets()}[newest] == "withdrawn"
    page = client.get("/console/workspace").text
    assert f"/console/workspace/rulesets/{newest}/reinstate" in page
    client.post(f"/console/workspace/rulesets/{newest}/reinstate", data={"csrf": csrf_of(page)})
    assert {x["id"]: x["status"] for x in app.state.service.store.rulesets()}[newest] == "published"
    # withdrawing the only version covering today is refused, as the API refuses it
    refused = client.post("/console/workspace/rulesets/1/rollback", data={"csrf": csrf_of(page)})
    assert refused.status_code == 409
    assert "without a ruleset in force" in refused.text


# ------------------------------------------------------------------ screen 7


def _wait(client: TestClient, jid: int) -> str:
    for _ in range(300):
        part = str(client.get(f"/console/jobs/{jid}/progress", headers={"HX-Request": "true"}).text)
        if 'hx-trigger="every 1s"' not in part:
            return part
        time.sleep(0.1)
    raise AssertionError(f"job {jid} did not end")


def test_a_screening_from_the_data_folder_reaches_100_percent(app: Any, clients: dict[str, TestClient]) -> None:
    client = clients["data"]
    page = client.get("/console/jobs").text
    assert 'value="households.jsonl"' in page  # the data folder's caseloads to pick from
    r = client.post(
        "/console/jobs/screening",
        data={"csrf": csrf_of(page), "path": "households.jsonl", "format": "csv"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    jid = int(r.headers["location"].rsplit("/", 1)[1])
    part = _wait(client, jid)
    assert 'value="100"' in part
    assert "100 %" in part
    decisions = client.get(f"/console/jobs/{jid}/files/decisions")
    assert decisions.status_code == 200
    assert "HM-2019-000101" in decisions.text
    assert "attachment" in decisions.headers["content-disposition"]
    rejects = client.get(f"/console/jobs/{jid}/rejects")
    assert rejects.status_code == 200
    assert "household_id" in rejects.text
    # an auditor may read it; an officer may not; policy reads its own jobs only
    assert clients["auditor"].get(f"/console/jobs/{jid}").status_code == 200
    assert clients["officer"].get(f"/console/jobs/{jid}").status_code == 403
    assert clients["policy"].get(f"/console/jobs/{jid}").status_code == 403
    assert client.get(f"/console/jobs/{jid}/files/passwd").status_code == 404


def test_an_uploaded_caseload_is_screened_and_its_rejects_browsed(app: Any, clients: dict[str, TestClient]) -> None:
    client = clients["data"]
    lines = (FIXTURES / "households.jsonl").read_text(encoding="utf-8").splitlines()
    caseload = "\n".join([*lines[:3], '{"household_id": "BROKEN"}']) + "\n"
    page = client.get("/console/jobs").text
    r = client.post(
        "/console/jobs/screening",
        data={"csrf": csrf_of(page), "path": "", "format": "parquet"},
        files={"file": ("caseload.jsonl", caseload.encode(), "application/x-ndjson")},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    jid = int(r.headers["location"].rsplit("/", 1)[1])
    part = _wait(client, jid)
    assert "100 %" in part
    shown = client.get(f"/console/jobs/{jid}/rejects").text
    assert "BROKEN" in shown
    assert not list((app.state.service.settings.data_dir / "uploads").iterdir())  # the upload is deleted


def test_officers_see_monitoring_findings_of_their_township_only(app: Any, clients: dict[str, TestClient]) -> None:
    client = clients["data"]
    page = client.get("/console/jobs").text
    events = (FIXTURES / "events.jsonl").read_bytes()
    r = client.post(
        "/console/jobs/monitor",
        data={"csrf": csrf_of(page), "caseload": "households.jsonl"},
        files={"events": ("events.jsonl", events, "application/x-ndjson")},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    jid = int(r.headers["location"].rsplit("/", 1)[1])
    _wait(client, jid)
    officer = clients["officer"]
    listed = officer.get("/console/jobs").text
    assert f"/console/jobs/{jid}/findings" in listed
    assert "/console/jobs/screening" not in listed  # no form to start a job
    found = officer.get(f"/console/jobs/{jid}/findings")
    assert found.status_code == 200
    assert "EV-2019-0001" in found.text
    everyone = app.state.service.monitor_findings(jid)
    towns = sorted({f["township"] for f in everyone if f.get("township")})
    assert towns
    local = sign_in(app, add_user(app, "town-officer", "officer", "township", towns[0]))
    shown = local.get(f"/console/jobs/{jid}/findings").text
    mine = [f["household_id"] for f in everyone if f.get("township") == towns[0]]
    others = [f["household_id"] for f in everyone if f.get("township") != towns[0]]
    assert all(h in shown for h in mine)
    assert not any(f">{h}<" in shown for h in others)
    assert officer.post(f"/console/jobs/{jid}/cancel", data={"csrf": csrf_of(listed)}).status_code == 403


def test_policy_runs_an_impact_preview_of_its_draft_and_opens_the_report(clients: dict[str, TestClient]) -> None:
    client = clients["policy2"]
    _upload(client, bundle(("parameters/dibao.yaml", "2020-07-01: {value: 830", "2020-07-01: {value: 900")))
    page = client.get("/console/workspace").text
    # the caseloads offered are the data folder's, never a job's own files (findings.jsonl)
    assert 'value="households.jsonl"' in page
    assert 'value="jobs/' not in page
    r = client.post(
        "/console/workspace/impact",
        data={"csrf": csrf_of(page), "caseload": "households.jsonl", "date": "2020-08-01"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    jid = int(r.headers["location"].rsplit("/", 1)[1])
    part = _wait(client, jid)
    assert "100 %" in part
    assert f"/console/jobs/{jid}/files/report" in part
    report = client.get(f"/console/jobs/{jid}/files/report")
    assert report.status_code == 200
    assert report.headers["content-type"].startswith("text/html")
    assert "script-src" not in report.headers["content-security-policy"]  # no script may run in it
    assert "<html" in report.text
    # another policy officer cannot read this job
    assert clients["policy"].get(f"/console/jobs/{jid}").status_code == 403


# ------------------------------------------------------------------ screen 8


def test_registry_upload_row_report_versions_and_what_changed(app: Any, clients: dict[str, TestClient]) -> None:
    client = clients["data"]
    page = client.get("/console/registries")
    assert page.status_code == 200
    assert "relatives" in page.text
    original = (FIXTURES / "registries" / "relatives.csv").read_text(encoding="utf-8")
    header, first, *rest = original.splitlines()
    bad = "\n".join([header, *rest, "not-an-id,X,Y,Z,spouse"]) + "\n"
    csrf = csrf_of(page.text)
    refused = client.post("/console/registries/relatives", data={"csrf": csrf}, files={"file": ("r.csv", bad.encode())})
    assert refused.status_code == 422
    assert 'id="row-report"' in refused.text
    assert f"共 {len(rest) + 1} 行：接受 {len(rest)} 行，拒收 1 行" in refused.text
    stored = client.post(
        "/console/registries/relatives",
        data={"csrf": csrf, "accept_partial": "1"},
        files={"file": ("r.csv", bad.encode())},
    )
    assert stored.status_code == 200
    assert "已保存为版本" in stored.text
    history = app.state.service.store.latest_registry("relatives")
    assert history is not None
    new = int(history["id"])
    listed = client.get("/console/registries").text
    link = next(x for x in listed.split('href="') if x.startswith("/console/registries/relatives/diff"))
    url = link.split('"', 1)[0].replace("&amp;", "&")
    assert url.endswith(f"new={new}")
    removed_id = first.split(",", 1)[0]
    diff = client.get(url).text
    assert removed_id in diff  # data staff read the keys as they are
    masked = clients["auditor"].get(url).text
    assert removed_id not in masked
    assert mask_id(removed_id) in masked
    # only data staff upload; the server refuses a forged upload from another role
    assert '/console/registries/relatives"' not in clients["auditor"].get("/console/registries").text
    forged = clients["auditor"].post(
        "/console/registries/relatives", data={"csrf": csrf_of(masked)}, files={"file": ("r.csv", original.encode())}
    )
    assert forged.status_code == 403
    assert clients["policy"].get("/console/registries").status_code == 403


def test_a_zip_that_is_no_bundle_is_refused_in_the_workspace(clients: dict[str, TestClient]) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "no rules here")
    r = _upload(clients["policy2"], buf.getvalue())
    assert r.status_code == 422
    assert "ruleset.yaml" in r.text


@pytest.mark.parametrize(
    ("role", "path", "english"),
    [
        ("officer", "/console/rules", "Rules explorer"),
        ("auditor", "/console/rules/diff", "Compare versions"),
        ("policy", "/console/workspace", "Rule change workspace"),
        ("data", "/console/jobs", "New screening"),
        ("officer", "/console/jobs", "Jobs"),
        ("data", "/console/registries", "Upload a new version (CSV)"),
    ],
)
def test_pages_in_english_with_no_inline_script_or_style(
    clients: dict[str, TestClient], role: str, path: str, english: str
) -> None:
    r = clients[role].get(path + "?lang=en")
    assert r.status_code == 200
    assert english in r.text
    assert "<script>" not in r.text
    assert " style=" not in r.text
    assert "unsafe-inline" not in r.headers["content-security-policy"]
    clients[role].get(path + "?lang=zh")  # back to Chinese for the tests after
