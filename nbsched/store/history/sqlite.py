"""``SQLiteHistory``: a SQLite store's history read fast: text as the file holds it, long listings via Arrow files.

A listing of up to ``BULK_ROWS`` runs is read with sqlite3, its times already the UTC ISO text the wire
carries. A longer one comes as Arrow: the finished runs from the files of ``cache`` (which the child process
of ``child`` writes, reading SQLite with ADBC), the runs after the last file from SQLite.
"""

from __future__ import annotations

import contextlib
import json
import logging
import mmap
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from ...errors import NbschedError
from ...gcpause import gc_paused
from ...model.timeparse import iso
from ..base import RunQuery
from ..sqlite_schema import SELECT_RUN_FIELDS, runs_listing, runs_where
from .arrow import arrow_stream, filtered, rows_table, typed_runs
from .cache import CACHE_FORMAT, RunsCache
from .reader import History

log = logging.getLogger(__name__)
#: Above this many runs, an Arrow listing is read from the runs cache and by a child process with ADBC.
BULK_ROWS = 50_000
#: The most run ids one query of that child process spans: each query is a read of its own, and a read
#: keeps checkpoints from resetting the store's write-ahead log as long as it lasts (``child``). 20,000 runs
#: take ~30 ms of a core; a query costs more per run the fewer runs it reads (5,000: 10% more CPU).
CHILD_QUERY_IDS = 20_000
#: The same for a refresh of the runs cache, which no one waits for: at its low priority, a query of a busy
#: machine lasts longer.
REFRESH_QUERY_IDS = 5_000
#: Seconds that child process may take.
CHILD_TIMEOUT = 600
#: How much earlier than the window of a count its runs are looked for: a run gets its id when it is due, and
#: may start later (queued behind the job's previous run).
COUNT_SLACK = timedelta(minutes=5)
#: Idle reader connections a store keeps for the next read.
KEEP_READERS = 4
#: The lowest and the highest run id, each a query of its own: SQLite looks a MIN or a MAX up at one end of the
#: ids only when it is the query's one aggregate; both in one query read every run (0.1 s for a million).
LOWEST_RUN_ID = "(SELECT MIN(run_id) FROM runs)"
HIGHEST_RUN_ID = "(SELECT MAX(run_id) FROM runs)"
#: Records of changed runs forgotten in one transaction (``forget_changes``): ~20 ms of the store's write lock.
FORGET_CHUNK = 10_000
#: How far the numbers of the store's changes of runs jump before a cache file is written (``skip_changes``): a copy
#: of the store put back would have to make as many changes before its numbers reach those of the files.
CHANGES_SKIPPED = 1 << 30
#: Milliseconds that skip waits for the store's write lock: a long read that writes a file waits for it.
SKIP_WAIT_MS = 1000
#: The runs of ids given as a JSON array (those the store has), newest first.
_CHANGED_RUNS = "WHERE run_id IN (SELECT value FROM json_each(?)) ORDER BY run_id DESC"


class Readers:
    """The idle reader connections of one store file, kept for the next read: a new connection reads the
    schema at its first query, which costs a short listing as much as the listing itself."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], keep: int = KEEP_READERS):
        self.connect = connect
        self.keep = keep
        self.idle: list[sqlite3.Connection] = []
        self.lock = threading.Lock()
        self.closed = False

    def take(self) -> sqlite3.Connection:
        with self.lock:
            if self.idle:
                return self.idle.pop()
        return self.connect()

    def give(self, db: sqlite3.Connection) -> None:
        """Keep ``db`` for the next read, or close it (enough kept, the store closed, a transaction left open)."""
        with self.lock:
            if not self.closed and len(self.idle) < self.keep and not db.in_transaction:
                self.idle.append(db)
                return
        db.close()

    def close(self) -> None:
        with self.lock:
            idle, self.idle, self.closed = self.idle, [], True
        for db in idle:
            db.close()


class SQLiteHistory(History):
    """The history of the SQLite store at ``path``, read on a connection of its own (``db``, closed with it,
    or handed back to ``readers`` when given).

    It is also what the runs cache reads the store through (``source.Source``).
    """

    def __init__(self, path: str, db: sqlite3.Connection, readers: Readers | None = None):
        self.path = path
        self.db = db
        self.readers = readers

    def rows(self, query: RunQuery) -> list[tuple]:
        return self._text_rows(*runs_listing(query))  # times are stored as the text the wire carries

    def arrow(self, query: RunQuery) -> memoryview:
        """Up to ``BULK_ROWS`` runs: built from sqlite3 rows here. More: the finished runs come from the
        Arrow files of the runs cache, which a child process writes."""
        if query.offset and (query.limit is None or query.limit + query.offset > BULK_ROWS):
            import pyarrow as pa

            head = replace(query, offset=0, limit=None if query.limit is None else query.offset + query.limit)
            return arrow_stream(pa.ipc.open_stream(self.arrow(head)).read_all().slice(query.offset, query.limit))
        if (query.limit is None or query.limit > BULK_ROWS) and self._more_runs_than(BULK_ROWS, query):
            try:
                return self._long_arrow(query)
            except (OSError, NbschedError, ValueError) as exc:  # pyarrow's errors are ValueErrors or OSErrors
                log.warning("the runs cache of %s is not usable (%s); reading the runs from SQLite", self.path, exc)
                where, params = runs_where(query)
                return self._read_after_in_child(0, where, params, query.limit)
        return super().arrow(query)

    def row_chunks(self, query: RunQuery, size: int) -> Iterator[list[tuple]]:
        """Read as the rows are sent, ``size`` rows at a time, times as the file holds them.

        Each chunk is a query of its own, below the ids of the chunk before: a cursor held open while a client
        takes its time (``nbsched history | less``) would hold a snapshot of the store, and as long as one is
        held, no checkpoint resets the write-ahead log, which grows with every write meanwhile. A run that
        changes between two chunks is listed as it is when its chunk is read."""
        where, params = runs_where(query)
        where = f"{where} AND" if where else "WHERE"
        left = float("inf") if query.limit is None else query.limit
        offset, below = query.offset, None
        while left > 0:
            take = int(min(size, left))
            below_clause, below_params = ("run_id < ?", [below]) if below is not None else ("1", [])
            rows = self.db.execute(
                f"SELECT {SELECT_RUN_FIELDS} FROM runs {where} {below_clause} ORDER BY run_id DESC LIMIT ? OFFSET ?",
                [*params, *below_params, take, offset],
            ).fetchall()
            if not rows:
                return
            yield rows
            left, offset, below = left - len(rows), 0, rows[-1][0]
            if len(rows) < take:
                return

    def minute_counts(self, since: datetime) -> list[tuple[str, str, int]]:
        """Counted in SQLite, over the runs from the first one that started (or was due) after ``since`` less
        ``COUNT_SLACK`` on: run ids grow with time, so that one is found by bisecting the ids."""
        first = self._first_run_at(iso(since - COUNT_SLACK))
        minute = "substr(COALESCE(started_at, scheduled_at), 1, 16)"
        rows = self.db.execute(
            f"SELECT {minute}, status, COUNT(*) FROM runs WHERE run_id >= ? "
            "AND COALESCE(started_at, scheduled_at) >= ? GROUP BY 1, 2",
            [first, iso(since)],
        ).fetchall()
        return [(moment, status, count) for moment, status, count in rows]

    def oldest_running(self) -> datetime | None:
        (moment,) = self.db.execute(
            "SELECT MIN(COALESCE(started_at, scheduled_at)) FROM runs WHERE status = 'running'"
        ).fetchone()
        return None if moment is None else datetime.fromisoformat(moment)

    def _first_run_at(self, moment: str) -> int:
        """The lowest run id from which on runs started (or were due) at ``moment`` or later, run ids bisected."""
        low, high = self.db.execute(f"SELECT COALESCE({LOWEST_RUN_ID}, 0), COALESCE({HIGHEST_RUN_ID}, 0)").fetchone()
        while low < high:
            middle = (low + high) // 2
            row = self.db.execute(
                "SELECT COALESCE(started_at, scheduled_at) FROM runs WHERE run_id >= ? ORDER BY run_id LIMIT 1",
                [middle],
            ).fetchone()
            if row is None or (row[0] or "") >= moment:
                high = middle
            else:
                low = middle + 1
        return low

    def refresh(self) -> None:
        with (cache := RunsCache.of(self.path)).lock:
            cache.cached_tables(self, background=True)

    def close(self) -> None:
        if self.readers is None:
            self.db.close()
        else:
            self.readers.give(self.db)

    # -- what the runs cache reads the store through (source.Source) ------------------
    def run_cids(self, run_ids: list[int]) -> dict[int, str]:
        marks = ", ".join("?" * len(run_ids))
        return dict(self.db.execute(f"SELECT run_id, cid FROM runs WHERE run_id IN ({marks})", run_ids).fetchall())

    def cache_bounds(self) -> tuple[str, int, int]:
        store_id, generation, running, highest, changes = self.db.execute(
            "SELECT (SELECT value FROM meta WHERE key='store_id'), "
            "(SELECT value FROM meta WHERE key='runs_generation'), "
            "(SELECT MIN(run_id) FROM runs WHERE status='running'), (SELECT COALESCE(MAX(run_id), 0) FROM runs), "
            "(SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name='runs_changed')"
        ).fetchone()
        return f"{store_id}g{generation}f{CACHE_FORMAT}", highest if running is None else running - 1, changes

    def changed_runs(self, since: int, upto: int) -> list[int]:
        # As one JSON array: after a purge of many runs, much faster than as many rows.
        (ids,) = self.db.execute(
            "SELECT json_group_array(run_id) FROM "
            "(SELECT DISTINCT run_id FROM runs_changed WHERE seq > ? AND run_id <= ?)",
            [since, upto],
        ).fetchone()
        return json.loads(ids)

    def changed_count(self, after: int, upto: int, since: int) -> tuple[int, int]:
        changed = "SELECT DISTINCT run_id FROM runs_changed WHERE seq > ? AND run_id > ? AND run_id <= ?"
        return self.db.execute(
            f"SELECT COUNT(*), (SELECT COUNT(*) FROM runs WHERE run_id IN ({changed})) FROM ({changed})",
            [since, after, upto] * 2,
        ).fetchone()

    def skip_changes(self) -> int:
        """Written on this reader's connection, as ``forget_changes``; a store that cannot be written now keeps its
        numbers (a copy put back is then told only by the newest runs of the files)."""
        skip = "UPDATE sqlite_sequence SET seq = seq + ? WHERE name = 'runs_changed'"
        (waits,) = self.db.execute("PRAGMA busy_timeout").fetchone()
        try:
            self.db.execute(f"PRAGMA busy_timeout = {SKIP_WAIT_MS}")
            with self._writing():
                if not self.db.execute(skip, [CHANGES_SKIPPED]).rowcount:  # no change recorded yet
                    self.db.execute("INSERT INTO sqlite_sequence VALUES ('runs_changed', ?)", [CHANGES_SKIPPED])
        except sqlite3.OperationalError as exc:
            log.info("the change numbers of %s are not skipped (%s)", self.path, exc)
        finally:
            self.db.execute(f"PRAGMA busy_timeout = {int(waits)}")
        return self.cache_bounds()[2]

    def forget_changes(self, spans: list[tuple[int, int, int]]) -> None:
        """Written on this reader's connection (the store's own belongs to the runner's event loop). A store that
        cannot be written now keeps the records, which cost only their rows, until the next refresh."""
        (oldest,) = self.db.execute("SELECT MIN(seq) FROM runs_changed").fetchone()
        if oldest is None or oldest > max(seen for _, _, seen in spans):
            return  # nothing to forget: no write
        # Found first (a read: no lock), then deleted by ``seq`` in short transactions: the runner's own writes wait
        # for this one's lock, and a million records at once held it for half a second.
        found = "SELECT seq FROM runs_changed WHERE run_id > ? AND run_id <= ? AND seq <= ?"
        seqs = [(seq,) for span in spans for (seq,) in self.db.execute(found, span)]
        try:
            for start in range(0, len(seqs), FORGET_CHUNK):
                with self._writing():
                    self.db.executemany("DELETE FROM runs_changed WHERE seq = ?", seqs[start : start + FORGET_CHUNK])
        except sqlite3.OperationalError as exc:
            log.info("the runs cache's records of changed runs of %s are kept for now (%s)", self.path, exc)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """A write transaction on this reader's connection: committed at the end, rolled back on an error."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self.db.execute("COMMIT")
        finally:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")

    def runs_table(self, run_ids: list[int]):
        return rows_table(self._text_rows(_CHANGED_RUNS, [json.dumps(run_ids)]))

    def write_runs_file(self, after: int, upto: int, path: Path, background: bool = False) -> None:
        span = REFRESH_QUERY_IDS if background else CHILD_QUERY_IDS
        queries = _id_ranges("", [], after, upto, None, span)
        _read_in_child(self.path, queries, _most_rows(after, upto, None, span), file=path, nice=background)

    def merge_runs_files(self, parts: list[dict], path: Path, background: bool = False) -> None:
        _read_in_child(self.path, [], 0, file=path, nice=background, merge=parts)

    def patch_runs_file(self, part: dict, run_ids: list[int], path: Path, background: bool = False) -> None:
        select = f"SELECT {SELECT_RUN_FIELDS} FROM runs {_CHANGED_RUNS}"
        changed = {"store": self.path, "run_ids": run_ids, "select": select}
        merging = [{**part, "changed": changed}]
        _read_in_child(self.path, [], len(run_ids), file=path, nice=background, merge=merging)

    # -- long listings ------------------------------------------------------------
    def _text_rows(self, where: str, params: list) -> list[tuple]:
        with gc_paused():  # a million-row fetch allocates millions of tuples: no GC passes meanwhile
            return self.db.execute(f"SELECT {SELECT_RUN_FIELDS} FROM runs {where}", params).fetchall()

    def _more_runs_than(self, rows: int, query: RunQuery) -> bool:
        """Whether a query may select more than ``rows`` runs: counted when it filters, else told by the ids."""
        (span,) = self.db.execute(f"SELECT COALESCE({HIGHEST_RUN_ID} - {LOWEST_RUN_ID} + 1, 0)").fetchone()
        filters = (query.job, query.job_uid, query.service, query.status, query.since)
        if span <= rows or all(value is None for value in filters):
            return span > rows
        where, params = runs_where(query)
        (count,) = self.db.execute(
            f"SELECT COUNT(*) FROM (SELECT 1 FROM runs {where} LIMIT ?)", [*params, rows + 1]
        ).fetchone()
        return count > rows

    def _long_arrow(self, query: RunQuery) -> memoryview:
        """A long listing from the files of the runs cache and SQLite; or, when the files lack most of the runs
        (the first long read of a store), straight from SQLite by the child process, the files written after."""
        cache = RunsCache.of(self.path)
        with cache.lock:  # held while SQLite is read: the runner's refresh waits, rather than read it too meanwhile
            if self.readers is not None and cache.behind(self):
                where, params = runs_where(query)
                data = self._read_after_in_child(0, where, params, query.limit)
                cache.write_later(self._another)
                return data
        data = arrow_stream(self._large_table(query))
        if self.readers is not None and cache.worn:  # many of a file's runs changed: it is written again after
            cache.write_later(self._another)
        return data

    def _another(self) -> SQLiteHistory:
        """A reader of the same store on another connection (for a thread of its own)."""
        if not Path(self.path).exists():  # connecting would make a new, empty file there
            raise FileNotFoundError(f"the store file {self.path} is gone")
        return SQLiteHistory(self.path, self.readers.take(), self.readers)

    def _large_table(self, query: RunQuery):
        import pyarrow as pa

        cache = RunsCache.of(self.path)
        with cache.lock:
            cached = cache.cached_tables(self)
            try:
                parts = [self._runs_after(cache.upto, query)]
            except BaseException:
                cached.close()
                raise
        wanted = float("inf") if query.limit is None else query.limit
        with contextlib.closing(cached):
            for table in cached:
                if sum(part.num_rows for part in parts) >= wanted:
                    break
                parts.append(filtered(table, query))
        table = pa.concat_tables(parts)
        return table if query.limit is None else table.slice(0, query.limit)

    def _runs_after(self, after: int, query: RunQuery):
        """The runs a query selects among those with ids above ``after`` (the ones no cache file holds)."""
        import pyarrow as pa

        where, params = runs_where(query, after)
        (count,) = self.db.execute(f"SELECT COUNT(*) FROM runs {where}", params).fetchone()
        if min(count, BULK_ROWS + 1 if query.limit is None else query.limit) > BULK_ROWS:  # a run long left running
            data = self._read_after_in_child(after, where, params, query.limit)
            return typed_runs(pa.ipc.open_stream(data).read_all())
        return rows_table(self._text_rows(*runs_listing(query, after)))

    def _read_after_in_child(self, after: int, where: str, params: list, limit: int | None) -> memoryview:
        """The runs above ``after`` that ``where`` selects, as an Arrow stream read by the child process."""
        (highest,) = self.db.execute("SELECT COALESCE(MAX(run_id), 0) FROM runs").fetchone()
        return _read_in_child(
            self.path, _id_ranges(where, params, after, highest, limit), _most_rows(after, highest, limit)
        )


def _read_in_child(
    path: str,
    queries: list[tuple[str, list]],
    rows: int,
    file: Path | None = None,
    nice=False,
    merge: list | None = None,
) -> memoryview:
    """What the child process read for ``queries`` (each of at most ``rows`` rows): an Arrow stream, or (given
    ``file``) an Arrow file written there (or, given ``merge``, those cache files merged there); ``nice``: at a
    low CPU priority (work no one waits for).

    The stream comes through a file of its own beside the store (unlinked: no one else can change it), mapped
    once the child is done: through a pipe, a long one would take thousands of hand-overs between the two
    processes, each waiting for a core on a busy machine."""
    request = {
        "path": path,
        "queries": queries,
        "rows": rows,
        "file": None if file is None else str(file),
        "nice": nice,
    }
    if merge:
        request["merge"] = merge
    request = json.dumps(request).encode()
    command = [sys.executable, "-m", "nbsched.store.history.child"]
    with tempfile.TemporaryFile(dir=Path(path).parent, prefix=".nbsched-history-") as out:
        try:
            done = subprocess.run(
                command, input=request, stdout=out, stderr=subprocess.PIPE, timeout=CHILD_TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired:
            raise NbschedError(
                f"Reading the history into Arrow took longer than {CHILD_TIMEOUT} s; ask for less, e.g. a limit."
            ) from None
        if done.returncode != 0:
            reason = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
            raise NbschedError(f"Reading the history into Arrow failed: {reason[0]}")
        size = os.fstat(out.fileno()).st_size
        return memoryview(mmap.mmap(out.fileno(), size, access=mmap.ACCESS_READ) if size else b"")


def _most_rows(after: int, upto: int, limit: int | None, span: int | None = None) -> int:
    """The most rows one of the queries of ``_id_ranges`` can select (run ids are unique: no more than its span)."""
    return min(upto - after, (span or CHILD_QUERY_IDS) if limit is None else limit)


def _id_ranges(
    where: str, params: list, after: int, upto: int, limit: int | None, span: int | None = None
) -> list[tuple[str, list]]:
    """SELECTs of the runs with ``after < run_id <= upto`` that ``where`` selects, newest first: one for each
    ``span`` ids (``CHILD_QUERY_IDS`` unless given), so that no read holds a snapshot of the store for long (one
    query when there is a limit)."""
    span = span or CHILD_QUERY_IDS
    where = f"{where} AND" if where else "WHERE"
    select = f"SELECT {SELECT_RUN_FIELDS} FROM runs {where} run_id > ? AND run_id <= ? ORDER BY run_id DESC"
    if limit is not None:
        return [(f"{select} LIMIT ?", [*params, after, upto, limit])]
    tops = range(upto, after, -span) or [upto]  # no ids: one query, of no rows
    return [(select, [*params, max(top - span, after), top]) for top in tops]
