"""The ``jiuzhu`` command line: decide households, lint and test rule files.

Commands translate arguments and delegate to the engine; exit codes come from the error
classes (0 ok, 2 bad rules, 3 bad input).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from api.admin_cli import DEFAULT_DB, audit, users
from engine import (
    Evaluator,
    InputError,
    JiuzhuError,
    Registries,
    RuleLoadError,
    Ruleset,
    error_codes,
    load,
    run_tests,
)

__all__ = ["main"]

DEFAULT_RULES = Path(__file__).resolve().parent.parent / "rules"


def _rules_option(f: Any) -> Any:
    return click.option(
        "--rules",
        "rules_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=DEFAULT_RULES,
        show_default=True,
        help="Rules folder.",
    )(f)


def _registry_options(f: Any) -> Any:
    f = click.option("--filings", type=click.Path(exists=True, dir_okay=False), help="Kin filings CSV.")(f)
    return click.option("--relatives", type=click.Path(exists=True, dir_okay=False), help="Officials' relatives CSV.")(
        f
    )


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)


def _read_households(path: Path, ruleset: Ruleset) -> Iterator[tuple[int, Any]]:
    """(line number, parsed object or why it is not JSON) for a .json or .jsonl file."""
    text = path.read_text(encoding="utf-8")
    # lines end at "\n" only once read as text (as `screen` reads them): U+2028 may sit in a string
    chunks = text.split("\n") if path.suffix == ".jsonl" else [text]
    for i, chunk in enumerate(chunks, start=1):
        if chunk.strip():
            try:
                yield i, ruleset.record.read_json(chunk)
            except ValueError as exc:  # not JSON, or nested too deeply
                yield i, exc


def _duplicates(households: list[Any]) -> frozenset[str]:
    """Person IDs that appear in more than one household of the file."""
    seen: Counter[str] = Counter()
    for h in households:
        if isinstance(h, dict):
            ids = {m.get("person_id") for m in h.get("members") or [] if isinstance(m, dict)}
            seen.update(str(i).upper() for i in ids if i)
    return frozenset(k for k, c in seen.items() if c > 1)


def _fail(exc: JiuzhuError) -> None:
    click.echo(str(exc), err=True)
    sys.exit(error_codes(exc).exit_code)


@click.group()
@click.version_option(package_name="jiuzhu")
def main() -> None:
    """jiuzhu 救助: social-assistance decisions from declarative rules."""


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--date", "on", type=click.DateTime(["%Y-%m-%d"]), help="Decision date for every household.")
@_rules_option
@_registry_options
@click.option("--explain", is_flag=True, help="Print the explanation for an officer instead of JSON.")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
def check(
    file: Path,
    on: dt.datetime | None,
    rules_dir: Path,
    relatives: str | None,
    filings: str | None,
    explain: bool,
    lang: str,
) -> None:
    """Decide one household (.json) or many (.jsonl), one decision JSON per household."""
    try:
        ruleset = load(rules_dir)
        registries = Registries.from_files(ruleset, {"relatives": relatives, "filings": filings})
    except JiuzhuError as exc:
        _fail(exc)
    evaluator = Evaluator(ruleset, registries)
    rows = list(_read_households(file, ruleset))
    duplicates = _duplicates([h for _, h in rows]) if file.suffix == ".jsonl" else frozenset()
    repeated = ruleset.record.repeated_ids(h for _, h in rows)
    rejected = 0
    for line, household in rows:
        try:
            if isinstance(household, ValueError):
                raise InputError([], None) from household
            if on is not None and isinstance(household, dict):
                household = {**household, "decision_date": on.date().isoformat()}
            if repeated:  # every copy of a repeated household ID is rejected, as in screen
                ruleset.record.validate(household, repeated=repeated)
            decision = evaluator.decide(household, duplicates=duplicates)
        except InputError as exc:
            rejected += 1
            problems = [p.as_dict() for p in exc.problems]
            if isinstance(exc.__cause__, ValueError):
                problems = [{"field": "(json)", "message": str(exc.__cause__), "rule_id": None}]
            hid = household.get("household_id") if isinstance(household, dict) else None
            click.echo(_dumps({"household_id": hid, "line": line, "rejected": True, "errors": problems}))
            click.echo(
                f"{file}:{line}: rejected: " + "; ".join(f"{p['field']}: {p['message']}" for p in problems), err=True
            )
            continue
        if explain:
            click.echo(decision.explain_text(lang))
            click.echo()
        else:
            click.echo(_dumps(decision.to_dict(explain=file.suffix != ".jsonl")))
    if rejected:
        sys.exit(error_codes(InputError).exit_code)


@main.command("screen")
@click.argument("caseload", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder."
)
@click.option("--date", "on", type=click.DateTime(["%Y-%m-%d"]), help="Decision date for every household.")
@_rules_option
@_registry_options
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv", "xlsx"]), default="parquet", show_default=True)
@click.option(
    "--chunk-size", type=click.IntRange(min=1), default=250_000, show_default=True, help="Households per chunk."
)
def screen_command(
    caseload: Path,
    out_dir: Path,
    on: dt.datetime | None,
    rules_dir: Path,
    relatives: str | None,
    filings: str | None,
    fmt: str,
    chunk_size: int,
) -> None:
    """Re-screen a caseload (.jsonl, or a folder with households and members tables).

    Writes decisions, rejects and summary.json to --out; an interrupted run started
    again with the same arguments resumes after the last finished chunk.
    """
    from engine import screen

    try:
        ruleset = load(rules_dir)
        registries = Registries.from_files(ruleset, {"relatives": relatives, "filings": filings})
        evaluator = Evaluator(ruleset, registries)
        bar: Any = None

        def progress(done: int, total: int) -> None:
            nonlocal bar
            if not sys.stderr.isatty():
                return
            if bar is None:
                bar = click.progressbar(length=total, label="screening", file=sys.stderr)
                bar.__enter__()
            bar.update(done - bar.pos)
            if done == total:
                bar.__exit__(None, None, None)

        summary = screen(
            evaluator,
            caseload,
            out_dir,
            fmt=fmt,
            decision_date=on.date() if on else None,
            chunk_size=chunk_size,
            progress=progress,
        )
    except JiuzhuError as exc:
        _fail(exc)
    click.echo(_dumps({k: summary[k] for k in ("rows_in", "decided", "rejected")} | {"out": str(out_dir)}))


@main.command()
@click.option(
    "--caseload",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help=".jsonl or a folder with households and members tables.",
)
@click.option(
    "--events",
    "events_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Events, one JSON object per line.",
)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@_rules_option
@_registry_options
def monitor(
    caseload: Path, events_file: Path, out_dir: Path, rules_dir: Path, relatives: str | None, filings: str | None
) -> None:
    """Stream change events through durable_rules and list the households whose decision changed."""
    from engine import Monitor, load_households

    try:
        ruleset = load(rules_dir)
        evaluator = Evaluator(ruleset, Registries.from_files(ruleset, {"relatives": relatives, "filings": filings}))
        watcher = Monitor(evaluator, load_households(caseload, ruleset.record))
        with events_file.open(encoding="utf-8") as f:
            result = watcher.run(f)
    except JiuzhuError as exc:
        _fail(exc)
    result.write(out_dir)
    summary = result.summary()
    click.echo(_dumps(summary))
    if not summary["balanced"]:
        sys.exit(4)


@main.command("impact")
@click.argument("caseload", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--base",
    "base_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Rules folder in force.",
)
@click.option(
    "--head",
    "head_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Rules folder proposed.",
)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--date", "on", type=click.DateTime(["%Y-%m-%d"]), help="Decision date for every household.")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="PARAM=VALUE@DATE",
    help="A parameter what-if applied to the head, e.g. dibao.standard=850@2019-07-01.",
)
@_registry_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "parquet", "xlsx"]),
    default="csv",
    show_default=True,
    help="Format of changes.<fmt>.",
)
def impact_command(
    caseload: Path,
    base_dir: Path,
    head_dir: Path,
    out_dir: Path,
    on: dt.datetime | None,
    sets: tuple[str, ...],
    relatives: str | None,
    filings: str | None,
    fmt: str,
) -> None:
    """Decide a caseload under two rulesets and report who gains, who loses and the budget."""
    from engine import impact, with_settings

    try:
        base_rules = load(base_dir)
        head_rules = with_settings(load(head_dir), sets)
        paths = {"relatives": relatives, "filings": filings}
        base = Evaluator(base_rules, Registries.from_files(base_rules, paths))
        head = Evaluator(head_rules, Registries.from_files(head_rules, paths))
        summary = impact(base, head, caseload, out_dir, decision_date=on.date() if on else None, fmt=fmt)
    except JiuzhuError as exc:
        _fail(exc)
    click.echo(_dumps(summary))


@main.group()
def fixtures() -> None:
    """Generate sample data."""


@fixtures.command("caseload")
@click.option("--households", type=click.IntRange(min=1), required=True)
@click.option("--seed", type=int, required=True)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv", "jsonl"]), default="parquet", show_default=True)
@click.option("--date", "on", type=click.DateTime(["%Y-%m-%d"]), default="2019-08-01", show_default=True)
def caseload_command(households: int, seed: int, out_dir: Path, fmt: str, on: dt.datetime) -> None:
    """A realistic, seeded caseload with its registries (relatives.csv, filings.csv)."""
    from fixtures.caseload import write

    paths = write(out_dir, households, seed, fmt, on.date())
    click.echo(_dumps(paths))


def _settings(
    db: str, rules_dir: Path, data_dir: Path, relatives: str | None = None, filings: str | None = None
) -> Any:
    from api.service import Settings

    return Settings(db, rules_dir, data_dir, Path(relatives) if relatives else None, Path(filings) if filings else None)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--db", default=DEFAULT_DB, show_default=True, help="SQLAlchemy URL: sqlite:///file or postgresql+psycopg://..."
)
@_rules_option
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("var"),
    show_default=True,
    help="Server-side caseloads and job outputs.",
)
@click.option(
    "--relatives",
    type=click.Path(exists=True, dir_okay=False),
    help="Seed the relatives registry when the store has none.",
)
@click.option(
    "--filings", type=click.Path(exists=True, dir_okay=False), help="Seed the filings registry when the store has none."
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Worker processes; they share the store safely (one ledger writer at a time).",
)
def serve(
    host: str,
    port: int,
    db: str,
    rules_dir: Path,
    data_dir: Path,
    relatives: str | None,
    filings: str | None,
    workers: int,
) -> None:
    """Run the HTTP service (OpenAPI at /docs)."""
    import logging

    import uvicorn

    from api.app import create_app
    from api.masking import IdMaskingFilter
    from api.store import StoreUnusable

    try:
        app = create_app(_settings(db, rules_dir, data_dir, relatives, filings))
    except JiuzhuError as exc:
        _fail(exc)
    except StoreUnusable as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    store = app.state.service.store
    if store.count_users() == 0:
        _, token = store.add_user("admin", "admin")
        click.echo(f"first admin token (keep it safe; it is shown once): {token}")
    else:
        click.echo(f"store {db} has users; add one with: jiuzhu users add NAME --role ROLE --db {db}")
    for name in ("", "uvicorn", "uvicorn.access", "uvicorn.error"):
        logging.getLogger(name).addFilter(IdMaskingFilter())
    click.echo(f"jiuzhu serving on http://{host}:{port} (OpenAPI: http://{host}:{port}/docs)")
    if workers == 1:
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
        return
    # each worker process builds its own app from these settings (the store is set up above)
    import os

    from api.app import SETTINGS_ENV

    store.engine.dispose()
    os.environ[SETTINGS_ENV] = json.dumps(
        {"db_url": db, "rules_dir": str(rules_dir), "data_dir": str(data_dir), "relatives": None, "filings": None}
    )
    uvicorn.run(
        "api.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )


main.add_command(users)
main.add_command(audit)


@main.group()
def rules() -> None:
    """Work on rule files: lint and test them."""


@rules.command("lint")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_RULES)
@click.option("--json", "as_json", is_flag=True, help="Errors as JSON.")
def lint(directory: Path, as_json: bool) -> None:
    """Load and check every rule file; exit 2 listing every problem."""
    try:
        ruleset = load(directory)
    except RuleLoadError as exc:
        if as_json:
            click.echo(_dumps([p.as_dict() for p in exc.problems]))
        else:
            for p in exc.problems:
                click.echo(str(p))
            click.echo(f"{len(exc.problems)} problem(s)", err=True)
        sys.exit(error_codes(exc).exit_code)
    n_rules = len(ruleset.rules())
    click.echo(
        f"ok: {ruleset.name} {ruleset.ruleset_version}: {len(ruleset.files)} files, {n_rules} rules, {len(ruleset.parameters)} parameters, {len(ruleset.tests)} tests"
    )


@rules.command("test")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_RULES)
def test(directory: Path) -> None:
    """Run the rule tests in DIRECTORY/tests; exit 1 when one fails."""
    try:
        ruleset = load(directory)
    except RuleLoadError as exc:
        _fail(exc)
    results = run_tests(ruleset)
    failed = [r for r in results if not r.ok]
    for r in failed:
        for msg in r.failures:
            click.echo(f"{r.test.file}:{r.test.pos.line}: {r.test.name}: {msg}")
    click.echo(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if failed:
        sys.exit(1)
