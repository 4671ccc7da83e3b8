"""The worker process: runs services for the runner, one run at a time, isolated from it.

Started as ``python -m nbsched.worker``. It reads frames (4-byte length + pickle) on stdin,
each with one message or a batch of runs, and sends the results back on the original stdout,
several runs' results to a frame when runs come due together; ``print`` output and log
records of a run are captured into the run's ``logs``. A service that crashes the
process, hangs or leaks takes only this worker with it; the runner starts a fresh one.

Runs share the worker's process, as services share a Zato server's: after each run the worker
puts back the working directory, the environment, the umask and the logging set-up
(``ProcessState``); what a service does to modules (monkeypatching) stays, unless its job or
class asks for ``isolation="process"`` (see ``pool``).
"""

from __future__ import annotations

import contextlib
import gc
import io
import linecache
import logging
import os
import pickle
import struct
import sys
import threading
import time
import traceback
import types
from collections import deque
from collections.abc import Callable
from typing import Any, BinaryIO

from ..service import JobInfo, Service, output_text

_HEADER = struct.Struct("!I")
# The protocol's own references: a service that patches pickle does not break the worker's reports.
_dumps, _loads = pickle.dumps, pickle.loads
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def write_frame(stream: BinaryIO, message: Any) -> None:
    data = _dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def read_frame(stream: BinaryIO) -> Any | None:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    return _loads(stream.read(size))


def encode_frame(message: Any) -> bytes:
    data = _dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(data)) + data


class _Capture(io.TextIOBase):
    """A text stream that appends what is written to a run's log lines."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        self.partial = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.partial += text
        *complete, self.partial = self.partial.split("\n")
        self.lines.extend(complete)
        return len(text)

    def finish(self) -> None:
        if self.partial:
            self.lines.append(self.partial)
            self.partial = ""


class _ListHandler(logging.Handler):
    def __init__(self, lines: list[str]):
        super().__init__(logging.DEBUG)
        self.lines = lines
        self.setFormatter(logging.Formatter(LOG_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # a bad log call must not fail the run
            self.lines.append(f"(unformattable log record: {record.msg!r})")


class ProcessState:
    """What a run may change in the worker's process that later runs must not see: the working
    directory, the environment, the umask and the logging set-up. Taken once, put back after each run."""

    def __init__(self) -> None:
        self.cwd = os.getcwd()
        self.environ = os.environ
        self.env = dict(os.environ)
        # os.environ's own dict (encoded): comparing it costs well under a microsecond, a copy ~15 µs.
        self.env_data = dict(getattr(os.environ, "_data", {}))
        self.umask = os.umask(0o022)
        os.umask(self.umask)
        root = logging.getLogger()
        self.root = (list(root.handlers), list(root.filters), root.level, root.disabled)
        self.disable = logging.root.manager.disable
        self.record_factory = logging.getLogRecordFactory()

    def restore(self) -> None:
        self._restore_cwd()
        self._restore_environment()
        os.umask(self.umask)
        self._restore_logging()

    def _restore_cwd(self) -> None:
        try:
            moved = os.getcwd() != self.cwd
        except OSError:  # the directory it moved to was removed
            moved = True
        if moved:
            with contextlib.suppress(OSError):
                os.chdir(self.cwd)

    def _restore_environment(self) -> None:
        data = getattr(self.environ, "_data", None)
        if data is not None and data == self.env_data:
            return
        current = dict(self.environ)
        for key in current.keys() - self.env.keys():
            del self.environ[key]
        for key, value in self.env.items():
            if current.get(key) != value:
                self.environ[key] = value
        if current.get("TZ") != self.env.get("TZ"):
            time.tzset()

    def _restore_logging(self) -> None:
        root = logging.getLogger()
        handlers, filters, level, disabled = self.root
        if (root.handlers, root.filters, root.level, root.disabled) != (handlers, filters, level, disabled):
            root.handlers[:] = handlers
            root.filters[:] = filters
            root.disabled = disabled
            root.setLevel(level)
        if logging.root.manager.disable != self.disable:
            logging.disable(self.disable)
        if logging.getLogRecordFactory() is not self.record_factory:
            logging.setLogRecordFactory(self.record_factory)


class Registry:
    """Deployed sources by version and services by name, loaded into modules on first use."""

    def __init__(self) -> None:
        self.sources: dict[str, tuple[str, str]] = {}  # version -> (origin, source)
        self.services: dict[str, tuple[str, str]] = {}  # name -> (version, class name)
        self.modules: dict[str, types.ModuleType] = {}
        self.classes: dict[str, type] = {}  # name -> class, for the services loaded so far

    def update(self, sources: dict[str, tuple[str, str]], services: dict[str, tuple[str, str]]) -> None:
        self.sources.update(sources)
        self.services = dict(services)
        self.classes = {}

    def service_class(self, name: str) -> type:
        try:
            return self.classes[name]
        except KeyError:
            pass
        if name not in self.services:
            from ..errors import ServiceNotFound, did_you_mean

            known = sorted(self.services)
            raise ServiceNotFound(
                f"No service named {name!r} is deployed.{did_you_mean(name, known)} "
                f"Services: {', '.join(known) or 'none'}."
            )
        version, class_name = self.services[name]
        cls = self.classes[name] = getattr(self._module(version), class_name)
        return cls

    def _module(self, version: str) -> types.ModuleType:
        if version not in self.modules:
            origin, source = self.sources[version]
            filename = origin if not origin.startswith("<") else f"<nbsched service {version}>"
            module = types.ModuleType(f"nbsched_service_{version}")
            module.__file__ = filename
            linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
            sys.modules[module.__name__] = module
            exec(compile(source, filename, "exec"), module.__dict__)
            self.modules[version] = module
        return self.modules[version]


class Context:
    """What a running service reaches through ``self``: connections and other services."""

    def __init__(self, worker: Worker, message: dict):
        self.worker = worker
        self.message = message

    @property
    def connections(self):
        return self.worker.connections

    @property
    def out(self):
        return self.connections.out

    @property
    def email(self):
        return self.connections.email

    @property
    def kvdb(self):
        return self.connections.kvdb

    def invoke(self, name: str, payload: Any, parent) -> Any:
        service = self.worker.prepare(name, self.message, raw_request=payload, channel="invoke", job=None)
        service.cid = parent.cid
        service.handle()
        return service.response.payload


class Worker:
    """Executes run messages one by one."""

    def __init__(self) -> None:
        self.registry = Registry()
        self.connection_definitions: dict[str, dict] = {}
        self._connections = None
        self._secrets: list[str] | None = None
        self._loggers: dict[str, logging.Logger] = {}
        # One capture and one log handler, pointed at each run's lines in turn.
        self._capture = _Capture([])
        self._handler = _ListHandler([])
        logging.getLogger().addHandler(self._handler)
        self.state = ProcessState()

    def set_connections(self, definitions: dict[str, dict]) -> None:
        """The runner's connection definitions (name -> {kind, definition}); sent when they change."""
        if definitions == self.connection_definitions:
            return
        if self._connections is not None:
            self._connections.close()
        self.connection_definitions = dict(definitions)
        self._connections = None
        self._secrets = None

    @property
    def connections(self):
        """The live connections (HTTP sessions, Redis pools), kept until the definitions change."""
        if self._connections is None:
            from ..connections import Connections

            self._connections = Connections(self.connection_definitions)
        return self._connections

    def _mask(self, result: dict) -> None:
        """Blank connection secrets in what a run reports (its logs, error, traceback and output)."""
        if not self.connection_definitions:
            return
        if self._secrets is None:
            from ..connections import secrets_of

            self._secrets = secrets_of(self.connection_definitions)
        from ..connections import mask

        for key in ("error", "traceback", "output", "logs"):
            result[key] = mask(result.get(key), self._secrets)

    def prepare_ahead(self, message: dict) -> None:
        """Build the service object of a run held for later (``not_before``) while it waits.

        Only for a service already loaded whose class runs no code of its own when built (no
        ``__init__``), so nothing of the user's runs before the run's time; at the due time
        only the call remains.
        """
        cls = self.registry.classes.get(message["service"])
        if cls is None or cls.__init__ is not Service.__init__ or cls.__new__ is not object.__new__:
            return
        service, channel = message["service"], message.get("channel", "invoke")
        message["_service"] = self.prepare(service, message, message.get("extra"), channel, message.get("job"))

    def prepare(self, name: str, message: dict, raw_request: Any, channel: str, job: Any):
        service = self.registry.service_class(name)()
        service.cid = message["cid"]
        service.channel = channel
        service.job = JobInfo(job["name"], job["type"], job["run_number"]) if job else None
        service.request.raw_request = raw_request
        logger = self._loggers.get(name)
        if logger is None:
            logger = self._loggers[name] = logging.getLogger(name)
        if logger.disabled:  # logging.config.dictConfig() in another run disables the loggers it does not name
            logger.disabled = False
        service.logger = logger
        service._context = Context(self, message)
        return service

    def run(self, message: dict) -> dict:
        lines: list[str] = []
        capture, self._handler.lines = self._capture, lines
        capture.lines, capture.partial = lines, ""
        saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = capture
        if "connections" in message:
            self.set_connections(message["connections"])
        status, error, trace, output = "ok", None, None, None
        started = time.time()
        try:
            channel = message.get("channel", "invoke")
            service = message.pop("_service", None) or self.prepare(
                message["service"], message, message.get("extra"), channel, message.get("job")
            )
            if channel == "scheduler":
                started = time.time()
                service.before_job()
                try:
                    service.handle()
                finally:
                    service.after_job()
            else:
                started = time.time()
                service.handle()
            output = output_text(service.response.payload)
        except BaseException as exc:
            status, error, trace = "error", _one_line(exc), traceback.format_exc()
            if isinstance(exc, KeyboardInterrupt):
                raise
        finally:
            finished = time.time()
            sys.stdout, sys.stderr = saved
            if capture.partial:
                capture.finish()
            self._handler.lines = []
            self.state.restore()
        result = {
            "run_id": message["run_id"],
            "status": status,
            "error": error,
            "traceback": trace,
            "output": output,
            "started_at": started,
            "finished_at": finished,
            "logs": "\n".join(lines) if lines else "",
        }
        if self.connection_definitions:
            self._mask(result)
        return result


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return " ".join(text.split())[:500]


def _die_with_parent() -> None:
    """On Linux, have the kernel kill this worker if the runner dies (even by SIGKILL)."""
    if not sys.platform.startswith("linux"):
        return
    import contextlib
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):  # a libc without prctl: nothing to do
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() == 1:  # the runner died before prctl took effect
        os._exit(1)


def _warm_up() -> None:
    """Import what runs need before saying ready, so a first run (and its timeout) starts no slower than others."""
    import requests  # noqa: F401

    from .. import (
        connections,  # noqa: F401
        service,  # noqa: F401
    )


def main() -> None:
    # Keep the protocol on private copies of stdin and stdout (not inherited by programs a service starts);
    # stray writes to fd 1 go to stderr, and reads of fd 0 find nothing.
    out = os.fdopen(os.dup(1), "wb")
    source = os.fdopen(os.dup(0), "rb")
    os.dup2(2, 1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    _die_with_parent()
    logging.getLogger().setLevel(logging.INFO)
    worker = Worker()
    _warm_up()
    gc.freeze()  # what the worker loaded stays: full collections need not walk it again
    inbox = Inbox(out, prepare=worker.prepare_ahead)
    inbox.send({"ready": os.getpid()})
    threading.Thread(target=inbox.fill, args=(source,), daemon=True, name="nbsched-inbox").start()
    threading.Thread(target=inbox.watch, daemon=True, name="nbsched-bounce").start()
    result = None
    while True:
        message = inbox.next(result)
        result = None
        op = message.get("op") if message else "exit"
        if op == "sources":
            worker.registry.update(message["sources"], message["services"])
        elif op == "connections":
            worker.set_connections(message["connections"])
        elif op == "run":
            result = worker.run(message)
        elif op == "exit":
            return


class Inbox:
    """The messages the runner sent this worker, read ahead by a thread.

    The runner may queue several runs in a worker's pipe (pipelining). When the run in hand
    takes longer than ``BOUNCE_AFTER`` seconds, the runs waiting behind it go back to the
    runner ("bounced") to be run by another worker, so a slow run never holds up others.
    """

    BOUNCE_AFTER = 0.05

    def __init__(self, out: BinaryIO, prepare: Callable[[dict], None] | None = None):
        self.out = out
        self.prepare = prepare
        self.messages: deque = deque()
        self.unprepared: deque = deque()  # runs held for later and other messages, in arrival order
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.write_lock = threading.Lock()
        self.runs_started = 0
        self.running = False
        self.results: list[dict] = []  # finished, not yet sent
        self.held_since = 0.0  # when the first of them was held back
        self.spun_at = 0.0

    #: While more runs are due at once, results are held back (one write, and one wake-up of the
    #: runner, after the burst: the runner reading results would otherwise take a core from the runs),
    #: up to ``BATCH`` of them and for at most ``BATCH_SECONDS`` after the first.
    BATCH = 50_000
    BATCH_SECONDS = 0.1
    #: The last stretch before a held run's time is waited for by polling the clock, not by sleeping
    #: (a thread sleeping on an idle virtual machine's core has been seen to wake 2 ms late), at most
    #: once every ``SPIN_EVERY`` seconds.
    SPIN = 0.003
    SPIN_EVERY = 0.1

    def send(self, message: dict) -> None:
        with self.write_lock:
            write_frame(self.out, message)

    def next(self, result: dict | None = None) -> dict | None:
        """Hand in the result of the run just ended (if any) and take the next message.

        While runs are due now, results are held back (up to ``BATCH``) and the next run comes
        at once. Otherwise the results go to the runner and this waits for the next message, a
        run held for later (``not_before``) coming out at its time.
        """
        with self.lock:
            self.running = False
            if result is not None:
                if not self.results:
                    self.held_since = time.monotonic()
                self.results.append(result)
            while True:
                if self.messages:
                    head = self.messages[0]
                    if head is None or head.get("op") != "run":
                        self._flush_results()
                        message = self.messages.popleft()
                        if message is not None:
                            message["_taken"] = True  # for _prepare_held: acted on
                        return message
                    wait = head.get("not_before", 0) - time.time()
                    if wait <= 0:
                        if self.results and (
                            len(self.results) >= self.BATCH or time.monotonic() - self.held_since >= self.BATCH_SECONDS
                        ):
                            self._flush_results()
                        self.runs_started += 1  # the watchdog reads these now and then, without the lock
                        self.running = True
                        return self.messages.popleft()
                self._flush_results()
                if not self.messages:
                    self.changed.wait()
                elif self.unprepared and wait > self.PREPARE_MARGIN:
                    self._prepare_held()  # under the lock: the messages stay as they are meanwhile
                else:
                    self._wait_for(head["not_before"], wait)

    def _wait_for(self, moment: float, wait: float) -> None:
        """Wait (lock released) until ``moment`` or a new message; poll the clock for the last ``SPIN``."""
        if wait > self.SPIN or time.monotonic() - self.spun_at < self.SPIN_EVERY:
            self.changed.wait(max(wait - self.SPIN, 0.0) if wait > self.SPIN else wait)
            return
        while time.time() < moment:
            pass
        self.spun_at = time.monotonic()

    #: Runs held for later are prepared while waiting when their time is at least this far.
    PREPARE_MARGIN = 0.002

    def _prepare_held(self) -> None:
        """Prepare the runs that wait (in order, up to a message the worker has yet to act on)."""
        while self.unprepared:
            message = self.unprepared[0]
            if message.get("op") != "run" and not message.get("_taken"):
                return  # a registry or connections change comes first: prepare after it
            self.unprepared.popleft()
            if message.get("op") == "run":
                with contextlib.suppress(Exception):  # the run reports it when it starts
                    self.prepare(message)

    def _flush_results(self) -> None:
        if self.results:
            self.send({"results": self.results})
            self.results = []

    def fill(self, source: BinaryIO) -> None:
        while True:
            message = read_frame(source)
            with self.changed:
                if message and message.get("op") == "cancel":
                    self._cancel(message["run_id"])
                elif message and message.get("op") == "runs":  # several runs in one frame
                    for run in message["runs"]:
                        run["op"] = "run"
                    self.messages.extend(message["runs"])
                    if self.prepare is not None:
                        self.unprepared.extend(run for run in message["runs"] if run.get("not_before"))
                else:
                    self.messages.append(message)
                    held_or_not_a_run = message and (message.get("op") != "run" or message.get("not_before"))
                    if held_or_not_a_run and self.prepare is not None:
                        self.unprepared.append(message)
                self.changed.notify_all()
            if message is None:
                return

    def _cancel(self, run_id: int) -> None:
        """Give back a run that has not started; one that has started runs to its end."""
        for message in self.messages:
            if message and message.get("op") == "run" and message["run_id"] == run_id:
                self.messages.remove(message)
                self.send({"cancelled": run_id})
                return

    def watch(self) -> None:
        """Every ``BOUNCE_AFTER`` seconds: if the same run is still in hand, bounce the runs waiting behind it."""
        seen = -1
        while True:
            time.sleep(self.BOUNCE_AFTER)
            number, running = self.runs_started, self.running
            if not (running and number == seen):
                seen = number
                continue
            with self.changed:
                self._flush_results()  # results held back for a batch must not wait for a slow run
                waiting = [m for m in self.messages if m and m.get("op") == "run"]
                self.messages = deque(m for m in self.messages if not (m and m.get("op") == "run"))
                if waiting:
                    self.send({"bounced": [m["run_id"] for m in waiting]})
