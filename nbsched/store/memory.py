"""``MemoryStore``: the whole store contract in memory (``memory://``), for tests and trials; gone with the process.

It keeps what the SQLite store keeps and gives back the same values: jobs as copies (the spec through its
JSON record), times as aware UTC datetimes, each run field of the type of its column (``run_id`` and
``attempt`` whole numbers, ``delay_ms`` and ``duration_ms`` floats, other fields text), values no store can
hold in ``safe.safe_value``'s form. Claims follow the same rule: a job's ``next_fire`` compared and set, and
one first attempt per fire ``(scheduled_at, job uid, trigger)`` of a claimed trigger. Nothing here fails for
want of a disk; one lock makes each call atomic, so a history read in another thread sees whole writes.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from ..errors import JobExists
from ..model.jobs import JobSpec, JobState
from ..model.runs import CLAIMED_TRIGGERS, RUN_FIELDS, RUN_TIME_FIELDS
from ..model.timeparse import from_iso, iso
from .base import Claim, DeletedRun, PendingRetry, Purge, RunQuery, Store, StoredJob
from .safe import safe_value

_INTEGER_FIELDS = ("run_id", "attempt")
_REAL_FIELDS = ("delay_ms", "duration_ms")
#: What a run holds: its fields (``job_uid`` among them: the fire key's part).
_RUN_KEYS = frozenset(RUN_FIELDS)
_INTERRUPTED = "The runner stopped while this run was executing."


@dataclass
class _Job:
    """A job as held here: its spec as JSON text, so that what a caller gets back is always a fresh copy."""

    uid: str
    spec: str
    state: JobState

    @classmethod
    def of(cls, job: StoredJob) -> _Job:
        return cls(job.uid, json.dumps(job.spec.to_record()), _state_copy(job.state))

    def stored(self) -> StoredJob:
        return StoredJob(self.uid, JobSpec.from_record(json.loads(self.spec)), _state_copy(self.state))


class MemoryStore(Store):
    """A store in this process's memory; each ``open_store("memory://")`` is a new, empty one."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._sources: dict[str, tuple[str, str, str]] = {}  # version -> origin, source, deployed_at
        self._services: dict[str, tuple[str, str, str]] = {}  # name -> version, class_name, deployed_at
        self._jobs: dict[str, _Job] = {}  # by name
        self._job_names: dict[str, str] = {}  # uid -> name
        self._runs: dict[int, dict] = {}  # by run id, in the order of their ids
        self._fires: set[tuple] = set()  # the keys of the fires claimed (see ``_fire_key``)
        self._retries: dict[int, PendingRetry] = {}  # by the failed run's id
        self._connections: dict[str, tuple[str, str, datetime]] = {}  # name -> kind, definition (JSON), updated_at
        self._last_run_id = 0

    # -- services ---------------------------------------------------------------
    def save_source(self, version, origin, source, services, now):
        with self._lock:
            self._sources.setdefault(version, (origin, source, iso(now)))
            for name, class_name in services.items():
                self._services[name] = (version, class_name, iso(now))

    def services(self):
        with self._lock:
            return [
                {
                    "name": name,
                    "version": version,
                    "class_name": class_name,
                    "origin": self._sources[version][0],
                    "deployed_at": deployed_at,
                }
                for name, (version, class_name, deployed_at) in sorted(self._services.items())
            ]

    def sources(self, versions=None):
        with self._lock:
            if versions is None:
                versions = {version for version, _, _ in self._services.values()}
            return {version: self._sources[version][1] for version in versions if version in self._sources}

    # -- jobs -------------------------------------------------------------------
    def add_job(self, job):
        with self._lock:
            if job.spec.name in self._jobs or job.uid in self._job_names:
                raise JobExists(
                    f"A job named {job.spec.name!r} exists already; choose another name or update it instead."
                )
            self._jobs[job.spec.name] = _Job.of(job)
            self._job_names[job.uid] = job.spec.name

    def save_job(self, job):
        with self._lock:
            held = self._by_uid(job.uid)
            if held is not None:  # kept: the name it was added with, and when it was created
                held.spec = _Job.of(job).spec
                held.state = replace(_state_copy(job.state), created_at=held.state.created_at)

    def delete_job(self, name):
        with self._lock:
            held = self._jobs.pop(name, None)
            if held is not None:
                del self._job_names[held.uid]
            return held is not None

    def job(self, name):
        with self._lock:
            held = self._jobs.get(name)
            return None if held is None else held.stored()

    def jobs(self):
        with self._lock:
            return [held.stored() for _, held in sorted(self._jobs.items())]

    def _by_uid(self, uid: str) -> _Job | None:
        name = self._job_names.get(uid)
        return None if name is None else self._jobs[name]

    # -- runs -------------------------------------------------------------------
    def claim(self, claims: list[Claim]) -> list[list[int] | None]:
        with self._lock:
            return [self._claim(claim) for claim in claims]

    def _claim(self, claim: Claim) -> list[int] | None:
        held = self._by_uid(claim.job_uid)
        if held is None or held.state.next_fire != _utc(claim.expected_next):
            return None
        runs = [_stored_run({**run, "job_uid": claim.job_uid}) for run in claim.runs]
        keys = [key for key in map(_fire_key, runs) if key is not None]
        if len(set(keys)) != len(keys) or self._fires.intersection(keys):
            return None  # a fire claimed before: the claim loses whole
        held.state.next_fire, held.state.fires = _utc(claim.new_next), claim.fires
        times = [run["scheduled_at"] for run in runs if run["scheduled_at"] is not None]
        if times:
            held.state.last_fire = max(times)
        return self._insert(runs)

    def job_stats(self):
        with self._lock:
            newest: dict[str, dict] = {}
            counts: dict[str, int] = {}
            for run in self._runs.values():
                uid = run["job_uid"]
                if run["job"] is not None and uid is not None:
                    newest[uid] = run
                    counts[uid] = counts.get(uid, 0) + 1
            return {
                uid: {"runs": counts[uid], "last_status": run["status"], "last_run": _started_or_due(run)}
                for uid, run in newest.items()
            }

    def add_runs(self, runs, retried=()):
        with self._lock:
            stored = [_stored_run(run) for run in runs]
            keys = [key for key in map(_fire_key, stored) if key is not None]
            if len(set(keys)) != len(keys) or self._fires.intersection(keys):
                raise ValueError("A run of a fire that has its run already; claim fires with Store.claim.")
            ids = self._insert(stored)
            for run_id in retried:
                self._retries.pop(run_id, None)
            return ids

    def _insert(self, runs: list[dict]) -> list[int]:
        ids = []
        for run in runs:
            self._last_run_id += 1
            run["run_id"] = self._last_run_id
            self._runs[run["run_id"]] = run
            key = _fire_key(run)
            if key is not None:
                self._fires.add(key)
            ids.append(run["run_id"])
        return ids

    def load_runs(self, runs):
        with self._lock:
            for run in runs:
                stored = _stored_run(run)
                stored["run_id"] = int(run["run_id"])
                self._runs[stored["run_id"]] = stored
                key = _fire_key(stored)
                if key is not None:
                    self._fires.add(key)
                self._last_run_id = max(self._last_run_id, stored["run_id"])
            self._runs = dict(sorted(self._runs.items()))

    def update_runs(self, updates, retries=()):
        with self._lock:
            changes = []
            for update in updates:
                fields = {name: value for name, value in update.items() if name != "run_id"}
                unknown = set(fields) - _RUN_KEYS
                if unknown:
                    raise ValueError(f"Runs have no field(s) {', '.join(sorted(unknown))}; see model.runs.RUN_FIELDS.")
                changes.append((update["run_id"], {name: _stored_value(name, value) for name, value in fields.items()}))
            for run_id, fields in changes:  # checked whole first: an update is applied whole or not at all
                if run_id in self._runs:
                    self._runs[run_id].update(fields)
            for retry in retries:
                self._retries[retry.run_id] = retry

    def pending_retries(self):
        with self._lock:
            return sorted(self._retries.values(), key=lambda retry: (retry.due_at, retry.run_id))

    def run(self, run_id):
        with self._lock:
            run = self._runs.get(run_id)
            return None if run is None else {name: run[name] for name in RUN_FIELDS}

    def runs(self, query=None):
        query = query or RunQuery()
        with self._lock:
            selected = [run for run in reversed(self._runs.values()) if _selects(query, run)][query.offset :]
            if query.limit is not None and query.limit >= 0:  # as SQL's LIMIT: a negative one is none
                selected = selected[: query.limit]
            return [tuple(run[name] for name in RUN_FIELDS) for run in selected]

    def delete_runs(self, purge, limit):
        with self._lock:
            selected = [run for run in self._runs.values() if _purged(purge, run)]  # oldest first
            if purge.keep is not None:
                selected = selected[: max(0, len(selected) - purge.keep)]
            deleted = [DeletedRun(run["run_id"], run.get("job"), run.get("output")) for run in selected[:limit]]
            for run in deleted:
                del self._runs[run.run_id]
            return deleted

    def interrupt_running(self, now, runner=None):
        with self._lock:
            count = 0
            for run in self._runs.values():
                if run["status"] == "running" and (runner is None or run["runner"] == runner):
                    run.update(status="interrupted", finished_at=_utc(now), error=_INTERRUPTED)
                    count += 1
            return count

    # -- connections --------------------------------------------------------------
    def save_connection(self, name, kind, definition, now):
        with self._lock:
            self._connections[name] = (kind, json.dumps(definition), _utc(now))

    def connections(self):
        with self._lock:
            return [
                {"name": name, "kind": kind, "definition": json.loads(definition), "updated_at": updated_at}
                for name, (kind, definition, updated_at) in sorted(self._connections.items())
            ]

    def delete_connection(self, name):
        with self._lock:
            return self._connections.pop(name, None) is not None


def _utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.astimezone(UTC)


def _state_copy(state: JobState) -> JobState:
    return replace(
        state,
        next_fire=_utc(state.next_fire),
        last_fire=_utc(state.last_fire),
        created_at=_utc(state.created_at),
    )


def _stored_run(run: dict) -> dict:
    """A new run as held: every field (None where not given), each as ``_stored_value`` keeps it."""
    return {name: _stored_value(name, run.get(name)) for name in _RUN_KEYS}


def _stored_value(name: str, value):
    """``value`` of the run field ``name`` as the SQLite store gives it back: of its column's type."""
    if value is None:
        return None
    if name in RUN_TIME_FIELDS:
        return from_iso(value) if isinstance(value, str) else _utc(value)
    value = safe_value(value)
    if isinstance(value, bool):
        value = int(value)
    if name in _INTEGER_FIELDS:
        return int(value) if isinstance(value, float) and value.is_integer() else value
    if name in _REAL_FIELDS:
        return float(value) if isinstance(value, int) else value
    return str(value) if isinstance(value, int | float) else value


def _fire_key(run: dict) -> tuple | None:
    """The key that makes a run the one run of its fire: a first attempt, of a claimed trigger, of a job."""
    if run["attempt"] != 1 or run["trigger"] not in CLAIMED_TRIGGERS:
        return None
    if run["scheduled_at"] is None or run["job_uid"] is None:
        return None  # as in SQL, where a NULL equals nothing
    return run["scheduled_at"], run["job_uid"], run["trigger"]


def _purged(purge: Purge, run: dict) -> bool:
    """Whether ``purge`` selects ``run`` (before its ``keep``)."""
    if run.get("status") == "running" or any(
        value is not None and run.get(key) != value for key, value in (("job", purge.job), ("job_uid", purge.job_uid))
    ):
        return False
    return purge.before is None or (run.get("finished_at") or run["scheduled_at"]) < purge.before


def _started_or_due(run: dict) -> datetime | None:
    return run["started_at"] if run["started_at"] is not None else run["scheduled_at"]


def _selects(query: RunQuery, run: dict) -> bool:
    """Whether ``query`` selects ``run`` (a missing value matches no filter, as NULL in SQL)."""
    for name in ("job", "job_uid", "service", "status"):
        wanted = getattr(query, name)
        if wanted is not None and run[name] != wanted:
            return False
    if query.since is not None:
        when = _started_or_due(run)
        if when is None or when < query.since:
            return False
    if query.as_of is not None:
        finished = run["status"] is not None and run["status"] != "running"
        due = run["scheduled_at"] is not None and run["scheduled_at"] <= query.as_of
        return finished or due
    return True
