"""Job definitions: what is accepted, how it is normalised, and what is refused with which message."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from nbsched.errors import InvalidInput, InvalidJob
from nbsched.model.jobs import JobSpec
from nbsched.model.timeparse import format_duration, parse_datetime, parse_duration

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def spec(**raw) -> JobSpec:
    raw.setdefault("name", "sync")
    raw.setdefault("service", "api.scheduler.sync")
    return JobSpec.from_user(now=NOW, default_tz="UTC", **raw)


@pytest.mark.parametrize(
    ("every", "seconds"),
    [
        ("90s", 90),
        ("5m", 300),
        ("2h", 7200),
        ("1d", 86400),
        ("1w", 604800),
        ("1h30m", 5400),
        (timedelta(minutes=2), 120),
        ({"hours": 1, "minutes": 30}, 5400),
        ({"weeks": 1, "days": 1}, 691200),
        (45, 45),
    ],
)
def test_every_accepts_the_documented_forms(every, seconds):
    assert spec(every=every).every == seconds


def test_duration_round_trips_through_its_compact_form():
    assert format_duration(parse_duration("1h30m")) == "1h30m"
    assert format_duration(timedelta(days=8, seconds=5)) == "1w1d5s"


def test_dates_without_offset_are_read_in_the_job_time_zone():
    job = spec(at="2026-11-25 10:00", tz="Europe/Warsaw")
    assert job.at == datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    assert spec(at="2026-11-25T10:00:00+05:00").at == datetime(2026, 11, 25, 5, 0, tzinfo=UTC)
    assert spec(at="in 10m").at == NOW + timedelta(minutes=10)


def test_default_time_zone_applies_when_the_job_names_none():
    job = JobSpec.from_user(now=NOW, default_tz="America/New_York", name="x", service="s", cron="0 9 * * *")
    assert job.tz == "America/New_York"


def test_a_time_skipped_by_dst_moves_just_after_the_gap():
    moment = parse_datetime("2026-03-29 02:30", "Europe/Warsaw", NOW)
    assert moment == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 03:00 CEST


def test_start_defaults_to_now_and_interval_first_fire_is_right_away():
    job = spec(every="5m")
    assert job.start == NOW
    assert job.first_fire(NOW) == NOW
    assert job.first_fire(NOW + timedelta(seconds=1)) == NOW + timedelta(minutes=5)


def test_repeats_and_end_bound_the_fires():
    job = spec(every="1m", repeats=2)
    assert job.next_fire(NOW, fires=1) == NOW + timedelta(minutes=1)
    assert job.next_fire(NOW, fires=2) is None
    ending = spec(every="1m", end="2026-11-24 12:01:30")
    assert ending.next_fire(NOW + timedelta(minutes=1), fires=1) is None


def test_spec_survives_its_record_form():
    job = spec(cron="0 9 * * mon", tz="Europe/Warsaw", extra={"region": "eu"}, jitter="5s", timeout="30s", retries=2)
    assert JobSpec.from_record(job.to_record()) == job


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"every": "0s"}, "it must be positive, e.g. '90s'"),
        ({"every": "-5m"}, "a duration looks like '90s'"),
        ({"every": "5 parsecs"}, "a duration looks like '90s', '5m'"),
        ({"every": {"fortnights": 1}}, "unknown key(s) 'fortnights'"),
        ({"cron": "61 * * * *"}, "out of range"),
        ({"cron": "* * * *"}, "it has 4 fields"),
        ({"every": "5m", "cron": "* * * * *"}, "needs exactly one of every, cron or at (got every and cron)"),
        ({}, "needs exactly one of every, cron or at (got none)"),
        ({"every": "5m", "tz": "Mars/Olympus"}, "Unknown time zone 'Mars/Olympus': use an IANA name"),
        ({"at": "next tuesday"}, "dates look like '2026-11-25 10:00'"),
        ({"every": "1m", "start": "2026-11-25", "end": "2026-11-24"}, "is not after start"),
        ({"every": "1m", "repeats": 0}, "use a whole number, 1 or more"),
        ({"every": "1m", "repeats": "many"}, "use a whole number, 1 or more"),
        ({"every": "1m", "overlap": "sometimes"}, "use one of skip, queue, queue_all, replace, allow"),
        ({"every": "1m", "misfire": "never"}, "use one of skip, once, all"),
        ({"every": "1m", "timeout": "0s"}, "it must be a positive duration"),
        ({"every": "1m", "colour": "red"}, "Unknown job option(s) colour"),
        ({"every": "1m", "name": "has space"}, "Invalid job name 'has space'"),
        ({"every": "1m", "extra": "x" * 70000}, "Extra is too large"),
        ({"every": "1m", "extra": object()}, "Invalid extra of type object"),
    ],
)
def test_invalid_jobs_are_refused_with_a_message_showing_valid_input(raw, message):
    with pytest.raises(InvalidJob) as caught:
        spec(**raw)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_invalid_input_is_also_a_value_error():
    with pytest.raises(ValueError):
        spec(every="soon")
    assert issubclass(InvalidJob, InvalidInput)


def test_specs_loaded_from_records_share_the_values_jobs_have_in_common():
    """A runner holds one spec per job (100,000 of them): each loaded from its own JSON text, the specs keep one
    copy of a service name, a time zone, a policy or an interval, not one each."""

    SECOND = timedelta(seconds=1)
    record = spec(name="a", service="api.sync", every="90s", tz="Europe/Paris", jitter="2s").to_record()
    first, second = (JobSpec.from_record(json.loads(json.dumps(dict(record, name=name)))) for name in ("a", "b"))
    for field in ("service", "tz", "every", "jitter", "catchup", "misfire", "overlap", "kind", "isolation"):
        assert getattr(first, field) is getattr(second, field), field
    assert (first.every, type(first.every), first.jitter) == (90.0, float, 2.0)
    assert first.trigger().every is second.trigger().every  # one timedelta per interval
    assert first.next_fire(first.start, 0) == first.trigger().next_fire(first.start) == first.start + (90 * SECOND)
    assert not hasattr(first, "__dict__")  # slotted
    assert first.definition() == "every 1m30s" and first.definition() is second.definition()
    assert JobSpec.from_record(first.to_record()) == first and "_trigger" not in first.to_record()


def test_a_specs_record_is_its_fields_in_order_with_times_as_text():
    """``to_record`` (no deep copy): every field by name, in the spec's order, times as ISO text."""
    from dataclasses import fields

    job = spec(
        name="r", service="api.sync", every="90s", extra={"a": [1]}, notify_on=["error"], notify=["webhook:http://h/x"]
    )
    record = job.to_record()
    assert list(record) == [field.name for field in fields(JobSpec)]
    assert record["start"] == job.start.isoformat() and record["at"] is None and record["end"] is None
    assert (record["extra"], record["notify_on"], record["notify"]) == ({"a": [1]}, ("error",), ("webhook:http://h/x",))
    assert json.loads(json.dumps(record))["every"] == 90.0


def test_sharing_keeps_each_value_as_given():
    """Equal values of other types or signs are not taken for one another (``-0.0`` is not ``0.0``)."""
    from nbsched.model.jobs import _shared

    assert _shared(0.0) is _shared(0.0)
    assert str(_shared(-0.0)) == "-0.0" and str(_shared(0.0)) == "0.0"
    assert type(_shared(1.0)) is float and _shared(1) == 1 and type(_shared(1)) is int
    assert _shared(None) is None and _shared(("a",)) == ("a",)
