"""Starting a runner that outlives whoever started it (a kernel, a terminal, a test)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

from . import config
from .errors import RunnerError

#: Exit status of a runner that found another one already running.
ALREADY_RUNNING = 3


def start_detached(settings: config.Settings, ping, timeout: float = config.RUNNER_START_TIMEOUT) -> dict:
    """Start ``python -m nbsched.runner`` in its own session and wait until ``ping()`` answers."""
    config.ensure_home(settings.home)
    with open(settings.log_path, "ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "nbsched.runner", "--detached"],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            start_new_session=True,
            close_fds=True,
            env={**os.environ, "NBSCHED_HOME": str(settings.home)},
        )
    # Reap the runner if it exits while this process lives (no zombie); never blocks the caller.
    threading.Thread(target=process.wait, daemon=True, name="nbsched-runner-reaper").start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = process.poll()
        try:
            return ping()
        except RunnerError:
            if code is not None and code != ALREADY_RUNNING:
                raise RunnerError(
                    f"The runner exited at start (exit code {code}). Last lines of {settings.log_path}:\n"
                    + log_tail(settings)
                ) from None
        time.sleep(0.05)
    raise RunnerError(f"The runner did not answer within {timeout:g}s. See {settings.log_path}:\n{log_tail(settings)}")


def log_tail(settings: config.Settings, lines: int = 15) -> str:
    try:
        return "\n".join(settings.log_path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
