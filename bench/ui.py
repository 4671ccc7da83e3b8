"""The dashboard at scale: build time, live widgets and page-change times with 1,000 and 10,000 jobs.

    python bench/ui.py [--jobs 1000,10000] [--runs 1000000]

Setup (not timed): for each size, a fresh home whose SQLite file gets the jobs and ``--runs`` finished
runs of theirs (100 a second, the newest a minute ago, so the chart's last hour is full) inserted with
sqlite3 before the runner starts. Then, in this process (no kernel: what the dashboard costs in Python, not
in the browser), ``Dashboard(client)`` is built and timed, the widgets it holds are counted, and the
Jobs tab's page changes (Next), a search, and the History tab's first show and page changes are timed.
Indicative figures: other work on this machine shares its cores.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta

import _common
from scale import seed_store as seed_jobs

PAGE_CHANGES = 7


def timed(action, times: int = 1) -> float:
    """The median milliseconds of ``times`` calls of ``action``."""
    spent = []
    for _ in range(times):
        began = time.perf_counter()
        action()
        spent.append((time.perf_counter() - began) * 1000)
    return _common.percentile(spent, 50)


def recent_runs(db_path, runs: int) -> None:
    """``runs`` finished runs of the store's jobs (each in turn; one in 50 an error), 100 a second up to a
    minute ago, so the chart's last hour has runs in every minute: one INSERT ... SELECT in SQLite."""
    if not runs:
        return
    from nbsched.store.sqlite import SQLiteStore

    first = (datetime.now(UTC) - timedelta(minutes=1, seconds=runs / 100)).strftime("%Y-%m-%d %H:%M:%S")
    moment = f"strftime('%Y-%m-%dT%H:%M:%f', '{first}', printf('+%d.%02d seconds', x / 100, x % 100)) || '+00:00'"
    store = SQLiteStore(str(db_path))
    store.db.execute("PRAGMA synchronous=OFF")
    with store._tx():
        store.db.execute("CREATE TEMP TABLE uids (i INTEGER PRIMARY KEY, uid TEXT, name TEXT)")
        store.db.execute("INSERT INTO temp.uids SELECT row_number() OVER (ORDER BY name) - 1, uid, name FROM jobs")
        (jobs,) = store.db.execute("SELECT COUNT(*) FROM temp.uids").fetchone()
        store.db.execute(
            f"""
            WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM n WHERE x < {runs - 1})
            INSERT INTO runs (job_uid, cid, job, service, service_version, "trigger", attempt, status,
                              scheduled_at, started_at, finished_at, delay_ms, duration_ms, output, logs, runner)
            SELECT u.uid, printf('%024x', x), u.name, '{_common.NOOP_SERVICE}', 'seeded', 'schedule', 1,
                   CASE WHEN x % 50 = 0 THEN 'error' ELSE 'ok' END, {moment}, {moment}, {moment}, 1.0, 2.0, '', '',
                   'bench:1'
            FROM n JOIN temp.uids u ON u.i = x % {jobs}
            """
        )
    store.close()


def measure(jobs: int, runs: int) -> dict:
    from nbsched.frontends.ui import HISTORY, Dashboard
    from nbsched.frontends.ui.base import live_widgets

    runner = _common.Runner()
    with runner:
        runner.deploy_noop()
        runner.stop()
        began = time.perf_counter()
        start = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
        seed_jobs(runner.home / "nbsched.db", 0, jobs, start)
        recent_runs(runner.home / "nbsched.db", runs)
        seed_s = time.perf_counter() - began
        runner.__enter__()
        client = runner.client
        client.timeout = 300
        client.jobs_page()  # the first request of a connection is not what a dashboard pays each time
        before = live_widgets()
        began = time.perf_counter()
        dash = Dashboard(client, auto_refresh=False)
        build_ms = (time.perf_counter() - began) * 1000
        widgets = live_widgets() - before
        jobs_next = timed(dash.jobs.next.click, PAGE_CHANGES)
        search = timed(lambda: setattr(dash.jobs.filter, "value", dash.jobs.filter.value + "1"), 4)
        dash.jobs.filter.value = ""
        history_first = timed(lambda: setattr(dash.tabs, "selected_index", HISTORY))
        history_widgets = live_widgets() - before
        history_older = timed(dash.history.older.click, PAGE_CHANGES)
        chart = timed(dash.history.draw_chart, 3)
        dash.close()
    return {
        "jobs": jobs,
        "runs": runs,
        "seed_s": seed_s,
        "build_ms": build_ms,
        "widgets": widgets,
        "history_widgets": history_widgets,
        "jobs_next_ms": jobs_next,
        "search_ms": search,
        "history_first_ms": history_first,
        "history_older_ms": history_older,
        "chart_ms": chart,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", default="1000,10000", help="comma-separated job counts")
    parser.add_argument("--runs", type=int, default=1_000_000, help="finished runs in each store")
    options = parser.parse_args()
    sizes = [int(size) for size in options.jobs.split(",")]
    results = [measure(size, options.runs) for size in sizes]
    for r in results:
        print(
            f"{r['jobs']:>6} jobs, {r['runs']:,} runs (seeded in {r['seed_s']:.0f} s): Dashboard built in "
            f"{r['build_ms']:.0f} ms holding {r['widgets']} widgets ({r['history_widgets']} once History was shown); "
            f"Jobs page change p50 {r['jobs_next_ms']:.0f} ms, search {r['search_ms']:.0f} ms; History first show "
            f"{r['history_first_ms']:.0f} ms (page + chart), page change p50 {r['history_older_ms']:.0f} ms, "
            f"chart (runs per minute, last hour) {r['chart_ms']:.0f} ms"
        )
    print(
        "ui "
        + " ".join(
            f"jobs={r['jobs']} build={r['build_ms']:.0f}ms widgets={r['widgets']}({r['history_widgets']}) "
            f"page={r['jobs_next_ms']:.0f}ms search={r['search_ms']:.0f}ms history_page={r['history_older_ms']:.0f}ms "
            f"chart={r['chart_ms']:.0f}ms;"
            for r in results
        )
    )


if __name__ == "__main__":
    main()
