"""The PostgreSQL store's tables, migrations and SQL, and how records become rows and back.

Every object lives in the store's schema (each connection puts it first on ``search_path``), so the
SQL here names tables plainly. Times are ``timestamptz`` (aware UTC datetimes both ways); run ids
and lease tokens come from sequences, each value higher than any before.
"""

from __future__ import annotations

import functools
import json

from ..model.jobs import JobSpec, JobState
from ..model.runs import CLAIMED_TRIGGERS, RUN_FIELDS
from ..model.timeparse import iso
from .base import PendingRetry, RunQuery, StoredJob

SCHEMA_VERSION = 2
#: Which runs the one-run-per-fire key holds: first attempts of the claimed triggers.
FIRE_KEY_PREDICATE = f"""attempt = 1 AND "trigger" IN ({", ".join(f"'{t}'" for t in CLAIMED_TRIGGERS)})"""
#: The statements that make an empty schema (after ``meta``) a schema of ``SCHEMA_VERSION``.
CREATE = [
    "CREATE SEQUENCE run_ids",
    "CREATE SEQUENCE lease_tokens",
    """CREATE TABLE sources (
        version text PRIMARY KEY, origin text NOT NULL, source text NOT NULL, deployed_at timestamptz NOT NULL)""",
    """CREATE TABLE services (
        name text PRIMARY KEY, version text NOT NULL REFERENCES sources(version),
        class_name text NOT NULL, deployed_at timestamptz NOT NULL)""",
    """CREATE TABLE jobs (
        name text PRIMARY KEY, uid text NOT NULL UNIQUE, spec text NOT NULL,
        fires bigint NOT NULL DEFAULT 0, next_fire timestamptz, last_fire timestamptz,
        paused_note text NOT NULL DEFAULT '', created_at timestamptz)""",
    """CREATE TABLE runs (
        run_id bigint PRIMARY KEY DEFAULT nextval('run_ids'), job_uid text,
        cid text, job text, service text, service_version text, "trigger" text, attempt bigint,
        status text, scheduled_at timestamptz, started_at timestamptz, finished_at timestamptz,
        delay_ms double precision, duration_ms double precision, error text, traceback text,
        output text, logs text, runner text)""",
    # One run per fire: the key of ``Store.claim``.
    f'CREATE UNIQUE INDEX runs_fire_key ON runs (scheduled_at, job_uid, "trigger") WHERE {FIRE_KEY_PREDICATE}',
    # A job's runs, by its name and its own uid (a job made under the name of a deleted one has runs of its own).
    "CREATE INDEX runs_by_job_uid ON runs (job, job_uid, run_id)",
    "CREATE INDEX runs_by_status ON runs (status, run_id)",
    "CREATE INDEX runs_by_runner ON runs (runner) WHERE status = 'running'",
    """CREATE TABLE connections (
        name text PRIMARY KEY, kind text NOT NULL, definition text NOT NULL, updated_at timestamptz NOT NULL)""",
    """CREATE TABLE retries (
        run_id bigint PRIMARY KEY, job text, service text NOT NULL, attempt bigint NOT NULL,
        retries bigint NOT NULL, scheduled_at timestamptz NOT NULL, due_at timestamptz NOT NULL,
        channel text NOT NULL)""",
    # Each runner's lease: a runner that stops renewing it has its runs taken over once it expires.
    "CREATE TABLE leases (runner text PRIMARY KEY, token bigint NOT NULL, expires_at timestamptz NOT NULL)",
]
#: The statements that bring a schema of version N to N + 1.
MIGRATIONS: dict[int, list[str]] = {
    # 2: runs of every kind carry their job's uid; those recorded before get the uid of the job that has their
    # name, if it was made before them.
    1: [
        "DROP INDEX runs_by_job",
        "CREATE INDEX runs_by_job_uid ON runs (job, job_uid, run_id)",
        """UPDATE runs SET job_uid = (SELECT uid FROM jobs WHERE jobs.name = runs.job
            AND (jobs.created_at IS NULL OR jobs.created_at <= COALESCE(runs.started_at, runs.scheduled_at)))
        WHERE job_uid IS NULL AND job IS NOT NULL""",
    ],
}
CREATE_META = "CREATE TABLE IF NOT EXISTS meta (key text PRIMARY KEY, value text NOT NULL)"

#: The run fields as a SELECT's column list.
SELECT_RUN_FIELDS = ", ".join(f'"{name}"' for name in RUN_FIELDS)
#: The fields of a run but its id and its job's uid.
_DATA_FIELDS = tuple(name for name in RUN_FIELDS[1:] if name != "job_uid")
#: The columns a run is inserted with: all of them, its id and its job's uid first.
INSERT_COLUMNS = ("run_id", "job_uid", *_DATA_FIELDS)
INSERT_RUN = (
    f"INSERT INTO runs ({', '.join(f'{chr(34)}{name}{chr(34)}' for name in INSERT_COLUMNS)}) "
    f"VALUES ({', '.join(['%s'] * len(INSERT_COLUMNS))})"
)
NEW_RUN_IDS = "SELECT nextval('run_ids') FROM generate_series(1, %s)"
INTERRUPTED = "The runner stopped while this run was executing."


def run_values(run_id: int, job_uid: str | None, run: dict) -> tuple:
    """The values of ``INSERT_RUN`` for a run."""
    return (run_id, job_uid, *[run.get(name) for name in _DATA_FIELDS])


def run_record(row: tuple) -> dict:
    """A row of ``RUN_FIELDS`` as a run record."""
    return dict(zip(RUN_FIELDS, row, strict=True))


@functools.lru_cache(maxsize=64)
def update_sql(fields: tuple[str, ...]) -> str:
    """The UPDATE of a run's ``fields`` (by ``run_id``, the last parameter)."""
    return f"UPDATE runs SET {', '.join(f'{chr(34)}{key}{chr(34)}=%s' for key in fields)} WHERE run_id=%s"


#: Per job uid with runs: how many, and its newest run's status and time (``Store.job_stats``).
JOB_STATS = (
    "SELECT r.job_uid, c.n, r.status, COALESCE(r.started_at, r.scheduled_at) FROM runs r JOIN "
    "(SELECT COUNT(*) AS n, MAX(run_id) AS last FROM runs WHERE job IS NOT NULL AND job_uid IS NOT NULL "
    "GROUP BY job, job_uid) c ON r.run_id = c.last"
)


# -- jobs -----------------------------------------------------------------------
JOB_COLUMNS = "name, uid, spec, fires, next_fire, last_fire, paused_note, created_at"


def job_row(job: StoredJob) -> tuple:
    state = job.state
    spec = json.dumps(job.spec.to_record())
    times = (state.next_fire, state.last_fire)
    return (job.spec.name, job.uid, spec, state.fires, *times, state.paused_note, state.created_at)


def job_from_row(row: tuple) -> StoredJob:
    _, uid, spec, fires, next_fire, last_fire, note, created_at = row
    state = JobState(fires=fires, next_fire=next_fire, last_fire=last_fire, paused_note=note, created_at=created_at)
    return StoredJob(uid=uid, spec=JobSpec.from_record(json.loads(spec)), state=state)


# -- retries ----------------------------------------------------------------------
RETRY_COLUMNS = "run_id, job, service, attempt, retries, scheduled_at, due_at, channel"
SAVE_RETRY = (
    f"INSERT INTO retries ({RETRY_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (run_id) DO UPDATE "
    "SET job=EXCLUDED.job, service=EXCLUDED.service, attempt=EXCLUDED.attempt, retries=EXCLUDED.retries, "
    "scheduled_at=EXCLUDED.scheduled_at, due_at=EXCLUDED.due_at, channel=EXCLUDED.channel"
)


def retry_row(retry: PendingRetry) -> tuple:
    return (
        retry.run_id,
        retry.job,
        retry.service,
        retry.attempt,
        retry.retries,
        retry.scheduled_at,
        retry.due_at,
        retry.channel,
    )


# -- listings -----------------------------------------------------------------------
def runs_where(query: RunQuery) -> tuple[str, list]:
    """The WHERE of the runs ``query`` selects, and its parameters (times as ISO text, cast in the SQL, so that
    psycopg and ADBC bind them alike)."""
    clauses, params = [], []
    if query.as_of is not None:
        clauses.append("(status <> 'running' OR scheduled_at <= %s::timestamptz)")
        params.append(iso(query.as_of))
    filters = (("job", query.job), ("job_uid", query.job_uid), ("service", query.service), ("status", query.status))
    for column, value in filters:
        if value is not None:
            clauses.append(f"{column} = %s")
            params.append(value)
    if query.since is not None:
        clauses.append("COALESCE(started_at, scheduled_at) >= %s::timestamptz")
        params.append(iso(query.since))
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


def runs_listing(query: RunQuery) -> tuple[str, list]:
    """The SELECT of the runs ``query`` selects, newest first, and its parameters."""
    where, params = runs_where(query)
    sql = f"SELECT {SELECT_RUN_FIELDS} FROM runs {where} ORDER BY run_id DESC"
    if query.limit is not None and query.limit >= 0:  # as SQLite's LIMIT: a negative one is none
        sql += " LIMIT %s"
        params.append(int(query.limit))
    if query.offset:
        sql += " OFFSET %s"
        params.append(int(query.offset))
    return sql, params


def numbered(sql: str) -> str:
    """``sql`` with its ``%s`` placeholders as ``$1``, ``$2``, ... (ADBC's PostgreSQL driver)."""
    parts = sql.split("%s")
    return "".join(part + (f"${i}" if i < len(parts) else "") for i, part in enumerate(parts, start=1))
