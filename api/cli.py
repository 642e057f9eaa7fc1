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
from api.cluster_options import ProgressLine, cluster_from, cluster_options
from engine import (
    BadValue,
    Evaluator,
    InputError,
    JiuzhuError,
    Registries,
    RuleLoadError,
    Ruleset,
    error_codes,
    load,
    parse_value,
    reason_text,
    record_type_of,
    run_record_type_tests,
    run_tests,
    text,
)

from .cli_lang import LANGS, current_lang, problem_kind, problem_line, said
from .record_types import check_records, registry_paths, screen_record_file

__all__ = ["main"]

DEFAULT_RULES = Path(__file__).resolve().parent.parent / "rules"


class _StrictDate(click.ParamType[dt.datetime]):
    """A date option read as the engine reads a date: YYYY-MM-DD exactly, a sane year (as a
    datetime at midnight, the type click's own date options give)."""

    name = "YYYY-MM-DD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dt.datetime:
        if isinstance(value, dt.datetime):
            return value
        try:
            day: dt.date = parse_value("date", value)
        except BadValue as exc:
            self.fail(str(exc), param, ctx)
        return dt.datetime.combine(day, dt.time())


STRICT_DATE = _StrictDate()


def _rules_option(f: Any) -> Any:
    return click.option(
        "--rules",
        "rules_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=DEFAULT_RULES,
        show_default=True,
        help="Rules folder.",
    )(f)


def _named_registries(f: Any) -> Any:
    return click.option(
        "--registry",
        "named_registries",
        multiple=True,
        metavar="NAME=CSV",
        help="A registry of another record type (review_records=..., review_returns=...).",
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
    click.echo(said(exc, current_lang()), err=True)
    sys.exit(error_codes(exc).exit_code)


_HEADERS = click.option(
    "--headers",
    type=LANGS,
    default="en",
    show_default=True,
    help="Column headers of CSV/XLSX files: en keeps the codes (for machines); zh, the rule files' Chinese labels.",
)


@click.group()
@click.version_option(package_name="jiuzhu")
@click.option(
    "--lang",
    type=LANGS,
    default=None,
    help="Language of what is printed for people; default from LC_ALL, LC_MESSAGES or LANG (en_*), else zh.",
)
def main(lang: str | None) -> None:
    """jiuzhu 救助: social-assistance decisions from declarative rules."""


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--date", "on", type=STRICT_DATE, help="Decision date for every household.")
@_rules_option
@_registry_options
@_named_registries
@click.option("--explain", is_flag=True, help="Print the explanation for an officer instead of JSON.")
@click.option("--lang", type=LANGS, default=None, help="zh or en; default as `jiuzhu --lang`.")
def check(
    file: Path,
    on: dt.datetime | None,
    rules_dir: Path,
    relatives: str | None,
    filings: str | None,
    named_registries: tuple[str, ...],
    explain: bool,
    lang: str | None,
) -> None:
    """Decide one household (.json) or many (.jsonl), one decision JSON per household.

    A file of another record type (e.g. candidates, by their id field) is decided by that
    type's rules, with its registries given as --registry NAME=CSV."""
    lang = current_lang(lang)
    try:
        ruleset = load(rules_dir)
        kind = record_type_of(ruleset.record_types, file)
        if kind is not None:
            check_records(ruleset, kind, file, registry_paths(named_registries), explain, lang)
            return
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
            said_here = "; ".join(f"{p['field']}: {reason_text(str(p['message']), lang)}" for p in problems)
            click.echo(f"{file}:{line}: rejected: {said_here}", err=True)
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
@click.option("--date", "on", type=STRICT_DATE, help="Decision date for every household.")
@_rules_option
@_registry_options
@_named_registries
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv", "xlsx"]), default="parquet", show_default=True)
@click.option(
    "--chunk-size", type=click.IntRange(min=1), default=250_000, show_default=True, help="Households per chunk."
)
@_HEADERS
@cluster_options
def screen_command(
    caseload: Path,
    out_dir: Path,
    on: dt.datetime | None,
    rules_dir: Path,
    relatives: str | None,
    filings: str | None,
    named_registries: tuple[str, ...],
    fmt: str,
    chunk_size: int,
    headers: str,
    scheduler: str | None,
    workers: int | None,
    partitions: int | None,
) -> None:
    """Re-screen a caseload (.jsonl, or a folder with households and members tables).

    Writes decisions, rejects and summary.json to --out; an interrupted run started
    again with the same arguments resumes after the last finished chunk. A `candidates`
    table or file (another record type) is screened by that type's rules.
    """
    from engine import screen

    try:
        cluster = cluster_from(scheduler, workers, partitions)
        ruleset = load(rules_dir)
        kind = record_type_of(ruleset.record_types, caseload)
        if kind is not None:
            screen_record_file(ruleset, kind, caseload, out_dir, registry_paths(named_registries), fmt)
            return
        paths = {"relatives": relatives, "filings": filings}
        registries = Registries.from_files(ruleset, paths)
        evaluator = Evaluator(ruleset, registries)
        if cluster is not None:
            from engine import EvaluatorSpec, screen_on_cluster

            summary = screen_on_cluster(
                evaluator,
                EvaluatorSpec.of(evaluator, rules_dir, paths),
                caseload,
                out_dir,
                cluster,
                fmt=fmt,
                decision_date=on.date() if on else None,
                chunk_size=chunk_size,
                progress=ProgressLine("screening"),
                headers=headers,
            )
            click.echo(_dumps({k: summary[k] for k in ("rows_in", "decided", "rejected")} | {"out": str(out_dir)}))
            return
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
            headers=headers,
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
@click.option("--date", "on", type=STRICT_DATE, help="Decision date for every household.")
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
@click.option("--pdf", is_flag=True, help="Also print report.html to report.pdf (A4) with headless Chromium.")
@_HEADERS
@cluster_options
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
    pdf: bool,
    headers: str,
    scheduler: str | None,
    workers: int | None,
    partitions: int | None,
) -> None:
    """Decide a caseload under two rulesets and report who gains, who loses and the budget."""
    from engine import impact, with_settings

    try:
        base_rules = load(base_dir)
        head_rules = with_settings(load(head_dir), sets)
        paths = {"relatives": relatives, "filings": filings}
        base = Evaluator(base_rules, Registries.from_files(base_rules, paths))
        head = Evaluator(head_rules, Registries.from_files(head_rules, paths))
        cluster = cluster_from(scheduler, workers, partitions)
        if cluster is not None:
            from engine import EvaluatorSpec, impact_on_cluster

            specs = (EvaluatorSpec.of(base, base_dir, paths), EvaluatorSpec.of(head, head_dir, paths, sets))
            summary = impact_on_cluster(
                base,
                head,
                specs,
                caseload,
                out_dir,
                cluster,
                decision_date=on.date() if on else None,
                fmt=fmt,
                progress=ProgressLine("impact"),
                headers=headers,
            )
        else:
            day = on.date() if on else None
            summary = impact(base, head, caseload, out_dir, decision_date=day, fmt=fmt, headers=headers)
    except JiuzhuError as exc:
        _fail(exc)
    if pdf:
        from api.pdf import PdfError, html_to_pdf

        try:
            html_to_pdf(out_dir / "report.html", out_dir / "report.pdf")
        except PdfError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
    click.echo(_dumps(summary))


@main.group()
def fixtures() -> None:
    """Generate sample data."""


@fixtures.command("caseload")
@click.option("--households", type=click.IntRange(min=1), required=True)
@click.option("--seed", type=int, required=True)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv", "jsonl"]), default="parquet", show_default=True)
@click.option("--date", "on", type=STRICT_DATE, default="2019-08-01", show_default=True)
def caseload_command(households: int, seed: int, out_dir: Path, fmt: str, on: dt.datetime) -> None:
    """A realistic, seeded caseload with its registries (relatives.csv, filings.csv)."""
    from fixtures.caseload import write

    paths = write(out_dir, households, seed, fmt, on.date())
    click.echo(_dumps(paths))


def _settings(
    db: str,
    rules_dir: Path,
    data_dir: Path,
    relatives: str | None = None,
    filings: str | None = None,
    named: tuple[str, ...] = (),
) -> Any:
    from api.service import Settings

    seeds = {n: Path(p) for n, p in registry_paths(named).items()}
    return Settings(
        db, rules_dir, data_dir, Path(relatives) if relatives else None, Path(filings) if filings else None, seeds
    )


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
    "--bundle-memory",
    default=1024,
    show_default=True,
    type=click.IntRange(64),
    help="MiB a rules bundle's check may use.",
)
@click.option(
    "--bundle-seconds",
    default=60.0,
    show_default=True,
    type=click.FloatRange(0.1),
    help="Time a bundle's check may take.",
)
@click.option(
    "--limit",
    "limits",
    multiple=True,
    metavar="NAME=N",
    help="Change one limit: decision, batch, rules, registry, caseload, events (bytes), jobs (at once), "
    "rulesets_cached, evaluators_cached.",
)
@_named_registries
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
    bundle_memory: int,
    bundle_seconds: float,
    limits: tuple[str, ...],
    named_registries: tuple[str, ...],
    workers: int,
) -> None:
    """Run the HTTP service (OpenAPI at /docs)."""
    import dataclasses

    import uvicorn

    from api.app import create_app
    from api.http_safety import configure_logging
    from api.store import StoreUnusable

    settings = _settings(db, rules_dir, data_dir, relatives, filings, named_registries)
    settings.bundle = dataclasses.replace(settings.bundle, memory_mib=bundle_memory, seconds=bundle_seconds)
    for item in limits:
        name, _, value = item.partition("=")
        if name not in settings.limits or not value.isdigit() or int(value) < 1:
            raise click.BadParameter(
                f"{item}: use NAME=N with NAME one of {', '.join(settings.limits)}", param_hint="--limit"
            )
        settings.limits[name] = int(value)
    try:
        app = create_app(settings)
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
    configure_logging()  # one stderr handler, IDs masked in messages and tracebacks; the access log
    click.echo(f"jiuzhu serving on http://{host}:{port} (OpenAPI: http://{host}:{port}/docs)")
    if workers == 1:
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, log_config=None)
        return
    # each worker process builds its own app from these settings (the store is set up above)
    import os

    from api.app import SETTINGS_ENV

    app.state.service.close()  # the workers open their own; the registries are seeded above
    os.environ[SETTINGS_ENV] = json.dumps(
        {"db_url": db, "rules_dir": str(rules_dir), "data_dir": str(data_dir), "limits": settings.limits}
    )
    uvicorn.run(
        "api.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
        log_config=None,
    )


main.add_command(users)
main.add_command(audit)


@main.group()
def rules() -> None:
    """Work on rule files: lint and test them."""


@rules.command("lint")
@click.argument("directory", required=False, type=click.Path(path_type=Path), default=DEFAULT_RULES)
@click.option("--json", "as_json", is_flag=True, help="Errors as JSON.")
@click.option("--lang", type=LANGS, default=None, help="zh or en; default as `jiuzhu --lang`.")
def lint(directory: Path, as_json: bool, lang: str | None) -> None:
    """Load and check every rule file; exit 2 listing every problem. DIRECTORY may be a
    bundle (.zip) too: it is checked as the service checks an upload, rule tests included."""
    lang = current_lang(lang)
    try:
        if directory.suffix == ".zip" and directory.is_file():
            _lint_bundle(directory, lang)
            return
        ruleset = load(directory)
    except RuleLoadError as exc:
        if as_json:
            click.echo(_dumps([{**p.as_dict(), "kind_text": problem_kind(p, lang)} for p in exc.problems]))
        else:
            for p in exc.problems:
                click.echo(problem_line(p, lang))
            click.echo(text("lint.summary", lang, count=len(exc.problems)), err=True)
        sys.exit(error_codes(exc).exit_code)
    click.echo(
        text(
            "lint.ok",
            lang,
            name=ruleset.name,
            version=ruleset.ruleset_version,
            files=len(ruleset.files),
            rules=len(ruleset.rules()),
            parameters=len(ruleset.parameters),
            tests=len(ruleset.tests),
        )
    )


def _lint_bundle(path: Path, lang: str) -> None:
    """Check a bundle with the service's checker (zip limits, a limited worker process)."""
    from api.bundles import BundleLimits, check_bundle

    limits = BundleLimits()
    with path.open("rb") as f:
        data = f.read(limits.total_bytes + 1)
    if len(data) > limits.total_bytes:
        click.echo(f"{path}: larger than {limits.total_bytes} bytes, more than a bundle may unpack to", err=True)
        sys.exit(2)
    try:
        checked = check_bundle(data, limits)
    except InputError as exc:  # a zip limit, the worker's limits, failed rule tests
        _fail(exc)
    click.echo(text("lint.ok_bundle", lang, version=checked.version, files=len(checked.files), tests=checked.tests))


@rules.command("test")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_RULES)
def test(directory: Path) -> None:
    """Run the rule tests in DIRECTORY/tests; exit 1 when one fails."""
    try:
        ruleset = load(directory)
    except RuleLoadError as exc:
        _fail(exc)
    results: list[Any] = [*run_tests(ruleset), *run_record_type_tests(ruleset)]
    failed = [r for r in results if not r.ok]
    for r in failed:
        for msg in r.failures:
            click.echo(f"{r.test.file}:{r.test.pos.line}: {r.test.name}: {msg}")
    click.echo(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if failed:
        sys.exit(1)
