"""Several real runner processes sharing one PostgreSQL store: exactly-once fires, failover and fencing.

Each runner has a home of its own (its socket, pid file and log) and the same ``NBSCHED_STORE``. Jobs are
made through the first runner and reach the others by announcement. The checks read history from the
store itself, so they hold whatever any one runner believes.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import HELLO_SERVICE, alive, stop_runner, wait_until

import nbsched
from nbsched import config
from nbsched.errors import StoreError
from nbsched.model.runs import RUN_FIELDS
from nbsched.store import open_store

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


class Fleet:
    """N runners on one shared store, each in a temp home of its own."""

    def __init__(self, url: str, count: int, monkeypatch):
        monkeypatch.setenv("NBSCHED_STORE", url)
        monkeypatch.delenv("NBSCHED_TIMEZONE", raising=False)
        self.url = url
        self.homes = [Path(tempfile.mkdtemp(prefix="nbs-")) for _ in range(count)]
        self.clients = []
        for home in self.homes:
            monkeypatch.setenv("NBSCHED_HOME", str(home))
            self.clients.append(nbsched.connect(home=home))
        self.pids = [int((home / "runner.pid").read_text()) for home in self.homes]
        self.names = [client.ping()["runner"] for client in self.clients]

    def close(self) -> None:
        for client in self.clients:
            client.close()
        for home in self.homes:
            stop_runner(home)
            shutil.rmtree(home, ignore_errors=True)

    def runs(self) -> list[dict]:
        store = open_store(self.url)
        try:
            return [dict(zip(RUN_FIELDS, row, strict=True)) for row in store.runs()]
        finally:
            store.close()

    def log(self, index: int) -> str:
        return (self.homes[index] / "runner.log").read_text(errors="replace")


@pytest.fixture
def fleet(pg_url, monkeypatch):
    made: list[Fleet] = []

    def make(count: int) -> Fleet:
        made.append(Fleet(pg_url, count, monkeypatch))
        return made[-1]

    yield make
    for one in made:
        one.close()


def schedule_every_second(fleet: Fleet, jobs: int, service: str = "api.hello", **options) -> datetime:
    """``jobs`` jobs every second from the next whole second after a short wait; return the first fire."""
    first = datetime.fromtimestamp(math.ceil(time.time()) + 3, UTC)
    fleet.clients[0].deploy(str(HELLO_SERVICE))
    for i in range(jobs):
        fleet.clients[0].schedule(service, name=f"j{i:02d}", every="1s", start=first.isoformat(), **options)
    for client in fleet.clients[1:]:
        wait_until(lambda client=client: len(client.call("jobs")) == jobs, timeout=10, what="jobs announced")
    return first


def schedule_runs(runs: list[dict]) -> list[dict]:
    return [run for run in runs if run["trigger"] in ("schedule", "misfire") and run["job"]]


def base(runner: str | None) -> str:
    return (runner or "").partition("#")[0]


def test_three_runners_fire_each_once_and_survive_a_sigkill(fleet):
    fleet = fleet(3)
    first = schedule_every_second(fleet, jobs=30)
    end = first + timedelta(seconds=20)
    wait_until(lambda: datetime.now(UTC) > first + timedelta(seconds=10), timeout=30, what="half-way")
    killed = fleet.pids[1]
    killed_at = datetime.now(UTC)
    os.kill(killed, signal.SIGKILL)
    wait_until(lambda: not alive(killed), timeout=10, what="the killed runner gone")
    wait_until(lambda: datetime.now(UTC) > end + timedelta(seconds=config.LEASE_SECONDS + 2), timeout=40, what="end")
    for i in range(30):
        fleet.clients[0].pause(f"j{i:02d}")
    time.sleep(1.5)

    runs = schedule_runs(fleet.runs())
    keys = Counter((run["job"], run["scheduled_at"]) for run in runs)
    assert [key for key, count in keys.items() if count > 1] == []  # zero duplicates
    for i in range(30):
        fired = {run["scheduled_at"] for run in runs if run["job"] == f"j{i:02d}"}
        grid = {first + timedelta(seconds=s) for s in range(21)}
        assert grid <= fired, f"j{i:02d} lost fires {sorted(grid - fired)}"  # zero lost, the gap included
    by_runner = Counter(base(run["runner"]) for run in runs)
    assert len(by_runner) == 3 and min(by_runner.values()) >= 30, by_runner  # the fires spread, over all three
    assert [run for run in runs if run["status"] == "running"] == []
    dead = [run for run in runs if base(run["runner"]) == fleet.names[1]]
    in_flight = [run for run in dead if run["status"] not in ("ok", "skipped")]
    assert all(run["status"] == "interrupted" for run in in_flight), Counter(run["status"] for run in in_flight)
    after = [run for run in runs if run["scheduled_at"] > killed_at + timedelta(seconds=1)]
    assert not [run for run in after if base(run["runner"]) == fleet.names[1]]
    assert f"took over runner(s) {fleet.names[1]}" in fleet.log(0) + fleet.log(2)


MARK = """
from nbsched import Service


class Mark(Service):
    name = "test.mark"

    def handle(self):
        with open(self.request.payload["path"], "a") as marks:
            marks.write(self.cid + "\\n")
"""


def test_a_runner_frozen_past_its_lease_records_nothing_over_its_successor_and_rejoins(fleet, tmp_path):
    fleet = fleet(2)
    marks = tmp_path / "marks.txt"
    marks.touch()
    fleet.clients[0].deploy(MARK)
    first = schedule_every_second(fleet, jobs=6, service="test.mark", extra={"path": str(marks)})
    wait_until(lambda: datetime.now(UTC) > first + timedelta(seconds=3), timeout=20, what="firing")
    frozen = fleet.pids[0]
    os.kill(frozen, signal.SIGSTOP)
    try:
        taken = wait_until(
            lambda: f"took over runner(s) {fleet.names[0]}" in fleet.log(1), timeout=20, what="the take-over"
        )
        assert taken
        snapshot = {run["run_id"]: run for run in fleet.runs() if base(run["runner"]) == fleet.names[0]}
    finally:
        os.kill(frozen, signal.SIGCONT)
    wait_until(lambda: "lost its lease" in fleet.log(0), timeout=20, what="the frozen runner noticing")
    rejoined = f"{fleet.names[0]}#2"

    def invoked_there() -> dict | None:  # through the rejoined runner: it records runs again, under its new lease
        try:
            run_id = fleet.clients[0].invoke("test.mark", {"path": str(marks)})
        except StoreError:
            return None  # not re-leased yet
        return fleet.clients[0].wait(run_id, timeout=20)

    record = wait_until(invoked_there, timeout=20, interval=0.2, what="a run through the rejoined runner")
    assert (record["runner"], record["status"]) == (rejoined, "ok")
    time.sleep(2)
    fleet.clients[1].call("pause", name="j00", note="")
    runs = fleet.runs()
    now = {run["run_id"]: run for run in runs}
    changed = [
        (run_id, before["status"], now[run_id]["status"])
        for run_id, before in snapshot.items()
        if before["status"] != "running" and now[run_id]["status"] != before["status"]
    ]
    assert changed == []  # nothing recorded over what the successor recorded
    keys = Counter((run["job"], run["scheduled_at"]) for run in schedule_runs(runs))
    assert [key for key, count in keys.items() if count > 1] == []
    executed = Counter(marks.read_text().split())
    assert [cid for cid, count in executed.items() if count > 1] == []  # no run executed twice
    assert {run["cid"] for run in runs if run["status"] == "ok"} <= set(executed)
    assert alive(frozen)


def test_a_change_made_through_one_runner_reaches_the_other_at_once(fleet):
    fleet = fleet(2)
    fleet.clients[0].deploy(str(HELLO_SERVICE))
    wait_until(lambda: "api.hello" in {s["name"] for s in fleet.clients[1].call("services")}, timeout=5, what="deploy")
    fleet.clients[0].schedule("api.hello", name="later", every="1h")
    wait_until(lambda: [j["name"] for j in fleet.clients[1].call("jobs")] == ["later"], timeout=5, what="new job")
    fleet.clients[0].pause("later")
    wait_until(lambda: not fleet.clients[1].call("jobs")[0]["active"], timeout=5, what="pause")
    fleet.clients[0].delete("later")
    wait_until(lambda: fleet.clients[1].call("jobs") == [], timeout=5, what="delete")
    run_id = fleet.clients[1].invoke("api.hello", {"who": "there"})
    assert fleet.clients[0].wait(run_id)["status"] == "ok"  # any runner answers for any run
