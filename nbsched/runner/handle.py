"""One worker process as the runner's pool sees it: its pipes, the runs it holds, what it has been told."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..worker import pipe
from ..worker.pipe import RunMessage

if TYPE_CHECKING:
    from .pool import WorkerPool

#: Run messages a worker holds at most: it reads the next from its pipe as soon as one ends, so
#: a burst costs one pipe write per message instead of one full round trip per run.
PIPELINE_DEPTH = 16384


class _WorkerProtocol(asyncio.subprocess.SubprocessStreamProtocol):
    """The streams of a worker's pipes, told when the process exits: its pipes may outlive it."""

    on_exit: Callable[[], None] | None = None

    def process_exited(self) -> None:
        super().process_exited()
        if self.on_exit is not None:
            self.on_exit()


class _Worker:
    @property
    def current(self) -> RunMessage | None:
        return self.inflight[0] if self.inflight else None

    def can_take(self, message: RunMessage) -> bool:
        """Exclusive runs (timeout or overlap=replace: they may be killed) never share a worker's pipe;
        a run isolated in its own process goes only to a worker that has run nothing yet."""
        if not self.ready or self.retiring or self.process.returncode is not None:
            return False
        if message.isolation == "process":
            return not self.used
        if self.slow or message.exclusive or (self.inflight and self.inflight[-1].exclusive):
            return not self.inflight
        return len(self.inflight) < PIPELINE_DEPTH

    def __init__(self, number: int, process: asyncio.subprocess.Process, transport=None):
        self.number = number
        self.process = process
        self.transport: asyncio.SubprocessTransport | None = transport
        self.inflight: deque[RunMessage] = deque()  # sent, in order; the first one is running (or waiting)
        self.sent_at: dict[int, float] = {}  # run id -> when its frame was written, for the runs in flight
        self.kill_reason: tuple[str, str] | None = None  # (status, error) when killed on purpose
        self.sources_sent: set[str] = set()
        self.registry_seen = -1
        self.connections_seen = -1
        self.lease_seen = math.inf  # the last ``pipe.Lease`` sent (none: no lease to respect)
        self.spares_seen = 0  # the version of ``Spares.kept`` it was told (0: none told)
        self.ready = False  # set when the worker says it has started and warmed up
        self.slow = False  # its run in hand outlasted the bounce time: queue nothing behind it
        self.held_until = 0.0  # the latest not_before of the runs it holds for later
        self.cancelling: dict[int, str] = {}  # run id -> why, asked to give back
        self.used = False  # it has been given a run: its modules may carry what that run changed
        self.retiring = False  # it takes no more runs and is killed when its run ends
        self.eof = False  # its result pipe has closed
        self.last_finished = 0.0  # when the last run it reported ended (the next one began after it)
        self.warmed: set[str] = set()  # notebook services it keeps a spare kernel booted for

    def take_back(self, run_ids: set[int]) -> list[RunMessage]:
        """Take the runs ``run_ids`` out of this worker's queue (they did not start here); they come oldest first."""
        returned = [message for message in self.inflight if message.run_id in run_ids]
        self.inflight = deque(message for message in self.inflight if message.run_id not in run_ids)
        for run_id in run_ids:
            self.sent_at.pop(run_id, None)
        return returned

    def kill(self) -> None:
        """Kill the worker's process group: the worker and whatever its runs forked."""
        _kill_group(self.process.pid)

    def catch_up(self, pool: WorkerPool) -> list[bytes]:
        """The frames the worker needs before its next runs: what changed in the pool's sources, connections,
        lease and kept spares since it was last told."""
        frames = []
        if self.registry_seen != pool.registry_version:
            new = {v: s for v, s in pool.sources.items() if v not in self.sources_sent}
            frames.append(pipe.encode(pipe.Sources(new, pool.services)))
            self.sources_sent.update(new)
            self.registry_seen = pool.registry_version
        if self.connections_seen != pool.connections_version:
            frames.append(pipe.encode(pipe.Connections(pool.connections)))
            self.connections_seen = pool.connections_version
        if self.lease_seen != pool.lease_until:
            frames.append(pipe.encode(pipe.Lease(pool.lease_until)))
            self.lease_seen = pool.lease_until
        spares = pool.spares
        if self.spares_seen != spares.kept_version and spares.kept is not None:
            frames.append(pipe.encode(pipe.KeepSpares(spares.kept)))
            self.spares_seen = spares.kept_version
        return frames


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
