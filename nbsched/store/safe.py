"""Values in a form any store can hold: text as valid UTF-8, bytes as text, huge integers as text."""

from __future__ import annotations

import re
from datetime import datetime

_SURROGATE = re.compile("[\ud800-\udfff]")


def safe_text(text: str) -> str:
    """``text`` as valid UTF-8: each lone surrogate written as a backslash escape, ``\\xe9`` for the byte 0xE9
    that Python's surrogateescape kept from a file name that is not UTF-8, ``\\ud800`` for any other."""
    return _SURROGATE.sub(_escaped_surrogate, text)


def _escaped_surrogate(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def safe_value(value):
    """``value`` in a form any store can hold: text as valid UTF-8 (``safe_text``), bytes decoded with backslash
    escapes, whole numbers beyond 64 bits and other objects as text; None, numbers and datetimes as they are."""
    if value is None or isinstance(value, float | bool | datetime):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "backslashreplace")
    return safe_text(value if isinstance(value, str) else str(value))


def safe_record(record: dict) -> dict:
    """A run or an update of one, every value in a form any store can hold (see ``safe_value``)."""
    return {key: safe_value(value) for key, value in record.items()}
