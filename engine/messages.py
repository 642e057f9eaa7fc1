"""The one message catalogue: every sentence a person reads, in Chinese and English.

The catalogue is YAML, one file per area under ``engine/catalogue/`` (``reject.yaml``,
``lint.yaml``, ``api.yaml``, ``cli.yaml``, ``files.yaml``, ...), in the same form as the
rule files' own ``title: {zh: ..., en: ...}`` labels. A message's key is the file's name
and its key inside, joined by a dot: ``reject.required`` is ``required`` in
``reject.yaml``. Every message has a ``zh`` and an ``en`` text with the same ``{name}``
placeholders; ``check_catalogue`` says where one does not (``make lint`` runs it through
``main``, and a test does).

Chinese is the default language: the officers and policy staff who read these are Chinese.
English is there for the people who maintain the system and for machines that compare
texts (rejects files, tests).

To add a message: add ``key: {zh: "...", en: "..."}`` to the area's file (or a new file),
use ``text("area.key", lang, name=value)`` in the code, and run ``make lint``.
"""

from __future__ import annotations

import os
import re
import string
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, Final, Literal, NamedTuple

import yaml

__all__ = [
    "DEFAULT_LANG",
    "LANGS",
    "Lang",
    "Phrase",
    "Said",
    "both",
    "catalogue",
    "check_catalogue",
    "has",
    "lang_from_env",
    "negotiate",
    "parse_lang",
    "placeholders",
    "text",
]

Lang = Literal["zh", "en"]
LANGS: Final[tuple[Lang, ...]] = ("zh", "en")
DEFAULT_LANG: Final[Lang] = "zh"

CATALOGUE_DIR: Final = Path(__file__).parent / "catalogue"
# libyaml's safe loader where installed: the catalogue is read at every start-up
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read(folder: Path) -> tuple[dict[str, dict[str, str]], list[str]]:
    """Every message under ``folder`` by its dotted key, and what is wrong with the files' shape."""
    messages: dict[str, dict[str, str]] = {}
    problems: list[str] = []
    for path in sorted(folder.glob("*.yaml")):
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER) or {}
        if not isinstance(data, dict):
            problems.append(f"{path.name}: must map keys to messages")
            continue
        for key, entry in data.items():
            full = f"{path.stem}.{key}"
            if not isinstance(entry, dict) or not all(isinstance(v, str) for v in entry.values()):
                problems.append(f"{full}: must be {{zh: text, en: text}}")
                continue
            messages[full] = {str(k): v for k, v in entry.items()}
    return messages, problems


@cache
def catalogue() -> Mapping[str, Mapping[str, str]]:
    """The bundled catalogue, read once per process."""
    return _read(CATALOGUE_DIR)[0]


def has(key: str) -> bool:
    """Whether ``key`` is a message of the catalogue."""
    return key in catalogue()


def text(key: str, lang: str = DEFAULT_LANG, /, **params: Any) -> str:
    """The message ``key`` in ``lang`` (``zh`` when ``lang`` is not one we have), filled in.

    >>> text("reject.min", "en", bound=0, got=-1)
    'must be at least 0 (got -1)'
    >>> text("reject.min", "zh", bound=0, got=-1)
    '不得小于 0（实为 -1）'
    """
    entry = catalogue()[key]
    lang = parse_lang(lang)
    shown = {k: text(v.key, lang, **v.params) if isinstance(v, Phrase) else v for k, v in params.items()}
    return entry[lang].format(**shown)


class Phrase(NamedTuple):
    """A message used as another's value (a level, a verb), shown in the same language.

    >>> text("api.approval_limit", "zh", amount="9000.00", level=Phrase("api.level.township"),
    ...      needed=Phrase("api.level.city"), verb=Phrase("api.verb.approve"))
    '金额 9000.00 超出区镇级审批权限；须由市级审批通过'
    """

    key: str
    params: Mapping[str, Any] = {}


def both(key: str, /, **params: Any) -> dict[str, str]:
    """The message in every language, e.g. for a JSON body read by people of either."""
    return {lang: text(key, lang, **params) for lang in LANGS}


def parse_lang(value: str | None, default: Lang = DEFAULT_LANG) -> Lang:
    """``zh`` or ``en`` from a tag such as ``en-GB`` or ``zh_CN.UTF-8``; ``default`` otherwise.

    >>> parse_lang("en_US.UTF-8"), parse_lang("zh-Hans-CN"), parse_lang("fr"), parse_lang(None)
    ('en', 'zh', 'zh', 'zh')
    """
    tag = (value or "").strip().lower().replace("_", "-").split(".")[0].split("-")[0]
    return tag if tag in LANGS else default


_RANGE = re.compile(r"^\s*([A-Za-z]{1,8}(?:[-_][A-Za-z0-9]{1,8})*|\*)\s*(?:;\s*q\s*=\s*([0-9.]+))?\s*$")


def negotiate(accept_language: str | None, default: Lang = DEFAULT_LANG) -> Lang:
    """The language to answer an HTTP ``Accept-Language`` header in (RFC 9110 §12.5.4).

    The range with the highest weight that we have wins; ties go to the one listed first;
    a header naming none of ours (or none at all) gets ``default``, Chinese.

    >>> negotiate("en-US,en;q=0.9,zh;q=0.8"), negotiate("fr, en;q=0.5"), negotiate("zh-CN, en;q=0.9")
    ('en', 'en', 'zh')
    >>> negotiate(None), negotiate("de"), negotiate("en;q=0, zh;q=0.1"), negotiate("*")
    ('zh', 'zh', 'zh', 'zh')
    """
    best: tuple[float, int, Lang] | None = None
    for i, part in enumerate((accept_language or "").split(",")[:32]):
        m = _RANGE.match(part)
        if m is None:
            continue
        try:
            weight = float(m.group(2)) if m.group(2) is not None else 1.0
        except ValueError:
            continue
        tag = m.group(1)
        if tag == "*":
            lang: str = default
        else:
            lang = (tag or "").lower().replace("_", "-").split("-")[0]
        if lang not in LANGS or weight <= 0:
            continue
        if best is None or (weight, -i) > (best[0], best[1]):
            best = (weight, -i, lang)
    return best[2] if best else default


def lang_from_env(environ: Mapping[str, str] | None = None) -> Lang:
    """The language of the command line: ``LC_ALL``, ``LC_MESSAGES``, then ``LANG``; Chinese otherwise.

    >>> lang_from_env({"LANG": "en_GB.UTF-8"}), lang_from_env({"LANG": "C.UTF-8"}), lang_from_env({})
    ('en', 'zh', 'zh')
    """
    env = os.environ if environ is None else environ
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name)
        if value:
            return parse_lang(value)
    return DEFAULT_LANG


def placeholders(template: str) -> frozenset[str]:
    """The ``{name}`` fields of a message (``{{`` is a brace, not a field).

    >>> sorted(placeholders("must be at least {bound} (got {got}) {{x}}"))
    ['bound', 'got']
    """
    return frozenset(name for _, name, _, _ in string.Formatter().parse(template) if name is not None)


def check_catalogue(folder: Path = CATALOGUE_DIR) -> list[str]:
    """Every problem with a catalogue: a language missing or extra, placeholders that differ, a bad field.

    Empty when the catalogue is sound.
    """
    messages, problems = _read(folder)
    for key, entry in sorted(messages.items()):
        langs = set(entry)
        if langs != set(LANGS):
            problems.append(f"{key}: has languages {sorted(langs)}, must have exactly {sorted(LANGS)}")
            continue
        fields: dict[str, frozenset[str]] = {}
        for lang in LANGS:
            try:
                fields[lang] = placeholders(entry[lang])
            except ValueError as e:
                problems.append(f"{key}.{lang}: not a valid message ({e})")
                continue
            if any(not name.isidentifier() for name in fields[lang]):
                problems.append(f"{key}.{lang}: a placeholder must be a plain {{name}}")
        if len(fields) == len(LANGS) and fields["zh"] != fields["en"]:
            problems.append(f"{key}: placeholders differ: zh has {sorted(fields['zh'])}, en has {sorted(fields['en'])}")
    return problems


def main() -> int:
    """Print the catalogue's problems (``make lint``); 1 when there are any."""
    problems = check_catalogue()
    for p in problems:
        print(p)
    return 1 if problems else 0


class Said(Exception):
    """An error worded by a catalogue message: ``str()`` is its English text (logs, tests);
    ``said(lang)`` is what a person reads; ``key`` is the machine-readable code. Given a text
    that is no key (one a caller has already put in the reader's language), that text is
    the message in every language and ``key`` is None.

    >>> Said("api.not_found.job", id=7).said("zh"), Said("已翻译").said("en"), Said("已翻译").key
    ('找不到任务 7', '已翻译', None)
    """

    def __init__(self, key: str, /, **params: Any) -> None:
        self.key: str | None = key if has(key) else None
        self.params = params
        super().__init__(text(key, "en", **params) if self.key else key)

    def said(self, lang: str) -> str:
        """The message in ``lang``."""
        return text(self.key, lang, **self.params) if self.key else str(self)
