"""The client: everything a notebook, the CLI or a script does goes through these methods.

``nbsched.connect()`` finds the runner of ``NBSCHED_HOME`` over its Unix socket and
starts a detached one if none answers (and says so in one line of its log, on stderr).
Listing methods return pandas DataFrames with times in the user's time zone; ``call``
gives the raw JSON-able result of any operation. A runner's error comes with a note in
Python's words (``See client.jobs().``), shown under the message in a traceback.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from .. import config, protocol
from ..errors import InvalidInput, NbschedError, NoRunner, ProtocolError, RunnerError
from ..model.jobs import JOB_LIST_FIELDS
from ..model.timeparse import format_duration, parse_datetime, parse_duration, utcnow
from ..model.triggers import Preview
from . import frames, pages
from .connections import Connections
from .launch import started_text
from .sources import source_units, with_html

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
        self.connections = Connections(self)
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
            try:
                reply = self._request_line(op, args, _timeout)
                if reply.get("ok") and "binary" in reply:
                    return self._read_binary(reply["binary"], op)
                if reply.get("ok") and "stream" in reply:  # asked by call(): all of it, at once
                    return {**reply["stream"], "rows": list(pages.read_stream(self._buffer, reply))}
            except KeyboardInterrupt:  # its reply would answer the next request: that one gets a new connection
                self.close()
                raise
            except NoRunner:
                raise
            except OSError as exc:
                self.close()
                raise self._lost(op, exc, "stopped answering") from None
        if reply.get("ok"):
            return reply.get("result")
        raise _noted(protocol.remote_error(reply.get("error")))

    def stream(self, op: str, **args) -> Iterator[list]:
        """Send one request whose reply comes in chunks (``protocol.Stream``); yield its rows as they arrive.

        The stream has a connection of its own, closed after its last row or when it is dropped: the client
        takes other calls meanwhile, from the loop that reads the rows too."""
        own = Client(self.settings, autostart=False, timeout=self.timeout)
        try:
            header = own._request_line(op, args)
            if not header.get("ok"):
                raise _noted(protocol.remote_error(header.get("error")))
            yield from pages.read_stream(own._buffer, header)
        except OSError as exc:
            raise self._lost(op, exc, "stopped answering") from None
        finally:
            own.close()

    def _request_line(self, op: str, args: dict, timeout: float | None = None) -> dict:
        """Send a request (again on a fresh connection if the kept one has gone) and read its reply's first line."""
        for attempt in (1, 2):
            try:
                if self._sock is None:
                    self._open()
                self._next_id += 1
                self._sock.settimeout(timeout or self.timeout)
                self._sock.sendall(protocol.request(op, args, self._token, self._next_id))
                line = self._buffer.readline()
                if not line:
                    raise ConnectionResetError("runner closed the connection")
                return protocol.parse_reply(line)
            except NoRunner:
                raise
            except OSError as exc:
                self.close()
                if isinstance(exc, TimeoutError) or attempt == 2:
                    raise self._lost(op, exc, "did not answer") from None
        raise AssertionError("unreachable")

    def _lost(self, op: str, exc: OSError, what: str) -> RunnerError:
        return RunnerError(f"The runner {what} '{op}': {exc}. See {self.settings.log_path}.")

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
    def deploy(self, target: Any, html: bool = False) -> list[str]:
        """Deploy services from a file, a folder, source text, a Service class, or a list of those.

        A notebook file (``reports/daily.ipynb``) becomes the service ``daily``; each run executes a copy,
        saved as the run's output (``html=True``: an HTML rendering is saved beside it).
        """
        units = source_units(target)
        if html:
            units = with_html(units)
        result = self.call("deploy", units=units)
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

    def jobs(self, limit: int | None = None, offset: int = 0, filter: dict | None = None, sort: str = "name"):
        """The jobs as a DataFrame: all of them, or a page (``limit`` jobs after ``offset``) of those ``filter``
        selects, sorted by ``sort``.

        ``filter`` is a dict of any of ``search`` (text in the name or service, any case), ``status`` (the last
        run's, or ``"none"``: never ran) and ``state`` (active, paused, finished, ended); ``sort`` is ``name``,
        ``next_run`` or ``last_run``, with ``-`` before it for the other way round (``"-last_run"``)."""
        records = self.call("jobs", **pages.paging_args(limit, offset, filter, sort))
        return frames.from_records(records, JOB_LIST_FIELDS, self.tz, frames.JOB_TIME_COLUMNS)

    def jobs_page(self, limit: int = pages.PAGE_ROWS, offset: int = 0, filter=None, sort: str = "name") -> pages.Page:
        """One page of jobs as ``jobs`` selects them, as dicts, with how many the filter selects (``total``)."""
        result = self.call("jobs_page", **pages.paging_args(limit, offset, filter, sort))
        return pages.job_page(result, self.tz)

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

    def invoke_many(self, service: str, extras: Iterable[Any], channel: str = "invoke") -> list[int]:
        """Run a service once per extra (one run each, now, outside any job); their run ids, in the same order.

        One request and one write to the store for all of them: every run is recorded before this returns, or,
        when an extra is refused (the message names which), none is. At most ``config.MAX_INVOKE_RUNS`` at once.
        """
        return self.call("invoke_many", service=service, extras=_extras_list(extras), channel=channel)["run_ids"]

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

    def history_page(self, limit: int = pages.PAGE_ROWS, offset: int = 0, **filters) -> pages.Page:
        """``limit`` runs after the newest ``offset`` (filters as ``history``) as dicts; ``more``: older ones follow."""
        if isinstance(limit, int) and not isinstance(limit, bool) and limit >= 0:  # else the runner says what is wrong
            filters["limit"] = limit + 1  # one more than shown tells whether another page follows
        else:
            filters["limit"] = limit
        result = self.call("history", offset=offset, **self._history_args(filters))
        return pages.run_page(result, limit, offset, self.tz)

    def history_stream(self, **filters) -> Iterator[list]:
        """The runs ``history`` selects (same filters) as lists of ``RUN_FIELDS`` values, times as UTC ISO text,
        read as the runner sends them: memory stays flat however many there are."""
        return self.stream("history", format="chunks", **self._history_args(filters))

    def run_counts(self, minutes: int = 60) -> dict:
        """Runs per minute and status over the last ``minutes``: ``{"start": the first minute (in the user's
        zone), "minutes": N, "counts": {status: [N counts, oldest first]}}``."""
        result = self.call("run_counts", minutes=minutes)
        return {**result, "start": frames.local_time(result["start"], self.tz)}

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

    def logs(self, run_id: int, after: int = 0, wait: float = 0.0) -> dict:
        """The run's log lines after the first ``after``, waiting up to ``wait`` seconds for some while it runs:
        ``{"lines", "next" (the offset to ask from next), "done" (it has ended), "status", ...}``."""
        result = self.call("logs", _timeout=wait + 10, run_id=run_id, after=after, wait=wait)
        result["lines"] = frames.local_log_lines(result["lines"], self.tz)
        return result

    def follow(self, run_id: int) -> Iterator[str]:
        """The run's log lines as they are written, until it ends (``client.run(run_id)`` then tells how)."""
        from .follow import follow_lines

        return follow_lines(self, run_id)

    def import_crontab(self, path, dry_run: bool = False):
        """Create jobs of a crontab's notebook and Python script lines; see ``nbsched.client.importing``."""
        from .importing import import_crontab

        return import_crontab(self, path, dry_run)

    def import_jupyter_scheduler(self, db=None, dry_run: bool = False, staging=None, root_dir=None):
        """Create notebook jobs of jupyter-scheduler's job definitions (its SQLite database ``db``)."""
        from .importing import import_jupyter_scheduler

        return import_jupyter_scheduler(self, db, dry_run, staging, root_dir)

    @property
    def tz(self) -> str:
        return self.settings.timezone


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
def _extras_list(extras: Iterable[Any]) -> list:
    """The extras of an ``invoke_many`` as a list, refused here when they are not a list or one request cannot hold
    them (the runner would only say the request is too large)."""
    if isinstance(extras, str | bytes | dict) or not isinstance(extras, Iterable):
        raise InvalidInput(
            f"invoke_many needs a list with one extra per run, e.g. [{{'day': 1}}, {{'day': 2}}]; "
            f"got {type(extras).__name__}.",
            field="extras",
        )
    extras = list(extras)
    try:
        size = len(protocol.dumps(extras))
    except (TypeError, ValueError):  # not JSON: ``call`` says so, as for any request
        size = 0
    if size > config.MAX_REQUEST_BYTES - 4096:  # what the rest of the request takes, and more
        raise InvalidInput(
            f"The {len(extras):,} extras take {size:,} bytes, more than one request to the runner holds "
            f"({config.MAX_REQUEST_BYTES:,}); invoke them in smaller lists.",
            field="extras",
        )
    return extras


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
