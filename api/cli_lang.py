"""The command line's language: ``jiuzhu --lang zh|en ...`` (or a command's own ``--lang``),
else ``LC_ALL``/``LC_MESSAGES``/``LANG``, else Chinese; and engine errors worded in it."""

from __future__ import annotations

import click

from engine import InputError, Problem, RuleLoadError, Said, has, lang_from_env, problem_text, reason_text, text

__all__ = ["LANGS", "current_lang", "problem_kind", "problem_line", "said"]

LANGS = click.Choice(["zh", "en"])


def current_lang(given: str | None = None) -> str:
    """``given`` (a command's ``--lang``), else the ``jiuzhu --lang`` before the command, else the environment's."""
    if given:
        return given
    ctx = click.get_current_context(silent=True)
    root = ctx.find_root().params.get("lang") if ctx is not None else None
    return str(root) if root else lang_from_env()


def problem_line(p: Problem, lang: str) -> str:
    """One lint problem as ``rules lint`` prints it (``file:line:col: kind [rule]: message``,
    the form scripts and editors read); in Chinese the message too where the catalogue has it
    (``problem.*``), and the kind named in words after it."""
    if lang == "en" or not has(f"lint.kind.{p.kind}"):
        return str(p)
    where = f"{p.file}:{p.line}:{p.col}"
    rule = f" [{p.rule_id}]" if p.rule_id else ""
    return f"{where}: {p.kind}{rule}: {problem_text(p.message, lang)}（{text(f'lint.kind.{p.kind}', lang)}）"


def said(exc: BaseException, lang: str) -> str:
    """An error as a person reading ``lang`` reads it."""
    if isinstance(exc, Said):
        return exc.said(lang)
    if isinstance(exc, RuleLoadError):
        return "\n".join(problem_line(p, lang) for p in exc.problems)
    if isinstance(exc, InputError) and exc.problems:
        who = f"{exc.record_id}: " if exc.record_id else ""
        return who + "; ".join(f"{p.field}: {reason_text(p.message, lang)}" for p in exc.problems)
    return str(exc)


def problem_kind(p: Problem, lang: str) -> str:
    """A lint problem's kind in words (``lint.kind.*``), for JSON readers that show it."""
    key = f"lint.kind.{p.kind}"
    return text(key, lang) if has(key) else str(p.kind)
