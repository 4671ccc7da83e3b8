"""Running a program as a service's work: its output lines become the run's logs as they come, its exit status the
run's status (used by the services ``nbsched import crontab`` generates for Python scripts)."""

from __future__ import annotations

import os
import subprocess
import sys

from .errors import ScriptFailed


def run_script(argv: list[str], cwd: str | None = None, env: dict[str, str] | None = None) -> None:
    """Run ``argv`` in ``cwd`` with the runner's environment plus ``env``; print each line it writes (stdout and
    stderr, in order), so the run's logs show them live; raise ``ScriptFailed`` on a non-zero exit status.

    The program is looked up on the ``PATH`` of that environment (a crontab's ``PATH=`` line is part of
    ``env``). Python output is unbuffered, so lines show as they are written. A timeout kills the worker's
    process group, and the program with it.
    """
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    try:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
    except OSError as exc:
        raise ScriptFailed(f"Cannot start {argv[0]!r} in {cwd or os.getcwd()}: {exc.strerror or exc}.") from None
    with process:
        for line in process.stdout:  # the run's stdout is its log lines (worker.capture), so a line shows as it comes
            sys.stdout.write(line if line.endswith("\n") else line + "\n")
    if process.returncode:
        raise ScriptFailed(f"{' '.join(argv)} exited with status {process.returncode}.")
