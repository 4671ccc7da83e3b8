"""The pipe between the runner and a worker: its frames, its version, and the typed messages both ends send.

A frame is a 4-byte big-endian length and a pickle (protocol 5) of one message. The runner writes ``Sources``,
``Connections``, ``Runs``, ``Cancel``, ``Lease``, ``Warm`` and ``KeepSpares`` to the worker's stdin; the worker
answers on its stdout with ``Ready`` (once, when it has started), ``Results``, ``Bounced``, ``Cancelled`` and
``Logs`` (the lines a run in hand has logged so far, sent while it runs: live logs).
Each end tells messages apart by their class. A batch of runs or of results travels as plain
tuples, one per run (``Runs`` and ``Results`` pickle as rows): a run costs the pipe well under a
microsecond at either end.

The pipe is versioned: the runner starts a worker with ``VERSION`` on its command line and the
worker refuses another one (``check_version``, exit code ``EXIT_MISMATCH``); ``Ready`` carries the
worker's version back. A runner left running while nbsched is upgraded thus gets a clear error,
not workers that misread its messages.
"""

from __future__ import annotations

import pickle
import struct
import sys
from dataclasses import dataclass, fields
from itertools import starmap
from operator import attrgetter
from typing import Any, BinaryIO

#: The version of this protocol: change it with any change to the frames or the messages.
VERSION = 4
#: The exit code of a worker started for another version of the pipe.
EXIT_MISMATCH = 78  # EX_CONFIG
PICKLE_PROTOCOL = 5
HEADER = struct.Struct("!I")  # the length of the pickle that follows
# The protocol's own references: a service that patches pickle does not break the worker's reports.
_dumps, _loads = pickle.dumps, pickle.loads


# -- runner -> worker ------------------------------------------------------------------------------


@dataclass(slots=True)
class RunMessage:
    """One run for a worker: which service, with what, and when.

    ``not_before`` (epoch seconds, 0 for "now") holds a run handed over ahead of its time until then.
    ``exclusive`` and ``isolation`` are for the pool: an exclusive run (it may be killed: a timeout,
    overlap=replace) has its worker to itself; ``isolation="process"`` gets a fresh worker, retired after.
    """

    run_id: int
    cid: str
    service: str
    channel: str = "invoke"
    extra: Any = None
    job: tuple[str, str, int] | None = None  # the job's name, type and the number of this fire
    scheduled_at: float = 0.0
    not_before: float = 0.0
    exclusive: bool = False
    isolation: str = "worker"


@dataclass(slots=True)
class Runs:
    """Runs for the worker to run in order (one frame for the runs of one hand-over)."""

    runs: list[RunMessage]

    def __reduce__(self):
        return _runs_from_rows, (list(map(_run_row, self.runs)),)


@dataclass(slots=True)
class Sources:
    """The deployed sources the worker does not have yet (version -> (origin, text)), and every
    deployed service (name -> (version, class name))."""

    sources: dict[str, tuple[str, str]]
    services: dict[str, tuple[str, str]]


@dataclass(slots=True)
class Connections:
    """The connection definitions (name -> {kind, definition}), sent when they change."""

    definitions: dict[str, dict]


@dataclass(slots=True)
class Cancel:
    """Give back the run ``run_id`` if it has not started (the worker answers ``Cancelled``)."""

    run_id: int


@dataclass(slots=True)
class Lease:
    """Until when (epoch seconds) the runner's lease on a shared store surely holds: past it, the worker starts
    no run (another runner may have taken them over) until a later ``Lease`` comes, or the runs are cancelled.
    A runner of a store of its own sends none: its workers start runs whenever they are due."""

    valid_until: float


@dataclass(slots=True)
class Warm:
    """A job of the notebook service ``service`` is scheduled: boot a kernel for its next run now (a spare),
    so that its fire does not wait for one. Nothing for other services."""

    service: str


@dataclass(slots=True)
class KeepSpares:
    """The notebook services that have an active job now: the worker keeps spare kernels for their kernels and
    folders only, and shuts the others' down (a job deleted or paused no longer holds a booted kernel)."""

    services: list[str]


# -- worker -> runner ------------------------------------------------------------------------------


@dataclass(slots=True)
class Ready:
    """The worker has started and warmed up: it takes runs from now on."""

    pid: int
    version: int = VERSION


@dataclass(slots=True)
class Result:
    """How a run ended. Times are epoch seconds; ``started_at`` is None for a run that never began."""

    run_id: int
    status: str
    error: str | None = None
    traceback: str | None = None
    output: str | None = None
    logs: str = ""
    started_at: float | None = None
    finished_at: float | None = None


@dataclass(slots=True)
class Results:
    """The results of runs that ended, in the order they ran (several when runs come due together)."""

    results: list[Result]

    def __reduce__(self):
        return _results_from_rows, (list(map(_result_row, self.results)),)


@dataclass(slots=True)
class Bounced:
    """Runs given back unstarted because the run in hand is slow: the runner hands them to other workers."""

    run_ids: list[int]


@dataclass(slots=True)
class Cancelled:
    """The run ``run_id`` was given back unstarted, as asked by ``Cancel``."""

    run_id: int


@dataclass(slots=True)
class Logs:
    """Lines the run ``run_id`` logged since the last ``Logs`` of it, sent while it runs (at most every
    ``config.LIVE_LOG_SECONDS``, and only when it logged something); its ``Result`` still carries all its logs.
    ``lines`` are physical lines (no newline in them), masked as the result's logs are, and cut when very long;
    ``first`` is the number of the run's lines before them (more than were sent when a batch was cut short)."""

    run_id: int
    first: int
    lines: list[str]


_run_row = attrgetter(*(f.name for f in fields(RunMessage)))
_result_row = attrgetter(*(f.name for f in fields(Result)))


def _runs_from_rows(rows: list[tuple]) -> Runs:
    return Runs(list(starmap(RunMessage, rows)))


def _results_from_rows(rows: list[tuple]) -> Results:
    return Results(list(starmap(Result, rows)))


# -- frames ----------------------------------------------------------------------------------------


def encode(message: Any) -> bytes:
    """One frame: the header and the pickled message."""
    data = _dumps(message, protocol=PICKLE_PROTOCOL)
    return HEADER.pack(len(data)) + data


def write(stream: BinaryIO, message: Any) -> None:
    stream.write(encode(message))
    stream.flush()


def read(stream: BinaryIO) -> Any | None:
    """The next message on a blocking stream; None when the stream ends."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    (size,) = HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        return None
    return _loads(data)


async def receive(reader) -> Any:
    """The next message on an ``asyncio.StreamReader``; raises ``asyncio.IncompleteReadError`` at its end."""
    (size,) = HEADER.unpack(await reader.readexactly(HEADER.size))
    return _loads(await reader.readexactly(size))


# -- version ---------------------------------------------------------------------------------------


def worker_arguments() -> list[str]:
    """The command-line arguments after ``python -m nbsched.worker``: the runner's version of the pipe."""
    return [str(VERSION)]


def check_version(arguments: list[str]) -> None:
    """At worker start: exit with a clear message unless the runner speaks this version of the pipe."""
    if arguments == worker_arguments():
        return
    theirs = arguments[0] if arguments else "none"
    sys.stderr.write(
        f"nbsched worker: the runner speaks pipe protocol {theirs}, this worker {VERSION}: nbsched was "
        "installed again since the runner started, or the worker was started by hand. Restart the runner "
        "(nbsched runner stop; nbsched runner start); workers are started by the runner only.\n"
    )
    sys.exit(EXIT_MISMATCH)
