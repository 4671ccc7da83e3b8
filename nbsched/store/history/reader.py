"""``History``: a store's run history as the wire carries it, JSON rows or an Arrow stream; read through ``runs``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ...model.runs import RUN_FIELDS, RUN_TIME_FIELDS
from ...model.timeparse import iso
from ..base import RunQuery
from .arrow import arrow_stream, rows_table

if TYPE_CHECKING:
    from ..base import Store

_TIME_POSITIONS = [i for i, name in enumerate(RUN_FIELDS) if name in RUN_TIME_FIELDS]
_COUNTED = ("status", "started_at", "scheduled_at")


class History:
    """Reads a store's run history for a listing to send (``Store.history`` gives one; close it when done).

    This one works for any store, through ``Store.runs``. A store whose history can be read faster (straight
    as text, straight into Arrow, from files kept beside it) gives a subclass.
    """

    def __init__(self, store: Store):
        self.store = store

    def rows(self, query: RunQuery) -> list[tuple]:
        """The runs ``query`` selects, newest first, as ``RUN_FIELDS`` tuples with times as UTC ISO 8601 text
        (the form JSON carries)."""
        return times_as_text(self.store.runs(query))

    def arrow(self, query: RunQuery) -> memoryview:
        """The runs ``query`` selects, newest first, as one Arrow IPC stream with a column per ``RUN_FIELDS``
        name, typed as ``arrow.RUN_ARROW_TYPES`` says (times as UTC timestamps)."""
        return arrow_stream(rows_table(self.rows(query)))

    def row_chunks(self, query: RunQuery, size: int) -> Iterator[list[tuple]]:
        """The rows of ``rows``, ``size`` at a time, for a listing sent as it is read. This one reads them all
        first; a store that can read them a part at a time (SQLite) keeps its memory flat whatever the limit."""
        rows = self.rows(query)
        for start in range(0, len(rows), size):
            yield rows[start : start + size]

    def minute_counts(self, since: datetime) -> list[tuple[str, str, int]]:
        """How many runs of each status started (or, not started, were due) in each minute from ``since`` on:
        ``(minute as UTC text "YYYY-MM-DDTHH:MM", status, count)`` triples, in no order."""
        counts: Counter = Counter()
        status_at, started_at, scheduled_at = (RUN_FIELDS.index(name) for name in _COUNTED)
        for row in self.store.runs(RunQuery(since=since)):
            moment = (row[started_at] or row[scheduled_at]).astimezone(UTC)
            counts[moment.strftime("%Y-%m-%dT%H:%M"), row[status_at]] += 1
        return [(minute, status, count) for (minute, status), count in counts.items()]

    def oldest_running(self) -> datetime | None:
        """When the run still running that started (or, not started, was due) first did; None when none runs."""
        _, started_at, scheduled_at = (RUN_FIELDS.index(name) for name in _COUNTED)
        times = [row[started_at] or row[scheduled_at] for row in self.store.runs(RunQuery(status="running"))]
        return min(times, default=None)

    def refresh(self) -> None:
        """Bring what the store keeps to read its history faster up to date; the runner calls it now and then,
        in a thread of its own."""

    def close(self) -> None:
        """Release what the reader holds (never the store it reads)."""

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def times_as_text(rows: list[tuple]) -> list[tuple]:
    """``RUN_FIELDS`` rows with their times (aware datetimes) as UTC ISO 8601 text, in place."""
    for index, row in enumerate(rows):
        values = list(row)
        for i in _TIME_POSITIONS:
            values[i] = iso(values[i])
        rows[index] = tuple(values)
    return rows
