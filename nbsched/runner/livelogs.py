"""Live logs, the runner's end: the lines of its running runs, kept in memory for followers, and the ``logs`` read.

Workers send a running run's new lines in small batches (``pipe.Logs``); the runner keeps the last
``config.LIVE_LOG_LINES`` of each run it is running, each cut at ``config.LIVE_LOG_LINE_CHARS`` (line offsets
stay absolute: a follower that fell behind is told how many it missed) and drops them when the run ends, from
then on the stored logs answer.
A follower asks for the lines after an offset and waits (long-poll) until there are some or the run ends.

Live lines come from the runner running the run. Asked about a run another runner of a shared store runs,
a runner answers "running, no lines" until the run ends, then with its stored logs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from .. import config
from ..errors import InvalidInput

#: Seconds between looks at the record of a run another runner of a shared store runs, while a follower waits.
ELSEWHERE_POLL_SECONDS = 0.2


@dataclass
class RunLines:
    """The last lines of one running run, the count of all it sent, and an event set when more come or it ends."""

    lines: deque[str]
    total: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def after(self, offset: int) -> tuple[list[str], int]:
        """The kept lines after the first ``offset`` of the run, and how many before them are no longer kept."""
        first = self.total - len(self.lines)
        start = max(offset, first)
        skipped = start - offset
        if start >= self.total:
            return [], skipped
        return list(self.lines)[start - first :], skipped


class LiveLogs:
    """The lines of the runs this runner is running, as they come."""

    def __init__(self, is_running: Callable[[int], bool], limit: int = config.LIVE_LOG_LINES):
        self.is_running = is_running
        self.limit = limit
        self.runs: dict[int, RunLines] = {}

    def _entry(self, run_id: int) -> RunLines | None:
        entry = self.runs.get(run_id)
        if entry is None and self.is_running(run_id):
            entry = self.runs[run_id] = RunLines(deque(maxlen=self.limit))
        elif entry is not None and not self.is_running(run_id):  # it left without an end (taken back to wait)
            self.end(run_id)
            return None
        return entry

    def add(self, run_id: int, first: int, lines: list[str]) -> None:
        """Lines a worker sent of a run, ``first`` lines of it before them; those of a run that has ended meanwhile
        are late and dropped."""
        entry = self._entry(run_id)
        if entry is None:
            return
        if first != entry.total:  # the worker counted lines it did not send: what is kept must stay contiguous
            entry.lines.clear()
        entry.lines.extend(lines)
        entry.total = first + len(lines)
        self._wake(entry)

    def end(self, run_id: int) -> None:
        """The run ended: its followers wake (to read its stored logs) and its lines go."""
        entry = self.runs.pop(run_id, None)
        if entry is not None:
            self._wake(entry)

    @staticmethod
    def _wake(entry: RunLines) -> None:
        entry.changed.set()
        entry.changed = asyncio.Event()

    def read(self, run_id: int, offset: int) -> tuple[list[str], int] | None:
        """The lines after ``offset`` of a run running here (and how many were skipped); None if it is not."""
        entry = self._entry(run_id)
        return None if entry is None else entry.after(offset)

    async def wait(self, run_id: int, offset: int, timeout: float) -> None:
        """Wait until the run running here has lines after ``offset``, ends, or ``timeout`` seconds pass."""
        entry = self._entry(run_id)
        if entry is None or entry.total > offset or timeout <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(entry.changed.wait(), timeout)


def check_follow_args(after, wait) -> tuple[int, float]:
    """``after`` and ``wait`` of a ``logs`` request, checked: a line offset and seconds to wait."""
    if isinstance(after, bool) or not isinstance(after, int) or after < 0:
        raise InvalidInput(f"Invalid after {after!r}: use a line offset, a whole number 0 or more, e.g. 0.")
    most = config.LOGS_MAX_WAIT_SECONDS
    if isinstance(wait, bool) or not isinstance(wait, int | float) or not 0 <= wait <= most:
        raise InvalidInput(f"Invalid wait {wait!r}: use seconds to wait for new lines, 0 to {most:g}, e.g. 10.")
    return after, float(wait)


async def read_logs(live: LiveLogs, reader, run_id, after, wait, clock: Callable[[], float], here: str) -> dict:
    """The ``logs`` operation: the lines of run ``run_id`` after the first ``after``, waiting up to ``wait``
    seconds for some; ``done`` once the run has ended (its stored logs, its status and error then).
    ``elsewhere`` names the runner of a shared store that runs it, when that is not this one (``here``)."""
    after, wait = check_follow_args(after, wait)
    record = reader.run(run_id)  # RunNotFound for an unknown or invalid id
    run_id, deadline = int(run_id), clock() + wait
    while True:
        await live.wait(run_id, after, deadline - clock())
        kept = live.read(run_id, after)
        if kept is not None and (kept[0] or clock() >= deadline):
            lines, skipped = kept
            return _reply(run_id, "running", lines, after + skipped + len(lines), skipped, done=False, live=True)
        if kept is None:
            record = reader.run(run_id)
            if record["status"] != "running":
                return _finished(record, after)
            if clock() >= deadline:
                other = record["runner"] if record["runner"] != here else None
                return _reply(run_id, "running", [], after, 0, done=False, live=False, elsewhere=other)
            await asyncio.sleep(min(ELSEWHERE_POLL_SECONDS, max(deadline - clock(), 0.0)))


def _finished(record: dict, after: int) -> dict:
    logs = record.get("logs") or ""
    lines = logs.split("\n") if logs else []
    reply = _reply(record["run_id"], record["status"], lines[after:], max(len(lines), after), 0, done=True, live=False)
    reply["error"] = record.get("error")
    return reply


def _reply(run_id, status, lines, next_offset, skipped, done, live, elsewhere=None) -> dict:
    return {
        "run_id": run_id,
        "status": status,
        "lines": lines,
        "next": next_offset,
        "skipped": skipped,
        "done": done,
        "live": live,
        "elsewhere": elsewhere,
    }
