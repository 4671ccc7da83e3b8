"""The SQLite store's tables and how records become rows and back: the schema, the SQL, the conversions.

Times are stored as UTC ISO 8601 text (``model.timeparse.iso``), which sorts and compares as the times do.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import datetime
from operator import itemgetter

from ..model.jobs import JobSpec, JobState
from ..model.runs import CLAIMED_TRIGGERS, RUN_FIELDS, RUN_TIME_FIELDS
from ..model.timeparse import from_iso, iso
from .base import Claim, PendingRetry, RunQuery, StoredJob

SCHEMA_VERSION = 2
SCHEMA = f"""
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
-- A job's runs, by its name and its own uid (a job made under the name of a deleted one has runs of its own).
DROP INDEX IF EXISTS runs_by_job;
CREATE INDEX IF NOT EXISTS runs_by_job_uid ON runs (job, job_uid, run_id);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status, run_id);
-- Finished runs seldom change, so runs_cache keeps them as Arrow files. A run deleted, or changed after it finished
-- (a purge, a notification failure added to its logs, by hand), gets a row in runs_changed, numbered in the order
-- of the changes (seq, never reused): a long read leaves those runs out of the files and reads them from runs, and
-- the cache forgets a row once every file that holds its run was written after it. A change that is not recorded
-- by run id (runs loaded with ids of their own) counts in meta's runs_generation: the cache reads everything again.
INSERT OR IGNORE INTO meta VALUES ('runs_generation', '0');
CREATE TABLE IF NOT EXISTS runs_changed (seq INTEGER PRIMARY KEY AUTOINCREMENT, run_id INTEGER NOT NULL);
-- Before runs_changed, triggers counted every such change in runs_generation (the whole cache read again after a
-- purge step). An older nbsched makes them again when it opens the store: then both count, which is safe (its
-- cache files and these have names of their own, by runs_cache's CACHE_FORMAT), until this one drops them again.
-- Dropping them counts once in runs_generation: the runs this one deletes or changes no longer count there, so
-- that an older nbsched started again on this store (a downgrade) reads its own files again, not the runs deleted.
UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'runs_generation' AND EXISTS (SELECT 1 FROM
    sqlite_master WHERE type = 'trigger' AND name IN ('runs_deleted', 'runs_deleted_one_by_one', 'runs_rewritten'));
DROP TRIGGER IF EXISTS runs_deleted;
DROP TRIGGER IF EXISTS runs_deleted_one_by_one;
DROP TRIGGER IF EXISTS runs_rewritten;
CREATE TRIGGER IF NOT EXISTS runs_changed_deleted AFTER DELETE ON runs BEGIN
    INSERT INTO runs_changed (run_id) VALUES (OLD.run_id); END;
-- A run put in below the newest (by hand: a run put back from a backup, say; a new run's id is above all others,
-- and runs loaded with ids of their own count in runs_generation) may fall in a span the cache's files hold.
CREATE TRIGGER IF NOT EXISTS runs_changed_inserted AFTER INSERT ON runs
    WHEN EXISTS (SELECT 1 FROM runs WHERE run_id > NEW.run_id) BEGIN
    INSERT INTO runs_changed (run_id) VALUES (NEW.run_id); END;
CREATE TRIGGER IF NOT EXISTS runs_changed_updated AFTER UPDATE ON runs
    WHEN OLD.status IS NOT 'running' OR NEW.run_id IS NOT OLD.run_id BEGIN
    INSERT INTO runs_changed (run_id) SELECT OLD.run_id UNION SELECT NEW.run_id; END;
-- What a claim changes of a job (its next fire, how many fires, its last), apart from its definition: a claim
-- rewrites a row of ~60 bytes, not the job's row with its spec (10x fewer pages written per claim batch).
-- Version 1 kept these in jobs' own columns; jobs' columns still take them when a job is written (the
-- triggers copy them here), and are stale after the job's first claim: read them from job_state.
CREATE TABLE IF NOT EXISTS job_state (
    uid TEXT PRIMARY KEY, fires INTEGER NOT NULL DEFAULT 0, next_fire TEXT, last_fire TEXT) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS job_state_added AFTER INSERT ON jobs BEGIN
    INSERT OR REPLACE INTO job_state VALUES (NEW.uid, NEW.fires, NEW.next_fire, NEW.last_fire); END;
CREATE TRIGGER IF NOT EXISTS job_state_saved AFTER UPDATE OF fires, next_fire, last_fire ON jobs BEGIN
    UPDATE job_state SET fires = NEW.fires, next_fire = NEW.next_fire, last_fire = NEW.last_fire
    WHERE uid = NEW.uid; END;
CREATE TRIGGER IF NOT EXISTS job_state_deleted AFTER DELETE ON jobs BEGIN
    DELETE FROM job_state WHERE uid = OLD.uid; END;
CREATE TABLE IF NOT EXISTS connections (
    name TEXT PRIMARY KEY, kind TEXT NOT NULL, definition TEXT NOT NULL, updated_at TEXT NOT NULL);
-- Failed runs whose next attempt waits for its time (run_id: the failed run), kept across restarts.
CREATE TABLE IF NOT EXISTS retries (
    run_id INTEGER PRIMARY KEY, job TEXT, service TEXT NOT NULL, attempt INTEGER NOT NULL,
    retries INTEGER NOT NULL, scheduled_at TEXT NOT NULL, due_at TEXT NOT NULL, channel TEXT NOT NULL);
"""
#: A change of runs the triggers above do not record (runs loaded with their own ids): the runs cache reads all again.
BUMP_GENERATION = "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'runs_generation'"
#: The columns of the runs table a new run fills (all but ``run_id``).
RUN_COLUMNS = RUN_FIELDS[1:]
#: Fills in ``job_uid`` of runs recorded before runs of every kind carried it (manual runs, retries): the uid of
#: the job that has the run's name, if the job was made before the run. Once per store (meta ``runs_job_uid``).
FILL_JOB_UIDS = """
UPDATE runs SET job_uid = (SELECT uid FROM jobs WHERE jobs.name = runs.job
    AND (jobs.created_at IS NULL OR jobs.created_at <= COALESCE(runs.started_at, runs.scheduled_at)))
WHERE job_uid IS NULL AND job IS NOT NULL"""
#: The run fields as a SELECT's column list.
SELECT_RUN_FIELDS = ", ".join(f'"{name}"' for name in RUN_FIELDS)


# -- jobs -----------------------------------------------------------------------
#: A job's columns, its state from ``job_state``: ``SELECT {JOB_COLUMNS} FROM {JOB_TABLES}``.
JOB_COLUMNS = "j.name, j.uid, j.spec, s.fires, s.next_fire, s.last_fire, j.paused_note, j.created_at"
JOB_TABLES = "jobs j JOIN job_state s USING (uid)"
#: Version 1 to 2: the jobs' state moves to ``job_state`` (once per store).
FILL_JOB_STATE = "INSERT OR IGNORE INTO job_state SELECT uid, fires, next_fire, last_fire FROM jobs"


def job_row(job: StoredJob) -> tuple:
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


def job_from_row(row: tuple) -> StoredJob:
    _, uid, spec, fires, next_fire, last_fire, note, created_at = row
    state = JobState(
        fires=fires,
        next_fire=from_iso(next_fire),
        last_fire=from_iso(last_fire),
        paused_note=note,
        created_at=from_iso(created_at),
    )
    return StoredJob(uid=uid, spec=JobSpec.from_record(json.loads(spec)), state=state)


# -- retries ----------------------------------------------------------------------
RETRY_COLUMNS = "run_id, job, service, attempt, retries, scheduled_at, due_at, channel"
SAVE_RETRY = f"INSERT OR REPLACE INTO retries ({RETRY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"


def retry_row(retry: PendingRetry) -> tuple:
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


def retry_from_row(row: tuple) -> PendingRetry:
    run_id, job, service, attempt, retries, scheduled_at, due_at, channel = row
    return PendingRetry(run_id, job, service, attempt, retries, from_iso(scheduled_at), from_iso(due_at), channel)


#: Per job uid with runs: how many, and its newest run's status and time (``Store.job_stats``).
JOB_STATS = (
    "SELECT r.job_uid, c.n, r.status, COALESCE(r.started_at, r.scheduled_at) FROM runs r JOIN "
    "(SELECT COUNT(*) AS n, MAX(run_id) AS last FROM runs WHERE job IS NOT NULL AND job_uid IS NOT NULL "
    "GROUP BY job, job_uid) c ON r.run_id = c.last"
)


# -- claims -----------------------------------------------------------------------
ADVANCE_JOB = (
    "UPDATE job_state SET next_fire=?, fires=?, last_fire=COALESCE(?, last_fire) WHERE uid=? AND next_fire IS ?"
)


def advance_values(claim: Claim) -> tuple:
    runs = claim.runs
    last = runs[0]["scheduled_at"] if len(runs) == 1 else max((run["scheduled_at"] for run in runs), default=None)
    return (
        iso_or_none(claim.new_next),
        claim.fires,
        iso_or_none(last),
        claim.job_uid,
        iso_or_none(claim.expected_next),
    )


@functools.lru_cache(maxsize=64)
def run_columns_of(keys: tuple[str, ...]) -> tuple[str, ...]:
    """The keys of a run record that are columns of the runs table, in the record's order."""
    return tuple(key for key in keys if key in RUN_COLUMNS and key != "job_uid")


@functools.lru_cache(maxsize=64)
def values_of(keys: tuple[str, ...], shared_times: bool = False) -> Callable[[dict], list]:
    """What takes the values of ``keys`` out of a record, in their order, its times as stored: one C call for
    the values (``itemgetter``), a conversion for the times only. Records of one shape share it (the cache).
    ``shared_times``: the records' times repeat (the fires of a batch): their texts come from a small cache."""
    text = iso_cached if shared_times else iso
    get = itemgetter(*keys) if len(keys) > 1 else (lambda record, key=keys[0] if keys else None: (record[key],))
    times = [i for i, key in enumerate(keys) if key in RUN_TIME_FIELDS]

    def values(record: dict) -> list:
        row = list(get(record)) if keys else []
        for i in times:
            moment = row[i]
            if moment is not None and not isinstance(moment, str):
                row[i] = text(moment)
        return row

    return values


@functools.lru_cache(maxsize=64)
def insert_columns_sql(columns: tuple[str, ...]) -> str:
    """INSERT of a run with its id, its job's uid and ``columns``; the others stay NULL."""
    names = ", ".join(f'"{name}"' for name in ("run_id", "job_uid", *columns))
    return f"INSERT INTO runs ({names}) VALUES ({', '.join('?' * (len(columns) + 2))})"


# -- runs -------------------------------------------------------------------------
_QUOTED_RUN_COLUMNS = ", ".join(f'"{name}"' for name in RUN_COLUMNS)
INSERT_RUN = f"INSERT INTO runs ({_QUOTED_RUN_COLUMNS}) VALUES ({', '.join('?' * len(RUN_COLUMNS))})"
_TIME_POSITIONS = [i for i, name in enumerate(RUN_COLUMNS) if name in RUN_TIME_FIELDS]
_FIELD_TIME_POSITIONS = [i for i, name in enumerate(RUN_FIELDS) if name in RUN_TIME_FIELDS]


def run_values(run: dict) -> list:
    """The values of a run for ``INSERT_RUN``."""
    values = [run.get(name) for name in RUN_COLUMNS]
    for i in _TIME_POSITIONS:
        if values[i] is not None:
            values[i] = iso_cached(values[i])
    return values


def runs_from_rows(rows: list[tuple]) -> list[tuple]:
    """Rows of ``RUN_FIELDS`` as read (times as text) with their times as datetimes."""
    converted = []
    for row in rows:
        row = list(row)
        for i in _FIELD_TIME_POSITIONS:
            row[i] = from_iso(row[i])
        converted.append(tuple(row))
    return converted


@functools.lru_cache(maxsize=64)
def fields_of(keys: tuple[str, ...]) -> tuple[str, ...]:
    """The fields an update of a run sets (all its keys but the run id)."""
    return tuple(key for key in keys if key != "run_id")


def to_db(value):
    return iso(value) if isinstance(value, datetime) else value


def iso_or_none(moment: datetime | None) -> str | None:
    return None if moment is None else iso_cached(moment)


@functools.lru_cache(maxsize=4096)
def iso_cached(moment: datetime) -> str:
    """ISO text of a UTC time; aligned fires share their times, so a small cache saves most conversions."""
    return iso(moment)


def runs_where(query: RunQuery, after: int | None = None) -> tuple[str, list]:
    """The WHERE of the runs ``query`` selects (with ``after``: among those with higher ids), and its parameters."""
    clauses, params = [], []
    if after is not None:
        clauses.append("run_id > ?")
        params.append(after)
    if query.as_of is not None:
        clauses.append("(status != 'running' OR scheduled_at <= ?)")
        params.append(iso(query.as_of))
    for column, value in _filters(query):
        if value is not None:
            clauses.append(f"{column}=?")
            params.append(value)
    if query.since is not None:
        clauses.append("COALESCE(started_at, scheduled_at) >= ?")
        params.append(iso(query.since))
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


def _filters(query: RunQuery) -> tuple[tuple[str, str | None], ...]:
    return (
        ("job", query.job),
        ("job_uid", query.job_uid),
        ("service", query.service),
        ("status", query.status),
    )


def runs_listing(query: RunQuery, after: int | None = None) -> tuple[str, list]:
    """``runs_where`` with the listing's order, newest first, and its limit."""
    where, params = runs_where(query, after)
    where += " ORDER BY run_id DESC"
    if query.limit is not None or query.offset:
        where += " LIMIT ? OFFSET ?"
        params += [-1 if query.limit is None else int(query.limit), int(query.offset)]
    return where, params
