"""``PostgresHistory``: a PostgreSQL store's history, JSON rows through psycopg and Arrow straight from ADBC.

An Arrow listing is fetched with ADBC's PostgreSQL driver (``fetch_arrow_table``): the server's binary rows
become Arrow columns without a Python object per value. ``Readers`` keeps a few connections of each kind
between readers, so that a listing does not pay for a new connection each time.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from ...errors import StoreError
from ..postgres_schema import numbered, runs_listing
from ..postgres_url import PgLocation, connect, masked_reason, unreachable
from .arrow import arrow_stream
from .reader import History, times_as_text

if TYPE_CHECKING:
    from ..base import RunQuery, Store

#: Idle connections of each kind kept for the next reader.
KEEP_IDLE = 4


class Readers:
    """Connections for history readers, of two kinds: ``"rows"`` (psycopg) and ``"arrow"`` (ADBC); thread-safe."""

    def __init__(self, location: PgLocation):
        self.location = location
        self._idle: dict[str, list] = {"rows": [], "arrow": []}
        self._lock = threading.Lock()
        self._closed = False

    @contextlib.contextmanager
    def take(self, kind: str):
        """A connection of ``kind`` for one read, given back after it (closed instead if the read failed)."""
        with self._lock:
            held = self._idle[kind].pop() if self._idle[kind] else None
        held = held or self._open(kind)
        try:
            yield held
        except BaseException:
            held.close()
            raise
        with self._lock:
            if not self._closed and len(self._idle[kind]) < KEEP_IDLE:
                self._idle[kind].append(held)
                return
        held.close()

    def _open(self, kind: str):
        if kind == "rows":
            return connect(self.location)
        import adbc_driver_postgresql.dbapi

        try:
            return adbc_driver_postgresql.dbapi.connect(self.location.adbc_uri(), autocommit=True)
        except Exception as exc:  # the driver manager's errors share no base with psycopg's
            raise unreachable(self.location, exc) from None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, {"rows": [], "arrow": []}
        for held in idle["rows"] + idle["arrow"]:
            with contextlib.suppress(Exception):
                held.close()


class PostgresHistory(History):
    """The history of a PostgreSQL store, read on connections of the store's ``Readers`` (never its own)."""

    def __init__(self, store: Store, readers: Readers):
        super().__init__(store)
        self.readers = readers

    def rows(self, query: RunQuery) -> list[tuple]:
        sql, params = runs_listing(query)
        with self._reading(), self.readers.take("rows") as db:
            rows = db.execute(sql, params).fetchall()
        return times_as_text(rows)

    def arrow(self, query: RunQuery) -> memoryview:
        """The listing as Arrow, straight from the server's rows (ADBC), typed as ``arrow.RUN_ARROW_TYPES`` says."""
        sql, params = runs_listing(query)
        with self._reading(), self.readers.take("arrow") as db:
            cursor = db.cursor()
            try:
                cursor.execute(numbered(sql), params)
                table = cursor.fetch_arrow_table()
            finally:
                cursor.close()
        return arrow_stream(table)

    def row_chunks(self, query: RunQuery, size: int) -> Iterator[list[tuple]]:
        """Read as the rows are sent: a server-side cursor, ``size`` rows at a time."""
        sql, params = runs_listing(query)
        with (
            self._reading(),
            self.readers.take("rows") as db,
            db.transaction(),
            db.cursor(name="nbsched_history_rows") as cursor,
        ):
            cursor.execute(sql, params)
            while rows := cursor.fetchmany(size):
                yield times_as_text(rows)

    def minute_counts(self, since: datetime) -> list[tuple[str, str, int]]:
        """Counted by the server."""
        moment = "COALESCE(started_at, scheduled_at)"
        sql = (
            f"SELECT to_char(date_trunc('minute', {moment} AT TIME ZONE 'UTC'), 'YYYY-MM-DD\"T\"HH24:MI'), "
            f"status, COUNT(*) FROM runs WHERE {moment} >= %s GROUP BY 1, 2"
        )
        with self._reading(), self.readers.take("rows") as db:
            return [(minute, status, int(count)) for minute, status, count in db.execute(sql, [since]).fetchall()]

    def oldest_running(self) -> datetime | None:
        sql = "SELECT MIN(COALESCE(started_at, scheduled_at)) FROM runs WHERE status = 'running'"
        with self._reading(), self.readers.take("rows") as db:
            return db.execute(sql).fetchone()[0]

    @contextlib.contextmanager
    def _reading(self):
        """Errors of the server or of its connection, as ``StoreError``."""
        try:
            yield
        except StoreError:
            raise
        except Exception as exc:
            if type(exc).__module__.split(".")[0] not in ("psycopg", "adbc_driver_manager"):
                raise
            location = self.readers.location
            raise StoreError(
                f"Reading the history from the PostgreSQL store at {location.where} failed "
                f"({masked_reason(location, exc)}); try again once the server answers."
            ) from exc
