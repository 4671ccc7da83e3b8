"""The PostgreSQL store's base: its connection and transactions, and what several runners share a store by.

Leases (``lease``, ``release_lease``): each runner keeps a row with a token, renewed before it expires by the
database's clock. The fence (``set_fence``): every write of runs checks, in its own transaction, that the
writer's lease row still has its token and has not expired, holding the row ``FOR SHARE`` meanwhile, so that
a runner that comes back late cannot record over its successor. ``take_over``: the runs of runners whose
leases expired, interrupted or handed over. ``publish``/``subscribe``: NOTIFY/LISTEN on one channel per schema.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from datetime import datetime

from ..errors import Fenced, StoreError
from .base import Store, TakeOver
from .history.postgres import Readers
from .postgres_schema import SELECT_RUN_FIELDS, run_record
from .postgres_url import PgLocation, connect, masked_reason

log = logging.getLogger(__name__)
#: Seconds a listener waits for a notification before it looks whether it was stopped.
LISTEN_POLL_SECONDS = 0.2
#: The longest wait between two attempts of a listener to connect again.
LISTEN_RETRY_MAX_SECONDS = 5.0

_EXPIRES = "clock_timestamp() + make_interval(secs => %s)"
TAKE_LEASE = (
    f"INSERT INTO leases VALUES (%s, nextval('lease_tokens'), {_EXPIRES}) "
    "ON CONFLICT (runner) DO UPDATE SET token=EXCLUDED.token, expires_at=EXCLUDED.expires_at RETURNING token"
)
RENEW_LEASE = (
    f"UPDATE leases SET expires_at = {_EXPIRES} "
    "WHERE runner=%s AND token=%s AND expires_at > clock_timestamp() RETURNING token"
)
FENCE = "SELECT 1 FROM leases WHERE runner=%s AND token=%s AND expires_at > clock_timestamp() FOR SHARE"
# SKIP LOCKED: a lease row another survivor is taking over (or a fenced write holds) is left to it, so that two
# survivors never both take over one runner.
EXPIRED_LEASES = (
    "SELECT runner FROM leases WHERE expires_at <= clock_timestamp() ORDER BY runner FOR UPDATE SKIP LOCKED"
)
INTERRUPT_DEAD = (
    "UPDATE runs SET status='interrupted', finished_at=%s, "
    "error='The runner ' || runner || ' stopped renewing its lease while this run was executing.' "
    "WHERE status='running' AND runner = ANY(%s) AND (scheduled_at IS NULL OR scheduled_at <= %s) "
    f"RETURNING {SELECT_RUN_FIELDS}"
)
REASSIGN_DEAD = (
    "UPDATE runs SET runner=%s WHERE status='running' AND runner = ANY(%s) AND scheduled_at > %s "
    f"RETURNING {SELECT_RUN_FIELDS}"
)


class SharedStore(Store):
    """A store on one connection to ``location`` (reconnected when lost), one call at a time, with leases."""

    def __init__(self, location: PgLocation):
        self.location = location
        self._lock = threading.RLock()
        self._fence: tuple[str, int] | None = None
        self._listeners: list[Listener] = []
        self.readers = Readers(location)
        self.db = connect(location)

    # -- connection and transactions ----------------------------------------------------
    def _connection(self):
        if self.db.closed or self.db.broken:
            self.db.close()
            self.db = connect(self.location)
        return self.db

    @contextlib.contextmanager
    def _tx(self, fenced: bool = False):
        """One transaction on the store's connection (``fenced``: the fence checked first, in it)."""
        import psycopg

        with self._lock:
            db = self._connection()
            try:
                with db.transaction():
                    if fenced:
                        self._check_fence(db)
                    yield db
            except (psycopg.OperationalError, psycopg.InterfaceError, psycopg.errors.InternalError_) as exc:
                raise self._failed(exc) from exc

    def _fetch(self, sql: str, params=()) -> list[tuple]:
        with self._tx() as db:
            return db.execute(sql, params).fetchall()

    def _failed(self, exc: Exception) -> StoreError:
        return StoreError(
            f"The PostgreSQL store at {self.location.where} could not be used ({masked_reason(self.location, exc)}); "
            "nothing was changed. Try again once the server answers."
        )

    def close(self) -> None:
        for listener in list(self._listeners):
            listener.stop()
        self.readers.close()
        with self._lock:
            self.db.close()

    # -- leases and the fence --------------------------------------------------------------
    def lease(self, runner: str, token: int | None, seconds: float) -> int:
        with self._tx() as db:
            if token is None:
                row = db.execute(TAKE_LEASE, [runner, float(seconds)]).fetchone()
            else:
                row = db.execute(RENEW_LEASE, [float(seconds), runner, token]).fetchone()
        if row is None:
            raise Fenced(self._lost_lease(runner, token))
        return row[0]

    def release_lease(self, runner: str, token: int) -> None:
        """Expire the lease now: the next runner that looks takes over what the stopping runner leaves (the
        runs it claimed ahead of their time start there)."""
        with self._tx() as db:
            db.execute("UPDATE leases SET expires_at = clock_timestamp() WHERE runner=%s AND token=%s", [runner, token])

    def runners(self) -> list[str]:
        with self._tx() as db:
            rows = db.execute("SELECT runner FROM leases WHERE expires_at > clock_timestamp() ORDER BY runner")
            return [runner for (runner,) in rows.fetchall()]

    def set_fence(self, runner: str | None, token: int | None) -> None:
        self._fence = None if runner is None or token is None else (runner, token)

    def _check_fence(self, db) -> None:
        if self._fence is not None and db.execute(FENCE, list(self._fence)).fetchone() is None:
            raise Fenced(self._lost_lease(*self._fence))

    def _lost_lease(self, runner: str, token: int | None) -> str:
        return (
            f"The runner {runner} lost its lease (token {token}) on the PostgreSQL store at {self.location.where}: "
            "it expired or another runner took over its runs, so nothing more is recorded under it; the runner "
            "takes a new lease and reads every job again by itself."
        )

    def take_over(self, by: str, now: datetime) -> TakeOver:
        with self._tx(fenced=True) as db:
            dead = [runner for (runner,) in db.execute(EXPIRED_LEASES).fetchall()]
            if not dead:
                return TakeOver()
            interrupted = db.execute(INTERRUPT_DEAD, [now, dead, now]).fetchall()
            reassigned = db.execute(REASSIGN_DEAD, [by, dead, now]).fetchall()
            db.execute("DELETE FROM leases WHERE runner = ANY(%s)", [dead])
        log.warning("took over runner(s) %s: their leases expired", ", ".join(dead))
        return TakeOver(dead, _records(interrupted), _records(reassigned))

    # -- notifications -------------------------------------------------------------------
    def publish(self, message: str) -> None:
        with self._tx() as db:
            db.execute("SELECT pg_notify(%s, %s)", [self.location.channel, message])

    def subscribe(self, callback: Callable[[str], None]) -> Callable[[], None]:
        listener = Listener(self.location, callback, self._listeners.remove)
        self._listeners.append(listener)
        listener.start()
        return listener.stop


def _records(rows: list[tuple]) -> list[dict]:
    return [run_record(row) for row in sorted(rows)]


class Listener:
    """A thread with a connection of its own that LISTENs on a store's channel and calls ``callback(payload)``.

    When its connection drops, it connects again (waiting longer each time it fails) and calls
    ``callback("*reload")``: notifications sent meanwhile were lost, so the caller reloads everything.
    """

    def __init__(self, location: PgLocation, callback: Callable[[str], None], forget: Callable[[Listener], None]):
        self.location = location
        self.callback = callback
        self._forget = forget
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"nbsched-listen-{location.schema}", daemon=True)
        self.db = None

    def start(self) -> None:
        self.db = self._listen()  # here, not in the thread: once subscribe returns, nothing published is missed
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and close its connection (again: nothing)."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._thread.join(timeout=10 * LISTEN_POLL_SECONDS)
        if self.db is not None:
            self.db.close()
        with contextlib.suppress(ValueError):
            self._forget(self)

    def _listen(self):
        db = connect(self.location)
        db.execute(f'LISTEN "{self.location.channel}"')
        return db

    def _run(self) -> None:
        import psycopg

        while not self._stopped.is_set():
            try:
                for note in self.db.notifies(timeout=LISTEN_POLL_SECONDS):
                    self._deliver(note.payload)
            except psycopg.Error as exc:
                if self._stopped.is_set():
                    return
                log.warning("listening for changes lost its connection (%s); connecting again", exc)
                self._reconnect()

    def _reconnect(self) -> None:
        self.db.close()
        delay = LISTEN_POLL_SECONDS
        while not self._stopped.is_set():
            try:
                self.db = self._listen()
            except StoreError as exc:
                log.warning("%s; trying again in %g s", exc, delay)
                self._stopped.wait(delay)
                delay = min(2 * delay, LISTEN_RETRY_MAX_SECONDS)
                continue
            self._deliver("*reload")
            return

    def _deliver(self, payload: str) -> None:
        try:
            self.callback(payload)
        except Exception:
            log.exception("a change listener failed on %r", payload)
