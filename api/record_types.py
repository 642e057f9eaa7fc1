"""The command line for record types besides the household (``record_types`` in
``ruleset.yaml``): ``jiuzhu check`` and ``jiuzhu screen`` hand such files here."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import click

from engine import (
    InputError,
    Ruleset,
    SubjectEvaluator,
    error_codes,
    explain_subject,
    read_records,
    screen_records,
    subject_registries,
)

__all__ = ["check_records", "registry_paths", "screen_record_file"]


def registry_paths(values: tuple[str, ...]) -> dict[str, str]:
    """``NAME=PATH`` options as a mapping."""
    out: dict[str, str] = {}
    for v in values:
        name, sep, path = v.partition("=")
        if not sep or not Path(path).is_file():
            raise click.BadParameter(f"{v!r}: expected NAME=CSV naming an existing file", param_hint="--registry")
        out[name] = path
    return out


def _evaluator(ruleset: Ruleset, kind: str, paths: dict[str, str]) -> SubjectEvaluator:
    spec = ruleset.record_types[kind]
    unknown = sorted(set(paths) - set(spec.registries))
    if unknown:
        raise click.BadParameter(f"record type {kind} has no registry {', '.join(unknown)}", param_hint="--registry")
    return SubjectEvaluator(spec, subject_registries(spec, paths), ruleset.ruleset_version)


def check_records(ruleset: Ruleset, kind: str, file: Path, paths: dict[str, str], explain: bool, lang: str) -> None:
    """Decide each record of a .json or .jsonl file; a rejected one is printed and the run goes on."""
    ev = _evaluator(ruleset, kind, paths)
    id_field = ev.spec.role("id")
    rows = list(read_records(ev.spec, file))
    ids = Counter(str(r.get(id_field)).strip() for _, r in rows if isinstance(r, dict) and r.get(id_field) is not None)
    rejected = 0
    for line, raw in rows:
        rid = raw.get(id_field) if isinstance(raw, dict) else None
        try:
            if isinstance(raw, ValueError):
                raise InputError([], None) from raw
            if rid is not None and ids[str(rid).strip()] > 1:
                from engine import FieldProblem, text

                raise InputError([FieldProblem(id_field, text("input.repeated_record", "en"))])
            decision = ev.decide(raw)
        except InputError as exc:
            rejected += 1
            problems: list[dict[str, Any]] = [p.as_dict() for p in exc.problems]
            if isinstance(exc.__cause__, ValueError):
                problems = [{"field": "(json)", "message": str(exc.__cause__), "rule_id": None}]
            click.echo(
                json.dumps({id_field: rid, "line": line, "rejected": True, "errors": problems}, ensure_ascii=False)
            )
            click.echo(
                f"{file}:{line}: rejected: " + "; ".join(f"{p['field']}: {p['message']}" for p in problems), err=True
            )
            continue
        if explain:
            langs = (lang, "en" if lang == "zh" else "zh")
            click.echo(explain_subject(decision, langs))
            click.echo()
        else:
            click.echo(json.dumps(decision.to_dict(explain=file.suffix != ".jsonl"), ensure_ascii=False))
    if rejected:
        sys.exit(error_codes(InputError).exit_code)


def screen_record_file(
    ruleset: Ruleset, kind: str, source: Path, out_dir: Path, paths: dict[str, str], fmt: str
) -> None:
    """Screen a file or table of records; print the summary."""
    summary = screen_records(_evaluator(ruleset, kind, paths), source, out_dir, fmt)
    click.echo(json.dumps(summary, ensure_ascii=False, indent=2))
