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
import math
import random
import secrets
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from .. import config
from .. import connections as conns
from ..errors import (
    ConnectionNotFound,
    InvalidInput,
    InvalidJob,
    JobNotFound,
    RunNotFound,
    ServiceNotFound,
    StoreError,
    StoreGone,
    did_you_mean,
)
from ..model import cron
from ..model.jobs import JobSpec, JobState, validate_extra, validate_note
from ..model.runs import RUN_FIELDS, STATUSES
from ..model.timeparse import parse_datetime, parse_duration, zone
from ..model.triggers import Interval, preview
from ..store import Claim, Store, StoredJob
from ..store.base import PendingRetry
from ..worker.loading import SourceUnit, parse_services
from .schedule import Schedule

log = logging.getLogger(__name__)
#: Most fires counted one by one when catching up after downtime.
MAX_MISSED_COUNT = 10_000
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
class _JobStats:
    runs: int = 0
    last_run: datetime | None = None
    last_status: str | None = None


@dataclass
class Engine:
    store: Store
    hooks: Hooks
    runner_id: str
    default_tz: str = "UTC"
    in_loop_grace: timedelta = timedelta(seconds=60)
    jobs: dict[str, StoredJob] = field(default_factory=dict)
    schedule: Schedule = field(default_factory=Schedule)
    services: dict[str, dict] = field(default_factory=dict)
    active: dict[int, ActiveRun] = field(default_factory=dict)
    running_by_job: dict[str, list[int]] = field(default_factory=dict)
    queued_by_job: dict[str, deque] = field(default_factory=dict)
    stats: dict[str, _JobStats] = field(default_factory=dict)
    pending: list[dict] = field(default_factory=list)
    finished_listeners: list[Callable[[int], None]] = field(default_factory=list)
    connections: dict[str, dict] = field(default_factory=dict)
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

    def _new_cid(self) -> str:
        return f"{self._cid_prefix}{next(self._cid_count):012x}"

    # -- start ------------------------------------------------------------------
    def load(self, now: datetime) -> None:
        """Read the store; mark runs a dead runner left as interrupted; catch up missed fires."""
        interrupted = self.store.interrupt_running(now)
        if interrupted:
            log.warning("marked %d run(s) left running by a previous runner as interrupted", interrupted)
        self._load_services()
        self._load_connections()
        self.stats = {name: _JobStats(**values) for name, values in self.store.job_stats().items()}
        self.jobs = {job.spec.name: job for job in self.store.jobs()}
        for job in self.jobs.values():
            if job.spec.kind == "cron":
                self._check_cron_line(job, now)
            self._reschedule(job)
        self.tick(now, grace=timedelta(seconds=config.MISFIRE_GRACE_SECONDS))
        self._resume_retries(now)

    def _check_cron_line(self, job: StoredJob, now: datetime) -> None:
        """At start: list a job whose line Debian's cron reads otherwise than nbsched 0.1 did, and move
        its next fire to the new reading; pause a job whose line is refused now (``R``)."""
        spec = job.spec
        try:
            spec.trigger()
        except InvalidJob as exc:
            log.error("job %r is paused: its cron line is refused since nbsched 0.2: %s", spec.name, exc)
            job.spec = replace(spec, active=False, note="cron line refused since nbsched 0.2; update it")
            job.state.paused_note = job.spec.note
            self.store.save_job(job)
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
            self.store.save_job(job)

    def _resume_retries(self, now: datetime) -> None:
        """Schedule again the retries that a previous runner stored and did not start."""
        retries = self.store.pending_retries()
        if retries:
            log.info("%d retry attempt(s) stored by a previous runner are scheduled again", len(retries))
        for retry in retries:
            delay = max(0.0, (retry.due_at - now).total_seconds())
            self.hooks.call_later(delay, lambda retry=retry: self._start_retry(retry))

    def _load_services(self) -> None:
        self.services = {service["name"]: service for service in self.store.services()}
        sources = self.store.sources()
        self.hooks.registry_changed(
            {v: (self._origin_of(v), text) for v, text in sources.items()},
            {name: (s["version"], s["class_name"]) for name, s in self.services.items()},
        )

    def _origin_of(self, version: str) -> str:
        return next((s["origin"] for s in self.services.values() if s["version"] == version), "<string>")

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
                if run["scheduled_at"] > now and run["status"] == "running" and self._may_predispatch(job):
                    self.predispatched[run_id] = job.spec.name
                    self._dispatch(run_id, run, job.spec, channel="scheduler", not_before=run["scheduled_at"])
                elif run["scheduled_at"] > now and run["status"] == "running":
                    heapq.heappush(self.ahead, (run["scheduled_at"], run_id, job.spec.name, run))
                    self.waiting_ahead.setdefault(job.spec.name, {})[run_id] = run
                else:
                    self._start_claimed(job, run_id, run, force_queue=len(claim.runs) > 1)
        self._forget_outage()
        return created

    def _reschedule_all(self, due: list[StoredJob]) -> None:
        """Put jobs taken from the schedule as due back in: their fires were not claimed, they are due still."""
        for job in due:
            self._reschedule(job)

    def _claims(self, due: list[StoredJob], now: datetime, grace: timedelta) -> list[tuple[StoredJob, Claim]]:
        claims = []
        for job in due:
            if not job.spec.active or job.state.next_fire is None:
                continue
            reason = self._missed_reason(job, now, grace)
            claims.append((job, self._misfire_claim(job, now, reason) if reason else self._fire_claim(job)))
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
            self._refresh(name)
            current = self.jobs.get(name)
            if current is None or claim.expected_next is None or current.state.next_fire != claim.expected_next:
                return
            log.warning("job %r: its fire at %s was claimed before; going on after it", name, claim.expected_next)
            after = current.spec.next_fire(claim.expected_next, current.state.fires)
            if self.store.claim([Claim(current.uid, claim.expected_next, after, current.state.fires)])[0] is not None:
                current.state.next_fire = after
                self._reschedule(current)
        except Exception as exc:
            self._reschedule(job)
            self._store_failed(exc)

    def _may_predispatch(self, job: StoredJob) -> bool:
        """A fire claimed ahead goes to a worker at once (to start at its time) when nothing can change the
        decision to run it: the job has no run in progress or queued, no jitter, and no run may be killed."""
        spec, name = job.spec, job.spec.name
        return not (
            spec.jitter or spec.timeout or spec.overlap == "replace" or self.running_by_job.get(name)
        ) and not self.queued_by_job.get(name)

    def _recall(self, name: str, reason: str, keep: bool = False) -> None:
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
                self._start_claimed(job, run_id, run)

    def _fire_claim(self, job: StoredJob) -> Claim:
        scheduled_at = job.state.next_fire
        fires = job.state.fires + 1
        return Claim(
            job_uid=job.uid,
            expected_next=scheduled_at,
            new_next=job.spec.next_fire(scheduled_at, fires),
            fires=fires,
            runs=[self._new_run(job.spec, "schedule", scheduled_at)],
        )

    def _misfire_claim(self, job: StoredJob, now: datetime, reason: str = "while no runner was up") -> Claim:
        spec, state = job.spec, job.state
        window_start = max(state.next_fire, now - timedelta(seconds=spec.catchup))
        older, older_capped = self._count_fires(spec, state, state.next_fire, window_start)
        recent, recent_capped = self._list_fires(spec, state, window_start, now)
        to_run = {"skip": [], "once": recent[-1:], "all": recent}[spec.misfire]
        if spec.repeats is not None:  # fires run now count towards repeats; the rest are only missed
            to_run = to_run[: max(0, spec.repeats - state.fires)]
        missed = older + len(recent) - len(to_run)
        new_next = spec.next_fire(now, state.fires + len(to_run))
        runs = []
        if missed:
            at_least = "at least " if (older_capped or recent_capped) else ""
            unrun = [fire for fire in recent if fire not in to_run]
            first_missed = unrun[0] if unrun and not older else state.next_fire  # never the key of a run below
            runs.append(
                {
                    **self._new_run(spec, "misfire", first_missed),
                    "status": "missed",
                    "finished_at": now,
                    "error": f"Missed {at_least}{missed} fire(s) from {first_missed.isoformat()} {reason} "
                    f"(misfire={spec.misfire}, catchup={int(spec.catchup)}s).",
                }
            )
        runs.extend(self._new_run(spec, "misfire", fire) for fire in to_run)
        return Claim(job.uid, state.next_fire, new_next, state.fires + len(to_run), runs)

    def _count_fires(self, spec, state, start, end) -> tuple[int, bool]:
        count, fire = 0, start
        while fire is not None and fire < end and count < MAX_MISSED_COUNT:
            count += 1
            fire = spec.next_fire(fire, state.fires)
        return count, count >= MAX_MISSED_COUNT

    def _list_fires(self, spec, state, start, end) -> tuple[list[datetime], bool]:
        fires: list[datetime] = []
        fire = start if start == state.next_fire else spec.next_fire(start - timedelta(microseconds=1), state.fires)
        while fire is not None and fire <= end and len(fires) < MAX_MISSED_COUNT:
            fires.append(fire)
            fire = spec.next_fire(fire, state.fires)
        return fires, len(fires) >= MAX_MISSED_COUNT

    def _new_run(self, spec: JobSpec | None, trigger: str, scheduled_at: datetime, service: str | None = None) -> dict:
        service = service or spec.service
        return {
            "cid": self._new_cid(),
            "job": spec.name if spec else None,
            "service": service,
            "service_version": self.services.get(service, {}).get("version"),
            "trigger": trigger,
            "attempt": 1,
            "status": "running",
            "scheduled_at": scheduled_at,
            "runner": self.runner_id,
        }

    def _start_claimed(self, job: StoredJob, run_id: int, run: dict, force_queue: bool = False) -> None:
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
        self._dispatch(run_id, run, job.spec, channel="scheduler")

    def _finish_now(self, run_id: int, run: dict, status: str, error: str) -> None:
        now = self.hooks.clock()
        self.pending.append({"run_id": run_id, "status": status, "error": error, "finished_at": now})
        self._count(run["job"], status, run["scheduled_at"])
        self._notify(run_id)

    def _dispatch(
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
        if job is not None and job.spec.active and self._may_predispatch(job):
            self._predispatch_waiting(job)
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
                self._dispatch(next_id, run, job.spec, channel="scheduler")
        elif name in self.waiting_ahead and job is not None and job.spec.active and self._may_predispatch(job):
            self._predispatch_waiting(job)

    def _predispatch_waiting(self, job: StoredJob) -> None:
        """The job's run before ended while its next one, claimed, waits for its time: hand that one to a
        worker now, to start at its time, as if no run had been in progress when it was claimed."""
        name = job.spec.name
        waiting = self.waiting_ahead[name]
        run_id = min(waiting, key=lambda rid: waiting[rid]["scheduled_at"])
        run = waiting.pop(run_id)
        if not waiting:
            del self.waiting_ahead[name]
        self.predispatched[run_id] = name
        self._dispatch(run_id, run, job.spec, channel="scheduler", not_before=run["scheduled_at"])

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
                **self._new_run(spec, "retry", retry.scheduled_at, service=retry.service),
                "attempt": retry.attempt + 1,
            }
            try:
                (run_id,) = self.store.add_runs([run], retried=[retry.run_id])
            except Exception as exc:
                self._store_failed(exc)
            else:
                self._dispatch(run_id, run, spec, channel=retry.channel, attempt=retry.attempt + 1)
                self.active[run_id].retries = retry.retries
                return
        self.hooks.call_later(STORE_RETRY_SECONDS, lambda: self._start_retry(retry))

    def _count(self, job: str | None, status: str, when: datetime | None) -> None:
        if job is None:
            return
        stats = self.stats.setdefault(job, _JobStats())
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

    # -- services ---------------------------------------------------------------
    def deploy(self, units: list[dict], now: datetime) -> dict:
        deployed, warnings = [], []
        parsed_units = []
        for unit in units:
            if not isinstance(unit, dict) or not isinstance(unit.get("source"), str):
                raise InvalidInput("Each deploy unit needs 'source' (text) and 'origin' (a file name or '<cell>').")
            source_unit = SourceUnit(unit["source"], str(unit.get("origin") or "<string>"))
            parsed_units.append((source_unit, parse_services(source_unit)))
        for source_unit, parsed in parsed_units:
            self.store.save_source(source_unit.version, source_unit.origin, source_unit.source, parsed.services, now)
            warnings.extend(parsed.warnings)
            deployed.extend({"name": name, "version": source_unit.version} for name in parsed.services)
        self._load_services()
        return {"services": deployed, "warnings": warnings}

    def service_records(self) -> list[dict]:
        return list(self.services.values())

    def _require_service(self, name: str) -> None:
        if not isinstance(name, str) or name not in self.services:
            known = sorted(self.services)
            raise ServiceNotFound(
                f"No service named {name!r} is deployed.{did_you_mean(str(name), known)} "
                f"Services: {', '.join(known) or 'none'}. Deploy it first (nbsched deploy services/ or %%service)."
            )

    # -- connections ------------------------------------------------------------
    def _load_connections(self) -> None:
        """Read the connections; when they changed, hand them to the workers (via ``connections_changed``).

        This engine is the only writer of its store's connections (one runner per SQLite home), so it reads
        them at start and after its own changes, never on the path of a run.
        """
        try:
            records = {c["name"]: c for c in self.store.connections()}
        except Exception:  # a store hiccup must not fail a run; the next read retries
            log.exception("reading connections failed; keeping the ones read before")
            return
        if records != self.connections:
            self.connections = records
            self.hooks.connections_changed(
                {name: {"kind": c["kind"], "definition": c["definition"]} for name, c in records.items()}
            )

    def save_connection(self, name: str, kind: str, fields: dict, now: datetime) -> dict:
        """Add or replace a connection (validated; a name keeps its kind); return it as listed."""
        definition = conns.definition(kind, name, **fields)
        existing = self.connections.get(name)
        if existing and existing["kind"] != kind:
            raise InvalidInput(
                f"A {existing['kind']} connection named {name!r} exists; delete it first or pick another name."
            )
        self.store.save_connection(name, kind, definition, now)
        self._load_connections()
        return conns.public_record(self.connections[name])

    def delete_connection(self, name: str) -> dict:
        self.connection(name)
        self.store.delete_connection(name)
        self._load_connections()
        return {"deleted": name}

    def connection(self, name: str) -> dict:
        """One stored connection (with its secrets: for the runner's own use only)."""
        if name not in self.connections:
            known = sorted(self.connections)
            raise ConnectionNotFound(
                f"No connection named {name!r}.{did_you_mean(str(name), known)} "
                f"Connections: {', '.join(known) or 'none'}. See nbsched connection list."
            )
        return self.connections[name]

    def connection_records(self) -> list[dict]:
        return [conns.public_record(self.connections[name]) for name in sorted(self.connections)]

    # -- jobs -------------------------------------------------------------------
    def add_job(self, args: dict, now: datetime) -> dict:
        spec = JobSpec.from_user(now=now, default_tz=self.default_tz, **args)
        self._require_service(spec.service)
        job = StoredJob(uid=uuid.uuid4().hex, spec=spec, state=JobState(created_at=now))
        job.state.next_fire = spec.first_fire(now, 0)
        self.store.add_job(job)
        self.jobs[spec.name] = job
        self._reschedule(job)
        return self.job_record(spec.name)

    def update_job(self, name: str, changes: dict, now: datetime) -> dict:
        job = self._job(name)
        if "name" in changes and changes["name"] != name:
            raise InvalidJob("A job cannot be renamed; delete it and schedule it again under the new name.")
        spec = job.spec.changed(now, self.default_tz, **changes)
        self._require_service(spec.service)
        timing = {"every", "cron", "at", "start", "end", "tz", "repeats"}
        state = job.state
        if timing & set(changes):
            state = replace(state, next_fire=self._first_fire(job, spec, now))
        updated = StoredJob(job.uid, spec, state)
        self.store.save_job(updated)
        self.jobs[name] = updated
        self._reschedule(updated)
        return self.job_record(name)

    def pause(self, name: str, note: str, now: datetime) -> dict:
        return self._set_active(name, False, validate_note(note))

    def resume(self, name: str, now: datetime) -> dict:
        job = self._job(name)
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
        job = self._job(name)
        updated = StoredJob(job.uid, replace(job.spec, active=active, note=note), replace(state or job.state))
        updated.state.paused_note = note
        self.store.save_job(updated)  # first: a store error leaves the job as it was
        self.jobs[name] = updated
        if not active:
            self._recall(name, "paused", keep=True)  # its claimed runs wait in the runner for its resume
        elif name in self.waiting_ahead and self._may_predispatch(updated):
            self._predispatch_waiting(updated)
        self._reschedule(updated)
        return self.job_record(name)

    def delete(self, name: str) -> dict:
        self._job(name)
        self.store.delete_job(name)
        del self.jobs[name]
        self.schedule.remove(name)
        # After the job is gone: a run taken back ends, and the end of a run hands the job's next
        # claimed run to a worker only while the job exists.
        self._recall(name, "deleted")
        return {"deleted": name}

    def _reschedule(self, job: StoredJob) -> None:
        active = job.spec.active and job.state.next_fire is not None
        self.schedule.set(job.spec.name, job.state.next_fire if active else None)

    def _refresh(self, name: str) -> None:
        job = self.store.job(name)
        if job is None:
            self.jobs.pop(name, None)
            self.schedule.remove(name)
        else:
            self.jobs[name] = job
            self._reschedule(job)

    def _job(self, name: object) -> StoredJob:
        if not isinstance(name, str) or name not in self.jobs:
            known = sorted(self.jobs)
            shown = ", ".join(known[:20]) + (" ..." if len(known) > 20 else "")
            raise JobNotFound(
                f"No job named {name!r}.{did_you_mean(str(name), known)} Jobs: {shown or 'none'}. See %schedule list."
            )
        return self.jobs[name]

    def job_record(self, name: str, detail: bool = False) -> dict:
        job = self._job(name)
        spec, state = job.spec, job.state
        stats = self.stats.get(name, _JobStats())
        record = {
            "name": name,
            "type": spec.kind,
            "definition": spec.definition(),
            "service": spec.service,
            "active": spec.active,
            "next_run": state.next_fire if spec.active else None,
            "last_run": stats.last_run,
            "last_status": stats.last_status,
            "runs": stats.runs,
            "note": state.paused_note,
        }
        if detail:
            record.update(spec.to_record(), fires=state.fires, created_at=state.created_at, uid=job.uid)
            record["type"] = spec.kind
        return record

    def job_records(self) -> list[dict]:
        return [self.job_record(name) for name in sorted(self.jobs)]

    # -- on demand --------------------------------------------------------------
    def execute(self, name: str, channel: str, now: datetime) -> int:
        job = self._job(name)
        run = self._new_run(job.spec, "manual", now)
        (run_id,) = self.store.add_runs([run])
        self._dispatch(run_id, run, job.spec, channel=channel)
        return run_id

    def invoke(self, service: str, extra, channel: str, now: datetime) -> int:
        self._require_service(service)
        validate_extra(extra)
        run = {**self._new_run(None, "invoke", now, service=service), "job": None}
        (run_id,) = self.store.add_runs([run])
        self._dispatch(run_id, run, None, channel=channel, extra=extra)
        return run_id

    def backfill(self, name: str, start, end, now: datetime) -> dict:
        """Run the fires the job would have had in [start, end], oldest first: ``run_ids``, and ``capped`` with a
        ``message`` when the window holds more than ``MAX_MISSED_COUNT`` fires (only the first ones run)."""
        job = self._job(name)
        first = parse_datetime(start, job.spec.tz, now, "backfill start")
        last = parse_datetime(end, job.spec.tz, now, "backfill end")
        if last < first or last > now:
            raise InvalidInput(
                "A backfill window needs start <= end <= now, e.g. start='2026-11-01', end='2026-11-02'."
            )
        fires, capped = _backfill_fires(job.spec, first, last)
        runs = [self._new_run(job.spec, "backfill", fire) for fire in fires]
        ids = self.store.claim([Claim(job.uid, job.state.next_fire, job.state.next_fire, job.state.fires, runs)])[0]
        if ids is None:
            raise InvalidInput(
                f"Part of that window was backfilled already for job {name!r}; pick a window not backfilled yet."
            )
        for run_id, run in zip(ids, runs, strict=True):
            self._start_claimed(job, run_id, run, force_queue=True)
        if not capped:
            return {"run_ids": ids}
        upto = fires[-1].astimezone(zone(job.spec.tz)).isoformat()
        message = (
            f"Backfilled only the first {MAX_MISSED_COUNT:,} fires of that window of job {name!r} (the most one "
            f"backfill runs), up to {upto}; backfill the rest with a start after {upto}."
        )
        return {"run_ids": ids, "capped": True, "message": message}

    # -- reading ----------------------------------------------------------------
    def history(self, job=None, service=None, status=None, since=None, limit=None, now: datetime | None = None) -> dict:
        """Run history, newest first, as columns and rows (times as UTC ISO text)."""
        query = self.history_query(job, service, status, since, limit, now)
        return {"columns": list(RUN_FIELDS), "rows": self.store.runs(**query)}

    def history_query(self, job=None, service=None, status=None, since=None, limit=None, now=None) -> dict:
        """Check history filters and write buffered results; return the arguments for ``Store.runs``."""
        if isinstance(status, str) and status not in STATUSES:  # not text: checked below with the other filters
            hint = did_you_mean(status, STATUSES)
            raise InvalidInput(f"Unknown status {status!r}.{hint} Use one of {', '.join(STATUSES)}.")
        self.flush()
        since_at = None
        if since not in (None, ""):
            try:
                since_at = now - parse_duration(since, "since")
            except InvalidInput:
                since_at = parse_datetime(since, self.default_tz, now, "since")
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
            raise InvalidInput(f"Invalid limit {limit!r}: use a whole number, 0 or more.")
        for what, value in (("job", job), ("service", service), ("status", status)):
            if value is not None and not isinstance(value, str):
                raise InvalidInput(f"Invalid {what} filter {value!r}: use a name as text, e.g. {what}='sync'.")
        return dict(
            job=job, service=service, status=status, since=since_at, limit=limit, times_as_text=True, due_by=now
        )

    def run(self, run_id) -> dict:
        self.flush()
        record = self.store.run(_run_id(run_id))
        if record is None:
            raise RunNotFound(f"No run with id {run_id!r}; see %schedule history or nbsched history for run ids.")
        return record

    def is_finished(self, run_id: int) -> bool:
        return (
            run_id not in self.active
            and not any(rid == run_id for queue in self.queued_by_job.values() for rid, _ in queue)
            and not any(run_id in waiting for waiting in self.waiting_ahead.values())
        )

    def preview(
        self, now: datetime, cron=None, every=None, at=None, tz=None, count=5, after=None, start=None, name=None
    ) -> dict:
        """``triggers.preview`` for the socket: times in UTC, with the time zone they are read in."""
        tz = tz or self.default_tz
        args = dict(cron=cron, every=every, at=at, count=count, after=after, start=start, name=name)
        result = preview(now=now, tz=tz, **args)
        times = [moment.astimezone(UTC) for moment in result.times]
        return {"times": times, "description": result.description, "tz": tz}


def _backfill_fires(spec: JobSpec, first: datetime, last: datetime) -> tuple[list[datetime], bool]:
    """The fires the job's trigger has in [first, last], before its start too (an interval's grid runs backwards),
    at most ``MAX_MISSED_COUNT``; and whether the window holds more."""
    trigger = spec.trigger()
    if spec.kind == "interval" and first < spec.start:
        every = timedelta(seconds=spec.every)
        trigger = Interval(every, spec.start - every * math.ceil((spec.start - first) / every))
    fires, fire = [], trigger.first_fire(first)
    while fire is not None and fire <= last and len(fires) < MAX_MISSED_COUNT:
        if fire >= first:
            fires.append(fire)
        fire = trigger.next_fire(fire)
    return fires, fire is not None and fire <= last


def _run_id(value) -> int:
    try:
        run_id = int(value)
        if not 0 < run_id < 2**63:  # what SQLite can hold
            raise ValueError
        return run_id
    except (TypeError, ValueError, OverflowError):
        raise RunNotFound(
            f"Invalid run id {value!r}: run ids are whole numbers, as shown by %schedule history."
        ) from None


def _from_epoch(value) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)
