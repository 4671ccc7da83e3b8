"""Purge under load: fire lag of 1,000 jobs x 1 s while a purge of 1,000,000 finished runs runs, and without.

    python bench/purge.py [--jobs 1000] [--rows 1000000] [--duration 30]

Setup (not timed): ``--rows`` old finished runs are inserted straight into a fresh home's SQLite file
(``bench/history.py``'s seed, in a child process) before its runner starts. Then ``bench/fire_lag.py``'s
workload runs twice, each on a fresh, seeded home: once as it is, once with ``client.purge(before="1d")``
started (from a client of its own, in a thread) as the measured window opens. Printed: the lag p50/p99/max
of both, the purge's duration and rows removed, and the rows left. Indicative: other work shares the cores.
"""

from __future__ import annotations

import argparse
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
    options = parser.parse_args()
    jobs, duration = options.jobs, options.duration
    figures = {}
    for mode in ("without purge", "with purge"):
        began = time.perf_counter()
        home = seeded_home(options.rows)
        print(f"{mode}: {options.rows} runs seeded in {time.perf_counter() - began:.1f} s")
        purge = Purge() if mode == "with purge" else None
        nb = fire_lag.measure_nbsched(jobs, duration, home=home, during=purge.start if purge else None)
        if purge is not None:
            print(f"  purge removed {purge.removed} runs in {purge.seconds:.1f} s")
        print(f"  lag in service: {_common.spread(nb['lags'])}; runs {nb['runs']}/{nb['expected']} miss {nb['misses']}")
        figures[mode] = (nb, purge)
    base, (loaded, purge) = figures["without purge"][0], figures["with purge"]
    p99 = [_common.percentile(nb["lags"], 99) for nb in (base, loaded)]
    print(
        f"purge jobs={jobs} rows={options.rows} duration={duration}s | fire lag p50/p99/max without purge "
        f"{_common.percentile(base['lags'], 50):.1f}/{p99[0]:.1f}/{max(base['lags'], default=float('nan')):.1f} ms "
        f"| with purge {_common.percentile(loaded['lags'], 50):.1f}/{p99[1]:.1f}/"
        f"{max(loaded['lags'], default=float('nan')):.1f} ms miss={loaded['misses']} | purge removed {purge.removed} "
        f"in {purge.seconds:.1f} s ({purge.removed / purge.seconds:,.0f} rows/s) | p99 ratio {p99[1] / p99[0]:.2f}"
    )


if __name__ == "__main__":
    main()
