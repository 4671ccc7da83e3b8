"""Results: what the engine records as runs start and end, the buffer of history updates, and retries.

A worker's result goes into ``pending`` and is written with the next ``flush`` (one statement per batch);
a store error keeps the batch, in order, until it can be written. A failed run with retries left is
stored as a pending retry together with its result, so a restart runs the attempts still due.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from ..errors import RetryStarted
from ..model.runs import NewRun, RunUpdate
from ..store.base import PendingRetry, StoredJob
from ..worker.pipe import Result
from .control import JobStats
from .outage import STORE_RETRY_SECONDS

if TYPE_CHECKING:
    from .engine import Engine
    from .inflight import ActiveRun

log = logging.getLogger("nbsched.runner.engine")
#: Longest pause between retries, in seconds.
MAX_RETRY_BACKOFF = 300.0


@dataclass
class Results:
    """The results of one engine's runs: recorded, buffered, written; retries scheduled."""

    engine: Engine
    pending: list[RunUpdate] = field(default_factory=list)
    retries_to_store: list[PendingRetry] = field(default_factory=list)  # written with ``pending``
    finished_listeners: list[Callable[[int], None]] = field(default_factory=list)
    #: Called with each run a worker ended, its update, and whether a retry follows (``runner.notify``).
    ended_listeners: list[Callable[[ActiveRun, RunUpdate, bool], None]] = field(default_factory=list)
    #: ... and with each run a claim created finished (a ``missed`` row): its job, run id and record.
    claimed_listeners: list[Callable[[StoredJob, int, NewRun], None]] = field(default_factory=list)

    def on_start(self, run_id: int) -> None:
        """A worker took the run: start its timeout clock."""
        active = self.engine.inflight.active.get(run_id)
        if active and active.timeout:
            active.timer = self.engine.hooks.call_later(
                active.timeout,
                lambda: self.engine.hooks.kill(
                    run_id, "timeout", f"The run took longer than its timeout of {active.timeout:g}s and was stopped."
                ),
            )

    def on_result(self, result: Result) -> None:
        """Record what a worker reported for a run."""
        run_id = result.run_id
        active, recalled = self.engine.inflight.end(run_id)
        if active is None:
            log.warning("result for unknown run %s ignored", run_id)
            return
        if active.timer is not None:
            self.engine.hooks.cancel_timer(active.timer)
        if recalled and result.status == "skipped" and not result.started_at:
            self.hold_again(active)
            return
        finished = _from_epoch(result.finished_at) or self.engine.hooks.clock()
        started = _from_epoch(result.started_at)
        update: RunUpdate = {
            "run_id": run_id,
            "status": result.status,
            "started_at": started,
            "finished_at": finished,
            "delay_ms": (started - active.scheduled_at).total_seconds() * 1000 if started else None,
            "duration_ms": (finished - started).total_seconds() * 1000 if started else None,
            "error": result.error,
            "traceback": result.traceback,
            "output": result.output,
            "logs": result.logs,
        }
        self.pending.append(update)
        if active.job:
            self.count(active.job_uid, result.status, started or finished)
            self.job_run_ended(active.job, run_id)
        retried = result.status in ("error", "timeout") and active.attempt <= active.retries
        if retried:
            self.retry_later(active, finished)
        for listener in self.ended_listeners:
            listener(active, update, retried)
        self.notify(run_id)

    def hold_again(self, active: ActiveRun) -> None:
        """A run taken back from its worker because its job was paused before the run's time: it waits in the
        runner again, to start at its time if the job is active by then (resumed), or to be skipped if not."""
        name, run_id = active.job, active.run_id
        self.engine.inflight.leave_job(name, run_id)
        run: NewRun = {
            "cid": active.message.cid,
            "job": name,
            "job_uid": active.job_uid,
            "service": active.service,
            "service_version": None,
            "trigger": active.trigger,
            "attempt": active.attempt,
            "status": "running",
            "scheduled_at": active.scheduled_at,
            "runner": self.engine.runner_id,
        }
        self.engine.inflight.hold_ahead(name, run_id, run)
        job = self.engine.jobs.get(name)
        if job is not None and job.spec.active and self.engine.may_predispatch(job):
            self.engine.predispatch_waiting(job)
        self.engine.hooks.wake()

    def job_run_ended(self, name: str, run_id: int) -> None:
        inflight = self.engine.inflight
        busy = inflight.leave_job(name, run_id)
        job = self.engine.jobs.get(name)
        queued = inflight.dequeue(name) if not busy else None
        if queued is not None:
            next_id, run = queued
            if job is None:
                self.finish_now(next_id, run, "skipped", f"Job {name!r} was deleted before this queued run started.")
            else:
                self.engine.dispatch_run(next_id, run, job.spec, channel="scheduler")
        elif (
            inflight.is_waiting_ahead(name) and job is not None and job.spec.active and self.engine.may_predispatch(job)
        ):
            self.engine.predispatch_waiting(job)

    def retry_later(self, active: ActiveRun, finished: datetime) -> None:
        """Run a failed run again after a backoff. The retry is stored with the failed run's result (``flush``),
        so that a restart before its time does not lose it: ``load`` schedules it again."""
        delay = min(2.0 ** (active.attempt - 1), MAX_RETRY_BACKOFF)
        retry = PendingRetry(
            run_id=active.run_id,
            job=active.job,
            service=active.service,
            attempt=active.attempt,
            retries=active.retries,
            scheduled_at=active.scheduled_at,
            due_at=finished + timedelta(seconds=delay),
            channel=active.message.channel,
        )
        self.retries_to_store.append(retry)
        self.engine.hooks.call_later(delay, lambda: self.start_retry(retry))

    def start_retry(self, retry: PendingRetry) -> None:
        """Start the next attempt of a failed run; its row replaces the stored retry in one store step, so no
        restart loses or repeats it. The failed run's result goes first; while the store fails, the attempt waits."""
        if self.engine.stopped:
            return  # stored: the next runner starts it
        if self.engine.health.trouble is not None and self.engine.health.trouble.gone:
            log.error("retry of run %d not started: the store's file is gone", retry.run_id)
            return
        if self.flush(self.engine.hooks.clock()):
            job = self.engine.jobs.get(retry.job) if retry.job else None
            spec = job.spec if job else None
            run = self.engine.new_run(spec, "retry", retry.scheduled_at, service=retry.service)
            run["attempt"] = retry.attempt + 1
            try:
                (run_id,) = self.engine.store.add_runs([run], retried=[retry.run_id])
            except RetryStarted:
                log.info("retry of run %d was started by another runner", retry.run_id)
                return
            except Exception as exc:
                self.engine.health.failed(exc)
            else:
                self.engine.dispatch_run(run_id, run, spec, channel=retry.channel, attempt=retry.attempt + 1)
                self.engine.inflight.active[run_id].retries = retry.retries
                return
        self.engine.hooks.call_later(STORE_RETRY_SECONDS, lambda: self.start_retry(retry))

    def resume_retries(self, now: datetime) -> None:
        """Schedule again the retries that a previous runner stored and did not start."""
        retries = self.engine.store.pending_retries()
        if retries:
            log.info("%d retry attempt(s) stored by a previous runner are scheduled again", len(retries))
        for retry in retries:
            delay = max(0.0, (retry.due_at - now).total_seconds())
            self.engine.hooks.call_later(delay, lambda retry=retry: self.start_retry(retry))

    def recorded_at_claim(self, job: StoredJob, run_id: int, run: NewRun) -> None:
        """A fire recorded as it was claimed (``missed``, ``skipped``): count it, and tell the listeners."""
        self.count(job.uid, run["status"], run["scheduled_at"])
        for listener in self.claimed_listeners:
            listener(job, run_id, run)

    def count(self, job_uid: str | None, status: str, when: datetime | None) -> None:
        """Count a run of the job with ``job_uid`` in its listing's figures (none: a run of no job)."""
        if job_uid is None:
            return
        stats = self.engine.stats.get(job_uid)
        if stats is None:  # not ``setdefault``: that would build a JobStats for every run counted
            stats = self.engine.stats[job_uid] = JobStats()
        stats.runs += 1
        stats.last_status = status
        stats.last_run = when

    def notify(self, run_id: int) -> None:
        for listener in list(self.finished_listeners):
            listener(run_id)

    def flush(self, now: datetime | None = None) -> bool:
        """Write buffered run results and pending retries to the store; return whether all are written.

        On a store error they stay buffered, in order, and go with a later flush: none is ever dropped.
        With ``now`` (the runner's flush loop), a store that failed is tried again from its retry time only.
        """
        if not self.pending and not self.retries_to_store:
            return True
        trouble = self.engine.health.trouble
        if trouble is not None and (trouble.gone or (now is not None and now < trouble.retry_at)):
            return False
        pending, self.pending = self.pending, []
        retries, self.retries_to_store = self.retries_to_store, []
        try:
            self.engine.store.update_runs(pending, retries)
        except Exception as exc:
            self.pending[:0] = pending
            self.retries_to_store[:0] = retries
            self.engine.health.failed(exc)
            return False
        self.engine.health.works(now or self.engine.hooks.clock())
        return True

    def finish_now(self, run_id: int, run: NewRun, status: str, error: str) -> None:
        now = self.engine.hooks.clock()
        self.pending.append({"run_id": run_id, "status": status, "error": error, "finished_at": now})
        self.count(run.get("job_uid") if run["job"] else None, status, run["scheduled_at"])
        self.notify(run_id)


def _from_epoch(value) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)
