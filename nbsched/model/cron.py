"""Cron lines as Debian's cron reads them: parsing, refusals that name the field, next fire times.

A line is compiled once into sorted field values (``CronLine``); ``next_after(naive)`` then finds
the next matching local wall-clock time with a few bisections, and ``Cron`` in ``triggers`` maps
wall-clock times to real instants. The field semantics are those of Debian's cron, as the
``cronsim`` package implements them (the reference in tests), with its extensions (``L``, ``LW``,
``5L``, ``5#2``, names, ``7`` as Sunday, a seconds field first), plus:

* ``H`` (Jenkins' hash): a value hashed from the job's name, stable across restarts and runners,
  so that many ``H * * * *`` jobs spread over the hour. ``H`` alone, ``H/15`` (every 15 from a
  hashed start), ``H(0-29)`` (a hashed value in 0-29) and ``H(0-29)/10``.
* A range whose start equals its end stays that one value under a step (``5-5/15`` is minute 5,
  as in Debian's cron; cronsim 2.8 reads it as ``5/15``).

``R`` (a random value on every read) and Quartz's ``W``/``?`` are refused.
"""

from __future__ import annotations

import calendar
import hashlib
import re
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import datetime

from ..errors import InvalidJob

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
HELP = (
    "A line has 5 fields (minute hour day-of-month month day-of-week), e.g. '*/5 9-17 * * mon-fri', "
    "or 6 with seconds first, or an alias such as @hourly or @daily"
)
#: A line that matches nothing for this many years after a start has no next fire (as cronsim).
SEARCH_YEARS = 50

_NAMES = ("second", "minute", "hour", "day-of-month", "month", "day-of-week")
_RANGES = ((0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
#: The values H picks from when no range is given (day-of-month stops at 28, as in Jenkins).
_HASH_RANGES = ((0, 59), (0, 59), (0, 23), (1, 28), (1, 12), (0, 6))
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_DAYS_IN_MONTH = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_SINGLE_RANGE_STEP = re.compile(r"(?<![\d#])(\d+)-\1/\d+(?![\d#])")
_HASH = re.compile(r"H(?:\((\d+)-(\d+)\))?(?:/(\d+))?")
SECOND, MINUTE, HOUR, DAY, MONTH, DOW = range(6)
LAST = "L"
LAST_WEEKDAY = "LW"


class _Refused(Exception):
    """A field the parser cannot read; becomes an InvalidJob naming the line."""


@dataclass(frozen=True)
class CronLine:
    """A compiled cron line: sorted field values and the day rules, with Debian's meaning."""

    text: str
    resolved: str  # the six fields with H replaced by the job's values (seconds first), upper case
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: tuple[int, ...]
    weekdays: frozenset[int]  # 0 = Sunday ... 6 = Saturday
    last_weekdays: frozenset[int]  # "5L": the last Friday of the month
    nth_weekdays: frozenset[tuple[int, int]]  # "5#2": (5, 2), the second Friday
    last_day: bool  # "L" in the day-of-month field
    last_workday: bool  # "LW"
    days_and: bool  # a day field starting with "*" ANDs the two day fields
    wall_clock: bool  # fixed second, minute and hour: runs at wall-clock times across DST
    _month_days: dict = field(default_factory=dict, compare=False, repr=False)

    def next_after(self, moment: datetime) -> datetime | None:
        """The first matching naive wall-clock time strictly after naive ``moment`` (whole seconds)."""
        y, mo, d, h, mi, s = moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second + 1
        months, hours, minutes, seconds = self.months, self.hours, self.minutes, self.seconds
        last_year = min(y + SEARCH_YEARS, 9999)
        while True:
            if s > 59:
                s, mi = 0, mi + 1
            if mi > 59:
                mi, h = 0, h + 1
            if h > 23:
                h, d = 0, d + 1
            if mo > 12:
                mo, y = 1, y + 1
            if y > last_year:
                return None
            if mo not in months:
                i = bisect_left(months, mo)
                if i == len(months):
                    y, mo = y + 1, months[0]
                else:
                    mo = months[i]
                d, h, mi, s = 1, 0, 0, 0
                continue
            days = self.month_days(y, mo)
            i = bisect_left(days, d)
            if i == len(days):
                mo, d, h, mi, s = mo + 1, 1, 0, 0, 0
                continue
            if days[i] != d:
                d, h, mi, s = days[i], 0, 0, 0
            i = bisect_left(hours, h)
            if i == len(hours):
                d, h, mi, s = d + 1, 0, 0, 0
                continue
            if hours[i] != h:
                h, mi, s = hours[i], 0, 0
            i = bisect_left(minutes, mi)
            if i == len(minutes):
                h, mi, s = h + 1, 0, 0
                continue
            if minutes[i] != mi:
                mi, s = minutes[i], 0
            i = bisect_left(seconds, s)
            if i == len(seconds):
                mi, s = mi + 1, 0
                continue
            return datetime(y, mo, d, h, mi, seconds[i])

    def month_days(self, year: int, month: int) -> tuple[int, ...]:
        """The days of ``month`` that match both day fields (cached per line)."""
        key = year * 16 + month
        days = self._month_days.get(key)
        if days is None:
            if len(self._month_days) > 600:
                self._month_days.clear()
            days = self._month_days[key] = self._match_days(year, month)
        return days

    def _match_days(self, year: int, month: int) -> tuple[int, ...]:
        first_weekday, length = calendar.monthrange(year, month)  # Monday = 0
        workday = _last_workday(first_weekday, length)
        matches = []
        for day in range(1, length + 1):
            weekday = (first_weekday + day) % 7  # Sunday = 0
            by_date = day in self.days or (self.last_day and day == length) or (self.last_workday and day == workday)
            by_weekday = (
                weekday in self.weekdays
                or (weekday in self.last_weekdays and day + 7 > length)
                or (weekday, (day + 6) // 7) in self.nth_weekdays
            )
            if (by_date and by_weekday) if self.days_and else (by_date or by_weekday):
                matches.append(day)
        return tuple(matches)


def _last_workday(first_weekday: int, length: int) -> int:
    last_weekday = (first_weekday + length - 1) % 7  # Monday = 0
    return length - max(0, last_weekday - 4)


def normalize(expression: object) -> str:
    """The line with spaces tidied and an alias expanded, or InvalidJob saying what is wrong."""
    if not isinstance(expression, str) or not expression.strip():
        raise InvalidJob(f"Invalid cron expression {expression!r}: it is empty. {HELP}.", field="cron")
    text = " ".join(expression.split())
    if text.startswith("@"):
        try:
            return ALIASES[text.lower()]
        except KeyError:
            raise InvalidJob(
                f"Unknown cron alias {expression!r}: use one of {', '.join(ALIASES)}. {HELP}.", field="cron"
            ) from None
    count = len(text.split())
    if count not in (5, 6):
        raise InvalidJob(f"Invalid cron expression {expression!r}: it has {count} fields. {HELP}.", field="cron")
    return text


def compile_line(expression: str, seed: str | None = None) -> CronLine:
    """Compile a normalized line; ``seed`` (the job's name) is what ``H`` hashes."""
    fields = expression.upper().split()
    if len(fields) not in (5, 6):
        raise InvalidJob(f"Invalid cron expression {expression!r}: it has {len(fields)} fields. {HELP}.", field="cron")
    if len(fields) == 5:
        fields.insert(0, "0")
    try:
        fields = [_expand_hash(text, index, seed) for index, text in enumerate(fields)]
        return _compile(expression, fields, seconds_given=len(expression.split()) == 6)
    except _Refused as exc:
        raise InvalidJob(f"Invalid cron expression {expression!r}: {exc}. {HELP}.", field="cron") from None


def _compile(expression: str, fields: list[str], seconds_given: bool) -> CronLine:
    fields = [_SINGLE_RANGE_STEP.sub(r"\1", text) for text in fields]  # 5-5/15 is 5 (Debian)
    values = [_parse_field(text, index) for index, text in enumerate(fields)]
    days, weekdays = values[DAY], values[DOW]
    days_and = fields[DAY].startswith("*") or fields[DOW].startswith("*")
    line = CronLine(
        text=expression,
        resolved=" ".join(fields),
        seconds=_sorted_numbers(values[SECOND]),
        minutes=_sorted_numbers(values[MINUTE]),
        hours=_sorted_numbers(values[HOUR]),
        days=frozenset(v for v in days if isinstance(v, int)),
        months=_sorted_numbers(values[MONTH]),
        weekdays=frozenset(v % 7 for v in weekdays if isinstance(v, int)),
        last_weekdays=frozenset(v[0] % 7 for v in weekdays if isinstance(v, tuple) and v[1] == LAST),
        nth_weekdays=frozenset((v[0] % 7, v[1]) for v in weekdays if isinstance(v, tuple) and v[1] != LAST),
        last_day=LAST in days,
        last_workday=LAST_WEEKDAY in days,
        days_and=days_and,
        wall_clock=not any(fields[i].startswith("*") for i in (SECOND, MINUTE, HOUR) if i or seconds_given),
    )
    if days_and and line.days and not (line.last_day or line.last_workday):
        longest = max(_DAYS_IN_MONTH[month] for month in line.months)
        if min(line.days) > longest:
            raise _Refused(
                f"it matches no date: day {min(line.days)} does not occur in the month field "
                f"'{fields[MONTH].lower()}' (its longest month has {longest} days)"
            )
    return line


def _sorted_numbers(values: set) -> tuple[int, ...]:
    return tuple(sorted(v for v in values if isinstance(v, int)))


def _parse_field(text: str, index: int) -> set:
    if "," in text:
        values: set = set()
        for term in text.split(","):
            values |= _parse_field(term, index) if term else _refuse(index, text, "has an empty list item")
        return values
    return _parse_term(text, index)


def _parse_term(term: str, index: int) -> set:
    low, high = _RANGES[index]
    if term == "*":
        return set(range(low, high + 1))
    if index == DOW and "L" in term:
        if not term.endswith("L") or not _digits(term[:-1]):
            _refuse(index, term, "is not understood: the last weekday of the month is written 5L (0-7, then L)")
        return {(_number(term[:-1], index, term), LAST)}
    if index == DOW and "#" in term:
        weekday, _, nth = term.partition("#")
        if not _digits(nth) or not 1 <= int(nth) <= 5:
            _refuse(index, term, f"asks for weekday number {nth or '(none)'} of the month; use #1 to #5")
        return {(_number(weekday, index, term), int(nth))}
    if "/" in term:
        return _parse_step(term, index)
    if "-" in term:
        start_text, _, end_text = term.partition("-")
        start, end = _number(start_text, index, term), _number(end_text, index, term)
        if end < start:
            _refuse(index, term, f"is a range that ends before it starts; write {start}-{high},{low}-{end} instead")
        return set(range(start, end + 1))
    if index == DAY and term in (LAST, LAST_WEEKDAY):
        return {term}
    return {_number(term, index, term)}


def _parse_step(term: str, index: int) -> set:
    base, _, step_text = term.partition("/")
    if not _digits(step_text) or int(step_text) == 0:
        _refuse(index, term, f"has step '{step_text}'; a step is a whole number of 1 or more, e.g. */15")
    step = int(step_text)
    values = _parse_term(base, index) if "/" not in base else _refuse(index, term, "has two steps")
    if values in ({LAST}, {LAST_WEEKDAY}):
        return values
    if len(values) == 1 and "-" not in base:  # "5/15" starts at 5 and runs to the field's end
        (start,) = values
        return set(range(start, _RANGES[index][1] + 1, step))
    return set(sorted(values)[::step])


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _number(text: str, index: int, term: str) -> int:
    low, high = _RANGES[index]
    if index == MONTH and text in _MONTHS:
        return _MONTHS.index(text) + 1
    if index == DOW and text in _DAYS:
        return _DAYS.index(text)
    if not _digits(text):
        _refuse(index, term, _not_understood(text, index))
    value = int(text)
    if not low <= value <= high:
        where = f"'{term.lower()}'" if term == text else f"'{term.lower()}': {value}"
        raise _Refused(f"the {_NAMES[index]} field {where} is out of range {low}-{high}")
    return value


def _not_understood(text: str, index: int) -> str:
    low, high = _RANGES[index]
    if text == "R" or text.startswith("R("):
        return "is a random value (R), refused: a line must name the same times on every read; H spreads jobs stably"
    if text == "?":
        return "is Quartz's '?', which Debian's cron does not have; use *"
    if text.endswith("W"):
        return "asks for a nearest weekday (W), which is not supported; LW (the last weekday) is"
    names = {MONTH: ", or names jan-dec", DOW: ", or names sun-sat (7 is Sunday too)"}.get(index, "")
    return f"is not understood: use numbers {low}-{high}{names}, *, ranges a-b, lists a,b, steps */n or H"


def _refuse(index: int, term: str, problem: str):
    raise _Refused(f"the {_NAMES[index]} field '{term.lower()}' {problem}")


def _expand_hash(text: str, index: int, seed: str | None) -> str:
    if "H" not in text:
        return text
    terms = []
    for term in text.split(","):
        match = _HASH.fullmatch(term)
        if match is None:
            terms.append(term)  # THU, or a mistake the parser names
            continue
        if seed is None:
            raise _Refused(f"the {_NAMES[index]} field '{text.lower()}' uses H, which needs the job's name to hash")
        terms.append(_hashed(term, index, seed, match))
    return ",".join(terms)


def _hashed(term: str, index: int, seed: str, match: re.Match) -> str:
    low, high = _HASH_RANGES[index] if match.group(1) is None else (int(match.group(1)), int(match.group(2)))
    field_low, field_high = _RANGES[index]
    if not field_low <= low <= high <= field_high:
        _refuse(index, term, f"hashes over {low}-{high}, which is not a range inside {field_low}-{field_high}")
    digest = int.from_bytes(hashlib.sha256(f"{seed}\0{_NAMES[index]}".encode()).digest()[:8], "big")
    if match.group(3) is None:
        return str(low + digest % (high - low + 1))
    step = int(match.group(3))
    if step == 0:
        _refuse(index, term, "has step 0; a step is a whole number of 1 or more, e.g. H/15")
    return f"{low + digest % min(step, high - low + 1)}-{high}/{step}"


def meaning_changes(expression: str, tz: str = "UTC") -> str | None:
    """Why a line stored by nbsched 0.1 (croniter 7's reading) now fires at other times, if it does.

    The runner lists such jobs in its log at start. The readings that changed: a range whose start
    equals its end (``5-5``, ``59-59/15``), a day field led by ``*`` beside a restricted one (``*/2``
    with ``mon`` ANDs), a step on one weekday (``6/1`` is Saturday and Sunday), a 6-field line at a
    fixed time (now wall-clock across DST, as 5-field lines), and ``R`` (now refused).
    """
    fields = expression.upper().split()
    if len(fields) not in (5, 6):
        return None
    seconds_given = len(fields) == 6
    if len(fields) == 5:
        fields.insert(0, "0")
    reasons = []
    terms = [term for text in fields for term in text.split(",")]
    if any(re.fullmatch(r"(\d+)-\1(/\d+)?", term) for term in terms):
        reasons.append("a range whose start equals its end is that one value")
    day, weekday = fields[DAY], fields[DOW]
    if (day.startswith("*") and day != "*" and weekday != "*") or (
        weekday.startswith("*") and weekday != "*" and day != "*"
    ):
        reasons.append("a day field led by * is ANDed with the other day field")
    if any(re.fullmatch(r"[0-7]/\d+|[A-Z]{3}/\d+", term) for term in weekday.split(",")):
        reasons.append("a step from one weekday runs to Sunday (7)")
    if (
        seconds_given
        and tz not in ("UTC", "Etc/UTC")
        and not any(fields[i].startswith("*") for i in (SECOND, MINUTE, HOUR))
    ):
        reasons.append("a 6-field line at a fixed time keeps wall-clock times across DST")
    if "R" in {term.split("/")[0] for term in terms}:
        reasons.append("R (a random value) is refused")
    return "; ".join(reasons) or None
