"""The runner process: owns the schedule, serves the socket, feeds the worker pool.

Run it with ``nbsched runner start`` (detached) or ``python -m nbsched.runner`` (foreground).
One runner per ``NBSCHED_HOME``: the pid file is locked for the runner's lifetime.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import gc
import hmac
import logging
import os
import re
import resource
import secrets
import signal
import socket
import sys
import time
from datetime import datetime
from pathlib import Path

from .. import config, protocol
from ..connections import masked_url
from ..errors import AuthError, InvalidInput, NbschedError, ProtocolError, RunnerError, WaitTimeout
from ..model.runs import RUN_FIELDS
from ..model.timeparse import utcnow
from ..store import open_store
from .engine import Engine, Hooks
from .logfilter import RateLimit
from .pool import WorkerPool

log = logging.getLogger("nbsched.runner")
#: History as JSON rows (any client) or as an Arrow IPC stream (for a DataFrame of many runs).
HISTORY_FORMATS = ("json", "arrow")
CHANNELS_FROM_CLIENTS = ("manual", "cli", "invoke")
#: Seconds a stopping runner keeps trying to write its last results to a store that fails.
STORE_WRITE_AT_EXIT_SECONDS = 5.0


#: What a token the runner made looks like (``secrets.token_urlsafe(32)``: 43 such characters).
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32,}")


def read_or_create_token(path: Path) -> str:
    """The socket token, from ``path``; made anew (mode 0600) when the file is missing, empty or holds no
    token (what a disk that filled up while it was first written leaves), so no runner serves without one."""
    try:
        token = path.read_bytes().decode("ascii", "replace").strip()
    except FileNotFoundError:
        token = ""
    except OSError as exc:
        raise RunnerError(
            f"Cannot read the token file {path} ({exc.strerror or exc}); remove it, and the runner makes a new one "
            "when it starts."
        ) from None
    if _TOKEN.fullmatch(token):
        return token
    if token:
        log.warning("the token file %s held no token; making a new one", path)
    return _write_token(path)


def _write_token(path: Path) -> str:
    """A new token, written aside and renamed into place: the file holds a whole token or none."""
    token = secrets.token_urlsafe(32)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(token)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise RunnerError(
            f"Cannot write the token file {path} ({exc.strerror or exc}); free some disk space in "
            f"{path.parent} and start the runner again."
        ) from None
    return token


class AlreadyRunning(RunnerError):
    """Another runner holds the home's pid lock."""


class PidLock:
    """An exclusive lock on ``runner.pid``, held while the runner lives.

    A runner that holds it but no longer accepts connections on ``socket_path`` is stopping (or still
    starting): wait up to ``wait`` seconds for it to let go, so that a start right after a stop starts.
    """

    def __init__(self, path: Path, socket_path: Path | None = None, wait: float = 0.0):
        self.path = path
        deadline = time.monotonic() + wait
        while (handle := self._lock()) is None:
            serving = socket_path is None or _accepts(socket_path)
            if serving or time.monotonic() > deadline:
                still = "" if serving else f", still stopping after {wait:g}s"
                raise AlreadyRunning(f"A runner is already running for {path.parent} (pid {self.holder}){still}.")
            time.sleep(0.1)
        self.handle = handle
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(str(os.getpid()))
        self.handle.flush()
        os.chmod(path, 0o600)

    def _lock(self):
        """The pid file, open and locked; None while another process holds it (``self.holder``: its pid)."""
        while True:
            handle = open(self.path, "a+")  # noqa: SIM115 - held open for the runner's lifetime
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                self.holder = handle.read().strip() or "unknown"
                handle.close()
                return None
            try:  # the runner before may have removed the file as it let go: lock the file at the path now
                if os.stat(self.path).st_ino == os.fstat(handle.fileno()).st_ino:
                    return handle
            except FileNotFoundError:
                pass
            handle.close()

    def release(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()
        self.handle.close()


def _accepts(path: Path) -> bool:
    """Whether a runner accepts connections on the socket at ``path``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(2)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


class Runner:
    """The long-lived process that runs jobs on time."""

    def __init__(self, settings: config.Settings | None = None, clock=utcnow):
        self.settings = settings or config.settings()
        self.clock = clock
        self.runner_id = f"{socket.gethostname()}:{os.getpid()}"
        self.started_at: datetime | None = None
        self.stopping = False
        self._wake: asyncio.Event | None = None
        self._stopped: asyncio.Event | None = None
        self._waiters: dict[int, list[asyncio.Future]] = {}
        self._client_tasks: set[asyncio.Task] = set()
        self.max_clients = client_cap(self.settings.workers)
        self._clients: set[asyncio.StreamWriter] = set()
        self._idle: dict[asyncio.StreamWriter, None] = {}  # waiting for a request, the longest idle first

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
        self._wake = asyncio.Event()
        self._stopped = asyncio.Event()
        _private_store_files(self.settings.store_url)
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
                wake=self._wake.set,
            ),
            runner_id=self.runner_id,
            default_tz=self.settings.timezone,
        )
        self.pool.on_start = self.engine.on_start
        self.engine.finished_listeners.append(self._run_finished)
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
                self._serve_client, path=str(path), limit=config.MAX_REQUEST_BYTES
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
            self._wake.set()
            self._stopped.set()

    async def _shutdown(self) -> None:
        self.server.close()
        deadline = asyncio.get_running_loop().time() + config.SHUTDOWN_GRACE_SECONDS
        while self.engine.active and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        for task in [*self._tasks, *self._client_tasks]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._client_tasks, return_exceptions=True)
        await self.pool.stop()
        await self._write_last_results()
        try:
            left = self.store.interrupt_running(self.clock(), runner=self.runner_id)
        except Exception as exc:  # the next runner marks them, at its start
            log.error("marking the runs still running as interrupted failed: %s", exc)
            left = 0
        if left:
            log.warning("%d run(s) still running at shutdown marked interrupted", left)
        self.store.close()
        with contextlib.suppress(FileNotFoundError):
            self.settings.socket_path.unlink()
        log.info("runner %s stopped", self.runner_id)

    async def _write_last_results(self) -> None:
        """Write the results still buffered; a store that fails gets ``STORE_WRITE_AT_EXIT_SECONDS`` to work again."""
        deadline = asyncio.get_running_loop().time() + STORE_WRITE_AT_EXIT_SECONDS
        while not self.engine.flush() and asyncio.get_running_loop().time() < deadline:
            if self.engine.store_trouble is not None and self.engine.store_trouble.gone:
                break
            await asyncio.sleep(0.2)
        if self.engine.pending or self.engine.retries_to_store:
            unwritten = [f"run {u['run_id']}: {u.get('status')}" for u in self.engine.pending]
            unwritten += [f"retry of run {r.run_id} due {r.due_at.isoformat()}" for r in self.engine.retries_to_store]
            log.error("the store failed; not written before exit: %s", ", ".join(unwritten))

    # -- loops ------------------------------------------------------------------
    async def _schedule_loop(self) -> None:
        while not self.stopping:
            self._wake.clear()
            try:
                self.engine.tick(self.clock())
            except Exception:  # a store error must not stop the schedule for good
                log.exception("tick failed; retrying in 1 s")
                await asyncio.sleep(1)
                continue
            due = self.engine.next_due()
            timeout = 3600.0 if due is None else max(0.0, (due - self.clock()).total_seconds())
            if timeout > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=timeout)
            else:
                # Behind schedule: still let results, the socket and the flush loop run between ticks,
                # or a runner with more due fires than it can claim starves everything else.
                await asyncio.sleep(0)

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(0.05)
            try:
                self.engine.flush(self.clock())  # a store error keeps the results for the next try
            except Exception:
                log.exception("writing run history failed; will retry")

    async def _cache_loop(self) -> None:
        """Keep the store's read caches up to date, so a long history reads fast the first time it is asked for."""

        def refresh() -> None:
            reader = self.store.reader()
            try:
                reader.refresh_caches()
            finally:
                if reader is not self.store:
                    reader.close()

        await asyncio.sleep(config.CACHE_FIRST_REFRESH_SECONDS)
        while True:
            try:
                await asyncio.get_running_loop().run_in_executor(None, refresh)
            except Exception:
                log.exception("refreshing the store's read caches failed; will retry")
            await asyncio.sleep(config.CACHE_REFRESH_SECONDS)

    def _on_result(self, result: dict) -> None:
        self.engine.on_result(result)

    def _run_finished(self, run_id: int) -> None:
        for future in self._waiters.pop(run_id, []):
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
            handler = getattr(self, f"op_{op}", None)
            if handler is None:
                raise ProtocolError(f"Operation {op!r} is not available on this runner yet.")
            result = await handler(**_checked_args(message.get("args") or {}, handler))
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

    # -- operations (each: arguments in, JSON-able result out) --------------------
    async def op_ping(self) -> dict:
        return {
            "runner": self.runner_id,
            "pid": os.getpid(),
            "version": protocol.VERSION,
            "started_at": self.started_at,
            "store": masked_url(self.settings.store_url),
            "home": str(self.settings.home),
            "timezone": self.settings.timezone,
            "jobs": len(self.engine.jobs),
            "running": len(self.engine.active),
            "workers": len(self.pool.workers),
            "store_error": self.engine.store_status(),  # None, or what fails: error, since, gone
        }

    async def op_deploy(self, units: list) -> dict:
        if not isinstance(units, list):
            raise InvalidInput("deploy needs 'units': a list of {'source': ..., 'origin': ...}.")
        return self.engine.catalog.deploy(units, self.clock())

    async def op_services(self) -> list:
        return self.engine.catalog.service_records()

    async def op_schedule(self, **job) -> dict:
        record = self.engine.control.add_job(job, self.clock())
        self._wake.set()
        return record

    async def op_update(self, name: str, changes: dict) -> dict:
        if not isinstance(changes, dict):
            raise InvalidInput("update needs 'changes': an object of job options, e.g. {'every': '10m'}.")
        record = self.engine.control.update_job(name, changes, self.clock())
        self._wake.set()
        return record

    async def op_jobs(self) -> list:
        return self.engine.control.job_records()

    async def op_job(self, name: str) -> dict:
        return self.engine.control.job_record(name, detail=True)

    async def op_execute(self, name: str, channel: str = "manual") -> dict:
        return {"run_id": self.engine.ondemand.execute(name, _channel(channel), self.clock())}

    async def op_invoke(self, service: str, extra=None, channel: str = "invoke") -> dict:
        return {"run_id": self.engine.ondemand.invoke(service, extra, _channel(channel), self.clock())}

    async def op_pause(self, name: str, note: str = "") -> dict:
        return self.engine.control.pause(name, note, self.clock())

    async def op_resume(self, name: str) -> dict:
        record = self.engine.control.resume(name, self.clock())
        self._wake.set()
        return record

    async def op_delete(self, name: str) -> dict:
        return self.engine.control.delete(name)

    async def op_backfill(self, name: str, start, end) -> dict:
        return self.engine.ondemand.backfill(name, start, end, self.clock())

    async def op_history(self, job=None, service=None, status=None, since=None, limit=None, format="json"):
        if format not in HISTORY_FORMATS:
            raise InvalidInput(f"Invalid history format {format!r}: use one of {', '.join(HISTORY_FORMATS)}.")
        query = self.engine.reader.history_query(job, service, status, since, limit, now=self.clock())

        def read_and_encode() -> protocol.Encoded | protocol.Binary:
            # On its own connection, in a thread: a long history does not hold up firing.
            reader = self.store.reader()
            try:
                if format == "arrow":
                    query.pop("times_as_text", None)
                    return protocol.Binary(reader.runs_table(**query))
                rows = reader.runs(**query)
            finally:
                if reader is not self.store:
                    reader.close()
            return protocol.encode_result({"columns": list(RUN_FIELDS), "rows": rows})

        return await asyncio.get_running_loop().run_in_executor(None, read_and_encode)

    async def op_run(self, run_id) -> dict:
        return self.engine.reader.run(run_id)

    async def op_wait(self, run_id, timeout: float = 30.0) -> dict:
        self.engine.reader.run(run_id)  # raises RunNotFound early
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 <= timeout < 10**9:
            raise InvalidInput(f"Invalid timeout {timeout!r}: use seconds to wait, 0 or more, e.g. 30.")
        run_id = int(run_id)
        if not self.engine.is_finished(run_id):
            future = asyncio.get_running_loop().create_future()
            self._waiters.setdefault(run_id, []).append(future)
            try:
                await asyncio.wait_for(future, timeout=float(timeout))
            except TimeoutError:
                raise WaitTimeout(
                    f"Run {run_id} did not finish within {float(timeout):g}s; it is still running."
                ) from None
        return self.engine.reader.run(run_id)

    async def op_preview(self, **args) -> dict:
        return self.engine.reader.preview(self.clock(), **args)

    async def op_connection_save(self, name: str, kind: str, definition: dict) -> dict:
        if not isinstance(definition, dict):
            raise InvalidInput("connection_save needs 'definition': an object of settings, e.g. {'address': ...}.")
        return self.engine.catalog.save_connection(name, kind, definition, self.clock())

    async def op_connections(self) -> list:
        return self.engine.catalog.connection_records()

    async def op_connection_delete(self, name: str) -> dict:
        return self.engine.catalog.delete_connection(name)

    async def op_connection_test(self, name: str) -> dict:
        from ..connections import check

        record = self.engine.catalog.connection(name)
        return await asyncio.to_thread(check, name, record["kind"], record["definition"])

    async def op_shutdown(self) -> dict:
        asyncio.get_running_loop().call_soon(self.request_stop)
        return {"stopping": self.runner_id}


def _private_store_files(url: str) -> None:
    """A SQLite store's file, and its WAL and shared-memory files, readable by their owner only (SQLite
    gives the WAL and shared-memory files it makes the mode of the store's file)."""
    if not url.startswith("sqlite:///"):
        return
    path = Path(url.removeprefix("sqlite:///"))
    with contextlib.suppress(FileNotFoundError):  # no such folder: SQLite says so when it opens the store
        config.private_file(path)
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(f"{path}{suffix}", 0o600)


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


#: Client connections the runner keeps open at most ...
MAX_CLIENTS = 4096
#: ... and file descriptors it keeps free for the rest (store, history threads, log, per worker: pipes).
FD_RESERVE = 128
FD_PER_WORKER = 4


def client_cap(workers: int) -> int:
    """How many client connections to keep open: what the file limit leaves after the runner's own files,
    so that accepting a client, starting a worker or reading history never runs out of descriptors."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_CLIENTS
    return max(8, min(MAX_CLIENTS, soft - FD_RESERVE - FD_PER_WORKER * workers))


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


def _channel(value: str) -> str:
    if value not in CHANNELS_FROM_CLIENTS:
        raise InvalidInput(f"Invalid channel {value!r}: use one of {', '.join(CHANNELS_FROM_CLIENTS)}.")
    return value


def _checked_args(args: dict, handler) -> dict:
    import inspect

    parameters = inspect.signature(handler).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    unknown = [key for key in args if key not in parameters]
    if unknown and not takes_any:
        raise InvalidInput(
            f"Unknown argument(s) {', '.join(map(repr, unknown))}; expected {', '.join(parameters) or 'none'}."
        )
    missing = [
        name
        for name, p in parameters.items()
        if p.default is inspect.Parameter.empty and p.kind is not inspect.Parameter.VAR_KEYWORD and name not in args
    ]
    if missing:
        raise InvalidInput(f"Missing argument(s): {', '.join(missing)}.")
    return args


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
