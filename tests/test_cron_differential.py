"""nbsched's cron evaluation against cronsim (Debian cron's reading) and a brute-force model.

Two layers, both over random lines (hypothesis):

* Fields: the values and days a line matches, and whether it is refused, equal cronsim's parse
  (except the one deliberate difference: ``a-a/n`` is ``a``, as in Debian's cron).
* Times: the next fires from random starts in six-plus zones, half of them near a DST
  transition, equal cronsim's. Where cronsim is wrong by its own rules (a time before the start
  or out of order, an imaginary local time, Lord Howe's 30-minute shift) or reads a line
  otherwise on purpose (a 6-field line at a fixed time is wall-clock here), the times are
  compared with a brute-force model instead: minute by minute over real instants (real-time
  lines) or over local wall-clock times (fixed-time lines), with cronsim's own field matching.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

cronsim = pytest.importorskip("cronsim")

from nbsched.errors import InvalidJob  # noqa: E402
from nbsched.model.cron import compile_line  # noqa: E402
from nbsched.model.triggers import Cron  # noqa: E402

ZONES = [
    "UTC",
    "Europe/Warsaw",
    "America/New_York",
    "Australia/Lord_Howe",  # 30-minute DST shift
    "America/Santiago",  # southern, changes at midnight
    "Australia/Sydney",
    "Pacific/Chatham",  # +12:45 / +13:45
    "Asia/Kolkata",
]
RANGES = {"second": (0, 59), "minute": (0, 59), "hour": (0, 23), "day": (1, 31), "month": (1, 12), "dow": (0, 7)}
NAMES = {
    "month": ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
    "dow": ["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
}
FIRES = 6
WINDOW = timedelta(days=3)


# -- random lines -----------------------------------------------------------------------------


@st.composite
def term(draw, field: str, valid: bool = True):
    low, high = RANGES[field]
    number = st.integers(low, high)
    kinds = ["number", "range", "star_step", "start_step", "range_step", "star"]
    if field in NAMES:
        kinds.append("name")
    if field == "day":
        kinds += ["L", "LW"]
    if field == "dow":
        kinds += ["last", "nth"]
    kind = draw(st.sampled_from(kinds))
    if not valid and draw(st.booleans()):
        return draw(
            st.sampled_from([str(high + 1), f"{high}-{low}" if high > low else "x", "R", "?", "15W", "*/0", "", "1-"])
        )
    if kind == "number":
        return str(draw(number))
    if kind == "name":
        name = draw(st.sampled_from(NAMES[field]))
        return draw(st.sampled_from([name, name.upper(), name.title()]))
    if kind == "star":
        return "*"
    if kind in ("L", "LW"):
        return kind
    if kind == "last":
        return f"{draw(st.integers(0, 7))}L"
    if kind == "nth":
        return f"{draw(st.integers(0, 7))}#{draw(st.integers(1, 5))}"
    step = draw(st.integers(1, high - low + 3))
    if kind == "star_step":
        return f"*/{step}"
    a = draw(number)
    if kind == "start_step":
        return f"{a}/{step}"
    b = draw(st.integers(a, high)) if draw(st.integers(0, 4)) else a  # a-a now and then
    return f"{a}-{b}" if kind == "range" else f"{a}-{b}/{step}"


@st.composite
def cron_field(draw, field: str, valid: bool = True):
    terms = draw(st.lists(term(field, valid), min_size=1, max_size=3))
    if "*" in terms or any(t.startswith("*") for t in terms):
        terms = [next(t for t in terms if t.startswith("*"))]  # a star-led field stands alone, as people write it
    return ",".join(terms)


@st.composite
def cron_line(draw, valid: bool = True):
    fields = [draw(cron_field(name, valid)) for name in ("minute", "hour", "day", "month", "dow")]
    if draw(st.integers(0, 3)) == 0:
        seconds = draw(st.sampled_from(["0", "30", "*/20", "0,15", "5-10", "*/30"]))
        fields.insert(0, seconds)
    return " ".join(fields)


# -- cronsim as the reference --------------------------------------------------------------


def cronsim_parse(line: str):
    try:
        return cronsim.CronSim(line, datetime(2000, 1, 1))
    except cronsim.CronSimError:
        return None


def nbsched_parse(line: str):
    try:
        return compile_line(line)
    except InvalidJob:
        return None


def has_single_range_step(line: str) -> bool:
    return re.search(r"(?<![\d#])(\d+)-\1/\d+", line) is not None


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(line=cron_line(valid=False), year=st.integers(2024, 2031), month=st.integers(1, 12))
def test_fields_and_refusals_equal_cronsim(line, year, month):
    reference, ours = cronsim_parse(line), nbsched_parse(line)
    assert (reference is None) == (ours is None), f"{line!r}: cronsim {'refuses' if reference is None else 'accepts'}"
    if ours is None or has_single_range_step(line):
        return
    assert set(ours.seconds) == reference.seconds
    assert set(ours.minutes) == reference.minutes
    assert set(ours.hours) == reference.hours
    assert set(ours.months) == reference.months
    length = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
    expected = tuple(d for d in range(1, length + 1) if reference.match_day(date(year, month, d)))
    assert ours.month_days(year, month) == expected, f"{line!r} in {year}-{month:02}"


def test_a_range_whose_start_equals_its_end_keeps_one_value_under_a_step():
    # Debian's cron: 5-5/15 is minute 5 (cronsim 2.8 reads it as 5/15: 5, 20, 35, 50).
    assert compile_line("5-5/15 * * * *").minutes == (5,)
    assert compile_line("59-59/15 * * * *").minutes == (59,)
    assert compile_line("0 0 * * 6-6/1").weekdays == {6}


# -- fire times ----------------------------------------------------------------------------


@functools.cache
def transitions(tz_name: str) -> list[datetime]:
    """The instants (UTC, to the minute) at which ``tz_name`` changes its offset in 2025-2027."""
    tz = ZoneInfo(tz_name)
    found, moment = [], datetime(2025, 1, 1, tzinfo=UTC)
    while moment < datetime(2028, 1, 1, tzinfo=UTC):
        later = moment + timedelta(hours=1)
        if moment.astimezone(tz).utcoffset() != later.astimezone(tz).utcoffset():
            low, high = moment, later
            while high - low > timedelta(minutes=1):
                middle = low + (high - low) / 2
                if middle.astimezone(tz).utcoffset() == moment.astimezone(tz).utcoffset():
                    low = middle
                else:
                    high = middle
            found.append(high.replace(second=0, microsecond=0))
        moment = later
    return found


@st.composite
def start_in(draw, tz_name: str):
    near = transitions(tz_name)
    if near and draw(st.booleans()):
        return draw(st.sampled_from(near)) + timedelta(minutes=draw(st.integers(-26 * 60, 4 * 60)))
    seconds = draw(st.integers(0, 3 * 365 * 86400))
    return datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)


def nbsched_fires(trigger: Cron, start: datetime, count: int, until: datetime | None = None) -> list[datetime]:
    fires, moment = [], start
    while len(fires) < count:
        moment = trigger.next_fire(moment)
        if moment is None or (until is not None and moment > until):
            break
        fires.append(moment)
    return fires


def cronsim_fires(line: str, tz_name: str, start: datetime, count: int) -> list[datetime] | None:
    """cronsim's next fires, or None where cronsim breaks its own rules (so the model decides)."""
    tz = ZoneInfo(tz_name)
    walker = cronsim.CronSim(line, start.astimezone(tz))
    fires, previous = [], start
    for _ in range(count):
        try:
            local = next(walker)
        except StopIteration:
            break
        real = local.astimezone(UTC)
        if real <= previous or real.astimezone(tz).replace(tzinfo=None) != local.replace(tzinfo=None):
            return None  # out of order, before the start, or an imaginary local time
        fires.append(real)
        previous = real
    return fires


def model_fires(line: str, tz_name: str, start: datetime, until: datetime, wall_clock: bool) -> list[datetime]:
    """The brute-force reading, minute by minute, with cronsim's field matching."""
    reference = cronsim.CronSim(line, datetime(2000, 1, 1))
    seconds = sorted(reference.seconds)
    tz = ZoneInfo(tz_name)

    def day_matches(local: datetime) -> bool:
        return local.month in reference.months and reference.match_day(local.date())

    def matches(local: datetime) -> bool:
        return local.minute in reference.minutes and local.hour in reference.hours and day_matches(local)

    fires: set[datetime] = set()
    if wall_clock:
        naive = (start.astimezone(tz) - timedelta(hours=4)).replace(tzinfo=None, second=0, microsecond=0)
        last = until.astimezone(tz).replace(tzinfo=None) + timedelta(hours=4)
        while naive <= last:
            if not day_matches(naive):  # skip the rest of a day that does not match
                naive = datetime.combine(naive.date() + timedelta(days=1), datetime.min.time())
                continue
            if matches(naive):
                for second in seconds:
                    fires.add(wall_clock_instant(naive.replace(second=second), tz))
            naive += timedelta(minutes=1)
    else:
        moment = start.replace(second=0, microsecond=0)
        while moment <= until:
            local = moment.astimezone(tz)
            hour_later = moment + timedelta(hours=1)
            if not day_matches(local) and hour_later.astimezone(tz).date() == local.date():
                moment = hour_later  # an hour of a day that does not match
                continue
            if matches(local):
                fires.update(moment + timedelta(seconds=second) for second in seconds)
            moment += timedelta(minutes=1)
    return sorted(fire for fire in fires if start < fire <= until)


def wall_clock_instant(naive: datetime, tz: ZoneInfo) -> datetime:
    """A local time's first occurrence; inside a gap, the first instant after it."""
    if naive.replace(tzinfo=tz).astimezone(UTC).astimezone(tz).replace(tzinfo=None) == naive:
        return naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    before = naive.replace(tzinfo=tz, fold=0).utcoffset()  # for a time in a gap: the offset before it
    moment = naive.replace(tzinfo=tz, fold=1).astimezone(UTC).replace(second=0)  # an instant before the gap
    while moment.astimezone(tz).utcoffset() == before:
        moment += timedelta(minutes=1)
    while (moment - timedelta(seconds=1)).astimezone(tz).utcoffset() != before:
        moment -= timedelta(seconds=1)
    return moment


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data(), line=cron_line(), tz_name=st.sampled_from(ZONES))
def test_fire_times_equal_cronsim_or_the_brute_force_model(data, line, tz_name):
    assume(nbsched_parse(line) is not None and not has_single_range_step(line))
    start = data.draw(start_in(tz_name))
    trigger = Cron(line, tz_name)
    six_fixed = len(line.split()) == 6 and trigger.wall_clock
    reference = None if tz_name == "Australia/Lord_Howe" or six_fixed else cronsim_fires(line, tz_name, start, FIRES)
    ours = nbsched_fires(trigger, start, FIRES)
    if reference is not None and ours != reference:
        # cronsim also misses fires next to some transitions (it walks through an imaginary midnight
        # in Santiago, say): there, and only there, the brute-force model decides.
        agreed = next(i for i, (a, b) in enumerate(zip([*ours, None], [*reference, None], strict=False)) if a != b)
        since = ours[agreed - 1] if agreed else start
        until = max(ours[agreed : agreed + 1] + reference[agreed : agreed + 1])
        assert any(since - timedelta(days=1) <= t <= until for t in transitions(tz_name)), (
            f"{line!r} in {tz_name} after {start}: nbsched {ours} != cronsim {reference}, far from any DST change"
        )
        expected = model_fires(line, tz_name, since, until, trigger.wall_clock)
        assert nbsched_fires(trigger, since, 10**7, until) == expected, f"{line!r} in {tz_name} after {since}"
    until = start + WINDOW
    expected = model_fires(line, tz_name, start, until, trigger.wall_clock)
    assert nbsched_fires(trigger, start, 10**7, until) == expected, f"{line!r} in {tz_name} after {start}"


@pytest.mark.parametrize(
    ("line", "tz_name", "start"),
    [
        ("30 2 * * *", "Australia/Lord_Howe", datetime(2026, 10, 3, 10, tzinfo=UTC)),  # 02:00 -> 02:30
        ("*/10 1-2 * * *", "Australia/Lord_Howe", datetime(2026, 4, 4, 10, tzinfo=UTC)),  # 02:00 -> 01:30
        ("15 1 * * *", "Australia/Lord_Howe", datetime(2026, 4, 4, 10, tzinfo=UTC)),
        ("0 0 * * *", "America/Santiago", datetime(2026, 9, 5, 12, tzinfo=UTC)),  # midnight does not exist
        ("* 0 * * *", "America/Santiago", datetime(2026, 9, 5, 12, tzinfo=UTC)),
        ("0 30 2 * * *", "Europe/Warsaw", datetime(2026, 3, 28, tzinfo=UTC)),
        ("0 30 2 * * *", "Europe/Warsaw", datetime(2026, 10, 24, tzinfo=UTC)),
    ],
)
def test_fire_times_across_awkward_transitions_equal_the_brute_force_model(line, tz_name, start):
    trigger = Cron(line, tz_name)
    until = start + WINDOW
    expected = model_fires(line, tz_name, start, until, trigger.wall_clock)
    assert expected, "the window should hold fires"
    assert nbsched_fires(trigger, start, 10**7, until) == expected
