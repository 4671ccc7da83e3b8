"""In flight: every run the engine has created and not yet seen end, and where each one is.

A run is in exactly one place until its result is recorded:

- ``ahead``: claimed before its time, waiting in the runner for it (a heap by time, and per job);
- ``queued``: due, waiting for its job's run before to end (``overlap="queue"``);
- ``active``: with a worker, running, or handed over ahead of its time (``predispatched``) to start then.

``is_finished`` is a lookup, not a scan. A predispatched run taken back because its job was paused
(``recalled``) returns to ``ahead`` when its worker gives it back.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from ..model.runs import NewRun
from ..worker.pipe import RunMessage


@dataclass(slots=True)
class ActiveRun:
    """A run handed to the workers and not finished yet."""

    run_id: int
    job: str | None
    service: str
    trigger: str
    attempt: int
    scheduled_at: datetime
    message: RunMessage
    timeout: float | None = None
    retries: int = 0
    timer: object = None
    job_uid: str | None = None  # the job's own identity: its runs count for it, not for a later job of its name


@dataclass
class InFlight:
    """Where each unfinished run of one engine is: ahead of its time, queued behind its job, or with a worker."""

    active: dict[int, ActiveRun] = field(default_factory=dict)
    running_by_job: dict[str, list[int]] = field(default_factory=dict)  # job -> its runs in ``active``
    predispatched: dict[int, str] = field(default_factory=dict)  # run id -> job: with a worker, not yet due
    recalled: set[int] = field(default_factory=set)  # predispatched runs taken back, to wait ``ahead`` again
    ahead: list[tuple[datetime, int, str, NewRun]] = field(default_factory=list)  # heap: claimed, not yet due
    waiting_ahead: dict[str, dict[int, NewRun]] = field(default_factory=dict)  # job -> its runs in ``ahead``
    queued: dict[str, deque[tuple[int, NewRun]]] = field(default_factory=dict)  # job -> due runs behind its busy one
    held: set[int] = field(default_factory=set)  # the run ids ``ahead`` or ``queued``

    def is_finished(self, run_id: int) -> bool:
        return run_id not in self.active and run_id not in self.held

    # -- with a worker ------------------------------------------------------------
    def start(self, run: ActiveRun) -> None:
        self.active[run.run_id] = run
        if run.job:
            self.running_by_job.setdefault(run.job, []).append(run.run_id)

    def end(self, run_id: int) -> tuple[ActiveRun | None, bool]:
        """The run's worker reported it: take it out; return it (None if unknown) and whether it was recalled."""
        self.predispatched.pop(run_id, None)
        recalled = run_id in self.recalled
        self.recalled.discard(run_id)
        return self.active.pop(run_id, None), recalled

    def leave_job(self, name: str, run_id: int) -> list[int]:
        """The run no longer counts as its job's run in progress; return the job's runs still in progress."""
        busy = self.running_by_job.get(name, [])
        if run_id in busy:
            busy.remove(run_id)
        if not busy:
            self.running_by_job.pop(name, None)  # no empty list kept per job that ran once (100,000 jobs: ~8 MB)
        return busy

    def busy(self, name: str) -> list[int]:
        return self.running_by_job.get(name) or []

    def predispatched_of(self, name: str) -> list[int]:
        """The job's runs handed to a worker ahead of their time: among its runs in progress, not all runs'."""
        predispatched = self.predispatched
        return [run_id for run_id in self.running_by_job.get(name, ()) if run_id in predispatched]

    # -- ahead of its time --------------------------------------------------------
    def hold_ahead(self, name: str, run_id: int, run: NewRun) -> None:
        heapq.heappush(self.ahead, (run["scheduled_at"], run_id, name, run))
        self.waiting_ahead.setdefault(name, {})[run_id] = run
        self.held.add(run_id)

    def due_ahead(self, now: datetime) -> Iterator[tuple[int, str, NewRun]]:
        """Take out the runs waiting ahead whose time has come (those handed to a worker meanwhile are gone)."""
        while self.ahead and self.ahead[0][0] <= now:
            _, run_id, name, run = heapq.heappop(self.ahead)
            waiting = self.waiting_ahead.get(name)
            if waiting is None or waiting.pop(run_id, None) is None:
                continue  # handed to a worker already, when the job's run before it ended
            if not waiting:
                del self.waiting_ahead[name]
            self.held.discard(run_id)
            yield run_id, name, run

    def is_waiting_ahead(self, name: str) -> bool:
        return name in self.waiting_ahead

    def take_first_ahead(self, name: str) -> tuple[int, NewRun]:
        """Take the job's earliest run waiting ahead out of the wait (it leaves a stale heap entry, skipped later)."""
        waiting = self.waiting_ahead[name]
        run_id = min(waiting, key=lambda rid: waiting[rid]["scheduled_at"])
        run = waiting.pop(run_id)
        if not waiting:
            del self.waiting_ahead[name]
        self.held.discard(run_id)
        return run_id, run

    def next_ahead(self) -> datetime | None:
        return self.ahead[0][0] if self.ahead else None

    # -- queued behind its job ------------------------------------------------------
    def queue_length(self, name: str) -> int:
        queue = self.queued.get(name)
        return len(queue) if queue else 0

    def enqueue(self, name: str, run_id: int, run: NewRun) -> None:
        self.queued.setdefault(name, deque()).append((run_id, run))
        self.held.add(run_id)

    def dequeue(self, name: str) -> tuple[int, NewRun] | None:
        queue = self.queued.get(name)
        if not queue:
            return None
        run_id, run = queue.popleft()
        self.held.discard(run_id)
        return run_id, run
