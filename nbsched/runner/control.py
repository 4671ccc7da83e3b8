"""Job control: what users do to jobs through the runner (add, change, pause, resume, delete, list).

Each change is written to the store first, then to the engine's view of the job, so a store error leaves
the job as it was. Pausing takes back the job's runs that wait in a worker for their time; they wait in
the runner again, and run at their time if the job was resumed meanwhile (skipped if not).
"""

from __future__ import annotations

import logging
import sys
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from .. import config
from ..errors import InvalidJob
from ..model import cron
from ..model.jobs import JobSpec, JobState, job_state, validate_note
from ..store import StoredJob

if TYPE_CHECKING:
    from .engine import Engine

log = logging.getLogger(__name__)


class JobStats:
    """What listings show of a job's runs: how many, the last one's time and status.

    A runner holds one per job that ran (100,000 of them): slotted, and its status text is kept once for all
    jobs (each run's status comes decoded from a worker's message, as a copy of its own)."""

    __slots__ = ("_last_status", "last_run", "runs")

    def __init__(self, runs: int = 0, last_run: datetime | None = None, last_status: str | None = None):
        self.runs = runs
        self.last_run = last_run
        self.last_status = last_status

    @property
    def last_status(self) -> str | None:
        return self._last_status

    @last_status.setter
    def last_status(self, status: str | None) -> None:
        self._last_status = sys.intern(status) if type(status) is str else status

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, JobStats):
            return NotImplemented
        return (self.runs, self.last_run, self.last_status) == (other.runs, other.last_run, other.last_status)

    def __repr__(self) -> str:
        return f"JobStats(runs={self.runs!r}, last_run={self.last_run!r}, last_status={self.last_status!r})"


#: The stats of a job with no runs (read only).
NO_RUNS = JobStats()


def listed(job: StoredJob, stats: JobStats) -> dict:
    """A job as listings show it (``JOB_LIST_FIELDS``)."""
    spec, state = job.spec, job.state
    return {
        "name": spec.name,
        "type": spec.kind,
        "definition": spec.definition(),
        "service": spec.service,
        "active": spec.active,
        "state": job_state(spec, state),
        "next_run": state.next_fire if spec.active else None,
        "last_run": stats.last_run,
        "last_status": stats.last_status,
        "runs": stats.runs,
        "note": state.paused_note,
    }


@dataclass
class JobControl:
    """The job operations of one engine."""

    engine: Engine
    _spares_review: object = None  # the timer of a pending ``review_spares``

    def check_cron_line(self, job: StoredJob, now: datetime) -> None:
        """At start: list a job whose line Debian's cron reads otherwise than nbsched 0.1 did, and move
        its next fire to the new reading; pause a job whose line is refused now (``R``)."""
        spec = job.spec
        try:
            spec.trigger()
        except InvalidJob as exc:
            log.error("job %r is paused: its cron line is refused since nbsched 0.2: %s", spec.name, exc)
            job.spec = replace(spec, active=False, note="cron line refused since nbsched 0.2; update it")
            job.state.paused_note = job.spec.note
            self.engine.store.save_job(job)
            return
        reason = cron.meaning_changes(spec.cron, spec.tz)
        if reason is None:
            return
        log.warning(
            "job %r: cron line %r fires as Debian's cron reads it since nbsched 0.2: %s",
            spec.name,
            spec.cron,
            reason,
        )
        if job.state.next_fire is not None and job.state.next_fire > now:
            job.state.next_fire = spec.next_fire(now, job.state.fires)
            self.engine.store.save_job(job)

    def add_job(self, args: dict, now: datetime) -> dict:
        spec = JobSpec.from_user(now=now, default_tz=self.engine.default_tz, **args)
        self.engine.catalog.require_service(spec.service)
        self.engine.catalog.check_extra(spec.service, spec.extra)
        job = StoredJob(uid=uuid.uuid4().hex, spec=spec, state=JobState(created_at=now))
        job.state.next_fire = spec.first_fire(now, 0)
        self.engine.store.add_job(job)
        self.engine.jobs[spec.name] = job
        self.engine.reschedule(job)
        if spec.active:
            self.warm(spec.service)
        self.engine.hooks.changed(f"job:{spec.name}")
        return self._with_notice(self.job_record(spec.name), spec, now)

    def update_job(self, name: str, changes: dict, now: datetime) -> dict:
        job = self.engine.job(name)
        if "name" in changes and changes["name"] != name:
            raise InvalidJob("A job cannot be renamed; delete it and schedule it again under the new name.")
        spec = job.spec.changed(now, self.engine.default_tz, **changes)
        self.engine.catalog.require_service(spec.service)
        self.engine.catalog.check_extra(spec.service, spec.extra)
        timing = {"every", "cron", "at", "start", "end", "tz", "repeats"}
        state = job.state
        if timing & set(changes):
            state = replace(state, next_fire=self._first_fire(job, spec, now))
        updated = StoredJob(job.uid, spec, state)
        self.engine.store.save_job(updated)
        self.engine.jobs[name] = updated
        self.engine.reschedule(updated)
        if spec.active:
            self.warm(spec.service)
        if job.spec.active and not (spec.active and spec.service == job.spec.service):
            self.review_spares(job.spec.service)  # the notebook it ran may have lost its last active job
        self.engine.hooks.changed(f"job:{name}")
        record = self.job_record(name)
        return self._with_notice(record, spec, now) if {"at", "start"} & set(changes) else record

    def pause(self, name: str, note: str, now: datetime) -> dict:
        return self._set_active(name, False, validate_note(note))

    def resume(self, name: str, now: datetime) -> dict:
        job = self.engine.job(name)
        return self._set_active(name, True, "", replace(job.state, next_fire=self._first_fire(job, job.spec, now)))

    def _first_fire(self, job: StoredJob, spec: JobSpec, now: datetime) -> datetime | None:
        """The first fire of ``spec`` from ``now`` on and after every fire ``job`` claimed already.

        A fire claimed ahead of its time (within ``claim_ahead``) is kept: its run starts at that time if the
        job is active then, and is skipped if not. The job goes on after it: pointed at it again, the job
        would have its every claim refused by the fire's unique key.
        """
        last = job.state.last_fire
        after = now if last is None or last < now else last + timedelta(microseconds=1)
        return spec.first_fire(after, job.state.fires)

    def _set_active(self, name: str, active: bool, note: str, state: JobState | None = None) -> dict:
        job = self.engine.job(name)
        updated = StoredJob(job.uid, replace(job.spec, active=active, note=note), replace(state or job.state))
        updated.state.paused_note = note
        self.engine.store.save_job(updated)  # first: a store error leaves the job as it was
        self.engine.jobs[name] = updated
        if not active:
            self.engine.recall(name, "paused", keep=True)  # its claimed runs wait in the runner for its resume
        elif self.engine.inflight.is_waiting_ahead(name) and self.engine.may_predispatch(updated):
            self.engine.predispatch_waiting(updated)
        self.engine.reschedule(updated)
        if active:
            self.warm(job.spec.service)
        else:
            self.review_spares(job.spec.service)
        self.engine.hooks.changed(f"job:{name}")
        return self.job_record(name)

    def warm(self, service: str) -> None:
        """Have a kernel booted ahead for the next fire of a job of ``service``, if it is a notebook. The job is
        stored already: a failure here costs its first fire a kernel's boot, never the request its answer."""
        if self.engine.catalog.is_notebook(service):
            try:
                self.engine.hooks.warm(service)
            except Exception:
                log.exception("booting a kernel ahead for %s failed", service)

    def review_spares(self, service: str) -> None:
        """A job of ``service`` was deleted, paused or moved to another service: if it is a notebook, tell the
        workers (once, ``SPARE_REVIEW_SECONDS`` later, for all the changes meanwhile) which notebooks still have
        an active job, so that spare kernels of the others are shut down."""
        if self._spares_review is None and self.engine.catalog.is_notebook(service):
            self._spares_review = self.engine.hooks.call_later(config.SPARE_REVIEW_SECONDS, self._keep_spares)

    def _keep_spares(self) -> None:
        self._spares_review = None
        jobs, catalog = self.engine.jobs.values(), self.engine.catalog
        services = {job.spec.service for job in jobs if job.spec.active}
        self.engine.hooks.keep_spares({service for service in services if catalog.is_notebook(service)})

    def warm_all(self) -> None:
        """At the runner's start: a kernel booted ahead for each notebook service an active job runs."""
        for service in {job.spec.service for job in self.engine.jobs.values() if job.spec.active}:
            self.warm(service)

    def delete(self, name: str) -> dict:
        self.engine.job(name)
        self.engine.store.delete_job(name)
        job = self.engine.jobs.pop(name)
        self.engine.stats.pop(job.uid, None)  # its runs stay in history, under its uid; a new job starts afresh
        self.engine.schedule.remove(name)
        # After the job is gone: a run taken back ends, and the end of a run hands the job's next
        # claimed run to a worker only while the job exists.
        self.engine.recall(name, "deleted")
        self.review_spares(job.spec.service)
        self.engine.hooks.changed(f"job:{name}")
        return {"deleted": name}

    def job_record(self, name: str, detail: bool = False) -> dict:
        job = self.engine.job(name)
        record = listed(job, self.engine.stats.get(job.uid, NO_RUNS))
        if detail:
            spec, state = job.spec, job.state
            record.update(spec.to_record(), fires=state.fires, created_at=state.created_at, uid=job.uid)
            record["type"] = spec.kind
        return record

    @staticmethod
    def _with_notice(record: dict, spec: JobSpec, now: datetime) -> dict:
        """The reply to a change, with what the user may not expect: a one-time job whose ``at`` is past fires
        at once (or at its resume)."""
        if spec.kind == "one_time" and spec.at < now:
            when = "runs now" if spec.active else "runs when resumed"
            record["notice"] = f"at is in the past: {when}"
        return record

    def job_records(self) -> list[dict]:
        jobs, stats = self.engine.jobs, self.engine.stats
        return [listed(job, stats.get(job.uid, NO_RUNS)) for job in map(jobs.__getitem__, sorted(jobs))]
