"""A minute of 200 jobs a second with faults injected in turn: afterwards every fire is accounted for.

The faults (issue 14, rows 1, 2, 4 and 6), each every few seconds, against one real runner:

* a service's output and logs hold a lone surrogate (a Latin-1 file name listed as text);
* another process holds the SQLite write lock for three seconds (claims and result writes fail);
* a job whose service forks a `multiprocessing.Pool` and hangs past its timeout;
* a runs-cache Arrow file truncated while the runner has it in use, then a full history read.

Afterwards: one row per ``(job, scheduled_at)``, none still ``running``, and for every job the
rows plus the fires its ``missed`` rows count cover every grid point from its start to its last fire.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import wait_until

import nbsched
from nbsched.store.sqlite import _RUN_COLUMNS, SQLiteStore

pytestmark = pytest.mark.slow

JOBS = 200
SOAK_SECONDS = 60
OLD_RUNS = 120_000  # finished runs already in the store, so the runs cache has files to map

SOAK_SOURCE = """
import time
from pathlib import Path

from nbsched import Service


class Tick(Service):
    name = "soak.tick"

    def handle(self):
        if Path(self.request.payload["mode"]).read_text() == "surrogate":
            listed = "caf" + bytes([0xE9]).decode("utf-8", "surrogateescape") + ".csv"  # as os.listdir gives it
            print("files:", listed)
            self.response.payload = listed
        else:
            self.response.payload = "ok"


class Hang(Service):
    name = "soak.hang"

    def handle(self):
        import multiprocessing

        pool = multiprocessing.Pool(1)
        pool.apply_async(time.sleep, (60,))
        time.sleep(60)
"""


def _seed_old_runs(db: Path, count: int) -> None:
    """Finished runs of a job long gone, written straight into the store file before the runner starts."""
    store = SQLiteStore(db)
    store.close()
    base = datetime(2026, 1, 1, tzinfo=UTC)
    columns = ", ".join(f'"{name}"' for name in _RUN_COLUMNS)
    values = {
        "job_uid": "old",
        "job": "old",
        "service": "soak.tick",
        "service_version": "0",
        "trigger": "schedule",
        "attempt": 1,
        "status": "ok",
        "delay_ms": 1.0,
        "duration_ms": 1.0,
        "output": "old",
        "logs": "",
        "runner": "seed:1",
    }

    def row(i: int) -> tuple:
        at = (base + timedelta(seconds=i)).isoformat()
        fields = {**values, "cid": f"old{i:021d}", "scheduled_at": at, "started_at": at, "finished_at": at}
        return tuple(fields.get(name) for name in _RUN_COLUMNS)

    with sqlite3.connect(db) as conn:
        conn.executemany(
            f"INSERT INTO runs ({columns}) VALUES ({', '.join('?' * len(_RUN_COLUMNS))})", map(row, range(count))
        )


def _hold_write_lock(db: Path, seconds: float) -> None:
    conn = sqlite3.connect(db, timeout=10, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        time.sleep(seconds)
        conn.execute("ROLLBACK")
    finally:
        conn.close()


def _truncate_a_cache_file(home: Path) -> bool:
    files = sorted((home / "nbsched.db.runs-cache").glob("*.arrow"))
    if not files:
        return False
    target = files[0]
    with open(target, "r+b") as handle:
        handle.truncate(target.stat().st_size // 2)
    return True


def _missed_count(error: str) -> int:
    match = re.search(r"Missed (?:at least )?(\d+) fire", error or "")
    assert match, error
    return int(match.group(1))


def test_a_minute_of_200_jobs_a_second_with_faults_accounts_for_every_fire(home, monkeypatch, tmp_path):
    monkeypatch.setenv("NBSCHED_WORKERS", "3")
    db = home / "nbsched.db"
    _seed_old_runs(db, OLD_RUNS)
    mode = tmp_path / "mode"
    mode.write_text("")
    client = nbsched.connect()
    client.timeout = 120
    faults: list[str] = []
    try:
        client.deploy(SOAK_SOURCE)
        assert len(client.history(job="old", limit=None)) == OLD_RUNS  # the long read that writes the cache files
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=4)
        for i in range(JOBS):
            client.schedule("soak.tick", name=f"tick{i:03d}", every="1s", start=start, extra={"mode": str(mode)})
        client.schedule("soak.hang", name="hang", every="5s", start=start, timeout="2s")
        deadline = time.monotonic() + SOAK_SECONDS
        turn = 0
        while time.monotonic() < deadline:
            time.sleep(2)
            fault = ("surrogate", "lock", "cache")[turn % 3]
            turn += 1
            if fault == "surrogate":
                mode.write_text("surrogate")
                time.sleep(2)
                mode.write_text("")
            elif fault == "lock":
                locker = threading.Thread(target=_hold_write_lock, args=(db, 3.0))
                locker.start()
                locker.join()
            elif _truncate_a_cache_file(home):
                assert len(client.history(job="old", limit=None)) == OLD_RUNS  # read while a file is damaged
            faults.append(fault)
        for name in [f"tick{i:03d}" for i in range(JOBS)] + ["hang"]:
            client.pause(name)
        wait_until(lambda: client.history(status="running").empty, timeout=60, interval=0.5, what="every run to finish")
        rows = client.history(limit=None)
        rows = rows[rows["job"] != "old"]
        old = client.history(job="old", limit=None)
        assert client.ping()["store_error"] is None
    finally:
        client.close()

    assert {"surrogate", "lock", "cache"} <= set(faults)
    assert len(old) == OLD_RUNS and set(old["output"]) == {"old"}
    assert not rows.duplicated(["job", "scheduled_at"]).any(), "a fire ran twice"
    assert "running" not in set(rows["status"])
    assert rows["output"].str.contains(r"caf\xe9.csv", regex=False).any(), "the surrogate output was stored"
    hang = rows[rows["job"] == "hang"]
    assert "timeout" in set(hang["status"])
    for name, group in rows[rows["job"] != "hang"].groupby("job"):
        missed = group[group["status"] == "missed"]
        covered = len(group) - len(missed) + sum(_missed_count(e) for e in missed["error"])
        first = group["scheduled_at"].min()
        last = max(
            [group["scheduled_at"].max()]
            + [
                at + timedelta(seconds=_missed_count(e) - 1)
                for at, e in zip(missed["scheduled_at"], missed["error"], strict=True)
            ]
        )
        assert first == start, f"{name}: its first fire has no row"
        assert covered == int((last - first).total_seconds()) + 1, f"{name}: a fire is not accounted for"
