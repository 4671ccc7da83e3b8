"""The embedded default store: one SQLite file in WAL mode."""

from __future__ import annotations

import functools
import json
import logging
import os
import secrets
import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from ..errors import JobExists, NbschedError, StoreError, StoreGone
from ..model.jobs import JobSpec, JobState
from ..model.runs import CLAIMED_TRIGGERS, RUN_FIELDS, RUN_TIME_FIELDS
from ..model.timeparse import from_iso, iso
from ..protocol import gc_paused
from .base import (
    Claim,
    PendingRetry,
    Store,
    StoredJob,
    arrow_stream,
    rows_table,
    safe_value,
    typed_runs,
)
from .history.cache import RunsCache, filtered

log = logging.getLogger(__name__)
SCHEMA_VERSION = 1
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sources (
    version TEXT PRIMARY KEY, origin TEXT NOT NULL, source TEXT NOT NULL, deployed_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS services (
    name TEXT PRIMARY KEY, version TEXT NOT NULL REFERENCES sources(version),
    class_name TEXT NOT NULL, deployed_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    name TEXT PRIMARY KEY, uid TEXT NOT NULL UNIQUE, spec TEXT NOT NULL,
    fires INTEGER NOT NULL DEFAULT 0, next_fire TEXT, last_fire TEXT,
    paused_note TEXT NOT NULL DEFAULT '', created_at TEXT);
CREATE TABLE IF NOT EXISTS runs (
    run_id INTEGER PRIMARY KEY, job_uid TEXT,
    cid TEXT, job TEXT, service TEXT, service_version TEXT, "trigger" TEXT, attempt INTEGER,
    status TEXT, scheduled_at TEXT, started_at TEXT, finished_at TEXT, delay_ms REAL,
    duration_ms REAL, error TEXT, traceback TEXT, output TEXT, logs TEXT, runner TEXT);
-- One run per fire. Time first: the fires of one batch sit side by side in the index, so a
-- claim batch writes a few index pages instead of one per job (version 1 had job_uid first).
DROP INDEX IF EXISTS runs_one_per_fire;
CREATE UNIQUE INDEX IF NOT EXISTS runs_fire_key ON runs (scheduled_at, job_uid, "trigger")
    WHERE attempt = 1 AND "trigger" IN {CLAIMED_TRIGGERS!r};
CREATE INDEX IF NOT EXISTS runs_by_job ON runs (job, run_id);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status, run_id);
-- Finished runs never change, so runs_cache keeps them as Arrow files; a run deleted, or changed after
-- it finished (by hand, say), counts in meta's runs_generation, and the cache reads everything again.
INSERT OR IGNORE INTO meta VALUES ('runs_generation', '0');
CREATE TRIGGER IF NOT EXISTS runs_deleted AFTER DELETE ON runs BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'runs_generation'; END;
CREATE TRIGGER IF NOT EXISTS runs_rewritten AFTER UPDATE ON runs WHEN OLD.status IS NOT 'running' BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'runs_generation'; END;
CREATE TABLE IF NOT EXISTS connections (
    name TEXT PRIMARY KEY, kind TEXT NOT NULL, definition TEXT NOT NULL, updated_at TEXT NOT NULL);
-- Failed runs whose next attempt waits for its time (run_id: the failed run), kept across restarts.
CREATE TABLE IF NOT EXISTS retries (
    run_id INTEGER PRIMARY KEY, job TEXT, service TEXT NOT NULL, attempt INTEGER NOT NULL,
    retries INTEGER NOT NULL, scheduled_at TEXT NOT NULL, due_at TEXT NOT NULL, channel TEXT NOT NULL);
"""
_RUN_COLUMNS = ("job_uid", *RUN_FIELDS[1:])
#: Seconds a write waits for a lock another process holds before it fails (with ``StoreError``): short, because
#: the runner writes from its event loop; it keeps what it could not write and tries again (see ``Engine``).
WRITE_BUSY_SECONDS = 1.0
#: Seconds opening the store, and a long read, may wait for such a lock.
OPEN_BUSY_SECONDS = 30.0
#: What a value that SQLite cannot bind raises: text that is not UTF-8, an unsupported type, a huge integer.
_UNBINDABLE = (UnicodeEncodeError, sqlite3.InterfaceError, sqlite3.ProgrammingError, OverflowError)


class SQLiteStore(Store):
    """Store backed by a SQLite file (WAL journal, busy timeout, schema version checked).

    A write that fails for a reason of the file (locked by another process for longer than ``busy_timeout``
    seconds, disk full, read-only, I/O error) raises ``StoreError`` and changes nothing. The file's identity
    (device and inode) is noted at open and checked before each write: once the file is deleted or replaced,
    every write raises ``StoreGone`` instead of going into a file no one will read again.
    """

    def __init__(self, path: str | Path, for_reading: bool = False, busy_timeout: float = WRITE_BUSY_SECONDS):
        self.path = str(path)
        self.db = sqlite3.connect(self.path, timeout=OPEN_BUSY_SECONDS, isolation_level=None, check_same_thread=False)
        self.db.execute(f"PRAGMA busy_timeout={int(OPEN_BUSY_SECONDS * 1000)}")
        self._identity = _file_identity(self.path)
        if for_reading:
            return  # a second connection for long reads: the schema is there already
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(_SCHEMA)  # idempotent; executescript commits on its own
        with self._tx():
            self._check_version()
        self.db.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")

    def check(self) -> None:
        if self._identity is None:
            return  # in memory, or a path that had no file to note
        try:
            now = _file_identity(self.path, missing_ok=False)
        except FileNotFoundError:
            raise StoreGone(
                f"The store file {self.path} was deleted while the runner was using it; the runner has stopped "
                "firing and writes nothing more. Restart it (nbsched runner restart) to start with a new, empty store."
            ) from None
        if now != self._identity:
            raise StoreGone(
                f"The store file {self.path} was replaced by another file while the runner was using it; the runner "
                "has stopped firing and writes nothing more. Restart it (nbsched runner restart) to use the new file."
            )

    def reader(self) -> SQLiteStore:
        """A connection of its own for a long read in another thread (WAL: readers never block the writer)."""
        self.check()  # opening a deleted store's path would make a new, empty file there
        return SQLiteStore(self.path, for_reading=True)

    def _check_version(self) -> None:
        # An id of its own: the runs cache's files belong to this store, not to one later made at the same path.
        self.db.execute("INSERT OR IGNORE INTO meta VALUES ('store_id', ?)", (secrets.token_hex(8),))
        row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            self.db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        elif int(row[0]) > SCHEMA_VERSION:
            raise NbschedError(
                f"The store {self.path} has schema version {row[0]}, newer than this nbsched "
                f"understands ({SCHEMA_VERSION}). Upgrade nbsched: pip install -U nbsched."
            )

    def _tx(self):
        return _Transaction(self)

    # -- services ---------------------------------------------------------------
    def save_source(self, version, origin, source, services, now):
        with self._tx():
            self.db.execute("INSERT OR IGNORE INTO sources VALUES (?, ?, ?, ?)", (version, origin, source, iso(now)))
            self.db.executemany(
                "INSERT OR REPLACE INTO services VALUES (?, ?, ?, ?)",
                [(name, version, class_name, iso(now)) for name, class_name in services.items()],
            )

    def services(self):
        rows = self.db.execute(
            "SELECT s.name, s.version, s.class_name, src.origin, s.deployed_at "
            "FROM services s JOIN sources src USING (version) ORDER BY s.name"
        ).fetchall()
        keys = ("name", "version", "class_name", "origin", "deployed_at")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def sources(self, versions=None):
        if versions is None:
            query = "SELECT version, source FROM sources WHERE version IN (SELECT version FROM services)"
            return dict(self.db.execute(query).fetchall())
        marks = ",".join("?" * len(versions))
        return dict(self.db.execute(f"SELECT version, source FROM sources WHERE version IN ({marks})", versions))

    # -- jobs -------------------------------------------------------------------
    def add_job(self, job):
        try:
            with self._tx():
                self.db.execute(
                    "INSERT INTO jobs (name, uid, spec, fires, next_fire, last_fire, paused_note, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    _job_row(job),
                )
        except sqlite3.IntegrityError:
            raise JobExists(
                f"A job named {job.spec.name!r} exists already; choose another name or update it instead."
            ) from None

    def save_job(self, job):
        _name, uid, spec, fires, next_fire, last_fire, note, _ = _job_row(job)
        with self._tx():
            self.db.execute(
                "UPDATE jobs SET spec=?, fires=?, next_fire=?, last_fire=?, paused_note=? WHERE uid=?",
                (spec, fires, next_fire, last_fire, note, uid),
            )

    def delete_job(self, name):
        with self._tx():
            return self.db.execute("DELETE FROM jobs WHERE name=?", (name,)).rowcount > 0

    def job(self, name):
        row = self.db.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE name=?", (name,)).fetchone()
        return None if row is None else _job_from_row(row)

    def jobs(self):
        return [_job_from_row(row) for row in self.db.execute(f"SELECT {_JOB_COLUMNS} FROM jobs ORDER BY name")]

    # -- runs -------------------------------------------------------------------
    def claim(self, claims: list[Claim]) -> list[list[int] | None]:
        if not claims:
            return []
        try:
            with self._tx():
                return self._claim_all_or_nothing(claims)
        except _LostRace:
            pass
        except sqlite3.IntegrityError:
            pass
        return self._claim_one_by_one(claims)

    def _claim_all_or_nothing(self, claims: list[Claim]) -> list[list[int] | None]:
        """The fast path: every claim wins (the usual case for the only runner of a home), in two statements."""
        advanced = self.db.executemany(_ADVANCE_JOB, [_advance_values(claim) for claim in claims]).rowcount
        if advanced != len(claims):
            raise _LostRace  # rolls the batch back; the slow path sorts out which claims lost
        (next_id,) = self.db.execute("SELECT COALESCE(MAX(run_id), 0) + 1 FROM runs").fetchone()
        results = []
        # Rows by the fields they have (a new run has ten; the rest stay NULL): one executemany each.
        groups: dict[tuple[str, ...], list[tuple]] = {}
        for claim in claims:
            ids = list(range(next_id, next_id + len(claim.runs)))
            next_id += len(claim.runs)
            results.append(ids)
            for run_id, run in zip(ids, claim.runs, strict=True):
                columns = _run_columns_of(tuple(run))
                groups.setdefault(columns, []).append(
                    (run_id, claim.job_uid, *[_to_db_cached(run[name]) for name in columns])
                )
        for columns, rows in groups.items():
            self.db.executemany(_insert_columns_sql(columns), rows)
        return results

    def _claim_one_by_one(self, claims: list[Claim]) -> list[list[int] | None]:
        results: list[list[int] | None] = []
        insert = _insert_run_sql()
        with self._tx():
            for claim in claims:
                self.db.execute("SAVEPOINT claim")
                try:
                    results.append(self._claim_one(claim, insert))
                except sqlite3.IntegrityError:
                    self.db.execute("ROLLBACK TO claim")
                    results.append(None)  # the fire was claimed before (unique key)
                self.db.execute("RELEASE claim")
        return results

    def _claim_one(self, claim: Claim, insert: str) -> list[int] | None:
        advanced = self.db.execute(_ADVANCE_JOB, _advance_values(claim)).rowcount
        if not advanced:
            return None
        return [self.db.execute(insert, _run_values({**run, "job_uid": claim.job_uid})).lastrowid for run in claim.runs]

    def job_stats(self):
        rows = self.db.execute(
            "SELECT r.job, c.n, r.status, COALESCE(r.started_at, r.scheduled_at) FROM runs r JOIN "
            "(SELECT job, COUNT(*) AS n, MAX(run_id) AS last FROM runs WHERE job IS NOT NULL GROUP BY job) c "
            "ON r.run_id = c.last"
        )
        return {job: {"runs": n, "last_status": status, "last_run": from_iso(when)} for job, n, status, when in rows}

    def add_runs(self, runs, retried=()):
        try:
            return self._add_runs(runs, retried)
        except _UNBINDABLE:
            return self._add_runs([_safe_record(run) for run in runs], retried)

    def _add_runs(self, runs: list[dict], retried) -> list[int]:
        insert = _insert_run_sql()
        with self._tx():
            ids = [self.db.execute(insert, _run_values(run)).lastrowid for run in runs]
            if retried:
                self.db.executemany("DELETE FROM retries WHERE run_id=?", [(run_id,) for run_id in retried])
            return ids

    def update_runs(self, updates, retries=()):
        try:
            self._update_runs(updates, retries)
        except _UNBINDABLE:  # checked here, not on every value: the usual batch is bound as it is
            self._update_runs([_safe_record(update) for update in updates], retries)

    def _update_runs(self, updates: list[dict], retries) -> None:
        # Updates with the same fields (every finished run has the same) go in one executemany.
        groups: dict[tuple[str, ...], list[tuple]] = {}
        for update in updates:
            fields = _fields_of(tuple(update))
            if fields:
                values = [_to_db(update[key]) for key in fields]
                groups.setdefault(fields, []).append((*values, update["run_id"]))
        with self._tx():
            for fields, rows in groups.items():
                assignments = ", ".join(f'"{key}"=?' for key in fields)
                self.db.executemany(f"UPDATE runs SET {assignments} WHERE run_id=?", rows)
            if retries:
                self.db.executemany(_SAVE_RETRY, [_retry_row(retry) for retry in retries])

    def pending_retries(self):
        rows = self.db.execute(f"SELECT {_RETRY_COLUMNS} FROM retries ORDER BY due_at, run_id").fetchall()
        return [_retry_from_row(row) for row in rows]

    def run(self, run_id):
        rows = self._select_runs("WHERE run_id=?", (run_id,), RUN_FIELDS)
        return dict(zip(RUN_FIELDS, rows[0], strict=True)) if rows else None

    def runs(
        self,
        job=None,
        service=None,
        status=None,
        since=None,
        limit=None,
        fields=RUN_FIELDS,
        times_as_text=False,
        due_by=None,
    ):
        where, params = _runs_where(job, service, status, since, limit, due_by)
        return self._select_runs(where, params, fields, convert_times=not times_as_text)

    def runs_table(self, job=None, service=None, status=None, since=None, limit=None, due_by=None) -> bytearray:
        """Up to ``BULK_ROWS`` runs: built from sqlite3 rows here. More: the finished runs come from
        the Arrow files of ``runs_cache``, which a child process writes (``arrow_reader``)."""
        query = {"job": job, "service": service, "status": status, "since": since, "due_by": due_by}
        if (limit is None or limit > BULK_ROWS) and self._more_runs_than(BULK_ROWS, query):
            try:
                return arrow_stream(self._large_runs_table(query, limit))
            except (OSError, NbschedError, ValueError) as exc:  # pyarrow's errors are ValueErrors or OSErrors
                log.warning("the runs cache of %s is not usable (%s); reading the runs from SQLite", self.path, exc)
                where, params = _runs_where(**query, limit=None, ordered=False)
                return self._read_after_in_child(0, where, params, limit)
        return Store.runs_table(self, **query, limit=limit)

    def _more_runs_than(self, rows: int, query: dict) -> bool:
        """Whether a query may select more than ``rows`` runs: counted when it filters, else told by the ids."""
        (span,) = self.db.execute("SELECT COALESCE(MAX(run_id) - MIN(run_id) + 1, 0) FROM runs").fetchone()
        if span <= rows or not any(value is not None for key, value in query.items() if key != "due_by"):
            return span > rows
        where, params = _runs_where(**query, limit=None, ordered=False)
        (count,) = self.db.execute(
            f"SELECT COUNT(*) FROM (SELECT 1 FROM runs {where} LIMIT ?)", [*params, rows + 1]
        ).fetchone()
        return count > rows

    def _large_runs_table(self, query: dict, limit: int | None):
        import pyarrow as pa

        cache = RunsCache.of(self.path)
        with cache.lock:
            cached = cache.cached_tables(self)
            parts = [self._runs_after(cache.upto, query, limit)]
        filters = {key: query[key] for key in ("job", "service", "status", "since")}
        wanted = float("inf") if limit is None else limit
        for table in cached:
            if sum(part.num_rows for part in parts) >= wanted:
                break
            parts.append(filtered(table, **filters))
        table = pa.concat_tables(parts)
        return table if limit is None else table.slice(0, limit)

    def _runs_after(self, after: int, query: dict, limit: int | None):
        """The runs a query selects among those with ids above ``after`` (the ones no cache file holds)."""
        import pyarrow as pa

        where, params = _runs_where(**query, limit=None, ordered=False, after=after)
        (count,) = self.db.execute(f"SELECT COUNT(*) FROM runs {where}", params).fetchone()
        if min(count, BULK_ROWS + 1 if limit is None else limit) > BULK_ROWS:  # a run long left running
            data = self._read_after_in_child(after, where, params, limit)
            return typed_runs(pa.ipc.open_stream(data).read_all(), encode=False)  # plain text, as the files
        where, params = _runs_where(**query, limit=limit, after=after)
        return typed_runs(rows_table(self._select_runs(where, params, RUN_FIELDS, convert_times=False)), encode=False)

    def _read_after_in_child(self, after: int, where: str, params: list, limit: int | None) -> bytearray:
        """The runs above ``after`` that ``where`` selects, as an Arrow stream read by the child process."""
        (highest,) = self.db.execute("SELECT COALESCE(MAX(run_id), 0) FROM runs").fetchone()
        return _read_in_child(self.path, _halves(where, params, after, highest, limit))

    # -- the runs cache (runs_cache.RunsCache calls these) --------------------------
    def run_cids(self, run_ids: list[int]) -> dict[int, str]:
        """The correlation ids of these runs (the runs cache checks its files against them)."""
        marks = ", ".join("?" * len(run_ids))
        return dict(self.db.execute(f"SELECT run_id, cid FROM runs WHERE run_id IN ({marks})", run_ids).fetchall())

    def cache_bounds(self) -> tuple[str, int]:
        """What the cache files of this store's runs are named by (its id and how many times finished runs
        were deleted or changed), and the highest run id up to which every run has finished."""
        store_id, generation, running, highest = self.db.execute(
            "SELECT (SELECT value FROM meta WHERE key='store_id'), "
            "(SELECT value FROM meta WHERE key='runs_generation'), "
            "(SELECT MIN(run_id) FROM runs WHERE status='running'), (SELECT COALESCE(MAX(run_id), 0) FROM runs)"
        ).fetchone()
        return f"{store_id}g{generation}", highest if running is None else running - 1

    def write_runs_file(self, after: int, upto: int, path: Path, background: bool = False) -> None:
        """The runs with ``after < run_id <= upto`` as an Arrow file, read by a child process."""
        _read_in_child(self.path, _halves("", [], after, upto, None), file=path, nice=background)

    def refresh_caches(self) -> None:
        with (cache := RunsCache.of(self.path)).lock:
            cache.cached_tables(self, background=True)

    def _select_runs(self, where, params, fields, convert_times=True):
        columns = ", ".join(f'"{name}"' for name in fields)
        with gc_paused():  # a million-row fetch allocates millions of tuples: no GC passes meanwhile
            rows = self.db.execute(f"SELECT {columns} FROM runs {where}", params).fetchall()
        if not convert_times:
            return rows  # times are stored as UTC ISO text, the very form the wire carries
        time_positions = [i for i, name in enumerate(fields) if name in RUN_TIME_FIELDS]
        if not time_positions:
            return rows
        converted = []
        for row in rows:
            row = list(row)
            for i in time_positions:
                row[i] = from_iso(row[i])
            converted.append(tuple(row))
        return converted

    def interrupt_running(self, now, runner=None):
        query = "UPDATE runs SET status='interrupted', finished_at=?, error=? WHERE status='running'"
        params: list = [iso(now), "The runner stopped while this run was executing."]
        if runner is not None:
            query += " AND runner=?"
            params.append(runner)
        with self._tx():
            return self.db.execute(query, params).rowcount

    # -- connections --------------------------------------------------------------
    def save_connection(self, name, kind, definition, now):
        with self._tx():
            self.db.execute(
                "INSERT OR REPLACE INTO connections VALUES (?, ?, ?, ?)", (name, kind, json.dumps(definition), iso(now))
            )

    def connections(self):
        rows = self.db.execute("SELECT name, kind, definition, updated_at FROM connections ORDER BY name")
        return [
            {"name": name, "kind": kind, "definition": json.loads(definition), "updated_at": from_iso(updated)}
            for name, kind, definition, updated in rows
        ]

    def delete_connection(self, name):
        with self._tx():
            return self.db.execute("DELETE FROM connections WHERE name=?", (name,)).rowcount > 0

    def close(self):
        self.db.close()


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on error; nests as a no-op.

    The store's file is checked first (``SQLiteStore.check``). An error of the file (``OperationalError``:
    locked, full, read-only, I/O) comes out as ``StoreError``; whatever failed, the transaction is over when
    this returns, so that the next one does not take itself for a nested one and never commit.
    """

    def __init__(self, store: SQLiteStore):
        self.store = store
        self.db = store.db
        self.outer = False

    def __enter__(self):
        if not self.db.in_transaction:
            self.store.check()
            try:
                self.db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise _store_error(self.store.path, exc) from exc
            self.outer = True
        return self.db

    def __exit__(self, exc_type, exc, tb):
        if not self.outer:
            return False
        if exc_type is None:
            try:
                self.db.execute("COMMIT")
                return False
            except sqlite3.Error as commit_error:
                self._rollback()
                if isinstance(commit_error, sqlite3.OperationalError):
                    raise _store_error(self.store.path, commit_error) from commit_error
                raise
        self._rollback()
        if isinstance(exc, sqlite3.OperationalError):
            raise _store_error(self.store.path, exc) from exc
        return False

    def _rollback(self) -> None:
        if self.db.in_transaction:  # SQLite may have rolled back already (disk full, I/O error)
            try:
                self.db.execute("ROLLBACK")
            except sqlite3.Error:
                log.exception("rolling back a failed transaction of %s failed", self.store.path)


def _store_error(path: str, exc: sqlite3.OperationalError) -> StoreError:
    return StoreError(
        f"The store {path} could not be written ({exc}); nothing was changed. Try again once it can be "
        "written; nbsched runner status shows the store's errors."
    )


def _file_identity(path: str, missing_ok: bool = True) -> tuple[int, int] | None:
    """The device and inode of the file at ``path`` (None for an in-memory database, or no file)."""
    if path == ":memory:" or path.startswith("file:"):
        return None
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if missing_ok:
            return None
        raise
    return info.st_dev, info.st_ino


_RETRY_COLUMNS = "run_id, job, service, attempt, retries, scheduled_at, due_at, channel"
_SAVE_RETRY = f"INSERT OR REPLACE INTO retries ({_RETRY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"


def _retry_row(retry: PendingRetry) -> tuple:
    return (
        retry.run_id,
        retry.job,
        retry.service,
        retry.attempt,
        retry.retries,
        iso(retry.scheduled_at),
        iso(retry.due_at),
        retry.channel,
    )


def _retry_from_row(row: tuple) -> PendingRetry:
    run_id, job, service, attempt, retries, scheduled_at, due_at, channel = row
    return PendingRetry(run_id, job, service, attempt, retries, from_iso(scheduled_at), from_iso(due_at), channel)


def _safe_record(record: dict) -> dict:
    """A run or an update of one, every value in a form SQLite can hold (see ``safe_value``)."""
    return {key: safe_value(value) for key, value in record.items()}


_JOB_COLUMNS = "name, uid, spec, fires, next_fire, last_fire, paused_note, created_at"


def _job_row(job: StoredJob) -> tuple:
    state = job.state
    return (
        job.spec.name,
        job.uid,
        json.dumps(job.spec.to_record()),
        state.fires,
        iso(state.next_fire),
        iso(state.last_fire),
        state.paused_note,
        iso(state.created_at),
    )


def _job_from_row(row: tuple) -> StoredJob:
    _, uid, spec, fires, next_fire, last_fire, note, created_at = row
    state = JobState(
        fires=fires,
        next_fire=from_iso(next_fire),
        last_fire=from_iso(last_fire),
        paused_note=note,
        created_at=from_iso(created_at),
    )
    return StoredJob(uid=uid, spec=JobSpec.from_record(json.loads(spec)), state=state)


class _LostRace(Exception):
    """A batch of claims in which at least one lost: roll back and claim one by one."""


_ADVANCE_JOB = "UPDATE jobs SET next_fire=?, fires=?, last_fire=COALESCE(?, last_fire) WHERE uid=? AND next_fire IS ?"


def _advance_values(claim: Claim) -> tuple:
    runs = claim.runs
    last = runs[0]["scheduled_at"] if len(runs) == 1 else max((run["scheduled_at"] for run in runs), default=None)
    return (
        _iso_or_none(claim.new_next),
        claim.fires,
        _iso_or_none(last),
        claim.job_uid,
        _iso_or_none(claim.expected_next),
    )


@functools.lru_cache(maxsize=64)
def _run_columns_of(keys: tuple[str, ...]) -> tuple[str, ...]:
    """The keys of a run record that are columns of the runs table, in the record's order."""
    return tuple(key for key in keys if key in _RUN_COLUMNS and key != "job_uid")


@functools.lru_cache(maxsize=64)
def _insert_columns_sql(columns: tuple[str, ...]) -> str:
    """INSERT of a run with its id, its job's uid and ``columns``; the others stay NULL."""
    names = ", ".join(f'"{name}"' for name in ("run_id", "job_uid", *columns))
    return f"INSERT INTO runs ({names}) VALUES ({', '.join('?' * (len(columns) + 2))})"


def _to_db_cached(value):
    """A value as stored; times through the small cache of ISO texts."""
    return _iso_cached(value) if isinstance(value, datetime) else value


#: Above this many runs, a runs table is read by a child process with ADBC (see ``runs_table``).
BULK_ROWS = 50_000
#: Seconds that child process may take.
CHILD_TIMEOUT = 600


def _read_in_child(path: str, queries: list[tuple[str, list]], file: Path | None = None, nice=False) -> bytearray:
    """What ``arrow_reader`` read for ``queries``: an Arrow stream, or (given ``file``) an Arrow file written
    there; ``nice``: at a low CPU priority (work no one waits for)."""
    request = {"path": path, "queries": queries, "file": None if file is None else str(file), "nice": nice}
    request = json.dumps(request).encode()
    command = [sys.executable, "-m", "nbsched.store.history.reader"]
    try:
        done = subprocess.run(command, input=request, capture_output=True, timeout=CHILD_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise NbschedError(
            f"Reading the history into Arrow took longer than {CHILD_TIMEOUT} s; ask for less, e.g. a limit."
        ) from None
    if done.returncode != 0:
        reason = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
        raise NbschedError(f"Reading the history into Arrow failed: {reason[0]}")
    return bytearray(done.stdout)


def _halves(where: str, params: list, after: int, upto: int, limit: int | None) -> list[tuple[str, list]]:
    """SELECTs of the runs with ``after < run_id <= upto`` that ``where`` selects, newest first: two halves
    of the ids, which the child reads on two connections at once (one query when there is a limit)."""
    columns = ", ".join(f'"{name}"' for name in RUN_FIELDS)
    where = f"{where} AND" if where else "WHERE"
    select = f"SELECT {columns} FROM runs {where} run_id > ? AND run_id <= ? ORDER BY run_id DESC"
    if limit is not None:
        return [(f"{select} LIMIT ?", [*params, after, upto, limit])]
    middle = (after + upto) // 2
    return [(select, [*params, middle, upto]), (select, [*params, after, middle])]


def _runs_where(job, service, status, since, limit, due_by, ordered=True, after=None) -> tuple[str, list]:
    """The WHERE / ORDER BY / LIMIT of a runs listing, newest first, and its parameters."""
    clauses, params = [], []
    if after is not None:
        clauses.append("run_id > ?")
        params.append(after)
    if due_by is not None:
        clauses.append("(status != 'running' OR scheduled_at <= ?)")
        params.append(iso(due_by))
    for column, value in (("job", job), ("service", service), ("status", status)):
        if value is not None:
            clauses.append(f"{column}=?")
            params.append(value)
    if since is not None:
        clauses.append("COALESCE(started_at, scheduled_at) >= ?")
        params.append(iso(since))
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    if not ordered:
        return where, params
    where += " ORDER BY run_id DESC"
    if limit is not None:
        where += " LIMIT ?"
        params.append(int(limit))
    return where, params


def _insert_run_sql() -> str:
    columns = ", ".join(f'"{name}"' for name in _RUN_COLUMNS)
    return f"INSERT INTO runs ({columns}) VALUES ({', '.join('?' * len(_RUN_COLUMNS))})"


_TIME_POSITIONS = [i for i, name in enumerate(_RUN_COLUMNS) if name in RUN_TIME_FIELDS]


def _run_values(run: dict) -> list:
    values = [run.get(name) for name in _RUN_COLUMNS]
    for i in _TIME_POSITIONS:
        if values[i] is not None:
            values[i] = _iso_cached(values[i])
    return values


def _iso_or_none(moment: datetime | None) -> str | None:
    return None if moment is None else _iso_cached(moment)


@functools.lru_cache(maxsize=4096)
def _iso_cached(moment: datetime) -> str:
    """ISO text of a UTC time; aligned fires share their times, so a small cache saves most conversions."""
    return iso(moment)


def _to_db(value):
    return iso(value) if isinstance(value, datetime) else value


@functools.lru_cache(maxsize=64)
def _fields_of(keys: tuple[str, ...]) -> tuple[str, ...]:
    """The fields an update of a run sets (all its keys but the run id)."""
    return tuple(key for key in keys if key != "run_id")
