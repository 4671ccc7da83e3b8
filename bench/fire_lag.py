"""Fire lag: N interval jobs every 1 s, all on the same whole-second grid, nbsched vs APScheduler 3.

    python bench/fire_lag.py [--jobs 1000] [--duration 20] [--skip-apscheduler]
    python bench/fire_lag.py --spread [--jobs 100000] [--duration 60]

A no-op service records ``time.time()`` as the first thing in ``handle()``; lag is that
minus the run's grid time (``scheduled_at``). The same workload then runs on APScheduler 3's
BackgroundScheduler (thread pool, large ``misfire_grace_time``), in a child process so that
its CPU and RSS are its own; lag there is ``time.time()`` at job start minus the grid time.
CPU per fire: the CPU seconds of the runner, of its workers, and of APScheduler's process in the window,
over the fires due in it.

``--spread``: N jobs every 60 s, their starts spread evenly over the minute (the realistic shape of
many jobs), nbsched only: lag p50 / p99 and the runner's RSS (now and peak) after a minute of it.
Figures are indicative: other work on this machine shares its cores.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime

import _common

from nbsched.errors import RunnerError


def measure_nbsched(jobs: int, duration: int, store: str | None = None, every: int = 1, home=None, during=None) -> dict:
    """The workload on one nbsched runner, on its home's SQLite file or on the store ``store`` names.

    ``every`` above 1 spreads the jobs' starts evenly over that many seconds (``--spread``); ``home``: a home
    prepared before; ``during``: called with the runner as the measured window opens (what it returns, if
    anything, is called before the runner stops)."""
    with _common.Runner(home=home, store=store) as runner:
        client = runner.client
        runner.deploy_noop()
        figures = _common.ProcessFigures(runner.pid)
        start = math.ceil(time.time() + 3 + jobs / (1000 if every == 1 else 500))  # creation: ~2,000 jobs/s
        began = time.perf_counter()
        for i in range(jobs):
            offset = i * every / jobs if every > 1 else 0
            start_iso = datetime.fromtimestamp(start + offset, UTC).isoformat()
            client.schedule(_common.NOOP_SERVICE, name=f"j{i:05d}", every=every, start=start_iso)
        create_s = time.perf_counter() - began
        window_start = max(start, math.ceil(time.time()) + 1)
        window_end = window_start + duration  # grid points window_start .. window_end - 1
        _common.wait_until(window_start - 0.2)
        cpu0 = figures.cpu()
        finish = during(runner) if during is not None else None
        _common.wait_until(window_end)
        cpu1 = figures.cpu()
        rss = figures.rss()
        peak_rss = _common.peak_rss_mb(runner.pid)
        # Firing goes on; read history until every run of the window has finished.
        since = datetime.fromtimestamp(window_start - 1, UTC).isoformat()
        deadline = time.monotonic() + 60
        client.timeout = 20.0
        while True:
            time.sleep(1)
            try:
                rows = list(_common.history_records(client, since=since))
            except RunnerError as exc:
                print(f"  nbsched runner did not answer history after the window: {exc}")
                rows = []
                break
            unfinished = [r for r in rows if r["status"] == "running" and _in_window(r, window_start, window_end)]
            if not unfinished or time.monotonic() > deadline:
                break
        if finish is not None:
            finish()
    lags, delays, executed, skipped, keys = [], [], set(), 0, Counter()
    for row in rows:
        scheduled = _common.epoch(row["scheduled_at"])
        if row["trigger"] != "schedule" or not window_start <= scheduled < window_end:
            continue
        keys[(row["job"], scheduled)] += 1
        if row["status"] == "ok":
            executed.add((row["job"], scheduled))
            lags.append((float(row["output"]) - scheduled) * 1000)
            delays.append(row["delay_ms"])
        else:
            skipped += 1
    expected = jobs * duration // every
    return {
        "create_s": create_s,
        "peak_rss_runner": peak_rss,
        "lags": lags,
        "delay_p99": _common.percentile(delays, 99),
        "runs": len(executed),
        "duplicates": sum(n - 1 for n in keys.values() if n > 1),
        "misses": expected - len(executed),
        "skipped": skipped,
        "expected": expected,
        "cpu_runner": cpu1[0] - cpu0[0],
        "cpu_workers": cpu1[1] - cpu0[1],
        "rss_runner": rss[0],
        "rss_workers": rss[1],
        "window": (window_start, window_end),
    }


def _in_window(row: dict, start: float, end: float) -> bool:
    return start <= _common.epoch(row["scheduled_at"]) < end


def apscheduler_child(jobs: int, duration: int) -> None:
    """Run the workload on APScheduler 3 in this (child) process; print the figures as JSON."""
    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.interval import IntervalTrigger

    events: list = []
    dropped = Counter()

    def on_event(event) -> None:
        if event.code == EVENT_JOB_EXECUTED:
            events.append((event.job_id, event.scheduled_run_time.timestamp(), event.retval))
        else:
            dropped[event.code] += 1

    def noop() -> float:
        return time.time()

    scheduler = BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(10)},
        job_defaults={"misfire_grace_time": 3600, "coalesce": False, "max_instances": 1000},
        timezone="UTC",
    )
    scheduler.add_listener(on_event, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
    start = math.ceil(time.time()) + 2
    trigger_start = datetime.fromtimestamp(start, UTC)
    began = time.perf_counter()
    for i in range(jobs):
        scheduler.add_job(noop, IntervalTrigger(seconds=1, start_date=trigger_start, timezone="UTC"), id=f"j{i:05d}")
    scheduler.start()
    create_s = time.perf_counter() - began
    window_start = max(start, math.ceil(time.time()) + 1)
    window_end = window_start + duration
    _common.wait_until(window_start - 0.2)
    cpu0 = _common.cpu_seconds(_own_pid())
    _common.wait_until(window_end)
    cpu1 = _common.cpu_seconds(_own_pid())
    rss = _common.rss_mb(_own_pid())
    scheduler.pause()
    time.sleep(2)  # let the last window runs finish
    scheduler.shutdown(wait=True)
    lags, keys = [], Counter()
    for job_id, scheduled, started in list(events):
        if window_start <= scheduled < window_end:
            keys[(job_id, scheduled)] += 1
            lags.append((started - scheduled) * 1000)
    expected = jobs * duration
    print(
        json.dumps(
            {
                "create_s": create_s,
                "lags": lags,
                "runs": len(keys),
                "duplicates": sum(n - 1 for n in keys.values() if n > 1),
                "misses": expected - len(keys),
                "skipped": sum(dropped.values()),
                "expected": expected,
                "cpu": cpu1 - cpu0,
                "rss": rss,
            }
        )
    )


def _own_pid() -> int:
    import os

    return os.getpid()


def measure_apscheduler(jobs: int, duration: int) -> dict:
    command = [sys.executable, __file__, "--jobs", str(jobs), "--duration", str(duration), "--apscheduler-child"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def spread(jobs: int, duration: int) -> None:
    """``--spread``: ``jobs`` jobs every 60 s, starts spread over the minute; lag and the runner's RSS."""
    nb = measure_nbsched(jobs, duration, every=60)
    lags = nb["lags"]
    print(
        f"nbsched: {jobs} jobs every 60 s, starts spread over the minute, {duration} s "
        f"(created in {nb['create_s']:.0f} s)"
    )
    print(f"  lag in service: {_common.spread(lags)}; runner delay_ms p99 {nb['delay_p99']:.1f} ms")
    print(
        f"  runs {nb['runs']}/{nb['expected']}, duplicates {nb['duplicates']}, misses {nb['misses']} "
        f"(skipped rows {nb['skipped']})"
    )
    print(
        f"  runner RSS {nb['rss_runner']:.0f} MB (peak {nb['peak_rss_runner']:.0f} MB), "
        f"workers {nb['rss_workers']:.0f} MB;"
        f" CPU runner {nb['cpu_runner']:.1f} s + workers {nb['cpu_workers']:.1f} s"
    )
    print(
        f"fire_lag --spread jobs={jobs} duration={duration}s | p50/p99/max {_common.percentile(lags, 50):.1f}/"
        f"{_common.percentile(lags, 99):.1f}/{max(lags, default=float('nan')):.1f} ms runs={nb['runs']} "
        f"miss={nb['misses']} dup={nb['duplicates']} | runner RSS {nb['rss_runner']:.0f} MB "
        f"peak {nb['peak_rss_runner']:.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--duration", type=int, default=20, help="seconds of grid points measured")
    parser.add_argument("--skip-apscheduler", action="store_true")
    parser.add_argument("--spread", action="store_true", help="N jobs every 60 s, starts spread over the minute")
    parser.add_argument("--apscheduler-child", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.apscheduler_child:
        apscheduler_child(options.jobs, options.duration)
        return
    jobs, duration = options.jobs, options.duration
    if options.spread:
        spread(jobs, max(60, duration // 60 * 60))
        return
    nb = measure_nbsched(jobs, duration)
    print(f"nbsched: {jobs} jobs x 1 s for {duration} s (created in {nb['create_s']:.1f} s)")
    print(f"  lag in service: {_common.spread(nb['lags'])}; runner delay_ms p99 {nb['delay_p99']:.1f} ms")
    print(
        f"  runs {nb['runs']}/{nb['expected']}, duplicates {nb['duplicates']}, misses {nb['misses']} "
        f"(skipped rows {nb['skipped']})"
    )
    cpu = nb["cpu_runner"] + nb["cpu_workers"]
    print(
        f"  CPU in window: runner {nb['cpu_runner']:.1f} s + workers {nb['cpu_workers']:.1f} s "
        f"= {100 * cpu / duration:.0f}% of one core; RSS runner {nb['rss_runner']:.0f} MB + workers "
        f"{nb['rss_workers']:.0f} MB"
    )
    runner_us, workers_us = (1e6 * nb[key] / nb["expected"] for key in ("cpu_runner", "cpu_workers"))
    print(f"  CPU per fire: runner {runner_us:.0f} us + workers {workers_us:.0f} us = {runner_us + workers_us:.0f} us")
    summary = (
        f"fire_lag jobs={jobs} duration={duration}s | nbsched p50/p99/max "
        f"{_common.percentile(nb['lags'], 50):.1f}/{_common.percentile(nb['lags'], 99):.1f}/"
        f"{max(nb['lags'], default=float('nan')):.1f} ms runs={nb['runs']} dup={nb['duplicates']} "
        f"miss={nb['misses']} cpu={cpu:.1f}s rss={nb['rss_runner'] + nb['rss_workers']:.0f}MB"
    )
    if not options.skip_apscheduler:
        aps = measure_apscheduler(jobs, duration)
        print(f"APScheduler 3 BackgroundScheduler (10 threads): created in {aps['create_s']:.1f} s")
        print(f"  lag at job start: {_common.spread(aps['lags'])}")
        print(
            f"  runs {aps['runs']}/{aps['expected']}, duplicates {aps['duplicates']}, misses {aps['misses']} "
            f"(dropped events {aps['skipped']})"
        )
        print(
            f"  CPU in window {aps['cpu']:.1f} s = {100 * aps['cpu'] / duration:.0f}% of one core; "
            f"RSS {aps['rss']:.0f} MB"
        )
        aps_us = 1e6 * aps["cpu"] / aps["expected"]
        print(
            f"  CPU per fire: {aps_us:.0f} us (no persistence); nbsched's runner + workers / APScheduler's = "
            f"{(runner_us + workers_us) / aps_us:.2f}"
        )
        ratio = _common.percentile(nb["lags"], 99) / _common.percentile(aps["lags"], 99)
        summary += (
            f" | APScheduler p50/p99/max {_common.percentile(aps['lags'], 50):.1f}/"
            f"{_common.percentile(aps['lags'], 99):.1f}/{max(aps['lags'], default=float('nan')):.1f} ms "
            f"runs={aps['runs']} dup={aps['duplicates']} miss={aps['misses']} cpu={aps['cpu']:.1f}s "
            f"rss={aps['rss']:.0f}MB | p99 ratio nbsched/APScheduler={ratio:.2f} | CPU us/fire nbsched "
            f"{runner_us:.0f}+{workers_us:.0f} APScheduler {aps_us:.0f}"
        )
    print(summary)


if __name__ == "__main__":
    main()
