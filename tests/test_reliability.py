"""Reliability: overlap, misfires, backfill, pause notes, timeouts, retries, crash recovery, dying workers.

Scheduling decisions are tested on an ``Engine`` with a temp SQLite store and explicit datetimes
(no sleeping); what needs real processes (killing a worker, SIGKILL of the runner) runs a real
detached runner and waits on conditions with deadlines.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import alive, utc, wait_until

import nbsched
from nbsched.errors import InvalidInput
from nbsched.model.runs import RUN_FIELDS
from nbsched.runner.engine import Engine, Hooks
from nbsched.runner.results import MAX_RETRY_BACKOFF
from nbsched.store import RunQuery
from nbsched.store.sqlite import SQLiteStore
from nbsched.worker.pipe import Result, RunMessage

#: A service whose behaviour the job's extra chooses: sleep, fail, exit, kill itself, record its pid.
CHAOS_SOURCE = """
import json, os, signal, time
from pathlib import Path
from nbsched import Service


class Chaos(Service):
    name = "test.chaos"

    def handle(self):
        how = self.request.payload if isinstance(self.request.payload, dict) else {}
        if how.get("pids"):
            with open(how["pids"], "a") as handle:
                handle.write(f"{os.getpid()}\\n")
        if how.get("counter"):
            path = Path(how["counter"])
            count = int(path.read_text() or 0) + 1 if path.exists() else 1
            path.write_text(str(count))
            if count <= how.get("fail_times", 0):
                raise RuntimeError(f"failing on purpose, attempt {count}")
        time.sleep(float(how.get("sleep", 0)))
        if how.get("exit") is not None:
            os._exit(how["exit"])
        if how.get("signal"):
            os.kill(os.getpid(), how["signal"])
        if how.get("fail"):
            raise RuntimeError(how["fail"])
        self.response.payload = {"pid": os.getpid()}
"""
T0 = utc(2026, 1, 5, 12, 0)


# -- an engine driven by a fake clock -------------------------------------------------
class Harness:
    """An Engine on a temp SQLite file; dispatched runs, kills and timers are recorded, not executed."""

    def __init__(self, path: Path, now: datetime = T0):
        self.path = path
        self.now = now
        self._boot(now)
        self.engine.catalog.deploy([{"source": CHAOS_SOURCE, "origin": "<string>"}], now)

    def _boot(self, now: datetime) -> None:
        self.dispatched: list[RunMessage] = []
        self.killed: list[tuple[int, str, str]] = []
        self.timers: list[tuple[float, object]] = []
        self.store = SQLiteStore(self.path)
        hooks = Hooks(
            dispatch=self.dispatched.append,
            kill=lambda run_id, status, error: self.killed.append((run_id, status, error)) or True,
            call_later=lambda delay, fn: self.timers.append((delay, fn)) or len(self.timers),
            cancel_timer=lambda handle: None,
        )
        self.engine = Engine(store=self.store, hooks=hooks, runner_id="test:1")
        self.engine.load(now)

    def crash_and_restart(self, now: datetime) -> None:
        """Drop the engine without flushing (as SIGKILL would) and start a new one on the same file."""
        self.store.close()
        self._boot(now)

    def schedule(self, **job) -> dict:
        job.setdefault("service", "test.chaos")
        return self.engine.control.add_job(job, self.now)

    def tick(self, now: datetime) -> int:
        self.now = now
        return self.engine.tick(now)

    def finish(self, run_id: int, status: str = "ok", error: str | None = None) -> None:
        moment = self.now.timestamp()
        self.engine.results.on_result(Result(run_id, status, error, started_at=moment, finished_at=moment))

    def ids(self) -> list[int]:
        return [message.run_id for message in self.dispatched]

    def rows(self, **filters) -> list[dict]:
        self.engine.results.flush()
        return [dict(zip(RUN_FIELDS, row, strict=True)) for row in reversed(self.store.runs(RunQuery(**filters)))]


@pytest.fixture
def harness(tmp_path) -> Harness:
    h = Harness(tmp_path / "nbsched.db")
    yield h
    h.store.close()


# -- overlap ------------------------------------------------------------------------------
def test_overlap_skip_is_the_default_and_records_a_skipped_row(harness):
    harness.schedule(name="j", every="10s")
    harness.tick(T0)
    harness.tick(T0 + timedelta(seconds=10))
    assert len(harness.dispatched) == 1
    rows = harness.rows(job="j")
    assert [(r["status"], r["scheduled_at"]) for r in rows] == [
        ("running", T0),
        ("skipped", T0 + timedelta(seconds=10)),
    ]
    assert "still running (overlap=skip)" in rows[1]["error"]
    harness.finish(harness.ids()[0])
    harness.tick(T0 + timedelta(seconds=20))
    assert len(harness.dispatched) == 2


def test_overlap_queue_runs_once_after_the_current_run_and_skips_further_fires(harness):
    harness.schedule(name="j", every="10s", overlap="queue")
    for k in range(3):
        harness.tick(T0 + timedelta(seconds=10 * k))
    assert len(harness.dispatched) == 1
    statuses = [r["status"] for r in harness.rows(job="j")]
    assert statuses == ["running", "running", "skipped"]  # the queued one waits as 'running'
    harness.finish(harness.ids()[0])
    assert len(harness.dispatched) == 2
    assert harness.dispatched[1].scheduled_at == (T0 + timedelta(seconds=10)).timestamp()


def test_overlap_queue_all_runs_every_fire_in_order(harness):
    harness.schedule(name="j", every="10s", overlap="queue_all")
    for k in range(4):
        harness.tick(T0 + timedelta(seconds=10 * k))
    assert len(harness.dispatched) == 1
    for _ in range(3):
        harness.finish(harness.ids()[-1])
    assert [m.scheduled_at for m in harness.dispatched] == [
        (T0 + timedelta(seconds=10 * k)).timestamp() for k in range(4)
    ]
    assert not [r for r in harness.rows(job="j") if r["status"] == "skipped"]


def test_overlap_replace_stops_the_running_run_and_starts_the_new_one(harness):
    harness.schedule(name="j", every="10s", overlap="replace")
    harness.tick(T0)
    harness.tick(T0 + timedelta(seconds=10))
    first, second = harness.ids()
    assert harness.killed == [(first, "interrupted", f"Replaced by run {second} (overlap=replace).")]


def test_overlap_allow_runs_in_parallel(harness):
    harness.schedule(name="j", every="10s", overlap="allow")
    for k in range(3):
        harness.tick(T0 + timedelta(seconds=10 * k))
    assert len(harness.dispatched) == 3
    assert harness.killed == []
    assert {r["status"] for r in harness.rows(job="j")} == {"running"}


# -- misfires after downtime -----------------------------------------------------------------
def _down_for(harness: Harness, minutes: int, **job) -> list[dict]:
    """A job every minute fires at T0; the runner dies and comes back ``minutes`` later."""
    harness.schedule(name="j", every="1m", **job)
    harness.tick(T0)
    harness.finish(harness.ids()[0])
    harness.engine.results.flush()
    harness.crash_and_restart(T0 + timedelta(minutes=minutes, seconds=5))
    return harness.rows(job="j")[1:]


def test_misfire_skip_records_one_missed_row_with_the_count(harness):
    rows = _down_for(harness, 30)
    assert [(r["trigger"], r["status"]) for r in rows] == [("misfire", "missed")]
    assert rows[0]["error"].startswith("Missed 30 fire(s) from 2026-01-05T12:01:00+00:00")
    assert harness.dispatched == []
    assert harness.engine.jobs["j"].state.next_fire == T0 + timedelta(minutes=31)


def test_misfire_once_runs_the_latest_missed_fire_once(harness):
    rows = _down_for(harness, 30, misfire="once")
    assert [(r["status"], r["scheduled_at"]) for r in rows] == [
        ("missed", T0 + timedelta(minutes=1)),
        ("running", T0 + timedelta(minutes=30)),
    ]
    assert "Missed 29 fire(s)" in rows[0]["error"]
    assert len(harness.dispatched) == 1


def test_misfire_all_runs_each_missed_fire_oldest_first(harness):
    rows = _down_for(harness, 5, misfire="all")
    expected = [T0 + timedelta(minutes=k) for k in range(1, 6)]
    assert [(r["trigger"], r["scheduled_at"]) for r in rows] == [("misfire", when) for when in expected]
    for _ in range(4):  # one at a time, in order
        harness.finish(harness.ids()[-1])
    assert [m.scheduled_at for m in harness.dispatched] == [when.timestamp() for when in expected]


def test_misfire_catchup_bounds_what_runs_and_counts_the_rest_as_missed(harness):
    rows = _down_for(harness, 30, misfire="all", catchup="10m")
    missed, *runs = rows
    assert missed["status"] == "missed" and "Missed 20 fire(s)" in missed["error"]
    assert [r["scheduled_at"] for r in runs] == [T0 + timedelta(minutes=k) for k in range(21, 31)]


def test_misfire_all_does_not_run_more_fires_than_repeats_allow(harness):
    harness.schedule(name="j", every="1m", misfire="all", repeats=3)
    harness.tick(T0)
    harness.finish(harness.ids()[0])
    harness.engine.results.flush()
    harness.crash_and_restart(T0 + timedelta(minutes=10, seconds=5))
    rows = harness.rows(job="j")
    runs = [r for r in rows if r["status"] != "missed"]
    assert len(runs) == 3
    (missed,) = [r for r in rows if r["status"] == "missed"]
    assert missed["error"].startswith("Missed 8 fire(s) from 2026-01-05T12:03:00+00:00")
    assert harness.engine.jobs["j"].state.fires == 3
    assert harness.engine.jobs["j"].state.next_fire is None


def test_one_time_job_missed_while_down_is_recorded_as_missed_and_never_fires_again(harness):
    harness.schedule(name="once", at=T0 + timedelta(minutes=5))
    harness.crash_and_restart(T0 + timedelta(minutes=10))
    harness.crash_and_restart(T0 + timedelta(minutes=20))
    rows = harness.rows(job="once")
    assert [r["status"] for r in rows] == ["missed"]
    assert harness.engine.jobs["once"].state.next_fire is None


# -- backfill and pause ----------------------------------------------------------------------
def test_backfill_runs_the_fires_of_a_past_window_oldest_first_and_only_once(harness):
    harness.now = T0 + timedelta(days=1)
    harness.schedule(name="hourly", cron="0 * * * *")
    ids = harness.engine.ondemand.backfill("hourly", "2026-01-05 09:00", "2026-01-05 12:00", harness.now)["run_ids"]
    rows = harness.rows(job="hourly")
    assert [(r["trigger"], r["scheduled_at"].hour) for r in rows] == [("backfill", h) for h in (9, 10, 11, 12)]
    assert [r["run_id"] for r in rows] == ids
    with pytest.raises(InvalidInput, match="backfilled already"):
        harness.engine.ondemand.backfill("hourly", "2026-01-05 12:00", "2026-01-05 13:00", harness.now)
    with pytest.raises(InvalidInput, match="start <= end <= now"):
        harness.engine.ondemand.backfill("hourly", "2026-01-05 13:00", "2026-01-05 12:00", harness.now)


def test_pause_keeps_its_note_in_the_list_and_stops_fires(harness):
    harness.schedule(name="j", every="10s")
    record = harness.engine.control.pause("j", "waiting for the vendor", T0)
    assert (record["active"], record["note"]) == (False, "waiting for the vendor")
    assert harness.tick(T0 + timedelta(minutes=5)) == 0
    assert harness.engine.control.resume("j", T0 + timedelta(minutes=5))["note"] == ""


# -- retries ----------------------------------------------------------------------------------
def test_retries_back_off_exponentially_with_a_cap_and_each_attempt_is_its_own_row(harness):
    harness.schedule(name="j", every="1d", retries=11)
    harness.tick(T0)
    for attempt in range(1, 13):
        harness.finish(harness.ids()[-1], status="error", error="RuntimeError: no")
        if attempt <= 11:
            _delay, retry = harness.timers[-1]
            retry()
    assert [delay for delay, _ in harness.timers] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    assert max(delay for delay, _ in harness.timers) == MAX_RETRY_BACKOFF
    rows = harness.rows(job="j")
    assert [(r["trigger"], r["attempt"]) for r in rows] == [("schedule", 1)] + [("retry", n) for n in range(2, 13)]
    assert {r["scheduled_at"] for r in rows} == {T0}
    assert {r["status"] for r in rows} == {"error"}


def test_a_timeout_counts_as_a_failure_for_retries(harness):
    harness.schedule(name="j", every="1d", retries=1, timeout="5s")
    harness.tick(T0)
    harness.engine.results.on_start(harness.ids()[0])
    ((delay, kill),) = harness.timers
    assert delay == 5
    kill()
    assert harness.killed[0][:2] == (harness.ids()[0], "timeout")
    harness.finish(harness.ids()[0], status="timeout", error="too slow")
    assert harness.timers[-1][0] == 1


# -- crash recovery, engine level ----------------------------------------------------------
def test_restart_marks_running_runs_interrupted_keeps_fire_counts_and_never_refires(harness):
    harness.schedule(name="j", every="10s", repeats=5, overlap="allow")
    for k in range(3):
        harness.tick(T0 + timedelta(seconds=10 * k))
    harness.finish(harness.ids()[0])
    harness.engine.results.flush()
    harness.crash_and_restart(T0 + timedelta(seconds=20, milliseconds=500))
    rows = harness.rows(job="j")
    assert [r["status"] for r in rows] == ["ok", "interrupted", "interrupted"]
    assert harness.engine.jobs["j"].state.fires == 3
    for k in range(3, 10):
        harness.tick(T0 + timedelta(seconds=10 * k))
    scheduled = [r["scheduled_at"] for r in harness.rows(job="j") if r["trigger"] == "schedule"]
    assert len(scheduled) == len(set(scheduled)) == 5  # repeats=5 held across the restart


# -- real runner: timeouts, dying workers, retries, overlap, SIGKILL -------------------------
#: Workers of the chaos runner: room for parallel runs while a killed worker is being replaced.
CHAOS_WORKERS = 6


@pytest.fixture
def chaos(home, monkeypatch):
    monkeypatch.setenv("NBSCHED_WORKERS", str(CHAOS_WORKERS))
    c = nbsched.connect()
    c.deploy(CHAOS_SOURCE)
    yield c
    c.close()


def _rows(client: nbsched.Client, job: str) -> list[dict]:
    """The job's history rows, oldest first, as dicts."""
    return client.history(job=job).sort_values("run_id").to_dict("records")


def _pids(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()] if path.exists() else []


@pytest.mark.slow
def test_timeout_kills_the_worker_records_timeout_and_a_fresh_worker_takes_over(chaos, home):
    pids = home / "pids"
    chaos.schedule("test.chaos", name="slow", every="1h", timeout="2s", extra={"sleep": 30, "pids": str(pids)})
    (first,) = wait_until(lambda: _rows(chaos, "slow"), what="the first fire")
    record = chaos.wait(first["run_id"], timeout=15)
    assert record["status"] == "timeout"
    assert "timeout of 2s" in record["error"]
    (pid,) = _pids(pids)
    wait_until(lambda: not alive(pid), timeout=5, what="the timed-out worker to be gone")
    wait_until(lambda: chaos.ping()["workers"] == CHAOS_WORKERS, timeout=10, what="a replacement worker")
    later = chaos.wait(chaos.invoke("test.chaos", extra={"pids": str(pids)}), timeout=15)
    assert later["status"] == "ok"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("how", "reason"),
    [({"exit": 1}, "exit code 1"), ({"signal": int(signal.SIGSEGV)}, "killed by SIGSEGV")],
    ids=["os._exit(1)", "SIGSEGV"],
)
def test_a_worker_that_dies_is_recorded_as_error_with_the_reason_and_replaced(chaos, how, reason):
    record = chaos.wait(chaos.invoke("test.chaos", extra=how), timeout=15)
    assert record["status"] == "error"
    assert reason in record["error"]
    for _ in range(5):  # more runs than workers: every slot works again
        assert chaos.wait(chaos.invoke("test.chaos"), timeout=15)["status"] == "ok"
    assert chaos.ping()["workers"] == CHAOS_WORKERS


@pytest.mark.slow
def test_retries_rerun_a_failed_run_with_backoff_each_attempt_its_own_row(chaos, home):
    extra = {"counter": str(home / "count"), "fail_times": 2}
    chaos.schedule("test.chaos", name="flaky", every="1h", retries=3, extra=extra)
    rows = wait_until(
        lambda: (rows := _rows(chaos, "flaky")) and rows[-1]["status"] not in ("running", "error") and rows,
        timeout=20,
        what="the third attempt to end",
    )
    assert [(r["trigger"], r["attempt"], r["status"]) for r in rows] == [
        ("schedule", 1, "error"),
        ("retry", 2, "error"),
        ("retry", 3, "ok"),
    ]
    assert "failing on purpose, attempt 1" in rows[0]["error"]
    started = [r["started_at"] for r in rows]
    assert started[1] - started[0] >= timedelta(seconds=1)
    assert started[2] - started[1] >= timedelta(seconds=2)
    assert len({r["scheduled_at"] for r in rows}) == 1


@pytest.mark.slow
def test_overlap_policies_with_real_workers(chaos):
    slow = {"sleep": 1.6}
    chaos.schedule("test.chaos", name="skip", every="1s", extra=slow)
    chaos.schedule("test.chaos", name="replace", every="1s", overlap="replace", extra={"sleep": 2.5})
    # allow: each run takes 3 s, fires are 1 s apart: the second starts ~2 s before the first ends, a margin
    # that holds on a slow, busy machine (with 1.2 s it was 0.2 s, and failed 2 runs in 5 under load).
    chaos.schedule("test.chaos", name="allow", every="1s", overlap="allow", extra={"sleep": 3.0}, repeats=2)

    def settled():
        history = chaos.history()
        by_job = {name: history[history["job"] == name] for name in ("skip", "replace", "allow")}
        return (
            "skipped" in set(by_job["skip"]["status"])
            and "interrupted" in set(by_job["replace"]["status"])
            and list(by_job["allow"]["status"]) == ["ok", "ok"]
            and by_job
        )

    by_job = wait_until(settled, timeout=40, what="skip, replace and allow to show")
    skipped = by_job["skip"][by_job["skip"]["status"] == "skipped"].iloc[0]
    assert "still running (overlap=skip)" in skipped["error"]
    replaced = by_job["replace"][by_job["replace"]["status"] == "interrupted"].iloc[0]
    assert "Replaced by run" in replaced["error"]
    allow = by_job["allow"].sort_values("run_id")
    assert allow["started_at"].iloc[1] < allow["finished_at"].iloc[0]  # they ran side by side
    for name in ("skip", "replace"):
        chaos.delete(name)


def _runner_pid(home: Path) -> int:
    return int((home / "runner.pid").read_text())


@pytest.mark.slow
def test_sigkill_of_the_runner_loses_nothing_and_never_runs_a_fire_twice(chaos, home):
    pids = home / "pids"
    chaos.schedule("test.chaos", name="long", every="1h", extra={"sleep": 3, "pids": str(pids)})
    chaos.schedule("test.chaos", name="tick", every="1s", repeats=1000, extra={"pids": str(pids)})
    chaos.schedule("test.chaos", name="counted", every="0.5s", allow_subsecond=True, repeats=3)
    wait_until(lambda: len(chaos.history(job="tick")) >= 2, what="a few fires")
    wait_until(lambda: chaos.job("counted")["fires"] == 3, what="the counted job to finish")
    before = chaos.job("tick")["fires"]
    pid = _runner_pid(home)
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not alive(pid), timeout=5, what="the runner to die")
    time.sleep(2.5)  # downtime long enough to miss a couple of 1 s fires
    chaos.close()
    try:
        after = nbsched.connect()
        assert after.ping()["pid"] != pid
        long_runs = after.history(job="long")
        assert list(long_runs["status"]) == ["interrupted"]
        assert after.job("tick")["fires"] >= before
        missed = after.history(job="tick", status="missed")
        assert len(missed) == 1 and "while no runner was up" in missed["error"].iloc[0]
        assert set(after.jobs()["name"]) == {"long", "tick", "counted"}
        counted = after.job("counted")
        assert counted["fires"] == 3 and counted["next_run"] is None
        wait_until(lambda: after.job("tick")["fires"] >= before + 2, what="fires after the restart")
        rows = after.history()
        scheduled = rows[rows["trigger"] == "schedule"]
        assert not scheduled.duplicated(["job", "scheduled_at"]).any()
        assert len(scheduled[scheduled["job"] == "counted"]) == 3
        after.close()
    finally:
        for worker in _pids(pids):
            if alive(worker):
                os.kill(worker, signal.SIGKILL)


@pytest.mark.slow
def test_backfill_and_pause_note_through_the_client(chaos):
    chaos.schedule("test.chaos", name="hourly", cron="0 * * * *")
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    ids = chaos.backfill("hourly", now - timedelta(hours=3), now - timedelta(hours=1))
    assert len(ids) == 3
    records = [chaos.wait(run_id, timeout=15) for run_id in ids]
    assert [r["trigger"] for r in records] == ["backfill"] * 3
    assert [r["status"] for r in records] == ["ok"] * 3
    assert [r["scheduled_at"] for r in records] == sorted(r["scheduled_at"] for r in records)
    chaos.pause("hourly", note="until Monday")
    jobs = chaos.jobs().set_index("name")
    assert jobs.loc["hourly", "note"] == "until Monday"
    assert not jobs.loc["hourly", "active"]
