"""Faults never lose a result and never silently stop a job (issue 14, rows 1, 2, 3, 9 and 10).

Text that is not UTF-8 in a run's output, a store that cannot be written (locked by another
process, disk full, an immutable file), a pause or update inside the claim-ahead window, a restart
while a retry waits, and the store's file deleted under the runner. Engine-level tests drive
``tick(now)`` with explicit datetimes on a real SQLite file (the store lock is a real second
connection); the rest run a real detached runner and break its store for real.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import HELLO_SERVICE, run_cli, stop_runner, utc, wait_until

import nbsched
from nbsched.errors import StoreGone
from nbsched.model.runs import RUN_FIELDS
from nbsched.runner.engine import Engine, Hooks
from nbsched.runner.outage import STORE_RETRY_SECONDS
from nbsched.store import RunQuery, StoredJob
from nbsched.store.sqlite import SQLiteStore
from nbsched.worker.pipe import Result, RunMessage

#: Services for these tests: one lists a folder (as a data integration would), one counts its calls.
SOURCE = """
import os, time
from pathlib import Path
from nbsched import Service


class Listing(Service):
    name = "test.listing"

    def handle(self):
        names = ", ".join(sorted(os.listdir(self.request.payload["folder"])))
        print("found", names)
        self.response.payload = names


class Counter(Service):
    name = "test.counter"

    def handle(self):
        how = self.request.payload if isinstance(self.request.payload, dict) else {}
        calls = 0
        if how.get("file"):
            path = Path(how["file"])
            with path.open("a") as handle:
                handle.write("x\\n")
            calls = len(path.read_text().split())
        if how.get("sleep") and how.get("sleep_on_call") in (None, calls):
            time.sleep(float(how["sleep"]))
        if how.get("fail"):
            raise RuntimeError(f"failing on purpose, call {calls}")
        self.response.payload = {"calls": calls}
"""
T0 = utc(2026, 3, 2, 12, 0)
#: A file name in Latin-1, as ``os.listdir`` returns it on a UTF-8 system: with a lone surrogate.
LATIN1_NAME = os.fsdecode(b"caf\xe9.csv")


# -- an engine on a real SQLite file, driven by explicit times --------------------------------
class Harness:
    """An Engine whose dispatched runs, timers and clock belong to the test; a run held by a worker
    for later is given back on cancel, as the pool does."""

    def __init__(self, path: Path):
        self.path = path
        self.now = T0
        self._boot()
        self.engine.catalog.deploy([{"source": SOURCE, "origin": "<string>"}], T0)

    def _boot(self) -> None:
        self.dispatched: list[RunMessage] = []
        self.timers: list[tuple[float, object]] = []
        self.store = SQLiteStore(self.path, busy_timeout=0.05)
        hooks = Hooks(
            dispatch=self.dispatched.append,
            cancel=self._cancel,
            call_later=lambda delay, fn: self.timers.append((delay, fn)),
            clock=lambda: self.now,
        )
        self.engine = Engine(store=self.store, hooks=hooks, runner_id="test:1")
        self.engine.load(self.now)

    def _cancel(self, run_id: int, error: str) -> bool:
        held = [message for message in self.dispatched if message.run_id == run_id]
        if not held:
            return False
        self.dispatched.remove(held[0])
        self.engine.results.on_result(Result(run_id, "skipped", error, finished_at=self.now.timestamp()))
        return True

    def restart(self, now: datetime) -> None:
        """Stop this engine as a runner stops (its results written) and load a new one on the same file."""
        assert self.engine.results.flush()
        self.store.close()
        self.now = now
        self._boot()

    def tick(self, now: datetime) -> int:
        self.now = now
        return self.engine.tick(now)

    def finish(self, run_id: int, status: str = "ok", **fields) -> None:
        moment = self.now.timestamp()
        self.engine.results.on_result(Result(run_id, status, started_at=moment, finished_at=moment, **fields))

    def finish_all(self, status: str = "ok") -> None:
        for message in list(self.dispatched):
            if message.run_id in self.engine.inflight.active:
                self.finish(message.run_id, status)
        self.dispatched.clear()

    def run_timers(self) -> list[float]:
        """Fire the timers set so far (the clock does not move); return their delays."""
        timers, self.timers = self.timers, []
        for _, fn in timers:
            fn()
        return [delay for delay, _ in timers]

    def rows(self, **filters) -> list[dict]:
        self.engine.results.flush()
        return [dict(zip(RUN_FIELDS, row, strict=True)) for row in reversed(self.store.runs(RunQuery(**filters)))]

    def summary(self, job: str) -> list[tuple]:
        return [(r["trigger"], r["status"], r["scheduled_at"]) for r in self.rows(job=job)]


@pytest.fixture
def harness(tmp_path) -> Harness:
    h = Harness(tmp_path / "nbsched.db")
    yield h
    h.store.close()


@contextlib.contextmanager
def locked(path: Path):
    """Another connection holding the store's write lock (``BEGIN IMMEDIATE``) until the block ends."""
    other = sqlite3.connect(path, timeout=30, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


# -- row 1: text that is not UTF-8; a store error on flush -------------------------------------
def test_a_lone_surrogate_in_output_and_logs_is_stored_escaped_and_the_rest_of_the_batch_too(harness):
    listing = harness.engine.ondemand.invoke("test.listing", {"folder": "/data"}, "invoke", T0)
    other = harness.engine.ondemand.invoke("test.counter", None, "invoke", T0)
    harness.finish(listing, output=f"{LATIN1_NAME}, b.csv", logs=f"found {LATIN1_NAME}, b.csv")
    harness.finish(other, output="plain")
    assert harness.engine.results.flush() is True
    stored = harness.store.run(listing)
    assert (stored["status"], stored["output"], stored["logs"]) == (
        "ok",
        "caf\\xe9.csv, b.csv",
        "found caf\\xe9.csv, b.csv",
    )
    assert (harness.store.run(other)["status"], harness.store.run(other)["output"]) == ("ok", "plain")
    assert harness.engine.health.status() is None


def test_a_store_error_on_flush_keeps_the_results_and_writes_them_once_the_store_works(harness):
    run_ids = [harness.engine.ondemand.invoke("test.counter", None, "invoke", T0) for _ in range(3)]
    with locked(harness.path):
        for run_id in run_ids:
            harness.finish(run_id)
        assert harness.engine.results.flush() is False
        trouble = harness.engine.health.status()
        assert "database is locked" in trouble["error"]
        assert (trouble["since"], trouble["gone"]) == (T0, False)
        assert harness.engine.results.flush(T0) is False  # not tried again before its retry time
    assert [harness.store.run(run_id)["status"] for run_id in run_ids] == ["running"] * 3
    harness.now = T0 + timedelta(seconds=STORE_RETRY_SECONDS)
    assert harness.engine.results.flush(harness.now) is True
    assert [harness.store.run(run_id)["status"] for run_id in run_ids] == ["ok"] * 3
    assert harness.engine.health.status() is None


# -- row 2: a store error while claiming ---------------------------------------------------------
@pytest.mark.parametrize(
    ("misfire", "after_the_lock"),
    [
        ("skip", [("misfire", "missed", T0 + timedelta(seconds=10))]),
        ("once", [("misfire", "missed", T0 + timedelta(seconds=10)), ("misfire", "ok", T0 + timedelta(seconds=20))]),
    ],
)
def test_fires_due_while_the_store_is_locked_stay_due_and_those_missed_follow_the_misfire_policy(
    harness, misfire, after_the_lock
):
    harness.engine.control.add_job({"name": "j", "service": "test.counter", "every": "10s", "misfire": misfire}, T0)
    harness.tick(T0)
    harness.finish_all()
    with locked(harness.path):
        assert harness.tick(T0 + timedelta(seconds=10)) == 0
        assert harness.engine.schedule.get("j") == T0 + timedelta(seconds=10)  # still due, not dropped
        assert harness.engine.next_due() == T0 + timedelta(seconds=10 + STORE_RETRY_SECONDS)
        assert harness.tick(T0 + timedelta(seconds=20)) == 0
        assert "database is locked" in harness.engine.health.status()["error"]
    harness.tick(T0 + timedelta(seconds=25))
    harness.finish_all()
    assert harness.engine.health.status() is None
    assert harness.engine.jobs["j"].state.next_fire == T0 + timedelta(seconds=30)
    assert harness.tick(T0 + timedelta(seconds=30)) == 1
    harness.finish_all()
    rows = harness.summary("j")
    assert rows == [
        ("schedule", "ok", T0),
        *after_the_lock,
        ("schedule", "ok", T0 + timedelta(seconds=30)),
    ]
    missed = harness.rows(job="j", status="missed")[0]["error"]
    assert missed.startswith(f"Missed {3 - len(after_the_lock)} fire(s) from 2026-03-02T12:00:10+00:00 while the store")


# -- row 3: pause + resume, or update, inside the claim-ahead window -----------------------------
def test_pause_and_resume_inside_the_claim_window_keep_the_claimed_fire_and_the_job_goes_on_after_it(harness):
    harness.engine.control.add_job(
        {"name": "j", "service": "test.counter", "every": "1m", "start": "2026-03-02 12:01"}, T0
    )
    fire = T0 + timedelta(minutes=1)
    harness.tick(fire - timedelta(milliseconds=300))  # claimed, and handed to a worker to start at its time
    (held,) = harness.dispatched
    harness.now = fire - timedelta(milliseconds=200)
    harness.engine.control.pause("j", "", harness.now)
    assert harness.dispatched == []  # taken back from the worker
    harness.now = fire - timedelta(milliseconds=100)
    harness.engine.control.resume("j", harness.now)
    assert harness.engine.jobs["j"].state.next_fire == fire + timedelta(minutes=1)
    assert [message.run_id for message in harness.dispatched] == [held.run_id]  # the claimed fire is kept
    harness.tick(fire)
    harness.finish_all()
    assert harness.tick(fire + timedelta(minutes=1)) == 1
    harness.finish_all()
    harness.tick(fire + timedelta(minutes=1, seconds=30))
    assert harness.summary("j") == [("schedule", "ok", fire), ("schedule", "ok", fire + timedelta(minutes=1))]


@pytest.mark.parametrize("timeout", [None, "30s"], ids=["held-by-a-worker", "waiting-in-the-runner"])
def test_a_one_time_job_paused_and_resumed_after_its_fire_was_claimed_runs_once(harness, timeout):
    at = T0 + timedelta(minutes=1)
    job = {"name": "once", "service": "test.counter", "at": "2026-03-02 12:01", "timeout": timeout}
    harness.engine.control.add_job({key: value for key, value in job.items() if value is not None}, T0)
    harness.tick(at - timedelta(milliseconds=500))
    harness.now = at - timedelta(milliseconds=400)
    harness.engine.control.pause("once", "", harness.now)
    harness.now = at - timedelta(milliseconds=300)
    harness.engine.control.resume("once", harness.now)
    harness.tick(at)
    harness.finish_all()
    for later in (timedelta(seconds=1), timedelta(seconds=61), timedelta(hours=1)):
        assert harness.tick(at + later) == 0
    assert harness.summary("once") == [("schedule", "ok", at)]
    assert harness.engine.jobs["once"].state.next_fire is None


def test_a_job_paused_inside_the_claim_window_and_still_paused_at_its_time_skips_that_fire_only(harness):
    harness.engine.control.add_job(
        {"name": "j", "service": "test.counter", "every": "1m", "start": "2026-03-02 12:01"}, T0
    )
    fire = T0 + timedelta(minutes=1)
    harness.tick(fire - timedelta(milliseconds=300))
    harness.now = fire - timedelta(milliseconds=200)
    harness.engine.control.pause("j", "", harness.now)
    harness.tick(fire)
    harness.now = fire + timedelta(seconds=10)
    harness.engine.control.resume("j", harness.now)
    assert harness.tick(fire + timedelta(minutes=1)) == 1
    harness.finish_all()
    assert harness.summary("j") == [("schedule", "skipped", fire), ("schedule", "ok", fire + timedelta(minutes=1))]


def test_an_update_inside_the_claim_window_does_not_point_the_job_at_its_claimed_fire(harness):
    harness.engine.control.add_job(
        {"name": "j", "service": "test.counter", "every": "1m", "start": "2026-03-02 12:01"}, T0
    )
    fire = T0 + timedelta(minutes=1)
    harness.tick(fire - timedelta(milliseconds=500))
    harness.now = fire - timedelta(milliseconds=400)
    harness.engine.control.update_job("j", {"every": "1m", "extra": '{"v": 2}'}, harness.now)
    assert harness.engine.jobs["j"].state.next_fire == fire + timedelta(minutes=1)
    harness.tick(fire)
    harness.finish_all()
    assert harness.tick(fire + timedelta(minutes=1)) == 1
    harness.finish_all()
    harness.tick(fire + timedelta(minutes=1, seconds=30))
    assert harness.summary("j") == [("schedule", "ok", fire), ("schedule", "ok", fire + timedelta(minutes=1))]


def test_a_fire_claimed_before_is_stepped_over_once_instead_of_claimed_on_every_tick(harness):
    harness.engine.control.add_job({"name": "j", "service": "test.counter", "every": "1m"}, T0)
    harness.tick(T0)
    harness.finish_all()
    # The job pointed back at its claimed fire, as a store edited by hand (or an older nbsched) leaves it.
    job = harness.engine.jobs["j"]
    stale = StoredJob(job.uid, job.spec, replace(job.state, next_fire=T0))
    harness.store.save_job(stale)
    harness.engine.jobs["j"] = stale
    harness.engine.schedule.set("j", T0)
    assert harness.tick(T0 + timedelta(seconds=1)) == 0
    assert harness.engine.jobs["j"].state.next_fire == T0 + timedelta(minutes=1)
    assert harness.store.job("j").state.next_fire == T0 + timedelta(minutes=1)
    assert harness.tick(T0 + timedelta(minutes=1)) == 1
    harness.finish_all()
    assert harness.summary("j") == [("schedule", "ok", T0), ("schedule", "ok", T0 + timedelta(minutes=1))]


# -- row 9: a restart while a retry waits --------------------------------------------------------
def test_a_retry_waiting_at_a_restart_is_stored_and_runs_after_it(harness):
    harness.engine.control.add_job({"name": "flaky", "service": "test.counter", "every": "1h", "retries": 3}, T0)
    harness.tick(T0)
    harness.finish_all("error")  # attempt 1
    harness.now = T0 + timedelta(seconds=1)
    assert harness.run_timers() == [1.0]
    harness.finish_all("error")  # attempt 2; attempt 3 is due 2 s later
    harness.restart(T0 + timedelta(seconds=2))
    assert [retry.attempt + 1 for retry in harness.store.pending_retries()] == [3]
    assert harness.run_timers() == [1.0]  # the stored retry, scheduled again for its time
    assert harness.store.pending_retries() == []  # started: a further restart does not run it again
    harness.finish_all("error")  # attempt 3
    assert harness.run_timers() == [4.0]
    harness.finish_all("error")  # attempt 4, the last
    assert harness.run_timers() == []
    rows = harness.rows(job="flaky")
    assert [(r["trigger"], r["attempt"], r["status"]) for r in rows] == [
        ("schedule", 1, "error"),
        ("retry", 2, "error"),
        ("retry", 3, "error"),
        ("retry", 4, "error"),
    ]
    assert {r["scheduled_at"] for r in rows} == {T0}


def test_stopping_the_engine_starts_no_retry_and_leaves_it_stored(harness):
    harness.engine.control.add_job({"name": "flaky", "service": "test.counter", "every": "1h", "retries": 1}, T0)
    harness.tick(T0)
    harness.finish_all("error")
    assert harness.engine.results.flush()
    harness.engine.stop()
    harness.run_timers()
    assert harness.dispatched == [] and len(harness.store.pending_retries()) == 1
    assert harness.tick(T0 + timedelta(hours=1)) == 0


# -- row 10: the store's file deleted under the engine -------------------------------------------
def test_a_deleted_store_file_stops_firing_and_every_change_is_refused_with_the_reason(harness):
    harness.engine.control.add_job({"name": "j", "service": "test.counter", "every": "10s"}, T0)
    harness.tick(T0)
    harness.finish_all()
    harness.path.unlink()
    assert harness.tick(T0 + timedelta(seconds=10)) == 0
    trouble = harness.engine.health.status()
    assert trouble["gone"] is True and "was deleted" in trouble["error"]
    assert harness.engine.next_due() is None
    assert harness.tick(T0 + timedelta(seconds=20)) == 0
    assert harness.dispatched == []
    with pytest.raises(StoreGone, match=r"was deleted.*a restarted runner starts with a new, empty store"):
        harness.engine.control.add_job({"name": "k", "service": "test.counter", "every": "10s"}, T0)
    with pytest.raises(StoreGone):
        harness.engine.ondemand.invoke("test.counter", None, "invoke", T0)
    with pytest.raises(StoreGone):
        harness.engine.control.pause("j", "", T0)
    assert set(harness.engine.jobs) == {"j"} and harness.engine.jobs["j"].spec.active
    assert not harness.path.exists()  # nothing made a new file there


# -- a real runner ------------------------------------------------------------------------------
def _rows(client: nbsched.Client, **filters) -> list[dict]:
    return client.history(**filters).sort_values("run_id").to_dict("records")


def _log(home: Path) -> str:
    return (home / "runner.log").read_text(errors="replace")


@pytest.fixture
def runner(home) -> nbsched.Client:
    client = nbsched.connect()
    client.deploy(SOURCE)
    client.deploy(str(HELLO_SERVICE))
    yield client
    client.close()


@pytest.mark.slow
def test_a_runner_stores_output_and_logs_with_a_file_name_that_is_not_utf8(runner, home, tmp_path):
    folder = tmp_path / "drop"
    folder.mkdir()
    os.close(os.open(os.fsencode(folder) + b"/caf\xe9.csv", os.O_CREAT | os.O_WRONLY, 0o600))
    (folder / "b.csv").touch()
    listing = runner.invoke("test.listing", extra={"folder": str(folder)})
    other = runner.invoke("api.hello")
    record = runner.wait(listing, timeout=30)
    assert (record["status"], record["output"]) == ("ok", "b.csv, caf\\xe9.csv")
    assert "found b.csv, caf\\xe9.csv" in record["logs"]
    assert runner.wait(other, timeout=30)["status"] == "ok"
    runner.close()
    stop_runner(home)
    log = _log(home)
    assert "stopped" in log.splitlines()[-1]
    assert "UnicodeEncodeError" not in log
    assert "the store failed" not in log and "could not be written" not in log


def _fill(path: Path) -> None:
    """Write to ``path`` until its file system is full."""
    block = b"\0" * 65536
    with path.open("wb", buffering=0) as handle, contextlib.suppress(OSError):
        while True:
            handle.write(block)


def _chattr(flag: str, *paths: Path) -> None:
    subprocess.run(["chattr", flag, *map(str, paths)], check=True)


class Lock:
    """Another process's connection holding the store's write lock."""

    def __init__(self, home: Path):
        self.db = home / "nbsched.db"
        self.connection = None

    def __enter__(self):
        self.connection = sqlite3.connect(self.db, timeout=30, isolation_level=None)
        self.connection.execute("BEGIN IMMEDIATE")

    def __exit__(self, *exc):
        self.connection.execute("ROLLBACK")
        self.connection.close()


class DiskFull:
    """The home's small tmpfs filled up by another file."""

    def __init__(self, home: Path):
        self.filler = home / "filler"

    def __enter__(self):
        _fill(self.filler)

    def __exit__(self, *exc):
        self.filler.unlink()


class Immutable:
    """``chattr +i`` on the store's files."""

    def __init__(self, home: Path):
        self.files = [home / "nbsched.db", home / "nbsched.db-wal"]

    def __enter__(self):
        _chattr("+i", *self.files)

    def __exit__(self, *exc):
        _chattr("-i", *self.files)


@pytest.fixture
def small_home(home):
    """The home on a tmpfs of 3 MB, mounted before the runner starts."""
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m,mode=0700", "tmpfs", str(home)], check=True)
    yield home
    stop_runner(home)
    subprocess.run(["umount", str(home)], check=False)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fault", "error"),
    [(Lock, "database is locked"), (DiskFull, "database or disk is full"), (Immutable, "disk I/O error")],
    ids=["another-process-holds-the-lock", "disk-full", "chattr+i"],
)
def test_a_store_that_fails_for_a_while_loses_no_result_and_firing_resumes_after_it(request, fault, error, tmp_path):
    home = request.getfixturevalue("small_home" if fault is DiskFull else "home")
    client = request.getfixturevalue("runner")
    client.schedule("api.hello", name="beat", every="1s")
    wait_until(lambda: len(_rows(client, job="beat", status="ok")) >= 2, timeout=30, what="the first fires")
    slow = client.invoke("test.counter", extra={"sleep": 3})
    with fault(home):
        started = time.monotonic()
        trouble = wait_until(lambda: client.ping()["store_error"], timeout=30, what="the store error in the status")
        assert error in trouble["error"] and trouble["gone"] is False
        failing_since = datetime.fromisoformat(trouble["since"])
        client.wait(slow, timeout=30)  # it ends while the store fails
        time.sleep(max(0.0, 6 - (time.monotonic() - started)))  # fires fall due meanwhile
    repaired = datetime.now(UTC)
    wait_until(lambda: client.ping()["store_error"] is None, timeout=30, what="the store to work again")
    after = wait_until(
        lambda: [r for r in _rows(client, job="beat", status="ok") if r["scheduled_at"] > repaired],
        timeout=30,
        what="a fire after the store works again",
    )
    assert after[0]["scheduled_at"] - repaired < timedelta(seconds=5)
    assert client.run(slow)["status"] == "ok"  # its result was kept, and written once the store worked
    rows = _rows(client, job="beat")
    missed = [r for r in rows if r["status"] == "missed"]
    assert len(missed) == 1 and "while the store could not be written (misfire=skip" in missed[0]["error"]
    # The fires that fell due while the store failed are that one row: none was run late, or skipped, one by one.
    # (A fire claimed ahead just before the failure, or less than a second late just after it, runs as usual.)
    during = [
        r for r in rows if failing_since + timedelta(seconds=1) < r["scheduled_at"] < repaired - timedelta(seconds=2.5)
    ]
    assert [r["status"] for r in during] in ([], ["missed"])
    assert not [r for r in rows if r["status"] == "running"]
    scheduled = [r["scheduled_at"] for r in rows if r["trigger"] == "schedule"]
    assert len(scheduled) == len(set(scheduled))
    assert error in _log(home)


@pytest.mark.slow
def test_a_retry_waiting_when_the_runner_stops_runs_after_the_restart(runner, home, tmp_path):
    calls = tmp_path / "calls"
    extra = {"file": str(calls), "fail": True, "sleep_on_call": 2, "sleep": 3}
    runner.schedule("test.counter", name="flaky", every="1h", retries=3, extra=extra)
    wait_until(
        lambda: [r for r in _rows(runner, job="flaky") if r["attempt"] == 2 and r["status"] == "running"],
        timeout=30,
        what="attempt 2 to run",
    )
    runner.close()
    stop_runner(home)  # SIGTERM: attempt 2 ends (an error) while the runner stops; attempt 3 waits for its time
    assert len(calls.read_text().split()) == 2
    after = nbsched.connect()
    try:
        rows = wait_until(
            lambda: (rows := _rows(after, job="flaky")) and len(rows) == 4 and rows[-1]["status"] == "error" and rows,
            timeout=60,
            what="attempts 3 and 4 after the restart",
        )
    finally:
        after.close()
    assert [(r["trigger"], r["attempt"], r["status"]) for r in rows] == [
        ("schedule", 1, "error"),
        ("retry", 2, "error"),
        ("retry", 3, "error"),
        ("retry", 4, "error"),
    ]
    assert rows[1]["runner"] != rows[2]["runner"]  # attempt 3 ran in the runner started after the stop
    assert len({r["scheduled_at"] for r in rows}) == 1


@pytest.mark.slow
def test_a_runner_whose_store_file_is_deleted_says_so_stops_firing_and_a_restart_starts_a_new_store(
    runner, home, tmp_path
):
    beats = tmp_path / "beats"
    runner.schedule("test.counter", name="beat", every="1s", extra={"file": str(beats)})
    wait_until(lambda: beats.exists() and len(beats.read_text().split()) >= 2, timeout=30, what="a few fires")
    (home / "nbsched.db").unlink()
    trouble = wait_until(lambda: runner.ping()["store_error"], timeout=15, what="the runner to notice")
    assert trouble["gone"] is True and "was deleted" in trouble["error"]
    status = run_cli("runner", "status", home=home)
    assert status.returncode == 0
    assert "STORE ERROR since" in status.stdout and "the store file is gone; restart the runner" in status.stdout
    with pytest.raises(StoreGone, match="a restarted runner starts with a new, empty store") as refused:
        runner.schedule("api.hello", name="new", every="1m")
    assert refused.value.__notes__ == ["Restart the runner: client.shutdown(), then nbsched.connect()."]
    with pytest.raises(StoreGone, match="was deleted"):
        runner.invoke("api.hello")
    count = len(beats.read_text().split())
    time.sleep(3)
    assert len(beats.read_text().split()) <= count + 1  # at most a run already handed to a worker
    assert "was deleted" in _log(home)
    runner.close()
    stop_runner(home)
    fresh = nbsched.connect()
    try:
        assert fresh.jobs().empty
        fresh.deploy(str(HELLO_SERVICE))
        fresh.schedule("api.hello", name="new", every="1m")
        assert list(fresh.jobs()["name"]) == ["new"]
        assert fresh.ping()["store_error"] is None
    finally:
        fresh.close()
