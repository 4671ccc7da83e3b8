"""The embedded default store: one SQLite file in WAL mode (``SQLiteStore``); tables and SQL in ``sqlite_schema``."""

from __future__ import annotations

import json
import logging
import os
import secrets
import sqlite3
from pathlib import Path

from ..errors import JobExists, NbschedError, StoreError, StoreGone
from ..gcpause import gc_paused
from ..model.runs import RUN_FIELDS
from ..model.timeparse import from_iso, iso
from .base import Claim, DeletedRun, RunQuery, Store
from .history.sqlite import Readers, SQLiteHistory
from .purge_sql import newest_kept, oldest_selected
from .safe import safe_record
from .sqlite_schema import (
    ADVANCE_JOB,
    BUMP_GENERATION,
    FILL_JOB_STATE,
    FILL_JOB_UIDS,
    INSERT_RUN,
    JOB_COLUMNS,
    JOB_STATS,
    JOB_TABLES,
    RETRY_COLUMNS,
    RUN_COLUMNS,
    SAVE_RETRY,
    SCHEMA,
    SCHEMA_VERSION,
    SELECT_RUN_FIELDS,
    advance_values,
    fields_of,
    insert_columns_sql,
    job_from_row,
    job_row,
    retry_from_row,
    retry_row,
    run_columns_of,
    run_values,
    runs_from_rows,
    runs_listing,
    to_db,
    values_of,
)

log = logging.getLogger(__name__)
#: Seconds a write waits for a lock another process holds before it fails (with ``StoreError``): short, because
#: the runner writes from its event loop; it keeps what it could not write and tries again (see ``Engine``).
WRITE_BUSY_SECONDS = 1.0
#: Seconds opening the store, and a long read, may wait for such a lock.
OPEN_BUSY_SECONDS = 30.0
#: Pages of write-ahead log after which a connection that deletes runs copies the log into the file.
PURGE_CHECKPOINT_PAGES = 100
#: Bytes the write-ahead log is cut back to whenever a checkpoint has let it start again (``journal_size_limit``):
#: a log grown long behind a reader that held a snapshot does not keep that size on disk.
WAL_LIMIT_BYTES = 64 * 1024 * 1024
#: What a value that SQLite cannot bind raises: text that is not UTF-8, an unsupported type, a huge integer.
_UNBINDABLE = (UnicodeEncodeError, sqlite3.InterfaceError, sqlite3.ProgrammingError, OverflowError)
# bench/ and tests/test_soak.py write runs and jobs straight into a store file with these.
_RUN_COLUMNS, _job_row = RUN_COLUMNS, job_row


class SQLiteStore(Store):
    """Store backed by a SQLite file (WAL journal, busy timeout, schema version checked).

    A write that fails for a reason of the file (locked by another process for longer than ``busy_timeout``
    seconds, disk full, read-only, I/O error) raises ``StoreError`` and changes nothing. The file's identity
    (device and inode) is noted at open and checked before each write: once the file is deleted or replaced,
    every write raises ``StoreGone`` instead of going into a file no one will read again.
    """

    def __init__(self, path: str | Path, busy_timeout: float = WRITE_BUSY_SECONDS):
        self.path = str(path)
        self.db = connect(self.path)
        self._identity = _file_identity(self.path)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(SCHEMA)  # idempotent; executescript commits on its own
        with self._tx():
            self._check_version()
        self.db.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        self._readers = Readers(lambda: connect(self.path))

    def check(self) -> None:
        if self._identity is None:
            return  # in memory, or a path that had no file to note
        try:
            now = _file_identity(self.path, missing_ok=False)
        except FileNotFoundError:
            raise StoreGone(
                f"The store file {self.path} was deleted while the runner was using it; the runner has stopped "
                "firing and writes nothing more; a restarted runner starts with a new, empty store."
            ) from None
        if now != self._identity:
            raise StoreGone(
                f"The store file {self.path} was replaced by another file while the runner was using it; the runner "
                "has stopped firing and writes nothing more; a restarted runner uses the new file."
            )

    def history(self) -> SQLiteHistory:
        """A reader on a connection of its own, for a long read in another thread (WAL: readers never block
        the writer): rows as the file holds them, long listings from the Arrow files of ``history.cache``."""
        self.check()  # opening a deleted store's path would make a new, empty file there
        return SQLiteHistory(self.path, self._readers.take(), self._readers)

    def _check_version(self) -> None:
        # An id of its own: the runs cache's files belong to this store, not to one later made at the same path.
        self.db.execute("INSERT OR IGNORE INTO meta VALUES ('store_id', ?)", (secrets.token_hex(8),))
        row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is not None and int(row[0]) > SCHEMA_VERSION:
            raise NbschedError(
                f"The store {self.path} has schema version {row[0]}, newer than this nbsched "
                f"understands ({SCHEMA_VERSION}). Upgrade nbsched: pip install -U nbsched."
            )
        if row is None or int(row[0]) < SCHEMA_VERSION:
            self.db.execute(FILL_JOB_STATE)  # version 1 kept the jobs' state in their own rows
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        if self.db.execute("SELECT 1 FROM meta WHERE key='runs_job_uid'").fetchone() is None:
            self.db.execute(FILL_JOB_UIDS)
            self.db.execute("INSERT INTO meta VALUES ('runs_job_uid', '1')")

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
                    job_row(job),
                )
        except sqlite3.IntegrityError:
            raise JobExists(
                f"A job named {job.spec.name!r} exists already; choose another name or update it instead."
            ) from None

    def save_job(self, job):
        _name, uid, spec, fires, next_fire, last_fire, note, _ = job_row(job)
        with self._tx():
            self.db.execute(
                "UPDATE jobs SET spec=?, fires=?, next_fire=?, last_fire=?, paused_note=? WHERE uid=?",
                (spec, fires, next_fire, last_fire, note, uid),
            )

    def delete_job(self, name):
        with self._tx():
            return self.db.execute("DELETE FROM jobs WHERE name=?", (name,)).rowcount > 0

    def job(self, name):
        row = self.db.execute(f"SELECT {JOB_COLUMNS} FROM {JOB_TABLES} WHERE j.name=?", (name,)).fetchone()
        return None if row is None else job_from_row(row)

    def jobs(self):
        rows = self.db.execute(f"SELECT {JOB_COLUMNS} FROM {JOB_TABLES} ORDER BY j.name")
        return [job_from_row(row) for row in rows]

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
        advanced = self.db.executemany(ADVANCE_JOB, [advance_values(claim) for claim in claims]).rowcount
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
                columns = run_columns_of(tuple(run))
                groups.setdefault(columns, []).append(
                    (run_id, claim.job_uid, *values_of(columns, shared_times=True)(run))
                )
        for columns, rows in groups.items():
            self.db.executemany(insert_columns_sql(columns), rows)
        return results

    def _claim_one_by_one(self, claims: list[Claim]) -> list[list[int] | None]:
        results: list[list[int] | None] = []
        with self._tx():
            for claim in claims:
                self.db.execute("SAVEPOINT claim")
                try:
                    results.append(self._claim_one(claim))
                except sqlite3.IntegrityError:
                    self.db.execute("ROLLBACK TO claim")
                    results.append(None)  # the fire was claimed before (unique key)
                self.db.execute("RELEASE claim")
        return results

    def _claim_one(self, claim: Claim) -> list[int] | None:
        advanced = self.db.execute(ADVANCE_JOB, advance_values(claim)).rowcount
        if not advanced:
            return None
        return [
            self.db.execute(INSERT_RUN, run_values({**run, "job_uid": claim.job_uid})).lastrowid for run in claim.runs
        ]

    def job_stats(self):
        rows = self.db.execute(JOB_STATS)
        return {uid: {"runs": n, "last_status": status, "last_run": from_iso(when)} for uid, n, status, when in rows}

    def add_runs(self, runs, retried=()):
        try:
            return self._add_runs(runs, retried)
        except _UNBINDABLE:
            return self._add_runs([safe_record(run) for run in runs], retried)

    def _add_runs(self, runs: list[dict], retried) -> list[int]:
        try:
            with self._tx():
                ids = self._insert_runs([run_values(run) for run in runs])
                if retried:
                    self.db.executemany("DELETE FROM retries WHERE run_id=?", [(run_id,) for run_id in retried])
                return ids
        except sqlite3.IntegrityError:  # runs_fire_key: the only unique key a run has besides its id
            raise ValueError("A run of a fire that has its run already; claim fires with Store.claim.") from None

    def _insert_runs(self, rows: list[list]) -> list[int]:
        """Insert runs in one statement; their ids. Inside the write transaction nobody else inserts, and SQLite
        gives each new row the largest rowid so far plus one: the ids are consecutive, the last one's known."""
        if len(rows) <= 1:
            return [self.db.execute(INSERT_RUN, row).lastrowid for row in rows]
        self.db.executemany(INSERT_RUN, rows)
        (last,) = self.db.execute("SELECT last_insert_rowid()").fetchone()
        return list(range(last - len(rows) + 1, last + 1))

    def update_runs(self, updates, retries=()):
        try:
            self._update_runs(updates, retries)
        except _UNBINDABLE:  # checked here, not on every value: the usual batch is bound as it is
            self._update_runs([safe_record(update) for update in updates], retries)

    def _update_runs(self, updates: list[dict], retries) -> None:
        # Updates with the same fields (every finished run has the same) go in one executemany.
        groups: dict[tuple[str, ...], list[list]] = {}
        for update in updates:
            fields = fields_of(tuple(update))
            if fields:
                values = values_of(fields)(update)
                values.append(update["run_id"])
                groups.setdefault(fields, []).append(values)
        with self._tx():
            for fields, rows in groups.items():
                assignments = ", ".join(f'"{key}"=?' for key in fields)
                self.db.executemany(f"UPDATE runs SET {assignments} WHERE run_id=?", rows)
            if retries:
                self.db.executemany(SAVE_RETRY, [retry_row(retry) for retry in retries])

    def pending_retries(self):
        rows = self.db.execute(f"SELECT {RETRY_COLUMNS} FROM retries ORDER BY due_at, run_id").fetchall()
        return [retry_from_row(row) for row in rows]

    def run(self, run_id):
        rows = self.db.execute(f"SELECT {SELECT_RUN_FIELDS} FROM runs WHERE run_id=?", (run_id,)).fetchall()
        return dict(zip(RUN_FIELDS, runs_from_rows(rows)[0], strict=True)) if rows else None

    def runs(self, query=None):
        where, params = runs_listing(query or RunQuery())
        with gc_paused():  # a million-row fetch allocates millions of tuples: no GC passes meanwhile
            return runs_from_rows(self.db.execute(f"SELECT {SELECT_RUN_FIELDS} FROM runs {where}", params).fetchall())

    def load_runs(self, runs):
        columns = tuple(name for name in RUN_FIELDS[1:] if name != "job_uid")
        rows = [(run["run_id"], run.get("job_uid"), *[to_db(run.get(name)) for name in columns]) for run in runs]
        with self._tx():
            self.db.executemany(insert_columns_sql(columns), rows)
            self.db.execute(BUMP_GENERATION)  # ids of their own may fall between those the runs cache holds

    def delete_runs(self, purge, limit):
        # The ids are read outside the write transaction (WAL: no lock), so the lock is held for the delete only.
        # This connection's commits copy the log into the file every 100 pages: the purge does that work, not a
        # commit of the runner's (which would at 1000 pages, SQLite's default).
        self.db.execute(f"PRAGMA wal_autocheckpoint={PURGE_CHECKPOINT_PAGES}")
        below = None
        if purge.keep is not None:
            row = self.db.execute(*newest_kept(purge, "?", iso)).fetchone()
            if row is None:
                return []
            below = row[0]
        ids = [row[0] for row in self.db.execute(*oldest_selected(purge, "?", iso, below, limit))]
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        with self._tx():  # the trigger runs_changed_deleted records each run for the runs cache
            rows = self.db.execute(
                f"DELETE FROM runs WHERE run_id IN ({marks}) AND status <> 'running' RETURNING run_id, job, output", ids
            ).fetchall()

        return [DeletedRun(*row) for row in sorted(rows)]

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
        self._readers.close()
        self.db.close()


def connect(path: str) -> sqlite3.Connection:
    """A connection to the store file at ``path`` that commits only when told and waits for locks."""
    db = sqlite3.connect(path, timeout=OPEN_BUSY_SECONDS, isolation_level=None, check_same_thread=False)
    db.execute(f"PRAGMA busy_timeout={int(OPEN_BUSY_SECONDS * 1000)}")
    return db


class _LostRace(Exception):
    """A batch of claims in which at least one lost: roll back and claim one by one."""


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
        f"The store {path} could not be written ({exc}); nothing was changed. Try again once it can be written."
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
