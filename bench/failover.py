"""Failover: three runners share one PostgreSQL store and one is SIGKILLed; then fire lag, PostgreSQL beside SQLite.

    python bench/failover.py [--jobs 300] [--duration 20] [--lag-jobs 1000] [--lag-duration 10] [--skip-lag]

Part 1 starts three runners (three homes, one ``NBSCHED_STORE``), creates ``--jobs`` no-op jobs every second
through the first, and SIGKILLs the second runner half-way through ``--duration`` seconds. From the store's
own records: duplicate fires (the same job and ``scheduled_at`` twice), lost fires (a grid point of the window
with no record), fires recorded ``interrupted`` (the killed runner's runs in flight), runs per runner, and the
failover gap: for each job the killed runner ran in its last two seconds, the time from the kill to the first
run of that job elsewhere (the service's own ``time.time()``); the first and the last such gap.

Part 2 runs bench/fire_lag.py's workload (``--lag-jobs`` jobs every second, one runner) on SQLite and then on
PostgreSQL, back to back: lag p50 / p99 of each and their ratio.

The PostgreSQL server is ``NBSCHED_TEST_POSTGRES``'s (default postgresql://postgres@127.0.0.1:5432/postgres); the
benchmark makes a database of its own and drops it at the end.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import time
import uuid
from collections import Counter
from urllib.parse import urlsplit, urlunsplit

import _common
import fire_lag

from nbsched import config
from nbsched.model.runs import RUN_FIELDS
from nbsched.store import open_store

MAINTENANCE_URL = os.environ.get("NBSCHED_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


class Database:
    """A database of the benchmark's own on the PostgreSQL server, dropped when it ends."""

    def __enter__(self) -> Database:
        import psycopg

        self.admin = psycopg.connect(MAINTENANCE_URL, autocommit=True)
        self.name = f"nbsched_bench_{uuid.uuid4().hex[:10]}"
        self.admin.execute(f'CREATE DATABASE "{self.name}"')
        self.url = urlunsplit(urlsplit(MAINTENANCE_URL)._replace(path=f"/{self.name}", query=""))
        return self

    def store_url(self, schema: str) -> str:
        return f"{self.url}?schema={schema}"

    def __exit__(self, *exc) -> None:
        self.admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [self.name],
        )
        self.admin.execute(f'DROP DATABASE IF EXISTS "{self.name}"')
        self.admin.close()


def failover(url: str, jobs: int, duration: int) -> dict:
    runners = [_common.Runner(store=url) for _ in range(3)]
    try:
        for runner in runners:
            runner.__enter__()
        names = [runner.client.ping()["runner"] for runner in runners]
        runners[0].deploy_noop()
        start = math.ceil(time.time() + 3 + jobs / 300)
        start_iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start))
        for i in range(jobs):
            runners[0].client.schedule(_common.NOOP_SERVICE, name=f"f{i:04d}", every=1, start=start_iso)
        for runner in runners[1:]:
            while len(runner.client.call("jobs")) < jobs:
                time.sleep(0.05)
        end = start + duration
        _common.wait_until(start + duration / 2 + 0.37)  # a moment between two grid points
        killed_at = time.time()
        os.kill(runners[1].pid, signal.SIGKILL)
        runners[1].pid = None  # nothing to stop
        _common.wait_until(end + config.LEASE_SECONDS + 3)
        rows = _runs(url)
    finally:
        for runner in runners:
            runner.__exit__(None, None, None)
    return _figures(rows, names, start, end, killed_at, jobs)


def _runs(url: str) -> list[dict]:
    store = open_store(url)
    try:
        return [dict(zip(RUN_FIELDS, row, strict=True)) for row in store.runs()]
    finally:
        store.close()


def _figures(rows: list[dict], names: list[str], start: int, end: int, killed_at: float, jobs: int) -> dict:
    fires = [
        r for r in rows if r["trigger"] in ("schedule", "misfire") and start <= r["scheduled_at"].timestamp() < end
    ]
    keys = Counter((r["job"], r["scheduled_at"].timestamp()) for r in fires)
    dead = names[1]
    owned = {
        r["job"]
        for r in fires
        if _base(r["runner"]) == dead and killed_at - 2 <= r["scheduled_at"].timestamp() < killed_at
    }
    gaps = []
    for job in owned:
        elsewhere = [
            float(r["output"])
            for r in fires
            if r["job"] == job and r["status"] == "ok" and _base(r["runner"]) != dead and float(r["output"]) > killed_at
        ]
        if elsewhere:
            gaps.append(min(elsewhere) - killed_at)
    return {
        "fires": len(fires),
        "expected": jobs * (end - start),
        "duplicates": sum(n - 1 for n in keys.values() if n > 1),
        "lost": jobs * (end - start) - len(keys),
        "interrupted": sum(1 for r in fires if r["status"] == "interrupted"),
        "per_runner": Counter(_base(r["runner"]) for r in fires),
        "names": names,
        "owned": len(owned),
        "gap_first": min(gaps, default=float("nan")),
        "gap_last": max(gaps, default=float("nan")),
        "gaps_found": len(gaps),
    }


def _base(runner: str | None) -> str:
    return (runner or "").partition("#")[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--lag-jobs", type=int, default=1000)
    parser.add_argument("--lag-duration", type=int, default=10)
    parser.add_argument("--skip-lag", action="store_true")
    args = parser.parse_args()
    with Database() as db:
        figures = failover(db.store_url("failover"), args.jobs, args.duration)
        print(
            f"failover: 3 runners, {args.jobs} jobs x 1 s for {args.duration} s, runner 2 SIGKILLed half-way: "
            f"{figures['fires']}/{figures['expected']} fires recorded, {figures['duplicates']} duplicates, "
            f"{figures['lost']} lost, {figures['interrupted']} interrupted (in flight at the kill)"
        )
        per_runner = ", ".join(f"{name}: {figures['per_runner'][name]}" for name in figures["names"])
        print(f"  runs per runner: {per_runner}")
        print(
            f"  failover gap over the {figures['owned']} jobs the killed runner ran last "
            f"({figures['gaps_found']} seen elsewhere): first {figures['gap_first']:.2f} s, "
            f"last {figures['gap_last']:.2f} s (lease {config.LEASE_SECONDS:g} s)"
        )
        lag = ""
        if not args.skip_lag:
            sqlite = fire_lag.measure_nbsched(args.lag_jobs, args.lag_duration)
            pg = fire_lag.measure_nbsched(args.lag_jobs, args.lag_duration, store=db.store_url("lag"))
            p99 = [_common.percentile(one["lags"], 99) for one in (sqlite, pg)]
            for label, one in (("SQLite", sqlite), ("PostgreSQL", pg)):
                print(
                    f"fire lag on {label}, {args.lag_jobs} jobs x 1 s for {args.lag_duration} s: "
                    f"{_common.spread(one['lags'])}; runs {one['runs']}/{one['expected']}, "
                    f"{one['duplicates']} duplicates, {one['misses']} missed; "
                    f"CPU runner {one['cpu_runner']:.1f} s + workers {one['cpu_workers']:.1f} s"
                )
            lag = f" | lag p99 SQLite {p99[0]:.1f} ms, PostgreSQL {p99[1]:.1f} ms ({p99[1] / p99[0]:.2f}x)"
    print(
        f"failover dup={figures['duplicates']} lost={figures['lost']} gap_last={figures['gap_last']:.2f}s "
        f"runners={len(figures['per_runner'])}{lag}"
    )


if __name__ == "__main__":
    main()
