"""The dashboard's Jobs tab: one row per job with Execute, Pause/Resume, Edit and Delete."""

from __future__ import annotations

import html
import threading
from collections.abc import Callable

import ipywidgets as W

from .base import close_tree, fmt_time, guarded, records, row_box, say, show, slug, status_html, table_row

#: (key, header, width) of the table's columns.
COLUMNS = (
    ("name", "name", "150px"),
    ("type", "type", "62px"),
    ("definition", "definition", "190px"),
    ("service", "service", "100px"),
    ("active", "state", "60px"),
    ("next_run", "next run", "165px"),
    ("last_run", "last run", "165px"),
    ("last_status", "status", "62px"),
    ("runs", "runs", "40px"),
)


def _button(description: str, css: str, width: str, style: str = "", tooltip: str = "") -> W.Button:
    button = W.Button(description=description, button_style=style, tooltip=tooltip, layout=W.Layout(width=width))
    button.add_class(css)
    return button


def toggle_tooltip(name: str, active: bool) -> str:
    """What the Pause/Resume button of an active (or paused) job does, as its tooltip says."""
    if active:
        return (
            f"Pause job {name!r}: its schedule starts no runs until Resume "
            "(a run already going finishes; Execute still runs it now)"
        )
    return f"Resume job {name!r}: its schedule starts runs again from its next time (missed times are not run)"


def header_html() -> str:
    return table_row([(html.escape(title), width) for _, title, width in COLUMNS], header=True)


class JobRow:
    """The widgets of one job's row; updated in place on each refresh, so the page does not flicker."""

    def __init__(self, name: str):
        self.name = name
        self.cells = W.HTML()
        self.execute = _button("Execute", "nbsched-execute", "78px", tooltip=f"Run {name} now")
        self.toggle = _button("Pause", "nbsched-toggle", "70px", tooltip=toggle_tooltip(name, active=True))
        self.edit = _button("Edit", "nbsched-edit", "48px", tooltip=f"Edit {name} in the form")
        self.delete = _button("Delete", "nbsched-delete", "72px", style="danger", tooltip=f"Delete {name}")
        self.widget = row_box([self.cells, self.execute, self.toggle, self.edit, self.delete])
        self.widget.add_class("nbsched-job-row")
        self.widget.add_class(f"nbsched-job-{slug(name)}")
        self.active = True

    def update(self, record: dict) -> None:
        self.active = bool(record["active"])
        texts = {
            "name": record["name"] + (f" ({record['note']})" if record.get("note") else ""),
            "type": str(record["type"]).replace("_", "-"),
            "definition": str(record["definition"]),
            "service": str(record["service"]),
            "active": str(record.get("state") or ("active" if self.active else "paused")),
            "next_run": fmt_time(record["next_run"], seconds=False),
            "last_run": fmt_time(record["last_run"], seconds=False),
            "runs": str(record["runs"]),
        }
        values = {key: f'<span title="{html.escape(text)}">{html.escape(text)}</span>' for key, text in texts.items()}
        values["last_status"] = status_html(record["last_status"])
        row = table_row([(values[key], width) for key, _, width in COLUMNS])
        if self.cells.value != row:
            self.cells.value = row
        description = "Pause" if self.active else "Resume"
        if self.toggle.description != description:
            self.toggle.description = description
            self.toggle.tooltip = toggle_tooltip(self.name, self.active)


class JobsTab:
    """The jobs table: a filter, a refresh button, an auto-refresh switch and a row per job."""

    def __init__(self, client, lock: threading.RLock, on_edit: Callable[[str], None], on_jobs: Callable[[list], None]):
        self.client = client
        self.lock = lock
        self.on_edit = on_edit
        self.on_jobs = on_jobs
        self.records: list[dict] = []
        self.rows: dict[str, JobRow] = {}
        self.shown: list[JobRow] = []
        self.pending_delete: str | None = None

        self.filter = W.Text(placeholder="filter by name, service, type or definition", layout=W.Layout(width="320px"))
        self.filter.add_class("nbsched-jobs-filter")
        self.refresh_button = W.Button(description="Refresh", icon="refresh", layout=W.Layout(width="100px"))
        self.auto_refresh = W.Checkbox(value=True, description="auto-refresh", indent=False)
        self.status = W.HTML()
        self.status.add_class("nbsched-jobs-status")
        self.confirm_text = W.HTML()
        self.confirm_yes = W.Button(description="Yes, delete", button_style="danger")
        self.confirm_yes.add_class("nbsched-confirm-delete")
        self.confirm_no = W.Button(description="Cancel")
        self.confirm = W.HBox([self.confirm_text, self.confirm_yes, self.confirm_no])
        show(self.confirm, False)
        self.header = row_box([W.HTML(header_html()), W.HTML("<b>actions</b>")])
        self.empty = W.HTML("<i>No jobs yet: create one in the <b>New / edit job</b> tab or with %schedule.</i>")
        self.body = W.VBox()
        self.tz_note = W.HTML(f'<span style="color:#57606a">Times in {client.tz}</span>')
        toolbar = W.HBox([self.filter, self.refresh_button, self.auto_refresh, self.tz_note])
        table = W.VBox([self.header, self.body], layout=W.Layout(overflow="auto"))
        self.widget = W.VBox([toolbar, self.confirm, table, self.empty, self.status])
        self.widget.add_class("nbsched-jobs")

        self.filter.observe(lambda _: self._render(), names="value")
        self.refresh_button.on_click(lambda _: guarded(self.status, self.refresh, self.lock))
        self.confirm_yes.on_click(lambda _: guarded(self.status, self.confirm_delete, self.lock))
        self.confirm_no.on_click(lambda _: self.cancel_delete())

    # -- data ------------------------------------------------------------------
    def refresh(self) -> None:
        """Read the job list (one client call) and update the rows."""
        self.records = records(self.client.jobs())
        self._render()
        self.on_jobs([record["name"] for record in self.records])

    def visible_names(self) -> list[str]:
        """Names of the rows the filter lets through, in table order."""
        return [row.name for row in self.shown]

    def _matches(self, record: dict) -> bool:
        needle = self.filter.value.strip().lower()
        haystack = " ".join(str(record[key]) for key in ("name", "service", "type", "definition", "note"))
        return not needle or needle in haystack.lower()

    def _render(self) -> None:
        with self.lock:
            names = {record["name"] for record in self.records}
            for gone in set(self.rows) - names:
                self._drop_row(gone)
            shown = []
            for record in self.records:
                row = self.rows.get(record["name"]) or self._add_row(record["name"])
                row.update(record)
                if self._matches(record):
                    shown.append(row)
            self.shown = shown
            self.body.children = [row.widget for row in shown]
            show(self.empty, not self.records)

    def _add_row(self, name: str) -> JobRow:
        row = JobRow(name)
        row.execute.on_click(lambda _: guarded(self.status, lambda: self.execute(name), self.lock))
        row.toggle.on_click(lambda _: guarded(self.status, lambda: self.toggle(name), self.lock))
        row.edit.on_click(lambda _: guarded(self.status, lambda: self.on_edit(name), self.lock))
        row.delete.on_click(lambda _: self.ask_delete(name))
        self.rows[name] = row
        return row

    def _drop_row(self, name: str) -> None:
        close_tree(self.rows.pop(name).widget)

    # -- actions: each is one client call --------------------------------------
    def execute(self, name: str) -> int:
        run_id = self.client.execute(name)
        say(self.status, f"Run {run_id} of job {name!r} started; see the History tab.", "ok")
        self.refresh()
        return run_id

    def toggle(self, name: str) -> None:
        row = self.rows[name]
        if row.active:
            self.client.pause(name)
            say(self.status, f"Job {name!r} paused; Resume starts it again.", "ok")
        else:
            self.client.resume(name)
            say(self.status, f"Job {name!r} resumed.", "ok")
        self.refresh()

    def ask_delete(self, name: str) -> None:
        self.pending_delete = name
        self.confirm_text.value = f"Delete job <b>{name}</b> and stop its schedule? Its run history is kept.&nbsp;"
        show(self.confirm, True)

    def cancel_delete(self) -> None:
        self.pending_delete = None
        show(self.confirm, False)

    def confirm_delete(self) -> None:
        name, self.pending_delete = self.pending_delete, None
        show(self.confirm, False)
        if name is None:
            return
        self.client.delete(name)
        say(self.status, f"Job {name!r} deleted.", "ok")
        self.refresh()
