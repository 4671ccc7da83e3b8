"""Following a run's logs: its lines as they are written, until it ends (``Client.follow``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from .. import config

if TYPE_CHECKING:
    from .api import Client


def follow_chunks(client: Client, run_id: int, wait: float = config.LOGS_FOLLOW_WAIT_SECONDS) -> Iterator[list[str]]:
    """Yield the run's log lines, a list per answer of the runner, until the run has ended and its stored logs
    are out.

    Each request waits up to ``wait`` seconds for new lines (long-poll), so a quiet run costs a request per
    ``wait``. Lines the runner no longer kept (a follower far behind a chatty run) are announced by one line;
    so is a run on another runner of a shared store, whose lines show when it ends.
    """
    after, told = 0, False
    while True:
        chunk = client.logs(run_id, after=after, wait=wait)
        lines = chunk["lines"]
        if chunk["skipped"]:
            lines = [f"... ({chunk['skipped']} earlier line(s) no longer kept)", *lines]
        if chunk.get("elsewhere") and not told:
            told = True
            lines = [f"(run {run_id} runs on runner {chunk['elsewhere']}: its logs show here when it ends)", *lines]
        if lines:
            yield lines
        after = chunk["next"]
        if chunk["done"]:
            return


def follow_lines(client: Client, run_id: int) -> Iterator[str]:
    """Yield the run's log lines one by one as they are written, until it ends (see ``follow_chunks``)."""
    for lines in follow_chunks(client, run_id):
        yield from lines
