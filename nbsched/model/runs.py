"""Runs: the fields of a run record (DESIGN.md section 5), its statuses and triggers, and the typed records
the runner creates and updates runs with, defined once."""

from __future__ import annotations

from datetime import datetime
from typing import NotRequired, TypedDict

#: The columns of a run record, in the order listings show them (``client.history()``, ``--format json``).
#: ``job_uid`` tells apart the runs of jobs that had the same name (one deleted, a new one made under its name).
RUN_FIELDS = (
    "run_id",
    "cid",
    "job",
    "service",
    "service_version",
    "trigger",
    "attempt",
    "status",
    "scheduled_at",
    "started_at",
    "finished_at",
    "delay_ms",
    "duration_ms",
    "error",
    "traceback",
    "output",
    "logs",
    "runner",
    "job_uid",
)
#: The fields of a run that are times (aware datetimes in the model, UTC).
RUN_TIME_FIELDS = ("scheduled_at", "started_at", "finished_at")
#: A run's status: ``running`` until it ends, then one of the others.
STATUSES = ("running", "ok", "error", "timeout", "skipped", "missed", "interrupted")
#: What made a run.
TRIGGERS = ("schedule", "manual", "invoke", "retry", "misfire", "backfill")
#: Triggers whose (job, scheduled_at) may be claimed once only.
CLAIMED_TRIGGERS = ("schedule", "misfire", "backfill")


class NewRun(TypedDict):
    """A run as the runner creates it (a claimed fire, an execute, an invoke, a retry), before the store gives
    it a ``run_id``. A claimed fire that is not run (missed, skipped) is created finished, with ``error``."""

    cid: str
    job: str | None
    service: str
    service_version: str | None
    trigger: str
    attempt: int
    status: str
    scheduled_at: datetime
    runner: str
    job_uid: NotRequired[str | None]  # the job's own identity (None: a run of no job, an invoke)
    error: NotRequired[str | None]
    finished_at: NotRequired[datetime | None]


class RunUpdate(TypedDict):
    """What a run's end changes in its record: written in batches by ``Store.update_runs``. A run that never
    reached a worker (skipped while waiting, say) has ``status``, ``error`` and ``finished_at`` only."""

    run_id: int
    status: str
    finished_at: datetime
    error: str | None
    started_at: NotRequired[datetime | None]
    delay_ms: NotRequired[float | None]
    duration_ms: NotRequired[float | None]
    traceback: NotRequired[str | None]
    output: NotRequired[str | None]
    logs: NotRequired[str | None]
