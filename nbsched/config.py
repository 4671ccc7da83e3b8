"""Configuration in one place: where the runner keeps its files, which store, which time zone.

Every setting is read from the environment when asked for, so a test or a notebook
that changes ``NBSCHED_HOME`` sees the change at once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: Directory for the socket, token, pid file, log and SQLite database.
DEFAULT_HOME = "~/.nbsched"
#: Time zone that user-typed dates are read in and listings are shown in.
DEFAULT_TIMEZONE = "UTC"
#: Largest request frame the runner reads, in bytes; larger ones are refused.
MAX_REQUEST_BYTES = 1024 * 1024
#: Largest ``extra`` a job may carry, in bytes of its JSON form.
MAX_EXTRA_BYTES = 64 * 1024
#: Worker processes that execute services.
DEFAULT_WORKERS = 2
#: Seconds a stopping runner waits for running runs before marking them interrupted.
SHUTDOWN_GRACE_SECONDS = 10.0
#: Seconds a client waits for a freshly started runner to answer.
RUNNER_START_TIMEOUT = 20.0
#: Seconds before a fire is due that the runner claims it in the store (off the critical path).
CLAIM_AHEAD_SECONDS = 0.75
#: Most fires claimed in one step of the schedule loop; the socket and results get their turn between steps.
MAX_CLAIMS_PER_TICK = 2000
#: The runner's cyclic garbage collector thresholds (Python's default: 700, 10, 10), see runner._tune_gc.
GC_THRESHOLDS = (10_000, 50, 100)
#: Seconds between the runner's refreshes of its store's read caches (the Arrow files of a long history).
CACHE_REFRESH_SECONDS = 60.0
#: ... and from its start to the first one (after the start's own work).
CACHE_FIRST_REFRESH_SECONDS = 5.0
#: Fires later than this many seconds behind schedule at runner start count as missed.
MISFIRE_GRACE_SECONDS = 1.0
#: Default window for catching up missed fires.
DEFAULT_CATCHUP = "1h"


@dataclass(frozen=True)
class Settings:
    """The settings of one nbsched home."""

    home: Path
    store_url: str
    timezone: str
    workers: int

    @property
    def socket_path(self) -> Path:
        return self.home / "runner.sock"

    @property
    def token_path(self) -> Path:
        return self.home / "token"

    @property
    def pid_path(self) -> Path:
        return self.home / "runner.pid"

    @property
    def log_path(self) -> Path:
        return self.home / "runner.log"

    @property
    def db_path(self) -> Path:
        return self.home / "nbsched.db"


def settings() -> Settings:
    """Read the settings from the environment (``NBSCHED_*``)."""
    home = Path(os.environ.get("NBSCHED_HOME") or DEFAULT_HOME).expanduser().resolve()
    store_url = os.environ.get("NBSCHED_STORE") or f"sqlite:///{home / 'nbsched.db'}"
    timezone = os.environ.get("NBSCHED_TIMEZONE") or DEFAULT_TIMEZONE
    workers = int(os.environ.get("NBSCHED_WORKERS") or DEFAULT_WORKERS)
    return Settings(home=home, store_url=store_url, timezone=timezone, workers=workers)


def ensure_home(home: Path) -> Path:
    """Create the home directory with mode 0700 (and tighten it if it exists)."""
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(home, 0o700)
    return home
