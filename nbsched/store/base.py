"""The storage contract, written once: the abstract ``Store`` and the records it takes and gives.

Every store (SQLite, memory, PostgreSQL to share) implements it, and one test suite
(``tests/test_store.py``) runs against each. A store keeps four things: service sources, jobs
(spec + state), runs (the history) and outgoing connections. Times are aware datetimes in UTC
on the Python side; how a store writes them down is its own business.

The one operation with a hard guarantee is ``claim``: a fire ``(job uid, scheduled_at)``
becomes a run at most once, whatever restarts or second runners happen, because the
store checks the job's ``next_fire`` (compare-and-set) and a unique key on the fire in
the same atomic step that advances the job.

Run history is read two ways: ``runs`` gives typed rows for the runner's own use, and
``history`` gives a ``History`` reader (``store/history``) that shapes a listing as the wire
carries it, JSON rows or an Arrow stream; a store may give one that reads its history faster.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from ..model.jobs import JobSpec, JobState
from ..model.runs import NewRun, RunUpdate

if TYPE_CHECKING:
    from .history import History


@dataclass(slots=True)
class StoredJob:
    """A job as the store holds it: a stable uid, the user's spec, and the firing state (slotted: one per job)."""

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
    runs: list[NewRun] = field(default_factory=list)  # the runs to create


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


@dataclass(frozen=True)
class RunQuery:
    """Which runs a history listing selects: every filter given must match; newest (highest run id) first."""

    job: str | None = None
    job_uid: str | None = None  # the runs of one job by its own identity (a name may have had several jobs)
    service: str | None = None
    status: str | None = None
    since: datetime | None = None  # started at or after this (a run not started: scheduled at or after it)
    limit: int | None = None  # at most this many, the newest
    offset: int = 0  # after skipping this many, the newest (a page further down the listing)
    #: The time of the listing: a run claimed ahead of it (still ``running`` and scheduled after it) is left
    #: out, because as of then it has not happened yet. None: every run.
    as_of: datetime | None = None


@dataclass(frozen=True)
class Purge:
    """Which finished runs ``Store.delete_runs`` deletes: every filter given must match; a run still ``running``
    is never selected."""

    job: str | None = None
    job_uid: str | None = None
    before: datetime | None = None  # finished before this (a run with no finish time: scheduled before it)
    keep: int | None = None  # of the runs the filters select, all but the newest ``keep`` (by run id)


@dataclass(frozen=True)
class DeletedRun:
    """A run ``Store.delete_runs`` deleted: what it takes to delete the files that belonged to it."""

    run_id: int
    job: str | None
    output: str | None


@dataclass
class TakeOver:
    """What ``Store.take_over`` did: the runners whose leases had expired, and their runs it changed."""

    dead: list[str] = field(default_factory=list)  # the runners taken over
    interrupted: list[dict] = field(default_factory=list)  # their runs due by then: now ``interrupted`` (records)
    reassigned: list[dict] = field(default_factory=list)  # their runs due later: now the taker's (records)


class Store(ABC):
    """Where services, jobs, runs and connections live.

    A run is a dict of the fields of ``model.runs.RUN_FIELDS``: a store gives back every field (None where
    nothing was recorded) with the value it was given, times as aware UTC datetimes. Each write is atomic:
    it happens whole or, raising, not at all.

    A ``shared`` store (PostgreSQL) may be used by several runners at once: each holds a lease (``lease``),
    its writes of runs are fenced by it (``set_fence``), the runs of a runner whose lease expired are taken
    over (``take_over``), and changes are announced to the others (``publish``, ``subscribe``). For a store
    of one runner (SQLite, memory) these do nothing.
    """

    #: Whether several runners may use the store at once (and so need leases, fences and notifications).
    shared: bool = False

    # -- services ---------------------------------------------------------------
    @abstractmethod
    def save_source(self, version: str, origin: str, source: str, services: dict[str, str], now: datetime) -> None:
        """Store one deployed source unit and point each ``name -> class name`` in ``services`` at it.

        A version stored before keeps its first source, origin and time; the services move to it anyway.
        """

    @abstractmethod
    def services(self) -> list[dict]:
        """Deployed services, by name: name, version, class_name, origin, deployed_at (UTC ISO 8601 text)."""

    @abstractmethod
    def sources(self, versions: list[str] | None = None) -> dict[str, str]:
        """Source text by version: of ``versions`` (those stored), or, when None, of the versions services use."""

    # -- jobs -------------------------------------------------------------------
    @abstractmethod
    def add_job(self, job: StoredJob) -> None:
        """Add a new job; raise ``JobExists`` if the name is taken (nothing stored then)."""

    @abstractmethod
    def save_job(self, job: StoredJob) -> None:
        """Replace an existing job's spec and state (the job with ``job.uid``; none such: nothing happens)."""

    @abstractmethod
    def delete_job(self, name: str) -> bool:
        """Delete a job; its runs stay in history. Return whether it existed."""

    @abstractmethod
    def job(self, name: str) -> StoredJob | None:
        """One job by name: a copy, which the caller may change without changing the store."""

    @abstractmethod
    def jobs(self) -> list[StoredJob]:
        """All jobs, by name (copies, as ``job`` gives)."""

    # -- runs -------------------------------------------------------------------
    @abstractmethod
    def claim(self, claims: list[Claim]) -> list[list[int] | None]:
        """Atomically advance each job and record its runs; per claim, the new run ids, or None if it lost.

        Each claim wins or loses on its own, whole: it loses when its job's ``next_fire`` is no longer
        ``expected_next`` (or the job is gone), or when one of its runs would be a second run of a fire,
        that is, a run with ``attempt`` 1 and a trigger of ``CLAIMED_TRIGGERS`` whose ``(job uid,
        scheduled_at, trigger)`` a run has already. A claim that wins sets the job's ``next_fire`` and
        ``fires`` and, when it has runs, its ``last_fire`` to their latest ``scheduled_at``.
        """

    @abstractmethod
    def job_stats(self) -> dict[str, dict]:
        """Per job uid with runs (of a job: ``job`` set): ``runs`` (how many), and of its newest run ``last_status``
        and ``last_run`` (when it started, or, not started, was scheduled). The runs of a deleted job stay its
        own: a new job made under its name starts with none."""

    @abstractmethod
    def add_runs(self, runs: list[NewRun], retried: list[int] = ()) -> list[int]:
        """Record runs not tied to a claim (manual, invoke, retry, skipped); return their ids, each higher
        than any run's before.

        ``retried``: the failed runs whose pending retries these runs are; their ``PendingRetry`` records
        are deleted in the same atomic step, so a retry is neither lost nor run twice across a restart. On a
        shared store, a retry another runner started already raises ``RetryStarted`` and records nothing.
        """

    @abstractmethod
    def update_runs(self, updates: list[RunUpdate], retries: list[PendingRetry] = ()) -> None:
        """Apply run updates (``run_id`` and the fields that changed), and record
        ``retries`` in the same atomic step (a retry of a run that has one replaces it).

        Text that is not valid UTF-8 (a lone surrogate, as ``os.listdir`` returns for a file name that
        is not UTF-8) or a value the store cannot hold is stored in a safe form (``store.safe.safe_value``);
        an update is never dropped for its content. A store that cannot be written raises ``StoreError``
        and changes nothing: the caller keeps the updates and tries again.
        """

    @abstractmethod
    def pending_retries(self) -> list[PendingRetry]:
        """The retries recorded by ``update_runs`` and not yet started (by ``add_runs``), soonest first."""

    @abstractmethod
    def run(self, run_id: int) -> dict | None:
        """Every field of one run (None when there is no such run)."""

    @abstractmethod
    def runs(self, query: RunQuery | None = None) -> list[tuple]:
        """The runs ``query`` selects (None: all), newest first, each a tuple of its ``RUN_FIELDS`` values in that order
        (times as aware UTC datetimes). For listings to send, see ``history``."""

    @abstractmethod
    def delete_runs(self, purge: Purge, limit: int) -> list[DeletedRun]:
        """Delete up to ``limit`` of the finished runs ``purge`` selects, oldest (lowest run id) first, in one
        atomic step, and return them; call again until fewer than ``limit`` come back. Each step holds the store's
        write lock briefly (a small ``limit`` keeps claims from waiting). The runs' fires stay claimed."""

    @abstractmethod
    def interrupt_running(self, now: datetime, runner: str | None = None) -> int:
        """Mark runs still ``running`` (of ``runner``, or all) as ``interrupted``, finished ``now`` with an
        error that says the runner stopped; return how many."""

    # -- connections --------------------------------------------------------------
    @abstractmethod
    def save_connection(self, name: str, kind: str, definition: dict, now: datetime) -> None:
        """Add or replace an outgoing connection (``definition``: JSON-safe values)."""

    @abstractmethod
    def connections(self) -> list[dict]:
        """All connections, by name: name, kind, definition, updated_at."""

    @abstractmethod
    def delete_connection(self, name: str) -> bool:
        """Delete a connection; return whether it existed."""

    # -- several runners (a ``shared`` store) --------------------------------------
    def lease(self, runner: str, token: int | None, seconds: float) -> int:
        """Take (``token`` None) or renew ``runner``'s lease, to expire ``seconds`` after now by the store's clock;
        return its token, a new one higher than any before when taken.

        Renewing a lease that expired or was taken over raises ``Fenced``. A store of one runner returns 1.
        """
        return 1

    def release_lease(self, runner: str, token: int) -> None:  # noqa: B027 - optional for stores of one runner
        """Give up ``runner``'s lease (a clean stop), if it still has ``token``: it expires now, so that another
        runner takes over the runs it leaves."""

    def runners(self) -> list[str]:
        """The runners whose leases have not expired, by name. A store of one runner has no leases: none."""
        return []

    def set_fence(self, runner: str | None, token: int | None) -> None:  # noqa: B027 - optional, as above
        """From now on, every write of runs by this store object (``claim``, ``add_runs``, ``update_runs``,
        ``interrupt_running``, ``take_over``) first checks, in the same transaction, that ``runner``'s lease still
        has ``token`` and has not expired, and otherwise raises ``Fenced`` and writes nothing. None: no check."""

    def take_over(self, by: str, now: datetime) -> TakeOver:
        """Take over every runner whose lease expired, each by one taker only: its runs still running and due by
        ``now`` become ``interrupted`` (finished ``now``), those due later become ``by``'s, and its lease is
        deleted. A store of one runner has no leases: nothing to take over."""
        return TakeOver()

    def publish(self, message: str) -> None:  # noqa: B027 - optional for stores of one runner
        """Announce a change (a short text) to every ``subscribe``r of this store, in any process."""

    def subscribe(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call ``callback(message)`` in a thread of its own for each message published (and ``"*reload"`` when
        messages may have been missed: reload everything); return the function that stops it."""
        return _no_op

    # -- copying a store ------------------------------------------------------------
    def load_runs(self, runs: list[dict]) -> None:
        """Record runs copied from another store, with their own ``run_id`` (and ``job_uid`` when given); runs
        recorded later get higher ids than all of them. For ``nbsched store copy``, into a store without runs."""
        raise NotImplementedError(f"{type(self).__name__} cannot take copied runs.")

    # -- optional ---------------------------------------------------------------
    def history(self) -> History:
        """A reader of run history, for one long read in any thread (``with store.history() as history``):
        listings as the wire carries them, and the caches that make long ones fast. Close it when done.

        This default reads through ``runs``; a store may return one that reads its history faster.
        """
        from .history import History

        return History(self)

    def close(self) -> None:  # noqa: B027 - optional for stores without resources
        """Release what the store holds."""

    def check(self) -> None:  # noqa: B027 - optional for stores without a file of their own
        """Raise ``StoreGone`` when the store is no longer the one opened (its file deleted or replaced).

        Writing on would put every later job, run and result where no runner will ever read them again.
        """


def _no_op() -> None:
    """What stops a subscription that never started."""
