"""Time per next fire time: nbsched against cronsim and croniter, same lines, same run.

For each line and zone, each library answers "the next fire after T" for 200 values of T spread
over two years (DST transitions included). nbsched compiles a line once (a job's trigger is built
once and asked at every fire); cronsim and croniter have no "next after any T" on a built object,
so each answer is a new object and one step, as a scheduler would call them. Their iterators
(successive fires from one object, which a scheduler cannot use across restarts and edits) are
printed too, for scale. Figures: the median over lines of each line's median µs per answer.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import _common
from croniter import croniter
from cronsim import CronSim

from nbsched.model.triggers import Cron

LINES = [
    "* * * * *",
    "*/5 * * * *",
    "0 * * * *",
    "30 2 * * *",
    "0 9 * * mon-fri",
    "*/15 9-17 * * mon-fri",
    "0 0 1 * *",
    "0 0 * * 0",
    "5 4 * * sun",
    "0 22 * * 1-5",
    "0 0 1,15 * *",
    "23 0-20/2 * * *",
    "0 12 * jan,jul *",
    "0 0 L * *",
    "0 0 * * 5#2",
    "*/20 * * * * *",
]
ZONES = ["UTC", "Europe/Warsaw"]


def median_us(call, moments: list[datetime]) -> float:
    times = []
    for moment in moments:
        begin = time.perf_counter()
        call(moment)
        times.append(time.perf_counter() - begin)
    return statistics.median(times) * 1e6


def figures(samples: int) -> dict[str, float]:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    step = timedelta(days=730) / samples
    moments = [base + step * i + timedelta(seconds=17 * i % 3600) for i in range(samples)]
    results: dict[str, list[float]] = {
        "nbsched": [],
        "cronsim": [],
        "croniter": [],
        "cronsim_iter": [],
        "croniter_iter": [],
    }
    for zone_name in ZONES:
        tz = ZoneInfo(zone_name)
        local = [moment.astimezone(tz) for moment in moments]
        for line in LINES:
            six = len(line.split()) == 6
            trigger = Cron(line, zone_name)
            results["nbsched"].append(median_us(trigger.next_fire, moments))
            results["cronsim"].append(median_us(lambda m, line=line: next(CronSim(line, m)), local))
            results["croniter"].append(
                median_us(
                    lambda m, line=line, six=six: croniter(line, m, second_at_beginning=six).get_next(datetime), local
                )
            )
            walker = CronSim(line, local[0])
            results["cronsim_iter"].append(median_us(lambda _m, walker=walker: next(walker), local))
            stepper = croniter(line, local[0], second_at_beginning=six)
            results["croniter_iter"].append(median_us(lambda _m, s=stepper: s.get_next(datetime), local))
    return {name: statistics.median(values) for name, values in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200, help="next-fire questions per line and zone")
    options = parser.parse_args()
    result = figures(options.samples)
    print(f"lines: {len(LINES)} x zones {ZONES}, {options.samples} questions each")
    for name, value in result.items():
        print(f"  {name:14} {value:8.1f} µs per next fire (median over lines)")
    print(
        f"cron next fire: nbsched {result['nbsched']:.1f} µs, cronsim {result['cronsim']:.1f} µs "
        f"(nbsched/cronsim {result['nbsched'] / result['cronsim']:.2f}), croniter {result['croniter']:.1f} µs "
        f"(nbsched/croniter {result['nbsched'] / result['croniter']:.2f}); "
        f"python -m timeit 'sum(range(1000))': {_common.machine_speed()}"
    )


if __name__ == "__main__":
    main()
