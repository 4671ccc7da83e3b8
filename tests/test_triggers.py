"""Triggers against hand-checked fire times."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from nbsched.errors import InvalidJob
from nbsched.model.timeparse import iso
from nbsched.model.triggers import Cron, Interval, OneTime

WARSAW = ZoneInfo("Europe/Warsaw")


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def fires(trigger, after: datetime, count: int) -> list[datetime]:
    out, moment = [], after
    for _ in range(count):
        moment = trigger.next_fire(moment)
        if moment is None:
            break
        out.append(moment)
    return out


def test_one_time_fires_once_at_its_time():
    trigger = OneTime(utc(2026, 11, 25, 10))
    assert trigger.first_fire(utc(2026, 11, 24)) == utc(2026, 11, 25, 10)
    assert trigger.next_fire(utc(2026, 11, 25, 9, 59)) == utc(2026, 11, 25, 10)
    assert trigger.next_fire(utc(2026, 11, 25, 10)) is None


def test_interval_fires_on_the_grid_from_its_start():
    trigger = Interval(timedelta(minutes=5), utc(2026, 1, 1, 9, 0))
    assert trigger.first_fire(utc(2026, 1, 1, 8)) == utc(2026, 1, 1, 9, 0)
    assert trigger.first_fire(utc(2026, 1, 1, 9, 7)) == utc(2026, 1, 1, 9, 10)
    assert fires(trigger, utc(2026, 1, 1, 9, 0), 3) == [
        utc(2026, 1, 1, 9, 5),
        utc(2026, 1, 1, 9, 10),
        utc(2026, 1, 1, 9, 15),
    ]


def test_interval_does_not_drift_when_runs_end_late():
    trigger = Interval(timedelta(seconds=90), utc(2026, 1, 1))
    # each "run" ends 70 s after its fire; the next fire is still on the grid
    fire = trigger.first_fire(utc(2026, 1, 1))
    seen = []
    for _ in range(1000):
        seen.append(fire)
        fire = trigger.next_fire(fire + timedelta(seconds=70))
    assert seen[-1] == utc(2026, 1, 1) + 999 * timedelta(seconds=90)
    assert all((b - a) == timedelta(seconds=90) for a, b in itertools.pairwise(seen))


def test_interval_far_from_its_anchor_stays_exact():
    trigger = Interval(timedelta(seconds=1), utc(2000, 1, 1))
    assert trigger.next_fire(utc(2026, 6, 1, 12, 0, 0, 500000)) == utc(2026, 6, 1, 12, 0, 1)
    assert trigger.next_fire(utc(2026, 6, 1, 12, 0, 1)) == utc(2026, 6, 1, 12, 0, 2)


def test_interval_must_be_positive():
    with pytest.raises(InvalidJob, match="must be positive"):
        Interval(timedelta(0), utc(2026, 1, 1))


def test_cron_in_utc_matches_hand_checked_times():
    trigger = Cron("*/15 9-10 * * mon-fri")
    # 2026-11-27 is a Friday
    got = fires(trigger, utc(2026, 11, 27, 10, 40), 3)
    assert got == [utc(2026, 11, 27, 10, 45), utc(2026, 11, 30, 9, 0), utc(2026, 11, 30, 9, 15)]


def test_cron_reads_its_fields_in_the_job_time_zone():
    trigger = Cron("0 9 * * *", "Europe/Warsaw")
    # winter: UTC+1
    assert trigger.next_fire(utc(2026, 1, 10)) == utc(2026, 1, 10, 8)
    # summer: UTC+2
    assert trigger.next_fire(utc(2026, 7, 10)) == utc(2026, 7, 10, 7)


def test_cron_six_fields_take_seconds_first():
    assert fires(Cron("30 * * * * *"), utc(2026, 1, 1), 2) == [utc(2026, 1, 1, 0, 0, 30), utc(2026, 1, 1, 0, 1, 30)]


@pytest.mark.parametrize(
    ("alias", "expected"),
    [("@hourly", utc(2026, 1, 1, 1)), ("@daily", utc(2026, 1, 2)), ("@monthly", utc(2026, 2, 1))],
)
def test_cron_aliases(alias, expected):
    assert Cron(alias).next_fire(utc(2026, 1, 1, 0, 0, 1)) == expected


def test_cron_fixed_time_in_the_spring_forward_gap_fires_once_just_after_it():
    # Warsaw 2026-03-29: 02:00 CET -> 03:00 CEST; 02:30 does not exist that day.
    trigger = Cron("30 2 * * *", "Europe/Warsaw")
    got = fires(trigger, utc(2026, 3, 27, 12), 3)
    assert got == [
        utc(2026, 3, 28, 1, 30),  # 02:30 CET
        utc(2026, 3, 29, 1, 0),  # 03:00 CEST, the first instant after the gap
        utc(2026, 3, 30, 0, 30),  # 02:30 CEST
    ]


def test_cron_fixed_time_in_the_repeated_hour_fires_once_on_fall_back():
    # Warsaw 2026-10-25: 03:00 CEST -> 02:00 CET; 02:30 happens twice. croniter alone fires twice.
    trigger = Cron("30 2 * * *", "Europe/Warsaw")
    got = fires(trigger, utc(2026, 10, 24, 12), 3)
    assert got == [
        utc(2026, 10, 25, 0, 30),  # 02:30 CEST, the first occurrence only
        utc(2026, 10, 26, 1, 30),  # 02:30 CET
        utc(2026, 10, 27, 1, 30),
    ]


def test_cron_hourly_wildcard_keeps_real_time_rhythm_across_fall_back():
    trigger = Cron("0 * * * *", "Europe/Warsaw")
    got = fires(trigger, utc(2026, 10, 24, 23, 30), 4)
    # local 02:00 CEST (00:00Z), 02:00 CET (01:00Z): both happen
    assert got == [utc(2026, 10, 25, 0), utc(2026, 10, 25, 1), utc(2026, 10, 25, 2), utc(2026, 10, 25, 3)]


def test_cron_hourly_wildcard_skips_the_hour_that_does_not_exist():
    trigger = Cron("30 * * * *", "Europe/Warsaw")
    got = fires(trigger, utc(2026, 3, 29, 0, 0), 2)
    # 01:30 CET = 00:30Z; 02:30 does not exist; next is 03:30 CEST = 01:30Z
    assert got == [utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1, 30)]


def test_cron_that_never_matches_is_refused():
    with pytest.raises(InvalidJob, match="matches no date"):
        Cron("0 0 30 2 *")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("61 * * * *", "out of range"),
        ("* * * *", "has 4 fields"),
        ("", "it is empty. A line has 5 fields"),
        ("@fortnightly", "Unknown cron alias"),
        ("a b c d e", "Invalid cron expression"),
    ],
)
def test_bad_cron_lines_are_refused_with_an_example(line, message):
    with pytest.raises(InvalidJob, match=message) as caught:
        Cron(line)
    assert "e.g. '*/5 9-17 * * mon-fri'" in str(caught.value)


def test_cron_describes_itself_in_plain_english():
    assert Cron("0 9 * * mon", "Europe/Warsaw").describe() == "At 09:00 on Monday (Europe/Warsaw)"


def test_iso_text_is_what_isoformat_writes_in_utc():
    # The store keeps times as this text and compares it as text: it must not drift from isoformat's.
    chooser = random.Random(7)
    zones = [UTC, ZoneInfo("Europe/Warsaw"), ZoneInfo("America/St_Johns"), ZoneInfo("UTC")]
    for _ in range(20_000):
        moment = datetime(1999, 1, 1, tzinfo=UTC) + timedelta(microseconds=chooser.randrange(10**15))
        if chooser.random() < 0.2:
            moment = moment.replace(microsecond=0)
        moment = moment.astimezone(chooser.choice(zones))
        assert iso(moment) == moment.astimezone(UTC).isoformat(), moment
    assert iso(None) is None
    assert iso(datetime(2026, 3, 29, 1, 0, tzinfo=UTC)) == "2026-03-29T01:00:00+00:00"


def test_a_preview_and_a_job_refuse_two_triggers_in_the_same_words():
    from nbsched.model.jobs import JobSpec
    from nbsched.model.triggers import preview

    with pytest.raises(InvalidJob) as for_preview:
        preview(cron="* * * * *", every="5m")
    with pytest.raises(InvalidJob) as for_job:
        JobSpec.from_user(now=utc(2026, 1, 1), default_tz="UTC", name="j", service="s", cron="* * * * *", every="5m")
    tail = "needs exactly one of every, cron or at (got every and cron), e.g. every='5m', cron='0 9 * * mon'"
    assert str(for_preview.value).startswith(f"A preview {tail}")
    assert str(for_job.value).startswith(f"Job 'j' {tail}")
    assert for_preview.value.field == for_job.value.field == "kind"
