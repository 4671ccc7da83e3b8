"""Scale: 100,000 jobs in one runner; creation rate, runner memory, listing times, fire decisions.

    python bench/scale.py [--jobs 100000] [--rpc-seconds 60]

1. Creates jobs one ``schedule`` RPC each (hourly interval jobs starting tomorrow, so none
   fires) for at most ``--rpc-seconds``; if that does not reach ``--jobs``, reports the rate,
   extrapolates, and inserts the rest straight into the SQLite store (setup only) before
   restarting the runner on it (the restart time is the load time of all jobs).
2. Runner RSS with all jobs loaded; ``jobs`` (all, and a page of 100 as ``nbsched jobs`` asks) and ``history``
   round trips (p50 ms).
3. A microbenchmark of ``nbsched.runner.schedule.Schedule`` with 1,000 / 10,000 / 100,000 entries:
   one fire decision = ``due(now)`` returning the earliest job + ``set`` of its next time.
Indicative figures: other work on this machine shares its cores.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

import _common


def create_by_rpc(client, jobs: int, budget_s: float, start_iso: str) -> tuple[int, float]:
    began = time.perf_counter()
    created = 0
    while created < jobs and time.perf_counter() - began < budget_s:
        client.call("schedule", service=_common.NOOP_SERVICE, name=f"s{created:06d}", every=3600, start=start_iso)
        created += 1
    return created, time.perf_counter() - began


def seed_store(db_path, first: int, jobs: int, start: datetime) -> float:
    """Insert jobs ``first`` .. ``jobs - 1`` straight into the SQLite file (runner stopped)."""
    import uuid

    from nbsched.model.jobs import JobSpec, JobState
    from nbsched.store import StoredJob
    from nbsched.store.sqlite import SQLiteStore, _job_row

    began = time.perf_counter()
    now = datetime.now(UTC)
    store = SQLiteStore(db_path)
    rows = []
    for i in range(first, jobs):
        spec = JobSpec.from_user(
            now=now, default_tz="UTC", name=f"s{i:06d}", service=_common.NOOP_SERVICE, every=3600, start=start
        )
        rows.append(_job_row(StoredJob(uuid.uuid4().hex, spec, JobState(next_fire=start, created_at=now))))
    with store._tx():
        store.db.executemany(
            "INSERT INTO jobs (name, uid, spec, fires, next_fire, last_fire, paused_note, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    store.close()
    return time.perf_counter() - began


def p50_ms(call, count: int) -> float:
    samples = []
    for _ in range(count):
        began = time.perf_counter()
        call()
        samples.append((time.perf_counter() - began) * 1000)
    return statistics.median(samples)


def schedule_microbench(size: int, decisions: int = 20_000) -> tuple[float, float]:
    """(µs per set of a new entry while filling, µs per fire decision) with ``size`` entries."""
    from nbsched.runner.schedule import Schedule

    schedule = Schedule()
    base = datetime(2030, 1, 1, tzinfo=UTC)
    rng = random.Random(7)
    offsets = [timedelta(seconds=rng.uniform(0, 3600)) for _ in range(size)]
    began = time.perf_counter()
    for i, offset in enumerate(offsets):
        schedule.set(f"s{i:06d}", base + offset)
    fill_us = (time.perf_counter() - began) / size * 1e6
    later = base + timedelta(hours=2)
    began = time.perf_counter()
    for _ in range(decisions):
        now = schedule.next_due()
        for name in schedule.due(now):
            schedule.set(name, later + timedelta(seconds=rng.uniform(0, 3600)))
    decide_us = (time.perf_counter() - began) / decisions * 1e6
    return fill_us, decide_us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--rpc-seconds", type=float, default=60.0, help="time budget for creating jobs by RPC")
    options = parser.parse_args()
    jobs = options.jobs
    start = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    runner = _common.Runner()
    home = runner.home
    with runner:
        runner.deploy_noop()
        rss_empty = sum(_common.ProcessFigures(runner.pid).rss())
        created, rpc_s = create_by_rpc(runner.client, jobs, options.rpc_seconds, start.isoformat())
        rate = created / rpc_s
        seeded_s = load_s = None
        if created < jobs:
            runner.stop()
            seeded_s = seed_store(home / "nbsched.db", created, jobs, start)
            began = time.perf_counter()
            runner.__enter__()  # restart on the same home: loads every job
            load_s = time.perf_counter() - began
        client = runner.client
        run_ids = {client.invoke(_common.NOOP_SERVICE) for _ in range(1000)}
        _common.wait_all_finished(client, run_ids)
        loaded = client.ping()["jobs"]
        rss_runner, rss_workers = _common.ProcessFigures(runner.pid).rss()
        jobs_raw = p50_ms(lambda: client.call("jobs"), 5)
        jobs_frame = p50_ms(client.jobs, 5)
        page_raw = p50_ms(lambda: client.call("jobs_page", limit=100), 21)  # what `nbsched jobs` asks
        page_frame = p50_ms(lambda: client.jobs(limit=100), 21)
        history_100 = p50_ms(lambda: client.history_rows(limit=100), 20)
        history_all = p50_ms(client.history, 5)
    micro = {size: schedule_microbench(size) for size in (1_000, 10_000, 100_000)}
    rpc_note = f"{created} jobs by RPC in {rpc_s:.1f} s = {rate:.0f} jobs/s"
    if created < jobs:
        rpc_note += (
            f"; {jobs} would take ~{jobs / rate:.0f} s by RPC; the other {jobs - created} were inserted straight "
            f"into SQLite ({seeded_s:.1f} s) and the runner restarted in {load_s:.1f} s (loads all jobs)"
        )
    print(f"creation: {rpc_note}")
    print(
        f"runner with {loaded} jobs: RSS runner {rss_runner:.0f} MB (empty {rss_empty:.0f} MB incl. workers), "
        f"workers {rss_workers:.0f} MB"
    )
    print(f"jobs, all of them: p50 {jobs_raw:.0f} ms raw RPC, {jobs_frame:.0f} ms as DataFrame (client.jobs())")
    print(
        f"jobs, a page of 100 by name: p50 {page_raw:.1f} ms raw RPC (nbsched jobs), "
        f"{page_frame:.1f} ms as DataFrame (client.jobs(limit=100))"
    )
    print(f"history (1000 runs): --limit 100 p50 {history_100:.1f} ms; all as DataFrame p50 {history_all:.0f} ms")
    for size, (fill_us, decide_us) in micro.items():
        print(f"Schedule with {size:>7} entries: set {fill_us:.2f} us, fire decision (due + set) {decide_us:.2f} us")
    growth = micro[100_000][1] / micro[1_000][1]
    print(
        f"scale jobs={loaded} create={rate:.0f}/s (100k by RPC ~{jobs / rate:.0f} s) rss_runner={rss_runner:.0f}MB "
        f"jobs_p50={jobs_raw:.0f}ms(df {jobs_frame:.0f}ms) jobs_limit100_p50={page_raw:.1f}ms(df {page_frame:.1f}ms) "
        f"history_limit100_p50={history_100:.1f}ms "
        f"fire_decision={micro[100_000][1]:.2f}us@100k ({growth:.2f}x of 1k)"
    )


if __name__ == "__main__":
    main()
