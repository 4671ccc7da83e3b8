"""Runs: the fields of a run record (DESIGN.md section 5), its statuses and triggers, defined once."""

from __future__ import annotations

#: The columns of a run record, in the order listings show them (``client.history()``, ``--format json``).
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
)
#: The fields of a run that are times (aware datetimes in the model, UTC).
RUN_TIME_FIELDS = ("scheduled_at", "started_at", "finished_at")
#: A run's status: ``running`` until it ends, then one of the others.
STATUSES = ("running", "ok", "error", "timeout", "skipped", "missed", "interrupted")
#: What made a run.
TRIGGERS = ("schedule", "manual", "invoke", "retry", "misfire", "backfill")
#: Triggers whose (job, scheduled_at) may be claimed once only.
CLAIMED_TRIGGERS = ("schedule", "misfire", "backfill")
