"""``History``: a store's run history as the wire carries it, JSON rows or an Arrow stream; read through ``runs``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...model.runs import RUN_FIELDS, RUN_TIME_FIELDS
from ...model.timeparse import iso
from .arrow import arrow_stream, rows_table

if TYPE_CHECKING:
    from ..base import RunQuery, Store

_TIME_POSITIONS = [i for i, name in enumerate(RUN_FIELDS) if name in RUN_TIME_FIELDS]


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

    def arrow(self, query: RunQuery) -> bytearray:
        """The runs ``query`` selects, newest first, as one Arrow IPC stream with a column per ``RUN_FIELDS``
        name, typed as ``arrow.RUN_ARROW_TYPES`` says (times as UTC timestamps)."""
        return arrow_stream(rows_table(self.rows(query)))

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
