"""YAML documents that remember where every key and value came from, read within limits.

Policy staff need ``file:line:col`` on every error, so rule files are read as PyYAML's (C)
event stream and built into plain containers that keep their marks. Scalars keep the text
they were written as: ``1.5`` becomes ``Decimal("1.5")``, never a float.

Rule files come from people, and a rules bundle may come over HTTP, so reading is bounded:
file size, number of files and nesting depth are checked before or while parsing, and
anchors/aliases (which rule files never need) are refused before any is expanded.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from engine.errors import Problem, ProblemKind

__all__ = [
    "MAX_DEPTH",
    "MAX_FILES",
    "MAX_FILE_BYTES",
    "MAX_NUMBER_CHARS",
    "Pos",
    "YList",
    "YMap",
    "YStr",
    "count_files",
    "load_yaml",
    "pos_of",
    "read_yaml",
]

# limits of the engine, not of any rule: the largest rule file today is ~20 KB, the deepest ~8 levels
MAX_FILE_BYTES = 1 << 20
MAX_FILES = 500
MAX_DEPTH = 64
MAX_NUMBER_CHARS = 40  # the longest number a rule file needs is ~15 characters (999999999999.99)

try:
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - libyaml is always present in our pinned build
    _Loader = yaml.SafeLoader


@dataclass(frozen=True)
class Pos:
    file: str
    line: int
    col: int

    def problem(self, kind: ProblemKind | str, message: str, rule_id: str | None = None) -> Problem:
        return Problem(ProblemKind(kind), message, self.file, self.line, self.col, rule_id)

    def shifted(self, line_offset: int, col: int) -> Pos:
        return Pos(self.file, self.line + line_offset, col)


class YMap(dict[Any, Any]):
    """A mapping with the position of itself, of each key and of each value."""

    pos: Pos
    key_pos: dict[Any, Pos]
    value_pos: dict[Any, Pos]


class YList(list[Any]):
    pos: Pos
    item_pos: list[Pos]


class YStr(str):
    """A string scalar; ``pos`` is where its text starts, ``style`` its quoting."""

    pos: Pos
    style: str | None


_INT = re.compile(r"^[-+]?[0-9]+$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


_RESOLVER = yaml.resolver.Resolver()


def _mark(file: str, event: Any) -> Pos:
    return Pos(file, event.start_mark.line + 1, event.start_mark.column + 1)


def _text(text: str, pos: Pos, style: str | None) -> YStr:
    out = YStr(text)
    out.pos = pos
    out.style = style
    return out


_TOO_LONG = object()  # a number longer than MAX_NUMBER_CHARS: the file is not read


def _scalar(event: Any, pos: Pos, problems: list[Problem]) -> Any:
    """One scalar event as a value: the tag PyYAML's safe loader would give it, kept exact."""
    text, tag, style = event.value, event.tag, event.style
    if style in ("'", '"', "|", ">") or tag == "tag:yaml.org,2002:str":
        return _text(text, pos, style)
    if tag is None or tag == "!":
        tag = _RESOLVER.resolve(yaml.ScalarNode, text, event.implicit)  # type: ignore[no-untyped-call]
    if tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float") and len(text) > MAX_NUMBER_CHARS:
        return _TOO_LONG  # int() of 4300+ digits raises; far fewer are never meant
    if tag == "tag:yaml.org,2002:null":
        return None
    if tag == "tag:yaml.org,2002:bool":
        return text.lower() in ("true", "yes", "on")
    if tag == "tag:yaml.org,2002:int" and _INT.match(text):
        return int(text)
    if tag == "tag:yaml.org,2002:float":
        try:
            return Decimal(text)
        except ArithmeticError:
            pass
    if tag == "tag:yaml.org,2002:timestamp" and _DATE.match(text):
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            problems.append(pos.problem(ProblemKind.BAD_DATE, f"`{text}` is not a calendar date"))
            return None
    return _text(text, pos, style)


@dataclass
class _Open:
    """A sequence or mapping whose end event has not come yet."""

    node: YList | YMap
    key: Any = None  # a mapping's key waiting for its value
    key_pos: Pos | None = None
    key_ok: bool = False
    written: str = ""  # the text of a scalar key


def _compose(file: str, text: str, problems: list[Problem]) -> tuple[Any, bool]:
    """Build the document from the parser's event stream, checking the limits as it goes.

    PyYAML's own composer recurses once per nesting level (30 000 ``[`` crash the C stack)
    and expands aliases (a few hundred bytes can build millions of nodes); reading events
    with an explicit stack lets both be refused before they cost anything.
    """
    stack: list[_Open] = []
    root: Any = None
    documents = 0

    def fatal(kind: ProblemKind, message: str, mark: Any) -> tuple[Any, bool]:
        problems.append(Problem(kind, message, file, mark.line + 1, mark.column + 1))
        return None, False

    def add(value: Any, pos: Pos) -> None:
        nonlocal root
        if not stack:
            root = value
            return
        top = stack[-1]
        if isinstance(top.node, YList):
            top.node.append(value)
            top.node.item_pos.append(pos)
        elif top.key_pos is None:
            _take_key(top, top.node, value, pos, problems)
        else:
            if top.key_ok:
                top.node[top.key] = value
                top.node.key_pos[top.key] = top.key_pos
                top.node.value_pos[top.key] = pos
            top.key, top.key_pos, top.key_ok = None, None, False

    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.AliasEvent):
            return fatal(ProblemKind.YAML_ALIAS, f"alias `*{event.anchor}`: {_NO_ALIASES}", event.start_mark)
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            return fatal(ProblemKind.YAML_ALIAS, f"anchor `&{anchor}`: {_NO_ALIASES}", event.start_mark)
        if isinstance(event, yaml.ScalarEvent):
            pos = _mark(file, event)
            value = _scalar(event, pos, problems)
            if value is _TOO_LONG:
                message = (
                    f"a number of {len(event.value)} characters; rule files need at most {MAX_NUMBER_CHARS}"
                    " (no value a rule uses is that large)"
                )
                return fatal(ProblemKind.TOO_LONG, message, event.start_mark)
            if stack and isinstance(stack[-1].node, YMap) and stack[-1].key_pos is None:
                stack[-1].written = event.value  # a key's text as written, for its problem
            add(value, pos)
        elif isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
            if len(stack) >= MAX_DEPTH:
                message = f"nested deeper than {MAX_DEPTH} levels; rule files need only a few"
                return fatal(ProblemKind.TOO_DEEP, message, event.start_mark)
            node: YList | YMap = YList() if isinstance(event, yaml.SequenceStartEvent) else YMap()
            node.pos = _mark(file, event)
            if isinstance(node, YList):
                node.item_pos = []
            else:
                node.key_pos, node.value_pos = {}, {}
            stack.append(_Open(node))
        elif isinstance(event, yaml.SequenceEndEvent | yaml.MappingEndEvent):
            done = stack.pop().node
            add(done, done.pos)
        elif isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1:
                return fatal(
                    ProblemKind.YAML_SYNTAX,
                    "a rule file holds one YAML document (found a second `---`)",
                    event.start_mark,
                )
    return root, True


_NO_ALIASES = "anchors (&) and aliases (*) are not allowed in rule files; write the value out"


def _take_key(top: _Open, m: YMap, key: Any, pos: Pos, problems: list[Problem]) -> None:
    if isinstance(key, YStr):
        key = str(key)
    top.key, top.key_pos, top.key_ok = key, pos, True
    why = _bad_key(key, top.written)
    top.written = ""
    if why:
        problems.append(pos.problem(ProblemKind.BAD_KEY, why))
        top.key_ok = False
        return
    if key in m:
        first = m.key_pos[key]
        problems.append(
            pos.problem(ProblemKind.DUPLICATE_KEY, f"key `{key}` appears twice (first at line {first.line})")
        )
        top.key_ok = False


def _bad_key(key: Any, written: str) -> str:
    """Why ``key`` cannot be a key: keys are text (or a date, which starts a parameter
    version); YAML 1.1 reads ``yes``, ``on`` or ``0755`` as something else."""
    if isinstance(key, str | dt.date):
        return ""
    if isinstance(key, bool):
        return f'the key `{written}` is read as true/false in YAML; write it in quotes ("{written}":)'
    if isinstance(key, int | Decimal):
        return f'the key `{written}` is read as a number; write it in quotes ("{written}":)'
    return "keys must be plain text (or a date YYYY-MM-DD where a parameter value starts)"


def count_files(paths: Iterable[Path], display: str) -> tuple[list[Path], Problem | None]:
    """The rule files to read, or a problem when there are more than ``MAX_FILES``.

    Stops listing at the limit, so a folder with a million files costs no more than 500.
    """
    out = list(itertools.islice(paths, MAX_FILES + 1))
    if len(out) > MAX_FILES:
        message = f"more than {MAX_FILES} rule files; split the rules into rule sets or remove stray files"
        return out[:MAX_FILES], Problem(ProblemKind.TOO_MANY_FILES, message, display, 0, 0)
    return out, None


def read_yaml(path: Path, display: str, problems: list[Problem]) -> tuple[str | None, Any, bool]:
    """Read and parse one rule file: its text, its document, and whether it could be read.

    A file that cannot be read (size, encoding, syntax, nesting, aliases) gives exactly one
    problem at ``file:line:col``, nothing else from that file, a ``None`` document and a
    false flag. A file that was read may still add problems such as a duplicate key.
    """
    try:
        # non-blocking, so a FIFO named like a rule file is refused rather than waited on
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                message = "not a regular file (a FIFO, device or folder); a rule file is a plain text file"
                problems.append(Problem(ProblemKind.UNREADABLE, message, display, 1, 1))
                return None, None, False
            data = f.read(MAX_FILE_BYTES + 1)  # never more than the limit, whatever the file is
        if len(data) > MAX_FILE_BYTES:
            message = f"the file is larger than {MAX_FILE_BYTES} bytes, the most a rule file may have"
            problems.append(Problem(ProblemKind.TOO_LARGE, message, display, 1, 1))
            return None, None, False
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(ProblemKind.UNREADABLE, _why_unreadable(exc), display, 1, 1))
        return None, None, False
    found: list[Problem] = []
    try:
        doc, ok = _compose(display, text, found)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = str(exc.problem or exc)
        if exc.context and exc.context_mark and exc.context_mark.line + 1 != line:
            # where the unfinished part began: often the real mistake (a bad indent, a missing `}`)
            message += f" ({exc.context} that starts at line {exc.context_mark.line + 1})"
        problems.append(Problem(ProblemKind.YAML_SYNTAX, message, display, line, col))
        return text, None, False
    except yaml.YAMLError as exc:  # the reader's errors (a control character) give an offset, not a mark
        at = getattr(exc, "position", 0) or 0
        line, col = text.count("\n", 0, at) + 1, at - text.rfind("\n", 0, at)
        char = getattr(exc, "character", None)
        code = ord(char) if isinstance(char, str) and len(char) == 1 else char
        what = f"the character U+{code:04X}" if isinstance(code, int) else "a character"
        reason = getattr(exc, "reason", "") or "not allowed"
        message = f"{what}: {reason} in a rule file; delete it"
        problems.append(Problem(ProblemKind.YAML_SYNTAX, message, display, line, col))
        return text, None, False
    if not ok:
        problems.append(found[-1])  # the reason it stopped; what came before would only distract
        return text, None, False
    problems.extend(found)
    return text, doc, True


def _why_unreadable(exc: OSError | UnicodeDecodeError) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text (byte {exc.start}: {exc.reason}); save the file as UTF-8"
    return f"cannot be read: {exc.strerror or exc} (a broken link, a link loop or no permission?)"


def load_yaml(path: Path, display: str, problems: list[Problem]) -> Any:
    """Parse one YAML file; syntax errors and duplicate keys go to ``problems``."""
    return read_yaml(path, display, problems)[1]


def pos_of(container: Any, key: Any = None) -> Pos:
    """Best known position of ``container[key]`` (or of the container)."""
    if key is not None:
        if isinstance(container, YMap) and key in container.value_pos:
            return container.value_pos[key]
        if isinstance(container, YList) and isinstance(key, int) and key < len(container.item_pos):
            return container.item_pos[key]
    p = getattr(container, "pos", None)
    return p if isinstance(p, Pos) else Pos("<unknown>", 0, 0)
