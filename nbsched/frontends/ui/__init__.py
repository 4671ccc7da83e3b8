"""The ipywidgets dashboard (``nbsched.ui()``, ``%schedule ui``): jobs, a job form, history, services, connections.

Widgets are thin: each button is one client call and nothing is scheduled in a callback.
A background thread refreshes the tab in view (the Jobs tab, and History when its
auto-refresh is on) every few seconds; it never blocks the kernel, and it stops when the
dashboard is closed or replaced by a newer one.

Every part is an attribute, so a notebook or a test can drive it::

    dash = nbsched.ui()
    dash.form.name.value = "sync"; dash.form.save.click()
    dash.jobs.rows["sync"].execute.click()

The Jobs and History tabs show a page of rows (50) that the runner selects, filters and sorts, so
the dashboard costs the same with ten jobs or ten thousand: its widgets are reused page after page,
and a refresh sends the browser only the values that changed.
"""

from __future__ import annotations

import threading

import ipywidgets as W

from .base import close_tree, guarded
from .form import JobForm
from .history import HistoryTab
from .jobs import JobsTab
from .services import ConnectionsTab, ServicesTab

TITLES = ("Jobs", "New / edit job", "History", "Services", "Connections")
JOBS, FORM, HISTORY, SERVICES, CONNECTIONS = range(len(TITLES))
#: Seconds between refreshes of the tab in view.
REFRESH_SECONDS = 5.0

_current: Dashboard | None = None


class Dashboard:
    """The dashboard of one runner; ``dashboard.widget`` is what is displayed.

    Only the Jobs tab is built at once; each other tab is built the first time it is shown (or its
    attribute read), so the dashboard opens fast and holds few widgets.
    """

    def __init__(self, client=None, refresh_seconds: float = REFRESH_SECONDS, auto_refresh: bool = True):
        if client is None:
            from ...client.api import connect

            client = connect()
        self.client = client
        self.lock = threading.RLock()
        self.refresh_seconds = refresh_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._built: dict[int, object] = {}
        self.jobs = JobsTab(client, self.lock, on_edit=self.edit)
        self._built[JOBS] = self.jobs
        self.places = [self.jobs.widget, *(W.VBox() for _ in TITLES[1:])]  # a tab's widget, once it is built
        self.tabs = W.Tab(children=self.places, titles=TITLES)
        self.title = W.HTML(
            f"<b>nbsched</b> &middot; runner of {client.settings.home} &middot; times in {client.tz}",
        )
        self.widget = W.VBox([self.title, self.tabs])
        self.widget.add_class("nbsched-dashboard")
        self.tabs.observe(lambda change: self._tab_shown(change["new"]), names="selected_index")
        guarded(self.jobs.status, self.jobs.refresh, self.lock)
        if auto_refresh:
            self.start()

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    # -- tabs, each built when first wanted --------------------------------------
    def _part(self, index: int):
        with self.lock:
            if index not in self._built:
                part = self._built[index] = self._build(index)
                self.places[index].children = [part.widget]
                if index == FORM:
                    guarded(part.errors["form"], self.refresh_services, self.lock)
            return self._built[index]

    def _build(self, index: int):
        if index == FORM:
            return JobForm(self.client, self.lock, on_saved=self._saved)
        if index == HISTORY:
            return HistoryTab(self.client, self.lock)
        if index == SERVICES:
            return ServicesTab(self.client, self.lock)
        return ConnectionsTab(self.client, self.lock)

    @property
    def form(self) -> JobForm:
        return self._part(FORM)

    @property
    def history(self) -> HistoryTab:
        return self._part(HISTORY)

    @property
    def services(self) -> ServicesTab:
        return self._part(SERVICES)

    @property
    def connections(self) -> ConnectionsTab:
        return self._part(CONNECTIONS)

    # -- wiring between tabs -----------------------------------------------------
    def refresh_services(self) -> None:
        self.form.set_services(self.services.refresh())

    def edit(self, name: str) -> None:
        """Open ``name`` in the form (the Jobs tab's Edit button)."""
        self.form.load(name)
        self.tabs.selected_index = FORM

    def _saved(self, name: str) -> None:
        self.jobs.refresh()

    def _tab_shown(self, index: int | None) -> None:
        if index is None:
            return
        part = self._part(index)
        actions = {
            JOBS: self.jobs.refresh,
            FORM: self.refresh_services,
            HISTORY: getattr(part, "refresh", None),
            SERVICES: self.refresh_services,
            CONNECTIONS: getattr(part, "refresh", None),
        }
        status = part.errors["form"] if index == FORM else part.status
        guarded(status, actions[index], self.lock)

    # -- background refresh ------------------------------------------------------
    def tick(self) -> None:
        """One refresh of the tab in view (what the background thread does every few seconds)."""
        index = self.tabs.selected_index
        if index == JOBS and self.jobs.auto_refresh.value:
            guarded(self.jobs.status, self.jobs.refresh, self.lock)
        elif index == HISTORY and self.history.auto_refresh.value:
            guarded(self.history.status, self.history.refresh, self.lock)

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="nbsched-dashboard-refresh", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self.refresh_seconds):
            if self.widget.comm is None:  # closed: nothing to show any more
                return
            self.tick()

    def close(self) -> None:
        """Stop refreshing (and following a run's logs) and close every widget of the dashboard."""
        self.stop()
        self.history.follower.stop()
        close_tree(self.widget)
        for part in self._built.values():
            if hasattr(part, "looks"):
                part.looks.close()


def ui(client=None, refresh_seconds: float = REFRESH_SECONDS) -> Dashboard:
    """Build the dashboard (display it by making it a cell's last expression).

    A new dashboard replaces the previous one made by ``ui()`` in this kernel: the old one
    stops refreshing and is closed, so re-running the cell does not pile up refresh threads.
    """
    global _current
    if _current is not None:
        _current.close()
    _current = Dashboard(client, refresh_seconds=refresh_seconds)
    return _current
