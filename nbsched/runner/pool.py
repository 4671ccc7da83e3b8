"""The runner's pool of worker processes: hands runs out, collects results, replaces the dead.

The runner's end of the worker pipe (``nbsched.worker.pipe``): it sends ``RunMessage`` batches and
gets ``Result`` batches back, typed messages both ends share.

A worker gets runs only after it says it is ready (started and warmed up). It may hold
several run messages in its pipe (pipelining), run one after another, except a run that may
be killed (a timeout, overlap=replace): that one has its worker to itself, so killing the
worker stops exactly that run. A worker that dies for any reason is reported as a failed run
with the reason (exit code or signal), the runs queued behind it go to other workers, and a
fresh worker takes its place (retried until it starts, when the runner is short of files or memory).

Each worker leads its own process group. Killing a worker (a timeout, overlap=replace, the runner
stopping) kills the group: the processes a service forked (``multiprocessing.Pool``, ``os.fork``)
go with it and cannot hold its pipes open. A run with ``isolation="process"`` (the job's option,
or the ``isolation`` attribute of its ``Service`` class) gets a worker that has run nothing yet,
alone, and that worker is retired after it: code that patches modules leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable

from ..worker import pipe
from ..worker.loading import declares_process_isolation
from ..worker.pipe import Result, RunMessage
from .handle import _Worker, _WorkerProtocol
from .spares import Spares

log = logging.getLogger(__name__)
#: Longest wait of a worker's results while another worker still has runs due (see ``_finished``).
DEFER_RESULTS = 0.02
#: Most results taken in at one step of the event loop (a burst brings thousands at once): requests on the
#: socket wait for one step, not for the burst. The rest follow, on a timer: after what is ready meanwhile.
RESULTS_PER_STEP = 500
#: Seconds a dead worker's pipes may stay open (held by a process that left its group) before they are closed.
PIPE_GRACE = 0.5
#: First and longest wait before trying again to start a worker that could not be started.
SPAWN_RETRY_FIRST = 0.25
SPAWN_RETRY_MAX = 10.0
#: Buffer limit of a worker's result stream (asyncio's default).
_READ_LIMIT = 2**16
#: Bytes read from a worker's result pipe at once (a pipe holds 64 KiB: more is never there to read).
_PIPE_READ_BYTES = 2**16


class WorkerPool:
    """A fixed number of worker processes fed from one queue of run messages."""

    def __init__(self, size: int, on_result: Callable[[Result], None]):
        self.size = max(1, size)
        self.on_result = on_result
        self.on_start: Callable[[int], None] = lambda run_id: None
        self.on_logs: Callable[[int, int, list[str]], None] = lambda run_id, first, lines: None  # live lines
        self.queue: deque[RunMessage] = deque()
        self.workers: list[_Worker] = []
        self.sources: dict[str, tuple[str, str]] = {}
        self.services: dict[str, tuple[str, str]] = {}
        self.process_services: set[str] = set()  # services whose class sets isolation = "process"
        self._isolation_seen: dict[tuple[str, str], bool] = {}  # (version, class) -> isolated
        self.registry_version = 0
        self.connections: dict[str, dict] = {}
        self.connections_version = 0
        self.lease_until = math.inf  # a runner of a shared store: until when its lease surely holds
        self.stopping = False
        self._stopped = asyncio.Event()
        self._spawned = 0
        self._start_failures = 0  # workers in a row that ended before they were ready
        self._tasks: set[asyncio.Task] = set()
        self._dispatch_pending = False
        self._deferred: list[Result] = []  # results held back while another worker runs a burst
        self._defer_timer: asyncio.TimerHandle | None = None
        self.spares = Spares(self)  # which workers keep spare kernels for notebook services

    async def start(self) -> None:
        for _ in range(self.size):
            await self._spawn()

    def set_registry(self, sources: dict[str, tuple[str, str]], services: dict[str, tuple[str, str]]) -> None:
        """The deployed sources (version -> (origin, text)) and services (name -> (version, class))."""
        self.sources.update(sources)
        self.services = dict(services)
        self.process_services = {name for name, (version, cls) in self.services.items() if self._isolated(version, cls)}
        self.registry_version += 1

    def _isolated(self, version: str, class_name: str) -> bool:
        key = (version, class_name)
        if key not in self._isolation_seen:
            source = self.sources.get(version, ("", ""))[1]
            self._isolation_seen[key] = "isolation" in source and declares_process_isolation(source, class_name)
        return self._isolation_seen[key]

    def set_lease(self, valid_until: float) -> None:
        """Until when (epoch seconds) this runner's lease surely holds: no worker starts a run after that."""
        self.lease_until = valid_until
        frame = pipe.encode(pipe.Lease(valid_until))
        for worker in self.workers:
            if worker.lease_seen != valid_until:
                worker.process.stdin.write(frame)
                worker.lease_seen = valid_until

    def set_connections(self, definitions: dict[str, dict]) -> None:
        """The connection definitions (name -> {kind, definition}); each worker gets them before its next run."""
        self.connections = dict(definitions)
        self.connections_version += 1

    def submit(self, message: RunMessage) -> None:
        """Queue a run message; it starts as soon as a worker is free.

        The hand-over waits for the current step of the event loop to end, so that the runs of
        one claim batch go to each worker in one frame and one pipe write.
        """
        if self.process_services and message.service in self.process_services:
            message.isolation = "process"
        self.queue.append(message)
        if not self._dispatch_pending:
            self._dispatch_pending = True
            asyncio.get_running_loop().call_soon(self._dispatch)

    def cancel(self, run_id: int, error: str) -> bool:
        """Take back a run that has not started (queued here, or held by a worker until its time)."""
        for index, message in enumerate(self.queue):
            if message.run_id == run_id:
                del self.queue[index]
                self.on_result(_unstarted(run_id, error))
                return True
        for worker in self.workers:
            if run_id in worker.sent_at:
                worker.cancelling[run_id] = error
                worker.process.stdin.write(pipe.encode(pipe.Cancel(run_id)))
                return True
        return False

    def kill(self, run_id: int, status: str, error: str) -> bool:
        """Stop the run ``run_id``: kill its worker and what it forked; its result carries ``status`` and ``error``."""
        for worker in self.workers:
            if worker.current and worker.current.run_id == run_id:
                worker.kill_reason = (status, error)
                worker.kill()
                return True
        return False

    @property
    def busy(self) -> int:
        return sum(len(worker.inflight) for worker in self.workers)

    async def stop(self) -> None:
        """Kill every worker and what it forked; the runs they had are left to the runner (interrupted)."""
        self.stopping = True
        self._stopped.set()
        self._take_deferred(sys.maxsize)
        for worker in list(self.workers):
            worker.kill()
        if self._tasks:
            _, pending = await asyncio.wait(list(self._tasks), timeout=PIPE_GRACE + 5)
            for task in pending:  # pragma: no cover - a killed worker's pipes are closed within PIPE_GRACE
                task.cancel()

    async def _spawn(self) -> None:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.subprocess_exec(
            lambda: _WorkerProtocol(limit=_READ_LIMIT, loop=loop),
            sys.executable,
            "-m",
            "nbsched.worker",
            *pipe.worker_arguments(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            process_group=0,  # its own group: killing the group kills what its runs forked
        )
        process = asyncio.subprocess.Process(transport, protocol, loop)
        results = transport.get_pipe_transport(1)
        if isinstance(getattr(results, "max_size", None), int):
            results.max_size = _PIPE_READ_BYTES  # asyncio reads 256 KiB at once: a fresh memory map per read
        self._spawned += 1
        worker = _Worker(self._spawned, process, transport)
        protocol.on_exit = lambda: self._exited(worker)
        if process.returncode is not None:  # it exited before the hook was set
            self._exited(worker)
        self.workers.append(worker)
        task = loop.create_task(self._read(worker), name=f"nbsched-worker-{worker.number}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        log.debug("worker %s started (pid %s)", worker.number, process.pid)
        self._dispatch()

    async def _replace(self) -> None:
        """Start a worker in place of one that ended; when that fails (no files or memory left), retry with backoff."""
        delay = SPAWN_RETRY_FIRST
        while not self.stopping:
            try:
                await self._spawn()
                return
            except OSError as exc:
                log.error("could not start a worker (%s); trying again in %gs", exc, delay)
            await self._pause(delay)
            delay = min(delay * 2, SPAWN_RETRY_MAX)

    async def _pause(self, seconds: float) -> None:
        """Wait ``seconds``, or less if the pool stops meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), seconds)

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("a worker's reader failed", exc_info=task.exception())

    def _exited(self, worker: _Worker) -> None:
        """The worker process ended: what it forked goes too, and pipes still held open by a process that
        left its group are closed after ``PIPE_GRACE`` seconds, so its end is noticed and its run reported."""
        worker.kill()
        asyncio.get_running_loop().call_later(PIPE_GRACE, self._close_result_pipe, worker)

    def _close_result_pipe(self, worker: _Worker) -> None:
        stdout = worker.transport.get_pipe_transport(1) if worker.transport is not None else None
        if not worker.eof and stdout is not None and not stdout.is_closing():
            log.warning("worker %s ended but a process it started holds its pipe; closing it", worker.number)
            stdout.close()

    def _retire(self, worker: _Worker) -> None:
        """Take a worker out of service: it is killed (with what it forked) and a fresh one replaces it."""
        worker.retiring = True
        worker.kill()

    def _freshen(self) -> None:
        """A run needs a worker that has run nothing: unless one is starting, retire an idle one."""
        if any(not worker.used and not worker.retiring for worker in self.workers):
            return
        idle = [worker for worker in self.workers if worker.ready and not worker.inflight and not worker.retiring]
        if idle:
            self._retire(idle[0])

    def _dispatch(self) -> None:
        self._dispatch_pending = False
        now = time.time()
        batches: dict[_Worker, list[RunMessage]] = {}
        while self.queue:
            message = self.queue[0]
            ready = [worker for worker in self.workers if worker.can_take(message)]
            if not ready:
                if message.isolation == "process":
                    self._freshen()
                break
            self.queue.popleft()
            # A run for now avoids workers that hold runs for later: it would wait behind them; among the rest, one
            # with a spare kernel for it (``spares``), then one that has run something (fresh ones: isolated runs).
            due_now = message.not_before <= now
            late, svc = now if due_now else math.inf, message.service
            worker = min(ready, key=lambda w: (w.held_until > late, len(w.inflight), svc not in w.warmed, not w.used))
            self.spares.dispatched(worker, message)
            if not due_now:
                worker.held_until = max(worker.held_until, message.not_before)
            worker.used = True
            if message.isolation == "process":
                worker.retiring = True  # this run alone, then a fresh worker takes its place
            worker.inflight.append(message)
            batches.setdefault(worker, []).append(message)
        for worker, messages in batches.items():
            self._send(worker, messages)

    def _send(self, worker: _Worker, messages: list[RunMessage]) -> None:
        frames = worker.catch_up(self)
        frames.append(pipe.encode(pipe.Runs(messages)))
        worker.process.stdin.write(b"".join(frames))
        sent, sent_at, on_start = time.time(), worker.sent_at, self.on_start
        for message in messages:
            sent_at[message.run_id] = sent  # the frame is written: when the run began at the earliest, if it dies
            on_start(message.run_id)

    async def _read(self, worker: _Worker) -> None:
        """Act on what the worker sends until its pipe ends, then bury it."""
        reader = worker.process.stdout
        while True:
            try:
                message = await pipe.receive(reader)
            except (asyncio.IncompleteReadError, ConnectionError, EOFError):
                break
            except Exception:
                log.exception("worker %s sent a frame this runner cannot read; stopping it", worker.number)
                worker.kill()
                break
            match message:
                case pipe.Results(results):
                    self._finished(worker, results)
                    self._retire_if_done(worker)
                    self._dispatch()
                case pipe.Logs(run_id, first, lines):
                    self.on_logs(run_id, first, lines)
                case pipe.Bounced(run_ids):
                    self._bounced(worker, set(run_ids))
                case pipe.Cancelled(run_id):
                    self._cancelled(worker, run_id)
                case pipe.Ready(version=version):
                    self._ready(worker, version)
                case _:
                    log.error(
                        "worker %s sent %s, not a message of pipe protocol %s (another nbsched version?); stopping it",
                        worker.number,
                        type(message).__name__,
                        pipe.VERSION,
                    )
                    worker.kill()
        worker.eof = True
        await self._buried(worker)

    def _ready(self, worker: _Worker, version: int) -> None:
        """The worker has started: it takes runs, if it speaks this runner's version of the pipe."""
        if version != pipe.VERSION:
            text = "worker %s speaks pipe protocol %s, this runner %s: restart the runner after installing nbsched"
            log.error(text, worker.number, version, pipe.VERSION)
            worker.kill()
            return
        worker.ready = True
        self._start_failures = 0
        self.spares.worker_ready()
        self._dispatch()

    def _cancelled(self, worker: _Worker, run_id: int) -> None:
        """The worker gave back a run it was asked to cancel."""
        worker.take_back({run_id})
        self.on_result(_unstarted(run_id, worker.cancelling.pop(run_id, "Cancelled before it started.")))
        self._retire_if_done(worker)

    def _retire_if_done(self, worker: _Worker) -> None:
        if worker.retiring and not worker.inflight:
            worker.kill()

    def _finished(self, worker: _Worker, results: list[Result]) -> None:
        """Results of a worker's runs. While another worker still works through a queue of runs that
        are due (a burst), they wait for its results, up to ``DEFER_RESULTS`` seconds: the runner taking
        them in now would take a core from that worker's runs."""
        inflight, sent_at = worker.inflight, worker.sent_at
        for one in results:
            if inflight and inflight[0].run_id == one.run_id:
                inflight.popleft()
            sent_at.pop(one.run_id, None)
        worker.slow = False
        worker.last_finished = results[-1].finished_at or 0.0
        self._deferred.extend(results)
        now = time.time()
        if not any(
            other is not worker and len(other.inflight) > 1 and other.inflight[1].not_before <= now
            for other in self.workers
        ):
            self._take_deferred()
        elif self._defer_timer is None:
            self._defer_timer = asyncio.get_running_loop().call_later(DEFER_RESULTS, self._take_deferred)

    def _take_deferred(self, limit: int = RESULTS_PER_STEP) -> None:
        """Hand the results held back to the runner, in order: ``limit`` now, the rest at a later step of the loop."""
        if self._defer_timer is not None:
            self._defer_timer.cancel()
        deferred, self._deferred = self._deferred[:limit], self._deferred[limit:]
        self._defer_timer = asyncio.get_running_loop().call_later(1e-6, self._take_deferred) if self._deferred else None
        for one in deferred:
            self.on_result(one)

    def _bounced(self, worker: _Worker, run_ids: set[int]) -> None:
        """The worker's run in hand is slow: the runs waiting behind it go to other workers."""
        worker.slow = True
        self.queue.extendleft(reversed(worker.take_back(run_ids)))
        self._dispatch()

    async def _buried(self, worker: _Worker) -> None:
        stdin = worker.transport.get_pipe_transport(0) if worker.transport is not None else None
        if stdin is not None and not stdin.is_closing():  # a process it forked may hold the other end: do not wait
            stdin.abort()
        code = await worker.process.wait()
        self._take_deferred(sys.maxsize)  # what it reported before it died comes first
        if worker in self.workers:
            self.workers.remove(worker)
        # Runs queued behind the one that was running never started: hand them to other workers.
        for message in reversed(list(worker.inflight)[1:]):
            self.queue.appendleft(message)
        if self.stopping:
            return  # the runner marks the runs it still had as interrupted
        if worker.current is not None:
            self.on_result(_died(worker, code))
        if not worker.ready:
            self._start_failures += 1
            delay = min(SPAWN_RETRY_FIRST * 2 ** (self._start_failures - 1), SPAWN_RETRY_MAX)
            log.error(
                "worker %s ended before it was ready (%s); starting another in %gs",
                worker.number,
                _exit_reason(code),
                delay,
            )
            await self._pause(delay)
        elif worker.retiring and worker.current is None:
            log.debug("worker %s retired after a run in its own process", worker.number)
        else:
            log.info("worker %s exited (%s); starting a new one", worker.number, _exit_reason(code))
        await self._replace()


def _died(worker: _Worker, code: int | None) -> Result:
    """The result of the run in hand of a worker that ended: killed on purpose (``kill_reason``), or it died."""
    status, error = worker.kill_reason or (
        "error",
        f"The worker process running this service died ({_exit_reason(code)}).",
    )
    now, current = time.time(), worker.current
    began = max(worker.sent_at.get(current.run_id, now), current.not_before, worker.last_finished)
    started = began if began <= now else None  # None: it was held for later, never began
    return Result(current.run_id, status, error, started_at=started, finished_at=now)


def _unstarted(run_id: int, error: str) -> Result:
    """The result of a run taken back before it started."""
    return Result(run_id, "skipped", error, finished_at=time.time())


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "still running"
    if code == pipe.EXIT_MISMATCH:
        return f"exit code {code}: it speaks another version of the pipe; restart the runner"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
