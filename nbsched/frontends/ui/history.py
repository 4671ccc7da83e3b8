"""The dashboard's History tab: runs coloured by status, one run's logs on click, a chart of durations and delays."""

from __future__ import annotations

import html
import io
import threading

import ipywidgets as W

from ..commands import STATUSES, is_missing
from .base import (
    STATUS_BUTTON_STYLES,
    fmt_ms,
    fmt_time,
    guarded,
    records,
    row_box,
    say,
    show,
    status_html,
    table_row,
)
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


class RunRow:
    """One history row; a fixed pool of these is refilled on each refresh."""

    def __init__(self, on_pick):
        self.run_id: int | None = None
        self.button = W.Button(layout=W.Layout(width="70px"), tooltip="Show this run's logs, output and traceback")
        self.button.add_class("nbsched-run-button")
        self.cells = W.HTML()
        self.widget = row_box([self.button, self.cells])
        self.widget.add_class("nbsched-run-row")
        self.button.on_click(lambda _: on_pick(self.run_id))

    def update(self, record: dict) -> None:
        self.run_id = int(record["run_id"])
        status = record["status"]
        self.button.description = f"#{self.run_id}"
        self.button.button_style = STATUS_BUTTON_STYLES.get(status, "")
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
    """Run history of one job or all, filtered by status, refreshed on demand or automatically."""

    def __init__(self, client, lock: threading.RLock):
        self.client = client
        self.lock = lock
        self.records: list[dict] = []
        self.rows: list[RunRow] = []
        self.selected: int | None = None
        self._chart_key: tuple | None = None

        self.job = W.Dropdown(description="Job", options=[("all jobs", "")], value="")
        self.status_filter = W.Dropdown(description="Status", options=[("any", ""), *((s, s) for s in STATUSES)])
        self.limit = W.BoundedIntText(value=50, min=1, max=500, description="Last", layout=W.Layout(width="150px"))
        self.refresh_button = W.Button(description="Refresh", icon="refresh", layout=W.Layout(width="100px"))
        self.auto_refresh = W.Checkbox(value=False, description="auto-refresh", indent=False)
        self.status = W.HTML()
        header = table_row([(html.escape(title), width) for _, title, width in (("", "run", "70px"), *COLUMNS)], True)
        self.header = W.HTML(header)
        self.body = W.VBox()
        self.empty = W.HTML("<i>No runs match.</i>")
        self.details = W.HTML()
        self.details.add_class("nbsched-run-details")
        self.chart = W.Image(format="png", layout=W.Layout(max_width="720px"))
        self.chart_note = W.HTML()
        self.follower = RunFollower(client, self._live_lines, self._run_ended)
        show(self.chart, False)
        toolbar = W.HBox([self.job, self.status_filter, self.limit, self.refresh_button, self.auto_refresh])
        self.widget = W.VBox(
            [
                toolbar,
                W.VBox([self.header, self.body], layout=W.Layout(overflow="auto")),
                self.empty,
                self.status,
                self.chart,
                self.chart_note,
                self.details,
            ]
        )
        self.widget.add_class("nbsched-history")

        self.refresh_button.on_click(lambda _: guarded(self.status, self.refresh, self.lock))
        for control in (self.job, self.status_filter, self.limit):
            control.observe(lambda _: guarded(self.status, self.refresh, self.lock), names="value")

    def set_jobs(self, names: list[str]) -> None:
        options = [("all jobs", ""), *((name, name) for name in names)]
        if self.job.value and self.job.value not in names:
            options.append((self.job.value, self.job.value))  # keep a deleted job's history reachable
        if list(self.job.options) != options:
            current = self.job.value
            self.job.options = options
            self.job.value = current

    def refresh(self) -> None:
        """Read the history (one client call) and refill the rows and the chart."""
        frame = self.client.history(
            job=self.job.value or None, status=self.status_filter.value or None, limit=self.limit.value
        )
        self.records = records(frame)
        with self.lock:
            while len(self.rows) < len(self.records):
                self.rows.append(RunRow(self.pick))
            for row, record in zip(self.rows, self.records, strict=False):
                row.update(record)
            self.body.children = [row.widget for row in self.rows[: len(self.records)]]
            show(self.empty, not self.records)
        say(self.status, f"{len(self.records)} run(s); times in {self.client.tz}.", "info")
        self._draw_chart()

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

    def _draw_chart(self) -> None:
        points = [r for r in self.records if not is_missing(r["started_at"]) and not is_missing(r["duration_ms"])]
        key = tuple((r["run_id"], r["status"]) for r in points)
        if key == self._chart_key:
            return
        self._chart_key = key
        if len(points) < 2:
            show(self.chart, False)
            self.chart_note.value = ""
            return
        try:
            self.chart.value = _chart_png(points)
        except ImportError:
            say(self.chart_note, "The chart needs matplotlib: pip install matplotlib", "info")
            return
        show(self.chart, True)


def _chart_png(records: list[dict]) -> bytes:
    """Durations and delays over time as a small PNG (matplotlib's Agg canvas; no pyplot, no GUI backend)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ordered = sorted(records, key=lambda r: r["started_at"])
    times = [getattr(r["started_at"], "to_pydatetime", lambda r=r: r["started_at"])() for r in ordered]
    figure = Figure(figsize=(7.2, 2.2), dpi=90)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot(times, [r["duration_ms"] for r in ordered], marker="o", markersize=3, label="duration (ms)")
    delays = [0.0 if is_missing(r["delay_ms"]) else r["delay_ms"] for r in ordered]
    axes.plot(times, delays, marker="x", markersize=3, label="delay (ms)")
    axes.xaxis_date(tz=times[0].tzinfo)  # ticks in the user's time zone, like the table
    axes.set_ylabel("ms")
    axes.legend(loc="upper left", fontsize=8)
    axes.tick_params(labelsize=8)
    figure.autofmt_xdate()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
