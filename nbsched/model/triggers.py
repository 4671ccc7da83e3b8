"""Triggers: pure functions of time that say when a job fires.

``first_fire(start)`` is the first fire at or after ``start``; ``next_fire(after)`` the first
fire strictly after ``after``. Neither reads the clock. All datetimes are aware, in UTC.

A cron line is compiled by ``cron`` into its local wall-clock times; ``Cron`` maps them to real
instants following Debian's cron (the behaviour of the ``cronsim`` package):

* a job with fixed minute and hour fields (and a fixed second, in a 6-field line) runs at
  wall-clock times: a time skipped by spring-forward fires at the first instant after the gap,
  and a time repeated by fall-back fires once, at its first occurrence;
* a job whose second, minute or hour field starts with ``*`` keeps its real-time rhythm:
  wall-clock times inside a gap do not happen, and repeated ones happen twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from ..errors import InvalidInput, InvalidJob
from . import cron
from .timeparse import format_duration, gap_end, parse_datetime, parse_duration, utcnow, zone

_LOOKBACK = timedelta(hours=3)  # longer than any DST shift in the tz database
_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "GMT", "Etc/GMT", "UCT", "Etc/UCT", "Universal", "Etc/Universal", "Zulu"})


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
class Interval:
    """Fires on the grid ``anchor + k * every`` (k >= 0): a slow run never shifts later fires."""

    every: timedelta
    anchor: datetime

    def __post_init__(self) -> None:
        _require_aware(self.anchor, "start")
        if self.every <= timedelta(0):
            raise InvalidJob(
                f"Invalid interval {format_duration(self.every)}: it must be positive, e.g. '90s', '5m' or '1h30m'.",
                field="every",
            )

    def first_fire(self, start: datetime) -> datetime | None:
        return self._on_grid_from(start, strictly_after=False)

    def next_fire(self, after: datetime) -> datetime | None:
        return self._on_grid_from(after, strictly_after=True)

    def _on_grid_from(self, moment: datetime, strictly_after: bool) -> datetime:
        return on_grid_from(self.anchor, self.every, moment, strictly_after)

    def describe(self) -> str:
        return f"every {format_duration(self.every)}"


def on_grid_from(anchor: datetime, every: timedelta, moment: datetime, strictly_after: bool) -> datetime:
    """The first time of the grid ``anchor + k * every`` (k >= 0) at or (``strictly_after``) after ``moment``."""
    if moment < anchor:
        return anchor
    steps = (moment - anchor) / every
    k = math.floor(steps) + 1 if strictly_after else math.ceil(steps)
    fire = anchor + every * k
    # Float rounding of large step counts: nudge onto the right side of ``moment``.
    while fire <= moment if strictly_after else fire < moment:
        fire += every
    return fire


@dataclass(frozen=True, slots=True)
class Cron:
    """Fires at the times a cron line matches, read in the IANA time zone ``tz``.

    ``seed`` is what ``H`` in the line hashes: the job's name, so the times are the job's own.
    """

    expression: str
    tz: str = "UTC"
    seed: str | None = None
    line: cron.CronLine = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "expression", cron.normalize(self.expression))
        zone(self.tz)
        object.__setattr__(self, "line", cron.compile_line(self.expression, self.seed))

    @property
    def wall_clock(self) -> bool:
        """True when the job follows local wall-clock times across DST (fixed second, minute and hour)."""
        return self.line.wall_clock

    def first_fire(self, start: datetime) -> datetime | None:
        return self.next_fire(start - timedelta(microseconds=1))

    def next_fire(self, after: datetime) -> datetime | None:
        _require_aware(after, "after")
        try:
            if self.tz in _UTC_NAMES:
                local = self.line.next_after(after.astimezone(UTC).replace(tzinfo=None))
                return None if local is None else local.replace(tzinfo=UTC)
            tz = zone(self.tz)
            if self.line.wall_clock:
                return self._next_wall_clock(after, tz)
            return self._next_real_time(after, tz)
        except OverflowError:  # past year 9999
            return None

    def _next_wall_clock(self, after: datetime, tz: ZoneInfo) -> datetime | None:
        local = after.astimezone(tz).replace(tzinfo=None)
        while (local := self.line.next_after(local)) is not None:
            instants = _instants(local, tz)
            fire = instants[0] if instants else gap_end(local, tz)
            if fire > after:
                return fire
        return None

    def _next_real_time(self, after: datetime, tz: ZoneInfo) -> datetime | None:
        local_after = after.astimezone(tz)
        # Ahead of a fall-back, the next instant can read earlier on the clock than ``after``.
        shift = local_after.utcoffset() - (after + _LOOKBACK).astimezone(tz).utcoffset()
        local = local_after.replace(tzinfo=None) - max(shift, timedelta(0))
        best: datetime | None = None
        while (local := self.line.next_after(local)) is not None:
            instants = _instants(local, tz)
            if best is not None and instants and instants[0] >= best:
                break
            later = [fire for fire in instants if fire > after]
            if later and (best is None or later[0] < best):
                best = later[0]
            if best is not None and shift <= timedelta(0):
                break
        return best

    def describe(self) -> str:
        """A plain-English reading of the cron line (cronsim's, which reads fields as Debian does)."""
        from cronsim import CronSim

        fields = self.line.resolved.split()
        text = " ".join(fields[1:] if len(self.expression.split()) == 5 else fields)
        try:
            description = CronSim(text, datetime(2000, 1, 1)).explain()
        except Exception:  # a reading is a courtesy: the line itself was already checked
            description = self.expression
        return f"{description} ({self.tz})"


def _instants(local: datetime, tz: ZoneInfo) -> list[datetime]:
    """The real instants at which the wall-clock time ``local`` happens: none, one or two."""
    before = local.replace(tzinfo=tz).utcoffset()
    after = local.replace(tzinfo=tz, fold=1).utcoffset()
    if before == after:
        return [(local - before).replace(tzinfo=UTC)]
    if before > after:  # the hour repeated at fall-back
        return [(local - before).replace(tzinfo=UTC), (local - after).replace(tzinfo=UTC)]
    return []  # inside the gap of spring-forward


def _require_aware(moment: datetime, what: str) -> None:
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise InvalidJob(f"Invalid {what} {moment!r}: expected a time-zone-aware datetime.", field=what)


Trigger = OneTime | Interval | Cron


#: The options that name a trigger; a job or a preview has exactly one.
TRIGGER_OPTIONS = ("every", "cron", "at")


def pick_trigger(values: dict, what: str) -> str:
    """Which one of ``every``, ``cron`` and ``at`` ``values`` gives (a job's options, a preview's arguments), or
    ``InvalidJob`` naming ``what`` and showing the three valid forms."""
    given = [key for key in TRIGGER_OPTIONS if values.get(key) not in (None, "")]
    if len(given) != 1:
        raise InvalidJob(
            f"{what} needs exactly one of every, cron or at (got {' and '.join(given) or 'none'}), "
            "e.g. every='5m', cron='0 9 * * mon' or at='2026-11-25 10:00'.",
            field="kind",
        )
    return given[0]


@dataclass(frozen=True)
class Preview:
    """The next fire times of a schedule (aware, in its time zone) and a plain-English reading."""

    times: list[datetime]
    description: str

    def __str__(self) -> str:
        return "\n".join([self.description, *(f"  {moment.isoformat()}" for moment in self.times)])


def preview(
    cron: str | None = None,
    every=None,
    at=None,
    tz: str | None = None,
    count: int = 5,
    after=None,
    start=None,
    name: str | None = None,
    now: datetime | None = None,
) -> Preview:
    """The next ``count`` fire times of a schedule, computed here: no runner, no clock but ``now``.

    Exactly one of ``cron``, ``every`` or ``at``. The times are the fires at or after ``after``
    (default: now): a fire at exactly ``after`` counts. ``tz`` defaults to ``NBSCHED_TIMEZONE``;
    dates typed without an offset are read in it. ``name`` is the job's name, which ``H`` in a
    cron line hashes, so a preview of an ``H`` line shows that job's real times. ``start`` anchors
    an interval's grid (default: ``after``).
    """
    from .. import config

    tz = tz or config.settings().timezone
    local = zone(tz)
    now = now or utcnow()
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 1000:
        raise InvalidInput(f"Invalid count {count!r}: use a whole number from 1 to 1000.", field="count")
    moment = parse_datetime(after, tz, now, "after") if after not in (None, "") else now
    kind = pick_trigger({"every": every, "cron": cron, "at": at}, "A preview")
    if kind == "cron":
        trigger: Trigger = Cron(cron, tz, seed=name)
    elif kind == "every":
        anchor = parse_datetime(start, tz, now, "start") if start else moment
        trigger = Interval(parse_duration(every, "interval"), anchor)
    else:
        trigger = OneTime(parse_datetime(at, tz, now, "at"))
    times, fire = [], trigger.first_fire(moment)
    while fire is not None and len(times) < count:
        times.append(fire.astimezone(local))
        fire = trigger.next_fire(fire)
    return Preview(times=times, description=trigger.describe())
