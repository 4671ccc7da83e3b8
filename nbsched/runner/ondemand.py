"""Runs on demand: execute a job now, invoke a service outside any job, backfill a job's past fires."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from ..errors import InvalidInput
from ..model.jobs import validate_extra
from ..model.timeparse import parse_datetime, zone
from ..store import Claim
from .claims import MAX_MISSED_COUNT, backfill_fires

if TYPE_CHECKING:
    from .engine import Engine


@dataclass
class OnDemand:
    """The on-demand runs of one engine: each is recorded, then handed to a worker like any run."""

    engine: Engine

    def execute(self, name: str, channel: str, now: datetime) -> int:
        job = self.engine.job(name)
        run = self.engine.new_run(job.spec, "manual", now)
        (run_id,) = self.engine.store.add_runs([run])
        self.engine.dispatch_run(run_id, run, job.spec, channel=channel)
        return run_id

    def invoke(self, service: str, extra, channel: str, now: datetime) -> int:
        (run_id,) = self.invoke_many(service, [extra], channel, now)
        return run_id

    def invoke_many(self, service: str, extras: list, channel: str, now: datetime) -> list[int]:
        """One run of ``service`` per extra, all recorded in one step of the store (all or none), then each handed
        to a worker; their run ids, in the order of ``extras``. A bad extra refuses the lot, named by its place."""
        self.engine.catalog.require_service(service)
        for index, extra in enumerate(extras):
            try:
                validate_extra(extra)
                self.engine.catalog.check_extra(service, extra)
            except InvalidInput as exc:
                if len(extras) == 1:
                    raise
                where = f"Extra {index} of the {len(extras)} (counting from 0): {exc}"
                raise type(exc)(where, field=exc.field, hint=exc.hint) from None
        if not extras:
            return []
        runs = [{**self.engine.new_run(None, "invoke", now, service=service), "job": None} for _ in extras]
        run_ids = self.engine.store.add_runs(runs)
        for run_id, run, extra in zip(run_ids, runs, extras, strict=True):
            self.engine.dispatch_run(run_id, run, None, channel=channel, extra=extra)
        return run_ids

    def backfill(self, name: str, start, end, now: datetime) -> dict:
        """Run the fires the job would have had in [start, end], oldest first: ``run_ids``, and ``capped`` with a
        ``message`` when the window holds more than ``MAX_MISSED_COUNT`` fires (only the first ones run)."""
        job = self.engine.job(name)
        first = parse_datetime(start, job.spec.tz, now, "backfill start")
        last = parse_datetime(end, job.spec.tz, now, "backfill end")
        if last < first or last > now:
            raise InvalidInput(
                "A backfill window needs start <= end <= now, e.g. start='2026-11-01', end='2026-11-02'."
            )
        fires, capped = backfill_fires(job.spec, first, last)
        runs = [self.engine.new_run(job.spec, "backfill", fire) for fire in fires]
        ids = self.engine.store.claim(
            [Claim(job.uid, job.state.next_fire, job.state.next_fire, job.state.fires, runs)]
        )[0]
        if ids is None:
            raise InvalidInput(
                f"Part of that window was backfilled already for job {name!r}; pick a window not backfilled yet."
            )
        for run_id, run in zip(ids, runs, strict=True):
            self.engine.start_claimed(job, run_id, run, force_queue=True)
        if not capped:
            return {"run_ids": ids}
        upto = fires[-1].astimezone(zone(job.spec.tz)).isoformat()
        message = (
            f"Backfilled only the first {MAX_MISSED_COUNT:,} fires of that window of job {name!r} (the most one "
            f"backfill runs), up to {upto}; backfill the rest with a start after {upto}."
        )
        return {"run_ids": ids, "capped": True, "message": message}


@dataclass
class Turns:
    """When the next request of many runs (``invoke_many``) may start: after one that held the runner's loop for
    t seconds, not before ``rest * t`` more have passed. So a client that sends such requests back to back gets
    at most 1 / (1 + rest) of the loop, and other requests, fires and results the rest. Times are given, not read.
    """

    rest: float
    free_at: float = float("-inf")

    def wait(self, now: float) -> float:
        """Seconds to wait before a request that arrives at ``now`` may start (0: at once)."""
        return max(0.0, self.free_at - now)

    def took(self, began: float, ended: float) -> None:
        self.free_at = ended + self.rest * (ended - began)
