"""DST policy (README "Behaviour you can rely on"): cron and one-time jobs follow Debian's cron,
intervals are exact elapsed time. Europe/Warsaw and America/New_York shift by one hour,
Australia/Lord_Howe by thirty minutes. ``cronsim`` is the reference for cron lines.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from conftest import utc
from cronsim import CronSim

from nbsched.model.runs import RUN_FIELDS
from nbsched.model.triggers import Cron
from nbsched.runner.engine import Engine, Hooks
from nbsched.store.sqlite import SQLiteStore
from nbsched.worker.pipe import Result, RunMessage

WARSAW, NEW_YORK, LORD_HOWE = "Europe/Warsaw", "America/New_York", "Australia/Lord_Howe"
#: Noon on the local day before each 2026 transition: (zone, day, kind).
TRANSITIONS = [
    (WARSAW, (2026, 3, 28), "spring-forward"),  # 02:00 -> 03:00 on 29 March
    (WARSAW, (2026, 10, 24), "fall-back"),  # 03:00 -> 02:00 on 25 October
    (NEW_YORK, (2026, 3, 7), "spring-forward"),  # 02:00 -> 03:00 on 8 March
    (NEW_YORK, (2026, 10, 31), "fall-back"),  # 02:00 -> 01:00 on 1 November
    (LORD_HOWE, (2026, 4, 4), "fall-back"),  # 02:00 -> 01:30 on 5 April
    (LORD_HOWE, (2026, 10, 3), "spring-forward"),  # 02:00 -> 02:30 on 4 October
]
EXPRESSIONS = [
    "0 * * * *",
    "30 * * * *",
    "15 */1 * * *",
    "*/15 * * * *",
    "*/20 2 * * *",
    "* 2 * * *",
    "0 */2 * * *",
    "30 */3 * * *",
    "0 0 * * *",
    "30 1 * * *",
    "45 1 * * *",
    "59 1 * * *",
    "0 2 * * *",
    "1 2 * * *",
    "30 2 * * *",
    "5,35 2 * * *",
    "0 3 * * *",
    "15 3 * * *",
    "0 1-3 * * *",
    "*/30 1-3 * * *",
    "0 0,1,2,3 * * *",
    "0 9 * * mon",
    "0 1 * * 0",
    "@daily",
    "@hourly",
]
# cronsim walks real time in whole hours and jumps whole minutes when it looks for the next matching
# hour or minute, which assumes every DST shift is a multiple of an hour. Lord Howe shifts by thirty
# minutes, so cronsim steps over wall-clock times that happen exactly once there, which Debian's cron
# (it checks the wall clock each minute; only the repeated half hour is special) does run:
#   fall-back 5 April: 01:30 (+10:30, the repeat of a '30 * * * *' wildcard-hour job), 02:00-02:29 (+10:30)
#   spring-forward 4 October: 02:30 (+11:00), the first wall-clock time after the gap.
# nbsched fires them; test_lord_howe_times_cronsim_steps_over_still_fire pins that behaviour instead.
CRONSIM_HALF_HOUR_ARTIFACTS = {
    (LORD_HOWE, "fall-back", "30 * * * *"),
    (LORD_HOWE, "fall-back", "0 */2 * * *"),
    (LORD_HOWE, "fall-back", "* 2 * * *"),
    (LORD_HOWE, "fall-back", "*/20 2 * * *"),
    (LORD_HOWE, "spring-forward", "30 * * * *"),
}


def nbsched_fires(expression: str, tz: str, start: datetime, stop: datetime) -> list[datetime]:
    trigger, fires, fire = Cron(expression, tz), [], start.astimezone(UTC)
    while (fire := trigger.next_fire(fire)) is not None and fire <= stop:
        fires.append(fire)
    return fires


def cronsim_fires(expression: str, tz: str, start: datetime, stop: datetime) -> list[datetime]:
    expression = {"@daily": "0 0 * * *", "@hourly": "0 * * * *"}.get(expression, expression)
    fires = []
    for fire in CronSim(expression, start.astimezone(ZoneInfo(tz))):
        if fire > stop:
            break
        fires.append(fire.astimezone(UTC))
    return fires


def local(fires: list[datetime], tz: str) -> list[str]:
    return [fire.astimezone(ZoneInfo(tz)).strftime("%d %H:%M%z") for fire in fires]


def _window(tz: str, day: tuple[int, int, int]) -> tuple[datetime, datetime]:
    start = datetime(*day, 12, 0, tzinfo=ZoneInfo(tz)).astimezone(UTC)  # UTC: arithmetic in real time
    return start, start + timedelta(days=2)


@pytest.mark.parametrize(("tz", "day", "kind"), TRANSITIONS, ids=[f"{t[0]}-{t[2]}" for t in TRANSITIONS])
def test_cron_matches_cronsim_across_dst_transitions(tz, day, kind):
    start, stop = _window(tz, day)
    checked = 0
    for expression in EXPRESSIONS:
        if (tz, kind, expression) in CRONSIM_HALF_HOUR_ARTIFACTS:
            continue
        expected = cronsim_fires(expression, tz, start, stop)
        actual = nbsched_fires(expression, tz, start, stop)
        assert local(actual, tz) == local(expected, tz), expression
        checked += 1
    assert checked >= len(EXPRESSIONS) - 4


@pytest.mark.slow  # about 2 s: hundreds of starts x expressions
def test_cron_matches_cronsim_on_random_starts_around_the_transition():
    # Starting points inside gaps, inside repeated hours and on the seam itself.
    for tz, day, _ in TRANSITIONS:
        base, _ = _window(tz, day)
        for offset_minutes in range(11 * 60, 16 * 60, 13):
            start = base + timedelta(minutes=offset_minutes)
            stop = start + timedelta(hours=3)
            for expression in ("30 2 * * *", "0 * * * *", "*/7 * * * *", "45 1 * * *"):
                if (tz, _, expression) in CRONSIM_HALF_HOUR_ARTIFACTS:
                    continue
                # From a start inside the repeated hour, cronsim walks a fixed-time line on the naive clock and
                # can answer the first occurrence, which is before the start; a next fire is never in the past.
                expected = [fire for fire in cronsim_fires(expression, tz, start, stop) if fire > start]
                assert nbsched_fires(expression, tz, start, stop) == expected, (
                    tz,
                    start,
                    expression,
                )


def test_lord_howe_times_cronsim_steps_over_still_fire():
    start, stop = _window(LORD_HOWE, (2026, 4, 4))
    fires = local(nbsched_fires("0 */2 * * *", LORD_HOWE, start, stop), LORD_HOWE)
    assert fires[5:9] == ["05 00:00+1100", "05 02:00+1030", "05 04:00+1030", "05 06:00+1030"]
    fires = local(nbsched_fires("30 * * * *", LORD_HOWE, start, stop), LORD_HOWE)
    assert [f for f in fires if "05 01" <= f < "05 03"] == ["05 01:30+1100", "05 01:30+1030", "05 02:30+1030"]
    fires = local(nbsched_fires("*/20 2 * * *", LORD_HOWE, start, stop), LORD_HOWE)
    assert fires[:3] == ["05 02:00+1030", "05 02:20+1030", "05 02:40+1030"]
    start, stop = _window(LORD_HOWE, (2026, 10, 3))
    fires = local(nbsched_fires("30 * * * *", LORD_HOWE, start, stop), LORD_HOWE)
    assert [f for f in fires if f.startswith("04 0") and f < "04 04"] == [
        "04 00:30+1030",
        "04 01:30+1030",
        "04 02:30+1100",  # 02:00-02:29 do not exist that night; 02:30 does, once
        "04 03:30+1100",
    ]


# -- named cases, the way a user meets them ----------------------------------------------------
@pytest.mark.parametrize(
    ("tz", "day", "expression", "expected"),
    [
        (WARSAW, (2026, 3, 28), "30 2 * * *", ["28 02:30+0100", "29 03:00+0200"]),
        (WARSAW, (2026, 10, 24), "30 2 * * *", ["25 02:30+0200", "26 02:30+0100"]),
        (NEW_YORK, (2026, 3, 7), "30 2 * * *", ["08 03:00-0400", "09 02:30-0400"]),
        (NEW_YORK, (2026, 10, 31), "30 1 * * *", ["01 01:30-0400", "02 01:30-0500"]),
        (LORD_HOWE, (2026, 10, 3), "15 2 * * *", ["04 02:30+1100", "05 02:15+1100"]),
        (LORD_HOWE, (2026, 4, 4), "45 1 * * *", ["05 01:45+1100", "06 01:45+1030"]),
    ],
)
def test_fixed_time_cron_fires_once_in_a_gap_or_a_repeated_hour(tz, day, expression, expected):
    start = datetime(*day, 0, 0, tzinfo=ZoneInfo(tz))
    fires = local(nbsched_fires(expression, tz, start, start + timedelta(days=3)), tz)
    assert [f for f in fires if f[:2] in {e[:2] for e in expected}] == expected


def test_hourly_cron_keeps_real_time_rhythm_on_fall_back_and_skips_the_gap():
    start = datetime(2026, 10, 31, 23, 0, tzinfo=ZoneInfo(NEW_YORK)).astimezone(UTC)
    fires = nbsched_fires("0 * * * *", NEW_YORK, start, start + timedelta(hours=5))
    assert local(fires, NEW_YORK) == [
        "01 00:00-0400",
        "01 01:00-0400",
        "01 01:00-0500",
        "01 02:00-0500",
        "01 03:00-0500",
    ]
    assert {b - a for a, b in pairwise(fires)} == {timedelta(hours=1)}
    start = datetime(2026, 3, 7, 23, 0, tzinfo=ZoneInfo(NEW_YORK)).astimezone(UTC)
    fires = nbsched_fires("0 * * * *", NEW_YORK, start, start + timedelta(hours=4))
    assert local(fires, NEW_YORK) == ["08 00:00-0500", "08 01:00-0500", "08 03:00-0400", "08 04:00-0400"]


# -- the engine, driven by a fake clock --------------------------------------------------------
NOOP = """
from nbsched import Service


class Noop(Service):
    name = "noop"

    def handle(self):
        pass
"""


class Clocked:
    """An Engine on a temp store; ``run_until`` jumps the clock to each next fire and finishes the run."""

    def __init__(self, path, now: datetime):
        self.dispatched: list[RunMessage] = []
        self.store = SQLiteStore(path)
        self.engine = Engine(self.store, Hooks(dispatch=self.dispatched.append), runner_id="test:1")
        self.engine.load(now)
        self.engine.catalog.deploy([{"source": NOOP, "origin": "<string>"}], now)
        self.now = now

    def run_until(self, stop: datetime) -> list[datetime]:
        while (due := self.engine.next_due()) is not None and due <= stop:
            self.now = due
            self.engine.tick(due)
            for message in self.dispatched:
                self.engine.results.on_result(Result(message.run_id, "ok"))
            self.dispatched.clear()
        self.engine.results.flush()
        rows = [dict(zip(RUN_FIELDS, row, strict=True)) for row in self.store.runs()]
        return sorted(row["scheduled_at"] for row in rows if row["status"] == "ok")


@pytest.fixture
def clocked(tmp_path):
    def make(now: datetime) -> Clocked:
        made.append(Clocked(tmp_path / f"{len(made)}.db", now))
        return made[-1]

    made: list[Clocked] = []
    yield make
    for item in made:
        item.store.close()


@pytest.mark.parametrize(
    ("tz", "start", "expression", "expected"),
    [
        (NEW_YORK, utc(2026, 10, 31, 12), "30 1 * * *", ["01 01:30-0400", "02 01:30-0500", "03 01:30-0500"]),
        (WARSAW, utc(2026, 3, 27, 12), "30 2 * * *", ["28 02:30+0100", "29 03:00+0200", "30 02:30+0200"]),
        (LORD_HOWE, utc(2026, 4, 3, 0), "45 1 * * *", ["04 01:45+1100", "05 01:45+1100", "06 01:45+1030"]),
    ],
)
def test_engine_ticks_fire_a_daily_job_once_per_night_across_dst(clocked, tz, start, expression, expected):
    runner = clocked(start)
    runner.engine.control.add_job({"name": "daily", "service": "noop", "cron": expression, "tz": tz}, start)
    fires = runner.run_until(start + timedelta(days=3))
    assert local(fires, tz)[-3:] == expected
    assert len(fires) == 3


def test_engine_ticks_fire_an_interval_job_on_exact_elapsed_time_across_dst(clocked):
    start = datetime(2026, 3, 29, 0, 0, tzinfo=ZoneInfo(WARSAW)).astimezone(UTC)
    runner = clocked(start)
    runner.engine.control.add_job(
        {"name": "hourly", "service": "noop", "every": "1h", "start": "2026-03-29 00:00", "tz": WARSAW}, runner.now
    )
    fires = runner.run_until(start + timedelta(hours=4, minutes=1))
    assert local(fires, WARSAW) == ["29 00:00+0100", "29 01:00+0100", "29 03:00+0200", "29 04:00+0200", "29 05:00+0200"]
    assert {b - a for a, b in pairwise(fires)} == {timedelta(hours=1)}


@pytest.mark.parametrize(
    ("tz", "at", "expected"),
    [
        (WARSAW, "2026-03-29 02:30", "29 03:00+0200"),  # inside the gap: the first instant after it
        (WARSAW, "2026-10-25 02:30", "25 02:30+0200"),  # repeated: the first occurrence, once
        (NEW_YORK, "2026-11-01 01:30", "01 01:30-0400"),
        (LORD_HOWE, "2026-10-04 02:10", "04 02:30+1100"),
        (LORD_HOWE, "2026-04-05 01:45", "05 01:45+1100"),
    ],
)
def test_one_time_job_at_a_local_time_in_a_gap_or_repeat_fires_once(clocked, tz, at, expected):
    runner = clocked(utc(2026, 1, 1))
    runner.engine.control.add_job({"name": "once", "service": "noop", "at": at, "tz": tz}, runner.now)
    assert local(runner.run_until(utc(2026, 12, 31)), tz) == [expected]


# -- preview through the real runner --------------------------------------------------------------
@pytest.mark.slow
def test_preview_shows_dst_correct_times(client):
    preview = client.preview(cron="30 2 * * *", tz=WARSAW, count=3, after="2026-03-28 12:00")
    assert local(preview.times, WARSAW) == ["29 03:00+0200", "30 02:30+0200", "31 02:30+0200"]
    preview = client.preview(cron="0 * * * *", tz=NEW_YORK, count=3, after="2026-11-01 00:30")
    assert local(preview.times, NEW_YORK) == ["01 01:00-0400", "01 01:00-0500", "01 02:00-0500"]
    preview = client.preview(cron="0 */2 * * *", tz=LORD_HOWE, count=3, after="2026-04-04 23:00")
    assert local(preview.times, LORD_HOWE) == ["05 00:00+1100", "05 02:00+1030", "05 04:00+1030"]
    preview = client.preview(every="1h", tz=WARSAW, count=3, after="2026-10-25 01:30", start="2026-10-25 01:30")
    assert local(preview.times, WARSAW) == ["25 01:30+0200", "25 02:30+0200", "25 02:30+0100"]
    preview = client.preview(at="2026-10-04 02:10", tz=LORD_HOWE, count=3, after="2026-10-01 00:00")
    assert local(preview.times, LORD_HOWE) == ["04 02:30+1100"]
