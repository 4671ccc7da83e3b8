"""Starting a runner that outlives whoever started it (a kernel, a terminal, a test)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import threading
import time

from .. import config
from ..errors import RunnerError

#: Exit status of a runner that found another one already running.
ALREADY_RUNNING = 3


def start_detached(settings: config.Settings, ping, timeout: float = config.RUNNER_START_TIMEOUT) -> dict:
    """Start ``python -m nbsched.runner`` in its own session and wait until ``ping()`` answers.

    A runner that is stopping still holds the home: the new one waits for it to exit, and so does this.
    """
    config.ensure_home(settings.home)
    if _pid_alive(settings):
        timeout += config.STOPPING_RUNNER_WAIT_SECONDS
    log_fd = os.open(settings.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    with open(log_fd, "ab") as log_file:
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
                raise RunnerError(f"The runner did not start (exit code {code}): {_reason(settings)}") from None
        time.sleep(0.05)
    raise RunnerError(f"The runner did not answer within {timeout:g}s. See {settings.log_path}:\n{log_tail(settings)}")


def started_text(settings: config.Settings, info: dict) -> str:
    """What every front end says, in one line, when it started a runner: ``info`` is the runner's ping answer."""
    return f"started a runner (pid {info['pid']}) for NBSCHED_HOME={settings.home}"


def _pid_alive(settings: config.Settings) -> bool:
    """Whether the process named in ``runner.pid`` lives (a runner that runs, starts or stops)."""
    try:
        os.kill(int(settings.pid_path.read_text().strip()), 0)
    except (OSError, ValueError):
        return False
    return True


def runner_pid(settings: config.Settings) -> int | None:
    """The pid of the runner that holds the home's pid lock (one that runs, starts or stops), or None when no
    process holds it: unlike an answer on the socket, this does not depend on how busy the runner is."""
    try:
        handle = open(settings.pid_path)  # noqa: SIM115 - closed below, the lock with it
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:  # held: read who holds it (written right after it took the lock)
            try:
                return int(handle.read().strip())
            except ValueError:
                return 0  # it is starting: the lock is held, the pid not written yet
        except OSError:
            return None
        return None


def signal_stop(pid: int) -> None:
    """Ask the runner ``pid`` to stop with SIGTERM (what it does on ``shutdown``), for a runner too busy to answer."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)


def _reason(settings: config.Settings) -> str:
    """Why a runner that exited at start did: the message of the last error it logged, else the log's tail."""
    lines = log_tail(settings, lines=40).splitlines()
    errors = [line.split(": ", 1)[-1] for line in lines if " ERROR nbsched.runner: " in line]
    if errors:
        return f"{errors[-1]} (see {settings.log_path})"
    return f"last lines of {settings.log_path}:\n" + "\n".join(lines[-15:])


def log_tail(settings: config.Settings, lines: int = 15) -> str:
    try:
        return "\n".join(settings.log_path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
