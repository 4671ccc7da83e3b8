"""The worker's Jupyter kernels: spares started ahead of a notebook run, and tied to the worker's life.

Every notebook run gets a kernel no run has used; it is shut down when the run ends. So that a run
does not wait ~1 s for a kernel to boot, a worker keeps spare kernels: when the runner says a job of a
notebook is scheduled (``pipe.Warm``), when a notebook run is handed over ahead of its time, and after each
notebook run, it tops up to ``NBSCHED_SPARE_KERNELS`` kernels (default 1) of that kernelspec and working
directory booted. At most ``config.MAX_SPARE_KERNELS`` spares wait per worker (the least recently used
kind goes first).

All kernels are started from one thread of the worker that lives as long as the worker, and each asks the
operating system (Linux ``PR_SET_PDEATHSIG``) to be killed when that thread ends: a worker killed for a timeout,
stopped with the runner, or orphaned by a runner that was SIGKILLed takes its kernels with it.
Their connection files live under ``NBSCHED_HOME/kernels/``, named after the worker's pid; a new
worker removes those of workers that are gone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections import OrderedDict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from .. import config

log = logging.getLogger(__name__)


def spare_count() -> int:
    """Spare kernels a worker keeps per kernelspec and directory (``NBSCHED_SPARE_KERNELS``), at most as many
    as it keeps in all (more would evict the kind just booted); a value that is no number is said, and ignored."""
    text = os.environ.get("NBSCHED_SPARE_KERNELS", str(config.SPARE_KERNELS))
    try:
        return min(max(0, int(text)), config.MAX_SPARE_KERNELS)
    except ValueError:
        log.warning("NBSCHED_SPARE_KERNELS=%r is not a whole number; keeping %d", text, config.SPARE_KERNELS)
        return config.SPARE_KERNELS


class KernelPool:
    """Fresh kernels for notebook runs, some started ahead (spares), all dying with the worker."""

    def __init__(self) -> None:
        self._launcher = ThreadPoolExecutor(1, thread_name_prefix="nbsched-kernels")  # its thread lives on
        self._spares: OrderedDict[tuple[str, str], deque[Future]] = OrderedDict()
        self._lock = threading.Lock()
        self._started = 0
        self._folder: Path | None = None
        self._wanted: set[tuple[str, str]] | None = None  # kinds with an active job (``keep``); None: not told yet

    def take(self, kernel: str, cwd: str):
        """A booted kernel (a ``KernelManager``) no run has used: a spare when one is up, else a new one."""
        with self._lock:
            waiting = self._spares.get((kernel, cwd), deque())
            futures = list(waiting)
            waiting.clear()
        manager = None
        for future in futures:  # the oldest spare first; a dead one is dropped
            if manager is None:
                with contextlib.suppress(Exception):
                    candidate = future.result()
                    if candidate.is_alive():
                        manager = candidate
                        continue
            self._launcher.submit(_shut_down, future)
        if manager is None:
            manager = self._launcher.submit(self._start, kernel, cwd).result()
        return manager

    def top_up(self, kernel: str, cwd: str, asked: bool = False) -> None:
        """Start spares of this kind until ``spare_count()`` wait (without waiting for them to boot): when
        ``asked`` (a job of it is scheduled, a fire is coming), or after a run while it has an active job."""
        wanted = spare_count()
        if not wanted:
            return
        with self._lock:
            if asked and self._wanted is not None:
                self._wanted.add((kernel, cwd))
            elif not asked and self._wanted is not None and (kernel, cwd) not in self._wanted:
                return  # the run's job was deleted or paused, or it was run on demand: no spare waits for it
            waiting = self._spares.setdefault((kernel, cwd), deque())
            self._spares.move_to_end((kernel, cwd))
            while len(waiting) < wanted:
                waiting.append(self._launcher.submit(self._start, kernel, cwd))
            while sum(len(q) for q in self._spares.values()) > config.MAX_SPARE_KERNELS:
                _, oldest = self._spares.popitem(last=False)
                for future in oldest:
                    self._launcher.submit(_shut_down, future)

    def keep(self, kinds: set[tuple[str, str]]) -> None:
        """Keep spares of these kinds only (those of the notebooks with an active job): shut the others down."""
        with self._lock:
            self._wanted = set(kinds)
            unwanted = [kind for kind in self._spares if kind not in kinds]
            futures = [future for kind in unwanted for future in self._spares.pop(kind)]
        for future in futures:
            self._launcher.submit(_shut_down, future)
        if futures:
            log.debug("%d spare kernel(s) shut down: no active job needs them", len(futures))

    def discard(self, manager) -> None:
        """Shut a used kernel down, off the run's path."""
        done: Future = Future()
        done.set_result(manager)
        self._launcher.submit(_shut_down, done)

    def _start(self, kernel: str, cwd: str):
        """Start a kernel and wait until it answers (runs on the launcher thread)."""
        import nbclient  # noqa: F401  (loaded here, off the run's path, for the run that takes this kernel)
        from jupyter_client.manager import KernelManager

        self._started += 1
        manager = KernelManager(kernel_name=kernel)
        manager.connection_file = str(self._connection_folder() / f"{os.getpid()}-{self._started}.json")
        parent = os.getpid()
        manager.start_kernel(cwd=cwd, preexec_fn=lambda: _die_with(parent), env=_kernel_env())
        client = manager.client()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=config.KERNEL_STARTUP_TIMEOUT)
        except RuntimeError:
            _shut_down_now(manager)
            raise
        finally:
            client.stop_channels()
        log.debug("kernel %s started (pid %s)", kernel, manager.provisioner.pid)
        return manager

    def _connection_folder(self) -> Path:
        if self._folder is None:
            self._folder = config.settings().home / "kernels"
            self._folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            _remove_stale(self._folder)
        return self._folder


def connect(manager, timeout: float = config.KERNEL_STARTUP_TIMEOUT):
    """A started asynchronous client (what nbclient drives) of a booted kernel, its IOPub channel subscribed.

    ``wait_for_ready`` would do, but it waits 0.2 s for IOPub to fall quiet: here a kernel_info request
    is sent until one of the kernel's IOPub messages arrives (a message published before the channel was
    subscribed is lost, and a cell's ``idle`` then never comes). Its parent is the kernel's manager, so
    nbclient sees at once when the kernel process dies.
    """
    from jupyter_client.asynchronous import AsyncKernelClient
    from jupyter_core.utils import run_sync

    client = AsyncKernelClient(
        **manager.get_connection_info(session=True), connection_file=manager.connection_file, parent=manager
    )
    run_sync(_subscribed)(client, manager, timeout)
    return client


async def _subscribed(client, manager, timeout: float) -> None:
    from queue import Empty

    client.start_channels()
    client.allow_stdin = False
    deadline = time.monotonic() + timeout
    while True:
        client.kernel_info()
        try:
            await client.get_iopub_msg(timeout=0.05)
            return
        except Empty:
            if time.monotonic() > deadline or not manager.is_alive():
                client.stop_channels()
                raise RuntimeError(f"The kernel did not answer within {timeout:g}s.") from None


def _kernel_env() -> dict:
    env = dict(os.environ)
    env.pop("JPY_PARENT_PID", None)
    return env


def _die_with(parent: int) -> None:
    """In the kernel's process before it starts: be killed when the worker ends (Linux only)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            _LIBC.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the worker died before prctl took effect
        os._exit(1)


def _load_libc():
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    with contextlib.suppress(OSError):
        return ctypes.CDLL(None, use_errno=True)
    return None


_LIBC = _load_libc()


def _shut_down(future: Future) -> None:
    with contextlib.suppress(Exception):
        _shut_down_now(future.result())


def _shut_down_now(manager) -> None:
    with contextlib.suppress(Exception):
        manager.shutdown_kernel(now=True)


def _remove_stale(folder: Path) -> None:
    """Remove the connection files of kernels whose worker is gone (killed with the runner)."""
    for path in folder.glob("*.json"):
        pid = path.stem.split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: The worker's kernels (one pool per process).
KERNELS = KernelPool()
