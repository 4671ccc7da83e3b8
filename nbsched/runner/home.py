"""The runner's files in its home: the socket token, the pid lock that makes one runner per home, and
the store file kept private to its owner."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import secrets
import socket
import time
from pathlib import Path

from .. import config
from ..errors import RunnerError

log = logging.getLogger("nbsched.runner")

#: What a token the runner made looks like (``secrets.token_urlsafe(32)``: 43 such characters).
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32,}")


def read_or_create_token(path: Path) -> str:
    """The socket token, from ``path``; made anew (mode 0600) when the file is missing, empty or holds no
    token (what a disk that filled up while it was first written leaves), so no runner serves without one."""
    try:
        token = path.read_bytes().decode("ascii", "replace").strip()
    except FileNotFoundError:
        token = ""
    except OSError as exc:
        raise RunnerError(
            f"Cannot read the token file {path} ({exc.strerror or exc}); remove it, and the runner makes a new one "
            "when it starts."
        ) from None
    if _TOKEN.fullmatch(token):
        return token
    if token:
        log.warning("the token file %s held no token; making a new one", path)
    return _write_token(path)


def _write_token(path: Path) -> str:
    """A new token, written aside and renamed into place: the file holds a whole token or none."""
    token = secrets.token_urlsafe(32)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(token)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise RunnerError(
            f"Cannot write the token file {path} ({exc.strerror or exc}); free some disk space in "
            f"{path.parent} and start the runner again."
        ) from None
    return token


class AlreadyRunning(RunnerError):
    """Another runner holds the home's pid lock."""


class PidLock:
    """An exclusive lock on ``runner.pid``, held while the runner lives.

    A runner that holds it but no longer accepts connections on ``socket_path`` is stopping (or still
    starting): wait up to ``wait`` seconds for it to let go, so that a start right after a stop starts.
    """

    def __init__(self, path: Path, socket_path: Path | None = None, wait: float = 0.0):
        self.path = path
        deadline = time.monotonic() + wait
        while (handle := self._lock()) is None:
            serving = socket_path is None or _accepts(socket_path)
            if serving or time.monotonic() > deadline:
                still = "" if serving else f", still stopping after {wait:g}s"
                raise AlreadyRunning(f"A runner is already running for {path.parent} (pid {self.holder}){still}.")
            time.sleep(0.1)
        self.handle = handle
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(str(os.getpid()))
        self.handle.flush()
        os.chmod(path, 0o600)

    def _lock(self):
        """The pid file, open and locked; None while another process holds it (``self.holder``: its pid)."""
        while True:
            handle = open(self.path, "a+")  # noqa: SIM115 - held open for the runner's lifetime
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                self.holder = handle.read().strip() or "unknown"
                handle.close()
                return None
            try:  # the runner before may have removed the file as it let go: lock the file at the path now
                if os.stat(self.path).st_ino == os.fstat(handle.fileno()).st_ino:
                    return handle
            except FileNotFoundError:
                pass
            handle.close()

    def release(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()
        self.handle.close()


def _accepts(path: Path) -> bool:
    """Whether a runner accepts connections on the socket at ``path``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(2)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def private_store_files(url: str) -> None:
    """A SQLite store's file, and its WAL and shared-memory files, readable by their owner only (SQLite
    gives the WAL and shared-memory files it makes the mode of the store's file)."""
    if not url.startswith("sqlite:///"):
        return
    path = Path(url.removeprefix("sqlite:///"))
    with contextlib.suppress(FileNotFoundError):  # no such folder: SQLite says so when it opens the store
        config.private_file(path)
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(f"{path}{suffix}", 0o600)
