"""Runs per minute and status over a recent window (the dashboard's chart), counted in the store and kept.

A minute's counts change no more once every run that started in it has finished, so the counts of the
minutes before the oldest run still running (and before the current minute) are kept and only the later
minutes are counted again at the next ask: a chart refreshed every few seconds costs a count of the last
minute or two, not of the hour. Everything is counted afresh now and then (``RECOUNT_SECONDS``), for runs
deleted or recorded late.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from ..errors import InvalidInput
from ..store import Store

#: The longest window of runs per minute a client may ask for (a day).
MAX_COUNT_MINUTES = 1440
#: Seconds after which kept counts are dropped and every minute counted again.
RECOUNT_SECONDS = 600.0
_MINUTE = timedelta(minutes=1)


def count_window(now: datetime, minutes) -> datetime:
    """The first minute (UTC) of a window of ``minutes`` minutes that ends with the minute of ``now``."""
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= MAX_COUNT_MINUTES:
        raise InvalidInput(
            f"Invalid minutes {minutes!r}: use a whole number from 1 to {MAX_COUNT_MINUTES}, e.g. 60.",
            field="minutes",
        )
    return now.astimezone(UTC).replace(second=0, microsecond=0) - (minutes - 1) * _MINUTE


class MinuteCounts:
    """The counts of one store's runs per minute and status, the settled minutes kept (thread-safe)."""

    def __init__(self, store: Store):
        self.store = store
        self._lock = threading.Lock()
        self._settled: dict[datetime, Counter] = {}
        self._until: datetime | None = None  # the minutes before this one are in _settled
        self._counted_at = 0.0

    def window(self, start: datetime, minutes: int) -> dict:
        """``{"start": start, "minutes": N, "counts": {status: [N counts, oldest first]}}``."""
        counts: dict[str, list[int]] = {}
        for minute, by_status in self._minutes(start, start + minutes * _MINUTE).items():
            index = int((minute - start).total_seconds() // 60)
            if 0 <= index < minutes:
                for status, count in by_status.items():
                    counts.setdefault(status, [0] * minutes)[index] += count
        return {"start": start, "minutes": minutes, "counts": counts}

    def _minutes(self, start: datetime, end: datetime) -> dict[datetime, Counter]:
        with self._lock:
            if self._until is None or self._until < start or time.monotonic() - self._counted_at > RECOUNT_SECONDS:
                self._settled, self._until, self._counted_at = {}, start, time.monotonic()
            with self.store.history() as history:
                fresh = _by_minute(history.minute_counts(self._until))
                running = history.oldest_running()
            settled_before = min(end - _MINUTE, _minute_of(running) if running is not None else end)
            for minute, by_status in fresh.items():
                if self._until <= minute < settled_before:
                    self._settled[minute] = by_status
            self._until = max(self._until, settled_before)
            for minute in [minute for minute in self._settled if minute < start]:
                del self._settled[minute]
            return {**fresh, **self._settled}


def _by_minute(triples) -> dict[datetime, Counter]:
    minutes: dict[datetime, Counter] = {}
    for minute, status, count in triples:
        minutes.setdefault(datetime.fromisoformat(minute + ":00+00:00"), Counter())[status] += count
    return minutes


def _minute_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)
