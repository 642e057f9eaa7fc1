"""Masking of resident IDs and names for logs, exports and public disclosure."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["IdMaskingFilter", "mask_id", "mask_ids", "mask_name", "mask_text"]

_ID = re.compile(r"(?<![0-9])([0-9]{4})[0-9]{10}([0-9]{3}[0-9Xx])(?![0-9])")


def mask_id(value: str) -> str:
    """Keep the first and last four characters of a resident ID.

    >>> mask_id("320684195001010014")
    '3206**********0014'
    """
    if len(value) < 8:
        return "*" * len(value)
    return value[:4] + "*" * (len(value) - 8) + value[-4:]


def mask_name(value: str) -> str:
    """Keep the family name.

    >>> mask_name("张三丰")
    '张**'
    """
    return value[:1] + "*" * (len(value) - 1) if value else ""


def mask_text(text: str) -> str:
    """Mask every resident ID inside free text."""
    return _ID.sub(lambda m: m.group(1) + "*" * 10 + m.group(2), text)


def mask_ids(value: Any) -> Any:
    """A JSON value with every resident ID masked wherever it sits: a member list's
    ``person_id`` (the children and ability lists), an explanation's, or inside a message.

    >>> mask_ids({"children": [{"person_id": "320684201201010011", "age": 7}]})
    {'children': [{'person_id': '3206**********0011', 'age': 7}]}
    """
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, Mapping):
        return {k: mask_ids(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_ids(v) for v in value]
    return value


class IdMaskingFilter(logging.Filter):
    """Masks resident IDs in every log record before it is written."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask_text(str(record.msg))
        if record.args:
            record.args = tuple(
                mask_text(a) if isinstance(a, str) else a
                for a in (record.args if isinstance(record.args, tuple) else (record.args,))
            )
        # a traceback quotes the exception's message (and may quote a household): the
        # formatter uses exc_text when it is set, so set it, masked
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = mask_text(_FORMAT.formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        return True


_FORMAT = logging.Formatter()
