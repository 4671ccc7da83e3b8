"""The storage contract, written once. Every store (SQLite now, Redis for sharing) implements it.

A store keeps four things: service sources, jobs (spec + state), runs (the history) and
outgoing connections. Times are aware datetimes in UTC on the Python side.

The one operation with a hard guarantee is ``claim``: a fire ``(job uid, scheduled_at)``
becomes a run at most once, whatever restarts or second runners happen, because the
store checks the job's ``next_fire`` (compare-and-set) and a unique key on the fire in
the same atomic step that advances the job.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime

from ..model.jobs import JobSpec, JobState
from ..model.runs import RUN_FIELDS


@dataclass
class StoredJob:
    """A job as the store holds it: a stable uid, the user's spec, and the firing state."""

    uid: str
    spec: JobSpec
    state: JobState


@dataclass
class Claim:
    """A request to turn one fire into a run, advancing the job in the same step."""

    job_uid: str
    expected_next: datetime | None  # the job's next_fire the claimer saw (compare-and-set)
    new_next: datetime | None  # the job's next_fire after this claim
    fires: int  # the job's fire count after this claim
    runs: list[dict] = field(default_factory=list)  # the run rows to create (RUN_FIELDS, no run_id)


@dataclass(frozen=True)
class PendingRetry:
    """A failed run whose next attempt waits for its time: stored, so that a restart does not lose it."""

    run_id: int  # the failed run
    job: str | None
    service: str
    attempt: int  # the failed run's attempt; the retry is attempt + 1
    retries: int  # how many retries the job allows
    scheduled_at: datetime  # the fire both attempts belong to
    due_at: datetime  # when the next attempt starts
    channel: str


class Store(ABC):
    """Where services, jobs, runs and connections live."""

    # -- services ---------------------------------------------------------------
    @abstractmethod
    def save_source(self, version: str, origin: str, source: str, services: dict[str, str], now: datetime) -> None:
        """Store one deployed source unit and point each ``name -> class name`` in ``services`` at it."""

    @abstractmethod
    def services(self) -> list[dict]:
        """Deployed services: name, version, class_name, origin, deployed_at."""

    @abstractmethod
    def sources(self, versions: list[str] | None = None) -> dict[str, str]:
        """Source text by version (all current ones when ``versions`` is None)."""

    # -- jobs -------------------------------------------------------------------
    @abstractmethod
    def add_job(self, job: StoredJob) -> None:
        """Add a new job; raise ``JobExists`` if the name is taken (nothing stored then)."""

    @abstractmethod
    def save_job(self, job: StoredJob) -> None:
        """Replace an existing job's spec and state (matched by name)."""

    @abstractmethod
    def delete_job(self, name: str) -> bool:
        """Delete a job; its runs stay in history. Return whether it existed."""

    @abstractmethod
    def job(self, name: str) -> StoredJob | None:
        """One job by name."""

    @abstractmethod
    def jobs(self) -> list[StoredJob]:
        """All jobs, by name."""

    # -- runs -------------------------------------------------------------------
    @abstractmethod
    def claim(self, claims: list[Claim]) -> list[list[int] | None]:
        """Atomically advance each job and record its runs; per claim, the run ids (None if lost)."""

    @abstractmethod
    def job_stats(self) -> dict[str, dict]:
        """Per job name: ``runs`` (history rows), ``last_run`` (time) and ``last_status``."""

    @abstractmethod
    def add_runs(self, runs: list[dict], retried: list[int] = ()) -> list[int]:
        """Record runs not tied to a claim (manual, invoke, retry, skipped); return their ids.

        ``retried``: the failed runs whose pending retries these runs are; their ``PendingRetry`` records
        are deleted in the same atomic step, so a retry is neither lost nor run twice across a restart.
        """

    @abstractmethod
    def update_runs(self, updates: list[dict], retries: list[PendingRetry] = ()) -> None:
        """Apply field updates, each a dict with ``run_id`` and the fields that changed, and record
        ``retries`` in the same atomic step.

        Text that is not valid UTF-8 (a lone surrogate, as ``os.listdir`` returns for a file name that
        is not UTF-8) or a value the store cannot hold is stored in a safe form (``safe_value``); an
        update is never dropped for its content. A store that cannot be written raises ``StoreError``
        and changes nothing: the caller keeps the updates and tries again.
        """

    @abstractmethod
    def pending_retries(self) -> list[PendingRetry]:
        """The retries recorded by ``update_runs`` and not yet started (by ``add_runs``), soonest first."""

    @abstractmethod
    def run(self, run_id: int) -> dict | None:
        """Every field of one run."""

    @abstractmethod
    def runs(
        self,
        job: str | None = None,
        service: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
        limit: int | None = None,
        fields: tuple[str, ...] = RUN_FIELDS,
        times_as_text: bool = False,
        due_by: datetime | None = None,
    ) -> list[tuple]:
        """Runs, newest first, as tuples in the order of ``fields``.

        With ``times_as_text`` a store may return the time fields as UTC ISO 8601 text (the form
        the wire carries) instead of datetimes, so a large listing skips a parse and a format per value.
        With ``due_by``, runs claimed ahead of their time (``running`` and scheduled after it) are left out.
        """

    @abstractmethod
    def interrupt_running(self, now: datetime, runner: str | None = None) -> int:
        """Mark runs still ``running`` (of ``runner``, or all) as ``interrupted``; return how many."""

    # -- connections --------------------------------------------------------------
    @abstractmethod
    def save_connection(self, name: str, kind: str, definition: dict, now: datetime) -> None:
        """Add or replace an outgoing connection."""

    @abstractmethod
    def connections(self) -> list[dict]:
        """All connections: name, kind, definition, updated_at."""

    @abstractmethod
    def delete_connection(self, name: str) -> bool:
        """Delete a connection; return whether it existed."""

    def runs_table(self, **query) -> bytearray:
        """Runs as ``runs`` selects them, as one Arrow IPC stream (the columns of ``RUN_FIELDS``).

        Times are UTC timestamps; for a DataFrame of many runs this is several times faster
        than rows of JSON. This default builds the table from ``runs``; a store may read its
        rows straight into Arrow.
        """
        return arrow_stream(rows_table(self.runs(**query, times_as_text=True)))

    def refresh_caches(self) -> None:  # noqa: B027 - optional for stores without caches
        """Bring what the store keeps to read faster up to date; the runner calls it now and then, in a thread."""

    def reader(self) -> Store:
        """A store for one long read in another thread (history of many runs); close it when done.

        Stores whose connections are safe to share across threads may return themselves.
        """
        return self

    def close(self) -> None:  # noqa: B027 - optional for stores without resources
        """Release what the store holds."""

    def check(self) -> None:  # noqa: B027 - optional for stores without a file of their own
        """Raise ``StoreGone`` when the store is no longer the one opened (its file deleted or replaced).

        Writing on would put every later job, run and result where no runner will ever read them again.
        """


_SURROGATE = re.compile("[\ud800-\udfff]")


def safe_text(text: str) -> str:
    """``text`` as valid UTF-8: each lone surrogate written as a backslash escape, ``\\xe9`` for the byte 0xE9
    that Python's surrogateescape kept from a file name that is not UTF-8, ``\\ud800`` for any other."""
    return _SURROGATE.sub(_escaped_surrogate, text)


def _escaped_surrogate(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def safe_value(value):
    """``value`` in a form any store can hold: text as valid UTF-8 (``safe_text``), bytes decoded with backslash
    escapes, whole numbers beyond 64 bits and other objects as text; None, numbers and datetimes as they are."""
    if value is None or isinstance(value, float | bool | datetime):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "backslashreplace")
    return safe_text(value if isinstance(value, str) else str(value))


#: The Arrow type of each run field in a runs table (times are cast from their ISO text).
RUN_ARROW_TYPES = {
    "run_id": "int64",
    "attempt": "int64",
    "delay_ms": "float64",
    "duration_ms": "float64",
    "scheduled_at": "timestamp",
    "started_at": "timestamp",
    "finished_at": "timestamp",
}
#: Text columns with few distinct values: sent dictionary-encoded (a small index per row).
RUN_REPEATED_TEXT = ("job", "service", "service_version", "trigger", "status", "runner")


def rows_table(rows: list[tuple]):
    """Rows of ``RUN_FIELDS`` values (times as ISO text) as an Arrow table, its columns typed as found."""
    import pyarrow as pa

    columns = list(zip(*rows, strict=True)) if rows else [()] * len(RUN_FIELDS)
    return pa.table({name: pa.array(list(values)) for name, values in zip(RUN_FIELDS, columns, strict=True)})


def typed_runs(table, encode: bool = True):
    """``table``'s run columns typed as ``RUN_ARROW_TYPES`` says (repeated text dictionary-encoded
    when ``encode``: parts to be concatenated later are typed without it)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = []
    for name in RUN_FIELDS:
        column = table.column(name)
        kind = RUN_ARROW_TYPES.get(name, "string")
        if kind == "timestamp":
            if not pa.types.is_timestamp(column.type):
                column = pc.cast(column.cast(pa.string()), pa.timestamp("us", tz="UTC"))
        else:
            column = column.cast(kind)  # an all-NULL column may come typed as anything
            if encode and name in RUN_REPEATED_TEXT:
                column = pc.dictionary_encode(column)
        columns.append(column)
    return pa.table(columns, names=list(RUN_FIELDS))


def arrow_stream(table) -> bytearray:
    """``table`` with the run columns typed as ``RUN_ARROW_TYPES`` says, as Arrow IPC stream bytes."""
    import pyarrow as pa

    typed = typed_runs(table).combine_chunks()
    # Measure, then write into one buffer of the right size: a growing stream copies it several times.
    mock = pa.MockOutputStream()
    with pa.ipc.new_stream(mock, typed.schema) as writer:
        writer.write_table(typed)
    data = bytearray(mock.size())
    with pa.ipc.new_stream(pa.FixedSizeBufferWriter(pa.py_buffer(data)), typed.schema) as writer:
        writer.write_table(typed)
    return data
