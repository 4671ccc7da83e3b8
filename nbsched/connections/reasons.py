"""One-line reasons for failed network calls, as the errors of connections show them."""

from __future__ import annotations

import re


def root_reason(exc: BaseException) -> str:
    """The OS's words from an exception's text (``Connection refused``), else its text on one line."""
    text = str(exc)
    found = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    return found.group(1) if found else " ".join(text.split())[:200]
