"""Who may use which route: the one table the service enforces, the tests walk pair by pair and
the README's role table is generated from (``python -m api.roles`` prints it, ``--write``
rewrites README.md between its markers).

A route not in the table is refused to everyone, so a new route cannot be open by mistake.
``township`` marks routes about households: a township officer there sees and acts on the
households of their own township only. ``own`` names roles that may reach only what they
created themselves (a policy officer's own impact job). ``masked`` names roles that read
resident IDs and names masked.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ROLES", "ROUTES", "Access", "access", "readme_table"]

ROLES = ("officer", "policy", "data", "auditor", "admin")


@dataclass(frozen=True)
class Access:
    roles: tuple[str, ...]  # empty: public, no token needed
    what: str
    township: bool = False
    own: tuple[str, ...] = ()
    masked: tuple[str, ...] = ()

    @property
    def public(self) -> bool:
        return not self.roles

    def allows(self, role: str) -> bool:
        return self.public or role in self.roles


_JOB_READERS = ("data", "policy", "auditor")
_JOB_OWN = ("policy",)

# (method, path template) -> who may use it. Keep the README's order: it is generated from this.
ROUTES: dict[tuple[str, str], Access] = {
    ("GET", "/healthz"): Access((), "ready"),
    ("GET", "/docs"): Access((), "the OpenAPI documentation (Swagger UI, served offline)"),
    ("POST", "/v1/decisions"): Access(("officer", "data"), "decide and store one household", township=True),
    ("POST", "/v1/decisions/batch"): Access(
        ("officer", "data"), "decide and store up to 1000 households", township=True
    ),
    ("GET", "/v1/decisions"): Access(
        ("officer", "auditor"),
        "search stored decisions (`household_id`, `person_id`, `township`, `status`, `from`, `to`, `page`), counts per status",
        township=True,
        masked=("auditor",),
    ),
    ("GET", "/v1/decisions/{decision_id}"): Access(
        ("officer", "auditor"), "one stored decision", township=True, masked=("auditor",)
    ),
    ("GET", "/v1/decisions/{decision_id}/replay"): Access(
        ("officer", "auditor"),
        "replay under its ruleset and registry versions; the replay is a ledger record (who, when, whether it matched)",
        township=True,
        masked=("auditor",),
    ),
    ("POST", "/v1/decisions/{decision_id}/approve"): Access(
        ("officer",),
        "approve: certificate valid today, the authority the decision needs, never one's own request, versions still in force",
        township=True,
    ),
    ("POST", "/v1/decisions/{decision_id}/reject"): Access(
        ("officer",),
        "reject: certificate valid today, the authority the decision needs, never one's own request",
        township=True,
    ),
    ("GET", "/v1/approvals/pending"): Access(
        ("officer",),
        "decisions waiting for this officer: their township and authority, not their own, oldest first",
        township=True,
    ),
    ("GET", "/v1/rulesets"): Access(("policy", "officer", "data", "auditor", "admin"), "rule versions"),
    ("GET", "/v1/rulesets/{ruleset_id}/rules"): Access(
        ("policy", "officer", "data", "auditor"), "a version's rules with legal basis"
    ),
    ("POST", "/v1/rulesets"): Access(("policy",), "check, test and publish a rules bundle (zip)"),
    ("POST", "/v1/rulesets/{ruleset_id}/rollback"): Access(
        ("policy",), "withdraw a version (refused if it leaves dates without a ruleset in force)"
    ),
    ("POST", "/v1/rulesets/{ruleset_id}/reinstate"): Access(("policy",), "publish a withdrawn version again"),
    ("PUT", "/v1/registries/{name}"): Access(
        ("data",),
        "a new registry version (text/csv); refused whole if any row is rejected or none is left, unless `?accept_partial=true` / `?allow_empty=true`",
    ),
    ("GET", "/v1/registries"): Access(("data", "officer", "auditor", "admin"), "the registry versions in use"),
    ("POST", "/v1/screenings"): Access(("data",), "start a bulk re-screening job"),
    ("GET", "/v1/screenings/{job_id}"): Access(_JOB_READERS, "a job's status (policy: its own jobs)", own=_JOB_OWN),
    ("GET", "/v1/screenings/{job_id}/files/{name}"): Access(
        _JOB_READERS, "a job's files (policy: its own jobs)", own=_JOB_OWN
    ),
    ("POST", "/v1/screenings/{job_id}/cancel"): Access(
        ("data", "policy"), "cancel a queued or running job (policy: its own jobs)", own=_JOB_OWN
    ),
    ("POST", "/v1/screenings/{job_id}/resume"): Access(("data",), "resume a screening a stopped server left"),
    ("POST", "/v1/events"): Access(("data",), "start an event monitoring job"),
    ("GET", "/v1/events/{job_id}/findings"): Access(
        ("officer", "data", "auditor"), "a monitoring job's findings", township=True
    ),
    ("POST", "/v1/candidates/reviews"): Access(
        ("officer", "data"), "review a village-committee candidate against the departments' records (stored)"
    ),
    ("GET", "/v1/candidates/reviews/{review_id}"): Access(("officer", "data"), "one stored candidate review"),
    ("GET", "/v1/candidates/reviews/{review_id}/replay"): Access(
        ("officer", "data"), "replay a candidate review under its registry versions"
    ),
    ("GET", "/v1/users"): Access(("admin",), "users with role, township, token expiry and revocation (never a token)"),
    ("POST", "/v1/users/{name}/revoke"): Access(("admin",), "revoke a user's token at once"),
    ("POST", "/v1/impact"): Access(("policy",), "start an impact job (read it at `/v1/screenings/{id}`)"),
    ("GET", "/v1/disclosure"): Access(
        ("auditor", "officer"), "approved decisions for public disclosure, IDs and names masked"
    ),
}


def access(method: str, path: str) -> Access | None:
    return ROUTES.get((method.upper(), path))


def readme_table() -> str:
    """The README's role table: one row per route, one column per role."""

    def cell(a: Access, role: str) -> str:
        if a.public:
            return "any"
        if role not in a.roles:
            return ""
        marks = [m for m, on in (("own", role in a.own), ("masked", role in a.masked)) if on]
        if a.township and role == "officer":
            marks.append("township")
        return "yes" + (f" ({', '.join(marks)})" if marks else "")

    lines = [
        "| route | " + " | ".join(ROLES) + " | what |",
        "|---|" + "---|" * len(ROLES) + "---|",
    ]
    for (method, path), a in ROUTES.items():
        lines.append(f"| `{method} {path}` | " + " | ".join(cell(a, r) for r in ROLES) + f" | {a.what} |")
    return "\n".join(lines) + "\n"


BEGIN = "<!-- roles table: generated by `python -m api.roles --write`; edit api/roles.py -->\n"
END = "<!-- end of roles table -->\n"


def with_table(readme: str) -> str:
    """``readme`` with the generated table between its markers."""
    head, found, rest = readme.partition(BEGIN)
    if not found:
        raise ValueError("README.md has no roles table markers")
    _, found, tail = rest.partition(END)
    if not found:
        raise ValueError("README.md's roles table has no end marker")
    return head + BEGIN + readme_table() + END + tail


def main(argv: list[str]) -> int:
    if argv[:1] == ["--write"]:
        path = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent.parent / "README.md"
        path.write_text(with_table(path.read_text(encoding="utf-8")), encoding="utf-8")
        return 0
    sys.stdout.write(readme_table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
