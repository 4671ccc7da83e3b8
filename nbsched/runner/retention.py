"""Retention: finished runs deleted, with their executed notebooks, in small steps off the firing path.

A job's ``history_keep`` (or, for a job without one, ``NBSCHED_HISTORY_KEEP``) is applied by the runner every
``config.retention_seconds()``; ``client.purge(job=..., before=...)`` deletes on request. Either way the runs go
``config.PURGE_BATCH`` at a time, each step a short write of its own on a store connection of its own, with a
pause between steps, in a thread: the runner's claims never wait for more than one step. Runs of no job (invokes)
and of deleted jobs are kept until purged. The files of a deleted run go with it:
``NBSCHED_HOME/outputs/<job>/<run_id>.ipynb`` and ``.html``, and the file its output names if under ``outputs``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from .. import config
from ..errors import InvalidInput, JobNotFound, did_you_mean
from ..model.retention import Keep, keep_rule, parse_keep
from ..model.timeparse import parse_datetime, parse_duration
from ..store import DeletedRun, Purge, RunQuery, Store, open_store

log = logging.getLogger(__name__)
#: The suffixes of the files of a run under ``outputs/<job>/``.
OUTPUT_SUFFIXES = (".ipynb", ".html")


class Retention:
    """Deletes finished runs for one runner, one purge at a time, on a store connection it opens on first use."""

    def __init__(self, open_store: Callable[[], Store], home: Path, default: Keep | None = None):
        self.open_store = open_store
        self.outputs = home / "outputs"
        self.default = default
        self.store: Store | None = None
        self.lock = threading.Lock()
        self.closed = False

    def purge(self, purge: Purge) -> int:
        """Delete every finished run ``purge`` selects, and their files, step by step; return how many."""
        removed = 0
        with self.lock:
            if self.closed:
                return 0
            if self.store is None:
                self.store = self.open_store()
            while not self.closed:
                deleted = self.store.delete_runs(purge, config.PURGE_BATCH)
                self.remove_files(deleted)
                removed += len(deleted)
                if len(deleted) < config.PURGE_BATCH:
                    break
                time.sleep(config.PURGE_PAUSE_SECONDS)  # the write lock is free: claims go first
        return removed

    def apply(self, jobs: list[tuple[str, str, int | str | None]], now: datetime) -> int:
        """One pass over ``jobs`` (name, uid, history_keep): delete the runs each keeps no more; return how many."""
        removed = 0
        for name, uid, keep in jobs:
            rule = keep_rule(keep) if keep is not None else self.default
            if rule is not None and not self.closed:
                removed += self.purge(Purge(job=name, job_uid=uid, keep=rule.count, before=rule.before(now)))
        if removed:
            log.info("retention: %d finished run(s) deleted", removed)
        return removed

    def remove_files(self, runs: list[DeletedRun]) -> None:
        """The files of deleted runs: their executed notebooks and HTML, and the file the output names.

        Cheap when there are none (no ``outputs`` folder: one look per step), since it runs in the runner's process."""
        root = os.path.realpath(self.outputs)
        if not os.path.isdir(root):
            return
        folders: dict[str, str | None] = {}  # job -> its folder under outputs, if there is one
        for run in runs:
            paths = []
            if run.job:
                if run.job not in folders:
                    folder = os.path.realpath(os.path.join(root, run.job))
                    folders[run.job] = folder if _inside(folder, root) and os.path.isdir(folder) else None
                if folders[run.job]:
                    paths = [os.path.join(folders[run.job], f"{run.run_id}{suffix}") for suffix in OUTPUT_SUFFIXES]
            named = output_file(run.output, root)
            if named is not None:
                paths += [named, os.path.splitext(named)[0] + ".html"]
            for path in paths:
                with contextlib.suppress(FileNotFoundError, NotADirectoryError, IsADirectoryError):
                    os.unlink(path)

    def close(self) -> None:
        self.closed = True
        with self.lock:
            if self.store is not None:
                self.store.close()
                self.store = None


def default_keep() -> Keep | None:
    """``NBSCHED_HISTORY_KEEP`` read, or None (unset: keep everything); an invalid one is refused by name."""
    try:
        return keep_rule(parse_keep(config.history_keep_default(), field="NBSCHED_HISTORY_KEEP"))
    except InvalidInput as exc:
        raise InvalidInput(f"{exc} (environment variable NBSCHED_HISTORY_KEEP)") from None


def output_file(output: object, root: str) -> str | None:
    """The file a run's output names, if it is one under the folder ``root`` (a real path); None for any other
    output (a string test first: most outputs are no path at all)."""
    if not isinstance(output, str) or not output.startswith(root + os.sep) or len(output) > 4096 or "\n" in output:
        return None
    path = os.path.realpath(output)
    return path if _inside(path, root) else None


def _inside(path: str, root: str) -> bool:
    return path.startswith(root + os.sep)


def store_opener(url: str, store: Store) -> Callable[[], Store]:
    """What opens retention's own connection to the store at ``url`` (a store in memory: ``store`` itself)."""
    return (lambda: store) if url.startswith("memory") else (lambda: open_store(url))


def purge_request(job: object, before: object, now: datetime, tz: str, jobs: list[str], store: Store) -> Purge:
    """A purge as asked for (``client.purge``): ``job`` a job's name (its runs, a deleted job's of that name too),
    ``before`` an age (``"30d"``: finished more than 30 days ago) or a date; at least one of them."""
    if job in (None, "") and before in (None, ""):
        raise InvalidInput(
            "A purge needs job= or before= (or both), e.g. before='30d' for the runs that finished over 30 days ago.",
            field="before",
        )
    if job not in (None, "") and not isinstance(job, str):
        raise InvalidInput(f"Invalid job {job!r}: use a job's name, e.g. 'sync'.", field="job")
    if job and job not in jobs and not store.runs(RunQuery(job=job, limit=1)):
        raise JobNotFound(
            f"No job named {job!r} and no runs of one.{did_you_mean(job, jobs)} Jobs: {', '.join(jobs[:20]) or 'none'}."
        )
    return Purge(job=job or None, before=_before(before, now, tz))


def _before(value: object, now: datetime, tz: str) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        return now - parse_duration(value, "before")
    except InvalidInput:
        pass
    try:
        return parse_datetime(value, tz, now, "before")
    except InvalidInput:
        raise InvalidInput(
            f"Invalid before {value!r:.60}: use an age, e.g. '30d' (runs finished over 30 days ago), "
            "or a date, e.g. '2026-11-01 00:00'.",
            field="before",
        ) from None
