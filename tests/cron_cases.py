"""The test suites of nbsched's two cron peers, cronsim and croniter, ported as data (issue 13, item 5).

Every case of the peers' tests that asserts concrete fire times or the validity of a line is here,
as data, with the source file and test function it came from. ``tests/test_cron_peers.py`` runs
every row against ``nbsched.model.triggers.Cron``.

Sources (bare snapshots in /work/.mirror):

* cronsim 2.7, ``tests/test_cronsim.py`` (commit fd2e617787e9)
* croniter 6.0.1.dev0, ``src/croniter/tests/test_croniter*.py`` (commit d81350205c65)

Row shapes:

* ``CRONSIM_CASES`` / ``CRONITER_CASES``: ``(source, line, tz, start, expected)``. ``expected`` are
  the next fire times *strictly after* ``start``, in order: both peers' first ``next()`` /
  ``get_next()`` is strictly after their start, as is nbsched's ``next_fire``. An ISO time without
  an offset is a wall-clock time in ``tz`` (only used where ``tz`` is UTC); rows in DST zones carry
  offsets. A start with an odd offset (``+00:09``) is croniter's ``datetime(..., tzinfo=pytz_zone)``,
  which pytz reads as the zone's local mean time, rounded to the minute.
* ``CRONITER_RANGE_CASES``: ``croniter_range(start, stop)``, both ends included unless
  ``exclude_ends``: ``(source, line, tz, start, stop, exclude_ends, expected)``.
* ``CRONITER_MATCH_CASES``: ``croniter.match(line, moment)`` (``stop`` is None: does the line fire
  in the minute, or for 6 fields the second, holding ``moment``) and ``croniter.match_range``
  (does it fire in ``[moment, stop]``): ``(source, line, tz, moment, stop, expected)``.
* ``HASH_SPACING``: ``(source, line, start, spacing)`` for croniter's ``H`` tests, see below.
* ``VALID``: ``(source, line)``; ``REFUSED``: ``(source, line, says)``: nbsched must refuse the line
  with a message containing ``says`` (the field it names, or "has N fields", "matches no date").

Not ported, by design:

* Backward iteration (cronsim ``reverse=True``, the whole of ``TestReverse``; croniter ``get_prev``,
  ``is_prev=True``, ``all_prev``): nbsched only goes forward. Where croniter calls ``get_next`` after
  ``get_prev``, the row starts at the time ``get_prev`` returned (a forward step from a known time).
* croniter's 6-field lines put the seconds *last* (its default, ``second_at_beginning=False``);
  nbsched, like cronsim, reads a 6th field as seconds *first*. Such lines are rewritten seconds-first
  and the comment gives croniter's original. Its 7th (year) field is refused by nbsched.
* Tests of APIs nbsched does not have (return types, ``get_current``, ``set_current``,
  ``update_current``, ``expand_from_start_time``, ``max_years_between_matches``, ``day_or=False``,
  ``implement_cron_bug``, ``croniter_range`` type checks, internal ``expanded`` lists, ``explain()``,
  cronsim's ``fixup_tz``), croniter's speed test, and its ``H`` expansion statistics (croniter hashes
  its ``hash_id`` with its own function; nbsched hashes the job's name with another, so the hashed
  values differ by design): see the ``SKIPPED`` list at the end.

Where the peers disagree, Debian's cron decides (cronsim implements it) and the comment says why.
nbsched's deliberate differences from cronsim (see ``nbsched/model/cron.py``): ``5-5/15`` is minute 5; a
6-field line with fixed second, minute and hour keeps wall-clock times across DST like a 5-field
one; DST answers are the brute-force reading (real-time lines fire at every real instant whose
wall time matches; wall-clock lines fire at the first occurrence of a repeated time and at the end
of the gap for a skipped one). Every expected value was checked against cronsim (naive wall times)
plus that brute-force reading, not only copied from the peer.
"""

from __future__ import annotations

from datetime import datetime, timedelta

CS = "cronsim tests/test_cronsim.py::"
CI = "croniter src/croniter/tests/test_croniter.py::CroniterTest::"
CI_DST = "croniter src/croniter/tests/test_croniter_dst_repetition.py::"
CI_RANGE = "croniter src/croniter/tests/test_croniter_range.py::CroniterRangeTest::"
CI_HASH = "croniter src/croniter/tests/test_croniter_hash.py::"
CI_RANDOM = "croniter src/croniter/tests/test_croniter_random.py::CroniterRandomTest::"


def _every(first: str, count: int, minutes: int = 0, seconds: int = 0) -> list[str]:
    """``count`` ISO times from ``first``, ``minutes``/``seconds`` apart."""
    start, step = datetime.fromisoformat(first), timedelta(minutes=minutes, seconds=seconds)
    return [(start + step * i).isoformat() for i in range(count)]


def _midnights(year: int, month: int, days: list[int]) -> list[str]:
    """Midnights on ``days`` (days of month, ascending, a smaller number starting the next month)."""
    out, previous = [], 0
    for day in days:
        if day <= previous:
            month, year = (1, year + 1) if month == 12 else (month + 1, year)
        out.append(datetime(year, month, day).isoformat())
        previous = day
    return out


def _firsts(year_months: list[str]) -> list[str]:
    """croniter's ``"24 2"`` (two-digit year, month) as midnight on the first of that month."""
    return [datetime(2000 + int(y), int(m), 1).isoformat() for y, m in (item.split() for item in year_months)]


def _restarts(line: str, pairs: list[tuple[str, str]], source: str) -> list[tuple]:
    """Rows for croniter tests that build a new iterator per step: ``(start, first fire)`` pairs."""
    return [(source, line, "UTC", start, [fire]) for start, fire in pairs]


# --------------------------------------------------------------------------------------------------
# cronsim: forward iteration (tests/test_cronsim.py)
# --------------------------------------------------------------------------------------------------

NOW = "2020-01-01T00:00:00"  # cronsim's NOW, naive (nbsched reads it in UTC)

# fmt: off
CRONSIM_CASES: list[tuple] = [
    # TestIterator (naive NOW)
    (CS + "TestIterator::test_it_handles_l", "1 1 L * *", "UTC", NOW, ["2020-01-31T01:01:00"]),
    (CS + "TestIterator::test_it_handles_lw", "1 1 LW 5 *", "UTC", NOW, ["2020-05-29T01:01:00"]),
    (
        CS + "TestIterator::test_it_handles_last_friday",
        "1 1 * * 5L",
        "UTC",
        NOW,
        [
            "2020-01-31T01:01:00",
            "2020-02-28T01:01:00",
            "2020-03-27T01:01:00",
            "2020-04-24T01:01:00",
            "2020-05-29T01:01:00",
            "2020-06-26T01:01:00",
            "2020-07-31T01:01:00",
            "2020-08-28T01:01:00",
            "2020-09-25T01:01:00",
            "2020-10-30T01:01:00",
            "2020-11-27T01:01:00",
            "2020-12-25T01:01:00",
        ],
    ),
    (CS + "TestIterator::test_it_handles_last_sunday_two_notations", "1 1 * * 0L", "UTC", NOW, ["2020-01-26T01:01:00"]),
    (CS + "TestIterator::test_it_handles_last_sunday_two_notations", "1 1 * * 7L", "UTC", NOW, ["2020-01-26T01:01:00"]),
    (CS + "TestIterator::test_it_handles_nth_weekday", "1 1 * * 1#2", "UTC", NOW, ["2020-01-13T01:01:00"]),
    (
        # "First Sunday of the month": the weekday field starts with '*', so the day fields AND.
        CS + "TestIterator::test_it_handles_dow_star",
        "1 1 1-7 * */7",
        "UTC",
        NOW,
        ["2020-01-05T01:01:00", "2020-02-02T01:01:00", "2020-03-01T01:01:00", "2020-04-05T01:01:00"],
    ),
    (
        # "First Monday of the month": the day field starts with '*', so the day fields AND.
        CS + "TestIterator::test_it_handles_dom_star",
        "1 1 */100,1-7 * MON",
        "UTC",
        NOW,
        ["2020-01-06T01:01:00", "2020-02-03T01:01:00", "2020-03-02T01:01:00", "2020-04-06T01:01:00"],
    ),
    # The 1st of the month AND its 4th Monday never happens: no fire at all.
    (CS + "TestIterator::test_it_handles_no_matches", "1 1 */100 * MON#4", "UTC", NOW, []),
    (
        # "every 3rd weekday" counts from Sunday: Sun, Wed, Sat.
        CS + "TestIterator::test_it_handles_every_x_weekdays",
        "1 1 * * */3",
        "UTC",
        NOW,
        ["2020-01-01T01:01:00", "2020-01-04T01:01:00", "2020-01-05T01:01:00", "2020-01-08T01:01:00"],
    ),
    (
        CS + "TestIterator::test_it_handles_seconds",
        "*/15 * * * * *",
        "UTC",
        NOW,
        _every("2020-01-01T00:00:15", 5, seconds=15),
    ),
    # TestParse: each test asserts the set a line parses to; here that set is shown as fire times
    # from cronsim's NOW (Wednesday 2020-01-01), for the tests whose set the first fires tell apart.
    (CS + "TestParse::test_it_parses_6th_field", "* * * * * *", "UTC", NOW,
     _every("2020-01-01T00:00:01", 3, seconds=1)),
    (CS + "TestParse::test_it_parses_numbers", "1 * * * *", "UTC", NOW, ["2020-01-01T00:01:00", "2020-01-01T01:01:00"]),
    (CS + "TestParse::test_it_parses_weekday", "* * * * 1", "UTC", NOW, _every("2020-01-06T00:00:00", 2, minutes=1)),
    (CS + "TestParse::test_it_handles_0_sunday", "* * * * 0", "UTC", NOW, ["2020-01-05T00:00:00"]),
    (
        CS + "TestParse::test_it_parses_list",
        "1,2,3 * * * *",
        "UTC",
        NOW,
        ["2020-01-01T00:01:00", "2020-01-01T00:02:00", "2020-01-01T00:03:00", "2020-01-01T01:01:00"],
    ),
    (
        CS + "TestParse::test_it_parses_interval",
        "1-3 * * * *",
        "UTC",
        NOW,
        ["2020-01-01T00:01:00", "2020-01-01T00:02:00", "2020-01-01T00:03:00", "2020-01-01T01:01:00"],
    ),
    (
        CS + "TestParse::test_it_parses_two_intervals",
        "1-3,7-9 * * * *",
        "UTC",
        NOW,
        [
            "2020-01-01T00:01:00",
            "2020-01-01T00:02:00",
            "2020-01-01T00:03:00",
            "2020-01-01T00:07:00",
            "2020-01-01T00:08:00",
            "2020-01-01T00:09:00",
            "2020-01-01T01:01:00",
        ],
    ),
    (CS + "TestParse::test_it_parses_step", "*/15 * * * *", "UTC", NOW, _every("2020-01-01T00:15:00", 4, minutes=15)),
    (
        CS + "TestParse::test_it_parses_interval_with_step",
        "0-10/2 * * * *",
        "UTC",
        NOW,
        [*_every("2020-01-01T00:02:00", 5, minutes=2), "2020-01-01T01:00:00"],
    ),
    (
        CS + "TestParse::test_it_parses_start_with_step",
        "5/15 * * * *",
        "UTC",
        NOW,
        [*_every("2020-01-01T00:05:00", 4, minutes=15), "2020-01-01T01:05:00"],
    ),
    (CS + "TestParse::test_it_parses_day_l", "* * L * *", "UTC", NOW, ["2020-01-31T00:00:00"]),
    (CS + "TestParse::test_it_parses_day_lw", "* * LW * *", "UTC", NOW, ["2020-01-31T00:00:00"]),
    (CS + "TestParse::test_it_parses_day_lowercase_l", "* * l * *", "UTC", NOW, ["2020-01-31T00:00:00"]),
    (CS + "TestParse::test_it_parses_day_lowercase_lw", "* * lw * *", "UTC", NOW, ["2020-01-31T00:00:00"]),
    (CS + "TestParse::test_it_parses_nth_weekday", "* * * * 1#2", "UTC", NOW, ["2020-01-13T00:00:00"]),
    (CS + "TestParse::test_it_parses_symbolic_weekday", "* * * * MON", "UTC", NOW, ["2020-01-06T00:00:00"]),
    (CS + "TestParse::test_it_parses_lowercase_symbolic_weekday", "* * * * mon", "UTC", NOW, ["2020-01-06T00:00:00"]),
    (CS + "TestParse::test_it_parses_weekday_range_from_zero", "* * * * 0-2", "UTC", NOW, ["2020-01-05T00:00:00"]),
    (CS + "TestParse::test_it_parses_sun_tue", "* * * * sun-tue", "UTC", NOW, ["2020-01-05T00:00:00"]),
    # */2 on weekdays is {0, 2, 4, 6}: Wednesday (3) is skipped, Thursday (4) is next.
    (CS + "TestParse::test_it_starts_weekday_step_from_zero", "* * * * */2", "UTC", NOW, ["2020-01-02T00:00:00"]),
    (CS + "TestParse::test_it_accepts_l_with_step", "* * L/2 * *", "UTC", NOW, ["2020-01-31T00:00:00"]),
    (CS + "TestParse::test_it_accepts_lw_with_step", "* * LW/2 * *", "UTC", NOW, ["2020-01-31T00:00:00"]),
    (CS + "TestParse::test_it_accepts_weekday_7", "* * * * 7", "UTC", NOW, ["2020-01-05T00:00:00"]),
    (CS + "TestParse::test_it_accepts_weekday_l", "* * * * 5L", "UTC", NOW, ["2020-01-31T00:00:00"]),
]

# fmt: on

# TestDstTransitions, in Europe/Riga. 2021: 03:00 EET jumps to 04:00 EEST on March 28; 04:00 EEST
# falls back to 03:00 EET on October 31 (03:00-03:59 happens twice).
RIGA = "Europe/Riga"
_T = CS + "TestDstTransitions::"
# fmt: off
CRONSIM_CASES += [
    (_T + "test_001_every_hour_mar", "0 * * * *", RIGA, "2021-03-28T01:30:00+02:00",
     ["2021-03-28T02:00:00+02:00", "2021-03-28T04:00:00+03:00"]),
    (_T + "test_001_every_hour_oct", "0 * * * *", RIGA, "2021-10-31T01:30:00+03:00",
     ["2021-10-31T02:00:00+03:00", "2021-10-31T03:00:00+03:00", "2021-10-31T03:00:00+02:00",
      "2021-10-31T04:00:00+02:00"]),
    (_T + "test_002_every_30_minutes_mar", "*/30 * * * *", RIGA, "2021-03-28T02:10:00+02:00",
     ["2021-03-28T02:30:00+02:00", "2021-03-28T04:00:00+03:00", "2021-03-28T04:30:00+03:00"]),
    (_T + "test_002_every_30_minutes_oct", "*/30 * * * *", RIGA, "2021-10-31T02:10:00+03:00",
     ["2021-10-31T02:30:00+03:00", "2021-10-31T03:00:00+03:00", "2021-10-31T03:30:00+03:00",
      "2021-10-31T03:00:00+02:00", "2021-10-31T03:30:00+02:00", "2021-10-31T04:00:00+02:00"]),
    (_T + "test_003_every_15_minutes_mar", "*/15 * * * *", RIGA, "2021-03-28T02:40:00+02:00",
     ["2021-03-28T02:45:00+02:00", "2021-03-28T04:00:00+03:00"]),
    (_T + "test_003_every_15_minutes_oct", "*/15 * * * *", RIGA, "2021-10-31T02:40:00+03:00",
     ["2021-10-31T02:45:00+03:00", "2021-10-31T03:00:00+03:00", "2021-10-31T03:15:00+03:00",
      "2021-10-31T03:30:00+03:00", "2021-10-31T03:45:00+03:00", "2021-10-31T03:00:00+02:00",
      "2021-10-31T03:15:00+02:00", "2021-10-31T03:30:00+02:00", "2021-10-31T03:45:00+02:00",
      "2021-10-31T04:00:00+02:00"]),
    (_T + "test_004_every_2_hours_mar", "0 */2 * * *", RIGA, "2021-03-28T01:30:00+02:00",
     ["2021-03-28T02:00:00+02:00", "2021-03-28T04:00:00+03:00", "2021-03-28T06:00:00+03:00"]),
    (_T + "test_004_every_2_hours_oct", "0 */2 * * *", RIGA, "2021-10-31T01:30:00+03:00",
     ["2021-10-31T02:00:00+03:00", "2021-10-31T04:00:00+02:00", "2021-10-31T06:00:00+02:00"]),
    (_T + "test_005_30_minutes_past_every_2_hours_mar", "30 */2 * * *", RIGA, "2021-03-28T01:30:00+02:00",
     ["2021-03-28T02:30:00+02:00", "2021-03-28T04:30:00+03:00"]),
    (_T + "test_005_30_minutes_past_every_2_hours_oct", "30 */2 * * *", RIGA, "2021-10-31T01:30:00+03:00",
     ["2021-10-31T02:30:00+03:00", "2021-10-31T04:30:00+02:00"]),
    # 03:00 happens twice; '*/3' in the hour field keeps real time, so both fire.
    (_T + "test_006_every_3_hours_oct", "0 */3 * * *", RIGA, "2021-10-31T01:30:00+03:00",
     ["2021-10-31T03:00:00+03:00", "2021-10-31T03:00:00+02:00", "2021-10-31T06:00:00+02:00"]),
    # Fixed hours are wall-clock times: a skipped 03:00 fires at the end of the gap (04:00 EEST),
    # a repeated 03:00 fires once, at its first occurrence.
    (_T + "test_008_at_1_2_3_4_5_mar", "0 1,2,3,4,5 * * *", RIGA, "2021-03-28T01:30:00+02:00",
     ["2021-03-28T02:00:00+02:00", "2021-03-28T04:00:00+03:00", "2021-03-28T05:00:00+03:00"]),
    (_T + "test_008_at_1_2_3_4_5_oct", "0 1,2,3,4,5 * * *", RIGA, "2021-10-31T01:30:00+03:00",
     ["2021-10-31T02:00:00+03:00", "2021-10-31T03:00:00+03:00", "2021-10-31T04:00:00+02:00"]),
    (_T + "test_009_30_past_1_2_3_4_5_mar", "30 1,2,3,4,5 * * *", RIGA, "2021-03-28T01:30:00+02:00",
     ["2021-03-28T02:30:00+02:00", "2021-03-28T04:00:00+03:00", "2021-03-28T04:30:00+03:00"]),
    (_T + "test_009_30_past_1_2_3_4_5_oct", "30 1,2,3,4,5 * * *", RIGA, "2021-10-31T01:30:00+03:00",
     ["2021-10-31T02:30:00+03:00", "2021-10-31T03:30:00+03:00", "2021-10-31T04:30:00+02:00"]),
    (_T + "test_010_at_2_mar", "0 2 * * *", RIGA, "2021-03-28T01:30:00+02:00",
     ["2021-03-28T02:00:00+02:00", "2021-03-29T02:00:00+03:00"]),
    (_T + "test_010_at_2_oct", "0 2 * * *", RIGA, "2021-10-31T01:30:00+03:00",
     ["2021-10-31T02:00:00+03:00", "2021-11-01T02:00:00+02:00"]),
    (_T + "test_011_at_3_mar", "0 3 * * *", RIGA, "2021-03-27T01:30:00+02:00",
     ["2021-03-27T03:00:00+02:00", "2021-03-28T04:00:00+03:00", "2021-03-29T03:00:00+03:00"]),
    (_T + "test_011_at_3_oct", "0 3 * * *", RIGA, "2021-10-31T01:30:00+03:00",
     ["2021-10-31T03:00:00+03:00", "2021-11-01T03:00:00+02:00"]),
    (_T + "test_012_at_4_mar", "0 4 * * *", RIGA, "2021-03-27T01:30:00+02:00",
     ["2021-03-27T04:00:00+02:00", "2021-03-28T04:00:00+03:00", "2021-03-29T04:00:00+03:00"]),
    (_T + "test_012_at_4_oct", "0 4 * * *", RIGA, "2021-10-30T01:30:00+03:00",
     ["2021-10-30T04:00:00+03:00", "2021-10-31T04:00:00+02:00", "2021-11-01T04:00:00+02:00"]),
    (_T + "test_014_every_hour_enumerated_mar",
     "0 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23 * * *", RIGA, "2021-03-28T01:30:00+02:00",
     ["2021-03-28T02:00:00+02:00", "2021-03-28T04:00:00+03:00", "2021-03-28T05:00:00+03:00"]),
    (_T + "test_014_every_hour_enumerated_oct",
     "0 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23 * * *", RIGA, "2021-10-31T01:30:00+03:00",
     ["2021-10-31T02:00:00+03:00", "2021-10-31T03:00:00+03:00", "2021-10-31T04:00:00+02:00"]),
    (_T + "test_015_every_other_hour_enumerated_mar", "0 1,3,5,7,9,11,13,15,17,19,21,23 * * *", RIGA,
     "2021-03-28T00:30:00+02:00",
     ["2021-03-28T01:00:00+02:00", "2021-03-28T04:00:00+03:00", "2021-03-28T05:00:00+03:00"]),
    (_T + "test_015_every_other_hour_enumerated_oct", "0 1,3,5,7,9,11,13,15,17,19,21,23 * * *", RIGA,
     "2021-10-31T00:30:00+03:00",
     ["2021-10-31T01:00:00+03:00", "2021-10-31T03:00:00+03:00", "2021-10-31T05:00:00+02:00"]),
    (_T + "test_016_at_1_to_5_mar", "0 1-5 * * *", RIGA, "2021-03-28T01:30:00+02:00",
     ["2021-03-28T02:00:00+02:00", "2021-03-28T04:00:00+03:00", "2021-03-28T05:00:00+03:00"]),
    (_T + "test_016_at_1_to_5_oct", "0 1-5 * * *", RIGA, "2021-10-31T01:30:00+03:00",
     ["2021-10-31T02:00:00+03:00", "2021-10-31T03:00:00+03:00", "2021-10-31T04:00:00+02:00"]),
    (_T + "test_at_3_15_mar", "15 3 * * *", RIGA, "2021-03-27T00:00:00+02:00",
     ["2021-03-27T03:15:00+02:00", "2021-03-28T04:00:00+03:00", "2021-03-29T03:15:00+03:00"]),
    (_T + "test_at_3_15_oct", "15 3 * * *", RIGA, "2021-10-30T00:00:00+03:00",
     ["2021-10-30T03:15:00+03:00", "2021-10-31T03:15:00+03:00", "2021-11-01T03:15:00+02:00"]),
    (_T + "test_every_minute_mar", "* * * * *", RIGA, "2021-03-28T02:58:00+02:00",
     ["2021-03-28T02:59:00+02:00", "2021-03-28T04:00:00+03:00"]),
    (_T + "test_every_minute_oct", "* * * * *", RIGA, "2021-10-31T03:58:00+03:00",
     ["2021-10-31T03:59:00+03:00", "2021-10-31T03:00:00+02:00", "2021-10-31T03:01:00+02:00"]),
    (_T + "test_every_minute_from_1_to_6_mar", "* 1-6 * * *", RIGA, "2021-03-28T02:58:00+02:00",
     ["2021-03-28T02:59:00+02:00", "2021-03-28T04:00:00+03:00"]),
    (_T + "test_every_minute_from_1_to_6_oct", "* 1-6 * * *", RIGA, "2021-10-31T03:58:00+03:00",
     ["2021-10-31T03:59:00+03:00", "2021-10-31T03:00:00+02:00", "2021-10-31T03:01:00+02:00"]),
    # The three "no_tz_fixup" tests: cronsim reads every 6-field line in real time, so the skipped
    # 03:30:xx never fire. nbsched's deliberate difference (2): a 6-field line whose second, minute
    # and hour fields are fixed is a wall-clock line like a 5-field one, so the skipped times fire
    # once at the end of the gap (04:00:00 EEST), as Debian's cron does for fixed-time jobs.
    # cronsim expects 02:30:11, 02:30:22, 04:30:11, 04:30:22.
    (_T + "test_no_tz_fixup_for_subminute_granularity", "11,22 30 1,2,3,4 * * *", RIGA, "2021-03-28T01:31:00+02:00",
     ["2021-03-28T02:30:11+02:00", "2021-03-28T02:30:22+02:00", "2021-03-28T04:00:00+03:00",
      "2021-03-28T04:30:11+03:00", "2021-03-28T04:30:22+03:00"]),
    # cronsim expects 02:30:33, 04:30:33, 05:30:33.
    (_T + "test_no_tz_fixup_with_nonzero_seconds_field", "33 30 1-10 * * *", RIGA, "2021-03-28T01:31:00+02:00",
     ["2021-03-28T02:30:33+02:00", "2021-03-28T04:00:00+03:00", "2021-03-28T04:30:33+03:00"]),
    # cronsim expects 02:30, 04:30, 05:30.
    (_T + "test_no_tz_fixup_with_zero_seconds_field", "0 30 1-10 * * *", RIGA, "2021-03-28T01:31:00+02:00",
     ["2021-03-28T02:30:00+02:00", "2021-03-28T04:00:00+03:00", "2021-03-28T04:30:00+03:00"]),
]
# fmt: on

# --------------------------------------------------------------------------------------------------
# croniter: forward iteration (src/croniter/tests/test_croniter.py unless said otherwise)
# --------------------------------------------------------------------------------------------------

# fmt: off
CRONITER_CASES: list[tuple] = [
    # testSecondSec: croniter "* * * * * 15,25" (seconds last)
    (CI + "testSecondSec", "15,25 * * * * *", "UTC", "2012-04-06T13:26:10",
     ["2012-04-06T13:26:15", "2012-04-06T13:26:25", "2012-04-06T13:27:15"]),
    # testSecond: croniter "*/1 * * * * *" (seconds last: every second)
    (CI + "testSecond", "* */1 * * * *", "UTC", "2012-04-06T13:26:10", ["2012-04-06T13:26:11"]),
    # testSecondRepeat: croniter "* * * * * */15"
    (CI + "testSecondRepeat", "*/15 * * * * *", "UTC", "2012-04-06T13:26:36",
     ["2012-04-06T13:26:45", "2012-04-06T13:27:00", "2012-04-06T13:27:15"]),
    (CI + "testMinute", "*/1 * * * *", "UTC", "2010-01-23T12:18:00", _every("2010-01-23T12:19:00", 42, minutes=1)),
    (CI + "testMinute", "*/5 * * * *", "UTC", "2010-01-23T12:18:00", _every("2010-01-23T12:20:00", 9, minutes=5)),
    (CI + "testHour", "0 */3 * * *", "UTC", "2010-01-24T12:02:00",
     ["2010-01-24T15:00:00", "2010-01-24T18:00:00", "2010-01-24T21:00:00", "2010-01-25T00:00:00"]),
    (CI + "testDay", "0 0 */3 * *", "UTC", "2010-02-24T12:09:00",
     ["2010-02-25T00:00:00", "2010-02-28T00:00:00", "2010-03-01T00:00:00"]),
    (CI + "testDay", "0 0 * * *", "UTC", "1996-02-27T00:00:00", ["1996-02-28T00:00:00", "1996-02-29T00:00:00"]),
    (CI + "testDay", "0 0 * * *", "UTC", "2000-02-27T00:00:00", ["2000-02-28T00:00:00", "2000-02-29T00:00:00"]),
    (CI + "testWeekDay", "0 0 * * sat", "UTC", "2010-02-25T00:00:00", ["2010-02-27T00:00:00", "2010-03-06T00:00:00"]),
    # Both day fields restricted: they OR (Debian, cronsim and croniter agree).
    (CI + "testWeekDay", "0 0 1 * wed", "UTC", "2010-01-25T00:00:00",
     ["2010-01-27T00:00:00", "2010-02-01T00:00:00", "2010-02-03T00:00:00"]),
    (CI + "testNthWeekDay", "0 0 * * sat#1", "UTC", "2010-02-25T00:00:00",
     ["2010-03-06T00:00:00", "2010-04-03T00:00:00"]),
    (CI + "testNthWeekDay", "0 0 * * wed#5", "UTC", "2010-01-25T00:00:00",
     ["2010-03-31T00:00:00", "2010-06-30T00:00:00", "2010-09-29T00:00:00"]),
    # testWeekDayDayAnd: croniter "0 0 1 * mon" with day_or=False (the 1st AND a Monday). Debian has
    # no such switch; it ANDs the day fields when one starts with '*', and */100 is the 1st alone.
    (CI + "testWeekDayDayAnd", "0 0 */100 * mon", "UTC", "2010-01-25T00:00:00",
     ["2010-02-01T00:00:00", "2010-03-01T00:00:00", "2010-11-01T00:00:00"]),
    # testDomDowVixieCronBug: croniter expects the union of odd days and Saturdays (2023-05-03,
    # 05-05, 05-06, 05-07) by default, and these times only with implement_cron_bug=True. Debian's
    # cron (cronsim) gives the intersection: the day-of-month field starts with '*', which makes
    # the day fields AND (the DOM_STAR flag), so: odd-numbered Saturdays.
    (CI + "testDomDowVixieCronBug", "0 16 */2 * sat", "UTC", "2023-05-02T00:00:00",
     ["2023-05-13T16:00:00", "2023-05-27T16:00:00", "2023-06-03T16:00:00", "2023-06-17T16:00:00"]),
    (CI + "testMonth", "0 0 1 * *", "UTC", "2010-01-25T00:00:00",
     [*(f"2010-{month:02}-01T00:00:00" for month in range(2, 13)), "2011-01-01T00:00:00"]),
    (CI + "testLastDayOfMonth", "0 0 l * *", "UTC", "2015-09-04T00:00:00",
     ["2015-09-30T00:00:00", "2015-10-31T00:00:00", "2015-11-30T00:00:00", "2015-12-31T00:00:00"]),
    # testRangeWithUppercaseLastDayOfMonth: croniter "0 0 29-L * *" (a range to the last day),
    # refused by cronsim and nbsched (Debian has no L); 29-31 is the same set of days, since a day
    # past the month's end never occurs.
    (CI + "testRangeWithUppercaseLastDayOfMonth", "0 0 29-31 * *", "UTC", "2015-09-04T00:00:00",
     ["2015-09-29T00:00:00", "2015-09-30T00:00:00"]),
    (CI + "testSundayToThursdayWithAlphaConversion", "30 22 * * sun-thu", "UTC", "2010-08-25T15:56:00",
     ["2010-08-25T22:30:00"]),
    (CI + "testISOWeekday", "0 0 * * 6", "UTC", "2010-02-25T00:00:00", ["2010-02-27T00:00:00", "2010-03-06T00:00:00"]),
    (CI + "testBug2", "0 * * 3 *", "UTC", "2012-01-01T00:00:00",
     ["2012-03-01T00:00:00", "2012-03-01T01:00:00", "2012-03-01T02:00:00"]),
    (CI + "testBug3", "00 03 16,30 * *", "UTC", "2013-03-01T12:17:34.257877",
     ["2013-03-16T03:00:00", "2013-03-30T03:00:00", "2013-04-16T03:00:00"]),
    (CI + "testBug57", "0 4/6 * * *", "UTC", "2012-02-24T00:00:00", ["2012-02-24T04:00:00"]),
    (CI + "testBug57", "0 0/6 * * *", "UTC", "2012-02-24T00:00:00", ["2012-02-24T06:00:00"]),
    (CI + "test_multiple_months", "0 0 1 3,6,9,12 *", "UTC", "2016-03-01T00:00:00", ["2016-06-01T00:00:00"]),
    (CI + "test_multiple_months", "0 0 1 3,6,9,12 *", "UTC", "2016-02-15T00:00:00", ["2016-03-01T00:00:00"]),
    (CI + "test_multiple_months", "0 0 1 3,6,9,12 *", "UTC", "2016-12-03T10:00:00", ["2017-03-01T00:00:00"]),
    (CI + "test_rangeGenerator", "1-9/2 0 1 * *", "UTC", "2013-03-04T00:00:00",
     _every("2013-04-01T00:01:00", 5, minutes=2)),
    # test_exactly_the_same_minute: get_next after two get_prev calls, from where they left off.
    (CI + "test_exactly_the_same_minute", "30 7,12,17 * * *", "UTC", "2018-03-05T07:30:00", ["2018-03-05T12:30:00"]),
    (CI + "test_next_when_now_satisfies_cron", "4 * * * *", "UTC", "2018-05-21T00:03:00", ["2018-05-21T00:04:00"]),
    (CI + "test_next_when_now_satisfies_cron", "4 * * * *", "UTC", "2018-05-21T00:04:20", ["2018-05-21T01:04:00"]),
    (CI + "test_milliseconds", "0 10 * * *", "UTC", "2018-01-02T10:00:00.000500", ["2018-01-03T10:00:00"]),
    (CI + "test_milliseconds", "0 10 * * *", "UTC", "2018-01-02T10:00:01", ["2018-01-03T10:00:00"]),
    (CI + "test_milliseconds", "0 10 * * *", "UTC", "2018-01-02T09:59:59.999999", ["2018-01-02T10:00:00"]),
    # test_lwom_*: croniter writes the last Friday of the month "L5"; cronsim and nbsched write
    # "5L" and refuse "L5" (see REFUSED). Same days.
    (CI + "test_lwom_friday", "0 0 * * 5L", "UTC", "1987-01-15T00:00:00",
     ["1987-01-30T00:00:00", "1987-02-27T00:00:00", "1987-03-27T00:00:00", "1987-04-24T00:00:00",
      "1987-05-29T00:00:00", "1987-06-26T00:00:00", "1987-07-31T00:00:00", "1987-08-28T00:00:00",
      "1987-09-25T00:00:00", "1987-10-30T00:00:00", "1987-11-27T00:00:00", "1987-12-25T00:00:00"]),
    (CI + "test_lwom_friday_2hours", "0 1,5 * * 5L", "UTC", "1987-01-15T00:00:00",
     [f"1987-{day}T{hour}:00:00" for day in ("01-30", "02-27", "03-27", "04-24", "05-29", "06-26")
      for hour in ("01", "05")]),
    (CI + "test_lwom_friday_2xh_2xm", "0,30 1,5 * * 5L", "UTC", "1987-01-15T00:00:00",
     [f"1987-{day}T{hour}:{minute}:00" for day in ("01-30", "02-27", "03-27")
      for hour in ("01", "05") for minute in ("00", "30")]),
    (CI + "test_lwom_tue_thu", "0 0 * * 2L,4L", "UTC", "2016-06-01T00:00:00",
     _midnights(2016, 6, [28, 30, 26, 28, 25, 30, 27, 29, 25, 27])),
    (CI + "test_hash_mixup_all_fri_3rd_sat", "0 0 * * 6#3", "UTC", "2021-03-01T00:00:00", ["2021-03-20T00:00:00"]),
    (CI + "test_hash_mixup_all_fri_3rd_sat", "0 0 * * 5", "UTC", "2021-03-01T00:00:00",
     _midnights(2021, 3, [5, 12, 19, 26])),
    # croniter raises CroniterUnsupportedSyntaxError for a list mixing a weekday with weekday#n.
    # cronsim accepts it (TestParse::test_it_handles_a_mix_of_ints_and_tuples), and the list is the
    # union: every Friday and the third Saturday.
    (CI + "test_hash_mixup_all_fri_3rd_sat", "0 0 * * 5,6#3", "UTC", "2021-03-01T00:00:00",
     _midnights(2021, 3, [5, 12, 19, 20, 26])),
    (CI + "test_lwom_mixup_all_fri_last_sat", "0 0 * * 6L", "UTC", "2021-03-01T00:00:00", ["2021-03-27T00:00:00"]),
    (CI + "test_lwom_mixup_all_fri_last_sat", "0 0 * * 5", "UTC", "2021-03-01T00:00:00",
     _midnights(2021, 3, [5, 12, 19, 26])),
    # croniter raises CroniterUnsupportedSyntaxError for "5,L6"; written "5,6L" it is the union
    # (croniter's own expect_c).
    (CI + "test_lwom_mixup_all_fri_last_sat", "0 0 * * 5,6L", "UTC", "2021-03-01T00:00:00",
     _midnights(2021, 3, [5, 12, 19, 26, 27])),
    (CI + "test_lwom_mixup_firstlast_sat", "0 0 * * 6#1", "UTC", "2021-03-01T00:00:00",
     _midnights(2021, 3, [6, 3, 1])),
    (CI + "test_lwom_mixup_firstlast_sat", "0 0 * * 6L", "UTC", "2021-03-01T00:00:00",
     ["2021-03-27T00:00:00", "2021-04-24T00:00:00", "2021-05-29T00:00:00"]),
    (CI + "test_lwom_mixup_firstlast_sat", "0 0 * * 6L,6#1", "UTC", "2021-03-01T00:00:00",
     ["2021-03-06T00:00:00", "2021-03-27T00:00:00", "2021-04-03T00:00:00", "2021-04-24T00:00:00",
      "2021-05-01T00:00:00", "2021-05-29T00:00:00"]),
    (CI + "test_lwom_mixup_4th_and_last", "0 0 * * 1#4", "UTC", "2021-11-01T00:00:00",
     ["2021-11-22T00:00:00", "2021-12-27T00:00:00", "2022-01-24T00:00:00"]),
    (CI + "test_lwom_mixup_4th_and_last", "0 0 * * 1L", "UTC", "2021-11-01T00:00:00",
     ["2021-11-29T00:00:00", "2021-12-27T00:00:00", "2022-01-31T00:00:00"]),
    (CI + "test_lwom_mixup_4th_and_last", "0 0 * * 1#4,1L", "UTC", "2021-11-01T00:00:00",
     ["2021-11-22T00:00:00", "2021-11-29T00:00:00", "2021-12-27T00:00:00", "2022-01-24T00:00:00",
      "2022-01-31T00:00:00"]),
    # test_configure_second_location: second_at_beginning=True is nbsched's own order.
    (CI + "test_configure_second_location", "59 58 1 * * *", "UTC", "2010-08-25T00:00:00", ["2010-08-25T01:58:59"]),
    # test_issue156: '*' in a list is the whole field; the weekday field starts with '*', so the
    # day fields AND (Debian's DOW_STAR), and every day matches.
    (CI + "test_issue156", "* * * * *,0", "UTC", "2019-01-14T11:00:59.999999", ["2019-01-14T11:01:00"]),
    # croniter expects 2019-01-19T00:00 (the third Saturday: it keeps only "sat#3" of "*,sat#3").
    # Debian's cron (cronsim) gives 2019-01-15T00:00: the list is '*' (every weekday) plus the
    # third Saturday, which is every day, so the next midnight fires.
    (CI + "test_issue156", "0 0 * * *,sat#3", "UTC", "2019-01-14T11:00:59.999999", ["2019-01-15T00:00:00"]),
    (CI + "test_get_next_update_current", "* * * * * *", "UTC", "2024-07-12T00:00:00",
     _every("2024-07-12T00:00:01", 3, seconds=1)),
    (CI + "test_issue_2038y", "* * * * *", "UTC", "2040-01-01T00:00:00", ["2040-01-01T00:01:00"]),
    # test_croniter_dst_repetition.py (issue 138): the same naive times whatever the process TZ
    # ("UTC" and POSIX "UTC-8", i.e. eight hours east); nbsched reads no process TZ, so UTC and a
    # fixed UTC+8 zone.
    (CI_DST + "CroniterDST138Test::test_issue_138_dt_to_ts_n", "*/5 * * * *", "UTC", "2024-01-25T04:46:00",
     ["2024-01-25T04:50:00", "2024-01-25T04:55:00", "2024-01-25T05:00:00"]),
    (CI_DST + "CroniterDST138TestLocal::test_issue_138_dt_to_ts_n", "*/5 * * * *", "Etc/GMT-8",
     "2024-01-25T04:46:00+08:00", ["2024-01-25T04:50:00+08:00", "2024-01-25T04:55:00+08:00",
                                    "2024-01-25T05:00:00+08:00"]),
]

# Time zones. Europe/Athens 2013: 03:00 EET -> 04:00 EEST on March 31; 04:00 EEST -> 03:00 EET on
# October 27. A '*/30' line keeps real time: the repeated half hours fire twice.
CRONITER_CASES += [
    (CI + "testTimezoneWinterTime", "*/30 * * * *", "Europe/Athens", "2013-10-27T02:00:00+03:00",
     ["2013-10-27T02:30:00+03:00", "2013-10-27T03:00:00+03:00", "2013-10-27T03:30:00+03:00",
      "2013-10-27T03:00:00+02:00", "2013-10-27T03:30:00+02:00", "2013-10-27T04:00:00+02:00",
      "2013-10-27T04:30:00+02:00"]),
    (CI + "testTimezoneSummerTime", "*/30 * * * *", "Europe/Athens", "2013-03-31T01:00:00+02:00",
     ["2013-03-31T01:30:00+02:00", "2013-03-31T02:00:00+02:00", "2013-03-31T02:30:00+02:00",
      "2013-03-31T04:00:00+03:00", "2013-03-31T04:30:00+03:00"]),
    # test_std_dst, Europe/Warsaw 2017: 02:00 CET -> 03:00 CEST on March 26, 03:00 CEST -> 02:00 CET
    # on October 29. Starts are pytz localize() results (is_dst=False: the second 02:00).
    (CI + "test_std_dst", "0 0 * * *", "Europe/Warsaw", "2017-03-26T00:00:00+01:00", ["2017-03-27T00:00:00+02:00"]),
    (CI + "test_std_dst", "0 * * * *", "Europe/Warsaw", "2017-03-26T01:00:00+01:00", ["2017-03-26T03:00:00+02:00"]),
    (CI + "test_std_dst", "0 0 * * *", "Europe/Warsaw", "2017-10-29T00:00:00+02:00", ["2017-10-30T00:00:00+01:00"]),
    # croniter checks only the wall time (02:00); a real-time line fires first at 02:00 CEST.
    (CI + "test_std_dst", "0 * * * *", "Europe/Warsaw", "2017-10-29T01:59:00+02:00", ["2017-10-29T02:00:00+02:00"]),
    (CI + "test_std_dst", "0 * * * *", "Europe/Warsaw", "2017-10-29T02:00:00+01:00", ["2017-10-29T03:00:00+01:00"]),
    (CI + "test_std_dst", "0 * * * *", "Europe/Warsaw", "2017-10-29T03:00:00+01:00", ["2017-10-29T04:00:00+01:00"]),
    (CI + "test_std_dst", "0 * * * *", "Europe/Warsaw", "2017-10-29T04:00:00+01:00", ["2017-10-29T05:00:00+01:00"]),
    (CI + "test_std_dst", "0 * * * *", "Europe/Warsaw", "2017-10-29T05:00:00+01:00", ["2017-10-29T06:00:00+01:00"]),
    # test_std_dst2, America/Sao_Paulo: on 2018-02-18 00:00 -02 the clock fell back to 2018-02-17
    # 23:00 -03 (23:xx happens twice; pytz localize picks the second, -03).
    *[
        (CI + "test_std_dst2", "0 0 * * *", "America/Sao_Paulo", start, [fire])
        for start, fire in [
            ("2018-02-17T21:00:00-02:00", "2018-02-18T00:00:00-03:00"),
            ("2018-02-17T22:00:00-02:00", "2018-02-18T00:00:00-03:00"),
            ("2018-02-17T23:00:00-03:00", "2018-02-18T00:00:00-03:00"),
            ("2018-02-18T00:00:00-03:00", "2018-02-19T00:00:00-03:00"),
            ("2018-02-17T21:05:00-02:00", "2018-02-18T00:00:00-03:00"),
            ("2018-02-17T22:05:00-02:00", "2018-02-18T00:00:00-03:00"),
            ("2018-02-17T23:05:00-03:00", "2018-02-18T00:00:00-03:00"),
            ("2018-02-18T00:05:00-03:00", "2018-02-19T00:00:00-03:00"),
        ]
    ],
    # test_std_dst3, Australia/Adelaide (DST ended 2020-04-05): get_next after get_prev returned
    # 2020-03-24 00:00 +10:30.
    (CI + "test_std_dst3", "0 0 24 * *", "Australia/Adelaide", "2020-03-24T00:00:00+10:30",
     ["2020-04-24T00:00:00+09:30"]),
    # test_dst_issue90_st31ny, Europe/Paris (02:00 CET -> 03:00 CEST on 2020-03-29). The starts are
    # datetime(..., tzinfo=pytz Paris), i.e. local mean time +00:09. Only each first get_next is
    # ported; the rest of each list follows get_prev calls that land on pytz's LMT artefacts.
    (CI + "test_dst_issue90_st31ny", "1 2 * * *", "Europe/Paris", "2020-03-29T01:59:55+00:09",
     ["2020-03-30T02:01:00+02:00"]),
    # croniter expects 2020-03-29T03:01:00+02:00 (02:01 pushed by the one-hour shift). Debian's cron
    # (cronsim) gives 03:00:00+02:00: a fixed-time job whose time is skipped by spring-forward runs
    # at once when the clock jumps, i.e. at the end of the gap.
    (CI + "test_dst_issue90_st31ny", "1 2 * * *", "Europe/Paris", "2020-03-28T01:58:55+00:09",
     ["2020-03-29T03:00:00+02:00"]),
    (CI + "test_dst_issue90_st31ny", "1 2 * * *", "Europe/Paris", "2020-03-29T02:00:00+00:09",
     ["2020-03-30T02:01:00+02:00"]),
    # test_dst_iter, Asia/Hebron: 2022-03-27 00:00 -> 01:00, so that midnight fires at 01:00 +03
    # (the end of the gap). The start is pytz's LMT, +02:20.
    (CI + "test_dst_iter", "0 0 * * *", "Asia/Hebron", "2022-03-26T00:00:00+02:20",
     ["2022-03-26T00:00:00+02:00", "2022-03-27T01:00:00+03:00", "2022-03-28T00:00:00+03:00"]),
    (CI + "test_issue_k11", "* * * * * ", "America/New_York", "2019-01-14T11:00:59-05:00",
     ["2019-01-14T11:01:00-05:00"]),
    # test_issue_k12: base + 60 s, base being datetime(..., tzinfo=pytz Athens), i.e. LMT +01:35.
    (CI + "test_issue_k12", "* * * * *", "Europe/Athens", "2010-01-23T12:18:00+01:35", ["2010-01-23T12:19:00+01:35"]),
]


def _chained(source: str, line: str, first_start: str, fires: list[str]) -> list[tuple]:
    """croniter tests that restart a new iterator one day after each fire (``dt += timedelta(days=1)``)."""
    starts = [first_start, *((datetime.fromisoformat(fire) + timedelta(days=1)).isoformat() for fire in fires[:-1])]
    return [(source, line, "UTC", start, [fire]) for start, fire in zip(starts, fires, strict=True)]


# test_weekday_range: croniter "0 0 * * 2-4 *" and "0 0 * * 0-6 *" (seconds last, every second).
CRONITER_CASES += _chained(CI + "test_weekday_range", "* 0 0 * * 2-4", "2019-01-14T00:00:00", [
    "2019-01-15T00:00:00", "2019-01-16T00:00:01", "2019-01-17T00:00:02", "2019-01-22T00:00:00",
    "2019-01-23T00:00:01", "2019-01-24T00:00:02", "2019-01-29T00:00:00", "2019-01-30T00:00:01",
    "2019-01-31T00:00:02", "2019-02-05T00:00:00",
])
CRONITER_CASES += _chained(CI + "test_weekday_range", "* 0 0 * * 0-6", "2019-01-14T00:00:00",
                           [f"2019-01-{14 + i}T00:00:{1 + i:02}" for i in range(10)])
# test_issue_monsun_117: croniter "0 0 * * Wed-Sun *". With Sunday as 0 (its name's value in
# Debian's cron), wed-sun is a range that ends before it starts: Debian's loop over it sets no day
# (the job never runs), cronsim and nbsched refuse it (see REFUSED). croniter means Wednesday to
# Sunday, written 3-7.
CRONITER_CASES += _chained(CI + "test_issue_monsun_117", "* 0 0 * * 3-7", "2019-01-14T00:00:00", [
    "2019-01-16T00:00:00", "2019-01-17T00:00:01", "2019-01-18T00:00:02", "2019-01-19T00:00:03",
    "2019-01-20T00:00:04", "2019-01-23T00:00:00", "2019-01-24T00:00:01", "2019-01-25T00:00:02",
    "2019-01-26T00:00:03", "2019-01-27T00:00:04", "2019-01-30T00:00:00", "2019-01-31T00:00:01",
])
# test_issue_142_dow: croniter "35 * 1-l/8 * *" (1 to the last day, every 8th), refused by cronsim
# and nbsched (Debian has no L); 1-31/8 is the same days (1, 9, 17, 25) in every month.
CRONITER_CASES += _restarts("35 * 1-31/8 * *", [
    (f"2020-01-{day:02}T00:00:00",
     "2020-01-01T00:35:00" if day == 1 else
     "2020-01-09T00:35:00" if day <= 9 else
     "2020-01-17T00:35:00" if day <= 17 else
     "2020-01-25T00:35:00" if day <= 25 else
     "2020-02-01T00:35:00")
    for day in range(1, 31)
], CI + "test_issue_142_dow")
# test_issue_k33: croniter "30 23 1-7 JAN MON-FRI#1" means "weekdays among January 1-7" (its
# expected list). cronsim and nbsched refuse MON-FRI#1 (see REFUSED); in Debian's cron 1-7 with a
# restricted weekday field would OR. The same days: the first Monday ... first Friday of January.
CRONITER_CASES += [
    (CI + "test_issue_k33", "30 23 * JAN 1#1,2#1,3#1,4#1,5#1", "UTC", f"{year}-01-01T00:00:00",
     [f"{year}-01-{day:02}T23:30:00" for day in days])
    for year, days in [
        (2018, [1, 2, 3, 4, 5]), (2019, [1, 2, 3, 4, 7]), (2020, [1, 2, 3, 6, 7]), (2021, [1, 4, 5, 6, 7]),
        (2022, [3, 4, 5, 6, 7]), (2023, [2, 3, 4, 5, 6]), (2024, [1, 2, 3, 4, 5]), (2025, [1, 2, 3, 6, 7]),
        (2026, [1, 2, 5, 6, 7]), (2027, [1, 4, 5, 6, 7]),
    ]
]
# test_nth_wday_simple, test_nth_as_last_wday_simple, test_wdom_core_leap_year test croniter's
# _get_nth_weekday_of_month(year, month, weekday); here as the fire days of that weekday in that
# month (the day-of-month field is '*', so the weekday field alone picks the days).
CRONITER_CASES += [
    (CI + "test_nth_wday_simple", f"0 0 * {month} {weekday}", "UTC", start,
     [f"2000-{month:02}-{day:02}T00:00:00" for day in days])
    for month, weekday, start, days in [
        (1, "mon", "1999-12-31T00:00:00", [3, 10, 17, 24, 31]),
        (2, "tue", "2000-01-31T00:00:00", [1, 8, 15, 22, 29]),
        (3, "wed", "2000-02-29T00:00:00", [1, 8, 15, 22, 29]),
        (4, "thu", "2000-03-31T00:00:00", [6, 13, 20, 27]),
        (2, "fri", "2000-01-31T00:00:00", [4, 11, 18, 25]),
        (2, "sat", "2000-01-31T00:00:00", [5, 12, 19, 26]),
    ]
]
CRONITER_CASES += [
    (CI + test, f"0 0 * 2 {weekday}L", "UTC", "2000-01-31T00:00:00", [f"2000-02-{day}T00:00:00"])
    for test in ("test_nth_as_last_wday_simple", "test_wdom_core_leap_year")
    for weekday, day in [(2, 29), (0, 27), (1, 28), (3, 23), (4, 24), (5, 25), (6, 26)]
]

# test_sunday_ranges_to / test_sunday_ranges_from (via gen_all_sunday_forms): each line, and the
# same line with "sun" replaced by 7 and by 0, from 2024-01-01 (a Monday), 30 midnights.
_SUNDAYS = [7, 14, 21, 28, 4, 11, 18, 25, 3, 10, 17, 24, 31, 7, 14, 21, 28, 5, 12, 19, 26, 2, 9, 16, 23, 30, 7,
            14, 21, 28]
_EVERY_DAY = list(range(2, 32))
_TUE_SUN = [2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 16, 17, 18, 19, 20, 21, 23, 24, 25, 26, 27, 28, 30, 31,
            1, 2, 3, 4]
_WED_SUN = [3, 4, 5, 6, 7, 10, 11, 12, 13, 14, 17, 18, 19, 20, 21, 24, 25, 26, 27, 28, 31, 1, 2, 3, 4, 7, 8, 9,
            10, 11]
_THU_SUN = [4, 5, 6, 7, 11, 12, 13, 14, 18, 19, 20, 21, 25, 26, 27, 28, 1, 2, 3, 4, 8, 9, 10, 11, 15, 16, 17, 18,
            22, 23]
_FRI_SUN = [5, 6, 7, 12, 13, 14, 19, 20, 21, 26, 27, 28, 2, 3, 4, 9, 10, 11, 16, 17, 18, 23, 24, 25, 1, 2, 3, 8,
            9, 10]
_SAT_SUN = [6, 7, 13, 14, 20, 21, 27, 28, 3, 4, 10, 11, 17, 18, 24, 25, 2, 3, 9, 10, 16, 17, 23, 24, 30, 31, 6, 7,
            13, 14]
_SUN_MON = [7, 8, 14, 15, 21, 22, 28, 29, 4, 5, 11, 12, 18, 19, 25, 26, 3, 4, 10, 11, 17, 18, 24, 25, 31, 1, 7, 8,
            14, 15]
_SUN_TUE = [2, 7, 8, 9, 14, 15, 16, 21, 22, 23, 28, 29, 30, 4, 5, 6, 11, 12, 13, 18, 19, 20, 25, 26, 27, 3, 4, 5,
            10, 11]
_SUN_WED = [2, 3, 7, 8, 9, 10, 14, 15, 16, 17, 21, 22, 23, 24, 28, 29, 30, 31, 4, 5, 6, 7, 11, 12, 13, 14, 18, 19,
            20, 21]
_SUN_THU = [2, 3, 4, 7, 8, 9, 10, 11, 14, 15, 16, 17, 18, 21, 22, 23, 24, 25, 28, 29, 30, 31, 1, 4, 5, 6, 7, 8,
            11, 12]
_SUN_FRI = [2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 14, 15, 16, 17, 18, 19, 21, 22, 23, 24, 25, 26, 28, 29, 30, 31, 1, 2,
            4, 5]
_SR_TO, _SR_FROM = CI + "test_sunday_ranges_to", CI + "test_sunday_ranges_from"
CRONITER_CASES += [
    (source, line, "UTC", "2024-01-01T00:00:00", _midnights(2024, 1, days))
    for source, line, days in [
        # croniter expects every day for "Sun-Sun", "7-7" and "0-0" (it reads a range from Sunday
        # to Sunday as the whole week). Debian's cron (cronsim) reads sun-sun as the range 0-0 and
        # 7-7 as Sunday (7 is Sunday too): Sundays only.
        (_SR_TO, "0 0 * * Sun-Sun", _SUNDAYS),
        (_SR_TO, "0 0 * * 7-7", _SUNDAYS),
        (_SR_TO, "0 0 * * 0-0", _SUNDAYS),
        # "Mon-Sun" ... "Sat-Sun" and their "-0" forms run backwards with Sunday as 0 and are
        # refused (see REFUSED); the "-7" forms are ordinary ranges and agree with croniter.
        (_SR_TO, "0 0 * * mon-7", _EVERY_DAY),
        (_SR_TO, "0 0 * * tue-7", _TUE_SUN),
        (_SR_TO, "0 0 * * wed-7", _WED_SUN),
        (_SR_TO, "0 0 * * thu-7", _THU_SUN),
        (_SR_TO, "0 0 * * fri-7", _FRI_SUN),
        (_SR_TO, "0 0 * * sat-7", _SAT_SUN),
        # "Sun-Xxx" and "0-xxx" agree with croniter; "7-xxx" runs backwards and is refused.
        (_SR_FROM, "0 0 * * Sun-Mon", _SUN_MON),
        (_SR_FROM, "0 0 * * 0-mon", _SUN_MON),
        (_SR_FROM, "0 0 * * Sun-Tue", _SUN_TUE),
        (_SR_FROM, "0 0 * * 0-tue", _SUN_TUE),
        (_SR_FROM, "0 0 * * Sun-Wed", _SUN_WED),
        (_SR_FROM, "0 0 * * 0-wed", _SUN_WED),
        (_SR_FROM, "0 0 * * Sun-Thu", _SUN_THU),
        (_SR_FROM, "0 0 * * 0-thu", _SUN_THU),
        (_SR_FROM, "0 0 * * Sun-Fri", _SUN_FRI),
        (_SR_FROM, "0 0 * * 0-fri", _SUN_FRI),
        (_SR_FROM, "0 0 * * Sun-Sat", _EVERY_DAY),
        (_SR_FROM, "0 0 * * 0-sat", _EVERY_DAY),
    ]
]
# test_mth_ranges_from (via gen_x_mth_results): 16 fires from 2024-01-01. croniter wraps a month
# range that ends before it starts ("Nov-Mar"); Debian's cron sets no month for it and cronsim and
# nbsched refuse it (see REFUSED), so the wrapped lines are written as two ranges. The stepped
# wrapped lines ("Apr-Mar/3", "Apr-Mar/2") have no Debian reading and only appear in REFUSED.
_MR = CI + "test_mth_ranges_from"
CRONITER_CASES += [
    (_MR, "0 0 1 Jan-Dec *", "UTC", "2024-01-01T00:00:00", _firsts([
        "24 2", "24 3", "24 4", "24 5", "24 6", "24 7", "24 8", "24 9", "24 10", "24 11", "24 12", "25 1", "25 2",
        "25 3", "25 4", "25 5"])),
    (_MR, "0 0 1 Nov-Dec,Jan-Mar *", "UTC", "2024-01-01T00:00:00", _firsts([  # croniter: "Nov-Mar"
        "24 2", "24 3", "24 11", "24 12", "25 1", "25 2", "25 3", "25 11", "25 12", "26 1", "26 2", "26 3",
        "26 11", "26 12", "27 1", "27 2"])),
    (_MR, "0 0 1 Apr-Dec,Jan-Feb *", "UTC", "2024-01-01T00:00:00", _firsts([  # croniter: "Apr-Feb"
        "24 2", "24 4", "24 5", "24 6", "24 7", "24 8", "24 9", "24 10", "24 11", "24 12", "25 1", "25 2", "25 4",
        "25 5", "25 6", "25 7"])),
    (_MR, "0 0 1 Jan-Aug/2 *", "UTC", "2024-01-01T00:00:00", _firsts([
        "24 3", "24 5", "24 7", "25 1", "25 3", "25 5", "25 7", "26 1", "26 3", "26 5", "26 7", "27 1", "27 3",
        "27 5", "27 7", "28 1"])),
    (_MR, "0 0 1 Jan-Aug/4 *", "UTC", "2024-01-01T00:00:00", _firsts([
        "24 5", "25 1", "25 5", "26 1", "26 5", "27 1", "27 5", "28 1", "28 5", "29 1", "29 5", "30 1", "30 5",
        "31 1", "31 5", "32 1"])),
]
# test_croniter_hash.py::CroniterWordAliasTest: given a hash_id, croniter hashes the @ aliases
# (@midnight somewhere in 00:00-02:59, @daily at a hashed time, ...). Debian's cron's aliases are
# fixed times (@daily is "0 0 * * *"), and so are nbsched's: H only where the line says H.
_WA = CI_HASH + "CroniterWordAliasTest::"
CRONITER_CASES += [
    (_WA + "test_hash_word_midnight", "@midnight", "UTC", "2020-01-01T00:00:00",
     ["2020-01-02T00:00:00", "2020-01-03T00:00:00"]),
    (_WA + "test_hash_word_hourly", "@hourly", "UTC", "2020-01-01T00:00:00",
     ["2020-01-01T01:00:00", "2020-01-01T02:00:00"]),
    (_WA + "test_hash_word_daily", "@daily", "UTC", "2020-01-01T00:00:00",
     ["2020-01-02T00:00:00", "2020-01-03T00:00:00"]),
    (_WA + "test_hash_word_weekly", "@weekly", "UTC", "2020-01-01T00:00:00",
     ["2020-01-05T00:00:00", "2020-01-12T00:00:00"]),
    (_WA + "test_hash_word_monthly", "@monthly", "UTC", "2020-01-01T00:00:00",
     ["2020-02-01T00:00:00", "2020-03-01T00:00:00"]),
    (_WA + "test_hash_word_yearly", "@yearly", "UTC", "2020-01-01T00:00:00",
     ["2021-01-01T00:00:00", "2022-01-01T00:00:00"]),
    (_WA + "test_hash_word_annually", "@annually", "UTC", "2020-01-01T00:00:00",
     ["2021-01-01T00:00:00", "2022-01-01T00:00:00"]),
]
# fmt: on

# --------------------------------------------------------------------------------------------------
# croniter_range (src/croniter/tests/test_croniter_range.py): every fire in [start, stop]
# --------------------------------------------------------------------------------------------------

# fmt: off
CRONITER_RANGE_CASES: list[tuple] = [
    (CI_RANGE + "test_1day_step", "0 0 * * *", "UTC", "2016-12-02T00:00:00", "2016-12-10T00:00:00", False,
     _midnights(2016, 12, list(range(2, 11)))),
    (CI_RANGE + "test_1day_step_no_ends", "0 0 * * *", "UTC", "2016-12-02T00:00:00", "2016-12-10T00:00:00", True,
     _midnights(2016, 12, list(range(3, 10)))),
    (CI_RANGE + "test_1month_step", "0 0 1 * *", "UTC", "1982-01-01T00:00:00", "1983-12-31T00:00:00", False,
     [f"{year}-{month:02}-01T00:00:00" for year in (1982, 1983) for month in range(1, 13)]),
    (CI_RANGE + "test_1minute_step_float", "* * * * *", "UTC", "2000-01-01T00:00:00", "2000-01-01T00:01:00", False,
     ["2000-01-01T00:00:00", "2000-01-01T00:01:00"]),
    # US/Eastern (America/New_York): DST ended on 2020-11-01 at 02:00; 12 midnights either side.
    (CI_RANGE + "test_timezone_dst", "0 0 * * *", "America/New_York", "2020-10-30T00:00:00-04:00",
     "2020-11-10T00:00:00-05:00", False,
     ["2020-10-30T00:00:00-04:00", "2020-10-31T00:00:00-04:00", "2020-11-01T00:00:00-04:00",
      *(f"2020-11-{day:02}T00:00:00-05:00" for day in range(2, 11))]),
    # 2020-03-08 02:00 -> 03:00: 03:00 itself exists (-04:00) and fires.
    (CI_RANGE + "test_extra_hour_day_prio", "0 3 * * *", "America/New_York", "2020-03-07T00:00:00-05:00",
     "2020-03-11T00:00:00-04:00", False,
     ["2020-03-07T03:00:00-05:00", "2020-03-08T03:00:00-04:00", "2020-03-09T03:00:00-04:00",
      "2020-03-10T03:00:00-04:00"]),
    # second_at_beginning=True: nbsched's own order.
    (CI_RANGE + "test_configure_second_location", "*/20 * * * * *", "UTC", "2016-12-02T00:00:00",
     "2016-12-02T00:01:00", False,
     ["2016-12-02T00:00:00", "2016-12-02T00:00:20", "2016-12-02T00:00:40", "2016-12-02T00:01:00"]),
]

# --------------------------------------------------------------------------------------------------
# croniter.match / match_range (src/croniter/tests/test_croniter.py), day_or=True (the default) only
# --------------------------------------------------------------------------------------------------

CRONITER_MATCH_CASES: list[tuple] = [
    (CI + "test_match", "0 0 * * *", "UTC", "2019-01-14T00:00:00", None, True),
    (CI + "test_match", "0 0 * * *", "UTC", "2019-01-14T00:01:00", None, False),
    # croniter "0 0 * * * 1" (seconds last)
    (CI + "test_match", "1 0 0 * * *", "UTC", "2023-05-25T00:00:01", None, True),
    (CI + "test_match", "1 0 0 * * *", "UTC", "2023-05-25T00:00:02", None, False),
    (CI + "test_match", "31 * * * *", "UTC", "2019-01-14T01:31:00", None, True),
    # Both day fields restricted: they OR. 2020-06-10 is a Wednesday, 2020-06-12 a Friday.
    (CI + "test_match", "0 0 10 * wed", "UTC", "2020-06-10T00:00:00", None, True),
    (CI + "test_match", "0 0 10 * fri", "UTC", "2020-06-10T00:00:00", None, True),
    (CI + "test_match", "0 0 10 * fri", "UTC", "2020-06-12T00:00:00", None, True),
    (CI + "test_issue151", "* * * * *", "UTC", "2019-01-14T11:00:59.999999", None, True),
    (CI + "test_match_range", "0 0 * * *", "UTC", "2019-01-13T00:59:00", "2019-01-14T00:01:00", True),
    (CI + "test_match_range", "0 0 * * *", "UTC", "2019-01-13T00:01:00", "2019-01-13T00:59:00", False),
    (CI + "test_match_range", "1 0 0 * * *", "UTC", "2023-05-25T00:00:00", "2023-05-25T00:00:02", True),
    (CI + "test_match_range", "1 0 0 * * *", "UTC", "2023-05-25T00:00:02", "2023-05-25T00:00:04", False),
    (CI + "test_match_range", "1 0 0 * * *", "UTC", "2023-05-25T00:00:01", "2023-05-25T00:00:04", True),
    (CI + "test_match_range", "31 * * * *", "UTC", "2019-01-14T01:30:00", "2019-01-14T01:31:00", True),
    (CI + "test_match_range", "0 0 10 * wed", "UTC", "2020-06-09T00:00:00", "2020-06-11T00:00:00", True),
    (CI + "test_match_range", "0 0 10 * fri", "UTC", "2020-06-10T00:00:00", "2020-06-11T00:00:00", True),
    (CI + "test_match_range", "0 0 10 * fri", "UTC", "2020-06-11T00:00:00", "2020-06-12T00:00:00", True),
]

# --------------------------------------------------------------------------------------------------
# croniter's H (src/croniter/tests/test_croniter_hash.py::CroniterHashTest)
# --------------------------------------------------------------------------------------------------
# Each test asserts a first fire (croniter's hash of hash_id "hello") and the spacing to the next.
# nbsched hashes the job's name with its own function, so the first fire differs by design; the
# spacing does not depend on the hash and is ported: (source, line, start, spacing). Starts are
# chosen so the spacing holds for any hashed value (the yearly one starts in a non-leap year);
# croniter's 6-field lines are rewritten seconds-first, its 7-field (year) ones are in REFUSED.
_HT = CI_HASH + "CroniterHashTest::"
HASH_SPACING: list[tuple] = [
    (_HT + "test_hash_hourly", "H * * * *", "2019-12-31T23:59:59", timedelta(hours=1)),
    (_HT + "test_hash_daily", "H H * * *", "2019-12-31T23:59:59", timedelta(days=1)),
    (_HT + "test_hash_weekly", "H H * * H", "2019-12-31T23:59:59", timedelta(weeks=1)),
    (_HT + "test_hash_monthly", "H H H * *", "2019-12-31T23:59:59", timedelta(days=31)),
    (_HT + "test_hash_yearly", "H H H H *", "2020-12-31T23:59:59", timedelta(days=365)),
    (_HT + "test_hash_second", "H H H * * *", "2019-12-31T23:59:59", timedelta(days=1)),  # croniter "H H * * * H"
    (_HT + "test_hash_id_change", "H H * * *", "2019-12-31T23:59:59", timedelta(days=1)),
    (_HT + "test_hash_epoch_change", "H H * * *", "2011-11-11T11:11:00", timedelta(days=1)),
    (_HT + "test_hash_range", "H H H(3-5) * *", "2019-12-31T23:59:59", timedelta(days=31)),
    (_HT + "test_hash_division", "H H/3 * * *", "2019-12-31T23:59:59", timedelta(hours=3)),
    (_HT + "test_hash_range_division", "H(30-59)/10 H * * *", "2019-12-31T23:59:59", timedelta(minutes=10)),
    (_HT + "test_hash_id_bytes", "H H * * *", "2019-12-31T23:59:59", timedelta(days=1)),
    (_HT + "test_hash_float", "H H * * *", "2019-12-31T23:59:59", timedelta(days=1)),
]
# fmt: on

# --------------------------------------------------------------------------------------------------
# Validity
# --------------------------------------------------------------------------------------------------

# fmt: off
VALID: list[tuple[str, str]] = [
    # cronsim TestParse: every line it parses (the asserted sets are shown as fire times above).
    *((CS + "TestParse::" + test, line) for test, line in [
        ("test_it_parses_stars", "* * * * *"), ("test_it_parses_6th_field", "* * * * * *"),
        ("test_it_parses_numbers", "1 * * * *"), ("test_it_parses_weekday", "* * * * 1"),
        ("test_it_handles_0_sunday", "* * * * 0"), ("test_it_parses_list", "1,2,3 * * * *"),
        ("test_it_parses_interval", "1-3 * * * *"), ("test_it_parses_two_intervals", "1-3,7-9 * * * *"),
        ("test_it_parses_step", "*/15 * * * *"), ("test_it_parses_interval_with_step", "0-10/2 * * * *"),
        ("test_it_parses_start_with_step", "5/15 * * * *"), ("test_it_parses_day_l", "* * L * *"),
        ("test_it_parses_day_lw", "* * LW * *"), ("test_it_parses_day_lowercase_l", "* * l * *"),
        ("test_it_parses_day_lowercase_lw", "* * lw * *"),
        ("test_it_parses_unrestricted_day_restricted_dow", "* * * * 1"),
        ("test_it_parses_restricted_day_unrestricted_dow", "* * 1 * *"),
        ("test_it_parses_nth_weekday", "* * * * 1#2"), ("test_it_parses_symbolic_weekday", "* * * * MON"),
        ("test_it_parses_lowercase_symbolic_weekday", "* * * * mon"),
        ("test_it_parses_symbolic_month", "* * * JAN *"), ("test_it_parses_weekday_range_from_zero", "* * * * 0-2"),
        ("test_it_parses_sun_tue", "* * * * sun-tue"), ("test_it_starts_weekday_step_from_zero", "* * * * */2"),
        ("test_it_accepts_l_with_step", "* * L/2 * *"), ("test_it_accepts_lw_with_step", "* * LW/2 * *"),
        ("test_it_handles_a_mix_of_ints_and_tuples", "* * * * 1,2,3#1"), ("test_it_accepts_weekday_7", "* * * * 7"),
        ("test_it_accepts_weekday_l", "* * * * 5L"),
    ]),
    (CS + "TestOptimizations::test_it_skips_fixup_for_naive_datetimes", "1 1 L * *"),
    (CS + "TestExplain::test_it_works", "* * * * *"),
    (CS + "TestExplain::test_it_handles_seconds", "* * * * * *"),
    (CS + "TestReverse::test_it_handles_no_matches", "1 1 */100 * MON#4"),
    # cronsim TestReverse.samples (each is iterated forwards then backwards from four starts).
    *((CS + "TestReverse::samples", line) for line in [
        "* * * * *", "0 * * * *", "*/30 * * * *", "*/15 * * * *", "0 */2 * * *", "30 */2 * * *", "0 */3 * * *",
        "0 1,2,3,4,5 * * *", "30 1,2,3,4,5 * * *", "0 2 * * *", "0 3 * * *", "0 4 * * *",
        "0 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23 * * *",
        "0 1,3,5,7,9,11,13,15,17,19,21,23 * * *", "0 1-5 * * *", "15 3 * * *", "* 1-6 * * *", "1 1 L * *",
        "1 1 LW 5 *", "1 1 * * 5L", "1 1 * * 0L", "1 1 * * 7L", "1 1 * * 1#2", "1 1 1-7 * */7",
        "1 1 */100,1-7 * MON", "1 1 * * */3", "* 30 */2 * * *", "*/30 30 */2 * * *", "0-1 30 */2 * * *",
        "0,59 30 */2 * * *", "11,22 29 1,2,3,4 * * *", "33 30 1-10 * * *", "0 30 1-10 * * *",
    ]),
    # croniter testOptimizeCronExpressions / testBlockDupRanges / test_confirm_sort assert croniter's
    # internal expansion of these lines; here: they are valid. 6-field ones rewritten seconds-first.
    *((CI + "testOptimizeCronExpressions", line) for line in [
        "0-59 0 1 1 0", "0 0-23 1 1 0", "0 0 1-31 1 0", "0 0 1-31 1 *", "0 0 1 1-12 0", "0 0 1 1 0-6",
        "0 0 * 1 0-6", "0 0 1 1 0-6,sat#3", "0 0 * 1 0-6,sat#3",
        "0-59 0 0 1 1 0",  # croniter "0 0 1 1 0 0-59"
        "30 1-12,0,10-23 15-21 * fri", "30 1-23,0 15-21 * fri",
    ]),
    *((CI + "testBlockDupRanges", line) for line in [
        "* 5,5,1-6 * * *", "* * * * 2-3,4-5,3,3,3",
        "1,5,*/20,20,15 * * * * *",  # croniter "* * * * * 1,5,*/20,20,15"
        "* 4,1-4,5,4 * * *", "59 23 * 1 wed,fri,mon-thu,tue,tue",
    ]),
    *((CI + "test_confirm_sort", line) for line in ["0 8,22,10,23 1 1 0", "1 1 7,14,21,L * *", "0 0 * * *,sat#3"]),
    (CI + "test_is_valid", "0 * * * *"),
    (CI + "test_is_valid", "H 0 * * *"),  # with hash_id "abc"; nbsched hashes the job's name
    (CI + "test_mixdow", "1 1 7,14,21,L * *"),
    (CI + "test_revert_issue_90_aka_support_DOW7", "* * * * 1-7"),
    (CI + "test_revert_issue_90_aka_support_DOW7", "* * * * 7"),
    (CI + "test_issue_k33", "30 6 1-7 MAY MON#1"),
    # croniter refuses "L/2" (test_issue_k34: CroniterBadCronError); cronsim accepts it and reads it
    # as L (TestParse::test_it_accepts_l_with_step: a step after a single day changes nothing).
    # Debian's cron has no L to decide by; nbsched follows cronsim, whose L it implements.
    (CI + "test_issue_k34", "4 0 L/2 2 0"),
    # Lines of day_or=False tests (skipped: Debian has no such switch); the lines are valid.
    (CI + "test_issue145_getnext", "0 13 8 1,4,7,10 wed"),
    (CI + "test_match_handle_bad_cron", "0 0 31 1 1#1"),
    (CI + "test_match_range", "2 4 1 * wed"),
    # croniter's H lines (nbsched's H hashes the job's name; 6-field ones rewritten seconds-first).
    *((CI_HASH + "CroniterHashTest", line) for line in [
        "H * * * *", "H H * * *", "H H * * H", "H H H * *", "H H H H *", "H H H * * *", "H H H(3-5) * *",
        "H H/3 * * *", "H(30-59)/10 H * * *",
    ]),
    *((CI_HASH + "CroniterHashExpander*", line) for line in [
        "H * * * *", "H/2 * * * *", "H/3 * * * *", "H/15 * * * *", "H(0-59) * * * *", "H H * * *", "H H/2 * * *",
        "H H/4 * * *", "H H/8 * * *", "H H/10 * * *", "H H/12 * * *", "* H(0-23) * * *", "H H H * *",
        "0 0 H/2 * *", "H H H/5 * *", "H H H/12 * *", "* * H(1-31) * *", "H H * H *", "H H * H/2 *",
        "H H * H/3 *", "H H * H/5 *", "* * * H(1-12) *", "H H * * H", "H H * * H/2", "H H * * H/4",
        "* * * * H(0-6)",
    ]),
]

_BAD_PATTERNS = [  # cronsim TestValidation::test_it_rejects_bad_values, with the part nbsched must name
    ("%s * * * *", "the minute field"), ("* %s * * *", "the hour field"), ("* * %s * *", "the day-of-month field"),
    ("* * * %s * ", "the month field"), ("* * * * %s", "the day-of-week field"),
    ("* * * * * %s", "the day-of-week field"), ("* * * * * * %s", "it has 7 fields"),
    ("1-%s * * * *", "the minute field"), ("%s-60 * * * *", "the minute field"),
    ("* * 1-%s * *", "the day-of-month field"), ("* * 1,%s * *", "the day-of-month field"),
    ("* * %s/1 * *", "the day-of-month field"), ("* * * %s-DEC *", "the month field"),
    ("* * * JAN-%s *", "the month field"), ("* * * * %s-SUN", "the day-of-week field"),
    ("* * * * MON-%s", "the day-of-week field"), ("1-%s * * * * *", "the second field"),
    ("%s-60 * * * * *", "the second field"),
]
_BAD_VALUES = ["-1", "61", "ABC", "2/", "/2", "2#", "#2", "1##1", "1//2", "¹", "LL", "LWX"]
_DOW, _DOM, _MONTH, _MINUTE = "the day-of-week field", "the day-of-month field", "the month field", "the minute field"
_7 = "it has 7 fields"

REFUSED: list[tuple[str, str, str]] = [
    (CS + "TestValidation::test_it_rejects_4_components", "* * * *", "it has 4 fields"),
    *((CS + "TestValidation::test_it_rejects_bad_values", pattern % value, says)
      for pattern, says in _BAD_PATTERNS for value in _BAD_VALUES),
    (CS + "TestValidation::test_it_rejects_lopsided_range", "* * 5-1 * *", _DOM),
    (CS + "TestValidation::test_it_rejects_underscores", "1-1_0 * * * *", _MINUTE),
    (CS + "TestValidation::test_it_rejects_zero_step", "*/0 * * * *", _MINUTE),
    (CS + "TestValidation::test_it_rejects_zero_nth", "* * * * 1#0", _DOW),
    (CS + "TestValidation::test_it_rejects_big_nth", "* * * * 1#6", _DOW),
    (CS + "TestValidation::test_it_checks_day_of_month_range", "* * 30 2 *", "matches no date"),
    (CS + "TestValidation::test_it_checks_day_of_month_range", "* * 31 4 *", "matches no date"),
    (CS + "TestValidation::test_it_rejects_dow_l_range", "* * * * 5L-6", _DOW),
    (CS + "TestValidation::test_it_rejects_dow_l_hash", "* * * * 5L#1", _DOW),
    (CS + "TestValidation::test_it_rejects_dow_l_slash", "* * * * 5L/3", _DOW),
    (CS + "TestValidation::test_it_rejects_symbolic_dow_l", "* * * * MONL", _DOW),
    (CI + "testError", "* * * *", "it has 4 fields"),
    (CI + "testError", "-90 * * * *", _MINUTE),
    (CI + "testError", "a * * * *", _MINUTE),
    (CI + "testError", "* * * janu-jun *", _MONTH),
    (CI + "testError", "1-1_0 * * * *", _MINUTE),
    (CI + "testError", "0-10/error * * * *", _MINUTE),
    (CI + "testError", "0-10/ * * * *", _MINUTE),
    (CI + "testError", "0-1& * * * *", _MINUTE),
    (CI + "testError", "* * 5-100 * *", _DOM),
    # croniter accepts it and raises CroniterBadDateError on get_next; cronsim refuses the line.
    (CI + "test_bug34", "* * 31 2 *", "matches no date"),
    (CI + "test_error_alpha_cron", "* * * janu-jun *", _MONTH),
    (CI + "test_error_bad_cron", "* * * *", "it has 4 fields"),
    (CI + "test_error_bad_cron", "* * * * * * * *", "it has 8 fields"),
    (CI + "test_is_valid", "0 * *", "it has 3 fields"),
    (CI + "test_is_valid", "* * * janu-jun *", _MONTH),
    (CI + "test_invalid_zerorepeat", "*/0 * * * *", _MINUTE),
    (CI + "test_nth_out_of_range", "0 0 * * 1#7", _DOW),
    (CI + "test_nth_out_of_range", "0 0 * * 1#0", _DOW),
    (CI + "test_last_out_of_range", "0 0 * * L-1", _DOW),
    (CI + "test_last_out_of_range", "0 0 * * L8", _DOW),
    # croniter accepts Quartz's '?' in a day field (test_question_mark: "0 0 1 * ?" fires on the 1st);
    # Debian's cron has no '?', cronsim refuses it: refused ('*' says the same in Debian's cron).
    (CI + "test_question_mark", "0 0 1 * ?", _DOW),
    (CI + "test_invalid_question_mark", "? * * * *", _MINUTE),
    (CI + "test_invalid_question_mark", "* ? * * *", "the hour field"),
    (CI + "test_invalid_question_mark", "* * ?,* * *", _DOM),
    # croniter's 7th field is a year; Debian's cron (and cronsim) have 5 fields, or 6 with seconds.
    *((CI + test, line, _7) for test, line in [
        ("test_year", "0 0 11 * * 0 2060"), ("test_year", "0 0 11 * * 0 2050-2060"),
        ("test_year", "0 0 29 2 * 0 2025,2021-2023,2028"), ("test_year", "0 0 29 2 * 0 2025,*"),
        ("test_year", "0 0 29 2 * 0 2022/3"), ("test_year", "0 0 29 2 * 0 2023-2035/3"),
        ("test_year_with_other_field", "0 0 31 11-12 * 0 2023"),
        ("test_year_with_other_field", "0 0 31 1-2 * 0 2023-2025"),
        ("test_year_with_other_field", "0 0 1 1 1 0 2020-2030"),
        ("test_year_get_prev", "0 0 11 * * 0 2000"), ("test_year_get_prev", "0 0 29 2 * 0 2010-2030"),
        ("test_year_match", "* * * * * * 2024"), ("test_year_match", "59 58 23 31 12 * 2024"),
        ("test_year_match", "* * * * * * 2024-2026"), ("test_year_match", "* * * * * * 2024/2"),
        ("test_year_bad_date_error", "* * * * * * 2020"), ("test_year_bad_date_error", "* * 29 2 * * 2021-2023"),
        ("test_year_with_second_at_beginning", "59 58 23 31 12 * 2070"),
        ("test_invalid_year", "0 0 1 * * 0 1000"), ("test_invalid_year", "0 0 1 * * 0 99999"),
        ("test_invalid_year", "0 0 1 * * 0 2070#3"), ("test_match_handle_bad_cron", "0 0 31 1 * 0 2024/2"),
    ]),
    (CI_RANGE + "test_year_range", "0 0 1 1 ? 0 2020-2024,2028", _7),
    (CI + "test_overflow", "0-10000000 * * * *", _MINUTE),
    (CI + "test_issue156", "* * * * *,b", _DOW),
    # croniter reads "a-L" in the day field as a range to the month's last day; cronsim refuses L in
    # a range (Debian has no L at all). The ported fire times use 29-31, 1-31/8 (same days).
    (CI + "testRangeWithUppercaseLastDayOfMonth", "0 0 29-L * *", _DOM),
    (CI + "test_confirm_sort", "0 0 25-L 1 0", _DOM),
    (CI + "test_issue_142_dow", "35 * 1-l/8 * *", _DOM),
    (CI + "test_issue_k6", "0 0 0 0 0", _DOM),
    (CI + "test_issue_k6", "0 0 0 1 0", _DOM),
    # croniter's "MON-FRI#1" (a range with #n): no Debian or cronsim reading; see the k33 rows.
    (CI + "test_issue_k33", "30 23 1-7 JAN MON-FRI#1", _DOW),
    # croniter writes the last weekday "L5"; cronsim and nbsched write "5L" (the ported rows) and
    # refuse "L5" (cronsim: TestValidation refuses anything but digits before the L).
    *((CI + test, line, _DOW) for test, line in [
        ("test_lwom_friday", "0 0 * * L5"), ("test_lwom_friday_2hours", "0 1,5 * * L5"),
        ("test_lwom_friday_2xh_2xm", "0,30 1,5 * * L5"), ("test_lwom_saturday_rev", "0 0 * * L6"),
        ("test_lwom_tue_thu", "0 0 * * L2,L4"), ("test_lwom_mixup_all_fri_last_sat", "0 0 * * 5,L6"),
        ("test_lwom_mixup_firstlast_sat", "0 0 * * L6,6#1"), ("test_lwom_mixup_4th_and_last", "0 0 * * L1"),
        ("test_lwom_mixup_4th_and_last", "0 0 * * 1#4,L1"),
    ]),
    # Ranges that end before they start. croniter wraps them around (Wed-Sun is Wednesday to Sunday,
    # Nov-Mar is November to March). Debian's cron reads a-b as "for (i = a; i <= b; i += step)", so
    # with Sunday as 0 and a > b the field gets no value at all and the job never runs; cronsim
    # refuses such a range, and so does nbsched, naming the field and the two ranges to write.
    (CI + "test_issue_monsun_117", "* 0 0 * * Wed-Sun", _DOW),  # croniter "0 0 * * Wed-Sun *"
    *((CI + "test_sunday_ranges_to", f"0 0 * * {day}-{sunday}", _DOW)
      for day in ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat") for sunday in ("Sun", "0")),
    *((CI + "test_sunday_ranges_from", f"0 0 * * 7-{day}", _DOW) for day in ("mon", "tue", "wed", "thu", "fri", "sat")),
    # croniter's step over a wrapped range ("Thu-Tue/2" is Tue, Thu, Sat; "Apr-Mar/2" is Mar, Apr,
    # Jun, Aug, Oct, Dec) has no Debian reading at all: refused, fire times not ported.
    (CI + "test_sunday_ranges_from", "0 0 * * Thu-Tue/2", _DOW),
    (CI + "test_sunday_ranges_from", "0 0 * * Thu-Tue/3", _DOW),
    (CI + "test_mth_ranges_from", "0 0 1 Nov-Mar *", _MONTH),
    (CI + "test_mth_ranges_from", "0 0 1 Apr-Feb *", _MONTH),
    (CI + "test_mth_ranges_from", "0 0 1 Apr-Mar/3 *", _MONTH),
    (CI + "test_mth_ranges_from", "0 0 1 Apr-Mar/2 *", _MONTH),
    # croniter_nosec refuses it for having 6 fields; read seconds-first (nbsched) or seconds-last
    # (croniter), its month field ("wed", or "1,15,L") is no month.
    (CI_RANGE + "test_croniter_range_derived_class", "0 1 8 1,15,L wed 15,45", _MONTH),
    (_HT + "test_hash_invalid_range", "H(11-10) H * * *", _MINUTE),
    (_HT + "test_invalid_divisor", "* * H/0 * *", _DOM),
    (_HT + "test_invalid_definition", "X X * * *", _MINUTE),
    (_HT + "test_hash_year", "H H * * * H H", _7),
    (_HT + "test_hash_range", "H H * * * 0 H(2025-2030)", _7),
    (_HT + "test_hash_division", "H H H H * H H/2", _7),
    # R is a new random value on every read: refused (a schedule must name the same times on every
    # read; H spreads jobs stably). Neither Debian's cron nor cronsim has it.
    (CI_RANDOM + "test_random", "R R * * *", _MINUTE),
    (CI_RANDOM + "test_random_float", "R R * * *", _MINUTE),
    (CI_RANDOM + "test_random_range", "R R R(10-20) * *", _MINUTE),
    (CI_RANDOM + "test_random_with_year", "* * * * * * R(2025-2030)", _7),
]
# fmt: on

# --------------------------------------------------------------------------------------------------
# Peer tests not ported (wholly or in part), and why
# --------------------------------------------------------------------------------------------------

# fmt: off
_REVERSE = "backward iteration only (get_prev / reverse); nbsched only goes forward"
_API = "tests an API nbsched does not have, no fire time or validity"
SKIPPED: list[tuple[str, str]] = [
    (CS + "TestReverse (all 5 tests)", _REVERSE + "; its sample lines are in VALID"),
    (CS + "TestOptimizations (both tests)", "cronsim's internal fixup_tz attribute; the line is in VALID"),
    (CS + "TestExplain (both tests)", "explain() wording (nbsched's describe() delegates to cronsim); lines in VALID"),
    *((CI + test, _REVERSE) for test in [
        "testDay2", "testPrevLastDayOfMonth", "testPrevMinute", "testPrevDayOfMonthWithCrossing", "testPrevWeekDay",
        "testPrevNthWeekDay", "testPrevWeekDay2", "testBug1", "testPreviousHour", "testPreviousDay",
        "testPreviousMonth", "testPreviousDow", "test_issue_47", "test_bug_62_leap", "test_lwom_saturday_rev",
    ]),
    (CI + "testBug3 / testBug57 / test_multiple_months / test_exactly_the_same_minute (get_prev parts)", _REVERSE),
    (CI + "testTimezone / testTimezoneDateutil", "assert the tzinfo object of the result; nbsched returns UTC"),
    (CI + "testGetCurrent / testInitNoStartTime", _API + " (get_current, the clock)"),
    (CI + "test_get_next_update_current (beyond the first three get_next)", _API + " (update_current, all_prev)"),
    *((CI + test, "expand_from_start_time=True anchors steps at the start time; Debian's steps count from "
                  "the field's first value, and nbsched has no such option")
      for test in ["test_expand_from_start_time_minute", "test_expand_from_start_time_hour",
                   "test_expand_from_start_time_date", "test_expand_from_start_time_month",
                   "test_expand_from_start_time_day_of_week",
                   "test_get_next_fails_with_expand_from_start_time_true"]),
    *((CI + test, "day_or=False (and max_years_between_matches): Debian's cron has no switch to AND two "
                  "restricted day fields; lines in VALID") for test in [
        "test_issue145_getnext", "test_explicit_year_forward", "test_match_handle_bad_cron",
        "test_match (its day_or=False asserts)", "test_match_range (its day_or=False asserts)",
    ]),
    (CI + "testWeekDayDayAnd", "day_or=False: ported with the Debian spelling */100 (the 1st, ANDed)"),
    (CI + "testDomDowVixieCronBug (implement_cron_bug)", "ported: Debian's reading is croniter's 'cron bug' one"),
    (CI + "testOptimizeCronExpressions / testBlockDupRanges / test_confirm_sort",
     "assert croniter's internal expanded lists; lines in VALID / REFUSED"),
    (CI + "test_nth_wday_simple / test_nth_as_last_wday_simple / test_wdom_core_leap_year",
     "test croniter's private helper; ported as fire days of the weekday in that month"),
    (CI + "test_dst_issue90_st31ny (after the first get_next)", _REVERSE + ", from pytz LMT artefacts"),
    (CI_RANGE + "test_auto_ret_type / test_input_type_exceptions / test_dt_types", _API + " (return and input types)"),
    (CI_RANGE + "test_issue145_getnext / test_issue145_range / test_croniter_range_derived_class",
     "day_or=False and a croniter subclass; lines in VALID / REFUSED"),
    (CI_HASH + "CroniterHashTest (first fire of each)", "croniter hashes hash_id 'hello' with its own function; "
     "nbsched hashes the job's name with another, so the hashed values differ by design (spacing ported)"),
    (CI_HASH + "CroniterHashTest::test_invalid_hash_id_type", _API + " (hash_id type)"),
    (CI_HASH + "CroniterHashExpander* (24 tests)", "statistics of croniter's hash over 350 hash_ids (its "
     "expanded lists); nbsched's hash differs by design, and H in the day field stays in 1-28; lines in VALID"),
    ("croniter src/croniter/tests/test_croniter_speed.py::CroniterSpeedTest::test_not_long_time",
     "a timing test; asserts no fire time"),
]
# fmt: on
