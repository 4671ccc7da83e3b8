"""Retention: finished runs deleted, with their executed notebooks, in small steps off the firing path.

A job's ``history_keep`` (or, for a job without one, ``NBSCHED_HISTORY_KEEP``) is applied by the runner every
``config.retention_seconds()``; ``client.purge(job=..., before=...)`` deletes on request. Either way the runs go
``config.PURGE_BATCH`` at a time, each step a short write of its own, with a pause between steps, by a child
process on a store connection of its own, at a low CPU priority: the runner's event loop and interpreter lock never
wait for it, its writes wait at most for one step, and its workers get the CPU first. Runs of no job (invokes) and
of deleted jobs are kept until purged. The files of a deleted run go with it:
``NBSCHED_HOME/outputs/<job>/<run_id>.ipynb`` and ``.html``, and the file its output names if under ``outputs``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from subprocess import PIPE

from .. import config
from ..errors import InvalidInput, JobNotFound, StoreError, did_you_mean
from ..model.retention import Keep, keep_rule, parse_keep
from ..model.timeparse import from_iso, iso, parse_datetime, parse_duration
from ..store import DeletedRun, Purge, RunQuery, Store

log = logging.getLogger(__name__)
#: The suffixes of the files of a run under ``outputs/<job>/``.
OUTPUT_SUFFIXES = (".ipynb", ".html")


class Deleter:
    """Deletes the runs of purges from one store, step by step, and their files under ``home``'s ``outputs``."""

    def __init__(self, store: Store, home: Path):
        self.store = store
        self.outputs = home / "outputs"

    def purge(self, purge: Purge, stop: Callable[[], bool] = lambda: False) -> int:
        """Delete every finished run ``purge`` selects, and their files; return how many."""
        removed = 0
        while not stop():
            began = time.perf_counter()
            deleted = self.store.delete_runs(purge, config.PURGE_BATCH)
            self.remove_files(deleted)
            removed += len(deleted)
            if len(deleted) < config.PURGE_BATCH:
                break
            time.sleep((time.perf_counter() - began) * config.PURGE_PAUSE_SHARE)  # the runner's writes go first
        return removed

    def remove_files(self, runs: list[DeletedRun]) -> None:
        """The files of deleted runs: their executed notebooks and HTML, and the file the output names.

        Cheap when there are none (no ``outputs`` folder: one look per step): a few system calls per run."""
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
                _remove(path)


class Retention:
    """The runner's purges, one at a time: by a child process (``retention_child``) on a store connection of its
    own, so that neither the runner's event loop nor its interpreter lock waits for one (a store in memory, which
    no other process can open: in a thread of the runner)."""

    def __init__(self, store_url: str, store: Store, home: Path, default: Keep | None = None):
        self.store_url = store_url
        self.in_process = Deleter(store, home) if store_url.startswith("memory") else None
        self.home = home
        self.default = default
        self.lock = threading.Lock()
        self.child: subprocess.Popen | None = None
        self.closed = False

    def purge(self, purges: list[Purge]) -> int:
        """Delete the runs of ``purges`` (in a thread: this waits for the child); return how many went."""
        with self.lock:
            if self.closed or not purges:
                return 0
            if self.in_process is not None:
                return sum(self.in_process.purge(purge, stop=lambda: self.closed) for purge in purges)
            return self._in_child(purges)

    def _in_child(self, purges: list[Purge]) -> int:
        request = {"store": self.store_url, "home": str(self.home), "purges": [purge_record(p) for p in purges]}
        command = [sys.executable, "-m", "nbsched.runner.retention_child"]
        child = self.child = subprocess.Popen(command, stdin=PIPE, stdout=PIPE, stderr=PIPE)
        if self.closed:  # ``close`` came between the check in ``purge`` and the start: it found no child to stop
            child.terminate()
        try:
            out, err = child.communicate(json.dumps(request).encode(), timeout=config.PURGE_CHILD_TIMEOUT)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            raise StoreError(
                f"Deleting runs took longer than {config.PURGE_CHILD_TIMEOUT:g}s and was stopped; the runs deleted "
                "so far stay deleted, the next retention pass goes on."
            ) from None
        finally:
            code, self.child = child.returncode, None
        if code != 0:
            reason = err.decode(errors="replace").strip().splitlines()[-1:] or [f"exit code {code}"]
            raise StoreError(f"Deleting runs failed: {reason[0]}")
        return json.loads(out)["removed"]

    def apply(self, jobs: list[tuple[str, str, int | str | None]], now: datetime) -> int:
        """One pass over ``jobs`` (name, uid, history_keep): delete the runs each keeps no more; return how many."""
        purges = []
        for name, uid, keep in jobs:
            rule = keep_rule(keep) if keep is not None else self.default
            if rule is not None:
                purges.append(Purge(job=name, job_uid=uid, keep=rule.count, before=rule.before(now)))
        removed = self.purge(purges)
        if removed:
            log.info("retention: %d finished run(s) deleted", removed)
        return removed

    def close(self) -> None:
        """Stop a purge under way (its steps done so far stay done)."""
        self.closed = True
        child = self.child
        if child is not None:
            with contextlib.suppress(ProcessLookupError):
                child.terminate()
        with self.lock:
            pass


def purge_record(purge: Purge) -> dict:
    """A purge as JSON (for the child process)."""
    return {**purge.__dict__, "before": iso(purge.before)}


def purge_from_record(record: dict) -> Purge:
    """A purge from its JSON (``purge_record``)."""
    return Purge(**{**record, "before": from_iso(record["before"])})


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
    """Whether ``path`` is in the folder ``root`` (both real paths)."""
    return path.startswith(root + os.sep)


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


def _remove(path: str) -> None:
    """Remove a run's file; one that is gone already is fine, one that cannot be removed is said, not fatal (its
    run's row is deleted already: the step goes on)."""
    try:
        os.unlink(path)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        pass
    except OSError as exc:
        log.warning("retention: %s could not be removed: %s", path, exc)
