"""The runner's pool of worker processes: hands runs out, collects results, replaces the dead.

A worker gets runs only after it says it is ready (started and warmed up). It may hold
several run messages in its pipe (pipelining), run one after another, except a run that may
be killed (a timeout, overlap=replace): that one has its worker to itself, so killing the
worker stops exactly that run. A worker that dies for any reason is reported as a failed run
with the reason (exit code or signal), the runs queued behind it go to other workers, and a
fresh worker takes its place.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import signal
import struct
import sys
import time
from collections import deque
from collections.abc import Callable

from .worker import encode_frame

log = logging.getLogger(__name__)
_HEADER = struct.Struct("!I")
#: Run messages a worker holds at most: it reads the next from its pipe as soon as one ends, so
#: a burst costs one pipe write per message instead of one full round trip per run.
PIPELINE_DEPTH = 16384
#: Longest wait of a worker's results while another worker still has runs due (see ``_finished``).
DEFER_RESULTS = 0.02


class _Worker:
    @property
    def current(self) -> dict | None:
        return self.inflight[0] if self.inflight else None

    def can_take(self, message: dict) -> bool:
        """Exclusive runs (timeout or overlap=replace: they may be killed) never share a worker's pipe."""
        if not self.ready or self.process.returncode is not None:
            return False
        if self.slow or message.get("exclusive") or (self.inflight and self.inflight[-1].get("exclusive")):
            return not self.inflight
        return len(self.inflight) < PIPELINE_DEPTH

    def __init__(self, number: int, process: asyncio.subprocess.Process):
        self.number = number
        self.process = process
        self.inflight: deque[dict] = deque()  # sent, in order; the first one is running (or waiting)
        self.kill_reason: tuple[str, str] | None = None  # (status, error) when killed on purpose
        self.sources_sent: set[str] = set()
        self.registry_seen = -1
        self.connections_seen = -1
        self.ready = False  # set when the worker says it has started and warmed up
        self.slow = False  # its run in hand outlasted the bounce time: queue nothing behind it
        self.held_until = 0.0  # the latest not_before of the runs it holds for later
        self.cancelling: dict[int, str] = {}  # run id -> why, asked to give back


class WorkerPool:
    """A fixed number of worker processes fed from one queue of run messages."""

    def __init__(self, size: int, on_result: Callable[[dict], None]):
        self.size = max(1, size)
        self.on_result = on_result
        self.on_start: Callable[[int], None] = lambda run_id: None
        self.queue: deque[dict] = deque()
        self.workers: list[_Worker] = []
        self.sources: dict[str, tuple[str, str]] = {}
        self.services: dict[str, tuple[str, str]] = {}
        self.registry_version = 0
        self.connections: dict[str, dict] = {}
        self.connections_version = 0
        self.stopping = False
        self._spawned = 0
        self._tasks: set[asyncio.Task] = set()
        self._dispatch_pending = False
        self._deferred: list[dict] = []  # results held back while another worker runs a burst
        self._defer_timer: asyncio.TimerHandle | None = None

    async def start(self) -> None:
        for _ in range(self.size):
            await self._spawn()

    def set_registry(self, sources: dict[str, tuple[str, str]], services: dict[str, tuple[str, str]]) -> None:
        """The deployed sources (version -> (origin, text)) and services (name -> (version, class))."""
        self.sources.update(sources)
        self.services = dict(services)
        self.registry_version += 1

    def set_connections(self, definitions: dict[str, dict]) -> None:
        """The connection definitions (name -> {kind, definition}); each worker gets them before its next run."""
        self.connections = dict(definitions)
        self.connections_version += 1

    def submit(self, message: dict) -> None:
        """Queue a run message; it starts as soon as a worker is free.

        The hand-over waits for the current step of the event loop to end, so that the runs of
        one claim batch go to each worker in one frame and one pipe write.
        """
        self.queue.append(message)
        if not self._dispatch_pending:
            self._dispatch_pending = True
            asyncio.get_running_loop().call_soon(self._dispatch)

    def cancel(self, run_id: int, error: str) -> bool:
        """Take back a run that has not started (queued here, or held by a worker until its time)."""
        for message in self.queue:
            if message["run_id"] == run_id:
                self.queue.remove(message)
                self.on_result(_unstarted(run_id, error))
                return True
        for worker in self.workers:
            if any(message["run_id"] == run_id for message in worker.inflight):
                worker.cancelling[run_id] = error
                worker.process.stdin.write(encode_frame({"op": "cancel", "run_id": run_id}))
                return True
        return False

    def kill(self, run_id: int, status: str, error: str) -> bool:
        """Stop the run ``run_id`` by killing its worker; its result carries ``status`` and ``error``."""
        for worker in self.workers:
            if worker.current and worker.current["run_id"] == run_id:
                worker.kill_reason = (status, error)
                if worker.process.returncode is None:
                    worker.process.kill()
                return True
        return False

    @property
    def busy(self) -> int:
        return sum(len(worker.inflight) for worker in self.workers)

    async def stop(self) -> None:
        self.stopping = True
        self._take_deferred()
        for worker in list(self.workers):
            if worker.process.returncode is None:
                worker.process.kill()
        for worker in list(self.workers):
            try:
                await asyncio.wait_for(worker.process.wait(), timeout=5)
            except TimeoutError:  # pragma: no cover - kill is not refused
                log.warning("worker %s did not exit", worker.number)

    async def _spawn(self) -> None:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "nbsched.worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        self._spawned += 1
        worker = _Worker(self._spawned, process)
        self.workers.append(worker)
        task = asyncio.get_running_loop().create_task(self._read(worker))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        log.debug("worker %s started (pid %s)", worker.number, process.pid)
        self._dispatch()

    def _dispatch(self) -> None:
        self._dispatch_pending = False
        now = time.time()
        batches: dict[_Worker, list[dict]] = {}
        while self.queue:
            message = self.queue[0]
            ready = [worker for worker in self.workers if worker.can_take(message)]
            if not ready:
                break
            self.queue.popleft()
            # A run for now avoids workers that hold runs for later: it would wait behind them.
            due_now = not message.get("not_before") or message["not_before"] <= now
            worker = min(ready, key=lambda w: (due_now and w.held_until > now, len(w.inflight)))
            if not due_now:
                worker.held_until = max(worker.held_until, message["not_before"])
            worker.inflight.append(message)
            batches.setdefault(worker, []).append(message)
        for worker, messages in batches.items():
            self._send(worker, messages)

    def _send(self, worker: _Worker, messages: list[dict]) -> None:
        frames = []
        if worker.registry_seen != self.registry_version:
            new = {v: s for v, s in self.sources.items() if v not in worker.sources_sent}
            frames.append(encode_frame({"op": "sources", "sources": new, "services": self.services}))
            worker.sources_sent.update(new)
            worker.registry_seen = self.registry_version
        if worker.connections_seen != self.connections_version:
            frames.append(encode_frame({"op": "connections", "connections": self.connections}))
            worker.connections_seen = self.connections_version
        frames.append(encode_frame({"op": "runs", "runs": messages}))
        worker.process.stdin.write(b"".join(frames))
        for message in messages:
            self.on_start(message["run_id"])

    async def _read(self, worker: _Worker) -> None:
        reader = worker.process.stdout
        while True:
            try:
                header = await reader.readexactly(_HEADER.size)
                (size,) = _HEADER.unpack(header)
                result = pickle.loads(await reader.readexactly(size))
            except (asyncio.IncompleteReadError, ConnectionError, EOFError):
                break
            if "ready" in result:
                worker.ready = True
                self._dispatch()
                continue
            if "bounced" in result:
                self._bounced(worker, set(result["bounced"]))
                continue
            if "cancelled" in result:
                run_id = result["cancelled"]
                worker.inflight = deque(m for m in worker.inflight if m["run_id"] != run_id)
                self.on_result(_unstarted(run_id, worker.cancelling.pop(run_id, "Cancelled before it started.")))
                continue
            self._finished(worker, result.get("results") or [result])
            self._dispatch()
        await self._buried(worker)

    def _finished(self, worker: _Worker, results: list[dict]) -> None:
        """Results of a worker's runs. While another worker still works through a queue of runs that
        are due (a burst), they wait for its results, up to ``DEFER_RESULTS`` seconds: the runner taking
        them in now would take a core from that worker's runs."""
        for one in results:
            if worker.inflight and worker.inflight[0]["run_id"] == one["run_id"]:
                worker.inflight.popleft()
            worker.slow = False
        self._deferred.extend(results)
        now = time.time()
        if not any(
            other is not worker and len(other.inflight) > 1 and other.inflight[1].get("not_before", 0) <= now
            for other in self.workers
        ):
            self._take_deferred()
        elif self._defer_timer is None:
            self._defer_timer = asyncio.get_running_loop().call_later(DEFER_RESULTS, self._take_deferred)

    def _take_deferred(self) -> None:
        if self._defer_timer is not None:
            self._defer_timer.cancel()
            self._defer_timer = None
        deferred, self._deferred = self._deferred, []
        for one in deferred:
            self.on_result(one)

    def _bounced(self, worker: _Worker, run_ids: set[int]) -> None:
        """The worker's run in hand is slow: the runs waiting behind it go to other workers."""
        returned = [message for message in worker.inflight if message["run_id"] in run_ids]
        worker.inflight = deque(message for message in worker.inflight if message["run_id"] not in run_ids)
        worker.slow = True
        self.queue.extendleft(reversed(returned))
        self._dispatch()

    async def _buried(self, worker: _Worker) -> None:
        code = await worker.process.wait()
        self._take_deferred()  # what it reported before it died comes first
        if worker in self.workers:
            self.workers.remove(worker)
        # Runs queued behind the one that was running never started: hand them to other workers.
        for message in reversed(list(worker.inflight)[1:]):
            self.queue.appendleft(message)
        if worker.current is not None:
            status, error = worker.kill_reason or (
                "error",
                f"The worker process running this service died ({_exit_reason(code)}).",
            )
            now = time.time()
            self.on_result(
                {
                    "run_id": worker.current["run_id"],
                    "status": status,
                    "error": error,
                    "traceback": None,
                    "output": None,
                    "logs": "",
                    "started_at": None,
                    "finished_at": now,
                }
            )
        if not self.stopping:
            log.info("worker %s exited (%s); starting a new one", worker.number, _exit_reason(code))
            await self._spawn()


def _unstarted(run_id: int, error: str) -> dict:
    """The result of a run taken back before it started."""
    return {
        "run_id": run_id,
        "status": "skipped",
        "error": error,
        "traceback": None,
        "output": None,
        "logs": "",
        "started_at": None,
        "finished_at": time.time(),
    }


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
