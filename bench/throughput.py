"""Throughput: on-demand runs of a no-op service end to end, and a burst of one-time jobs.

    python bench/throughput.py [--runs 10000] [--batch 500] [--burst 10000]

Part 1 sends ``--runs`` ``invoke`` requests through one client and waits until every one of
those runs is finished in history: runs per second from the first request to the last
finish. Then the same number of runs again through ``invoke_many``, ``--batch`` runs per request
(0: skipped). Part 2 creates ``--burst`` one-time jobs all due at the same whole second and
measures from that second to the last run's ``finished_at``. Indicative figures: other work
on this machine shares its cores.
"""

from __future__ import annotations

import argparse
import math
import time
from datetime import UTC, datetime

import _common


def on_demand(client, runs: int, batch: int = 1) -> dict:
    """``runs`` runs of the no-op service: an ``invoke`` each (``batch`` 1), or ``invoke_many`` of ``batch`` at once."""
    began = time.time()
    if batch == 1:
        run_ids = {client.invoke(_common.NOOP_SERVICE) for _ in range(runs)}
    else:
        run_ids = set()
        for start in range(0, runs, batch):
            run_ids.update(client.invoke_many(_common.NOOP_SERVICE, [None] * min(batch, runs - start)))
    sent = time.time()
    _common.wait_all_finished(client, run_ids, timeout=110)
    finished = [r for r in _common.history_records(client, service=_common.NOOP_SERVICE) if r["run_id"] in run_ids]
    ok = sum(1 for r in finished if r["status"] == "ok")
    last = max(_common.epoch(r["finished_at"]) or 0 for r in finished)
    span = last - began
    return {"requests_per_s": runs / (sent - began), "runs_per_s": runs / span, "ok": ok, "span": span}


def burst(client, jobs: int, per_job_s: float) -> dict:
    due = math.ceil(time.time() + 3 + 1.5 * jobs * per_job_s)
    due_iso = datetime.fromtimestamp(due, UTC).isoformat()
    began = time.perf_counter()
    for i in range(jobs):
        client.call("schedule", service=_common.NOOP_SERVICE, name=f"b{i:05d}", at=due_iso)
    create_s = time.perf_counter() - began
    late = time.time() > due
    _common.wait_until(due + 0.5)
    deadline = time.monotonic() + 110
    while True:
        rows = [r for r in _common.history_records(client, since=due_iso) if r["trigger"] == "schedule"]
        if (len(rows) >= jobs and all(r["status"] != "running" for r in rows)) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    lags = [(_common.epoch(r["finished_at"]) - due) for r in rows if r["status"] == "ok"]
    return {
        "create_s": create_s,
        "late": late,
        "ok": len(lags),
        "runs": len(rows),
        "all_done_s": max(lags, default=float("nan")),
        "first_done_s": min(lags, default=float("nan")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500, help="runs per invoke_many request (0: skip that part)")
    parser.add_argument("--burst", type=int, default=10_000)
    options = parser.parse_args()
    with _common.Runner() as runner:
        runner.deploy_noop()
        figures = _common.ProcessFigures(runner.pid)
        cpu0 = figures.cpu()
        first = on_demand(runner.client, options.runs)
        cpu1 = figures.cpu()
        many = on_demand(runner.client, options.runs, options.batch) if options.batch > 0 else None
        cpu2 = figures.cpu()
        per_job = 1 / first["requests_per_s"]
        second = burst(runner.client, options.burst, per_job)
    print(
        f"on demand: {options.runs} invoke requests at {first['requests_per_s']:.0f} requests/s; "
        f"all finished in history after {first['span']:.1f} s -> {first['runs_per_s']:.0f} runs/s end to end "
        f"({first['ok']} ok); CPU runner {cpu1[0] - cpu0[0]:.1f} s + workers {cpu1[1] - cpu0[1]:.1f} s"
    )
    if many is not None:
        print(
            f"on demand, invoke_many: {options.runs} runs in lists of {options.batch}, recorded at "
            f"{many['requests_per_s']:.0f} runs/s; all finished in history after {many['span']:.1f} s -> "
            f"{many['runs_per_s']:.0f} runs/s end to end ({many['ok']} ok); "
            f"CPU runner {cpu2[0] - cpu1[0]:.1f} s + workers {cpu2[1] - cpu1[1]:.1f} s"
        )
    print(
        f"burst: {options.burst} one-time jobs created in {second['create_s']:.1f} s"
        f"{' (creation overran the due time!)' if second['late'] else ''}; {second['ok']}/{second['runs']} ok; "
        f"first finished {1000 * second['first_done_s']:.0f} ms after due, all finished "
        f"{second['all_done_s']:.2f} s after due ({options.burst / second['all_done_s']:.0f} runs/s)"
    )
    print(
        f"throughput on_demand={first['runs_per_s']:.0f} runs/s ({options.runs} runs, {first['span']:.1f} s) | "
        + (f"invoke_many={many['runs_per_s']:.0f} runs/s (lists of {options.batch}) | " if many else "")
        + f"burst {options.burst} one-time jobs: due->all finished {second['all_done_s']:.2f} s "
        f"({options.burst / second['all_done_s']:.0f} runs/s)"
    )


if __name__ == "__main__":
    main()
