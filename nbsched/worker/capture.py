"""What a run prints and logs, captured into the lines of its ``logs``."""

from __future__ import annotations

import io
import logging
import time

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: Log times are UTC, ISO 8601 with a ``Z``, whatever the worker's zone: unambiguous in the store, and shown
#: in the user's zone by the client (``client.frames.local_log_times``).
LOG_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"


class UTCFormatter(logging.Formatter):
    """``LOG_FORMAT`` with ``asctime`` as UTC ISO 8601 to the millisecond: ``2026-11-30T04:07:01.123Z``."""

    converter = time.gmtime
    default_time_format = LOG_TIME_FORMAT
    default_msec_format = "%s.%03dZ"


class Capture(io.TextIOBase):
    """A text stream (``sys.stdout`` and ``sys.stderr`` during a run) that appends what is written to its log lines."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        self.partial = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.partial += text
        *complete, self.partial = self.partial.split("\n")
        self.lines.extend(complete)
        return len(text)

    def finish(self) -> None:
        if self.partial:
            self.lines.append(self.partial)
            self.partial = ""


class ListHandler(logging.Handler):
    """A log handler that appends formatted records to a run's log lines."""

    def __init__(self, lines: list[str]):
        super().__init__(logging.DEBUG)
        self.lines = lines
        self.setFormatter(UTCFormatter(LOG_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # a bad log call must not fail the run
            self.lines.append(f"(unformattable log record: {record.msg!r})")
