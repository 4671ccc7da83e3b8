"""Sharing a store with other runners (PostgreSQL): this runner's lease, the runners it takes over, the changes.

Each runner holds a lease in the store and renews it from a thread and a connection of its own, so that a
busy event loop does not let it lapse. Its workers are told until when the lease surely holds, and start no run
after that: a runner frozen or cut off has its workers stop too, so a run its successor took over runs once.
Its writes of runs are fenced by the lease: once it lapsed and another runner took over, the store refuses
them. A runner that finds itself fenced (a paused VM, a network partition) stops firing, drops what it could
not record (its successor recorded those runs as interrupted, or runs them), takes a fresh lease under a new
name, and reads every job again before it fires.

Every runner looks for leases that expired and takes them over, one taker per dead runner: the dead runner's
runs due by then end ``interrupted`` (and are retried as their job allows); those it had claimed ahead of their
time are the taker's, and start at their time. Changes made through any runner (jobs, services, connections)
are announced; the other runners read them again at once, and everything after a lost connection.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from .. import config
from ..errors import Fenced
from ..model.runs import NewRun
from ..store import PendingRetry, Store, StoredJob, TakeOver, open_store
from .inflight import InFlight

if TYPE_CHECKING:
    from .engine import Engine

log = logging.getLogger("nbsched.runner.shared")
#: Announcements: what changed, after whose name (a runner ignores its own).
JOB, SERVICES, CONNECTIONS, RELOAD = "job:", "services", "connections", "*reload"


class Sharing:
    """One runner's part in a shared store: its lease, its heartbeat, take-overs and announcements."""

    def __init__(
        self,
        engine: Engine,
        store_url: str,
        loop: asyncio.AbstractEventLoop,
        lease_holds: Callable[[float], None] = lambda valid_until: None,
    ):
        self.engine = engine
        self.lease_holds = lease_holds  # told (in the loop) until when the lease surely holds: the workers
        self.store: Store = engine.store
        self.store_url = store_url
        self.loop = loop
        self.base_name = engine.runner_id
        self.generation = 1
        self.current: tuple[str, int] = (engine.runner_id, 0)  # (lease name, token): read by the heartbeat thread
        self._stopped = threading.Event()
        self._unsubscribe: Callable[[], None] = lambda: None
        self._heartbeat: threading.Thread | None = None
        self.peers: tuple[str, ...] = ()  # the runners with a live lease, this one included
        self._owners: dict[str, str] = {}  # job uid -> the peer that owns it, while ``peers`` stay the same

    # -- start and stop -----------------------------------------------------------
    def start(self) -> None:
        """Take a lease, fence this runner's writes with it, listen to the others; before the engine loads."""
        self._take_lease(self.base_name)
        self._unsubscribe = self.store.subscribe(self._heard)
        self._heartbeat = threading.Thread(target=self._beat, name="nbsched-lease", daemon=True)
        self._heartbeat.start()
        self.engine.hooks.owns = self.owns

    def stop(self) -> None:
        """A clean stop: no more heartbeats or announcements; the lease is given up (no one need take over)."""
        self._stopped.set()
        self._unsubscribe()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=2 * config.LEASE_RENEW_SECONDS)
        name, token = self.current
        try:
            self.store.release_lease(name, token)
        except Exception as exc:  # it expires on its own; another runner takes over then
            log.warning("giving up the lease of %s failed: %s", name, exc)

    def _take_lease(self, name: str) -> None:
        asked = time.time()
        token = self.store.lease(name, None, config.LEASE_SECONDS)
        self.lease_holds(_surely_until(asked))
        self.store.set_fence(name, token)
        self.current = (name, token)
        self.engine.runner_id = name
        self.engine.health.on_fenced = lambda: self.loop.call_soon(self.lost_lease, token)

    def _beat(self) -> None:
        """Renew the lease from a connection of its own, whatever the event loop is busy with."""
        store = None
        while not self._stopped.wait(config.LEASE_RENEW_SECONDS):
            name, token = self.current
            try:
                store = store or open_store(self.store_url)
                asked = time.time()
                store.lease(name, token, config.LEASE_SECONDS)
                self.loop.call_soon_threadsafe(self._renewed, token, _surely_until(asked))
            except Fenced:
                self.loop.call_soon_threadsafe(self.lost_lease, token)
            except Exception as exc:  # unreachable: the lease lapses unless the store comes back in time
                log.warning("renewing the lease of %s failed: %s", name, exc)
                if store is not None:
                    store.close()
                store = None
        if store is not None:
            store.close()

    def _renewed(self, token: int, valid_until: float) -> None:
        if token == self.current[1]:
            self.lease_holds(valid_until)

    # -- losing the lease -------------------------------------------------------------
    def lost_lease(self, token: int) -> None:
        """The lease with ``token`` lapsed: forget every run in flight, take a new lease, read the jobs again."""
        name, current = self.current
        if token != current or self._stopped.is_set():
            return  # handled already
        engine = self.engine
        dropped = len(engine.results.pending)
        log.error(
            "runner %s lost its lease on the shared store (paused or cut off longer than %gs): another runner has "
            "its runs; %d result(s) not recorded; it takes a new lease and reads the jobs again",
            name,
            config.LEASE_SECONDS,
            dropped,
        )
        for run_id in list(engine.inflight.active):  # not started yet: a worker holds it until the lease is back
            engine.hooks.cancel(run_id, "This runner lost its lease; another runner has this run.")
        engine.results.pending.clear()
        engine.results.retries_to_store.clear()
        engine.inflight = InFlight()
        engine.health.trouble = None
        self.generation += 1
        try:
            self._take_lease(f"{self.base_name}#{self.generation}")
            reload(engine)
        except Exception as exc:
            log.error("taking a new lease failed: %s; trying again", exc)
            self.loop.call_later(config.LEASE_RENEW_SECONDS, self.lost_lease, token)
            self.current = (name, token)
            return
        engine.hooks.wake()

    # -- who claims what ---------------------------------------------------------------
    def owns(self, job: StoredJob) -> bool:
        """Whether this runner claims the job's fires first: of the runners alive, the one whose name hashed with
        the job's uid weighs most (rendezvous hashing: when a runner comes or goes, only its jobs move)."""
        if len(self.peers) <= 1:
            return True
        owner = self._owners.get(job.uid)
        if owner is None:
            owner = self._owners[job.uid] = max(self.peers, key=lambda peer: _weight(job.uid, peer))
        return owner == self.current[0]

    def _look_at_peers(self) -> None:
        peers = tuple(sorted({*self.store.runners(), self.current[0]}))
        if peers != self.peers:
            self.peers, self._owners = peers, {}

    # -- taking over ----------------------------------------------------------------
    async def watch(self) -> None:
        """Take over the runners whose leases expired, now and then; note the runners alive."""
        while not self._stopped.is_set():
            try:
                self.adopt(self.store.take_over(self.current[0], self.engine.hooks.clock()))
                self._look_at_peers()
            except Fenced:
                self.lost_lease(self.current[1])
            except Exception as exc:
                log.warning("looking for runners to take over failed: %s", exc)
            await asyncio.sleep(config.LEASE_RENEW_SECONDS)

    def adopt(self, taken: TakeOver) -> None:
        """Retry the dead runners' interrupted runs as their jobs allow; start their claimed runs at their time."""
        engine = self.engine
        for record in taken.interrupted:
            engine.results.count(record["job_uid"], "interrupted", record["scheduled_at"])
            retry_interrupted(engine, record)
        for record in taken.reassigned:
            name, run = record["job"], _new_run(record, engine.runner_id)
            job = engine.jobs.get(name) if name else None
            if job is None or not job.spec.active:
                reason = "deleted" if job is None else "paused"
                engine.results.finish_now(record["run_id"], run, "skipped", f"Job {name!r} was {reason}.")
                continue
            engine.inflight.hold_ahead(name, record["run_id"], run)
            if engine.may_predispatch(job):
                engine.predispatch_waiting(job)
        if taken.interrupted or taken.reassigned:
            engine.hooks.wake()

    # -- announcements ------------------------------------------------------------------
    def announce(self, change: str) -> None:
        """Tell the other runners what changed (``job:NAME``, ``services``, ``connections``)."""
        try:
            self.store.publish(f"{self.current[0]} {change}")
        except Exception as exc:  # they read everything again within config.SHARED_RELOAD_SECONDS
            log.warning("announcing %s to the other runners failed: %s", change, exc)

    def _heard(self, message: str) -> None:
        """From the listening thread: apply an announcement in the event loop."""
        self.loop.call_soon_threadsafe(self.apply, message)

    def apply(self, message: str) -> None:
        sender, _, change = message.rpartition(" ")
        if sender == self.current[0] or self._stopped.is_set():
            return
        engine = self.engine
        try:
            if change.startswith(JOB):
                name = change.removeprefix(JOB)
                apply_stored(engine, name, engine.store.job(name))
            elif change in (SERVICES, CONNECTIONS):
                engine.catalog.load()
            elif change == RELOAD:
                reload(engine)
        except Exception as exc:
            log.warning("reading a change another runner made (%s) failed: %s; reading everything again", change, exc)
            self.loop.call_later(config.LEASE_RENEW_SECONDS, self.apply, f"* {RELOAD}")

    async def reload_now_and_then(self) -> None:
        """Read every job again now and then: what a lost announcement left stale is right again soon."""
        while not self._stopped.is_set():
            await asyncio.sleep(config.SHARED_RELOAD_SECONDS)
            self.apply(f"* {RELOAD}")


def reload(engine: Engine) -> None:
    """Read services, connections and every job again, as another runner left them."""
    engine.catalog.load()
    stored = {job.spec.name: job for job in engine.store.jobs()}
    for name in set(engine.jobs) | set(stored):
        apply_stored(engine, name, stored.get(name))


def apply_stored(engine: Engine, name: str, job: StoredJob | None) -> None:
    """Take a job as the store has it (None: deleted), as if the change had been made through this runner."""
    before = engine.jobs.get(name)
    if job is None:
        if before is not None:
            del engine.jobs[name]
            engine.schedule.remove(name)
            engine.recall(name, "deleted")
        return
    engine.jobs[name] = job
    engine.reschedule(job)
    if not job.spec.active and (before is None or before.spec.active):
        engine.recall(name, "paused", keep=True)
    elif job.spec.active and engine.inflight.is_waiting_ahead(name) and engine.may_predispatch(job):
        engine.predispatch_waiting(job)
    engine.hooks.wake()


def retry_interrupted(engine: Engine, record: dict) -> None:
    """A run interrupted because its runner died: its next attempt, if its job's ``retries`` allow one."""
    job = engine.jobs.get(record["job"]) if record["job"] else None
    if job is None or record["attempt"] > job.spec.retries:
        return
    now = engine.hooks.clock()
    retry = PendingRetry(
        run_id=record["run_id"],
        job=record["job"],
        service=record["service"],
        attempt=record["attempt"],
        retries=job.spec.retries,
        scheduled_at=record["scheduled_at"],
        due_at=now + timedelta(seconds=1),
        channel="scheduler",
    )
    engine.results.retries_to_store.append(retry)
    engine.hooks.call_later(1.0, lambda: engine.results.start_retry(retry))


def _surely_until(asked: float) -> float:
    """Until when a lease asked for at ``asked`` (this machine's clock) holds, with a margin: the store starts
    its time later, by its own clock."""
    return asked + config.LEASE_SECONDS - config.LEASE_MARGIN_SECONDS


def _weight(uid: str, peer: str) -> bytes:
    return hashlib.blake2b(f"{uid}/{peer}".encode(), digest_size=8).digest()


def _new_run(record: dict, runner: str) -> NewRun:
    return {
        "cid": record["cid"],
        "job": record["job"],
        "job_uid": record["job_uid"],
        "service": record["service"],
        "service_version": record["service_version"],
        "trigger": record["trigger"],
        "attempt": record["attempt"],
        "status": "running",
        "scheduled_at": record["scheduled_at"],
        "runner": runner,
    }
