"""A log filter that keeps a condition that repeats (a full file table, a worker that cannot start)
from flooding the runner's log: a few lines about it per window, then a count of the rest."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

#: Records about the same condition let through per window, and the window, in seconds.
BURST = 5
WINDOW = 60.0
#: Conditions remembered at most; ones whose window has ended are forgotten first.
MAX_KEYS = 1000


class RateLimit(logging.Filter):
    """Let through at most ``burst`` records about the same condition every ``window`` seconds.

    Records are about the same condition when they come from the same logger, at the same level, with
    the same message template (its first line: asyncio puts the details of an error on the next ones).
    The first record let through after some were dropped says how many. One instance may sit on several
    handlers: it decides once per record.
    """

    def __init__(self, burst: int = BURST, window: float = WINDOW, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.burst = burst
        self.window = window
        self.clock = clock
        self.seen: dict[tuple, list] = {}  # key -> [window start, records in the window, records dropped]

    def filter(self, record: logging.LogRecord) -> bool:
        decided = record.__dict__.get("_nbsched_rate_limit")
        if decided is None:
            decided = record._nbsched_rate_limit = self._decide(record)
        return decided

    def _decide(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg).partition("\n")[0][:200])
        now = self.clock()
        entry = self.seen.get(key)
        if entry is None or now - entry[0] >= self.window:
            if entry is None and len(self.seen) >= MAX_KEYS:
                self._forget(now)
            self.seen[key] = [now, 1, 0]
            if entry is not None and entry[2]:
                record.msg = f"{record.getMessage()} [{entry[2]} more like this in the {self.window:g}s before]"
                record.args = None
            return True
        entry[1] += 1
        if entry[1] <= self.burst:
            return True
        entry[2] += 1
        return False

    def _forget(self, now: float) -> None:
        for key in [key for key, entry in self.seen.items() if now - entry[0] >= self.window]:
            del self.seen[key]
        if len(self.seen) >= MAX_KEYS:  # all of them recent: forget the oldest half
            for key in sorted(self.seen, key=lambda k: self.seen[k][0])[: MAX_KEYS // 2]:
                del self.seen[key]
