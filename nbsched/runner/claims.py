"""Claims: what the engine asks the store to record for a due job, as pure functions of the job and time.

A claim names the job's fire it expects to take (its unique key), the job's next fire after it, and the
runs to create: one for a fire on time; for fires missed while no runner was up (or the store could not
be written), what the job's misfire policy runs plus one ``missed`` row that counts the rest.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta

from ..model.jobs import JobSpec
from ..model.runs import NewRun
from ..model.triggers import Interval
from ..store import Claim, StoredJob

#: Most fires counted one by one when catching up after downtime, or run by one backfill.
MAX_MISSED_COUNT = 10_000
#: Builds a new run record: (spec, trigger, scheduled_at) -> run.
MakeRun = Callable[..., NewRun]


def fire_claim(job: StoredJob, new_run: MakeRun) -> Claim:
    """The claim of the job's next fire: one run, the job advanced past it."""
    scheduled_at = job.state.next_fire
    fires = job.state.fires + 1
    return Claim(
        job_uid=job.uid,
        expected_next=scheduled_at,
        new_next=job.spec.next_fire(scheduled_at, fires),
        fires=fires,
        runs=[new_run(job.spec, "schedule", scheduled_at)],
    )


def misfire_claim(job: StoredJob, now: datetime, new_run: MakeRun, reason: str = "while no runner was up") -> Claim:
    """The claim of the fires a job missed up to ``now``: what its misfire policy runs, and one ``missed`` row
    counting the rest (fires older than its ``catchup`` window are only counted)."""
    spec, state = job.spec, job.state
    window_start = max(state.next_fire, now - timedelta(seconds=spec.catchup))
    older, older_capped = _count_fires(spec, state, state.next_fire, window_start)
    recent, recent_capped = _list_fires(spec, state, window_start, now)
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
                **new_run(spec, "misfire", first_missed),
                "status": "missed",
                "finished_at": now,
                "error": f"Missed {at_least}{missed} fire(s) from {first_missed.isoformat()} {reason} "
                f"(misfire={spec.misfire}, catchup={int(spec.catchup)}s).",
            }
        )
    runs.extend(new_run(spec, "misfire", fire) for fire in to_run)
    return Claim(job.uid, state.next_fire, new_next, state.fires + len(to_run), runs)


def _count_fires(spec, state, start, end) -> tuple[int, bool]:
    count, fire = 0, start
    while fire is not None and fire < end and count < MAX_MISSED_COUNT:
        count += 1
        fire = spec.next_fire(fire, state.fires)
    return count, count >= MAX_MISSED_COUNT


def _list_fires(spec, state, start, end) -> tuple[list[datetime], bool]:
    fires: list[datetime] = []
    fire = start if start == state.next_fire else spec.next_fire(start - timedelta(microseconds=1), state.fires)
    while fire is not None and fire <= end and len(fires) < MAX_MISSED_COUNT:
        fires.append(fire)
        fire = spec.next_fire(fire, state.fires)
    return fires, len(fires) >= MAX_MISSED_COUNT


def backfill_fires(spec: JobSpec, first: datetime, last: datetime) -> tuple[list[datetime], bool]:
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
