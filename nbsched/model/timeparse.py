"""Reading durations, dates and time zones the way users type them.

Everything returned is tz-aware; a date without an offset is read in the time zone
given (the user's ``NBSCHED_TIMEZONE`` unless the job names its own).
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import InvalidInput

_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds", "ms": "milliseconds"}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|w|d|h|m|s)")
_DURATION_HELP = "a duration looks like '90s', '5m', '2h', '1d', '1w' or '1h30m'"
_DATE_HELP = "dates look like '2026-11-25 10:00', '2026-11-25T10:00:00+01:00', 'now' or 'in 10m'"
DICT_KEYS = ("weeks", "days", "hours", "minutes", "seconds")


def parse_duration(value: object, what: str = "duration") -> timedelta:
    """Read ``value`` ("1h30m", a timedelta, seconds as a number, or Zato's dict) as a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise InvalidInput(f"Invalid {what} {value!r}: {_DURATION_HELP}.")
    if isinstance(value, int | float):
        return _timedelta(value, what, seconds=value)
    if isinstance(value, dict):
        return _duration_from_dict(value, what)
    if isinstance(value, str):
        return _duration_from_text(value, what)
    raise InvalidInput(f"Invalid {what} {value!r}: {_DURATION_HELP}.")


def _duration_from_text(text: str, what: str) -> timedelta:
    compact = text.strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", compact):
        return _timedelta(text, what, seconds=float(compact))
    parts = _DURATION_PART.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise InvalidInput(f"Invalid {what} {text!r}: {_DURATION_HELP}.")
    return _timedelta(text, what, **_sum_units((_UNITS[u], float(n)) for n, u in parts))


def _timedelta(value: object, what: str, **parts: float) -> timedelta:
    """``timedelta(**parts)``, refusing NaN, infinity and durations longer than timedelta can hold."""
    try:
        return timedelta(**parts)
    except (OverflowError, ValueError):
        raise InvalidInput(f"Invalid {what} {value!r}: not a finite duration of sane size; {_DURATION_HELP}.") from None


def _sum_units(pairs) -> dict[str, float]:
    total: dict[str, float] = {}
    for unit, amount in pairs:
        total[unit] = total.get(unit, 0.0) + amount
    return total


def _duration_from_dict(value: dict, what: str) -> timedelta:
    unknown = sorted(set(value) - set(DICT_KEYS))
    if unknown:
        raise InvalidInput(
            f"Invalid {what}: unknown key(s) {', '.join(map(repr, unknown))}; "
            f"use any of {', '.join(DICT_KEYS)}, e.g. {{'minutes': 5}}."
        )
    try:
        return timedelta(**{k: float(v) for k, v in value.items()})
    except (TypeError, ValueError, OverflowError):
        raise InvalidInput(f"Invalid {what} {value!r}: each value must be a number, e.g. {{'hours': 1}}.") from None


def format_duration(delta: timedelta) -> str:
    """Write a timedelta compactly: 5400 s -> '1h30m'."""
    total = delta.total_seconds()
    if total <= 0:
        return f"{total:g}s"
    out = []
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        count, total = divmod(total, size)
        if count:
            out.append(f"{int(count)}{unit}")
    if total:
        out.append(f"{total:g}s")
    return "".join(out)


def zone(name: str | None, default: str = "UTC") -> ZoneInfo:
    """Return the IANA time zone ``name``, or refuse with an example of a valid one."""
    key = name or default
    if not isinstance(key, str) or not key.strip():
        raise InvalidInput(f"Invalid time zone {name!r}: use an IANA name such as 'Europe/Warsaw' or 'UTC'.")
    try:
        return ZoneInfo(key.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidInput(
            f"Unknown time zone {key!r}: use an IANA name such as 'Europe/Warsaw', 'America/New_York' or 'UTC'."
        ) from None


def parse_datetime(value: object, tz: str, now: datetime, what: str = "date") -> datetime:
    """Read a user's date as an aware UTC datetime; naive values are local to ``tz``."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        moment = _datetime_from_text(value.strip(), now, what)
    else:
        raise InvalidInput(f"Invalid {what} {value!r}: {_DATE_HELP}.")
    try:
        if moment.tzinfo is None:
            moment = localize(moment, zone(tz))
        return moment.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+05:00 is before the first representable instant
        raise InvalidInput(f"Invalid {what} {value!r}: out of range; {_DATE_HELP}.") from None


def _datetime_from_text(text: str, now: datetime, what: str) -> datetime:
    lowered = text.lower()
    if lowered == "now":
        return now
    if lowered.startswith("in "):
        try:
            return now + parse_duration(lowered[3:], what=f"{what} offset")
        except OverflowError:
            raise InvalidInput(f"Invalid {what} {text!r}: too far in the future; {_DATE_HELP}.") from None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise InvalidInput(f"Invalid {what} {text!r}: {_DATE_HELP}.") from None


def localize(naive: datetime, tz: ZoneInfo) -> datetime:
    """Attach ``tz`` to a naive local time; a time skipped by DST moves to just after the gap."""
    moment = naive.replace(tzinfo=tz, fold=0)
    if exists(naive, tz):
        return moment
    return gap_end(naive, tz)


def exists(naive: datetime, tz: ZoneInfo) -> bool:
    """Whether the wall-clock time ``naive`` happens in ``tz`` (it does not inside a DST gap)."""
    return naive.replace(tzinfo=tz).astimezone(UTC).astimezone(tz).replace(tzinfo=None) == naive


def is_ambiguous(naive: datetime, tz: ZoneInfo) -> bool:
    """Whether ``naive`` happens twice in ``tz`` (inside the hour repeated at fall-back)."""
    first = naive.replace(tzinfo=tz, fold=0)
    second = naive.replace(tzinfo=tz, fold=1)
    return first.utcoffset() != second.utcoffset() and exists(naive, tz)


def gap_end(naive: datetime, tz: ZoneInfo) -> datetime:
    """The first instant after the DST gap that swallows the local time ``naive`` (aware, in UTC)."""
    low = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)  # before the transition
    high = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)  # after the transition
    after_offset = high.astimezone(tz).utcoffset()
    step = timedelta(seconds=1)
    while high - low > step:
        middle = low + (high - low) / 2
        middle = middle.replace(microsecond=0)
        if middle.astimezone(tz).utcoffset() == after_offset:
            high = middle
        else:
            low = middle
    return high


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str | None:
    """ISO text of an aware datetime in UTC, or None: ``datetime.isoformat``'s text, made faster.

    The runner writes two of these for every run; the date and time up to the second repeat
    from run to run and come from a small cache.
    """
    if moment is None:
        return None
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    second = _second_text(moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)
    micro = moment.microsecond
    return f"{second}.{micro:06d}+00:00" if micro else f"{second}+00:00"


@functools.lru_cache(maxsize=4096)
def _second_text(year: int, month: int, day: int, hour: int, minute: int, second: int) -> str:
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}"


def from_iso(text: str | None) -> datetime | None:
    """Aware UTC datetime from ISO text, or None."""
    return None if text is None else datetime.fromisoformat(text).astimezone(UTC)
