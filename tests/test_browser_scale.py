"""The dashboard of a big store in a real JupyterLab and headless Chromium: 10,000 jobs and 1,000,000 runs.

The store is written straight into the SQLite file before the runner starts (the jobs with the store's own
rows, the runs by one INSERT ... SELECT in SQLite), so the test pays seconds for it, not minutes. The
bounds asserted are wide (a busy 2-core machine); the figures measured are printed, and ``bench/ui.py``
gives the precise ones.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import wait_until
from test_browser import Lab, button_of, lab_of

pytestmark = [pytest.mark.browser, pytest.mark.slow]

JOBS = 10_000
RUNS = 1_000_000
CELLS = [
    "import time\nimport nbsched\nfrom nbsched.frontends.ui.base import live_widgets\nclient = nbsched.connect()",
    "began = time.perf_counter()\ndash = nbsched.ui()\n"
    "print(f'ui() took {time.perf_counter() - began:.3f} s; {live_widgets()} widgets')\ndash",
]
#: Wide bounds (the issue's targets are 2 s and 300 ms; a busy 2-core machine shares them with other tests).
FIRST_PAGE_SECONDS = 8.0
ANSWER_SECONDS = 2.0
UI_SECONDS = 2.0  # the target: 0.5 s


def job_name(index: int) -> str:
    return f"job-{index:05d}"


def fill_store(home: Path) -> None:
    """``JOBS`` cron jobs and ``RUNS`` finished runs of theirs in the SQLite file of ``home`` (no runner runs)."""
    from nbsched.model.jobs import JobSpec, JobState
    from nbsched.store import StoredJob
    from nbsched.store.sqlite import SQLiteStore, _job_row

    now = datetime.now(UTC)
    store = SQLiteStore(home / "nbsched.db")
    uids = [uuid.uuid4().hex for _ in range(JOBS)]
    spec = JobSpec.from_user(now=now, default_tz="UTC", name=job_name(0), service="api.hello", cron="0 2 * * *")
    rows = []
    for index, uid in enumerate(uids):
        job = StoredJob(uid, spec.changed(now, "UTC", name=job_name(index)), JobState(created_at=now))
        job.state.next_fire = job.spec.first_fire(now, 0)
        rows.append(_job_row(job))
    store.db.execute("PRAGMA synchronous=OFF")
    with store._tx():
        store.db.executemany(
            "INSERT INTO jobs (name, uid, spec, fires, next_fire, last_fire, paused_note, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        store.db.execute("CREATE TEMP TABLE uids (i INTEGER PRIMARY KEY, uid TEXT)")
        store.db.executemany("INSERT INTO temp.uids VALUES (?, ?)", enumerate(uids))
        first = (now - timedelta(seconds=RUNS // 100)).strftime("%Y-%m-%d %H:%M:%S")
        store.db.execute(
            f"""
            WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM n WHERE x < {RUNS - 1})
            INSERT INTO runs (job_uid, cid, job, service, service_version, "trigger", attempt, status,
                              scheduled_at, started_at, finished_at, delay_ms, duration_ms, output, logs, runner)
            SELECT u.uid, printf('%024x', x), printf('job-%05d', x % {JOBS}), 'api.hello', 'seeded', 'schedule', 1,
                   CASE WHEN x % 50 = 0 THEN 'error' ELSE 'ok' END,
                   strftime('%Y-%m-%dT%H:%M:%f', '{first}', printf('+%d.%02d seconds', x / 100, x % 100)) || '+00:00',
                   strftime('%Y-%m-%dT%H:%M:%f', '{first}', printf('+%d.%02d seconds', x / 100, x % 100)) || '+00:00',
                   strftime('%Y-%m-%dT%H:%M:%f', '{first}', printf('+%d.%02d seconds', x / 100, x % 100)) || '+00:00',
                   1.0, 2.0, '', '', 'seeded:1'
            FROM n JOIN temp.uids u ON u.i = x % {JOBS}
            """
        )
    store.close()


@pytest.fixture(scope="module")
def big_lab() -> Iterator[Lab]:
    with lab_of("big.ipynb", CELLS, "lab-big-last.png", fill=fill_store) as opened:
        yield opened


#: Marks the time of the user's next click, key or input, and resolves to the milliseconds from it until a
#: selector matches (checked at every frame): how long the page took to answer, measured in the page.
_WATCH = """selector => {
    window.nbsStart = null;
    const events = ['click', 'keydown', 'input'];
    const mark = () => {
        if (window.nbsStart === null) window.nbsStart = performance.now();
        events.forEach(name => document.removeEventListener(name, mark, true));
    };
    events.forEach(name => document.addEventListener(name, mark, true));
    window.nbsAnswer = new Promise(done => {
        const check = () => (window.nbsStart !== null && document.querySelector(selector))
            ? done(performance.now() - window.nbsStart) : requestAnimationFrame(check);
        check();
    });
}"""


def answered_in(page, action, selector: str) -> float:
    """Seconds from ``action`` (the page's own clock, from the user's event) until ``selector`` matches."""
    page.evaluate(_WATCH, selector)
    action()
    return page.evaluate("window.nbsAnswer") / 1000


def row_of(index: int) -> str:
    return f".nbsched-job-{job_name(index)}"


def test_a_dashboard_of_ten_thousand_jobs_shows_pages_filters_and_executes_in_time(big_lab):
    page = big_lab.page
    cells = page.locator(".jp-Notebook .jp-Cell")
    cells.first.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")  # import nbsched, connect
    cells.first.locator(".jp-InputPrompt", has_text="[1]").wait_for()

    first_page = answered_in(page, lambda: page.keyboard.press("Shift+Enter"), row_of(0))  # dash = nbsched.ui()
    built = page.locator(".jp-OutputArea-output", has_text="ui() took").inner_text().strip()
    ui_seconds, widgets = float(built.split()[2]), int(built.split()[4])
    next_page = answered_in(page, lambda: page.locator(".nbsched-jobs-next").click(), row_of(50))
    search = page.locator(".nbsched-jobs-filter input")
    filtered = answered_in(page, lambda: search.fill("job-0777"), row_of(7770))
    page.wait_for_function("document.querySelectorAll('.nbsched-job').length <= 10")  # the rows left go too
    shown_filtered = page.locator(".nbsched-job").count()
    search.fill("")
    page.locator(row_of(0)).wait_for()
    for _ in range(2):
        page.locator(".nbsched-jobs-next").click()
    page.locator(row_of(100)).wait_for()
    page.locator(button_of(job_name(100), "execute")).click()
    wait_until(
        lambda: "manual" in set(big_lab.client.history(job=job_name(100), limit=5)["trigger"]),
        timeout=30,
        what="the run Execute started on page 3",
    )
    page.locator(".nbsched-dashboard .lm-TabBar-tab", has_text="History").click()
    page.locator(".nbsched-history-chart svg").wait_for()

    print(f"{built}; first page {first_page:.2f} s, next page {next_page:.3f} s, search {filtered:.3f} s")
    assert shown_filtered == 10  # job-07770 .. job-07779
    assert first_page <= FIRST_PAGE_SECONDS
    assert (ui_seconds <= UI_SECONDS, widgets <= 500) == (True, True), built
    assert max(next_page, filtered) <= ANSWER_SECONDS
    assert page.locator(".nbsched-run-row").count() == 50
    assert page.get_by_text("Error displaying widget").count() == 0
