"""The peers' own tests, in the suite: cronsim's and croniter's cases run against nbsched's Cron.

The cases are data in ``cron_cases.py`` (each row names the peer test it came from, and says why
where nbsched follows Debian's cron rather than the peer). Both peers' ``next()`` / ``get_next()``
is strictly after their start, like ``Cron.next_fire``; ``croniter_range`` includes its ends, like
``Cron.first_fire``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from cron_cases import (
    CRONITER_CASES,
    CRONITER_MATCH_CASES,
    CRONITER_RANGE_CASES,
    CRONSIM_CASES,
    HASH_SPACING,
    REFUSED,
    VALID,
)

from nbsched.errors import InvalidJob
from nbsched.model.triggers import Cron

SEED = "peer-tests"  # the job name H hashes (croniter's tests used hash_id "hello")
FIELD_WORDS = ("field", "fields", "alias", "no date")
LIBRARY_WORDING = ("is not acceptable", "Bad ")  # croniter's and cronsim's messages


def aware(text: str, tz: str) -> datetime:
    """An ISO time from the tables; one without an offset is a wall-clock time in ``tz``."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(tz))


def local(moments: list[datetime], tz: str) -> list[str]:
    """Readable form for comparisons: ISO in the row's zone (equal strings, equal instants)."""
    return [moment.astimezone(ZoneInfo(tz)).isoformat() for moment in moments]


def case_id(row: tuple) -> str:
    return f"{row[0].rsplit('::', 1)[-1]}[{row[1]}]"


def params(rows: list) -> list:
    """Rows as pytest params with readable ids; a row already wrapped in pytest.param (an xfail) stays."""
    return [row if hasattr(row, "marks") else pytest.param(*row, id=case_id(row)) for row in rows]


@pytest.mark.parametrize(("source", "line", "tz", "start", "expected"), params(CRONSIM_CASES + CRONITER_CASES))
def test_fires_where_the_peer_test_says(source, line, tz, start, expected):
    trigger = Cron(line, tz, seed=SEED)
    moment, fires = aware(start, tz), []
    for _ in range(max(len(expected), 1)):
        moment = trigger.next_fire(moment)
        if moment is None:
            break
        fires.append(moment)
    assert local(fires[: len(expected) or 1], tz) == local([aware(text, tz) for text in expected], tz), source


@pytest.mark.parametrize(
    ("source", "line", "tz", "start", "stop", "exclude_ends", "expected"), params(CRONITER_RANGE_CASES)
)
def test_fires_in_a_range_where_croniter_range_says(source, line, tz, start, stop, exclude_ends, expected):
    trigger = Cron(line, tz, seed=SEED)
    begin, end = aware(start, tz), aware(stop, tz)
    fires, moment = [], trigger.next_fire(begin) if exclude_ends else trigger.first_fire(begin)
    while moment is not None and (moment < end if exclude_ends else moment <= end):
        fires.append(moment)
        moment = trigger.next_fire(moment)
    assert local(fires, tz) == local([aware(text, tz) for text in expected], tz), source


@pytest.mark.parametrize(("source", "line", "tz", "moment", "stop", "expected"), params(CRONITER_MATCH_CASES))
def test_matches_where_croniter_match_says(source, line, tz, moment, stop, expected):
    trigger = Cron(line, tz, seed=SEED)
    start = aware(moment, tz)
    if stop is None:  # match(): does the line fire in the minute (6 fields: second) holding ``moment``
        start = start.replace(microsecond=0) if len(line.split()) == 6 else start.replace(second=0, microsecond=0)
        fire = trigger.first_fire(start)
        assert (fire == start) is expected, source
    else:  # match_range(): does it fire in [moment, stop]
        fire = trigger.first_fire(start)
        assert (fire is not None and fire <= aware(stop, tz)) is expected, source


@pytest.mark.parametrize(("source", "line", "start", "spacing"), params(HASH_SPACING))
def test_hashed_lines_keep_the_spacing_croniter_tests(source, line, start, spacing):
    trigger = Cron(line, seed=SEED)
    first = trigger.next_fire(aware(start, "UTC"))
    assert first is not None
    assert trigger.next_fire(first) - first == spacing, source
    assert Cron(line, seed=SEED).next_fire(aware(start, "UTC")) == first  # the same name, the same times


@pytest.mark.parametrize(("source", "line"), params(VALID))
def test_valid_where_the_peer_test_says(source, line):
    for tz in ("UTC", "Europe/Riga"):
        trigger = Cron(line, tz, seed=SEED)
        fire = trigger.next_fire(aware("2021-03-27T12:00:00", tz))
        assert fire is None or fire > aware("2021-03-27T12:00:00", tz), source


@pytest.mark.parametrize(("source", "line", "says"), params(REFUSED))
def test_refused_naming_the_field(source, line, says):
    with pytest.raises(InvalidJob):
        Cron(line)
    with pytest.raises(InvalidJob) as refused:
        Cron(line, seed=SEED)
    message = str(refused.value)
    assert says in message, message
    assert any(word in message for word in FIELD_WORDS), message
    assert not any(wording in message for wording in LIBRARY_WORDING), message


def test_every_table_row_names_its_peer_test():
    rows = CRONSIM_CASES + CRONITER_CASES + CRONITER_RANGE_CASES + CRONITER_MATCH_CASES + HASH_SPACING + VALID + REFUSED
    for row in rows:
        values = row.values if hasattr(row, "marks") else row
        assert values[0].startswith(("cronsim tests/", "croniter src/croniter/tests/")), values
        assert "::" in values[0], values


def test_hashed_lines_differ_between_jobs():
    """croniter's test_hash_id_change: another id, other times (nbsched: another job name)."""
    start = aware("2020-01-01T00:00:00", "UTC")
    times = {Cron("H H * * *", seed=f"job-{number}").next_fire(start) for number in range(20)}
    assert len(times) > 1
    assert all(time - start <= timedelta(days=1) for time in times)
