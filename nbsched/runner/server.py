"""The runner process: owns the schedule, serves the socket, feeds the worker pool.

Run it with ``nbsched runner start`` (detached) or ``python -m nbsched.runner`` (foreground).
One runner per ``NBSCHED_HOME``: the pid file is locked for the runner's lifetime.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from .. import config
from ..connections import masked_url
from ..errors import NbschedError
from ..model.timeparse import utcnow
from ..nopandas import NoPandas
from ..store import open_store
from .engine import Engine, Hooks
from .home import AlreadyRunning, PidLock, private_store_files, read_or_create_token
from .livelogs import LiveLogs
from .logfilter import RateLimit
from .notify import Notifier
from .operations import Operations
from .pacing import Pacing
from .pool import WorkerPool
from .retention import Retention, default_keep
from .shared import Sharing
from .socket_clients import Clients, client_cap

log = logging.getLogger("nbsched.runner")
#: Seconds a stopping runner keeps trying to write its last results to a store that fails.
STORE_WRITE_AT_EXIT_SECONDS = 5.0


class Runner:
    """The long-lived process that runs jobs on time."""

    def __init__(self, settings: config.Settings | None = None, clock=utcnow):
        self.settings = settings or config.settings()
        self.clock = clock
        self.runner_id = f"{socket.gethostname()}:{os.getpid()}"
        self.started_at: datetime | None = None
        self.stopping = False
        self.wake: asyncio.Event | None = None
        self._stopped: asyncio.Event | None = None
        self.waiters: dict[int, list[asyncio.Future]] = {}
        self.clients = Clients(self, client_cap(self.settings.workers))
        self.operations = Operations(self)

    # -- lifecycle --------------------------------------------------------------
    def serve_forever(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        home = config.ensure_home(self.settings.home)
        lock = PidLock(self.settings.pid_path, self.settings.socket_path, wait=config.STOPPING_RUNNER_WAIT_SECONDS)
        try:
            self.token = read_or_create_token(self.settings.token_path)
            await self._start(home)
            await self._stopped.wait()
            await self._shutdown()
        finally:
            lock.release()

    async def _start(self, home: Path) -> None:
        loop = asyncio.get_running_loop()
        self.wake = asyncio.Event()
        self._stopped = asyncio.Event()
        private_store_files(self.settings.store_url)
        self.store = open_store(self.settings.store_url)
        self.pool = WorkerPool(self.settings.workers, on_result=self._on_result)
        self.engine = Engine(
            store=self.store,
            hooks=Hooks(
                dispatch=self.pool.submit,
                kill=self.pool.kill,
                cancel=self.pool.cancel,
                call_later=loop.call_later,
                cancel_timer=lambda handle: handle.cancel(),
                registry_changed=self.pool.set_registry,
                connections_changed=self.pool.set_connections,
                clock=self.clock,
                wake=self.wake.set,
                warm=self.pool.spares.warm,
                keep_spares=self.pool.spares.keep,
            ),
            runner_id=self.runner_id,
            default_tz=self.settings.timezone,
        )
        self.pool.on_start = self.engine.results.on_start
        self.live_logs = LiveLogs(lambda run_id: run_id in self.engine.inflight.active)
        self.pool.on_logs = self.live_logs.add
        self.pacing = Pacing(self.engine)
        self.engine.claim_batch = timedelta(seconds=config.CLAIM_BATCH_SECONDS)
        self.engine.results.finished_listeners.append(self._run_finished)
        self.retention = Retention(self.settings.store_url, self.store, home, default_keep())
        self.notifier = Notifier(self.engine, loop.call_soon_threadsafe, home)
        self.engine.results.ended_listeners.append(self.notifier.run_ended)
        self.engine.results.claimed_listeners.append(self.notifier.run_claimed)
        shared = self.store.shared
        self.sharing = Sharing(self.engine, self.settings.store_url, loop, self.pool.set_lease) if shared else None
        if self.sharing is not None:
            self.sharing.start()
            self.engine.hooks.changed = self.sharing.announce
        await self.pool.start()
        self.started_at = self.clock()
        self.engine.load(self.started_at)
        _tune_gc()
        path = self.settings.socket_path
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # stale: we hold the pid lock, so no runner owns it
        old_umask = os.umask(0o177)
        try:
            self.server = await asyncio.start_unix_server(
                self.clients.serve, path=str(path), limit=config.MAX_REQUEST_BYTES, backlog=config.ACCEPT_BACKLOG
            )
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o600)
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.request_stop)
        self._tasks = [
            loop.create_task(self._schedule_loop()),
            loop.create_task(self._flush_loop()),
            loop.create_task(self._cache_loop()),
            loop.create_task(self._retention_loop()),
        ]
        if self.sharing is not None:
            self._tasks += [
                loop.create_task(self.sharing.watch()),
                loop.create_task(self.sharing.reload_now_and_then()),
            ]

        log.info(
            "runner %s started: home %s, store %s, %d jobs",
            self.runner_id,
            home,
            masked_url(self.settings.store_url),
            len(self.engine.jobs),
        )

    def request_stop(self) -> None:
        if not self.stopping:
            log.info("stopping: no new fires; waiting for running runs")
            self.stopping = True
            self.engine.stop()  # no retry starts either: a stored one waits for the next runner
            self.wake.set()
            self._stopped.set()

    async def _shutdown(self) -> None:
        self.server.close()
        deadline = asyncio.get_running_loop().time() + config.SHUTDOWN_GRACE_SECONDS
        while self.engine.inflight.active and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        for task in [*self._tasks, *self.clients.tasks]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self.clients.tasks, return_exceptions=True)
        self.clients.stream_threads.shutdown(wait=False, cancel_futures=True)  # each ends within 0.5 s, stopping
        await self.pool.stop()
        await self.notifier.drain(asyncio.sleep)
        await self._write_last_results()
        await asyncio.get_running_loop().run_in_executor(None, self.retention.close)
        try:  # on a shared store, the runner that takes over its lease does it (and starts its claimed runs)
            left = 0 if self.sharing else self.store.interrupt_running(self.clock(), runner=self.engine.runner_id)
        except Exception as exc:  # the next runner marks them, at its start
            log.error("marking the runs still running as interrupted failed: %s", exc)
            left = 0
        if left:
            log.warning("%d run(s) still running at shutdown marked interrupted", left)
        if self.sharing is not None:
            self.sharing.stop()
        self.store.close()
        with contextlib.suppress(FileNotFoundError):
            self.settings.socket_path.unlink()
        log.info("runner %s stopped", self.runner_id)

    async def _write_last_results(self) -> None:
        """Write the results still buffered; a store that fails gets ``STORE_WRITE_AT_EXIT_SECONDS`` to work again."""
        deadline = asyncio.get_running_loop().time() + STORE_WRITE_AT_EXIT_SECONDS
        while not self.engine.results.flush() and asyncio.get_running_loop().time() < deadline:
            if self.engine.health.trouble is not None and self.engine.health.trouble.gone:
                break
            await asyncio.sleep(0.2)
        if self.engine.results.pending or self.engine.results.retries_to_store:
            unwritten = [f"run {u['run_id']}: {u.get('status')}" for u in self.engine.results.pending]
            unwritten += [
                f"retry of run {r.run_id} due {r.due_at.isoformat()}" for r in self.engine.results.retries_to_store
            ]
            log.error("the store failed; not written before exit: %s", ", ".join(unwritten))

    # -- loops ------------------------------------------------------------------
    async def _schedule_loop(self) -> None:
        while not self.stopping:
            self.wake.clear()
            began = time.perf_counter()
            try:
                created = self.engine.tick(self.clock())
            except Exception:  # a store error must not stop the schedule for good
                log.exception("tick failed; retrying in 1 s")
                await asyncio.sleep(1)
                continue
            tick_seconds = time.perf_counter() - began
            self.pacing.ticked(created, tick_seconds)
            due = self.engine.next_due()
            timeout = 3600.0 if due is None else max(0.0, (due - self.clock()).total_seconds())
            if timeout > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout=timeout)
            else:
                # Behind schedule: let results, the socket and the flush loop run between ticks, or a runner
                # with more due fires than it can claim starves everything else.
                await self.pacing.between_ticks(tick_seconds)

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(0.05)
            try:
                self.engine.results.flush(self.clock())  # a store error keeps the results for the next try
            except Exception:
                log.exception("writing run history failed; will retry")

    async def _cache_loop(self) -> None:
        """Keep the store's read caches up to date, so a long history reads fast the first time it is asked for."""

        def refresh() -> None:
            with self.store.history() as history:
                history.refresh()

        await asyncio.sleep(config.CACHE_FIRST_REFRESH_SECONDS)
        while True:
            try:
                await asyncio.get_running_loop().run_in_executor(None, refresh)
            except Exception:
                log.exception("refreshing the store's read caches failed; will retry")
            await asyncio.sleep(config.CACHE_REFRESH_SECONDS)

    async def _retention_loop(self) -> None:
        """Apply each job's ``history_keep`` now and then, in a thread (``runner.retention``)."""
        while True:
            await asyncio.sleep(config.retention_seconds())
            everyone = self.retention.default is not None  # else only the jobs with their own history_keep
            jobs = [
                (job.spec.name, job.uid, job.spec.history_keep)
                for job in self.engine.jobs.values()
                if everyone or job.spec.history_keep is not None
            ]
            try:
                await asyncio.get_running_loop().run_in_executor(None, self.retention.apply, jobs, self.clock())
            except Exception:
                log.exception("deleting old runs failed; will retry")

    def _on_result(self, result: dict) -> None:
        self.engine.results.on_result(result)

    def _run_finished(self, run_id: int) -> None:
        self.live_logs.end(run_id)
        for future in self.waiters.pop(run_id, []):
            if not future.done():
                future.set_result(None)


def _tune_gc() -> None:
    """Keep the cyclic garbage collector off the firing path.

    What the runner loaded (modules, jobs) lives as long as it does: frozen, full collections
    need not walk it again. And young objects are collected in larger, rarer passes, so a full
    pass, which takes tens of milliseconds with 10,000 jobs, comes seldom (measured: the
    collector's share of a fire fell from ~9 to ~2 µs): about once a minute at 10,000 fires a
    second, less often under less load, so cycles that outlive the younger passes still go.
    """
    gc.freeze()
    gc.set_threshold(*config.GC_THRESHOLDS)


def configure_logging(foreground: bool, settings: config.Settings) -> None:
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if foreground:
        config.ensure_home(settings.home)
        handlers.append(logging.FileHandler(settings.log_path))
    rate_limit = RateLimit()  # a condition that repeats is logged a few times a minute, then counted
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(rate_limit)
        root.addHandler(handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nbsched.runner", description="Run the nbsched runner.")
    parser.add_argument(
        "--detached", action="store_true", help="started by 'nbsched runner start' (logs to stderr only)"
    )
    options = parser.parse_args(argv)
    sys.meta_path.insert(0, NoPandas)  # the runner sends Arrow; pandas would cost it ~47 MB
    settings = config.settings()
    try:
        configure_logging(foreground=not options.detached, settings=settings)
        Runner(settings).serve_forever()
    except AlreadyRunning as exc:
        log.error("%s", exc)
        return 3
    except NbschedError as exc:  # a home, token or store it cannot use: the message says what to do
        log.error("%s", exc)
        return 4
    return 0
