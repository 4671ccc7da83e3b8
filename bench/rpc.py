"""RPC round trips: client -> runner -> client over the Unix socket, in microseconds.

    python bench/rpc.py [--count 2000]
    python bench/rpc.py --under-load [--jobs 10000] [--seconds 20]

Times ``ping``, ``schedule`` (a new interval job each call) and ``history --limit 100`` (with
a few hundred runs in history) through one ``nbsched.connect()`` client. Indicative figures:
other work on this machine shares its cores.

``--under-load``: the control plane while ``--jobs`` no-op jobs fire every second. For ``--seconds``,
``ping``, ``pause`` (then ``resume``) of one job and ``jobs --limit 10`` in turn; then every job paused
one RPC each (total time); then ``nbsched runner stop`` (what it says, and whether the runner exited).
"""

from __future__ import annotations

import argparse
import math
import time
from datetime import UTC, datetime

import _common

from nbsched import config
from nbsched.errors import InvalidInput
from nbsched.frontends import commands


def timed(call, count: int) -> list[float]:
    samples = []
    for i in range(count):
        began = time.perf_counter()
        call(i)
        samples.append((time.perf_counter() - began) * 1e6)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="calls per operation")
    parser.add_argument("--under-load", action="store_true", help="while --jobs jobs fire every second")
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs every 1 s (--under-load)")
    parser.add_argument("--seconds", type=int, default=20, help="seconds of RPCs under load (--under-load)")
    options = parser.parse_args()
    if options.under_load:
        under_load(options.jobs, options.seconds)
        return
    count = options.count
    with _common.Runner() as runner:
        client = runner.client
        runner.deploy_noop()
        run_ids = {client.invoke(_common.NOOP_SERVICE) for _ in range(300)}
        _common.wait_all_finished(client, run_ids)
        timed(lambda i: client.ping(), 200)  # warm up
        results = {
            "ping": timed(lambda i: client.ping(), count),
            "schedule": timed(
                lambda i: client.call(
                    "schedule", service=_common.NOOP_SERVICE, name=f"r{i:06d}", every=3600, start="in 1d"
                ),
                count,
            ),
            "history --limit 100": timed(lambda i: client.history_rows(limit=100), count // 4),
            "history() DataFrame --limit 100": timed(lambda i: client.history(limit=100), count // 4),
        }
    print(f"client -> runner round trips ({count} calls each; history {count // 4}):")
    for name, samples in results.items():
        print(f"  {name:32s} {_common.spread(samples, 'us', 0)}")
    print(
        "rpc "
        + " | ".join(
            f"{name} p50/p99 {_common.percentile(s, 50):.0f}/{_common.percentile(s, 99):.0f} us"
            for name, s in results.items()
        )
    )


#: Seconds ``--under-load`` gives pausing (or resuming) every job before it extrapolates.
PAUSE_ALL_CAP = 60.0


def timed_ms(call, *args, **kwargs) -> float:
    """Milliseconds one call takes."""
    began = time.perf_counter()
    call(*args, **kwargs)
    return (time.perf_counter() - began) * 1e3


def one_each(action, jobs: int) -> tuple[int, float]:
    """``action`` on each job, one RPC each, for up to ``PAUSE_ALL_CAP`` seconds: (jobs done, seconds)."""
    began = time.perf_counter()
    for i in range(jobs):
        if time.perf_counter() - began > PAUSE_ALL_CAP:
            return i, time.perf_counter() - began
        action(f"j{i:05d}")
    return jobs, time.perf_counter() - began


def under_load(jobs: int, seconds: int) -> None:
    """The control plane's answers while ``jobs`` jobs fire every second."""
    with _common.Runner() as runner:
        client = runner.client
        runner.deploy_noop()
        figures = _common.ProcessFigures(runner.pid)
        start = math.ceil(time.time() + 3 + jobs / 1000)
        start_iso = datetime.fromtimestamp(start, UTC).isoformat()
        for i in range(jobs):
            client.schedule(_common.NOOP_SERVICE, name=f"j{i:05d}", every=1, start=start_iso)
        _common.wait_until(max(start, time.time()) + 2)  # firing, and settled
        jobs_args = {"limit": 10}
        try:
            client.call("jobs", **jobs_args)
        except InvalidInput:  # a runner whose listing is not paged yet
            jobs_args = {}
        listing = f"jobs {jobs_args or '(all: the runner takes no limit)'}"
        samples: dict[str, list[float]] = {"ping": [], "pause": [], "resume": [], listing: []}
        cpu0, began, i = figures.cpu(), time.monotonic(), 0
        while time.monotonic() - began < seconds:  # the control plane in turn, as a user clicking around
            name = f"j{i % jobs:05d}"
            samples["ping"].append(timed_ms(client.ping))
            samples["pause"].append(timed_ms(client.pause, name))
            samples["resume"].append(timed_ms(client.resume, name))
            if i % 3 == 0:
                samples[listing].append(timed_ms(client.call, "jobs", **jobs_args))
            i += 1
        cpu1 = figures.cpu()
        print(f"control plane while {jobs} jobs x 1 s fire ({seconds} s of calls, one client, in turn):")
        for name, values in samples.items():
            print(f"  {name:24s} {len(values):6d} calls  {_common.spread(values, 'ms', 1)}")
        runner_cpu, workers_cpu = ((after - before) / seconds for after, before in zip(cpu1, cpu0, strict=True))
        print(f"  CPU: runner {100 * runner_cpu:.0f}% of a core, workers {100 * workers_cpu:.0f}%")
        paused = one_each(client.pause, jobs)
        pause_all = paused[1] * jobs / max(1, paused[0])
        print(
            f"  pausing all {jobs} jobs, one RPC each: {paused[0]} paused in {paused[1]:.1f} s"
            + ("" if paused[0] == jobs else f" (given up at {PAUSE_ALL_CAP:g} s: all would take ~{pause_all:.0f} s)")
        )
        one_each(client.resume, paused[0])  # firing again, to stop a runner at full load
        time.sleep(2)
        client.close()
        began = time.perf_counter()
        try:
            said = commands.stop_runner(config.settings())
        except Exception as exc:  # reported, as a user would see it
            said = f"error: {exc}"
        while _common.alive(runner.pid) and time.perf_counter() - began < 60:  # its lock goes a moment before it
            time.sleep(0.05)
        stop_s = time.perf_counter() - began
        alive = _common.alive(runner.pid)
        print(f"  nbsched runner stop: {said!r} in {stop_s:.1f} s; runner process {'STILL ALIVE' if alive else 'gone'}")
    summary = " | ".join(
        f"{name} p50/p99 {_common.percentile(v, 50):.1f}/{_common.percentile(v, 99):.1f} ms"
        for name, v in samples.items()
    )
    print(
        f"rpc under load jobs={jobs} | {summary} | pause all {pause_all:.1f} s | stop {'ok' if not alive else 'FAILED'}"
    )


if __name__ == "__main__":
    main()
