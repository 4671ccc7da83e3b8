"""The worker's run path and its inbox, and the pool's handling of results, in process.

These drive the pieces the runner wires together (no runner, no child process): what a run
leaves behind, when results go back to the runner, and when the runner takes them in.
"""

from __future__ import annotations

import asyncio
import gc
import io
import time
import weakref

from nbsched.runner.pool import DEFER_RESULTS, WorkerPool, _Worker
from nbsched.worker.process import Inbox, Worker, read_frame

NOOP = """
from nbsched import Service

class Noop(Service):
    name = "noop"

    def handle(self):
        self.response.payload = "done"
"""


def _worker() -> Worker:
    worker = Worker()
    worker.registry.update({"v1": ("<cell>", NOOP)}, {"noop": ("v1", "Noop")})
    worker.registry.service_class("noop")  # loaded, as after a first run: runs held for later get prepared
    return worker


def _run(run_id: int) -> dict:
    job = {"name": "j", "type": "interval", "run_number": run_id}
    return {"op": "run", "run_id": run_id, "cid": f"c{run_id}", "service": "noop", "channel": "scheduler", "job": job}


def test_a_run_prepared_ahead_is_freed_by_reference_counting_when_it_ends():
    # A held run's message kept its service object, which points back at the message: a cycle per run
    # that only a full garbage collection freed (tens of ms in a worker holding thousands of runs).
    worker = _worker()
    message = {**_run(1), "not_before": time.time() + 60}
    worker.prepare_ahead(message)
    service = weakref.ref(message["_service"])
    gc.disable()
    try:
        result = worker.run(message)
        assert result["status"] == "ok" and result["output"] == "done"
        assert service() is None, "the run's service object outlived the run (a reference cycle)"
    finally:
        gc.enable()


def _frames(out: io.BytesIO) -> list[dict]:
    stream, frames = io.BytesIO(out.getvalue()), []
    while (frame := read_frame(stream)) is not None:
        frames.append(frame)
    return frames


def _burst(inbox: Inbox, worker: Worker, count: int) -> None:
    """Runs ``count`` runs due now through the inbox, as the worker's main loop does, then a stop."""
    inbox.messages.extend(_run(i) for i in range(1, count + 1))
    inbox.messages.append(None)
    result = None
    while (message := inbox.next(result)) is not None:
        result = worker.run(message)


def test_the_results_of_runs_due_together_go_back_in_one_frame_after_the_last():
    out, worker = io.BytesIO(), _worker()
    _burst(Inbox(out), worker, 5)
    assert [[r["run_id"] for r in f["results"]] for f in _frames(out)] == [[1, 2, 3, 4, 5]]


def test_results_are_held_back_no_longer_than_batch_seconds():
    out, worker = io.BytesIO(), _worker()
    inbox = Inbox(out)
    inbox.BATCH_SECONDS = 0.0  # every result is "old" at once: each goes back before the next run
    _burst(inbox, worker, 3)
    assert [[r["run_id"] for r in f["results"]] for f in _frames(out)] == [[1], [2], [3]]


def _pool(got: list) -> tuple[WorkerPool, _Worker, _Worker]:
    pool = WorkerPool(2, on_result=got.append)
    a, b = _Worker(1, process=None), _Worker(2, process=None)
    pool.workers = [a, b]
    return pool, a, b


def _result(run_id: int) -> dict:
    return {"run_id": run_id, "status": "ok"}


def test_results_wait_while_another_worker_still_has_runs_due_and_come_in_when_it_reports():
    async def scenario():
        got: list = []
        pool, a, b = _pool(got)
        due = time.time() - 0.001
        a.inflight.append({"run_id": 1, "not_before": due})
        b.inflight.extend([{"run_id": 2, "not_before": due}, {"run_id": 3, "not_before": due}])
        pool._finished(a, [_result(1)])
        assert got == [] and not a.inflight  # held back, but no longer counted as in the worker
        pool._finished(b, [_result(2), _result(3)])
        assert [r["run_id"] for r in got] == [1, 2, 3]
        assert pool._defer_timer is None

    asyncio.run(scenario())


def test_results_come_in_at_once_when_the_other_worker_has_no_queue_of_runs_due():
    async def scenario():
        got: list = []
        pool, a, b = _pool(got)
        a.inflight.extend([{"run_id": 1}, {"run_id": 2}])
        b.inflight.extend([{"run_id": 3}, {"run_id": 4, "not_before": time.time() + 60}])  # one run, one for later
        pool._finished(a, [_result(1)])
        assert [r["run_id"] for r in got] == [1]
        b.inflight.popleft()
        pool._finished(a, [_result(2)])  # and when it holds only runs for later
        assert [r["run_id"] for r in got] == [1, 2]

    asyncio.run(scenario())


def test_held_back_results_come_in_after_defer_results_seconds_at_the_latest():
    async def scenario():
        got: list = []
        pool, a, b = _pool(got)
        a.inflight.append({"run_id": 1})
        b.inflight.extend([{"run_id": 2}, {"run_id": 3}])  # a queue of runs due in the other worker
        began = time.monotonic()
        pool._finished(a, [_result(1)])
        assert got == []
        deadline = began + 10 * DEFER_RESULTS + 1
        while not got and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        assert [r["run_id"] for r in got] == [1]
        assert time.monotonic() - began >= DEFER_RESULTS * 0.9

    asyncio.run(scenario())
