"""Pacing of the schedule loop behind schedule: ticks sized to a slice, requests in a row answered in a row; and the
turns of requests of many runs (``invoke_many``)."""

from __future__ import annotations

import asyncio
import time

import pytest

from nbsched import config
from nbsched.runner.engine import Engine, Hooks
from nbsched.runner.ondemand import Turns
from nbsched.runner.pacing import Pacing
from nbsched.store.memory import MemoryStore


def _pacing() -> Pacing:
    return Pacing(Engine(store=MemoryStore(), hooks=Hooks(dispatch=lambda message: None), runner_id="test:1"))


def test_ticks_shrink_after_a_slow_one_and_grow_after_a_full_quick_one_within_bounds():
    pacing = _pacing()
    engine, slice_ = pacing.engine, config.SCHEDULE_SLICE_SECONDS
    assert engine.claims_per_tick == config.MAX_CLAIMS_PER_TICK
    pacing.ticked(2000, 20 * slice_)  # 2,000 claims in twenty slices: far too long
    assert engine.claims_per_tick == (2000 + 100) // 2
    for _ in range(20):
        pacing.ticked(engine.claims_per_tick, 1.0)
    assert engine.claims_per_tick == config.MIN_CLAIMS_PER_TICK
    pacing.ticked(10, slice_ / 10)  # not full, quick: no reason to change
    assert engine.claims_per_tick == config.MIN_CLAIMS_PER_TICK
    for _ in range(20):
        pacing.ticked(engine.claims_per_tick, slice_ / 100)
    assert engine.claims_per_tick == config.MAX_CLAIMS_PER_TICK


def test_between_ticks_waits_for_requests_in_a_row_only_and_never_longer_than_the_last_tick():
    pacing = _pacing()

    async def seconds_between_ticks(tick_seconds: float, answered: bool) -> float:
        if answered:
            pacing.answered()
        began = time.perf_counter()
        await pacing.between_ticks(tick_seconds)
        return time.perf_counter() - began

    assert asyncio.run(seconds_between_ticks(1.0, answered=False)) < 0.5  # no request: the next tick at once
    waited = asyncio.run(seconds_between_ticks(1.0, answered=True))
    assert config.REQUEST_GAP_SECONDS / 2 <= waited < 0.5  # waits for a next request a moment, then ticks
    assert asyncio.run(seconds_between_ticks(0.0, answered=True)) < config.REQUEST_GAP_SECONDS + 0.5


def test_requests_of_many_runs_in_a_row_rest_twice_as_long_as_each_held_the_loop():
    turns = Turns(rest=2.0)
    assert turns.wait(100.0) == 0.0  # the first starts at once
    turns.took(100.0, 100.010)  # it held the loop 10 ms
    assert turns.wait(100.010) == pytest.approx(0.020)
    assert turns.wait(100.025) == pytest.approx(0.005)
    assert turns.wait(100.035) == 0.0
    turns.took(100.035, 100.036)  # a small one: a short rest
    assert turns.wait(100.036) == pytest.approx(0.002)
    assert Turns(rest=0.0).wait(0.0) == 0.0
