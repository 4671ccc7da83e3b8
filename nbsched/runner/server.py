"""The runner process: owns the schedule, serves the socket, feeds the worker pool.

Run it with ``nbsched runner start`` (detached) or ``python -m nbsched.runner`` (foreground).
One runner per ``NBSCHED_HOME``: the pid file is locked for the runner's lifetime.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import hmac
import logging
import os
import resource
import signal
import socket
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from .. import config, protocol
from ..connections import masked_url
from ..errors import AuthError, NbschedError, ProtocolError, RunnerError
from ..model.timeparse import utcnow
from ..store import open_store
from .engine import Engine, Hooks
from .home import AlreadyRunning, PidLock, private_store_files, read_or_create_token
from .logfilter import RateLimit
from .operations import Operations, checked_args
from .pacing import Pacing
from .pool import WorkerPool
from .shared import Sharing

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
        self._client_tasks: set[asyncio.Task] = set()
        self.max_clients = client_cap(self.settings.workers)
        self._clients: set[asyncio.StreamWriter] = set()
        self._idle: dict[asyncio.StreamWriter, None] = {}  # waiting for a request, the longest idle first
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
            ),
            runner_id=self.runner_id,
            default_tz=self.settings.timezone,
        )
        self.pool.on_start = self.engine.results.on_start
        self.pacing = Pacing(self.engine)
        self.engine.claim_batch = timedelta(seconds=config.CLAIM_BATCH_SECONDS)
        self.engine.results.finished_listeners.append(self._run_finished)
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
                self._serve_client, path=str(path), limit=config.MAX_REQUEST_BYTES, backlog=config.ACCEPT_BACKLOG
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
        for task in [*self._tasks, *self._client_tasks]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._client_tasks, return_exceptions=True)
        await self.pool.stop()
        await self._write_last_results()
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

    def _on_result(self, result: dict) -> None:
        self.engine.results.on_result(result)

    def _run_finished(self, run_id: int) -> None:
        for future in self.waiters.pop(run_id, []):
            if not future.done():
                future.set_result(None)

    # -- socket -----------------------------------------------------------------
    async def _serve_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._client_tasks.add(task)
        task.add_done_callback(self._client_tasks.discard)
        try:
            if not self._admit(writer):
                return
            while True:
                self._idle[writer] = None
                try:
                    line = await reader.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    self._idle.pop(writer, None)
                    limit = config.MAX_REQUEST_BYTES
                    error = ProtocolError(
                        f"Request is larger than {limit} bytes; send less (for example, a smaller extra)."
                    )
                    writer.write(protocol.error_reply(None, error))
                    await writer.drain()
                    await _discard_rest_of_line(reader)
                    continue
                self._idle.pop(writer, None)
                if not line:
                    return
                if not line.strip():
                    continue
                for part in await self._answer(line):
                    await _send(writer, part)
                await writer.drain()
                self.pacing.answered()
        except (ConnectionError, BrokenPipeError):
            pass
        except asyncio.CancelledError:  # the runner is stopping; end quietly (asyncio logs a cancelled handler)
            pass
        finally:
            self._clients.discard(writer)
            self._idle.pop(writer, None)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _admit(self, writer: asyncio.StreamWriter) -> bool:
        """Count a new connection. At ``max_clients``, close the connection idle longest to make room (its
        client reconnects when it next asks); refuse this one when every other is busy with a request."""
        self._clients.add(writer)
        if len(self._clients) <= self.max_clients:
            return True
        if self._idle:
            oldest = next(iter(self._idle))
            del self._idle[oldest]
            self._clients.discard(oldest)
            oldest.transport.abort()
            log.warning("%d client connections open, the most kept; closing the one idle longest", self.max_clients)
            return True
        self._clients.discard(writer)
        log.warning("%d client connections open, the most kept, all busy; refusing a new one", self.max_clients)
        error = RunnerError(
            f"The runner has {self.max_clients} client connections open, the most it keeps, all busy; "
            "close clients you no longer use and try again."
        )
        writer.write(protocol.error_reply(None, error))
        return False

    async def _answer(self, line: bytes) -> list[bytes | memoryview]:
        request_id = None
        try:
            message = protocol.parse_request(line)
            request_id = message.get("id")
            token = message.get("token")
            if (
                not isinstance(token, str)
                or not token
                or not self.token
                or not hmac.compare_digest(token.encode("utf-8", "surrogatepass"), self.token.encode())
            ):
                raise AuthError("Wrong or missing token: read it from the 'token' file in NBSCHED_HOME.")
            op = message["op"]
            if op not in protocol.OPERATIONS:
                raise ProtocolError(f"Unknown operation {op!r}; known: {', '.join(sorted(protocol.OPERATIONS))}.")
            handler = getattr(self.operations, f"op_{op}", None)
            if handler is None:
                raise ProtocolError(f"Operation {op!r} is not available on this runner yet.")
            result = await handler(**checked_args(message.get("args") or {}, handler))
            if isinstance(result, protocol.Binary):  # header line, then the bytes as they are (no copy)
                return [result.header(request_id), memoryview(result.data)]
            return [protocol.reply(request_id, result)]
        except NbschedError as exc:
            return [protocol.error_reply(request_id, exc)]
        except Exception as exc:  # a bug in one request must not take the runner down
            log.exception("request failed")
            return [
                protocol.error_reply(request_id, NbschedError(f"Internal error in the runner: {exc}. See runner.log."))
            ]


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


def client_cap(workers: int) -> int:
    """How many client connections to keep open: what the file limit leaves after the runner's own files,
    so that accepting a client, starting a worker or reading history never runs out of descriptors."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return config.MAX_CLIENTS
    return max(8, min(config.MAX_CLIENTS, soft - config.FD_RESERVE - config.FD_PER_WORKER * workers))


#: A reply part larger than this (a long history as Arrow) goes out in slices of this size, each sent
#: before the next: no copy of the whole into the transport's buffer.
SEND_SLICE = 1 << 22


async def _send(writer: asyncio.StreamWriter, part: bytes | memoryview) -> None:
    if len(part) <= SEND_SLICE:
        writer.write(part)
        return
    sock = writer.get_extra_info("socket")
    with contextlib.suppress(OSError, AttributeError):  # a bigger kernel buffer: fewer wake-ups per slice
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_SLICE)
    view = memoryview(part)
    for start in range(0, len(view), SEND_SLICE):
        writer.write(view[start : start + SEND_SLICE])
        await writer.drain()


async def _discard_rest_of_line(reader: asyncio.StreamReader) -> None:
    """Skip what is left of an oversized line, so the connection can go on with the next request."""
    while True:
        try:
            await reader.readline()
            return
        except (ValueError, asyncio.LimitOverrunError):
            continue


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


class _NoPandas:
    """An import finder that keeps pandas out of the runner process.

    The runner sends history as Arrow and never builds a DataFrame (the client does), but pyarrow
    imports pandas, when it is installed, on the first array it builds from Python values: ~47 MB
    for the rest of the runner's life. Told that pandas is missing, pyarrow does without it.
    """

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name == "pandas":
            raise ModuleNotFoundError("pandas is not loaded in the nbsched runner", name=name)
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nbsched.runner", description="Run the nbsched runner.")
    parser.add_argument(
        "--detached", action="store_true", help="started by 'nbsched runner start' (logs to stderr only)"
    )
    options = parser.parse_args(argv)
    sys.meta_path.insert(0, _NoPandas)
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
