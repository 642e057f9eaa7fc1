"""Paths a client gives and paths a client sees: a server path inside the data folder,
checked without a 500 for a NUL or an over-long name; and error texts with the server's
absolute paths taken out (the data folder shown relative, any other as ``<path>``)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from engine import FieldProblem, InputError
from engine import text as catalogue_text

__all__ = ["PATH_CHARS", "inside", "scrub", "server_roots"]

PATH_CHARS = 1024  # far longer than any caseload name; the OS refuses ~4096


def inside(root: Path, relative: str, field: str) -> Path:
    """``root/relative`` when it exists inside ``root``; else a 422 naming ``field``."""
    if not relative or "\x00" in relative or len(relative) > PATH_CHARS:
        raise InputError([FieldProblem(field, catalogue_text("input.path_chars", "en", bound=PATH_CHARS))])
    base = root.resolve()
    try:
        path = (base / relative).resolve()
        exists = path.exists()
    except (OSError, ValueError):  # a name too long for the file system, a loop of links
        raise InputError([FieldProblem(field, catalogue_text("input.path_unusable", "en"))]) from None
    if base not in path.parents and path != base:
        raise InputError([FieldProblem(field, catalogue_text("input.path_outside", "en"))])
    if not exists:
        raise InputError([FieldProblem(field, catalogue_text("input.path_missing", "en", path=relative))])
    return path


def scrub(text: str, shown: Path, hidden: tuple[Path, ...] = ()) -> str:
    """``text`` without the server's absolute paths: under ``shown`` (the data folder) a path
    is shown relative to it; under one of ``hidden`` (the rules folder, the temporary
    folder, Python's prefix, the working folder, the home folder) as ``<path>/...``.

    >>> scrub("cannot read /srv/data/x/a.csv or /tmp/q/b", Path("/srv/data"), (Path("/tmp"),))
    'cannot read x/a.csv or <path>/q/b'
    """
    for root, into in ((shown, ""), *((h, "<path>/") for h in sorted(hidden, key=lambda p: -len(str(p))))):
        forms = {str(root.resolve())} | ({str(root)} if root.is_absolute() else set())
        for form in sorted(forms, key=len, reverse=True):
            if len(form) > 1:  # never "/" itself
                text = text.replace(form.rstrip("/") + "/", into)
    return text


def server_roots(*extra: Path) -> tuple[Path, ...]:
    """The folders whose absolute paths an error text must not show."""
    return (*extra, Path(tempfile.gettempdir()), Path(sys.prefix), Path(sys.base_prefix), Path.cwd(), Path.home())
