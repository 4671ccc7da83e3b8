"""The worker process's entry point: its pipes, its tie to the runner, and its loop over the runner's messages.

Started by the runner's pool as ``python -m nbsched.worker VERSION`` (``pipe.worker_arguments``). It reads
the runner's messages on stdin (``pipe``) and sends results back on the original stdout, several runs'
results to a frame when runs come due together (``inbox``); ``print`` output and log records of a run are
captured into the run's ``logs`` (``execute``), and sent to the runner while the run goes on (``livelogs``).
A service that crashes the process, hangs or leaks takes only this worker with it; the runner starts a fresh one.

Runs share the worker's process, as services share a Zato server's: after each run the worker
puts back the working directory, the environment, the umask and the logging set-up
(``state.ProcessState``); what a service does to modules (monkeypatching) stays, unless its job or
class asks for ``isolation="process"`` (see ``nbsched.runner.pool``).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import sys
import threading

from . import pipe
from .execute import Worker
from .inbox import Inbox
from .livelogs import LiveLogs


def main() -> None:
    pipe.check_version(sys.argv[1:])
    # Keep the protocol on private copies of stdin and stdout (not inherited by programs a service starts);
    # stray writes to fd 1 go to stderr, and reads of fd 0 find nothing.
    out = os.fdopen(os.dup(1), "wb")
    source = os.fdopen(os.dup(0), "rb")
    os.dup2(2, 1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    _die_with_parent()
    logging.getLogger().setLevel(logging.INFO)
    worker = Worker()
    _warm_up()
    gc.freeze()  # what the worker loaded stays: full collections need not walk it again
    inbox = Inbox(out, prepare=worker.prepare_ahead)
    inbox.send(pipe.Ready(os.getpid()))
    threading.Thread(target=inbox.fill, args=(source,), daemon=True, name="nbsched-inbox").start()
    threading.Thread(target=inbox.watch, daemon=True, name="nbsched-bounce").start()
    live = LiveLogs(lambda: worker.current, inbox.send, worker.mask_text)
    threading.Thread(target=live.loop, daemon=True, name="nbsched-live-logs").start()
    serve(worker, inbox)


def serve(worker: Worker, inbox: Inbox) -> None:
    """Act on the runner's messages, one by one, until the pipe ends."""
    result = None
    while True:
        message = inbox.next(result)
        result = None
        match message:
            case pipe.RunMessage():
                result = worker.run(message, inbox.prepared.pop(message.run_id, None))
            case pipe.Sources(sources, services):
                worker.registry.update(sources, services)
            case pipe.Connections(definitions):
                worker.set_connections(definitions)
            case pipe.Warm(service):
                worker.warm(service)
            case pipe.KeepSpares(services):
                worker.keep_spares(services)
            case None:
                return
            case _:
                raise TypeError(f"Not a message of pipe protocol {pipe.VERSION}: {message!r}.")


def _die_with_parent() -> None:
    """On Linux, have the kernel kill this worker if the runner dies (even by SIGKILL)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):  # a libc without prctl: nothing to do
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() == 1:  # the runner died before prctl took effect
        os._exit(1)


def _warm_up() -> None:
    """Import what runs need before saying ready, so a first run (and its timeout) starts no slower than others."""
    import requests  # noqa: F401

    from .. import (
        connections,  # noqa: F401
        service,  # noqa: F401
    )
