"""Load: 50 clients at once (each its own connection) create, list and read history while 500 jobs
fire every second; every client gets its answers, every fire has its run, no 'database is locked'.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from conftest import wait_until

import nbsched

NOOP = """
from nbsched import Service


class Noop(Service):
    name = "noop"

    def handle(self):
        self.response.payload = "done"
"""
JOBS, FIRES, CLIENTS = 500, 5, 50


@pytest.mark.slow
def test_fifty_clients_while_five_hundred_jobs_fire(home, monkeypatch):
    monkeypatch.setenv("NBSCHED_WORKERS", "2")
    admin = nbsched.connect()
    admin.deploy(NOOP)
    start = (datetime.now(UTC) + timedelta(seconds=3)).replace(microsecond=0)
    for n in range(JOBS):
        admin.schedule(
            "noop", name=f"load-{n:03d}", every="1s", start=start.isoformat(), repeats=FIRES, overlap="queue_all"
        )
    stop = start + timedelta(seconds=FIRES)
    errors: list[str] = []
    answers = [0] * CLIENTS

    def user(number: int) -> None:
        try:
            client = nbsched.connect(autostart=False)
        except Exception as exc:
            errors.append(f"client {number}: {exc!r}")
            return
        k = 0
        try:
            while datetime.now(UTC) < stop + timedelta(seconds=1):
                client.schedule("noop", name=f"user-{number}-{k}", every="1h", start="in 1h")
                assert len(client.jobs()) >= JOBS
                client.history(limit=50)
                client.history(job=f"load-{number:03d}")
                k += 1
                answers[number] += 4
        except Exception as exc:
            errors.append(f"client {number}: {exc!r}")
        finally:
            client.close()

    threads = [threading.Thread(target=user, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors[:5]
    assert all(count >= 4 for count in answers), answers
    assert not any("locked" in line for line in (home / "runner.log").read_text().splitlines())

    def all_fired_and_done():
        rows = admin.history_rows(limit=100_000)
        history = [dict(zip(rows["columns"], row, strict=True)) for row in rows["rows"]]
        load = [r for r in history if (r["job"] or "").startswith("load-")]
        return len(load) == JOBS * FIRES and all(r["status"] != "running" for r in load) and load

    load = wait_until(all_fired_and_done, timeout=90, interval=0.5, what="every fire to have a finished run")
    by_job: dict[str, list[dict]] = {}
    for row in load:
        by_job.setdefault(row["job"], []).append(row)
    assert len(by_job) == JOBS
    for name, rows in by_job.items():
        assert sorted(r["scheduled_at"] for r in rows) == [
            (start + timedelta(seconds=k)).isoformat() for k in range(FIRES)
        ], name
        assert {r["status"] for r in rows} == {"ok"}, name  # overlap=queue_all: a fire that waits still runs
        assert admin.job(name)["fires"] == FIRES
    assert len(admin.jobs()) == JOBS + sum(count // 4 for count in answers)
    admin.close()
