"""Pacing: how the schedule loop shares the event loop with the control plane while it is behind.

A runner with more due fires than it can claim at once works in ticks sized to take about
``SCHEDULE_SLICE_SECONDS``, and between ticks lets everything else run first: requests on the socket,
workers' results. While a client sends request after request (pausing every job, say), the next tick
waits for them, for at most as long as the tick before took: the control plane gets up to half the
loop, the fires the rest, and a user can always see, pause and stop.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from .. import config

if TYPE_CHECKING:
    from .engine import Engine

#: What the schedule loop sleeps between ticks when behind: any delay above 0 makes it a timer, and the event
#: loop runs what its selector found ready (a request, a worker's results) before its timers' callbacks, so
#: a request waits for the tick in progress only, not for the next one too (``sleep(0)`` would run that first).
YIELD_SECONDS = 1e-6


class Pacing:
    """The schedule loop's ticks, sized to a slice, and its turns with the control plane."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.answered_at = -1.0  # time.perf_counter() of the last request answered

    def ticked(self, created: int, seconds: float) -> None:
        """Size the next tick to take about ``SCHEDULE_SLICE_SECONDS``: smaller after a tick that took longer,
        larger after a full one (it claimed as many as it could) that took less."""
        engine = self.engine
        limit = engine.claims_per_tick
        if created <= 0 or (created < limit and seconds <= config.SCHEDULE_SLICE_SECONDS):
            return
        fitting = int(config.SCHEDULE_SLICE_SECONDS * created / max(seconds, 1e-6))
        engine.claims_per_tick = max(
            config.MIN_CLAIMS_PER_TICK, min(config.MAX_CLAIMS_PER_TICK, (limit + fitting) // 2)
        )

    def answered(self) -> None:
        """A request on the socket was answered."""
        self.answered_at = time.perf_counter()

    async def between_ticks(self, tick_seconds: float) -> None:
        """Behind schedule: let what is ready run, and requests that follow one another, for up to ``tick_seconds``."""
        await asyncio.sleep(YIELD_SECONDS)
        hold_until = time.perf_counter() + tick_seconds
        while (now := time.perf_counter()) < hold_until and now - self.answered_at < config.REQUEST_GAP_SECONDS:
            await asyncio.sleep(config.REQUEST_GAP_SECONDS / 4)
