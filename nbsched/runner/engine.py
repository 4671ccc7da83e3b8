"""The scheduling engine: jobs, fires, runs and their results, with time injected.

The engine holds no socket and no event loop. ``tick(now)`` claims every fire due at
``now`` and hands the runs to ``dispatch``; ``on_result`` records what a worker reported.
The runner process wires it to the clock, the worker pool and the socket; tests drive it
with explicit datetimes.

A store that fails (locked by another process, disk full, read-only) costs no run its record and
stops no job silently: due fires stay in the schedule and are claimed once the store works again
(the fires it made late follow their job's misfire policy); results and pending retries stay
buffered, in order, until they are written; the error is logged and shown by ``store_status``.
A store whose file was deleted or replaced (``StoreGone``) is never written again: the engine stops
firing, and each request that would write says why, until the runner is restarted on a new store.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import secrets
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from .. import config
from ..errors import (
    JobNotFound,
    StoreError,
    StoreGone,
    did_you_mean,
)
from ..model.jobs import JobSpec
from ..store import Claim, Store, StoredJob
from ..store.base import PendingRetry
from .catalog import Catalog
from .claims import fire_claim, misfire_claim
from .control import JobControl, JobStats
from .ondemand import OnDemand
from .reading import Reader
from .schedule import Schedule

log = logging.getLogger(__name__)
#: Longest pause between retries, in seconds.
MAX_RETRY_BACKOFF = 300.0
#: Seconds between tries to write to a store that failed (due fires and results wait meanwhile).
STORE_RETRY_SECONDS = 0.5


@dataclass(slots=True)
class ActiveRun:
    """A run handed to the workers and not finished yet."""

    run_id: int
    job: str | None
    service: str
    trigger: str
    attempt: int
    scheduled_at: datetime
    message: dict
    timeout: float | None = None
    retries: int = 0
    timer: object = None


@dataclass
class Hooks:
    """What the engine needs from its surroundings."""

    dispatch: Callable[[dict], None]
    kill: Callable[[int, str, str], bool] = lambda run_id, status, error: False
    cancel: Callable[[int, str], bool] = lambda run_id, error: False
    call_later: Callable[[float, Callable[[], None]], object] = lambda delay, fn: None
    cancel_timer: Callable[[object], None] = lambda handle: None
    registry_changed: Callable[[dict, dict], None] = lambda sources, services: None
    connections_changed: Callable[[dict], None] = lambda definitions: None
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)  # for what happens outside ``tick(now)``
    wake: Callable[[], None] = lambda: None  # a run joined ``ahead`` outside ``tick``: ask ``next_due`` again


@dataclass(slots=True)
class StoreTrouble:
    """The store failed and has not worked since: the error, since when, and when to try it again."""

    error: str
    since: datetime
    retry_at: datetime
    gone: bool = False  # its file was deleted or replaced: never tried again

    def record(self) -> dict:
        return {"error": self.error, "since": self.since, "gone": self.gone}


@dataclass
class Engine:
    store: Store
    hooks: Hooks
    runner_id: str
    default_tz: str = "UTC"
    in_loop_grace: timedelta = timedelta(seconds=60)
    jobs: dict[str, StoredJob] = field(default_factory=dict)
    schedule: Schedule = field(default_factory=Schedule)
    active: dict[int, ActiveRun] = field(default_factory=dict)
    running_by_job: dict[str, list[int]] = field(default_factory=dict)
    queued_by_job: dict[str, deque] = field(default_factory=dict)
    stats: dict[str, JobStats] = field(default_factory=dict)
    pending: list[dict] = field(default_factory=list)
    finished_listeners: list[Callable[[int], None]] = field(default_factory=list)
    claim_ahead: timedelta = timedelta(seconds=config.CLAIM_AHEAD_SECONDS)
    ahead: list[tuple[datetime, int, str, dict]] = field(default_factory=list)  # claimed, not yet due
    waiting_ahead: dict[str, dict[int, dict]] = field(default_factory=dict)  # job -> its runs in ``ahead``
    predispatched: dict[int, str] = field(default_factory=dict)  # run id -> job: with a worker, not yet due
    recalled: set[int] = field(default_factory=set)  # predispatched runs taken back to wait in ``ahead`` again
    retries_to_store: list[PendingRetry] = field(default_factory=list)  # written with ``pending``
    store_trouble: StoreTrouble | None = None
    recovered_at: datetime | None = None  # when the store worked again: the fires it made late are misfires
    stopped: bool = False  # the runner is stopping: nothing more starts
    # Correlation ids: 24 hex digits, a random prefix per engine + a counter (unique, and cheap per run).
    _cid_prefix: str = field(default_factory=lambda: secrets.token_hex(6))
    _cid_count: Iterator[int] = field(default_factory=itertools.count)
    catalog: Catalog = field(init=False)
    control: JobControl = field(init=False)
    ondemand: OnDemand = field(init=False)
    reader: Reader = field(init=False)

    def __post_init__(self) -> None:
        self.catalog = Catalog(self.store, self.hooks.registry_changed, self.hooks.connections_changed)
        self.control = JobControl(self)
        self.ondemand = OnDemand(self)
        self.reader = Reader(self.store, self.flush, self.default_tz)

    def _new_cid(self) -> str:
        return f"{self._cid_prefix}{next(self._cid_count):012x}"

    # -- start ------------------------------------------------------------------
    def load(self, now: datetime) -> None:
        """Read the store; mark runs a dead runner left as interrupted; catch up missed fires."""
        interrupted = self.store.interrupt_running(now)
        if interrupted:
            log.warning("marked %d run(s) left running by a previous runner as interrupted", interrupted)
        self.catalog.load()
        self.stats = {name: JobStats(**values) for name, values in self.store.job_stats().items()}
        self.jobs = {job.spec.name: job for job in self.store.jobs()}
        for job in self.jobs.values():
            if job.spec.kind == "cron":
                self.control.check_cron_line(job, now)
            self.reschedule(job)
        self.tick(now, grace=timedelta(seconds=config.MISFIRE_GRACE_SECONDS))
        self._resume_retries(now)

    def _resume_retries(self, now: datetime) -> None:
        """Schedule again the retries that a previous runner stored and did not start."""
        retries = self.store.pending_retries()
        if retries:
            log.info("%d retry attempt(s) stored by a previous runner are scheduled again", len(retries))
        for retry in retries:
            delay = max(0.0, (retry.due_at - now).total_seconds())
            self.hooks.call_later(delay, lambda retry=retry: self._start_retry(retry))

    def reschedule(self, job: StoredJob) -> None:
        active = job.spec.active and job.state.next_fire is not None
        self.schedule.set(job.spec.name, job.state.next_fire if active else None)

    def refresh(self, name: str) -> None:
        job = self.store.job(name)
        if job is None:
            self.jobs.pop(name, None)
            self.schedule.remove(name)
        else:
            self.jobs[name] = job
            self.reschedule(job)

    def job(self, name: object) -> StoredJob:
        if not isinstance(name, str) or name not in self.jobs:
            known = sorted(self.jobs)
            shown = ", ".join(known[:20]) + (" ..." if len(known) > 20 else "")
            raise JobNotFound(
                f"No job named {name!r}.{did_you_mean(str(name), known)} Jobs: {shown or 'none'}. See %schedule list."
            )
        return self.jobs[name]

    def is_finished(self, run_id: int) -> bool:
        return (
            run_id not in self.active
            and not any(rid == run_id for queue in self.queued_by_job.values() for rid, _ in queue)
            and not any(run_id in waiting for waiting in self.waiting_ahead.values())
        )

    # -- firing -----------------------------------------------------------------
    def tick(self, now: datetime, grace: timedelta | None = None) -> int:
        """Start every fire due at ``now``; claim the fires due within ``claim_ahead`` of it.

        Claiming (the store write that makes a fire a run, exactly once) happens a little before
        the fire is due, so that at the due time only the hand-over to a worker remains.
        While the store fails, due fires stay due and are claimed at its next try; once its file
        is gone, nothing fires. Return how many runs were created.
        """
        if self.stopped or (self.store_trouble is not None and self.store_trouble.gone):
            return 0
        created = self._claim_due(now, grace) if self._may_write(now) else 0
        self._start_ahead(now)
        return created

    def stop(self) -> None:
        """Start nothing more, neither fires nor retries: the runner is stopping. Stored retries wait for the next."""
        self.stopped = True

    def _may_write(self, now: datetime) -> bool:
        trouble = self.store_trouble
        return trouble is None or (not trouble.gone and now >= trouble.retry_at)

    def _claim_due(self, now: datetime, grace: timedelta | None) -> int:
        grace = self.in_loop_grace if grace is None else grace
        names = self.schedule.due(now + self.claim_ahead, limit=config.MAX_CLAIMS_PER_TICK)
        due = [self.jobs[name] for name in names if name in self.jobs]
        try:
            claims = self._claims(due, now, grace)
        except Exception:
            self._reschedule_all(due)
            raise
        if not claims:
            return 0
        try:
            results = self.store.claim([claim for _, claim in claims])
        except Exception as exc:
            self._reschedule_all(due)
            self._store_failed(exc)
            return 0
        self._store_works(now)
        created = 0
        for (job, claim), run_ids in zip(claims, results, strict=True):
            if run_ids is None:
                self._claim_lost(job, claim)
                continue
            job.state.next_fire = claim.new_next
            job.state.fires = claim.fires
            if claim.runs:
                job.state.last_fire = max(run["scheduled_at"] for run in claim.runs)
            self.schedule.set(job.spec.name, claim.new_next)
            for run_id, run in zip(run_ids, claim.runs, strict=True):
                created += 1
                if run["scheduled_at"] > now and run["status"] == "running" and self.may_predispatch(job):
                    self.predispatched[run_id] = job.spec.name
                    self.dispatch_run(run_id, run, job.spec, channel="scheduler", not_before=run["scheduled_at"])
                elif run["scheduled_at"] > now and run["status"] == "running":
                    heapq.heappush(self.ahead, (run["scheduled_at"], run_id, job.spec.name, run))
                    self.waiting_ahead.setdefault(job.spec.name, {})[run_id] = run
                else:
                    self.start_claimed(job, run_id, run, force_queue=len(claim.runs) > 1)
        self._forget_outage()
        return created

    def _reschedule_all(self, due: list[StoredJob]) -> None:
        """Put jobs taken from the schedule as due back in: their fires were not claimed, they are due still."""
        for job in due:
            self.reschedule(job)

    def _claims(self, due: list[StoredJob], now: datetime, grace: timedelta) -> list[tuple[StoredJob, Claim]]:
        claims = []
        for job in due:
            if not job.spec.active or job.state.next_fire is None:
                continue
            reason = self._missed_reason(job, now, grace)
            claims.append(
                (job, misfire_claim(job, now, self.new_run, reason) if reason else fire_claim(job, self.new_run))
            )
        return claims

    def _missed_reason(self, job: StoredJob, now: datetime, grace: timedelta) -> str | None:
        """Why the job's next fire counts as missed (its misfire policy decides what runs), or None: it runs."""
        fire = job.state.next_fire
        outage = self.store_trouble is not None or (self.recovered_at is not None and fire < self.recovered_at)
        if outage and now - fire > timedelta(seconds=config.MISFIRE_GRACE_SECONDS):
            return "while the store could not be written"
        if now - fire > grace:
            return "while no runner was up"
        return None

    def _forget_outage(self) -> None:
        """Once no job is due from before the store worked again, no fire is late because of its outage."""
        first = self.schedule.next_due()
        if self.recovered_at is not None and (first is None or first >= self.recovered_at):
            self.recovered_at = None

    def _claim_lost(self, job: StoredJob, claim: Claim) -> None:
        """The store refused a claim: another runner took the fire, or the job changed meanwhile; read it again.

        A fire that is still the job's next although it was claimed before (its unique key refused it) is
        stepped over, so that it is not claimed again, and refused again, on every tick.
        """
        name = job.spec.name
        try:
            self.refresh(name)
            current = self.jobs.get(name)
            if current is None or claim.expected_next is None or current.state.next_fire != claim.expected_next:
                return
            log.warning("job %r: its fire at %s was claimed before; going on after it", name, claim.expected_next)
            after = current.spec.next_fire(claim.expected_next, current.state.fires)
            if self.store.claim([Claim(current.uid, claim.expected_next, after, current.state.fires)])[0] is not None:
                current.state.next_fire = after
                self.reschedule(current)
        except Exception as exc:
            self.reschedule(job)
            self._store_failed(exc)

    def may_predispatch(self, job: StoredJob) -> bool:
        """A fire claimed ahead goes to a worker at once (to start at its time) when nothing can change the
        decision to run it: the job has no run in progress or queued, no jitter, and no run may be killed."""
        spec, name = job.spec, job.spec.name
        return not (
            spec.jitter or spec.timeout or spec.overlap == "replace" or self.running_by_job.get(name)
        ) and not self.queued_by_job.get(name)

    def recall(self, name: str, reason: str, keep: bool = False) -> None:
        """Take back the runs of job ``name`` that wait in a worker for their time: they end as skipped, or,
        with ``keep``, wait in the runner again (``_hold_again``)."""
        for run_id, job in list(self.predispatched.items()):
            if job == name:
                if keep:
                    self.recalled.add(run_id)
                if not self.hooks.cancel(run_id, f"Job {name!r} was {reason} before this run started."):
                    self.recalled.discard(run_id)  # it started: its result comes as any run's

    def _start_ahead(self, now: datetime) -> None:
        """Start the claimed runs whose time has come; a job paused or deleted meanwhile skips its run."""
        while self.ahead and self.ahead[0][0] <= now:
            _, run_id, name, run = heapq.heappop(self.ahead)
            waiting = self.waiting_ahead.get(name)
            if waiting is None or waiting.pop(run_id, None) is None:
                continue  # handed to a worker already, when the job's run before it ended
            if not waiting:
                del self.waiting_ahead[name]
            job = self.jobs.get(name)
            if job is None or not job.spec.active:
                reason = "deleted" if job is None else "paused"
                self._finish_now(run_id, run, "skipped", f"Job {name!r} was {reason} before this run started.")
            else:
                self.start_claimed(job, run_id, run)

    def new_run(self, spec: JobSpec | None, trigger: str, scheduled_at: datetime, service: str | None = None) -> dict:
        service = service or spec.service
        return {
            "cid": self._new_cid(),
            "job": spec.name if spec else None,
            "service": service,
            "service_version": self.catalog.version_of(service),
            "trigger": trigger,
            "attempt": 1,
            "status": "running",
            "scheduled_at": scheduled_at,
            "runner": self.runner_id,
        }

    def start_claimed(self, job: StoredJob, run_id: int, run: dict, force_queue: bool = False) -> None:
        if run["status"] != "running":
            self._count(job.spec.name, run["status"], run["scheduled_at"])
            return
        name, policy = job.spec.name, job.spec.overlap
        if force_queue:
            policy = "queue_all"
        busy = self.running_by_job.get(name) or []
        queue = self.queued_by_job.setdefault(name, deque())
        if busy and policy != "allow":
            if policy == "skip" or (policy == "queue" and queue):
                self._finish_now(
                    run_id,
                    run,
                    "skipped",
                    f"Run {busy[0]} of job {name!r} was still running (overlap={job.spec.overlap}).",
                )
                return
            if policy in ("queue", "queue_all"):
                queue.append((run_id, run))
                return
            for other in list(busy):
                self.hooks.kill(other, "interrupted", f"Replaced by run {run_id} (overlap=replace).")
        elif queue and policy in ("queue", "queue_all"):
            queue.append((run_id, run))
            return
        self.dispatch_run(run_id, run, job.spec, channel="scheduler")

    def _finish_now(self, run_id: int, run: dict, status: str, error: str) -> None:
        now = self.hooks.clock()
        self.pending.append({"run_id": run_id, "status": status, "error": error, "finished_at": now})
        self._count(run["job"], status, run["scheduled_at"])
        self._notify(run_id)

    def dispatch_run(
        self,
        run_id: int,
        run: dict,
        spec: JobSpec | None,
        channel: str,
        extra=None,
        attempt: int = 1,
        not_before: datetime | None = None,
    ) -> None:
        message = {
            "run_id": run_id,
            "cid": run["cid"],
            "service": run["service"],
            "extra": spec.extra if spec else extra,
            "channel": channel,
            "job": {"name": spec.name, "type": spec.kind, "run_number": self.jobs[spec.name].state.fires}
            if spec and spec.name in self.jobs
            else None,
            "scheduled_at": run["scheduled_at"].timestamp(),
            # May be killed (timeout, overlap=replace): runs alone in its worker, never pipelined.
            "exclusive": bool(spec and (spec.timeout or spec.overlap == "replace")),
        }
        if spec is not None and spec.isolation == "process":
            message["isolation"] = "process"  # a fresh worker process for this run alone
        if not_before is not None:
            message["not_before"] = not_before.timestamp()  # the worker holds it until then
        self.active[run_id] = ActiveRun(
            run_id=run_id,
            job=run["job"],
            service=run["service"],
            trigger=run["trigger"],
            attempt=attempt,
            scheduled_at=run["scheduled_at"],
            message=message,
            timeout=spec.timeout if spec else None,
            retries=spec.retries if spec else 0,
        )
        if run["job"]:
            self.running_by_job.setdefault(run["job"], []).append(run_id)
        jitter = spec.jitter if spec and run["trigger"] in ("schedule", "misfire") else 0.0
        if jitter:
            self.hooks.call_later(random.uniform(0, jitter), lambda: self.hooks.dispatch(message))
        else:
            self.hooks.dispatch(message)

    def on_start(self, run_id: int) -> None:
        """A worker took the run: start its timeout clock."""
        active = self.active.get(run_id)
        if active and active.timeout:
            active.timer = self.hooks.call_later(
                active.timeout,
                lambda: self.hooks.kill(
                    run_id, "timeout", f"The run took longer than its timeout of {active.timeout:g}s and was stopped."
                ),
            )

    def on_result(self, result: dict) -> None:
        """Record what a worker reported for a run."""
        run_id = result["run_id"]
        self.predispatched.pop(run_id, None)
        recalled = run_id in self.recalled
        self.recalled.discard(run_id)
        active = self.active.pop(run_id, None)
        if active is None:
            log.warning("result for unknown run %s ignored", run_id)
            return
        if active.timer is not None:
            self.hooks.cancel_timer(active.timer)
        if recalled and result["status"] == "skipped" and not result.get("started_at"):
            self._hold_again(active)
            return
        finished = _from_epoch(result.get("finished_at")) or self.hooks.clock()
        started = _from_epoch(result.get("started_at"))
        update = {
            "run_id": run_id,
            "status": result["status"],
            "started_at": started,
            "finished_at": finished,
            "delay_ms": (started - active.scheduled_at).total_seconds() * 1000 if started else None,
            "duration_ms": (finished - started).total_seconds() * 1000 if started else None,
            "error": result.get("error"),
            "traceback": result.get("traceback"),
            "output": result.get("output"),
            "logs": result.get("logs"),
        }
        self.pending.append(update)
        if active.job:
            self._count(active.job, result["status"], started or finished)
            self._job_run_ended(active.job, run_id)
        if result["status"] in ("error", "timeout") and active.attempt <= active.retries:
            self._retry_later(active, finished)
        self._notify(run_id)

    def _hold_again(self, active: ActiveRun) -> None:
        """A run taken back from its worker because its job was paused before the run's time: it waits in the
        runner again, to start at its time if the job is active by then (resumed), or to be skipped if not."""
        name, run_id = active.job, active.run_id
        busy = self.running_by_job.get(name, [])
        if run_id in busy:
            busy.remove(run_id)
        run = {
            "cid": active.message["cid"],
            "job": name,
            "service": active.service,
            "trigger": active.trigger,
            "attempt": active.attempt,
            "status": "running",
            "scheduled_at": active.scheduled_at,
        }
        heapq.heappush(self.ahead, (active.scheduled_at, run_id, name, run))
        self.waiting_ahead.setdefault(name, {})[run_id] = run
        job = self.jobs.get(name)
        if job is not None and job.spec.active and self.may_predispatch(job):
            self.predispatch_waiting(job)
        self.hooks.wake()

    def _job_run_ended(self, name: str, run_id: int) -> None:
        busy = self.running_by_job.get(name, [])
        if run_id in busy:
            busy.remove(run_id)
        queue = self.queued_by_job.get(name)
        job = self.jobs.get(name)
        if queue and not busy:
            next_id, run = queue.popleft()
            if job is None:
                self._finish_now(next_id, run, "skipped", f"Job {name!r} was deleted before this queued run started.")
            else:
                self.dispatch_run(next_id, run, job.spec, channel="scheduler")
        elif name in self.waiting_ahead and job is not None and job.spec.active and self.may_predispatch(job):
            self.predispatch_waiting(job)

    def predispatch_waiting(self, job: StoredJob) -> None:
        """The job's run before ended while its next one, claimed, waits for its time: hand that one to a
        worker now, to start at its time, as if no run had been in progress when it was claimed."""
        name = job.spec.name
        waiting = self.waiting_ahead[name]
        run_id = min(waiting, key=lambda rid: waiting[rid]["scheduled_at"])
        run = waiting.pop(run_id)
        if not waiting:
            del self.waiting_ahead[name]
        self.predispatched[run_id] = name
        self.dispatch_run(run_id, run, job.spec, channel="scheduler", not_before=run["scheduled_at"])

    def _retry_later(self, active: ActiveRun, finished: datetime) -> None:
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
            channel=active.message["channel"],
        )
        self.retries_to_store.append(retry)
        self.hooks.call_later(delay, lambda: self._start_retry(retry))

    def _start_retry(self, retry: PendingRetry) -> None:
        """Start the next attempt of a failed run; its row replaces the stored retry in one store step, so no
        restart loses or repeats it. The failed run's result goes first; while the store fails, the attempt waits."""
        if self.stopped:
            return  # stored: the next runner starts it
        if self.store_trouble is not None and self.store_trouble.gone:
            log.error("retry of run %d not started: the store's file is gone", retry.run_id)
            return
        if self.flush(self.hooks.clock()):
            job = self.jobs.get(retry.job) if retry.job else None
            spec = job.spec if job else None
            run = {
                **self.new_run(spec, "retry", retry.scheduled_at, service=retry.service),
                "attempt": retry.attempt + 1,
            }
            try:
                (run_id,) = self.store.add_runs([run], retried=[retry.run_id])
            except Exception as exc:
                self._store_failed(exc)
            else:
                self.dispatch_run(run_id, run, spec, channel=retry.channel, attempt=retry.attempt + 1)
                self.active[run_id].retries = retry.retries
                return
        self.hooks.call_later(STORE_RETRY_SECONDS, lambda: self._start_retry(retry))

    def _count(self, job: str | None, status: str, when: datetime | None) -> None:
        if job is None:
            return
        stats = self.stats.setdefault(job, JobStats())
        stats.runs += 1
        stats.last_status = status
        stats.last_run = when

    def _notify(self, run_id: int) -> None:
        for listener in list(self.finished_listeners):
            listener(run_id)

    def flush(self, now: datetime | None = None) -> bool:
        """Write buffered run results and pending retries to the store; return whether all are written.

        On a store error they stay buffered, in order, and go with a later flush: none is ever dropped.
        With ``now`` (the runner's flush loop), a store that failed is tried again from its retry time only.
        """
        if not self.pending and not self.retries_to_store:
            return True
        trouble = self.store_trouble
        if trouble is not None and (trouble.gone or (now is not None and now < trouble.retry_at)):
            return False
        pending, self.pending = self.pending, []
        retries, self.retries_to_store = self.retries_to_store, []
        try:
            self.store.update_runs(pending, retries)
        except Exception as exc:
            self.pending[:0] = pending
            self.retries_to_store[:0] = retries
            self._store_failed(exc)
            return False
        self._store_works(now or self.hooks.clock())
        return True

    def next_due(self) -> datetime | None:
        """When ``tick`` has work next: a claimed run to start, or fires to claim ahead (or, while the store
        fails, to try it again); None once the store's file is gone."""
        trouble = self.store_trouble
        if trouble is not None and trouble.gone:
            return None
        times = [self.ahead[0][0]] if self.ahead else []
        due = self.schedule.next_due()
        if due is not None:
            claim_at = due - self.claim_ahead
            times.append(claim_at if trouble is None else max(claim_at, trouble.retry_at))
        return min(times, default=None)

    # -- store health -----------------------------------------------------------
    def store_status(self) -> dict | None:
        """What is wrong with the store, for the runner's status: ``error``, ``since`` and ``gone`` (its file was
        deleted or replaced; the runner then fires nothing and refuses every change), or None while it works."""
        if self.store_trouble is None or not self.store_trouble.gone:
            try:
                self.store.check()
            except StoreGone as exc:
                self._store_failed(exc)
        return None if self.store_trouble is None else self.store_trouble.record()

    def _store_failed(self, exc: Exception) -> None:
        """Note a store error, logged when it starts or changes; the store is tried again from ``retry_at``."""
        now = self.hooks.clock()
        gone = isinstance(exc, StoreGone)
        cause = exc.__cause__ if isinstance(exc, StoreError) and not gone and exc.__cause__ else exc
        error = str(cause) or type(cause).__name__
        trouble = self.store_trouble
        if gone and not (trouble and trouble.gone):
            log.error("%s", error)
        elif trouble is None or trouble.error != error:
            log.warning(
                "the store failed: %s; due fires wait and results are kept until it works again (tried every %g s)",
                error,
                STORE_RETRY_SECONDS,
                exc_info=not isinstance(exc, StoreError),
            )
        self.store_trouble = StoreTrouble(
            error=error if not (trouble and trouble.gone) else trouble.error,
            since=now if trouble is None else trouble.since,
            retry_at=now + timedelta(seconds=STORE_RETRY_SECONDS),
            gone=gone or bool(trouble and trouble.gone),
        )

    def _store_works(self, now: datetime) -> None:
        trouble = self.store_trouble
        if trouble is None or trouble.gone:
            return
        log.warning("the store works again; it failed from %s: %s", trouble.since.isoformat(), trouble.error)
        self.store_trouble = None
        self.recovered_at = now


def _from_epoch(value) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)
