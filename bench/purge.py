"""Purge under load: fire lag of 1,000 jobs x 1 s while a purge of 1,000,000 finished runs runs, and without.

    python bench/purge.py [--jobs 1000] [--rows 1000000] [--duration 30] [--rounds 2]

Setup (not timed): ``--rows`` old finished runs are inserted straight into a fresh home's SQLite file
(``bench/history.py``'s seed, in a child process) before its runner starts. Then ``bench/fire_lag.py``'s
workload runs on fresh, seeded homes: as it is, and with ``client.purge(before="1d")`` started (from a client
of its own, in a thread) as the measured window opens; ``--rounds`` times each, alternating. Printed: the lag
p50/p99 of both (medians of the rounds) and the purge's duration. Indicative: other work shares the cores.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import _common
import fire_lag


def seeded_home(rows: int) -> Path:
    home = _common.fresh_home()
    history = str(Path(__file__).with_name("history.py"))
    subprocess.run([sys.executable, history, "--seed", str(home / "nbsched.db"), "--rows", str(rows)], check=True)
    return home


class Purge:
    """A purge of the seeded runs in a thread of its own, started when the measured window opens."""

    def __init__(self) -> None:
        self.removed: int | None = None
        self.seconds: float | None = None
        self.thread: threading.Thread | None = None

    def start(self, runner):
        self.thread = threading.Thread(target=self._purge, args=(runner.home,), daemon=True)
        self.thread.start()
        return lambda: self.thread.join(timeout=3600)  # the runner stops once the purge is done

    def _purge(self, home: Path) -> None:
        import nbsched

        client = nbsched.connect(home, autostart=False)
        began = time.perf_counter()
        try:
            self.removed = client.purge(before="1d")
        finally:
            self.seconds = time.perf_counter() - began
            client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--duration", type=int, default=30, help="seconds of grid points measured")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each mode, alternating (the box is shared)")
    options = parser.parse_args()
    jobs, duration = options.jobs, options.duration
    lags: dict[str, list[dict]] = {"without purge": [], "with purge": []}
    purges: list[Purge] = []
    for _ in range(options.rounds):
        for mode in lags:
            began = time.perf_counter()
            home = seeded_home(options.rows)
            print(f"{mode}: {options.rows} runs seeded in {time.perf_counter() - began:.1f} s")
            purge = Purge() if mode == "with purge" else None
            nb = fire_lag.measure_nbsched(jobs, duration, home=home, during=purge.start if purge else None)
            if purge is not None:
                print(f"  purge removed {purge.removed} runs in {purge.seconds:.1f} s")
                purges.append(purge)
            print(f"  lag in service: {_common.spread(nb['lags'])}; runs {nb['runs']}/{nb['expected']}")
            lags[mode].append(nb)
    p99 = {mode: statistics.median(_common.percentile(nb["lags"], 99) for nb in runs) for mode, runs in lags.items()}
    p50 = {mode: statistics.median(_common.percentile(nb["lags"], 50) for nb in runs) for mode, runs in lags.items()}
    misses = sum(nb["misses"] for runs in lags.values() for nb in runs)
    rate = statistics.median(purge.removed / purge.seconds for purge in purges)
    print(
        f"purge jobs={jobs} rows={options.rows} duration={duration}s rounds={options.rounds} | fire lag p50/p99 "
        f"(median of rounds) without purge {p50['without purge']:.1f}/{p99['without purge']:.1f} ms | with purge "
        f"{p50['with purge']:.1f}/{p99['with purge']:.1f} ms | misses {misses} | purge of {options.rows} rows "
        f"{statistics.median(purge.seconds for purge in purges):.1f} s ({rate:,.0f} rows/s) "
        f"| p99 ratio {p99['with purge'] / p99['without purge']:.2f}"
    )


if __name__ == "__main__":
    main()
