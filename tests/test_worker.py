"""The worker's run path and its inbox, and the pool's handling of results, in process.

These drive the pieces the runner wires together (no runner, no child process): what a run
leaves behind, when results go back to the runner, and when the runner takes them in.
"""

from __future__ import annotations

import asyncio
import gc
import io
import threading
import time
import weakref

import pytest

from nbsched.runner.handle import _Worker
from nbsched.runner.pool import DEFER_RESULTS, WorkerPool
from nbsched.worker import pipe
from nbsched.worker.execute import Worker
from nbsched.worker.inbox import Inbox
from nbsched.worker.pipe import Result, RunMessage

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


def _run(run_id: int, not_before: float = 0.0) -> RunMessage:
    job = ("j", "interval", run_id)
    return RunMessage(run_id, f"c{run_id}", "noop", channel="scheduler", job=job, not_before=not_before)


def test_a_run_prepared_ahead_is_freed_by_reference_counting_when_it_ends():
    # A held run's service object points back at its message: had the message kept the service object,
    # each run would leave a cycle that only a full garbage collection frees (tens of ms in a worker
    # holding thousands of runs).
    worker = _worker()
    message = _run(1, not_before=time.time() + 60)
    prepared = {1: worker.prepare_ahead(message)}
    service = weakref.ref(prepared[1])
    gc.disable()
    try:
        result = worker.run(message, prepared.pop(1))
        assert (result.status, result.output) == ("ok", "done")
        assert service() is None, "the run's service object outlived the run (a reference cycle)"
    finally:
        gc.enable()


def test_a_run_gets_the_job_it_belongs_to_and_its_output_and_logs_in_its_result():
    worker = _worker()
    result = worker.run(RunMessage(7, "c7", "noop", channel="scheduler", job=("j", "interval", 3)))
    assert (result.run_id, result.status, result.error, result.output) == (7, "ok", None, "done")
    assert result.started_at <= result.finished_at


def test_messages_cross_the_pipe_as_the_same_typed_messages():
    runs = pipe.Runs([_run(1), _run(2, not_before=5.0)])
    results = pipe.Results([Result(1, "ok", output="x", started_at=1.0, finished_at=2.0), Result(2, "error")])
    stream = io.BytesIO(b"".join(pipe.encode(m) for m in (runs, results, pipe.Cancel(3), pipe.Ready(42))))
    assert [pipe.read(stream) for _ in range(4)] == [runs, results, pipe.Cancel(3), pipe.Ready(42, pipe.VERSION)]
    assert pipe.read(stream) is None


def test_a_worker_started_for_another_version_of_the_pipe_exits_with_a_clear_error(capsys):
    with pytest.raises(SystemExit) as exited:
        pipe.check_version([str(pipe.VERSION + 1)])
    assert exited.value.code == pipe.EXIT_MISMATCH
    assert f"the runner speaks pipe protocol {pipe.VERSION + 1}, this worker {pipe.VERSION}" in capsys.readouterr().err
    pipe.check_version(pipe.worker_arguments())  # the runner's own: no error


def _frames(out: io.BytesIO) -> list:
    stream, frames = io.BytesIO(out.getvalue()), []
    while (frame := pipe.read(stream)) is not None:
        frames.append(frame)
    return frames


def _burst(inbox: Inbox, worker: Worker, count: int) -> None:
    """Runs ``count`` runs due now through the inbox, as the worker's main loop does, then a stop."""
    inbox.messages.extend(_run(i) for i in range(1, count + 1))
    inbox.messages.append(None)
    result = None
    while (message := inbox.next(result)) is not None:
        result = worker.run(message, inbox.prepared.pop(message.run_id, None))


def test_the_results_of_runs_due_together_go_back_in_one_frame_after_the_last():
    out, worker = io.BytesIO(), _worker()
    _burst(Inbox(out), worker, 5)
    assert [[r.run_id for r in f.results] for f in _frames(out)] == [[1, 2, 3, 4, 5]]


def test_results_are_held_back_no_longer_than_batch_seconds():
    out, worker = io.BytesIO(), _worker()
    inbox = Inbox(out)
    inbox.BATCH_SECONDS = 0.0  # every result is "old" at once: each goes back before the next run
    _burst(inbox, worker, 3)
    assert [[r.run_id for r in f.results] for f in _frames(out)] == [[1], [2], [3]]


def _pool(got: list) -> tuple[WorkerPool, _Worker, _Worker]:
    pool = WorkerPool(2, on_result=got.append)
    a, b = _Worker(1, process=None), _Worker(2, process=None)
    pool.workers = [a, b]
    return pool, a, b


def _result(run_id: int) -> Result:
    return Result(run_id, "ok")


def _message(run_id: int, not_before: float = 0.0) -> RunMessage:
    return RunMessage(run_id, f"c{run_id}", "noop", not_before=not_before)


def test_results_wait_while_another_worker_still_has_runs_due_and_come_in_when_it_reports():
    async def scenario():
        got: list = []
        pool, a, b = _pool(got)
        due = time.time() - 0.001
        a.inflight.append(_message(1, not_before=due))
        b.inflight.extend([_message(2, not_before=due), _message(3, not_before=due)])
        pool._finished(a, [_result(1)])
        assert got == [] and not a.inflight  # held back, but no longer counted as in the worker
        pool._finished(b, [_result(2), _result(3)])
        assert [r.run_id for r in got] == [1, 2, 3]
        assert pool._defer_timer is None

    asyncio.run(scenario())


def test_results_come_in_at_once_when_the_other_worker_has_no_queue_of_runs_due():
    async def scenario():
        got: list = []
        pool, a, b = _pool(got)
        a.inflight.extend([_message(1), _message(2)])
        b.inflight.extend([_message(3), _message(4, not_before=time.time() + 60)])  # one run, one for later
        pool._finished(a, [_result(1)])
        assert [r.run_id for r in got] == [1]
        b.inflight.popleft()
        pool._finished(a, [_result(2)])  # and when it holds only runs for later
        assert [r.run_id for r in got] == [1, 2]

    asyncio.run(scenario())


def test_held_back_results_come_in_after_defer_results_seconds_at_the_latest():
    async def scenario():
        got: list = []
        pool, a, b = _pool(got)
        a.inflight.append(_message(1))
        b.inflight.extend([_message(2), _message(3)])  # a queue of runs due in the other worker
        began = time.monotonic()
        pool._finished(a, [_result(1)])
        assert got == []
        deadline = began + 10 * DEFER_RESULTS + 1
        while not got and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        assert [r.run_id for r in got] == [1]
        assert time.monotonic() - began >= DEFER_RESULTS * 0.9

    asyncio.run(scenario())


def test_runs_held_for_later_are_prepared_while_they_wait_and_a_cancelled_one_leaves_nothing_behind():
    out, worker = io.BytesIO(), _worker()
    inbox = Inbox(out, prepare=worker.prepare_ahead)
    soon = time.time() + 0.05
    inbox._arrived([_run(1, not_before=soon), _run(2, not_before=soon + 60)])
    message = inbox.next()
    assert message.run_id == 1 and time.time() >= soon
    assert sorted(inbox.prepared) == [1, 2]  # both built while run 1 waited
    with inbox.changed:
        inbox._cancel(2)
    result = worker.run(message, inbox.prepared.pop(1))
    assert result.status == "ok"
    assert inbox.prepared == {} and inbox.held == set()
    assert _frames(out) == [pipe.Cancelled(2)]


def _fill_in_background(inbox: Inbox, *messages) -> threading.Thread:
    """The inbox's reading thread, fed ``messages`` as the runner's pipe would (then the pipe ends)."""
    source = io.BytesIO(b"".join(pipe.encode(message) for message in messages))
    thread = threading.Thread(target=inbox.fill, args=(source,), daemon=True)
    thread.start()
    return thread


def test_a_due_run_waits_while_the_runners_lease_is_lapsed_and_starts_once_it_is_renewed():
    out = io.BytesIO()
    inbox = Inbox(out)
    inbox.lease_until = time.time() - 1  # the runner is frozen or cut off from its shared store
    inbox._arrived([_run(1)])
    handed: list = []
    taker = threading.Thread(target=lambda: handed.append(inbox.next()), daemon=True)
    taker.start()
    taker.join(0.3)
    assert handed == [] and taker.is_alive()  # due, and not started
    with inbox.changed:
        inbox.lease_until = time.time() + 2  # the runner renewed its lease (pipe.Lease)
        inbox.changed.notify_all()
    taker.join(5)
    assert [message.run_id for message in handed] == [1]


def test_a_run_waiting_for_the_lease_is_given_back_when_cancelled():
    out = io.BytesIO()
    inbox = Inbox(out)
    inbox._arrived([_run(1), _run(2)])
    _fill_in_background(inbox, pipe.Lease(time.time() - 1), pipe.Cancel(1), pipe.Cancel(2)).join(5)
    assert inbox.next() is None  # the pipe's end: nothing of the two runs was started
    assert _frames(out) == [pipe.Cancelled(1), pipe.Cancelled(2)]


def test_runs_held_for_later_are_dropped_when_the_runner_goes_away():
    out = io.BytesIO()
    inbox = Inbox(out)
    _fill_in_background(inbox, pipe.Runs([_run(1, not_before=time.time() + 0.2), _run(2)])).join(5)
    assert inbox.next() is None  # its runner died: no one would record them; the runner taking over runs them


def test_a_worker_for_another_version_of_the_pipe_is_refused_and_started_again_after_a_pause(monkeypatch, caplog):
    monkeypatch.setattr(pipe, "worker_arguments", lambda: [str(pipe.VERSION + 1)])  # as a runner of another version

    async def scenario():
        pool = WorkerPool(1, on_result=lambda result: None)
        await pool.start()
        deadline = time.monotonic() + 30
        while "ended before it was ready" not in caplog.text and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        workers_ready = [worker.ready for worker in pool.workers]
        await pool.stop()
        return workers_ready

    with caplog.at_level("ERROR", logger="nbsched.runner.pool"):
        assert asyncio.run(scenario()) in ([], [False])
    assert f"exit code {pipe.EXIT_MISMATCH}: it speaks another version of the pipe; restart the runner" in caplog.text
    assert "starting another in 0.25s" in caplog.text
