"""History under retention: 1,000,000 runs, a retention step deletes the 200 oldest, then ``client.history()``.

    python bench/history_retention.py [--rows 1000000] [--steps 3]

Setup (not timed): ``--rows`` finished runs are inserted straight into a fresh home's SQLite file
(``bench/history.py``'s seed, in a child process, once; each home gets a copy), a runner starts there,
and a first ``client.history()`` has the runs cache's files written (the bench waits for them). Then,
``--steps`` times: ``client.purge()`` of the 200 oldest runs (one retention step: ``config.PURGE_BATCH``),
and ``client.history()`` -> DataFrame, timed end to end; the bench waits for any cache files the read had
written after it before the next step. Printed: each read's seconds and rows (checked: all but the
deleted), and a read with no purge before it, for comparison. Run it once per tree (``PYTHONPATH``) to
compare; indicative figures: other work shares the cores.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import _common
import history

#: The first seeded run's scheduled time (``history.seed``): 100 runs a second from there.
SEEDED_FROM = datetime(2026, 1, 1, tzinfo=UTC)


def seeded_copy(template: Path) -> Path:
    """A fresh home holding a copy of the seeded store file."""
    home = _common.fresh_home()
    shutil.copyfile(template, home / "nbsched.db")
    return home


def settled(home: Path, timeout: float = 300.0) -> None:
    """Wait until the runs cache's files are all written (sums beside each, none half written)."""
    folder = home / "nbsched.db.runs-cache"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = list(folder.glob("*.arrow"))
        partial = list(folder.glob(".*"))
        if files and not partial and all(path.with_name(f"{path.name}.sum").exists() for path in files):
            return
        time.sleep(0.1)
    raise TimeoutError(f"the runs cache of {home} was not written within {timeout} s")


def timed_history(client) -> tuple[float, int, int]:
    """Seconds of ``client.history()`` -> DataFrame; its rows and its oldest run id."""
    began = time.perf_counter()
    frame = client.history()
    return time.perf_counter() - began, len(frame), int(frame["run_id"].min())


def measure(template: Path, rows: int, steps: int) -> dict[str, list[float]]:
    home = seeded_copy(template)
    times: dict[str, list[float]] = {"no purge": [], "after a purge step": []}
    with _common.Runner(home) as runner:
        client = runner.client
        client.timeout = 300
        timed_history(client)  # the first read: from SQLite, the files written after it
        settled(home)
        seconds, count, _ = timed_history(client)
        assert count == rows, count
        times["no purge"].append(seconds)
        for step in range(1, steps + 1):
            removed = client.purge(before=SEEDED_FROM + timedelta(seconds=2 * step))  # 100 runs a second
            assert removed == 200, removed
            seconds, count, oldest = timed_history(client)
            assert (count, oldest) == (rows - 200 * step, 200 * step + 1), (count, oldest, step)
            times["after a purge step"].append(seconds)
            print(f"  purge step {step}: 200 runs deleted; client.history() {count:,} rows in {seconds:.2f} s")
            settled(home)
        seconds, _, _ = timed_history(client)
        times["no purge"].append(seconds)
    shutil.rmtree(home, ignore_errors=True)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--steps", type=int, default=3, help="retention steps (of 200 runs) in a round")
    parser.add_argument("--rounds", type=int, default=1)
    options = parser.parse_args()
    template_home = _common.fresh_home()
    template = template_home / "nbsched.db"
    began = time.perf_counter()
    seed = [sys.executable, str(Path(history.__file__)), "--seed", str(template), "--rows", str(options.rows)]
    subprocess.run(seed, check=True, timeout=600)
    print(f"setup: {options.rows:,} runs seeded in {time.perf_counter() - began:.1f} s")
    results: dict[str, list[float]] = {"no purge": [], "after a purge step": []}
    for _ in range(options.rounds):
        for name, seconds in measure(template, options.rows, options.steps).items():
            results[name] += seconds
    shutil.rmtree(template_home, ignore_errors=True)
    figures = " | ".join(
        f"{name}: median {statistics.median(values):.2f} s (min {min(values):.2f}, max {max(values):.2f}, "
        f"n={len(values)})"
        for name, values in results.items()
    )
    print(f"history_retention rows={options.rows} client.history() -> DataFrame | {figures}")


if __name__ == "__main__":
    main()
