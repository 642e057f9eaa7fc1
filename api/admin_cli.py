"""`jiuzhu users` and `jiuzhu audit`: the operator's commands on a store. Each refuses a
database that does not exist (a mistyped --db) unless --create is given."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import click

__all__ = ["DEFAULT_DB", "audit", "users"]

DEFAULT_DB = "sqlite:///var/jiuzhu.db"

_db_option = click.option("--db", default=DEFAULT_DB, show_default=True, help="SQLAlchemy URL of the store.")
_create_option = click.option("--create", is_flag=True, help="Make a new, empty store when --db names none.")


def _store(db: str, create: bool = False) -> Any:
    from api.store import Store, StoreUnusable

    try:
        return Store(db, create=create)
    except StoreUnusable as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)


@click.group()
def users() -> None:
    """Manage users of the service and their tokens."""


@users.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(["officer", "policy", "data", "auditor", "admin"]))
@click.option("--level", type=click.Choice(["township", "city"]), help="An officer's level.")
@click.option("--township", help="The township a township officer works for (区镇).")
@click.option("--certificate", help="Enforcement certificate number (持证上岗).")
@click.option("--valid-until", type=click.DateTime(["%Y-%m-%d"]), help="Last day the certificate is valid.")
@click.option(
    "--expires-in-days",
    type=click.FloatRange(min=0, min_open=True, max=3650),
    default=90,
    show_default=True,
    help="The token stops working after this many days (`users renew` issues a new one).",
)
@_db_option
@_create_option
def users_add(
    name: str,
    role: str,
    level: str | None,
    township: str | None,
    certificate: str | None,
    valid_until: dt.datetime | None,
    expires_in_days: float,
    db: str,
    create: bool,
) -> None:
    """Create a user; its token is printed as the last line (only its hash is kept)."""
    if role == "officer" and level is None:
        click.echo("an officer needs --level township or city", err=True)
        sys.exit(2)
    if township is not None and role != "officer":
        click.echo("--township is for officers", err=True)
        sys.exit(2)
    if (certificate is None) != (valid_until is None):
        click.echo("--certificate and --valid-until go together", err=True)
        sys.exit(2)
    store = _store(db, create)
    if store.has_user(name):
        click.echo(f"a user named {name} exists already (see `jiuzhu users list`); choose another name", err=True)
        sys.exit(2)
    import sqlalchemy as sa

    try:
        user, token = store.add_user(
            name,
            role,
            level,
            certificate,
            valid_until.date() if valid_until else None,
            township=township,
            expires_in=dt.timedelta(days=expires_in_days),
        )
    except sa.exc.IntegrityError:  # added by someone else since the check above
        click.echo(f"a user named {name} exists already; choose another name", err=True)
        sys.exit(2)
    click.echo(f"user {user.name} (id {user.id}, role {user.role}) created")
    click.echo(token)


@users.command("list")
@_db_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per user.")
def users_list(db: str, as_json: bool) -> None:
    """Every user: role, level, township, token expiry, revocation (never a token)."""
    from api.accounts import list_users

    rows = list_users(_store(db))
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, ensure_ascii=False))
        return
    click.echo("name\trole\tlevel\ttownship\texpires\tstate")
    for r in rows:
        state = "revoked" if r["revoked_at"] else "expired" if r["expired"] else "active"
        cells = [r["name"], r["role"], r["level"] or "", r["township"] or "", r["expires_at"] or "", state]
        click.echo("\t".join(cells))


@users.command("renew")
@click.argument("name")
@click.option("--expires-in-days", type=click.FloatRange(min=0, min_open=True, max=3650), default=90, show_default=True)
@_db_option
def users_renew(name: str, expires_in_days: float, db: str) -> None:
    """Issue a new token (printed as the last line); the old one stops working."""
    from api.accounts import renew_token

    token = renew_token(_store(db), name, dt.timedelta(days=expires_in_days))
    if token is None:
        click.echo(f"no user named {name}", err=True)
        sys.exit(1)
    click.echo(f"user {name}: new token")
    click.echo(token)


@users.command("revoke")
@click.argument("name")
@_db_option
def users_revoke(name: str, db: str) -> None:
    """Revoke a user's token at once (recorded in the ledger)."""
    from api.accounts import revoke_user

    if not revoke_user(_store(db), name):
        click.echo(f"no active user named {name}", err=True)
        sys.exit(1)
    click.echo(f"user {name} revoked")


@click.group()
def audit() -> None:
    """Check the decision and approval log."""


@audit.command("verify")
@_db_option
@click.option(
    "--anchor", "anchor_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="anchor.json"
)
@click.option("--key-file", type=click.Path(dir_okay=False, path_type=Path), help="The anchor's key.")
@_create_option
def audit_verify(db: str, anchor_file: Path | None, key_file: Path | None, create: bool) -> None:
    """Recompute the hash chain, compare the users with their ledger records and, with
    --anchor, check that the chain still leads to the signed head; exit 1 naming the problem."""
    from api.accounts import users_unlike_ledger
    from api.anchor import AnchorError, check_anchor, read_key

    if (anchor_file is None) != (key_file is None):
        click.echo("--anchor and --key-file go together", err=True)
        sys.exit(2)
    store = _store(db, create)
    checked, bad = store.verify()
    if bad is not None:
        click.echo(f"ledger broken at record {bad} ({checked} checked)")
        sys.exit(1)
    problems = users_unlike_ledger(store)
    if anchor_file is not None and key_file is not None:
        try:
            anchor = json.loads(anchor_file.read_text(encoding="utf-8"))
            if not isinstance(anchor, dict):
                raise ValueError("not a JSON object")
            wrong = check_anchor(store, anchor, read_key(key_file))
        except (ValueError, KeyError, TypeError, AnchorError) as exc:
            click.echo(f"cannot use the anchor {anchor_file}: {exc}", err=True)
            sys.exit(2)
        if wrong:
            problems.append(wrong)
    for problem in problems:
        click.echo(problem)
    if problems:
        sys.exit(1)
    click.echo(f"ledger intact: {checked} records" + (" (matches the anchor)" if anchor_file else ""))


@audit.command("anchor")
@_db_option
@click.option(
    "--key-file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="HMAC key, kept away from the database.",
)
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False, path_type=Path))
def audit_anchor(db: str, key_file: Path, out_file: Path) -> None:
    """Write the chain's head (records, last record, its hash) signed with the key."""
    from api.anchor import AnchorError, make_anchor, read_key

    store = _store(db)
    bad = store.verify()[1]
    if bad is not None:
        click.echo(f"ledger broken at record {bad}: not anchoring a broken chain", err=True)
        sys.exit(1)
    try:
        anchor = make_anchor(store, read_key(key_file))
    except AnchorError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    out_file.write_text(json.dumps(anchor, indent=2) + "\n", encoding="utf-8")
    click.echo(f"anchored {anchor['records']} records up to record {anchor['seq']} in {out_file}")
