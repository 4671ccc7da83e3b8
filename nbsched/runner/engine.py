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

import itertools
import logging
import random
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from .. import config
from ..errors import (
    JobNotFound,
    did_you_mean,
)
from ..model.jobs import JobSpec
from ..model.runs import NewRun
from ..store import Claim, Store, StoredJob
from ..worker.pipe import RunMessage
from .catalog import Catalog
from .claims import fire_claim, misfire_claim
from .control import JobControl, JobStats
from .inflight import ActiveRun, InFlight
from .ondemand import OnDemand
from .outage import StoreHealth
from .reading import Reader
from .results import Results
from .schedule import Schedule

log = logging.getLogger(__name__)
#: Times a fire lost to another runner's claim in progress is tried again before it counts as claimed before.
CLAIM_TRIES_SHARED = 200


@dataclass
class Hooks:
    """What the engine needs from its surroundings."""

    dispatch: Callable[[RunMessage], None]
    kill: Callable[[int, str, str], bool] = lambda run_id, status, error: False
    cancel: Callable[[int, str], bool] = lambda run_id, error: False
    call_later: Callable[[float, Callable[[], None]], object] = lambda delay, fn: None
    cancel_timer: Callable[[object], None] = lambda handle: None
    registry_changed: Callable[[dict, dict], None] = lambda sources, services: None
    connections_changed: Callable[[dict], None] = lambda definitions: None
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)  # for what happens outside ``tick(now)``
    wake: Callable[[], None] = lambda: None  # a run joined ``ahead`` outside ``tick``: ask ``next_due`` again
    changed: Callable[[str], None] = lambda change: None  # a job, services or connections changed: tell the others
    owns: Callable[[StoredJob], bool] = lambda job: True  # a shared store: this runner claims the job's fires first
    warm: Callable[[str], None] = lambda service: None  # a notebook job is scheduled: boot a kernel for it ahead
    keep_spares: Callable[[set[str]], None] = lambda services: None  # the notebooks with an active job now


@dataclass
class Engine:
    store: Store
    hooks: Hooks
    runner_id: str
    default_tz: str = "UTC"
    in_loop_grace: timedelta = timedelta(seconds=60)
    jobs: dict[str, StoredJob] = field(default_factory=dict)
    schedule: Schedule = field(default_factory=Schedule)
    inflight: InFlight = field(default_factory=InFlight)  # the runs created and not yet finished
    stats: dict[str, JobStats] = field(default_factory=dict)  # by job uid: a job's runs are its own, not its name's
    claim_ahead: timedelta = timedelta(seconds=config.CLAIM_AHEAD_SECONDS)
    claims_per_tick: int = config.MAX_CLAIMS_PER_TICK  # most fires one tick claims (the runner sizes its steps)
    claim_batch: timedelta = timedelta(0)  # fires claimed together: ``next_due`` waits until the first is this late
    stopped: bool = False  # the runner is stopping: nothing more starts
    _cid_prefix: str = field(default_factory=lambda: secrets.token_hex(6))  # cids: this + a counter, 24 hex digits
    _cid_count: Iterator[int] = field(default_factory=itertools.count)
    _shared_tries: dict[tuple[str, datetime], int] = field(default_factory=dict)  # lost claims tried again
    catalog: Catalog = field(init=False)
    control: JobControl = field(init=False)
    ondemand: OnDemand = field(init=False)
    reader: Reader = field(init=False)
    health: StoreHealth = field(init=False)
    results: Results = field(init=False)

    def __post_init__(self) -> None:
        self.health = StoreHealth(self.store, self.hooks.clock)
        self.results = Results(self)
        self.catalog = Catalog(
            self.store, self.hooks.registry_changed, self.hooks.connections_changed, lambda c: self.hooks.changed(c)
        )
        self.control = JobControl(self)
        self.ondemand = OnDemand(self)
        self.reader = Reader(self.store, self.results.flush, self.default_tz)

    def _new_cid(self) -> str:
        return f"{self._cid_prefix}{next(self._cid_count):012x}"

    # -- start ------------------------------------------------------------------
    def load(self, now: datetime) -> None:
        """Read the store; mark runs a dead runner left as interrupted; catch up missed fires.

        On a shared store the runs of another runner are its own until its lease expires (``runner.shared``)."""
        interrupted = 0 if self.store.shared else self.store.interrupt_running(now)
        if interrupted:
            log.warning("marked %d run(s) left running by a previous runner as interrupted", interrupted)
        self.catalog.load()
        self.stats = {uid: JobStats(**values) for uid, values in self.store.job_stats().items()}
        self.jobs = {job.spec.name: job for job in self.store.jobs()}
        for job in self.jobs.values():
            if job.spec.kind == "cron":
                self.control.check_cron_line(job, now)
            self.reschedule(job)
        self.control.warm_all()
        self.tick(now, grace=timedelta(seconds=config.MISFIRE_GRACE_SECONDS))
        self.results.resume_retries(now)

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
            raise JobNotFound(f"No job named {name!r}.{did_you_mean(str(name), known)} Jobs: {shown or 'none'}.")
        return self.jobs[name]

    def is_finished(self, run_id: int) -> bool:
        return self.inflight.is_finished(run_id)

    # -- firing -----------------------------------------------------------------
    def tick(self, now: datetime, grace: timedelta | None = None) -> int:
        """Start every fire due at ``now``; claim the fires due within ``claim_ahead`` of it.

        Claiming (the store write that makes a fire a run, exactly once) happens a little before
        the fire is due, so that at the due time only the hand-over to a worker remains.
        While the store fails, due fires stay due and are claimed at its next try; once its file
        is gone, nothing fires. Return how many runs were created.
        """
        if self.stopped or (self.health.trouble is not None and self.health.trouble.gone):
            return 0
        created = self._claim_due(now, grace) if self.health.may_write(now) else 0
        self._start_ahead(now)
        return created

    def stop(self) -> None:
        """Start nothing more, neither fires nor retries: the runner is stopping. Stored retries wait for the next."""
        self.stopped = True

    def _claim_due(self, now: datetime, grace: timedelta | None) -> int:
        grace = self.in_loop_grace if grace is None else grace
        shared = self.store.shared
        limit = min(config.SHARED_CLAIMS_PER_TICK, self.claims_per_tick) if shared else self.claims_per_tick
        names = self.schedule.due(now + self.claim_ahead, limit=limit)
        due = [self.jobs[name] for name in names if name in self.jobs]
        if shared:
            random.shuffle(due)
            due = [job for job in due if self._claims_now(job, now)]
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
            self.health.failed(exc)
            return 0
        self.health.works(now)
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
                    self.inflight.predispatched[run_id] = job.spec.name
                    self.dispatch_run(run_id, run, job.spec, channel="scheduler", not_before=run["scheduled_at"])
                elif run["scheduled_at"] > now and run["status"] == "running":
                    self.inflight.hold_ahead(job.spec.name, run_id, run)
                else:
                    self.start_claimed(job, run_id, run, force_queue=len(claim.runs) > 1)
        self.health.forget_outage(self.schedule.next_due())
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
            claim = misfire_claim(job, now, self.new_run, reason) if reason else fire_claim(job, self.new_run)
            claims.append((job, claim))
        return claims

    def _missed_reason(self, job: StoredJob, now: datetime, grace: timedelta) -> str | None:
        """Why the job's next fire counts as missed (its misfire policy decides what runs), or None: it runs."""
        fire = job.state.next_fire
        recovered_at = self.health.recovered_at
        outage = self.health.trouble is not None or (recovered_at is not None and fire < recovered_at)
        if outage and now - fire > timedelta(seconds=config.MISFIRE_GRACE_SECONDS):
            return "while the store could not be written"
        if now - fire > grace:
            return "while no runner was up"
        return None

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
            if self.store.shared and self._lost_to_a_claim_in_progress(name, claim.expected_next):
                return  # another runner holds the job's row: its claim commits, or, rolled back, ours is tried again
            log.warning("job %r: its fire at %s was claimed before; going on after it", name, claim.expected_next)
            after = current.spec.next_fire(claim.expected_next, current.state.fires)
            if self.store.claim([Claim(current.uid, claim.expected_next, after, current.state.fires)])[0] is not None:
                current.state.next_fire = after
                self.reschedule(current)
        except Exception as exc:
            self.reschedule(job)
            self.health.failed(exc)

    def _claims_now(self, job: StoredJob, now: datetime) -> bool:
        """On a shared store each job's fires are claimed first by the runner that owns it (``hooks.owns``), so
        that they spread; the others try ``SHARED_TAKE_SLACK_SECONDS`` later, in case that runner is gone."""
        fire = job.state.next_fire
        if fire is None or self.hooks.owns(job):
            return True
        later = fire + timedelta(seconds=config.SHARED_TAKE_SLACK_SECONDS)
        if later <= now + self.claim_ahead:
            return True
        self.schedule.set(job.spec.name, later)
        return False

    def _lost_to_a_claim_in_progress(self, name: str, fire: datetime) -> bool:
        """On a shared store, a claim lost while the job's stored next fire is the one claimed: another runner's
        claim of it is not committed yet. Try again (the job stays due), up to ``CLAIM_TRIES_SHARED`` times."""
        key = (name, fire)
        tries = self._shared_tries.get(key, 0) + 1
        if tries > CLAIM_TRIES_SHARED:
            self._shared_tries.pop(key, None)
            return False
        if len(self._shared_tries) > 10_000:
            self._shared_tries.clear()
        self._shared_tries[key] = tries
        return True

    def may_predispatch(self, job: StoredJob) -> bool:
        """A fire claimed ahead goes to a worker at once (to start at its time) when nothing can change the
        decision to run it: the job has no run in progress or queued, no jitter, and no run may be killed."""
        spec, inflight = job.spec, self.inflight
        killable = spec.timeout or spec.overlap == "replace"
        return not (spec.jitter or killable or inflight.busy(spec.name) or inflight.queue_length(spec.name))

    def recall(self, name: str, reason: str, keep: bool = False) -> None:
        """Take back the runs of job ``name`` that wait in a worker for their time: they end as skipped, or,
        with ``keep``, wait in the runner again (``_hold_again``)."""
        for run_id in self.inflight.predispatched_of(name):
            if keep:
                self.inflight.recalled.add(run_id)
            if not self.hooks.cancel(run_id, f"Job {name!r} was {reason} before this run started."):
                self.inflight.recalled.discard(run_id)  # it started: its result comes as any run's

    def _start_ahead(self, now: datetime) -> None:
        """Start the claimed runs whose time has come; a job paused or deleted meanwhile skips its run."""
        for run_id, name, run in self.inflight.due_ahead(now):
            job = self.jobs.get(name)
            if job is None or not job.spec.active:
                reason = "deleted" if job is None else "paused"
                self.results.finish_now(run_id, run, "skipped", f"Job {name!r} was {reason} before this run started.")
            else:
                self.start_claimed(job, run_id, run)

    def new_run(self, spec: JobSpec | None, trigger: str, scheduled_at: datetime, service: str | None = None) -> NewRun:
        service = service or spec.service
        return {
            "cid": self._new_cid(),
            "job": spec.name if spec else None,
            "job_uid": self.jobs[spec.name].uid if spec and spec.name in self.jobs else None,
            "service": service,
            "service_version": self.catalog.version_of(service),
            "trigger": trigger,
            "attempt": 1,
            "status": "running",
            "scheduled_at": scheduled_at,
            "runner": self.runner_id,
        }

    def start_claimed(self, job: StoredJob, run_id: int, run: NewRun, force_queue: bool = False) -> None:
        if run["status"] != "running":
            self.results.recorded_at_claim(job, run_id, run)
            return
        name, policy = job.spec.name, job.spec.overlap
        if force_queue:
            policy = "queue_all"
        busy = self.inflight.busy(name)
        queued = self.inflight.queue_length(name)
        if busy and policy != "allow":
            if policy == "skip" or (policy == "queue" and queued):
                self.results.finish_now(
                    run_id,
                    run,
                    "skipped",
                    f"Run {busy[0]} of job {name!r} was still running (overlap={job.spec.overlap}).",
                )
                return
            if policy in ("queue", "queue_all"):
                self.inflight.enqueue(name, run_id, run)
                return
            for other in list(busy):
                self.hooks.kill(other, "interrupted", f"Replaced by run {run_id} (overlap=replace).")
        elif queued and policy in ("queue", "queue_all"):
            self.inflight.enqueue(name, run_id, run)
            return
        self.dispatch_run(run_id, run, job.spec, channel="scheduler")

    def dispatch_run(
        self,
        run_id: int,
        run: NewRun,
        spec: JobSpec | None,
        channel: str,
        extra=None,
        attempt: int = 1,
        not_before: datetime | None = None,
    ) -> None:
        message = RunMessage(  # positional: a third cheaper than keywords, on the path of every run
            run_id,
            run["cid"],
            run["service"],
            channel,
            spec.extra if spec else extra,
            (spec.name, spec.kind, self.jobs[spec.name].state.fires) if spec and spec.name in self.jobs else None,
            run["scheduled_at"].timestamp(),
            not_before.timestamp() if not_before is not None else 0.0,  # not_before: the worker holds it until then
            # exclusive: may be killed (timeout, overlap=replace): runs alone in its worker, never pipelined.
            bool(spec and (spec.timeout or spec.overlap == "replace")),
            spec.isolation if spec else "worker",  # isolation "process": a fresh worker process for this run alone
        )
        self.inflight.start(
            ActiveRun(
                run_id=run_id,
                job=run["job"],
                job_uid=run.get("job_uid"),
                service=run["service"],
                trigger=run["trigger"],
                attempt=attempt,
                scheduled_at=run["scheduled_at"],
                message=message,
                timeout=spec.timeout if spec else None,
                retries=spec.retries if spec else 0,
            )
        )
        jitter = spec.jitter if spec and run["trigger"] in ("schedule", "misfire") else 0.0
        if jitter:
            self.hooks.call_later(random.uniform(0, jitter), lambda: self.hooks.dispatch(message))
        else:
            self.hooks.dispatch(message)

    def predispatch_waiting(self, job: StoredJob) -> None:
        """The job's run before ended while its next one, claimed, waits for its time: hand that one to a
        worker now, to start at its time, as if no run had been in progress when it was claimed."""
        name = job.spec.name
        run_id, run = self.inflight.take_first_ahead(name)
        self.inflight.predispatched[run_id] = name
        self.dispatch_run(run_id, run, job.spec, channel="scheduler", not_before=run["scheduled_at"])

    def next_due(self) -> datetime | None:
        """When ``tick`` has work next: a claimed run to start, or fires to claim ahead (or, while the store
        fails, to try it again); None once the store's file is gone."""
        trouble = self.health.trouble
        if trouble is not None and trouble.gone:
            return None
        ahead = self.inflight.next_ahead()
        times = [ahead] if ahead is not None else []
        due = self.schedule.next_due()
        if due is not None:
            claim_at = due - self.claim_ahead + self.claim_batch
            times.append(claim_at if trouble is None else max(claim_at, trouble.retry_at))
        return min(times, default=None)
