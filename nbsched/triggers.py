"""Triggers: pure functions of time that say when a job fires.

``first_fire(start)`` is the first fire at or after ``start``; ``next_fire(after)`` the first
fire strictly after ``after``. Neither reads the clock. All datetimes are aware, in UTC.

croniter is imported here and nowhere else. It walks wall-clock times; this module maps them
to real instants following Debian's cron (the behaviour of the ``cronsim`` package):

* a job with fixed minute and hour fields runs at wall-clock times: a time skipped by
  spring-forward fires at the first instant after the gap, and a time repeated by fall-back
  fires once, at its first occurrence;
* a job whose minute or hour field starts with ``*`` (or any 6-field job) keeps its real-time
  rhythm: wall-clock times inside a gap do not happen, and repeated ones happen twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import CroniterBadCronError, CroniterBadDateError, CroniterError, croniter

from .errors import InvalidJob
from .timeparse import exists, format_duration, gap_end, zone

CRON_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
CRON_HELP = (
    "a cron line has 5 fields (minute hour day-of-month month day-of-week), e.g. '*/5 9-17 * * mon-fri', "
    "or 6 with seconds first, or an alias such as @hourly or @daily"
)
_LOOKBACK = timedelta(hours=3)  # longer than any DST shift in the tz database


@dataclass(frozen=True)
class OneTime:
    """Fires once, at ``at``."""

    at: datetime

    def __post_init__(self) -> None:
        _require_aware(self.at, "at")

    def first_fire(self, start: datetime) -> datetime | None:
        return self.at

    def next_fire(self, after: datetime) -> datetime | None:
        return self.at if self.at > after else None

    def describe(self) -> str:
        return f"once at {self.at.isoformat()}"


@dataclass(frozen=True)
class Interval:
    """Fires on the grid ``anchor + k * every`` (k >= 0): a slow run never shifts later fires."""

    every: timedelta
    anchor: datetime

    def __post_init__(self) -> None:
        _require_aware(self.anchor, "start")
        if self.every <= timedelta(0):
            raise InvalidJob(
                f"Invalid interval {format_duration(self.every)}: it must be positive, e.g. '90s', '5m' or '1h30m'."
            )

    def first_fire(self, start: datetime) -> datetime | None:
        return self._on_grid_from(start, strictly_after=False)

    def next_fire(self, after: datetime) -> datetime | None:
        return self._on_grid_from(after, strictly_after=True)

    def _on_grid_from(self, moment: datetime, strictly_after: bool) -> datetime:
        if moment < self.anchor:
            return self.anchor
        steps = (moment - self.anchor) / self.every
        k = math.floor(steps) + 1 if strictly_after else math.ceil(steps)
        fire = self.anchor + self.every * k
        # Float rounding of large step counts: nudge onto the right side of ``moment``.
        while fire <= moment if strictly_after else fire < moment:
            fire += self.every
        return fire

    def describe(self) -> str:
        return f"every {format_duration(self.every)}"


@dataclass(frozen=True)
class Cron:
    """Fires at the times a cron line matches, read in the IANA time zone ``tz``."""

    expression: str
    tz: str = "UTC"

    def __post_init__(self) -> None:
        object.__setattr__(self, "expression", normalize_cron(self.expression))
        zone(self.tz)

    @property
    def _zone(self) -> ZoneInfo:
        return zone(self.tz)

    @property
    def _seconds_field(self) -> bool:
        return len(self.expression.split()) == 6

    @property
    def wall_clock(self) -> bool:
        """True when the job follows local wall-clock times (fixed minute and hour, 5 fields)."""
        fields = self.expression.split()
        return len(fields) == 5 and not fields[0].startswith("*") and not fields[1].startswith("*")

    def first_fire(self, start: datetime) -> datetime | None:
        return self.next_fire(start - timedelta(microseconds=1))

    def next_fire(self, after: datetime) -> datetime | None:
        _require_aware(after, "after")
        tz = self._zone
        try:
            if self.wall_clock:
                return self._next_wall_clock(after, tz)
            return self._next_real_time(after, tz)
        except (CroniterBadDateError, OverflowError, ValueError):  # no match, or past year 9999
            return None

    def _local_times(self, naive_start: datetime):
        walker = croniter(self.expression, naive_start, second_at_beginning=self._seconds_field)
        while True:
            yield walker.get_next(datetime)

    def _next_wall_clock(self, after: datetime, tz: ZoneInfo) -> datetime:
        naive_after = after.astimezone(tz).replace(tzinfo=None)
        for local in self._local_times(naive_after):
            fire = local.replace(tzinfo=tz, fold=0).astimezone(UTC) if exists(local, tz) else gap_end(local, tz)
            if fire > after:
                return fire
        raise AssertionError("unreachable")  # pragma: no cover

    def _next_real_time(self, after: datetime, tz: ZoneInfo) -> datetime:
        local_after = after.astimezone(tz)
        shift = local_after.utcoffset() - (after + _LOOKBACK).astimezone(tz).utcoffset()
        # Ahead of a fall-back, the next instant can read earlier on the clock than ``after``.
        naive_start = local_after.replace(tzinfo=None) - max(shift, timedelta(0))
        best: datetime | None = None
        for local in self._local_times(naive_start):
            instants = _instants(local, tz)
            if best is not None and instants and instants[0] >= best:
                return best
            for fire in instants:
                if fire > after and (best is None or fire < best):
                    best = fire
        raise AssertionError("unreachable")  # pragma: no cover

    def describe(self) -> str:
        """A plain-English reading of the cron line (cron-descriptor)."""
        from cron_descriptor import Options, get_description

        options = Options()
        options.use_24hour_time_format = True
        fields = self.expression.split()
        text = fields if not self._seconds_field else [*fields[1:], fields[0]]
        try:
            description = get_description(" ".join(text), options)
        except Exception:  # cron-descriptor refuses some lines croniter accepts
            description = self.expression
        return f"{description} ({self.tz})"


def _instants(local: datetime, tz: ZoneInfo) -> list[datetime]:
    """The real instants at which the wall-clock time ``local`` happens: none, one or two."""
    if not exists(local, tz):
        return []
    first = local.replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = local.replace(tzinfo=tz, fold=1).astimezone(UTC)
    return [first] if first == second else sorted([first, second])


def normalize_cron(expression: object) -> str:
    """Validate a cron line and return it with aliases expanded and spaces tidied."""
    if not isinstance(expression, str) or not expression.strip():
        raise InvalidJob(f"Invalid cron expression {expression!r}: {CRON_HELP}.")
    text = " ".join(expression.split())
    text = CRON_ALIASES.get(text.lower(), text)
    fields = text.split()
    if text.startswith("@"):
        raise InvalidJob(f"Unknown cron alias {expression!r}: use one of {', '.join(CRON_ALIASES)}; {CRON_HELP}.")
    if len(fields) not in (5, 6):
        raise InvalidJob(f"Invalid cron expression {expression!r}: it has {len(fields)} fields; {CRON_HELP}.")
    try:
        croniter(text, datetime(2000, 1, 1), second_at_beginning=len(fields) == 6).get_next(datetime)
    except CroniterBadDateError:
        raise InvalidJob(
            f"Invalid cron expression {expression!r}: it matches no date (check the day-of-month and month fields); "
            f"{CRON_HELP}."
        ) from None
    except (CroniterBadCronError, CroniterError, ValueError, KeyError, IndexError) as exc:
        reason = str(exc).split("] ", 1)[-1] if str(exc) else "not understood"
        raise InvalidJob(f"Invalid cron expression {expression!r} ({reason}): {CRON_HELP}.") from None
    return text


def _require_aware(moment: datetime, what: str) -> None:
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise InvalidJob(f"Invalid {what} {moment!r}: expected a time-zone-aware datetime.")


Trigger = OneTime | Interval | Cron
