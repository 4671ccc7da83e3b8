"""Spare kernels for notebook jobs, as the runner's pool arranges them: which worker boots one, and when.

A worker boots a spare kernel for a notebook service when it is told a job of that service is scheduled
(``pipe.Warm``: at the job's creation, update, resume, and at the runner's start) and after each run of the
service (the worker does that itself, ``worker.kernels``). The pool then hands the service's runs to a worker
that keeps a spare for it, among the idle ones, so a fire finds a kernel already up. Once a notebook's last
active job is deleted or paused, the workers are told which notebooks still have one (``pipe.KeepSpares``) and
shut the other spares down: a kernel is booted ahead only for a fire that can come.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..worker import pipe
from ..worker.notebook import NOTEBOOK_CLASS

if TYPE_CHECKING:
    from ..worker.pipe import RunMessage
    from .handle import _Worker
    from .pool import WorkerPool


class Spares:
    """Which workers keep spare kernels for which notebook services (``_Worker.warmed``)."""

    def __init__(self, pool: WorkerPool):
        self.pool = pool
        self.pending: set[str] = set()  # services to warm once a worker is ready
        self.kept: list[str] | None = None  # the notebook services with an active job, as last told (None: not yet)
        self.kept_version = 0

    def warm(self, service: str) -> None:
        """A job of the notebook service ``service`` is scheduled: an idle worker (one warmed for it already,
        else one that has run something, as ``_dispatch`` prefers) boots a spare kernel for it now."""
        if self.kept is not None and service not in self.kept:
            self.kept = sorted({*self.kept, service})  # the worker adds it to those it keeps spares for, itself
        ready = [worker for worker in self.pool.workers if worker.ready and not worker.retiring]
        if not ready:
            self.pending.add(service)
            return
        worker = min(ready, key=lambda w: (len(w.inflight), service not in w.warmed, not w.used))
        worker.warmed.add(service)
        frames = worker.catch_up(self.pool)
        frames.append(pipe.encode(pipe.Warm(service)))
        worker.process.stdin.write(b"".join(frames))

    def keep(self, services: set[str]) -> None:
        """Only these notebook services have an active job: every worker keeps spares for them alone."""
        kept = sorted(services)
        if kept == self.kept:
            return
        self.kept, self.kept_version = kept, self.kept_version + 1
        for worker in self.pool.workers:
            worker.warmed &= services
            if worker.ready and not worker.retiring:
                frames = worker.catch_up(self.pool)
                worker.process.stdin.write(b"".join(frames))

    def worker_ready(self) -> None:
        """A worker is ready: the services waiting for one are warmed."""
        pending, self.pending = self.pending, set()
        for service in pending:
            self.warm(service)

    def dispatched(self, worker: _Worker, message: RunMessage) -> None:
        """``worker`` got a run: if it is a notebook's, the worker boots a spare for the next when it ends."""
        if self.pool.services.get(message.service, ("", ""))[1] == NOTEBOOK_CLASS:
            worker.warmed.add(message.service)
