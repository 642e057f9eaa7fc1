"""Reading: every rule file of a folder, within the engine's limits, before any is checked."""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import Problem, ProblemKind, RuleLoadError
from engine.source import MAX_FILES, count_files, read_yaml

__all__ = ["Sources", "read_all"]

Doc = tuple[str, Any]  # (display name, the document as read)


@dataclass
class Sources:
    """The documents of a rules folder by section, and each file's text for the digest."""

    head: Doc
    record: Doc
    parameters: list[Doc]
    programs: list[Doc]
    tests: list[Doc]
    events: Doc | None
    files: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)  # found while reading, the file still read
    record_types: list[Doc] = field(default_factory=list)  # other record types' files


def _listing(root: Path, sub: str) -> list[Path]:
    """The folder's rule files, sorted; listing stops past the file limit (a folder of a
    million files costs no more than one just over the limit). Anything named ``*.yaml``
    but a folder is listed, so that a FIFO, a broken link or a link loop is reported when
    read, never skipped in silence."""
    folder = root / sub
    if not folder.is_dir():
        return []
    with os.scandir(folder) as entries:
        yaml_files = (Path(e.path) for e in entries if e.name.endswith(".yaml") and not _is_dir(e))
        return sorted(itertools.islice(yaml_files, MAX_FILES + 1))


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a link loop: not a folder, reported when read
        return False


def read_all(root: Path) -> Sources:
    """Read every rule file; raise ``RuleLoadError`` if any is missing or cannot be read."""
    if not root.is_dir():
        raise RuleLoadError(
            [Problem(ProblemKind.MISSING_FOLDER, f"rules folder {root} does not exist", str(root), 0, 0)]
        )
    problems = [
        Problem(ProblemKind.MISSING_FILE, f"{name} is missing", name, 0, 0)
        for name in ("ruleset.yaml", "record.yaml")
        if not os.path.lexists(root / name)  # a broken link is there, and reported as unreadable
    ]
    if problems:
        raise RuleLoadError(problems)
    listed = {sub: _listing(root, sub) for sub in ("parameters", "programs", "tests", "record_types")}
    singles = [root / "ruleset.yaml", root / "record.yaml", root / "events.yaml"]
    _, too_many = count_files(itertools.chain(singles, *listed.values()), ".")
    if too_many is not None:
        raise RuleLoadError([too_many])
    files: dict[str, str] = {}
    unread = False  # some file could not be read (syntax, size, depth, aliases)

    def read(path: Path) -> Doc:
        nonlocal unread
        display = path.relative_to(root).as_posix()
        text, doc, ok = read_yaml(path, display, problems)
        if text is not None:
            files[display] = text
        unread |= not ok
        return display, doc

    head, record = read(singles[0]), read(singles[1])
    parameters, programs, tests = ([read(p) for p in listed[sub]] for sub in ("parameters", "programs", "tests"))
    events = read(singles[2]) if os.path.lexists(singles[2]) else None
    record_types = [read(p) for p in listed["record_types"]]
    if unread:
        # a file that could not be read defines nothing, so every later check would only
        # report what it lacks: report the reading problems alone
        raise RuleLoadError(problems)
    return Sources(head, record, parameters, programs, tests, events, files, problems, record_types=record_types)
