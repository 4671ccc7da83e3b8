"""Cron lines mean what Debian's cron means: the lines croniter got wrong, extended syntax, H, refusals."""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

import nbsched
from nbsched.errors import InvalidJob
from nbsched.model import cron
from nbsched.model.jobs import JobSpec
from nbsched.model.triggers import Cron
from nbsched.runner.engine import Engine, Hooks
from nbsched.store import StoredJob
from nbsched.store.sqlite import SQLiteStore

START = datetime(2026, 11, 28, tzinfo=UTC)  # a Saturday


def fires(line: str, count: int, tz: str = "UTC", start: datetime = START, seed: str | None = None) -> list[str]:
    trigger, moment, out = Cron(line, tz, seed=seed), start, []
    for _ in range(count):
        moment = trigger.next_fire(moment)
        out.append(moment.astimezone(ZoneInfo(tz)).strftime("%a %m-%d %H:%M:%S"))
    return out


# The table of issue 13: what croniter 7 made of these lines, and what Debian's cron does.
def test_a_single_value_minute_range_is_that_minute_of_every_hour():
    assert fires("5-5 * * * *", 3) == ["Sat 11-28 00:05:00", "Sat 11-28 01:05:00", "Sat 11-28 02:05:00"]


def test_a_single_value_hour_range_fires_once_a_day():
    assert fires("0 23-23 * * *", 3) == ["Sat 11-28 23:00:00", "Sun 11-29 23:00:00", "Mon 11-30 23:00:00"]


def test_a_single_value_weekday_range_is_that_weekday():
    assert fires("0 0 * * 0-0", 3) == ["Sun 11-29 00:00:00", "Sun 12-06 00:00:00", "Sun 12-13 00:00:00"]


def test_a_step_over_a_single_value_range_is_that_value():
    assert fires("59-59/15 * * * *", 3) == ["Sat 11-28 00:59:00", "Sat 11-28 01:59:00", "Sat 11-28 02:59:00"]


def test_a_star_led_day_of_month_field_ands_with_the_weekday():
    # Odd-numbered days that are Mondays: Dec 7, Dec 21, Jan 5 2027 ... (not every odd day, not every Monday).
    assert fires("0 0 */2 * mon", 3) == ["Mon 12-07 00:00:00", "Mon 12-21 00:00:00", "Mon 01-11 00:00:00"]


def test_a_star_led_weekday_field_ands_with_the_day_of_month():
    assert fires("0 0 1 * */1", 3) == ["Tue 12-01 00:00:00", "Fri 01-01 00:00:00", "Mon 02-01 00:00:00"]


def test_a_step_from_one_weekday_runs_to_sunday():
    assert fires("0 0 * * 6/1", 3) == ["Sun 11-29 00:00:00", "Sat 12-05 00:00:00", "Sun 12-06 00:00:00"]


def test_a_six_field_fixed_time_is_wall_clock_across_dst_in_warsaw():
    # Spring-forward 2026-03-29 (02:00 -> 03:00): 02:30:00 fires at 03:00, once.
    spring = fires("0 30 2 * * *", 3, "Europe/Warsaw", datetime(2026, 3, 27, 12, tzinfo=UTC))
    assert spring == ["Sat 03-28 02:30:00", "Sun 03-29 03:00:00", "Mon 03-30 02:30:00"]
    # Fall-back 2026-10-25 (03:00 -> 02:00): 02:30:00 happens twice, fires once.
    fall = Cron("0 30 2 * * *", "Europe/Warsaw")
    got = [fall.next_fire(datetime(2026, 10, 24, 12, tzinfo=UTC))]
    got.append(fall.next_fire(got[0]))
    assert got == [datetime(2026, 10, 25, 0, 30, tzinfo=UTC), datetime(2026, 10, 26, 1, 30, tzinfo=UTC)]


# Extended syntax that evaluates deterministically.
@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("0 0 L * *", ["Mon 11-30 00:00:00", "Thu 12-31 00:00:00", "Sun 01-31 00:00:00"]),
        ("0 0 LW * *", ["Mon 11-30 00:00:00", "Thu 12-31 00:00:00", "Fri 01-29 00:00:00"]),
        ("0 0 * * 5L", ["Fri 12-25 00:00:00", "Fri 01-29 00:00:00", "Fri 02-26 00:00:00"]),
        ("0 0 * * 5#2", ["Fri 12-11 00:00:00", "Fri 01-08 00:00:00", "Fri 02-12 00:00:00"]),
        ("0 0 * * fri#2", ["Fri 12-11 00:00:00", "Fri 01-08 00:00:00", "Fri 02-12 00:00:00"]),
        ("0 0 * * 7", ["Sun 11-29 00:00:00", "Sun 12-06 00:00:00", "Sun 12-13 00:00:00"]),
        ("0 12 1 jan,JUL *", ["Fri 01-01 12:00:00", "Thu 07-01 12:00:00", "Sat 01-01 12:00:00"]),
        ("@yearly", ["Fri 01-01 00:00:00", "Sat 01-01 00:00:00", "Mon 01-01 00:00:00"]),
        ("@annually", ["Fri 01-01 00:00:00", "Sat 01-01 00:00:00", "Mon 01-01 00:00:00"]),
        ("@monthly", ["Tue 12-01 00:00:00", "Fri 01-01 00:00:00", "Mon 02-01 00:00:00"]),
        ("@weekly", ["Sun 11-29 00:00:00", "Sun 12-06 00:00:00", "Sun 12-13 00:00:00"]),
        ("@daily", ["Sun 11-29 00:00:00", "Mon 11-30 00:00:00", "Tue 12-01 00:00:00"]),
        ("@midnight", ["Sun 11-29 00:00:00", "Mon 11-30 00:00:00", "Tue 12-01 00:00:00"]),
        ("@hourly", ["Sat 11-28 01:00:00", "Sat 11-28 02:00:00", "Sat 11-28 03:00:00"]),
        ("5/20 * * * *", ["Sat 11-28 00:05:00", "Sat 11-28 00:25:00", "Sat 11-28 00:45:00"]),
        ("*/20 * * * * *", ["Sat 11-28 00:00:20", "Sat 11-28 00:00:40", "Sat 11-28 00:01:00"]),
    ],
)
def test_extended_syntax_fires_as_cronsim_reads_it(line, expected):
    assert fires(line, 3) == expected


# H: a value hashed from the job's name.
def test_h_is_stable_for_a_name_and_differs_between_names():
    assert fires("H * * * *", 2, seed="sync") == fires("H * * * *", 2, seed="sync")
    minutes = {Cron("H * * * *", seed=f"job-{i}").line.minutes for i in range(20)}
    assert len(minutes) > 10


def test_a_thousand_h_jobs_spread_over_the_hour():
    counts = Counter(Cron("H * * * *", seed=f"report-{i}").line.minutes[0] for i in range(1000))
    assert len(counts) == 60  # every minute of the hour is used
    assert max(counts.values()) < 35  # about 17 a minute, none crowded


@pytest.mark.parametrize(
    ("line", "check"),
    [
        ("H/15 * * * *", lambda line: len(line.minutes) == 4 and line.minutes[0] < 15 and _steps(line.minutes, 15)),
        ("H(0-29) * * * *", lambda line: len(line.minutes) == 1 and line.minutes[0] <= 29),
        (
            "H(0-29)/10 * * * *",
            lambda line: line.minutes[0] < 10 and _steps(line.minutes, 10) and line.minutes[-1] <= 29,
        ),
        ("0 H * * *", lambda line: len(line.hours) == 1),
        ("0 0 H * *", lambda line: len(line.days) == 1 and 1 <= min(line.days) <= 28),
        ("0 0 * * H", lambda line: len(line.weekdays) == 1),
        ("H,30 * * * *", lambda line: 30 in line.minutes),
    ],
)
def test_h_forms_pick_values_inside_their_range(line, check):
    for name in ("sync", "report", "cleanup", "a", "b"):
        assert check(Cron(line, seed=name).line), (line, name)


def _steps(values: tuple[int, ...], step: int) -> bool:
    return all(b - a == step for a, b in itertools.pairwise(values))


def test_a_job_with_h_fires_at_the_times_its_preview_shows(tmp_path):
    now = datetime(2026, 11, 28, 10, 0, 7, tzinfo=UTC)
    spec = JobSpec.from_user(now=now, default_tz="UTC", name="nightly", service="api.hello", cron="H H * * *")
    shown = nbsched.preview(cron="H H * * *", tz="UTC", name="nightly", now=now, count=3).times
    job_fires = [spec.first_fire(now)]
    while len(job_fires) < 3:
        job_fires.append(spec.next_fire(job_fires[-1], len(job_fires)))
    assert job_fires == shown
    assert spec.cron == "H H * * *"  # stored as typed; the values follow the name wherever it runs


def test_a_preview_of_an_h_line_without_a_name_says_it_needs_one():
    with pytest.raises(InvalidJob, match="uses H, which needs the job's name"):
        nbsched.preview(cron="H * * * *")


# Refusals name the field and the value, in nbsched's words.
@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("61 * * * *", "the minute field '61' is out of range 0-59"),
        ("0 24 * * *", "the hour field '24' is out of range 0-23"),
        ("0 0 32 * *", "the day-of-month field '32' is out of range 1-31"),
        ("0 0 * 13 *", "the month field '13' is out of range 1-12"),
        ("0 0 * * 8", "the day-of-week field '8' is out of range 0-7"),
        ("0-60 * * * *", "the minute field '0-60': 60 is out of range 0-59"),
        ("61 * * * * *", "the second field '61' is out of range 0-59"),
        ("R * * * *", "the minute field 'r' is a random value (R), refused"),
        ("0 0 ? * mon", "the day-of-month field '?' is Quartz's '?'"),
        ("0 0 15W * *", "the day-of-month field '15w' asks for a nearest weekday (W)"),
        ("*/0 * * * *", "the minute field '*/0' has step '0'"),
        ("1,,2 * * * *", "the minute field '1,,2' has an empty list item"),
        ("0 0 * * 5-1", "the day-of-week field '5-1' is a range that ends before it starts"),
        ("0 0 * * 1#6", "the day-of-week field '1#6' asks for weekday number 6 of the month"),
        ("0 0 * * fooL", "the day-of-week field 'fool' is not understood"),
        ("0 0 30 2 *", "it matches no date: day 30 does not occur in the month field '2'"),
        ("0 0 * foo *", "the month field 'foo' is not understood: use numbers 1-12, or names jan-dec"),
        ("H(50-70) * * * *", "the minute field 'h(50-70)' hashes over 50-70"),
        ("* * * *", "it has 4 fields"),
        ("@reboot", "Unknown cron alias '@reboot'"),
    ],
)
def test_a_refused_line_names_its_field_and_value(line, message):
    with pytest.raises(InvalidJob) as caught:
        Cron(line, seed="job")
    text = str(caught.value)
    assert message in text
    assert text.startswith(f"Invalid cron expression {line!r}" if not line.startswith("@") else "Unknown cron alias")
    assert "A line has 5 fields (minute hour day-of-month month day-of-week), e.g." in text
    for library_wording in ("is not acceptable", "Bad ", "Hashed definitions", "CronSim", "croniter"):
        assert library_wording not in text


def test_the_issue_example_refusal_reads_exactly():
    with pytest.raises(InvalidJob) as caught:
        Cron("61 * * * *")
    assert str(caught.value) == (
        "Invalid cron expression '61 * * * *': the minute field '61' is out of range 0-59. A line has 5 fields "
        "(minute hour day-of-month month day-of-week), e.g. '*/5 9-17 * * mon-fri', or 6 with seconds first, or an "
        "alias such as @hourly or @daily."
    )


# A pure preview.
def test_preview_needs_no_runner_and_counts_a_fire_at_exactly_after(home):
    shown = nbsched.preview(cron="0 9 * * mon", tz="Europe/Warsaw", after="2026-11-30 09:00", count=2)
    assert [t.isoformat() for t in shown.times] == ["2026-11-30T09:00:00+01:00", "2026-12-07T09:00:00+01:00"]
    assert shown.description == "At 09:00 on Monday (Europe/Warsaw)"
    assert not (home / "runner.pid").exists()


# Stored jobs across the upgrade.
def _store_job(path, line: str, next_fire: datetime, name: str = "nightly") -> None:
    store = SQLiteStore(path)
    spec = JobSpec(name=name, service="api.hello", kind="cron", cron=line, start=START, tz="UTC")
    job = StoredJob(uid=name, spec=spec, state=nbsched.model.jobs.JobState(created_at=START, next_fire=next_fire))
    store.add_job(job)
    store.close()


def test_a_job_whose_line_changed_meaning_is_listed_at_start_and_moved_to_the_new_reading(tmp_path, caplog):
    path = tmp_path / "nbsched.db"
    now = datetime(2026, 11, 28, 10, 30, tzinfo=UTC)
    _store_job(path, "0 23-23 * * *", next_fire=now + timedelta(minutes=30))  # croniter 7: every hour
    engine = Engine(store=SQLiteStore(path), hooks=Hooks(dispatch=lambda message: None), runner_id="test:1")
    with caplog.at_level(logging.WARNING, logger="nbsched.runner.engine"):
        engine.load(now)
    listed = [r.getMessage() for r in caplog.records if "nightly" in r.getMessage()]
    assert len(listed) == 1
    assert "'0 23-23 * * *' fires as Debian's cron reads it since nbsched 0.2" in listed[0]
    assert engine.jobs["nightly"].spec.name == "nightly"
    assert engine.jobs["nightly"].spec.cron == "0 23-23 * * *"
    assert engine.jobs["nightly"].state.next_fire == datetime(2026, 11, 28, 23, tzinfo=UTC)
    engine.store.close()


def test_a_stored_job_with_a_line_refused_now_is_paused_with_a_note(tmp_path, caplog):
    path = tmp_path / "nbsched.db"
    now = datetime(2026, 11, 28, 10, 30, tzinfo=UTC)
    _store_job(path, "R * * * *", next_fire=now + timedelta(minutes=5), name="random")
    engine = Engine(store=SQLiteStore(path), hooks=Hooks(dispatch=lambda message: None), runner_id="test:1")
    with caplog.at_level(logging.ERROR, logger="nbsched.runner.engine"):
        engine.load(now)
    job = engine.jobs["random"]
    assert job.spec.active is False
    assert "refused" in job.spec.note
    assert any("random" in r.getMessage() and "random value (R)" in r.getMessage() for r in caplog.records)
    engine.store.close()


@pytest.mark.parametrize(
    ("line", "changed"),
    [
        ("5-5 * * * *", True),
        ("0 23-23 * * *", True),
        ("0 0 * * 0-0", True),
        ("59-59/15 * * * *", True),
        ("0 0 */2 * mon", True),
        ("0 0 1 * */1", True),
        ("0 0 * * 6/1", True),
        ("*/5 9-17 * * mon-fri", False),
        ("0 9 * * *", False),
        ("0 0 1 * *", False),
    ],
)
def test_lines_whose_meaning_changed_since_croniter_are_recognised(line, changed):
    assert (cron.meaning_changes(line) is not None) == changed


def test_the_cli_preview_runs_without_a_runner(home):
    from conftest import run_cli

    result = run_cli("preview", "H 9 * * mon", "--name", "weekly", "--count", "2", home=home)
    assert result.returncode == 0, result.stderr
    assert "on Monday" in result.stdout
    assert not (home / "runner.pid").exists()
