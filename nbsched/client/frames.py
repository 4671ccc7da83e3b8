"""Frames: the one place that builds the client's pandas DataFrames (and shows runner times in a time zone).

pandas and pyarrow are imported when a frame is built, so ``import nbsched`` stays light for workers,
the runner and the CLI's table output.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

#: The columns of a run that are times; shown in the user's time zone.
RUN_TIME_COLUMNS = ("scheduled_at", "started_at", "finished_at")
#: The columns of a job listing that are times.
JOB_TIME_COLUMNS = ("next_run", "last_run")
#: The UTC time a logged line of a run starts with (``worker.capture.UTCFormatter``).
_LOG_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", re.MULTILINE)


def local_time(value: Any, tz: str) -> datetime | None:
    """A time from the runner (aware, or ISO text with an offset) in the time zone ``tz``; None stays None."""
    if value is None:
        return None
    from ..model.timeparse import zone

    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment.astimezone(zone(tz))


def run_record(record: dict, tz: str) -> dict:
    """One run as the client shows it: its times, and the times its log lines start with, in ``tz``."""
    shown = {key: local_time(value, tz) if key in RUN_TIME_COLUMNS else value for key, value in record.items()}
    if isinstance(shown.get("logs"), str):
        shown["logs"] = local_log_times(shown["logs"], tz)
    return shown


def local_log_times(logs: str, tz: str) -> str:
    """A run's log text with the UTC time each logged line starts with (``2026-11-30T04:07:01.123Z``) in ``tz``."""
    from ..model.timeparse import zone

    where = zone(tz)

    def shown(match: re.Match) -> str:
        moment = datetime.fromisoformat(match[0].replace("Z", "+00:00")).astimezone(where)
        return moment.isoformat(timespec="milliseconds")

    return _LOG_TIME.sub(shown, logs)


def local_log_lines(lines: list[str], tz: str) -> list[str]:
    """Log lines (``local_log_times``) with their UTC times in ``tz``."""
    return local_log_times("\n".join(lines), tz).split("\n") if lines else []


def from_records(records: list[dict], columns, tz: str, time_columns):
    import pandas as pd

    frame = pd.DataFrame.from_records(records, columns=list(columns))
    return _localize(frame, tz, time_columns)


#: Tables of at least this many rows are converted to pandas on several threads (fewer: threads cost more).
THREADED_ROWS = 10_000


def from_arrow(table, tz: str, time_columns):
    """A DataFrame of an Arrow table: repeated texts (dictionary-encoded on the wire) as plain text again, and
    the times in ``tz`` (given as the columns' dtype: the values, UTC instants, are not touched)."""
    import pandas as pd
    import pyarrow as pa

    columns, zones = table.columns, {}
    for i, field in enumerate(table.schema):
        if pa.types.is_dictionary(field.type):
            columns[i] = columns[i].cast(pa.string())
        elif field.name in time_columns and pa.types.is_timestamp(field.type):
            zones[field.type] = pd.DatetimeTZDtype(field.type.unit, tz)
    table = pa.Table.from_arrays(columns, names=table.column_names)
    return table.to_pandas(types_mapper=zones.get, use_threads=table.num_rows >= THREADED_ROWS)


def _localize(frame, tz: str, time_columns):
    import pandas as pd

    for column in time_columns:
        if column in frame:
            frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601").dt.tz_convert(tz)
    return frame
