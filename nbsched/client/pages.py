"""Pages and streams: listings a front end reads a part at a time (one page of jobs or runs, a history streamed).

``Page`` is one page of a listing and how far it goes; ``read_stream`` reads the chunks of a reply the
runner sends as it reads them (``protocol.Stream``), one chunk in memory at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import orjson

from .. import protocol
from ..errors import ProtocolError
from . import frames

#: Rows of a page unless told otherwise (the dashboard's tables, ``jobs_page``, ``history_page``).
PAGE_ROWS = 50


@dataclass(frozen=True)
class Page:
    """One page of a listing: its rows (dicts, times in the user's zone), where it starts, and how far the
    listing goes: ``total`` rows when the runner counted them (jobs), else ``more`` says whether rows follow."""

    rows: list[dict]
    offset: int
    total: int | None
    more: bool

    @property
    def end(self) -> int:
        """The position after the page's last row (``offset + len(rows)``)."""
        return self.offset + len(self.rows)


def job_page(result: dict, tz: str) -> Page:
    rows = [_local(record, frames.JOB_TIME_COLUMNS, tz) for record in result["rows"]]
    total = int(result["total"])
    return Page(rows, int(result["offset"]), total, result["offset"] + len(rows) < total)


def run_page(result: dict, limit: int, offset: int, tz: str) -> Page:
    """A page of runs from a history reply asked for ``limit + 1`` rows: the extra one only says more follow."""
    columns = result["columns"]
    rows = [_local(dict(zip(columns, row, strict=True)), frames.RUN_TIME_COLUMNS, tz) for row in result["rows"]]
    return Page(rows[:limit], offset, None, len(rows) > limit)


def _local(record: dict, time_columns, tz: str) -> dict:
    for key in time_columns:
        if key in record:
            record[key] = frames.local_time(record[key], tz)
    return record


def read_stream(buffer: BinaryIO, header: dict) -> Iterator[list]:
    """The rows of a streamed reply whose ``header`` was read from ``buffer``: each chunk (a JSON array of rows)
    read and decoded as the caller comes to it. A runner error after the chunks is raised as its own class."""
    if not isinstance(header.get("stream"), dict):
        raise ProtocolError("The runner announced a stream without saying what it holds.")
    while True:
        size = _chunk_size(buffer.readline())
        if size == 0:
            break
        chunk = buffer.read(size)
        if len(chunk) != size:
            raise ConnectionResetError(f"runner closed the connection after {len(chunk)} of {size} bytes")
        yield from orjson.loads(chunk)
    last = protocol.parse_reply(buffer.readline() or b"{}")
    if not last.get("ok"):
        raise protocol.remote_error(last.get("error"))


def _chunk_size(line: bytes) -> int:
    if not line:
        raise ConnectionResetError("runner closed the connection in the middle of a stream")
    try:
        size = int(line)
    except ValueError:
        raise ProtocolError(f"The runner sent {line[:40]!r} where a chunk's size belongs.") from None
    if size < 0:
        raise ProtocolError(f"The runner announced a chunk of {size} bytes.")
    return size


def paging_args(limit: Any, offset: Any, filter: Any, sort: Any) -> dict:
    """The paging arguments a caller gave, for the wire (the runner checks them)."""
    given = {"limit": limit, "offset": offset or None, "filter": filter, "sort": None if sort == "name" else sort}
    return {key: value for key, value in given.items() if value is not None}
