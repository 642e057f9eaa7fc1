"""YAML documents that remember where every key and value came from.

Policy staff need ``file:line:col`` on every error, so rule files are composed into nodes
(PyYAML's C parser) and turned into plain containers that keep their marks. Scalars keep
the text they were written as: ``1.5`` becomes ``Decimal("1.5")``, never a float.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from engine.errors import Problem

__all__ = ["Pos", "YList", "YMap", "YStr", "load_yaml", "pos_of"]

try:
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - libyaml is always present in our pinned build
    _Loader = yaml.SafeLoader


@dataclass(frozen=True)
class Pos:
    file: str
    line: int
    col: int

    def problem(self, kind: str, message: str, rule_id: str | None = None) -> Problem:
        return Problem(kind, message, self.file, self.line, self.col, rule_id)

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


def _mark(file: str, node: yaml.Node) -> Pos:
    return Pos(file, node.start_mark.line + 1, node.start_mark.column + 1)


def _scalar(file: str, node: yaml.ScalarNode, problems: list[Problem]) -> Any:
    text = node.value
    tag = node.tag
    if node.style in ("'", '"', "|", ">") or tag == "tag:yaml.org,2002:str":
        s = YStr(text)
        s.pos = _mark(file, node)
        s.style = node.style
        return s
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
            problems.append(_mark(file, node).problem("bad-date", f"`{text}` is not a calendar date"))
            return None
    s = YStr(text)
    s.pos = _mark(file, node)
    s.style = node.style
    return s


def _convert(file: str, node: yaml.Node, problems: list[Problem]) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return _scalar(file, node, problems)
    if isinstance(node, yaml.SequenceNode):
        out = YList()
        out.pos = _mark(file, node)
        out.item_pos = []
        for item in node.value:
            out.append(_convert(file, item, problems))
            out.item_pos.append(_mark(file, item))
        return out
    if isinstance(node, yaml.MappingNode):
        m = YMap()
        m.pos = _mark(file, node)
        m.key_pos = {}
        m.value_pos = {}
        for key_node, value_node in node.value:
            key = _convert(file, key_node, problems)
            if isinstance(key, YStr):
                key = str(key)
            if not isinstance(key, str | int | dt.date):
                problems.append(_mark(file, key_node).problem("bad-key", "keys must be plain text, numbers or dates"))
                continue
            if key in m:
                first = m.key_pos[key]
                problems.append(
                    _mark(file, key_node).problem(
                        "duplicate-key", f"key `{key}` appears twice (first at line {first.line})"
                    )
                )
                continue
            m[key] = _convert(file, value_node, problems)
            m.key_pos[key] = _mark(file, key_node)
            m.value_pos[key] = _mark(file, value_node)
        return m
    raise TypeError(f"unexpected YAML node {node!r}")  # pragma: no cover


def load_yaml(path: Path, display: str, problems: list[Problem]) -> Any:
    """Parse one YAML file; syntax errors and duplicate keys go to ``problems``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem("unreadable", str(exc), display, 1, 1))
        return None
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problems.append(Problem("yaml-syntax", str(exc.problem or exc), display, line, col))
        return None
    if node is None:
        return None
    return _convert(display, node, problems)


def pos_of(container: Any, key: Any = None) -> Pos:
    """Best known position of ``container[key]`` (or of the container)."""
    if key is not None:
        if isinstance(container, YMap) and key in container.value_pos:
            return container.value_pos[key]
        if isinstance(container, YList) and isinstance(key, int) and key < len(container.item_pos):
            return container.item_pos[key]
    p = getattr(container, "pos", None)
    return p if isinstance(p, Pos) else Pos("<unknown>", 0, 0)
