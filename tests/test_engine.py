"""The scheduling engine driven by explicit times: no runner process, no sleeping."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from conftest import HELLO_SERVICE

from nbsched.errors import JobNotFound, ServiceNotFound
from nbsched.model.runs import RUN_FIELDS
from nbsched.model.timeparse import from_iso
from nbsched.runner.engine import Engine, Hooks
from nbsched.store import Store
from nbsched.store.memory import MemoryStore
from nbsched.store.sqlite import SQLiteStore
from nbsched.worker.pipe import Result, RunMessage

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


class Harness:
    """An engine whose dispatched runs are collected, not executed, on the store ``open_store`` opens:
    each test runs on a store in memory and on a real SQLite file."""

    def __init__(self, open_store: Callable[[], Store]):
        self.open_store = open_store
        self.dispatched: list[RunMessage] = []
        self.engine = self._engine()

    def _engine(self) -> Engine:
        store = self.open_store()
        hooks = Hooks(dispatch=self.dispatched.append, cancel=self._cancel)
        return Engine(store=store, hooks=hooks, runner_id="test:1")

    def _cancel(self, run_id: int, error: str) -> bool:
        """As the pool does: a run held by a worker for later is given back and recorded as skipped."""
        self.dispatched[:] = [m for m in self.dispatched if m.run_id != run_id]
        self.engine.results.on_result(Result(run_id, "skipped", error, finished_at=T0.timestamp()))
        return True

    def restart(self, now: datetime) -> None:
        """A new engine on the same store, as after a runner restart."""
        self.engine.results.flush()
        self.engine.store.close()
        self.dispatched.clear()
        self.engine = self._engine()
        self.engine.load(now)

    def finish_all(self, now: datetime, status: str = "ok") -> None:
        for message in list(self.dispatched):
            if message.run_id in self.engine.inflight.active:
                self.engine.results.on_result(
                    Result(message.run_id, status, started_at=now.timestamp(), finished_at=now.timestamp())
                )
        self.engine.results.flush()

    def rows(self, job: str) -> list[dict]:
        result = self.engine.reader.history(job=job, now=T0 + timedelta(days=365))
        rows = [dict(zip(result["columns"], row, strict=True)) for row in reversed(result["rows"])]
        for row in rows:  # history carries times as UTC ISO text, as on the wire
            for key in ("scheduled_at", "started_at", "finished_at"):
                row[key] = from_iso(row[key])
        return rows


@pytest.fixture(params=["memory", "sqlite"])
def harness(request, tmp_path):
    memory = MemoryStore()  # a restart finds what the engine before it stored, as in a file
    opened = {"memory": lambda: memory, "sqlite": lambda: SQLiteStore(tmp_path / "nbsched.db")}
    h = Harness(opened[request.param])
    h.engine.load(T0)
    h.engine.catalog.deploy([{"source": HELLO_SERVICE.read_text(), "origin": str(HELLO_SERVICE)}], T0)
    yield h
    h.engine.store.close()


def test_an_interval_job_fires_on_its_grid(harness):
    harness.engine.control.add_job({"name": "hello", "service": "api.hello", "every": "10s"}, T0)
    for second in range(0, 31, 5):
        harness.engine.tick(T0 + timedelta(seconds=second))
        harness.finish_all(T0 + timedelta(seconds=second))
    scheduled = [row["scheduled_at"] for row in harness.rows("hello")]
    assert scheduled == [T0 + timedelta(seconds=s) for s in (0, 10, 20, 30)]


def test_nothing_fires_before_its_time(harness):
    harness.engine.control.add_job(
        {"name": "later", "service": "api.hello", "every": "1m", "start": "2026-11-24 12:05"}, T0
    )
    assert harness.engine.tick(T0 + timedelta(minutes=4, seconds=59)) == 0
    assert harness.engine.next_due() == T0 + timedelta(minutes=5) - harness.engine.claim_ahead
    # claimed a little ahead of time and handed to a worker to hold until its time
    assert harness.engine.tick(T0 + timedelta(minutes=4, seconds=59, milliseconds=600)) == 1
    (message,) = harness.dispatched
    assert message.not_before == message.scheduled_at == (T0 + timedelta(minutes=5)).timestamp()


def test_history_leaves_out_a_fire_claimed_ahead_until_its_time(harness):
    harness.engine.control.add_job(
        {"name": "hello", "service": "api.hello", "every": "1m", "start": "2026-11-24 12:01"}, T0
    )
    harness.engine.tick(T0 + timedelta(seconds=59, milliseconds=600))
    assert harness.engine.reader.history(job="hello", now=T0 + timedelta(seconds=59, milliseconds=700))["rows"] == []
    assert len(harness.engine.reader.history(job="hello", now=T0 + timedelta(minutes=1))["rows"]) == 1


def test_a_fire_claimed_ahead_for_a_busy_job_waits_in_the_runner_until_the_run_before_ends(harness):
    harness.engine.control.add_job({"name": "busy", "service": "api.hello", "every": "1m"}, T0)
    harness.engine.tick(T0)  # the first run is still going
    harness.engine.tick(T0 + timedelta(seconds=59, milliseconds=600))
    assert len(harness.dispatched) == 1
    assert harness.engine.next_due() == T0 + timedelta(minutes=1)
    second_id = harness.engine.inflight.ahead[0][1]
    assert not harness.engine.is_finished(second_id)
    # The first run ends before the second's time: the second goes to a worker now, to start at its time.
    harness.finish_all(T0 + timedelta(seconds=59, milliseconds=900))
    assert len(harness.dispatched) == 2
    assert harness.dispatched[1].run_id == second_id
    assert harness.dispatched[1].not_before == (T0 + timedelta(minutes=1)).timestamp()
    harness.engine.tick(T0 + timedelta(minutes=1))
    assert len(harness.dispatched) == 2  # not handed over twice
    harness.finish_all(T0 + timedelta(minutes=1))
    assert harness.engine.is_finished(second_id)
    assert [row["status"] for row in harness.rows("busy")] == ["ok", "ok"]


def test_a_fire_claimed_ahead_for_a_job_still_busy_at_its_time_is_skipped(harness):
    harness.engine.control.add_job({"name": "busy", "service": "api.hello", "every": "1m"}, T0)
    harness.engine.tick(T0)
    harness.engine.tick(T0 + timedelta(seconds=59, milliseconds=600))
    harness.engine.tick(T0 + timedelta(minutes=1))  # the first run is still going (overlap=skip)
    harness.finish_all(T0 + timedelta(minutes=1, seconds=1))
    assert len(harness.dispatched) == 1
    assert [row["status"] for row in harness.rows("busy")] == ["ok", "skipped"]


def test_a_job_paused_while_its_claimed_fire_waits_for_the_run_before_skips_it(harness):
    harness.engine.control.add_job({"name": "busy", "service": "api.hello", "every": "1m"}, T0)
    harness.engine.tick(T0)
    harness.engine.tick(T0 + timedelta(seconds=59, milliseconds=600))
    harness.engine.control.pause("busy", "", T0 + timedelta(seconds=59, milliseconds=700))
    harness.finish_all(T0 + timedelta(seconds=59, milliseconds=900))  # a paused job hands nothing over
    harness.engine.tick(T0 + timedelta(minutes=1))
    harness.engine.results.flush()
    assert len(harness.dispatched) == 1
    assert [row["status"] for row in harness.rows("busy")] == ["ok", "skipped"]


def test_a_job_paused_after_its_fire_was_claimed_skips_that_run(harness):
    harness.engine.control.add_job(
        {"name": "hello", "service": "api.hello", "every": "1m", "start": "2026-11-24 12:01"}, T0
    )
    harness.engine.tick(T0 + timedelta(seconds=59, milliseconds=800))
    harness.engine.control.pause("hello", "", T0 + timedelta(seconds=59, milliseconds=900))
    harness.engine.tick(T0 + timedelta(minutes=1))
    assert harness.dispatched == []
    harness.engine.results.flush()
    rows = harness.rows("hello")
    assert [row["status"] for row in rows] == ["skipped"]
    assert rows[0]["error"] == "Job 'hello' was paused before this run started."


def test_a_run_message_carries_the_job_extra_and_fire_number(harness):
    harness.engine.control.add_job(
        {"name": "hello", "service": "api.hello", "every": "1m", "extra": '{"who": "me"}'}, T0
    )
    harness.engine.tick(T0)
    (message,) = harness.dispatched
    assert message.extra == '{"who": "me"}'
    assert message.channel == "scheduler"
    assert message.job == ("hello", "interval", 1)


def test_repeats_stop_the_job_and_survive_a_restart(harness):
    harness.engine.control.add_job({"name": "thrice", "service": "api.hello", "every": "1m", "repeats": 3}, T0)
    for minute in range(2):
        harness.engine.tick(T0 + timedelta(minutes=minute))
        harness.finish_all(T0 + timedelta(minutes=minute))
    harness.restart(T0 + timedelta(minutes=1, seconds=30))
    assert harness.engine.jobs["thrice"].state.fires == 2
    harness.engine.tick(T0 + timedelta(minutes=2))
    harness.finish_all(T0 + timedelta(minutes=2))
    assert harness.engine.tick(T0 + timedelta(minutes=3)) == 0
    assert len(harness.rows("thrice")) == 3
    assert harness.engine.control.job_record("thrice")["next_run"] is None


def test_a_one_time_job_fires_once_and_never_again_after_restart(harness):
    harness.engine.control.add_job({"name": "once", "service": "api.hello", "at": "2026-11-24 12:10"}, T0)
    harness.engine.tick(T0 + timedelta(minutes=10))
    harness.finish_all(T0 + timedelta(minutes=10))
    harness.restart(T0 + timedelta(minutes=11))
    harness.engine.tick(T0 + timedelta(days=1))
    assert len(harness.rows("once")) == 1
    assert "once" in harness.engine.jobs  # finished, kept in the list


def test_a_one_time_job_in_the_past_fires_at_once(harness):
    harness.engine.control.add_job({"name": "past", "service": "api.hello", "at": "2026-11-24 11:00"}, T0)
    assert harness.engine.tick(T0) == 1


def test_misfire_skip_records_one_missed_row_with_the_count(harness):
    harness.engine.control.add_job({"name": "minutely", "service": "api.hello", "every": "1m"}, T0)
    harness.engine.tick(T0)
    harness.finish_all(T0)
    harness.restart(T0 + timedelta(minutes=10, seconds=30))  # down for 10 minutes
    rows = harness.rows("minutely")
    assert [row["status"] for row in rows] == ["ok", "missed"]
    assert "Missed 10 fire(s)" in rows[1]["error"]
    assert harness.engine.jobs["minutely"].state.next_fire == T0 + timedelta(minutes=11)


def test_misfire_all_runs_each_missed_fire_within_catchup_oldest_first(harness):
    harness.engine.control.add_job(
        {"name": "catchup", "service": "api.hello", "every": "1m", "misfire": "all", "catchup": "3m"}, T0
    )
    harness.engine.tick(T0)
    harness.finish_all(T0)
    harness.restart(T0 + timedelta(minutes=5, seconds=30))
    rows = harness.rows("catchup")
    assert rows[1]["status"] == "missed" and "Missed 2 fire(s)" in rows[1]["error"]
    assert [row["scheduled_at"] for row in rows[2:]] == [T0 + timedelta(minutes=m) for m in (3, 4, 5)]
    assert [row["trigger"] for row in rows[2:]] == ["misfire"] * 3
    assert len(harness.dispatched) == 1  # queued one after another, in order


def test_overlap_skip_records_a_skipped_row(harness):
    harness.engine.control.add_job({"name": "slow", "service": "api.hello", "every": "1m"}, T0)
    harness.engine.tick(T0)
    harness.engine.tick(T0 + timedelta(minutes=1))  # the first run has not finished
    harness.engine.results.flush()
    assert [row["status"] for row in harness.rows("slow")] == ["running", "skipped"]


def test_execute_runs_a_paused_job_without_changing_its_schedule(harness):
    harness.engine.control.add_job({"name": "hello", "service": "api.hello", "every": "1h"}, T0)
    harness.engine.control.pause("hello", "until Monday", T0)
    run_id = harness.engine.ondemand.execute("hello", "manual", T0)
    assert harness.dispatched[-1].run_id == run_id
    assert harness.engine.tick(T0 + timedelta(hours=3)) == 0
    record = harness.engine.control.job_record("hello")
    assert record["active"] is False and record["note"] == "until Monday"


def test_resume_skips_the_fires_that_fell_in_the_pause(harness):
    harness.engine.control.add_job({"name": "hello", "service": "api.hello", "every": "1m"}, T0)
    harness.engine.control.pause("hello", "", T0)
    harness.engine.control.resume("hello", T0 + timedelta(minutes=5, seconds=1))
    assert harness.engine.jobs["hello"].state.next_fire == T0 + timedelta(minutes=6)


def test_unknown_service_and_job_are_refused_with_the_names_that_exist(harness):
    with pytest.raises(ServiceNotFound, match=r"Did you mean 'api.hello'\?"):
        harness.engine.control.add_job({"name": "x", "service": "api.helo", "every": "1m"}, T0)
    assert harness.engine.jobs == {}
    with pytest.raises(JobNotFound, match="No job named 'nope'"):
        harness.engine.control.pause("nope", "", T0)


def test_update_changes_the_schedule_and_keeps_the_fire_count(harness):
    harness.engine.control.add_job({"name": "hello", "service": "api.hello", "every": "1m"}, T0)
    harness.engine.tick(T0)
    harness.engine.control.update_job("hello", {"every": "10m"}, T0 + timedelta(seconds=30))
    job = harness.engine.jobs["hello"]
    assert job.spec.every == 600 and job.state.fires == 1
    assert job.state.next_fire == T0 + timedelta(minutes=10)


def test_preview_lists_the_next_fire_times_and_a_reading(harness):
    preview = harness.engine.reader.preview(T0, cron="0 9 * * mon", tz="Europe/Warsaw", count=2)
    assert preview["times"] == [datetime(2026, 11, 30, 8, tzinfo=UTC), datetime(2026, 12, 7, 8, tzinfo=UTC)]
    assert preview["description"] == "At 09:00 on Monday (Europe/Warsaw)"


def test_a_job_deleted_while_its_claimed_fire_waits_for_the_run_before_never_starts_it(harness):
    harness.engine.claim_ahead = timedelta(minutes=3)  # two fires claimed: one held by a worker, one waiting
    harness.engine.control.add_job(
        {"name": "j", "service": "api.hello", "every": "1m", "start": "2026-11-24 12:01"}, T0
    )
    harness.engine.tick(T0)
    harness.engine.tick(T0)
    (held,) = harness.dispatched
    (waiting_id,) = harness.engine.inflight.waiting_ahead["j"]
    harness.engine.control.delete("j")  # takes back the held run; its end must not hand over the waiting one
    assert [m.run_id for m in harness.dispatched] == []
    harness.engine.tick(T0 + timedelta(minutes=2))
    harness.engine.results.flush()
    runs = [dict(zip(RUN_FIELDS, row, strict=True)) for row in harness.engine.store.runs()]
    statuses = {run["run_id"]: run["status"] for run in runs}
    assert statuses == {held.run_id: "skipped", waiting_id: "skipped"}


def test_a_job_of_a_notebook_is_scheduled_even_when_booting_its_kernel_ahead_fails(tmp_path, caplog):
    import nbformat

    def warm(service: str) -> None:
        raise BrokenPipeError("the worker is gone")

    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}})
    notebook.cells.append(nbformat.v4.new_code_cell("print(1)"))
    engine = Engine(store=MemoryStore(), hooks=Hooks(dispatch=lambda message: None, warm=warm), runner_id="test:1")
    engine.load(T0)
    engine.catalog.deploy([{"source": nbformat.writes(notebook), "origin": str(tmp_path / "report.ipynb")}], T0)
    record = engine.control.add_job({"name": "daily", "service": "report", "every": "1d"}, T0)
    assert record["name"] == "daily" and "daily" in engine.jobs
    assert "booting a kernel ahead for report failed" in caplog.text


def test_a_job_whose_runs_all_ended_keeps_no_list_of_runs_in_progress():
    """100,000 jobs that each ran once must not leave 100,000 empty lists behind (~8 MB)."""
    from nbsched.runner.inflight import ActiveRun, InFlight

    inflight = InFlight()
    for run_id in (1, 2):
        inflight.start(ActiveRun(run_id, "j", "s", "schedule", 1, datetime.now(UTC), message=None))
    assert inflight.busy("j") == [1, 2]
    assert inflight.leave_job("j", 1) == [2]
    assert inflight.leave_job("j", 2) == [] and inflight.busy("j") == []
    assert "j" not in inflight.running_by_job


def test_job_stats_keep_one_copy_of_each_status_text():
    """Each run's status comes decoded from a worker's message as text of its own; a job's figures keep a
    shared copy, not one per job."""
    from nbsched.runner.control import JobStats

    first, second = JobStats(), JobStats(last_status="".join(["succ", "eeded"]))
    first.last_status = "".join(["succe", "eded"])
    assert first.last_status is second.last_status == "succeeded"
    assert JobStats(3, None, "ok") == JobStats(3, None, "ok") != JobStats(2, None, "ok")
