"""Live logs, the worker's end: the lines the run in hand has logged so far go to the runner in small batches.

A thread looks every ``config.LIVE_LOG_SECONDS`` at the run in hand (``Worker.current``: its id and its list
of log entries) and sends the entries added since its last look as one ``pipe.Logs`` frame. A run that logs
nothing costs a length check per look; the firing path costs nothing (the run's entries are the list its
capture appends to anyway). The run's ``Result`` still carries all its logs: those are what is stored.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from .. import config
from . import pipe


class LiveLogs:
    """Sends the new log entries of the run in hand, as physical lines, every ``every`` seconds."""

    def __init__(self, current: Callable[[], tuple[int, list[str]] | None], send: Callable[[Any], None], mask):
        self.current = current  # the run in hand: (run id, its log entries), or None
        self.send = send
        self.mask = mask  # text -> text with the connections' secrets blanked
        self.every = config.LIVE_LOG_SECONDS
        self.run_id: int | None = None
        self.sent = 0  # entries of ``run_id`` sent so far
        self.lines = 0  # ... and the physical lines they made, sent or counted

    def look(self) -> bool:
        """Send what the run in hand logged since the last look; whether anything was sent."""
        current = self.current()
        if current is None:
            return False
        run_id, entries = current
        if run_id != self.run_id:
            self.run_id, self.sent, self.lines = run_id, 0, 0
        count = len(entries)
        if count <= self.sent:
            return False
        lines = self.mask("\n".join(entries[self.sent : count])).split("\n")
        skip = max(0, len(lines) - config.LIVE_LOG_LINES)  # the runner keeps no more of them anyway
        first = self.lines + skip
        self.sent, self.lines = count, self.lines + len(lines)
        self.send(pipe.Logs(run_id, first, [_cut(line) for line in lines[skip:]]))
        return True

    def loop(self) -> None:
        """The thread's loop: look every ``every`` seconds, for the worker's life."""
        while True:
            time.sleep(self.every)
            with contextlib.suppress(Exception):  # a failed look must not end live logs for later runs
                self.look()


def _cut(line: str, most: int = config.LIVE_LOG_LINE_CHARS) -> str:
    """A live line of at most ``most`` characters (and a mark where it was cut)."""
    return line if len(line) <= most else f"{line[:most]} ... ({len(line) - most} more characters)"
