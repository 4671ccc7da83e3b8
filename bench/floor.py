"""Floors: what the guarantees alone cost per run, beside APScheduler 3's whole fire, in the same run.

    python bench/floor.py [--jobs 1000] [--burst 10000] [--seconds 10] [--skip-apscheduler]

Issue 19 asked for CPU per fire ≤ 0.4 x APScheduler 3's (1,000 jobs x 1 s) and a fire lag p99 ≤ 0.03 x
APScheduler's at 10,000 jobs x 1 s. This prints how much of those budgets two parts take that no
tuning of the runner removes, each measured with nothing else around it:

- **SQL per run**: the statements the exactly-once claim needs (DESIGN §4: a run is created by claiming
  its fire's key in the transaction that advances the job) and the run's record at its end — the job's
  state advanced, the run's row inserted, then updated when it finishes — in batches of ``--jobs``
  (as a tick claims them), executemany of tuples built beforehand, on a real SQLite file with the
  store's own schema and settings. CPU seconds of this process over 20 batches, per run.
- **A worker's run**: ``Worker.run`` of the no-op service built ahead (what a worker does per run at its
  time: capture the output, call ``handle``, put the process's state back, the result record), in this
  process, no pipe. CPU per run.
- **A worker's burst**: ``--burst`` runs due at the same second, shared by two workers on two cores, is
  ``--burst / 2`` runs one after another in each: that many runs through a worker's own inbox and loop
  (in this process, handed over before their time, no runner competing): the lag of the 99th percentile
  run's ``handle`` from the due time.

Then APScheduler 3 (BackgroundScheduler, thread pool, nothing persisted; ``fire_lag``'s child process):
CPU per fire at ``--jobs`` x 1 s and the lag p99 at ``--burst`` x 1 s, ``--seconds`` each. The ratios
printed are the floors over those figures, beside the issue's 0.4 and 0.03.
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta

import _common
import fire_lag

#: The no-op service, recording when its ``handle`` began (for the burst).
TIMED_NOOP = """
import time

from nbsched import Service

STARTED = []


class Noop(Service):
    name = "bench.noop"

    def handle(self):
        STARTED.append(time.time())
        self.response.payload = repr(STARTED[-1])
"""

#: The columns a claimed run has (``SQLiteStore.claim`` inserts these; the rest stay NULL until it ends).
CLAIMED = ("run_id", "job_uid", "cid", "job", "service", "service_version", "trigger", "attempt", "status")
CLAIMED += ("scheduled_at", "runner")
FINISHED = ("status", "started_at", "finished_at", "delay_ms", "duration_ms", "output", "logs")


def sql_per_run(jobs: int, batches: int = 20) -> float:
    """CPU µs per run of the claim's and the result's statements, ``jobs`` runs a batch."""
    from nbsched.store.sqlite import SQLiteStore
    from nbsched.store.sqlite_schema import ADVANCE_JOB

    with tempfile.TemporaryDirectory(prefix="nbb-floor-") as folder:
        store = SQLiteStore(os.path.join(folder, "nbsched.db"))
        db = store.db
        uids = [uuid.uuid4().hex for _ in range(jobs)]
        start = datetime(2026, 11, 30, 12, tzinfo=UTC)
        db.execute("BEGIN")
        db.executemany("INSERT INTO job_state VALUES (?, 0, ?, NULL)", [(uid, _iso(start)) for uid in uids])
        db.execute("COMMIT")
        insert = f"INSERT INTO runs ({', '.join(f'{c!r}' for c in CLAIMED)}) VALUES ({', '.join('?' * len(CLAIMED))})"
        update = f"UPDATE runs SET {', '.join(f'{c!r}=?' for c in FINISHED)} WHERE run_id=?"
        spent = 0.0
        for batch in range(batches):
            when, after = _iso(start + timedelta(seconds=batch)), _iso(start + timedelta(seconds=batch + 1))
            first = batch * jobs + 1
            advances = [(after, batch + 1, when, uid, when) for uid in uids]
            claimed = [
                (first + i, uid, f"c{first + i}", f"j{i}", "bench.noop", "v1", "schedule", 1, "running", when, "r1")
                for i, uid in enumerate(uids)
            ]
            finished = [("ok", when, when, 0.5, 0.1, "1.0", "", first + i) for i in range(jobs)]
            began = time.process_time()
            db.execute("BEGIN IMMEDIATE")
            if db.executemany(ADVANCE_JOB, advances).rowcount != jobs:
                raise RuntimeError("a job's state did not advance")
            db.executemany(insert, claimed)
            db.execute("COMMIT")
            db.execute("BEGIN IMMEDIATE")
            db.executemany(update, finished)
            db.execute("COMMIT")
            spent += time.process_time() - began
        store.close()
    return spent / (batches * jobs) * 1e6


def worker_per_run(runs: int = 20_000) -> float:
    """CPU µs per ``Worker.run`` of the no-op service, its object built ahead."""
    worker = _worker()
    messages = [_message(i, 0.0) for i in range(runs)]
    prepared = [worker.prepare_ahead(message) for message in messages]
    began = time.process_time()
    for message, service in zip(messages, prepared, strict=True):
        worker.run(message, service)
    return (time.process_time() - began) / runs * 1e6


def burst_p99(runs: int, rounds: int = 5) -> list[float]:
    """ms from the due time to the 99th percentile run's ``handle``, ``runs`` due at once in one worker."""
    from nbsched.worker import process
    from nbsched.worker.inbox import Inbox

    worker = _worker()
    started = worker.registry._module("v1").STARTED
    figures = []
    for _ in range(rounds):
        due = time.time() + 0.3 + runs * 10e-6  # handed over ahead, prepared while they wait
        inbox = Inbox(io.BytesIO(), prepare=worker.prepare_ahead)
        inbox._arrived([_message(i, due) for i in range(runs)])
        inbox.messages.append(None)  # the pipe's end: the loop returns after the runs
        process.serve(worker, inbox)
        figures.append(_common.percentile([(at - due) * 1000 for at in started], 99))
        started.clear()
    return figures


def _worker():
    from nbsched.worker.execute import Worker

    worker = Worker()
    worker.registry.update({"v1": ("<floor>", TIMED_NOOP)}, {_common.NOOP_SERVICE: ("v1", "Noop")})
    return worker


def _message(run_id: int, due: float):
    from nbsched.worker.pipe import RunMessage

    job = (f"j{run_id}", "interval", 1)
    return RunMessage(run_id, f"cid{run_id}", _common.NOOP_SERVICE, "scheduler", None, job, due, due)


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000, help="jobs every 1 s (CPU per fire)")
    parser.add_argument("--burst", type=int, default=10_000, help="jobs every 1 s, due together (lag p99)")
    parser.add_argument("--seconds", type=int, default=10, help="seconds of each APScheduler workload")
    parser.add_argument("--skip-apscheduler", action="store_true")
    options = parser.parse_args()
    sql = sql_per_run(options.jobs)
    worker = worker_per_run()
    bursts = burst_p99(options.burst // 2)
    burst = sorted(bursts)[len(bursts) // 2]
    print(f"floors (python -m timeit 'sum(range(1000))': {_common.machine_speed()}):")
    print(f"  SQL per run (claim + result, {options.jobs} a batch): {sql:.1f} µs CPU")
    print(f"  Worker.run of the no-op, built ahead: {worker:.1f} µs CPU")
    half = options.burst // 2
    rounds = ", ".join(f"{figure:.1f}" for figure in bursts)
    print(f"  {half} runs due at once in one worker: p99 of each round {rounds} ms (median {burst:.1f} ms)")
    if options.skip_apscheduler:
        return
    aps = fire_lag.measure_apscheduler(options.jobs, options.seconds)
    aps_cpu = aps["cpu"] / aps["expected"] * 1e6
    aps_burst = fire_lag.measure_apscheduler(options.burst, options.seconds)
    aps_p99 = _common.percentile(aps_burst["lags"], 99)
    print(f"APScheduler 3, same run: CPU per fire at {options.jobs} x 1 s {aps_cpu:.1f} µs; ", end="")
    missed = f"{aps_burst['misses']} of {aps_burst['expected']} missed"
    print(f"lag p99 at {options.burst} x 1 s {aps_p99:.0f} ms ({missed})")
    floor = sql + worker
    print(
        f"CPU per fire: SQL + worker floors {floor:.1f} µs = {floor / aps_cpu:.2f} x APScheduler's "
        f"(issue 19 asks <= 0.40 x for runner + workers together)"
    )
    print(
        f"lag p99 at {options.burst} x 1 s: a worker's burst floor {burst:.1f} ms = {burst / aps_p99:.3f} x "
        f"APScheduler's (issue 19 asks <= 0.030 x)"
    )


if __name__ == "__main__":
    main()
