"""The client: everything a notebook, the CLI or a script does goes through these methods.

``nbsched.connect()`` finds the runner of ``NBSCHED_HOME`` over its Unix socket and
starts a detached one if none answers (and says so in one line of its log, on stderr).
Listing methods return pandas DataFrames with times in the user's time zone; ``call``
gives the raw JSON-able result of any operation. A runner's error comes with a note in
Python's words (``See client.jobs().``), shown under the message in a traceback.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import socket
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from .. import config, protocol
from ..errors import DeployError, InvalidInput, NbschedError, NoRunner, ProtocolError, RunnerError
from ..model.jobs import JOB_LIST_FIELDS
from ..model.timeparse import format_duration, parse_datetime, parse_duration, utcnow
from ..model.triggers import Preview
from . import frames
from .launch import started_text

log = logging.getLogger(__name__)

#: The note a Python user reads under an error whose ``hint`` names one (``NbschedError.hint``).
HINTS = {
    "jobs": "See client.jobs().",
    "runs": "See client.history() for run ids.",
    "deploy": "Deploy it first: client.deploy('services/').",
    "connections": "See client.connections.list().",
    "status": "client.ping() shows the store's errors.",
    "restart": "Restart the runner: client.shutdown(), then nbsched.connect().",
    "start": "(start one: nbsched.connect())",
}


@dataclass(frozen=True)
class Job:
    """A job as the runner listed it after a change."""

    name: str
    type: str
    definition: str
    service: str
    active: bool
    next_run: datetime | None
    last_run: datetime | None
    last_status: str | None
    runs: int
    note: str = ""
    state: str = "active"  #: active, paused, finished (a one-time job that ran) or ended (no more fires)
    notice: str = ""  #: what the runner says of the change, e.g. "at is in the past: runs now"

    @classmethod
    def from_record(cls, record: dict, tz: str) -> Job:
        values = {key: record[key] for key in cls.__dataclass_fields__ if key in record}  # absent: its default
        for key in frames.JOB_TIME_COLUMNS:
            values[key] = frames.local_time(values.get(key), tz)
        return cls(**values)


#: Seconds a client waits for a purge (a million runs take about a minute; jobs keep firing meanwhile).
PURGE_TIMEOUT = 3600.0


class BackfillCapped(UserWarning):
    """A backfill ran only the first part of its window (the message says up to when)."""


class Client:
    """A connection to the runner of one nbsched home."""

    def __init__(self, settings: config.Settings | None = None, autostart: bool = True, timeout: float = 60.0):
        self.settings = settings or config.settings()
        self.autostart = autostart
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._buffer: Any = None
        self._lock = threading.Lock()
        self._next_id = 0
        self.connections = _Connections(self)
        #: The ping answer of the runner this client started, or None when one was running already.
        self.started_runner: dict | None = None
        self._connect()

    # -- transport --------------------------------------------------------------
    def _connect(self) -> None:
        try:
            self.ping()
        except RunnerError:
            if not self.autostart:
                raise
            from .launch import start_detached

            self.started_runner = start_detached(self.settings, ping=self.ping)

    def _open(self) -> None:
        path = str(self.settings.socket_path)
        try:
            token = self.settings.token_path.read_text().strip()
        except FileNotFoundError:
            raise _noted(NoRunner(f"No runner is running for NBSCHED_HOME={self.settings.home}")) from None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            raise _noted(NoRunner(f"No runner is running for NBSCHED_HOME={self.settings.home}")) from None
        self._sock, self._buffer, self._token = sock, sock.makefile("rb"), token

    def close(self) -> None:
        if self._sock is not None:
            self._buffer.close()
            self._sock.close()
            self._sock = None

    def call(self, op: str, _timeout: float | None = None, **args) -> Any:
        """Send one request and return its result; a runner error is raised as its own class."""
        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._sock is None:
                        self._open()
                    self._next_id += 1
                    self._sock.settimeout(_timeout or self.timeout)
                    self._sock.sendall(protocol.request(op, args, self._token, self._next_id))
                    line = self._buffer.readline()
                    if not line:
                        raise ConnectionResetError("runner closed the connection")
                    reply = protocol.parse_reply(line)
                    if reply.get("ok") and "binary" in reply:
                        return self._read_binary(reply["binary"], op)
                    break
                except NoRunner:
                    raise
                except (ConnectionError, BrokenPipeError, OSError) as exc:
                    self.close()
                    if isinstance(exc, TimeoutError) or attempt == 2:
                        raise RunnerError(
                            f"The runner did not answer '{op}': {exc}. See {self.settings.log_path}."
                        ) from None
        if reply.get("ok"):
            return reply.get("result")
        raise _noted(protocol.remote_error(reply.get("error")))

    def _read_binary(self, size, op: str) -> bytes:
        """The raw bytes that follow a reply header announcing ``binary``: N."""
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            self.close()
            raise ProtocolError(f"The runner's reply to '{op}' announced {size!r} bytes; expected a byte count.")
        if size > 1 << 22:  # a long history: a bigger kernel buffer, fewer wake-ups on both sides
            with contextlib.suppress(OSError):
                self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        data = self._buffer.read(size)
        if len(data) != size:
            self.close()
            raise ConnectionResetError(f"runner closed the connection after {len(data)} of {size} bytes")
        return data

    # -- runner -----------------------------------------------------------------
    def ping(self) -> dict:
        return self.call("ping", _timeout=5)

    def shutdown(self) -> dict:
        """Ask the runner to stop (running runs get a bounded grace period)."""
        return self.call("shutdown")

    # -- services ---------------------------------------------------------------
    def deploy(self, target: Any) -> list[str]:
        """Deploy services from a file, a folder, source text, a Service class, or a list of those."""
        result = self.call("deploy", units=source_units(target))
        self.last_deploy = result
        return [service["name"] for service in result["services"]]

    def services(self):
        return frames.from_records(
            self.call("services"), ("name", "version", "class_name", "origin", "deployed_at"), self.tz, ("deployed_at",)
        )

    # -- jobs -------------------------------------------------------------------
    def schedule(
        self,
        service: str,
        name: str | None = None,
        every: str | timedelta | dict | None = None,
        cron: str | None = None,
        at: str | datetime | None = None,
        **options,
    ) -> Job:
        """Create a job that runs ``service`` on a one-time, interval or cron schedule."""
        args = {"service": service, "name": name or service, "every": every, "cron": cron, "at": at, **options}
        _keep_text(args)
        return Job.from_record(self.call("schedule", **_wire(args)), self.tz)

    def update(self, name: str, **changes) -> Job:
        _keep_text(changes)
        return Job.from_record(self.call("update", name=name, changes=_wire(changes)), self.tz)

    def jobs(self):
        return frames.from_records(self.call("jobs"), JOB_LIST_FIELDS, self.tz, frames.JOB_TIME_COLUMNS)

    def job(self, name: str) -> dict:
        return self.call("job", name=name)

    def pause(self, name: str, note: str = "") -> Job:
        return Job.from_record(self.call("pause", name=name, note=note), self.tz)

    def resume(self, name: str) -> Job:
        return Job.from_record(self.call("resume", name=name), self.tz)

    def delete(self, name: str) -> None:
        self.call("delete", name=name)

    def execute(self, name: str, channel: str = "manual") -> int:
        """Run the job's service now with the job's extra; the schedule does not change."""
        return self.call("execute", name=name, channel=channel)["run_id"]

    def invoke(self, service: str, extra: Any = None, channel: str = "invoke") -> int:
        """Run a service once, now, outside any job."""
        return self.call("invoke", service=service, extra=extra, channel=channel)["run_id"]

    def backfill(self, name: str, start: Any, end: Any) -> list[int]:
        """Run the fires the job would have had from ``start`` to ``end``; their run ids, oldest first.

        A window of more fires than one backfill runs is cut short, with a ``BackfillCapped`` warning
        that says up to when it ran.
        """
        result = self.call("backfill", name=name, start=_wire_value(start), end=_wire_value(end))
        if result.get("capped"):
            import warnings

            warnings.warn(result["message"], BackfillCapped, stacklevel=2)
        return result["run_ids"]

    def preview(
        self, cron=None, every=None, at=None, tz=None, count: int = 5, after=None, start=None, name=None
    ) -> Preview:
        """Next fire times, as ``nbsched.preview`` computes them, in the runner's default time zone."""
        args = {"cron": cron, "every": every, "at": at, "tz": tz, "count": count, "after": after, "start": start}
        args = _wire({**args, "name": name})
        result = self.call("preview", **{k: v for k, v in args.items() if v is not None})
        times = [frames.local_time(moment, result["tz"]) for moment in result["times"]]
        return Preview(times=times, description=result["description"])

    # -- runs -------------------------------------------------------------------
    def history(self, job=None, service=None, status=None, since=None, limit=None, job_uid=None):
        """Run history, newest first, as a DataFrame (columns of DESIGN.md section 5).

        ``job`` selects the runs of the job that has that name now (a deleted job of the same name had runs
        of its own: the ``job_uid`` column tells them apart, and ``job_uid=`` selects one job's runs); with no
        job of that name, the runs of the deleted jobs that had it.

        It comes as an Arrow stream, typed columns the runner read straight from its store,
        so a million runs take about a second instead of a JSON row each.
        """
        import pyarrow as pa

        filters = {"job": job, "job_uid": job_uid, "service": service, "status": status, "since": since}
        filters["limit"] = limit
        table = pa.ipc.open_stream(self.call("history", format="arrow", **self._history_args(filters))).read_all()
        return frames.from_arrow(table, self.tz, frames.RUN_TIME_COLUMNS)

    def history_rows(self, **filters) -> dict:
        return self.call("history", **self._history_args(filters))

    def _history_args(self, filters: dict) -> dict:
        """History filters for the wire; a ``since`` date without an offset is read in the user's zone here,
        not in the runner's."""
        args = {key: _wire_value(value) for key, value in filters.items() if value is not None}
        if filters.get("since") not in (None, ""):
            args["since"] = _since(filters["since"], self.tz)
        return args

    def purge(self, job: str | None = None, before: Any = None) -> int:
        """Delete finished runs and their executed notebooks: the runs of ``job``, those finished before ``before``
        (an age such as ``"30d"``, a ``timedelta``, or a date, read in your time zone), or both; return how many.

        A run still running is never deleted. Big purges go in small steps; jobs keep firing meanwhile."""
        if isinstance(before, timedelta):
            before = format_duration(before)
        with contextlib.suppress(InvalidInput):  # what is neither an age nor a date the runner refuses, by name
            before = _since(before, self.tz) if before not in (None, "") else before
        return self.call("purge", _timeout=PURGE_TIMEOUT, **_wire({"job": job, "before": before}))["removed"]

    def run(self, run_id: int) -> dict:
        """Every field of one run, including logs, traceback and output."""
        return frames.run_record(self.call("run", run_id=run_id), self.tz)

    def wait(self, run_id: int, timeout: float = 30.0) -> dict:
        """Block until the run ends (or raise WaitTimeout); return its record."""
        record = self.call("wait", _timeout=timeout + 10, run_id=run_id, timeout=timeout)
        return frames.run_record(record, self.tz)

    @property
    def tz(self) -> str:
        return self.settings.timezone


class _Connections:
    """``client.connections``: outgoing connections (REST, SMTP, kvdb) by name.

    Secrets (``password``, ``token``) may be given as they are or as ``"env:VARIABLE"``, read
    from the runner's environment when a run uses them; listings never show their values.
    Saving a connection under an existing name replaces it from the next run on.
    """

    COLUMNS = ("name", "kind", "address", "definition", "updated_at")

    def __init__(self, client: Client):
        self._client = client

    def add_rest(
        self,
        name: str,
        address: str,
        headers: dict[str, str] | None = None,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        timeout: float = 10,
        verify: bool = True,
    ) -> dict:
        """A REST endpoint for ``self.out.plain_http[name].conn`` (basic auth or a bearer token)."""
        fields = {"address": address, "headers": headers, "username": username, "password": password}
        return self._save(name, "rest", {**fields, "token": token, "timeout": timeout, "verify": verify})

    def add_smtp(
        self,
        name: str,
        host: str,
        port: int,
        username: str | None = None,
        password: str | None = None,
        tls: str = "none",
        sender: str | None = None,
        timeout: float = 10,
    ) -> dict:
        """An SMTP server for ``self.email.smtp[name].conn``; ``tls`` is "none", "starttls" or "ssl"."""
        fields = {"host": host, "port": port, "username": username, "password": password}
        return self._save(name, "smtp", {**fields, "tls": tls, "sender": sender, "timeout": timeout})

    def set_kvdb(self, url: str, prefix: str | None = None) -> dict:
        """The Redis behind ``self.kvdb.conn``, e.g. ``"redis://127.0.0.1:6379/0"``.

        ``prefix`` (e.g. ``"proj:"``) is put before every key ``self.kvdb.conn`` reads or writes,
        so projects that share one Redis database keep apart.
        """
        return self._save("kvdb", "kvdb", {"url": url, **({"prefix": prefix} if prefix is not None else {})})

    def _save(self, name: str, kind: str, definition: dict) -> dict:
        return self._client.call("connection_save", name=name, kind=kind, definition=definition)

    def list(self):
        """The connections as a DataFrame, secrets masked."""
        return frames.from_records(self._client.call("connections"), self.COLUMNS, self._client.tz, ("updated_at",))

    def delete(self, name: str) -> None:
        self._client.call("connection_delete", name=name)

    def test(self, name: str) -> dict:
        """Reach the connection's endpoint once: ``{"name", "kind", "ok", "detail"}``."""
        return self._client.call("connection_test", _timeout=120, name=name)


def connect(home: str | os.PathLike | None = None, autostart: bool = True) -> Client:
    """Connect to the runner of ``NBSCHED_HOME`` (or ``home``), starting one if none runs."""
    settings = config.settings()
    if home is not None:
        from dataclasses import replace

        resolved = Path(home).expanduser().resolve()
        store_url = settings.store_url if "NBSCHED_STORE" in os.environ else f"sqlite:///{resolved / 'nbsched.db'}"
        settings = replace(settings, home=resolved, store_url=store_url)
    client = Client(settings, autostart=autostart)
    if client.started_runner is not None:
        log.warning("%s", started_text(settings, client.started_runner))
    return client


def _noted(error: NbschedError) -> NbschedError:
    """``error`` with its hint, in the client's words, as a note (shown under the message; ``str()`` stays)."""
    if error.hint in HINTS:
        error.add_note(HINTS[error.hint])
    return error


# -- helpers ------------------------------------------------------------------------
def source_units(target: Any) -> list[dict]:
    """Turn what a user passes to deploy() into source units for the runner."""
    if isinstance(target, list | tuple):
        return [unit for item in target for unit in source_units(item)]
    if isinstance(target, type):
        return [_class_unit(target)]
    if isinstance(target, Path) or (isinstance(target, str) and "\n" not in target and _looks_like_path(target)):
        return _path_units(Path(target))
    if isinstance(target, str):
        return [{"source": target, "origin": "<string>"}]
    raise DeployError(f"Cannot deploy {type(target).__name__}: pass a file, a folder, source text or a Service class.")


def _looks_like_path(text: str) -> bool:
    return os.path.exists(text) or text.endswith(".py") or "/" in text


def _path_units(path: Path) -> list[dict]:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.py") if not p.name.startswith("_") and "__pycache__" not in p.parts)
        if not files:
            raise DeployError(f"Cannot deploy {path}: the folder has no .py files.")
        return [unit for file in files for unit in _path_units(file)]
    if not path.is_file():
        raise DeployError(f"Cannot deploy {path}: no such file or folder.")
    try:
        return [{"source": path.read_text(encoding="utf-8"), "origin": str(path)}]
    except UnicodeDecodeError:
        raise DeployError(f"Cannot deploy {path}: it is not UTF-8 text.") from None


def _class_unit(cls: type) -> dict:
    module_file = getattr(inspect.getmodule(cls), "__file__", None)
    if module_file and module_file.endswith(".py") and os.path.exists(module_file):
        return _path_units(Path(module_file))[0]
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        raise DeployError(
            f"Cannot deploy {cls.__name__}: its source is not available; deploy the file or cell text."
        ) from None
    import textwrap

    return {"source": "from nbsched import *  # noqa\n\n" + textwrap.dedent(source), "origin": "<cell>"}


def _wire_value(value: Any) -> Any:
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _since(value: Any, tz: str) -> Any:
    """A ``since`` filter for the runner: a duration as given; a date in UTC (read in ``tz`` when it has no offset)."""
    if isinstance(value, str):
        try:
            parse_duration(value, "since")
            return value
        except InvalidInput:
            pass
    if isinstance(value, str | datetime):
        return parse_datetime(value, tz, utcnow(), "since").isoformat()
    return _wire_value(value)


def _keep_text(args: dict) -> None:
    """A ``history_keep`` given as a ``timedelta`` goes as an age (``"30d"``), not as seconds (a count)."""
    if isinstance(args.get("history_keep"), timedelta):
        args["history_keep"] = format_duration(args["history_keep"])


def _wire(args: dict) -> dict:
    return {key: _wire_value(value) for key, value in args.items() if value is not None}
