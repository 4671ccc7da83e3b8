"""The dashboard's History tab: one page of runs coloured by status, one run's logs on click, and a chart of
the runs per minute over the last hour.

The runner selects the page (job, status, newest first) and counts the runs per minute; the tab keeps
one page of row widgets, refilled in place, whatever the number of runs.
"""

from __future__ import annotations

import html
import threading

import ipywidgets as W

from ...client.pages import PAGE_ROWS, Page
from ..commands import STATUSES, is_missing
from .base import (
    GRID_GAP_PX,
    STATUS_BUTTON_STYLES,
    Looks,
    fmt_ms,
    fmt_time,
    guarded,
    say,
    show,
    status_html,
    table_grid,
    table_row,
    where_text,
)
from .chart import runs_chart_svg
from .follow import RunFollower

COLUMNS = (
    ("job", "job", "140px"),
    ("service", "service", "120px"),
    ("trigger", "trigger", "80px"),
    ("status", "status", "80px"),
    ("scheduled_at", "scheduled", "165px"),
    ("started_at", "started", "165px"),
    ("duration_ms", "duration", "80px"),
    ("delay_ms", "delay", "80px"),
    ("error", "error", "260px"),
)
#: Minutes of the chart of runs per minute.
CHART_MINUTES = 60
#: Wide enough for a run id of seven digits (``#1000001``).
RUN_BUTTON_WIDTH = "90px"


class RunRow:
    """One history row; a fixed pool of these is refilled on each refresh."""

    def __init__(self, looks: Looks, on_pick):
        self.run_id: int | None = None
        self.button = looks.button(
            "", "nbsched-run-button", RUN_BUTTON_WIDTH, tooltip="Show this run's logs, output and traceback"
        )
        self.cells = looks.html()
        self.cells.add_class("nbsched-run-row")
        self.widgets = (self.button, self.cells)  # a row of the table's grid
        self.button.on_click(lambda _: on_pick(self.run_id))

    def update(self, record: dict) -> None:
        self.run_id = int(record["run_id"])
        status = record["status"]
        description, style = f"#{self.run_id}", STATUS_BUTTON_STYLES.get(status, "")
        if self.button.description != description:
            self.button.description = description
        if self.button.button_style != style:
            self.button.button_style = style
        texts = {
            "job": record["job"] or "(invoke)",
            "service": record["service"],
            "trigger": record["trigger"],
            "scheduled_at": fmt_time(record["scheduled_at"]),
            "started_at": fmt_time(record["started_at"]),
            "duration_ms": fmt_ms(record["duration_ms"]),
            "delay_ms": fmt_ms(record["delay_ms"]),
            "error": record["error"] or "",
        }
        values = {key: f'<span title="{html.escape(str(t))}">{html.escape(str(t))}</span>' for key, t in texts.items()}
        values["status"] = status_html(status)
        row = table_row([(values[key], width) for key, _, width in COLUMNS])
        if self.cells.value != row:
            self.cells.value = row


class HistoryTab:
    """Run history of one job or all, filtered by status, a page at a time, refreshed on demand or automatically."""

    def __init__(self, client, lock: threading.RLock, page_rows: int = PAGE_ROWS):
        self.client = client
        self.lock = lock
        self.page_rows = page_rows
        self.offset = 0
        self.page = Page([], 0, None, False)
        self.records: list[dict] = []
        self.looks = Looks()
        self.rows: list[RunRow] = []
        self.selected: int | None = None
        self._counts: dict | None = None

        self.job = W.Text(description="Job", placeholder="all jobs", continuous_update=False)
        self.job.add_class("nbsched-history-job")
        self.status_filter = W.Dropdown(description="Status", options=[("any", ""), *((s, s) for s in STATUSES)])
        self.status_filter.add_class("nbsched-history-status")
        self.refresh_button = W.Button(description="Refresh", icon="refresh", layout=W.Layout(width="100px"))
        self.auto_refresh = W.Checkbox(value=False, description="auto-refresh", indent=False)
        self.newer = W.Button(description="\u25c0 Newer", layout=W.Layout(width="90px"), disabled=True)
        self.newer.add_class("nbsched-history-newer")
        self.older = W.Button(description="Older \u25b6", layout=W.Layout(width="90px"), disabled=True)
        self.older.add_class("nbsched-history-older")
        self.where = W.HTML(layout=W.Layout(margin="0 12px"))
        self.status = W.HTML()
        run_column = ("", "run", f"{int(RUN_BUTTON_WIDTH.removesuffix('px')) + GRID_GAP_PX}px")  # button and gap
        header = table_row([(html.escape(title), width) for _, title, width in (run_column, *COLUMNS)], True)
        self.header = W.HTML(header)
        self.body = table_grid(2)
        self.empty = W.HTML("<i>No runs match.</i>")
        self.details = W.HTML()
        self.details.add_class("nbsched-run-details")
        self.chart = W.HTML()
        self.chart.add_class("nbsched-history-chart")
        self.follower = RunFollower(client, self._live_lines, self._run_ended)
        toolbar = W.HBox([self.job, self.status_filter, self.refresh_button, self.auto_refresh])
        pager = W.HBox([self.newer, self.older, self.where])
        table = W.VBox([self.header, self.body], layout=W.Layout(overflow="auto"))
        self.widget = W.VBox([toolbar, self.chart, pager, table, self.empty, self.status, self.details])
        self.widget.add_class("nbsched-history")

        self.refresh_button.on_click(lambda _: guarded(self.status, self.refresh, self.lock))
        self.newer.on_click(lambda _: self.go(max(0, self.offset - self.page_rows)))
        self.older.on_click(lambda _: self.go(self.offset + self.page_rows))
        for control in (self.job, self.status_filter):
            control.observe(lambda _: self.go(0), names="value")

    def show_job(self, name: str) -> None:
        """Show the runs of job ``name`` (from the newest)."""
        self.job.value = name

    def go(self, offset: int) -> None:
        """Show the page that starts ``offset`` runs from the newest (the pager; a new filter starts at 0).
        The chart, of every run, stays as it is."""
        self.offset = offset
        guarded(self.status, lambda: self.refresh(chart=False), self.lock)

    def refresh(self, chart: bool = True) -> None:
        """Read the page in view and (``chart``) the runs per minute; refill the rows and redraw the chart."""
        filters = {"job": self.job.value.strip() or None, "status": self.status_filter.value or None}
        page = self.client.history_page(limit=self.page_rows, offset=self.offset, **filters)
        if not page.rows and page.offset > 0:  # runs went (purged): back to the newest
            self.offset = 0
            page = self.client.history_page(limit=self.page_rows, offset=0, **filters)
        with self.lock:
            self.page, self.records = page, page.rows
            while len(self.rows) < len(page.rows):
                self.rows.append(RunRow(self.looks, self.pick))
            for row, record in zip(self.rows, page.rows, strict=False):
                row.update(record)
            if len(self.body.children) != 2 * len(page.rows):
                self.body.children = [widget for row in self.rows[: len(page.rows)] for widget in row.widgets]
            self.where.value = where_text(page, "runs")
            self.newer.disabled = page.offset == 0
            self.older.disabled = not page.more
            show(self.empty, not page.rows)
        say(self.status, f"Times in {self.client.tz}.", "info")
        if chart:
            self.draw_chart()

    def draw_chart(self) -> None:
        """Runs per minute of the last hour, as the runner counted them; redrawn only when a count changed."""
        counts = self.client.run_counts(CHART_MINUTES)
        if counts != self._counts:
            self._counts = counts
            self.chart.value = runs_chart_svg(counts)

    def pick(self, run_id: int | None) -> None:
        if run_id is not None:
            guarded(self.status, lambda: self.show_run(run_id), self.lock)

    def show_run(self, run_id: int) -> dict:
        """Show one run's fields, logs, output and traceback (one client call); a running run's logs as they come."""
        run = self.client.run(run_id)
        self.selected = run_id
        self.render_run(run)
        self.follower.follow(run)
        return run

    def _live_lines(self, run: dict, logs: str) -> None:
        with self.lock:
            if self.selected == run["run_id"]:
                self.render_run(run, logs)

    def _run_ended(self, run_id: int) -> None:
        if self.selected == run_id:
            guarded(self.status, lambda: self.show_run(run_id), self.lock)

    def render_run(self, run: dict, live_logs: str | None = None) -> None:
        """The run view of ``run``; ``live_logs``: the lines of a running run so far, in place of its stored logs."""
        run_id = run["run_id"]
        facts = (
            f"<b>Run {run_id}</b> &middot; job <b>{html.escape(str(run.get('job') or '(invoke)'))}</b> &middot; "
            f"{status_html(run['status'])} &middot; trigger {html.escape(str(run['trigger']))} &middot; "
            f"attempt {run['attempt']}<br>scheduled {fmt_time(run['scheduled_at'])} &middot; "
            f"started {fmt_time(run['started_at'])} &middot; finished {fmt_time(run['finished_at'])} &middot; "
            f"duration {fmt_ms(run['duration_ms'])} &middot; delay {fmt_ms(run['delay_ms'])}<br>"
            f"service {html.escape(str(run['service']))} version {html.escape(str(run['service_version']))} "
            f"&middot; cid {html.escape(str(run['cid']))} &middot; runner {html.escape(str(run['runner']))}"
        )
        logs = run.get("logs") if live_logs is None else live_logs
        sections = [("Error", run.get("error")), ("Output", run.get("output")), ("Logs", logs)]
        sections.append(("Traceback", run.get("traceback")))
        blocks = "".join(
            f"<div><b>{title}</b><pre style='white-space:pre-wrap;margin:2px 0 6px 0'>{html.escape(str(text))}</pre>"
            "</div>"
            for title, text in sections
            if not is_missing(text) and text != ""
        )
        self.details.value = f"<div style='border-top:1px solid #d0d7de;padding-top:4px'>{facts}{blocks}</div>"
