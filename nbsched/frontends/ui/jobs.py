"""The dashboard's Jobs tab: one page of jobs, filtered and sorted by the runner, with Execute, Pause/Resume,
Edit and Delete on each row.

The tab keeps at most one page of row widgets (``PAGE_ROWS``) whatever the number of jobs: paging,
filtering and refreshing refill the same rows, and a row sends the browser only what changed in it.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable

import ipywidgets as W

from ...client.pages import PAGE_ROWS, Page
from ...model.jobs import JOB_STATES
from ...model.listing import NEVER_RAN
from ...model.runs import STATUSES
from .base import Looks, fmt_time, guarded, say, show, slug, status_html, table_grid, table_row, where_text

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
#: The orders the table offers: (label, sort key of ``client.jobs_page``).
SORTS = (
    ("name", "name"),
    ("next run, soonest first", "next_run"),
    ("last run, newest first", "-last_run"),
    ("last run, oldest first", "last_run"),
    ("name, Z to A", "-name"),
)


def toggle_tooltip(active: bool) -> str:
    """What the Pause/Resume button of an active (or paused) job does, as its tooltip says."""
    if active:
        return (
            "Pause this job: its schedule starts no runs until Resume "
            "(a run already going finishes; Execute still runs it now)"
        )
    return "Resume this job: its schedule starts runs again from its next time (missed times are not run)"


def header_html() -> str:
    return table_row([(html.escape(title), width) for _, title, width in COLUMNS], header=True)


#: The widgets of a row: its cells, then its buttons.
COLUMNS_OF_ROW = ("cells", "execute", "toggle", "edit", "delete")


class JobRow:
    """One row of the table: refilled with another job when the page changes, so its widgets live on.

    Nothing of a row but its cells' HTML names the job (the cells carry the class ``nbsched-job-NAME``),
    so showing another job sends the browser one value, and the buttons change only where the state does.
    """

    def __init__(self, looks: Looks):
        self.name: str | None = None
        self.active = True
        self.cells = looks.html()
        self.execute = looks.button("Execute", "nbsched-execute", "78px", tooltip="Run this job now")
        self.toggle = looks.button("Pause", "nbsched-toggle", "70px", tooltip=toggle_tooltip(active=True))
        self.edit = looks.button("Edit", "nbsched-edit", "48px", tooltip="Edit this job in the form")
        self.delete = looks.button("Delete", "nbsched-delete", "72px", style="danger", tooltip="Delete this job")
        self.cells.add_class("nbsched-job-row")
        self.widgets = tuple(getattr(self, name) for name in COLUMNS_OF_ROW)  # a row of the table's grid

    def update(self, record: dict) -> None:
        """Show ``record``; only the values that differ from what the row shows go to the browser."""
        name = self.name = record["name"]
        self.active = bool(record["active"])
        texts = {
            "name": name + (f" ({record['note']})" if record.get("note") else ""),
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
        cells = table_row([(values[key], width) for key, _, width in COLUMNS])
        row = f'<div class="nbsched-job nbsched-job-{slug(name)}">{cells}</div>'
        if self.cells.value != row:
            self.cells.value = row
        description = "Pause" if self.active else "Resume"
        if self.toggle.description != description:
            with self.toggle.hold_sync():  # one message
                self.toggle.description = description
                self.toggle.tooltip = toggle_tooltip(self.active)


class JobsTab:
    """The jobs table: search, status, state and order, a pager, refresh, and one page of rows."""

    def __init__(self, client, lock: threading.RLock, on_edit: Callable[[str], None], page_rows: int = PAGE_ROWS):
        self.client = client
        self.lock = lock
        self.on_edit = on_edit
        self.page_rows = page_rows
        self.offset = 0
        self.page = Page([], 0, 0, False)
        self.looks = Looks()
        self.slots: list[JobRow] = []  # the row widgets, reused page after page
        self.rows: dict[str, JobRow] = {}  # the rows of the page shown, by job name
        self.shown: list[JobRow] = []
        self.pending_delete: str | None = None

        self.filter = W.Text(placeholder="search name or service", layout=W.Layout(width="220px"))
        self.filter.add_class("nbsched-jobs-filter")
        self.status_filter = W.Dropdown(
            options=[("any last status", ""), *((s, s) for s in STATUSES), ("never ran", NEVER_RAN)],
            layout=W.Layout(width="150px"),
        )
        self.status_filter.add_class("nbsched-jobs-status-filter")
        self.state_filter = W.Dropdown(
            options=[("any state", ""), *((s, s) for s in JOB_STATES)], layout=W.Layout(width="120px")
        )
        self.state_filter.add_class("nbsched-jobs-state-filter")
        self.sort = W.Dropdown(options=SORTS, value="name", layout=W.Layout(width="200px"))
        self.sort.add_class("nbsched-jobs-sort")
        self.refresh_button = W.Button(description="Refresh", icon="refresh", layout=W.Layout(width="100px"))
        self.auto_refresh = W.Checkbox(value=True, description="auto-refresh", indent=False)
        self.previous = W.Button(description="\u25c0 Previous", layout=W.Layout(width="110px"), disabled=True)
        self.previous.add_class("nbsched-jobs-previous")
        self.next = W.Button(description="Next \u25b6", layout=W.Layout(width="90px"), disabled=True)
        self.next.add_class("nbsched-jobs-next")
        self.where = W.HTML(layout=W.Layout(margin="0 12px"))
        self.where.add_class("nbsched-jobs-page")
        self.status = W.HTML()
        self.status.add_class("nbsched-jobs-status")
        self.confirm_text = W.HTML()
        self.confirm_yes = W.Button(description="Yes, delete", button_style="danger")
        self.confirm_yes.add_class("nbsched-confirm-delete")
        self.confirm_no = W.Button(description="Cancel")
        self.confirm = W.HBox([self.confirm_text, self.confirm_yes, self.confirm_no])
        show(self.confirm, False)
        self.header = W.HTML(f'<div style="display:flex;align-items:center">{header_html()}<b>actions</b></div>')
        self.empty = W.HTML("<i>No jobs yet: create one in the <b>New / edit job</b> tab or with %schedule.</i>")
        self.body = table_grid(len(COLUMNS_OF_ROW))
        toolbar = W.HBox([self.filter, self.status_filter, self.state_filter, self.sort, self.refresh_button])
        pager = W.HBox([self.previous, self.next, self.where, self.auto_refresh])
        table = W.VBox([self.header, self.body], layout=W.Layout(overflow="auto"))
        self.widget = W.VBox([toolbar, pager, self.confirm, table, self.empty, self.status])
        self.widget.add_class("nbsched-jobs")

        for control in (self.filter, self.status_filter, self.state_filter, self.sort):
            control.observe(lambda _: self.go(0), names="value")
        self.previous.on_click(lambda _: self.go(max(0, self.offset - self.page_rows)))
        self.next.on_click(lambda _: self.go(self.offset + self.page_rows))
        self.refresh_button.on_click(lambda _: guarded(self.status, self.refresh, self.lock))
        self.confirm_yes.on_click(lambda _: guarded(self.status, self.confirm_delete, self.lock))
        self.confirm_no.on_click(lambda _: self.cancel_delete())

    # -- data ------------------------------------------------------------------
    def go(self, offset: int) -> None:
        """Show the page that starts at ``offset`` (the pager; a new filter or order starts at 0)."""
        self.offset = offset
        guarded(self.status, self.refresh, self.lock)

    def refresh(self) -> None:
        """Read the page in view (one client call) and refill the rows."""
        page = self._read(self.offset)
        if not page.rows and page.offset > 0:  # jobs went (deleted, filtered out): the last page there is
            page = self._read(max(0, (page.total - 1) // self.page_rows * self.page_rows))
        self.offset = page.offset
        self._render(page)

    def _read(self, offset: int) -> Page:
        chosen = {"search": self.filter.value, "status": self.status_filter.value, "state": self.state_filter.value}
        chosen = {key: value for key, value in chosen.items() if value}
        return self.client.jobs_page(limit=self.page_rows, offset=offset, filter=chosen or None, sort=self.sort.value)

    def visible_names(self) -> list[str]:
        """Names of the rows shown, in table order."""
        return [row.name for row in self.shown]

    def _render(self, page: Page) -> None:
        with self.lock:
            self.page = page
            while len(self.slots) < len(page.rows):
                self.slots.append(self._new_row())
            shown = self.slots[: len(page.rows)]
            for row, record in zip(shown, page.rows, strict=True):
                row.update(record)
            self.rows = {row.name: row for row in shown}
            if shown != self.shown:
                self.body.children = [widget for row in shown for widget in row.widgets]
            self.shown = shown
            filtered = any((self.filter.value, self.status_filter.value, self.state_filter.value))
            self.where.value = where_text(page, "jobs" if not filtered else "jobs that match")
            self.previous.disabled = page.offset == 0
            self.next.disabled = not page.more
            show(self.empty, not page.total and not filtered)

    def _new_row(self) -> JobRow:
        row = JobRow(self.looks)
        row.execute.on_click(lambda _: guarded(self.status, lambda: self.execute(row.name), self.lock))
        row.toggle.on_click(lambda _: guarded(self.status, lambda: self.toggle(row.name), self.lock))
        row.edit.on_click(lambda _: guarded(self.status, lambda: self.on_edit(row.name), self.lock))
        row.delete.on_click(lambda _: self.ask_delete(row.name))
        return row

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
        self.confirm_text.value = (
            f"Delete job <b>{html.escape(name)}</b> and stop its schedule? Its run history is kept.&nbsp;"
        )
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
