"""Small helpers the dashboard's tabs share: messages, time formatting, guarded callbacks, background work.

Nothing here schedules anything; the tabs call the client and show what it answered.
"""

from __future__ import annotations

import html
import logging
import threading
from collections.abc import Callable
from typing import Any

import ipywidgets as W
from ipywidgets.widgets.widget_string import HTMLStyle  # not exported by ipywidgets itself

from .. import commands
from ..commands import STATUS_COLOURS, is_missing

log = logging.getLogger(__name__)

#: Button styles of run statuses, so a run's button carries its colour.
STATUS_BUTTON_STYLES = {
    "running": "info",
    "ok": "success",
    "error": "danger",
    "timeout": "warning",
    "skipped": "",
    "missed": "",
    "interrupted": "warning",
}
_KIND_COLOURS = {"error": "#cf222e", "ok": "#1a7f37", "info": "#57606a", "busy": "#0969da"}


def show(widget: W.Widget, visible: bool = True) -> None:
    widget.layout.display = None if visible else "none"


def say(target: W.HTML, text: str, kind: str = "info") -> None:
    """Put one escaped line of ``text`` into ``target`` in the colour of ``kind`` (error, ok, info, busy)."""
    if not text:
        target.value = ""
        return
    colour = _KIND_COLOURS.get(kind, _KIND_COLOURS["info"])
    prefix = "&#9888; " if kind == "error" else ""
    target.value = f'<span style="color:{colour}">{prefix}{html.escape(text)}</span>'


def status_html(status: str | None) -> str:
    if not status:
        return '<span style="color:#6e7781">&mdash;</span>'
    colour = STATUS_COLOURS.get(status, "#24292f")
    return f'<b style="color:{colour}">{html.escape(status)}</b>'


def fmt_time(value: Any, seconds: bool = True) -> str:
    """A time from a listing (already in the user's time zone) as ``2026-11-25 10:00:00 CET``; a dash if none."""
    return commands.fmt_time(value, missing="\u2014", seconds=seconds)


def fmt_ms(value: Any) -> str:
    if is_missing(value):
        return "\u2014"
    value = float(value)
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"


def slug(name: str) -> str:
    """A CSS-class-safe form of a job name (``api.sync`` -> ``api-sync``)."""
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in name)


def table_row(cells: list[tuple[str, str]], header: bool = False) -> str:
    """One fixed-layout table row as HTML; ``cells`` are (html, width) pairs, so rows and header line up."""
    cols = "".join(f'<col style="width:{width}">' for _, width in cells)
    tag = "th" if header else "td"
    style = "text-align:left;padding:1px 6px 1px 0;overflow:hidden;text-overflow:ellipsis;white-space:nowrap"
    tds = "".join(f'<{tag} style="{style}">{value}</{tag}>' for value, _ in cells)
    total = sum(int(width.removesuffix("px")) for _, width in cells)
    return (
        f'<table style="table-layout:fixed;border-collapse:collapse;width:{total}px">'
        f"<colgroup>{cols}</colgroup><tr>{tds}</tr></table>"
    )


def records(frame) -> list[dict]:
    """A listing's rows as dicts, with pandas' NaN and NaT turned into None."""
    return [
        {key: None if is_missing(value) else value for key, value in row.items()} for row in frame.to_dict("records")
    ]


def row_box(children: list[W.Widget]) -> W.HBox:
    for child in children:
        child.layout.flex = "0 0 auto"
    return W.HBox(children, layout=W.Layout(flex_flow="row nowrap", align_items="center", width="max-content"))


class Looks:
    """The layouts and styles the rows of one table share.

    A layout or a style is a widget of its own, synced to the browser like any other: made once here,
    not once per cell, a page of 50 rows costs a third of the widgets (and of the time to build them).
    Rows have no box of their own either: a table's body is one grid (``table_grid``).
    """

    def __init__(self) -> None:
        self._layouts: dict[str, W.Layout] = {}
        self.button_style = W.ButtonStyle()
        self.html_style = HTMLStyle()

    def layout(self, width: str | None = None) -> W.Layout:
        """The layout of cells ``width`` wide (None: as wide as their content), kept from shrinking in a row."""
        key = width or ""
        if key not in self._layouts:
            self._layouts[key] = W.Layout(width=width, flex="0 0 auto")
        return self._layouts[key]

    def button(self, description: str, css: str, width: str, style: str = "", tooltip: str = "") -> W.Button:
        button = W.Button(
            description=description,
            button_style=style,
            tooltip=tooltip,
            layout=self.layout(width),
            style=self.button_style,
        )
        button.add_class(css)
        return button

    def html(self) -> W.HTML:
        return W.HTML(layout=self.layout(), style=self.html_style)

    def close(self) -> None:
        for widget in (*self._layouts.values(), self.button_style, self.html_style):
            widget.close()


#: Pixels between the cells of a table's grid.
GRID_GAP_PX = 4


def table_grid(columns: int) -> W.GridBox:
    """The body of a table whose rows are ``columns`` widgets each, laid out by the grid (no box per row)."""
    return W.GridBox(
        layout=W.Layout(
            grid_template_columns=" ".join(["max-content"] * columns),
            align_items="center",
            grid_gap=f"2px {GRID_GAP_PX}px",
            width="max-content",
        )
    )


def live_widgets() -> int:
    """How many widgets this kernel holds (each synced to the browser): what a page of the dashboard costs."""
    from ipywidgets.widgets import widget

    return len(widget._instances)


def guarded(status: W.HTML, action: Callable[[], Any], lock: threading.RLock | None = None) -> Any:
    """Run one user action; show its error in ``status`` as one line instead of raising into the void."""
    try:
        if lock is None:
            return action()
        with lock:
            return action()
    except Exception as exc:  # a callback has no caller to raise to; the user sees the message
        from ...errors import NbschedError

        if not isinstance(exc, NbschedError):
            log.exception("dashboard action failed")
        say(status, f"{exc}" if isinstance(exc, NbschedError) else f"{type(exc).__name__}: {exc}", "error")
        return None


def in_background(work: Callable[[], Any], done: Callable[[Any, BaseException | None], None]) -> threading.Thread:
    """Run ``work`` off the kernel's main thread (so the notebook stays responsive), then ``done(result, error)``."""

    def target() -> None:
        try:
            result = work()
        except Exception as exc:  # handed to done(), which shows it
            done(None, exc)
        else:
            done(result, None)

    thread = threading.Thread(target=target, name="nbsched-dashboard-task", daemon=True)
    thread.start()
    return thread


def close_tree(widget: W.Widget) -> None:
    """Close a widget and every widget below it (their comms go away, the front end forgets them)."""
    for child in getattr(widget, "children", ()) or ():
        close_tree(child)
    widget.close()


def where_text(page, what: str) -> str:
    """Where the page is in the listing: ``jobs 51-100 of 10,000`` (with an en dash)."""
    if not page.rows:
        return f'<span style="color:#57606a">no {html.escape(what)}</span>'
    total = f" of {page.total:,}" if page.total is not None else (" and more" if page.more else "")
    return f'<span style="color:#57606a">{html.escape(what)} {page.offset + 1:,}\u2013{page.end:,}{total}</span>'
