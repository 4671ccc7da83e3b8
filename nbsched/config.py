"""Configuration in one place: where the runner keeps its files, which store, which time zone.

Every setting is read from the environment when asked for, so a test or a notebook
that changes ``NBSCHED_HOME`` sees the change at once.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from .errors import RunnerError

#: Directory for the socket, token, pid file, log and SQLite database.
DEFAULT_HOME = "~/.nbsched"
#: Time zone that user-typed dates are read in and listings are shown in.
DEFAULT_TIMEZONE = "UTC"
#: Largest request frame the runner reads, in bytes; larger ones are refused.
MAX_REQUEST_BYTES = 1024 * 1024
#: Largest ``extra`` a job may carry, in bytes of its JSON form.
MAX_EXTRA_BYTES = 64 * 1024
#: Most runs one ``invoke_many`` request starts (each recorded in the same transaction, before the reply).
MAX_INVOKE_RUNS = 500
#: After an ``invoke_many`` request that held the runner's loop t seconds, the next one starts this times t later:
#: back-to-back requests of many runs get at most a third of the loop, so the control plane stays responsive.
INVOKE_MANY_REST = 2.0
#: Worker processes that execute services.
DEFAULT_WORKERS = 2
#: Spare kernels a worker keeps booted per kernelspec and folder once it has run a notebook (``NBSCHED_SPARE_KERNELS``).
SPARE_KERNELS = 1
#: Seconds after a notebook job is deleted, paused or changed that the workers are told which notebooks still have
#: an active job (the others' spare kernels are shut down): changes in a row are told once.
SPARE_REVIEW_SECONDS = 1.0
#: Most spare kernels one worker keeps in all (the least recently used kind is shut down first).
MAX_SPARE_KERNELS = 4
#: Seconds a notebook run waits for a kernel to start and answer before the run fails.
KERNEL_STARTUP_TIMEOUT = 60.0
#: Seconds a stopping runner waits for running runs before marking them interrupted.
SHUTDOWN_GRACE_SECONDS = 10.0
#: Seconds a client waits for a freshly started runner to answer.
RUNNER_START_TIMEOUT = 20.0
#: Seconds a starting runner waits for the runner before it, which is stopping, to exit.
STOPPING_RUNNER_WAIT_SECONDS = SHUTDOWN_GRACE_SECONDS + 20.0
#: Seconds before a fire is due that the runner claims it in the store (off the critical path).
CLAIM_AHEAD_SECONDS = 0.75
#: Seconds of fires the runner claims together: it claims when the first is ``CLAIM_AHEAD_SECONDS`` less this
#: away, so that fires spread over time (100,000 jobs a minute) are claimed ~50 at a time, not one per step.
CLAIM_BATCH_SECONDS = 0.05
#: Most fires claimed in one step of the schedule loop; the socket and results get their turn between steps.
MAX_CLAIMS_PER_TICK = 2000
#: Fewest: a step of the schedule loop that takes longer than ``SCHEDULE_SLICE_SECONDS`` claims fewer fires next
#: time, down to this, so that a runner that cannot keep up still answers its socket within a few slices.
MIN_CLAIMS_PER_TICK = 32
#: Seconds of work one step of the schedule loop aims at, when behind: requests and results wait at most this.
SCHEDULE_SLICE_SECONDS = 0.005
#: Seconds the schedule loop, behind, waits after an answered request for the next one before its next tick (at
#: most as long as its last tick took): a client's requests in a row (pausing every job) are answered in a row.
REQUEST_GAP_SECONDS = 0.002
#: ... on a store several runners share: smaller steps, in an order of its own, so that due fires spread.
SHARED_CLAIMS_PER_TICK = 16
#: Seconds after a job's owner (on a shared store) that the other runners claim its fire, if the owner has not.
SHARED_TAKE_SLACK_SECONDS = 0.3
#: Seconds a runner's lease on a shared store lasts unless renewed: how long its runs wait for a taker after a crash.
LEASE_SECONDS = 2.0
#: Seconds before its lease could expire that a runner's workers stop starting runs (clocks differ, calls take time).
LEASE_MARGIN_SECONDS = 0.3
#: Seconds between renewals of the lease (and looks for expired leases to take over).
LEASE_RENEW_SECONDS = 0.4
#: Seconds between full reads of the jobs of a shared store (announcements carry changes at once; this catches
#: any that were lost).
SHARED_RELOAD_SECONDS = 300.0
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
#: Shortest interval a job may have, in seconds, unless it is created with ``allow_subsecond=True``.
MIN_INTERVAL_SECONDS = 1.0
#: Longest jitter of a one-time job, in seconds (an interval or cron job's jitter is at most its interval).
MAX_ONE_TIME_JITTER_SECONDS = 86_400.0
#: Longest note a paused job may carry, in characters.
MAX_NOTE_CHARS = 500
#: Header names and URL query keys whose values are secrets, masked in listings, errors and history: a name
#: is secret when one of these is part of it (case-insensitive). ``NBSCHED_SECRET_NAMES`` adds more, comma-separated.
SECRET_NAMES = (
    "auth",
    "key",
    "token",
    "secret",
    "password",
    "passwd",
    "pwd",
    "cookie",
    "signature",
    "credential",
    "session",
)
#: ... and these only as a whole word of the name: "sig" masks ``X-Sig`` and ``?sig=``, not ``X-Design``.
SECRET_WORDS = ("sig", "pw")
#: Secrets shorter than this many characters are masked only where they stand as a value (after ``=`` or
#: ``:``, or in quotes), not as a word of free text: ``password=test`` is masked, "test passed" is not.
MASK_MIN_CHARS = 8
#: Seconds between the batches of log lines a worker sends of a run in hand (live logs; none when it logs nothing).
LIVE_LOG_SECONDS = 0.15
#: Log lines the runner keeps in memory per running run for followers (``nbsched logs --follow``); the oldest go
#: first. A worker sends no more than these of one batch either (the older ones are counted, not sent).
LIVE_LOG_LINES = 5_000
#: Characters of a live log line beyond which it is cut (the stored logs keep it whole).
LIVE_LOG_LINE_CHARS = 2_000
#: Longest a ``logs`` request waits for new lines of a running run, in seconds (clients ask again).
LOGS_MAX_WAIT_SECONDS = 60.0
#: How long a follower's request waits for new lines before asking again, in seconds.
LOGS_FOLLOW_WAIT_SECONDS = 10.0
#: Client connections the runner keeps open at most (the longest idle is closed to admit a new one) ...
MAX_CLIENTS = 4096
#: ... and file descriptors it keeps free for the rest (store, history threads, log) and per worker (pipes).
FD_RESERVE = 128
FD_PER_WORKER = 4
#: Threads that send notifications (e-mail, webhooks), off the firing path: a hanging server holds one of them.
NOTIFY_THREADS = 4
#: Notifications waiting for a thread at most; more are not sent, and the run's logs say so.
NOTIFY_MAX_QUEUED = 1000
#: Seconds a webhook notification waits for its server, per attempt (``NBSCHED_NOTIFY_TIMEOUT`` overrides).
NOTIFY_TIMEOUT_SECONDS = 10.0
#: Attempts of a webhook notification before it counts as failed; between them, 1 s, 2 s, 4 s, ...
WEBHOOK_ATTEMPTS = 3
#: Seconds a stopping runner waits for notifications still being sent.
NOTIFY_GRACE_SECONDS = 5.0
#: Log lines an e-mail notification quotes (the last ones), and characters of each of output, logs and traceback
#: that a notification carries (a webhook's or service's payload too; the rest is cut, and says so).
NOTIFY_LOG_LINES = 20
NOTIFY_TEXT_CHARS = 16_000
#: Default ``history_keep`` of jobs that set none (``NBSCHED_HISTORY_KEEP``: a count or an age); None: keep all.
DEFAULT_HISTORY_KEEP = None
#: Seconds between the runner's passes of retention (``NBSCHED_RETENTION_SECONDS`` overrides) ...
RETENTION_SECONDS = 60.0
#: ... runs deleted in one store step (the write lock is held that long: a few milliseconds, which the runner's
#: own writes may wait), and the pause between steps, in shares of the step's own time (1.0: a purge takes at most
#: half of a core), so that a purge of millions of runs neither blocks the runner's writes nor starves its CPU.
PURGE_BATCH = 200
PURGE_PAUSE_SHARE = 2.0
#: How much the process that deletes runs lowers its CPU priority (``os.nice``).
PURGE_NICE = 10
#: Seconds a purge's child process may take before it is stopped (a million runs take about two minutes).
PURGE_CHILD_TIMEOUT = 3600.0
#: Connections the runner accepts in one go (and its listen queue): a burst of clients never takes more
#: descriptors at once than the reserve above leaves, before the longest idle ones are closed.
ACCEPT_BACKLOG = 32


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


def notify_timeout() -> float:
    """Seconds a webhook notification waits per attempt (``NBSCHED_NOTIFY_TIMEOUT``, else the default)."""
    return float(os.environ.get("NBSCHED_NOTIFY_TIMEOUT") or NOTIFY_TIMEOUT_SECONDS)


def retention_seconds() -> float:
    """Seconds between retention passes (``NBSCHED_RETENTION_SECONDS``, else the default)."""
    return float(os.environ.get("NBSCHED_RETENTION_SECONDS") or RETENTION_SECONDS)


def history_keep_default() -> str | None:
    """``NBSCHED_HISTORY_KEEP`` as typed (the runner reads it with ``model.retention.parse_keep``)."""
    return os.environ.get("NBSCHED_HISTORY_KEEP") or DEFAULT_HISTORY_KEEP


def secret_names() -> tuple[str, ...]:
    """``SECRET_NAMES`` and those ``NBSCHED_SECRET_NAMES`` adds, lower case."""
    extra = (os.environ.get("NBSCHED_SECRET_NAMES") or "").split(",")
    return (*SECRET_NAMES, *(name.strip().lower() for name in extra if name.strip()))


def ensure_home(home: Path) -> Path:
    """Create the home directory with mode 0700; refuse one that others own or may write to.

    Another user who can write to the home could plant a token, a socket or a store there, or read
    what the runner writes; an existing home that is only readable by others is tightened to 0700.
    """
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = os.stat(home)
    if info.st_uid != os.geteuid():
        raise RunnerError(
            f"NBSCHED_HOME {home} belongs to {_user(info.st_uid)}, not to you ({_user(os.geteuid())}); "
            "the runner keeps its token and store there. Use a folder of your own, e.g. NBSCHED_HOME=~/.nbsched."
        )
    if info.st_mode & 0o022:
        raise RunnerError(
            f"NBSCHED_HOME {home} can be written by other users (mode {stat.S_IMODE(info.st_mode):o}); "
            f"the runner keeps its token and store there. Make it yours alone: chmod 700 {home}"
        )
    os.chmod(home, 0o700)
    return home


def private_file(path: Path) -> None:
    """Make ``path`` readable and writable by its owner only: created empty if missing, tightened if not."""
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
    os.chmod(path, 0o600)


def _user(uid: int) -> str:
    import pwd

    try:
        return f"user {pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"
