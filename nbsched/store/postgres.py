"""The shared store: ``PostgresStore``, the store contract on PostgreSQL (``postgresql://...``), for several runners.

Tables and SQL are in ``postgres_schema``; the URL and connections in ``postgres_url``; leases, take-overs and
notifications in ``postgres_shared``; history into Arrow in ``history.postgres``. One connection serves the
store's calls, one at a time (a lock); history readers take connections of their own from a small pool.
"""

from __future__ import annotations

import json
import logging

from ..errors import JobExists, NbschedError, RetryStarted, StoreError
from ..model.runs import CLAIMED_TRIGGERS, RUN_FIELDS
from ..model.timeparse import iso
from .base import Claim, DeletedRun, RunQuery
from .history.postgres import PostgresHistory
from .postgres_schema import (
    CREATE,
    CREATE_META,
    FIRE_KEY_PREDICATE,
    INSERT_RUN,
    INTERRUPTED,
    JOB_COLUMNS,
    JOB_STATS,
    MIGRATIONS,
    NEW_RUN_IDS,
    RETRY_COLUMNS,
    SAVE_RETRY,
    SCHEMA_VERSION,
    SELECT_RUN_FIELDS,
    job_from_row,
    job_row,
    retry_row,
    run_values,
    runs_listing,
    update_sql,
)
from .postgres_shared import SharedStore
from .postgres_url import masked_reason, parse
from .purge_sql import newest_kept, oldest_selected
from .safe import safe_record

log = logging.getLogger(__name__)
#: The keys a run update may have: the run fields, and the claiming job's uid.
_UPDATABLE = frozenset((*RUN_FIELDS, "job_uid"))
ADD_SOURCE = "INSERT INTO sources VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING"
#: Moves the run id sequence past every run (after runs were copied in with their ids).
PAST_LOADED_RUNS = (
    "SELECT setval('run_ids', GREATEST((SELECT MAX(run_id) FROM runs), (SELECT last_value FROM run_ids)))"
)
ADVANCE_JOB = "UPDATE jobs SET next_fire=%s, fires=%s, last_fire=COALESCE(%s, last_fire) WHERE uid=%s"
# Locks the claimed jobs' rows. SKIP LOCKED: a job row that another transaction holds (another runner
# claiming the same job at this moment) is left out, and its claim counts as lost (None): never a wait.
LOCK_JOBS = "SELECT uid, next_fire FROM jobs WHERE uid = ANY(%s) FOR UPDATE SKIP LOCKED"
# The fires that have their run already, among those given: the predicate is the unique index's, word for word.
# One look-up in the fire-key index per fire (LATERAL ... LIMIT 1 keeps the planner from scanning all runs for a
# hash join, which it picks on a table it has no fresh statistics of: 100 ms at 10,000 runs, and growing).
TAKEN_FIRES = (
    "SELECT k.s, k.u, k.t FROM unnest(%s::timestamptz[], %s::text[], %s::text[]) AS k(s, u, t), LATERAL "
    f'(SELECT 1 FROM runs WHERE scheduled_at = k.s AND job_uid = k.u AND "trigger" = k.t AND {FIRE_KEY_PREDICATE} '
    "LIMIT 1) AS hit"
)


class PostgresStore(SharedStore):
    """Store in one schema of a PostgreSQL database, created and migrated on open; shared by any number of runners.

    A write that fails for a reason of the server (unreachable, connection lost, out of space) raises
    ``StoreError`` and changes nothing; the next call connects again.
    """

    shared = True

    def __init__(self, url: str):
        import psycopg

        super().__init__(parse(url))
        try:
            open_schema(self.db, self.location.schema, self.location.where)
        except psycopg.Error as exc:
            self.db.close()
            raise StoreError(
                f"Cannot prepare the schema {self.location.schema} of the PostgreSQL store at {self.location.where} "
                f"({masked_reason(self.location, exc)}). The first runner needs CREATE on the database to make it; "
                "later ones need to read and write its tables."
            ) from None
        except BaseException:
            self.db.close()
            raise

    def history(self) -> PostgresHistory:
        """A reader on connections of its own (psycopg for JSON rows, ADBC for Arrow), for any thread."""
        return PostgresHistory(self, self.readers)

    # -- services ---------------------------------------------------------------
    def save_source(self, version, origin, source, services, now):
        with self._tx() as db:
            db.execute(ADD_SOURCE, (version, origin, source, now))
            db.cursor().executemany(
                "INSERT INTO services VALUES (%s, %s, %s, %s) ON CONFLICT (name) DO UPDATE "
                "SET version=EXCLUDED.version, class_name=EXCLUDED.class_name, deployed_at=EXCLUDED.deployed_at",
                [(name, version, class_name, now) for name, class_name in services.items()],
            )

    def services(self):
        rows = self._fetch(
            "SELECT s.name, s.version, s.class_name, src.origin, s.deployed_at "
            "FROM services s JOIN sources src USING (version) ORDER BY s.name"
        )
        keys = ("name", "version", "class_name", "origin", "deployed_at")
        return [dict(zip(keys, (*row[:4], iso(row[4])), strict=True)) for row in rows]

    def sources(self, versions=None):
        if versions is None:
            query = "SELECT version, source FROM sources WHERE version IN (SELECT version FROM services)"
            return dict(self._fetch(query))
        return dict(self._fetch("SELECT version, source FROM sources WHERE version = ANY(%s)", [list(versions)]))

    # -- jobs -------------------------------------------------------------------
    def add_job(self, job):
        import psycopg

        try:
            with self._tx() as db:
                db.execute(f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", job_row(job))
        except psycopg.errors.UniqueViolation:
            raise JobExists(
                f"A job named {job.spec.name!r} exists already; choose another name or update it instead."
            ) from None

    def save_job(self, job):
        _name, uid, spec, fires, next_fire, last_fire, note, _ = job_row(job)
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET spec=%s, fires=%s, next_fire=%s, last_fire=%s, paused_note=%s WHERE uid=%s",
                (spec, fires, next_fire, last_fire, note, uid),
            )

    def delete_job(self, name):
        with self._tx() as db:
            return db.execute("DELETE FROM jobs WHERE name=%s", (name,)).rowcount > 0

    def job(self, name):
        rows = self._fetch(f"SELECT {JOB_COLUMNS} FROM jobs WHERE name=%s", (name,))
        return job_from_row(rows[0]) if rows else None

    def jobs(self):
        return [job_from_row(row) for row in self._fetch(f"SELECT {JOB_COLUMNS} FROM jobs ORDER BY name")]

    # -- runs -------------------------------------------------------------------
    def claim(self, claims: list[Claim]) -> list[list[int] | None]:
        import psycopg

        if not claims:
            return []
        try:
            with self._tx(fenced=True) as db:
                return self._claim_batch(db, claims)
        except (_Uneven, psycopg.errors.UniqueViolation):
            pass  # rolled back whole; claim by claim, each in a savepoint of its own
        with self._tx(fenced=True) as db:
            return [self._claim_one(db, claim) for claim in claims]

    def _claim_batch(self, db, claims: list[Claim]) -> list[list[int] | None]:
        """The fast path: lock the jobs (skipping those held), compare, check the fires, write in a few round trips."""
        uids = [claim.job_uid for claim in claims]
        if len(set(uids)) != len(uids):
            raise _Uneven  # two claims of one job: the second depends on the first
        held = dict(db.execute(LOCK_JOBS, [uids]).fetchall())
        won = [claim.job_uid in held and held[claim.job_uid] == claim.expected_next for claim in claims]
        taken = _taken_fires(db, [claim for claim, wins in zip(claims, won, strict=True) if wins])
        won = [wins and not (set(_fire_keys(claim)) & taken) for claim, wins in zip(claims, won, strict=True)]
        winners = [claim for claim, wins in zip(claims, won, strict=True) if wins]
        if winners:
            db.cursor().executemany(ADVANCE_JOB, [_advance_values(claim) for claim in winners])
        ids = iter(_new_run_ids(db, sum(len(claim.runs) for claim in winners)))
        results, rows = [], []
        for claim, wins in zip(claims, won, strict=True):
            claim_ids = [next(ids) for _ in claim.runs] if wins else None
            results.append(claim_ids)
            if wins:
                rows += [run_values(i, claim.job_uid, run) for i, run in zip(claim_ids, claim.runs, strict=True)]
        if rows:
            db.cursor().executemany(INSERT_RUN, rows)
        return results

    def _claim_one(self, db, claim: Claim) -> list[int] | None:
        import psycopg

        try:
            with db.transaction():  # a savepoint: this claim wins or loses whole
                row = db.execute(LOCK_JOBS, [[claim.job_uid]]).fetchone()
                if row is None or row[1] != claim.expected_next:
                    return None  # gone, held by another transaction (SKIP LOCKED), or moved on
                db.execute(ADVANCE_JOB, _advance_values(claim))
                ids = _new_run_ids(db, len(claim.runs))
                rows = [run_values(i, claim.job_uid, run) for i, run in zip(ids, claim.runs, strict=True)]
                if rows:
                    db.cursor().executemany(INSERT_RUN, rows)
                return ids
        except psycopg.errors.UniqueViolation:
            return None  # one of its fires has its run already

    def job_stats(self):
        rows = self._fetch(JOB_STATS)
        return {uid: {"runs": n, "last_status": status, "last_run": when} for uid, n, status, when in rows}

    def add_runs(self, runs, retried=()):
        return self._safely(self._add_runs, runs, retried)

    def _add_runs(self, runs: list[dict], retried) -> list[int]:
        import psycopg

        try:
            with self._tx(fenced=True) as db:
                ids = _new_run_ids(db, len(runs))
                rows = [run_values(i, run.get("job_uid"), run) for i, run in zip(ids, runs, strict=True)]
                if rows:
                    db.cursor().executemany(INSERT_RUN, rows)
                if retried:
                    taken = db.execute("DELETE FROM retries WHERE run_id = ANY(%s) RETURNING run_id", [list(retried)])
                    if len(taken.fetchall()) < len(set(retried)):  # another runner started it: roll back
                        raise RetryStarted(f"The retry of run(s) {sorted(retried)} was started by another runner.")
                return ids
        except psycopg.errors.UniqueViolation:
            raise ValueError("A run of a fire that has its run already; claim fires with Store.claim.") from None

    def update_runs(self, updates, retries=()):
        self._safely(self._update_runs, updates, retries)

    def _update_runs(self, updates: list[dict], retries) -> None:
        groups: dict[tuple[str, ...], list[tuple]] = {}  # updates with the same fields go in one executemany
        for update in updates:
            fields = tuple(key for key in update if key != "run_id")
            unknown = set(fields) - _UPDATABLE
            if unknown:
                raise ValueError(f"Runs have no field(s) {', '.join(sorted(unknown))}; see model.runs.RUN_FIELDS.")
            if fields:
                groups.setdefault(fields, []).append((*[update[key] for key in fields], update["run_id"]))
        with self._tx(fenced=True) as db:
            for fields, rows in groups.items():
                db.cursor().executemany(update_sql(fields), rows)
            if retries:
                db.cursor().executemany(SAVE_RETRY, [retry_row(retry) for retry in retries])

    def _safely(self, write, records: list[dict], *args):
        """``write(records, *args)``; when a value cannot be stored as it is, again with every value in a safe
        form (``safe.safe_value``, and no NUL characters, which PostgreSQL's text cannot hold)."""
        import psycopg

        try:
            return write(records, *args)
        except (UnicodeEncodeError, psycopg.DataError, psycopg.ProgrammingError):
            pass
        try:
            return write([_pg_safe(record) for record in records], *args)
        except (UnicodeEncodeError, psycopg.DataError, psycopg.ProgrammingError) as exc:
            raise self._failed(exc) from exc

    def pending_retries(self):
        from .base import PendingRetry

        rows = self._fetch(f"SELECT {RETRY_COLUMNS} FROM retries ORDER BY due_at, run_id")
        return [PendingRetry(*row) for row in rows]

    def run(self, run_id):
        rows = self._fetch(f"SELECT {SELECT_RUN_FIELDS} FROM runs WHERE run_id=%s", (run_id,))
        return dict(zip(RUN_FIELDS, rows[0], strict=True)) if rows else None

    def runs(self, query=None):
        return self._fetch(*runs_listing(query or RunQuery()))

    def delete_runs(self, purge, limit):
        below = None
        if purge.keep is not None:
            rows = self._fetch(*newest_kept(purge, "%s", _same))
            if not rows:
                return []
            below = rows[0][0]
        select, params = oldest_selected(purge, "%s", _same, below, limit)
        with self._tx() as db:
            rows = db.execute(
                f"DELETE FROM runs WHERE run_id IN ({select}) AND status <> 'running' RETURNING run_id, job, output",
                params,
            ).fetchall()
        return [DeletedRun(*row) for row in sorted(rows)]

    def interrupt_running(self, now, runner=None):
        sql = "UPDATE runs SET status='interrupted', finished_at=%s, error=%s WHERE status='running'"
        params: list = [now, INTERRUPTED]
        if runner is not None:
            sql += " AND runner=%s"
            params.append(runner)
        with self._tx(fenced=True) as db:
            return db.execute(sql, params).rowcount

    def load_runs(self, runs):
        with self._tx() as db:
            rows = [run_values(run["run_id"], run.get("job_uid"), run) for run in runs]
            if rows:
                db.cursor().executemany(INSERT_RUN, rows)
            db.execute(PAST_LOADED_RUNS)

    # -- connections --------------------------------------------------------------
    def save_connection(self, name, kind, definition, now):
        with self._tx() as db:
            db.execute(
                "INSERT INTO connections VALUES (%s, %s, %s, %s) ON CONFLICT (name) DO UPDATE "
                "SET kind=EXCLUDED.kind, definition=EXCLUDED.definition, updated_at=EXCLUDED.updated_at",
                (name, kind, json.dumps(definition), now),
            )

    def connections(self):
        rows = self._fetch("SELECT name, kind, definition, updated_at FROM connections ORDER BY name")
        return [
            {"name": name, "kind": kind, "definition": json.loads(definition), "updated_at": updated}
            for name, kind, definition, updated in rows
        ]

    def delete_connection(self, name):
        with self._tx() as db:
            return db.execute("DELETE FROM connections WHERE name=%s", (name,)).rowcount > 0


def open_schema(db, schema: str, where: str) -> None:
    """Create the store's schema, or migrate it to ``SCHEMA_VERSION``; refuse one newer than this nbsched knows.

    An advisory lock (held to the end of the transaction) makes several processes opening at once take turns.
    """
    with db.transaction():
        db.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"nbsched schema {schema}"])
        db.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        db.execute(CREATE_META)
        row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        version = 0 if row is None else int(row[0])
        if version > SCHEMA_VERSION:
            raise NbschedError(
                f"The store {where} (schema {schema}) has schema version {version}, newer than this nbsched "
                f"understands ({SCHEMA_VERSION}). Upgrade nbsched: pip install -U nbsched."
            )
        statements = CREATE if version == 0 else [s for v in range(version, SCHEMA_VERSION) for s in MIGRATIONS[v]]
        for statement in statements:
            db.execute(statement)
        if version == 0:
            db.execute("INSERT INTO meta VALUES ('store_id', md5(random()::text))")
            db.execute("INSERT INTO meta VALUES ('schema_version', %s)", [str(SCHEMA_VERSION)])
        elif version < SCHEMA_VERSION:
            db.execute("UPDATE meta SET value=%s WHERE key='schema_version'", [str(SCHEMA_VERSION)])
            log.info("store %s (schema %s) migrated from version %d to %d", where, schema, version, SCHEMA_VERSION)


def _same(value):
    """A value as psycopg binds it: as it is."""
    return value


class _Uneven(Exception):
    """A batch of claims the fast path does not take: claim one by one instead."""


def _advance_values(claim: Claim) -> tuple:
    times = [run["scheduled_at"] for run in claim.runs if run.get("scheduled_at") is not None]
    return (claim.new_next, claim.fires, max(times) if times else None, claim.job_uid)


def _new_run_ids(db, count: int) -> list[int]:
    """``count`` new run ids, ascending, each higher than any before."""
    if not count:
        return []
    return sorted(row[0] for row in db.execute(NEW_RUN_IDS, [count]).fetchall())


def _fire_keys(claim: Claim) -> list[tuple]:
    """The fires a claim's runs take: first attempts of claimed triggers, by (scheduled_at, job uid, trigger)."""
    return [
        (run["scheduled_at"], claim.job_uid, run["trigger"])
        for run in claim.runs
        if run.get("attempt") == 1 and run.get("trigger") in CLAIMED_TRIGGERS and run.get("scheduled_at") is not None
    ]


def _taken_fires(db, claims: list[Claim]) -> set[tuple]:
    """Of the fires ``claims`` take, those a run has already; a fire taken twice among them: ``_Uneven``."""
    keys = [key for claim in claims for key in _fire_keys(claim)]
    if len(set(keys)) != len(keys):
        raise _Uneven
    if not keys:
        return set()
    columns = [list(column) for column in zip(*keys, strict=True)]
    return set(db.execute(TAKEN_FIRES, columns).fetchall())


def _pg_safe(record: dict) -> dict:
    """A run or update with every value in a form PostgreSQL holds: ``safe_record``'s, NUL written as ``\\x00``."""
    return {
        key: value.replace("\x00", "\\x00") if isinstance(value, str) else value
        for key, value in safe_record(record).items()
    }
