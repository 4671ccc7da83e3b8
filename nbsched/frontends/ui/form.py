"""The dashboard's job form: create a job, or edit one picked in the Jobs tab.

The form only collects what the user typed and passes it to ``client.schedule`` or
``client.update``; the runner validates, and its message is shown next to the field the
error names (``error.field``, which crosses the socket). The options under "More options"
are the command line's job options (``commands.JOB_OPTIONS``), spelled the same way.
The cron field previews itself as the user types (``client.preview``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import ipywidgets as W

from ...errors import NbschedError
from .. import commands
from ..commands import JOB_OPTIONS, Option, duration_text
from .base import fmt_time, guarded, say, show

KINDS = (("one-time", "one_time"), ("interval", "interval"), ("cron", "cron"))
INTERVAL_UNITS = ("weeks", "days", "hours", "minutes", "seconds")
#: Seconds in each unit of the interval fields.
UNIT_SECONDS = {"weeks": 604800, "days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}
#: The job options under "More options", in the vocabulary's order.
MORE_OPTIONS = tuple(option for option in JOB_OPTIONS if option.advanced)
#: Fields that can carry an inline error message (``form``: about none in particular).
FIELDS = (
    "name",
    "service",
    "kind",
    "at",
    "every",
    "cron",
    "start",
    "end",
    "repeats",
    "tz",
    "extra",
    *(option.key for option in MORE_OPTIONS),
    "form",
)
#: Error fields shown next to another field of the form.
_SHOWN_AT = {"allow_subsecond": "every"}
_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


def field_of_error(error: Exception) -> str:
    """The form field an error is about: the field it names (``form`` when it names none the form has)."""
    field = getattr(error, "field", None)
    field = _SHOWN_AT.get(field, field)
    return field if field in FIELDS else "form"


def _zones() -> list[str]:
    from zoneinfo import available_timezones

    return sorted(zone for zone in available_timezones() if "/" in zone or zone == "UTC")


def _option_widget(option: Option) -> W.Widget:
    """The input of one of the "More options": a dropdown of its choices, a whole number, or text."""
    label = option.key.replace("_", " ").capitalize()
    if option.kind == "choice":
        return W.Dropdown(description=label, options=option.choices, value=option.default)
    if option.kind == "count":
        return W.BoundedIntText(value=option.default or 0, min=0, max=100, description=label)
    return W.Text(description=label, placeholder=f"e.g. {option.usage}")


def _option_value(option: Option, widget: W.Widget) -> Any:
    if option.kind in ("list", "keep"):
        return widget.value.strip()  # empty: none (an edit that empties it clears it)
    if isinstance(widget, W.Text):
        return widget.value.strip() or None
    return widget.value


def _option_text(option: Option, value: Any) -> Any:
    """A stored option's value as its widget holds it."""
    if option.kind == "duration":
        return duration_text(value)
    if option.kind == "count":
        return value or 0
    if option.kind == "list":
        return ", ".join(value or ())
    if option.kind == "keep":
        return "" if value is None else str(value)
    return value or option.default


def _split_seconds(total: float) -> dict[str, int]:
    parts, rest = {}, round(total)
    for unit, size in UNIT_SECONDS.items():
        parts[unit], rest = divmod(rest, size)
    return parts


def interval_words(total: int) -> str:
    """What an interval of ``total`` seconds saves, e.g. ``Saves: every 1d6h (1 day, 6 hours)``."""
    if total <= 0:
        return "No interval yet: set one of the fields above, e.g. 5 minutes."
    words = [
        f"{amount} {unit if amount != 1 else unit[:-1]}" for unit, amount in _split_seconds(total).items() if amount
    ]
    return f"Saves: every {duration_text(total)} ({', '.join(words)})"


class JobForm:
    """Name, service, one-time / interval / cron, dates in the job's time zone, extra and more options."""

    def __init__(self, client, lock: threading.RLock, on_saved: Callable[[str], None]):
        self.client = client
        self.lock = lock
        self.on_saved = on_saved
        self.editing: str | None = None
        self.baseline: dict = {}
        self.preview_times: list[datetime] = []
        wide = W.Layout(width="460px")
        self.heading = W.HTML("<b>New job</b>")
        self.name = W.Text(description="Name", placeholder="e.g. sync", layout=wide)
        self.service = W.Dropdown(description="Service", options=[], layout=wide)
        self.kind = W.ToggleButtons(options=KINDS, value="interval", description="Type")
        zones = _zones()
        self.tz = W.Dropdown(description="Time zone", options=zones, value=client.tz if client.tz in zones else "UTC")
        self.at = W.NaiveDatetimePicker(description="At")
        self.start = W.NaiveDatetimePicker(description="Start")
        self.end = W.NaiveDatetimePicker(description="End")
        self.tz_hint = W.HTML()
        # All units start at 0, so the interval is exactly what the user sets (30 hours saves "every 1d6h").
        self.interval = {
            unit: W.BoundedIntText(
                value=0, min=0, max=10**6, description=unit, continuous_update=True, layout=W.Layout(width="160px")
            )
            for unit in INTERVAL_UNITS
        }
        self.interval_text = W.HTML()
        self.repeats = W.BoundedIntText(
            value=0, min=0, max=10**9, description="Repeats", layout=W.Layout(width="200px")
        )
        self.cron = W.Text(description="Cron", placeholder="*/5 9-17 * * mon-fri", continuous_update=True, layout=wide)
        self.cron_preview = W.HTML()
        self.extra = W.Textarea(
            description="Extra", placeholder='{"region": "eu"}  or  key=value lines  or any text', layout=wide
        )
        self.options = {option.key: _option_widget(option) for option in MORE_OPTIONS}
        for key, widget in self.options.items():  # form.jitter, form.overlap, ... like the other fields
            setattr(self, key, widget)
        self.allow_subsecond = W.Checkbox(value=False, description="Allow an interval shorter than 1s")
        self.active = W.Checkbox(value=True, description="Active")
        self.save = W.Button(description="Create job", button_style="primary", icon="check")
        self.new = W.Button(description="New job", icon="plus")
        self.result = W.HTML()
        self.errors = {field: W.HTML() for field in FIELDS}
        for field, widget in self.errors.items():
            widget.add_class(f"nbsched-error-{field}")
        for field in ("name", "service", "kind", "cron", "extra", "tz"):
            getattr(self, field).add_class(f"nbsched-form-{field}")
        self.save.add_class("nbsched-form-save")
        self.result.add_class("nbsched-form-result")
        self.cron_preview.add_class("nbsched-cron-preview")
        self.interval_text.add_class("nbsched-interval-text")
        self.widget = self._layout()
        self.widget.add_class("nbsched-form")

        self.kind.observe(lambda _: self._show_kind(), names="value")
        self.cron.observe(lambda _: self.preview(), names="value")
        self.name.observe(lambda _: self.preview(), names="value")  # H in a line hashes the name
        self.tz.observe(lambda _: self._tz_changed(), names="value")
        self.extra.observe(lambda _: self.check_extra(), names="value")
        for widget in self.interval.values():
            widget.observe(lambda _: self.describe_interval(), names="value")
        self.save.on_click(lambda _: guarded(self.errors["form"], self.submit, self.lock))
        self.new.on_click(lambda _: self.reset())
        self._show_kind()
        self._tz_changed()
        self.describe_interval()

    def _layout(self) -> W.VBox:
        err = self.errors
        self.one_time_box = W.VBox([self.at, err["at"]])
        self.interval_box = W.VBox([W.HBox(list(self.interval.values())[:3]), W.HBox(list(self.interval.values())[3:])])
        self.interval_box.children = [*self.interval_box.children, self.interval_text, err["every"]]
        self.cron_box = W.VBox([self.cron, err["cron"], self.cron_preview])
        self.window_box = W.VBox([self.start, err["start"], self.end, err["end"], self.repeats, err["repeats"]])
        pairs = [(widget, err[key]) for key, widget in self.options.items()]
        more = W.VBox([*(part for pair in pairs for part in pair), self.allow_subsecond])
        self.more = W.Accordion(children=[more], titles=("More options",), selected_index=None)
        return W.VBox(
            [
                self.heading,
                self.name,
                err["name"],
                self.service,
                err["service"],
                self.kind,
                err["kind"],
                self.tz,
                err["tz"],
                self.tz_hint,
                self.one_time_box,
                self.interval_box,
                self.cron_box,
                self.window_box,
                self.extra,
                err["extra"],
                self.more,
                self.active,
                W.HBox([self.save, self.new]),
                err["form"],
                self.result,
            ]
        )

    # -- live feedback -----------------------------------------------------------
    def _show_kind(self) -> None:
        kind = self.kind.value
        show(self.one_time_box, kind == "one_time")
        show(self.interval_box, kind == "interval")
        show(self.cron_box, kind == "cron")
        show(self.window_box, kind != "one_time")
        if kind == "cron":
            self.preview()

    def _tz_changed(self) -> None:
        self.tz_hint.value = f'<span style="color:#57606a">Dates below are read in {self.tz.value}.</span>'
        self.preview()

    def preview(self) -> None:
        """Validate the cron text as it is typed: its reading and next five fire times, or the runner's message."""
        text = self.cron.value.strip()
        self.preview_times = []
        if not text or self.kind.value != "cron":
            say(self.errors["cron"], "")
            self.cron_preview.value = ""
            return
        try:
            with self.lock:
                found = self.client.preview(cron=text, tz=self.tz.value, count=5, name=self.name.value.strip() or None)
        except NbschedError as exc:
            say(self.errors["cron"], str(exc), "error")
            self.cron_preview.value = ""
            return
        say(self.errors["cron"], "")
        self.preview_times = list(found.times)
        items = "".join(f"<li>{fmt_time(moment)}</li>" for moment in found.times)
        self.cron_preview.value = (
            f'<div style="color:#1a7f37">{_escape(found.description)}</div>'
            f'<div style="color:#57606a">Next runs:</div><ol style="margin:0">{items}</ol>'
        )

    def describe_interval(self) -> str:
        """Show the interval Save will store, as the job list will show it and in words; return the words."""
        total = sum(widget.value * UNIT_SECONDS[unit] for unit, widget in self.interval.items())
        text = interval_words(total)
        self.interval_text.value = f'<span style="color:#57606a">{_escape(text)}</span>'
        return text

    def check_extra(self) -> bool:
        """Extra that looks like JSON must parse as JSON; anything else goes to the service as text."""
        try:
            commands.check_extra(self.extra.value.strip(), on_command_line=False)
        except NbschedError as exc:
            say(self.errors["extra"], str(exc), "error")
            return False
        say(self.errors["extra"], "")
        return True

    # -- values ------------------------------------------------------------------
    def values(self) -> dict:
        """What the form holds, as keyword arguments of ``client.schedule`` (without the service)."""
        kind = self.kind.value
        args: dict[str, Any] = {
            "name": self.name.value.strip(),
            "service": self.service.value,
            "tz": self.tz.value,
            "extra": self.extra.value if self.extra.value.strip() else None,
            "active": self.active.value,
            "allow_subsecond": self.allow_subsecond.value,
        }
        args.update((option.key, _option_value(option, self.options[option.key])) for option in MORE_OPTIONS)
        if kind == "one_time":
            args["at"] = _date_text(self.at.value)
            return args
        if kind == "interval":
            args["every"] = {unit: widget.value for unit, widget in self.interval.items() if widget.value} or {
                "seconds": 0
            }
        else:
            args["cron"] = self.cron.value.strip()
        args["start"] = _date_text(self.start.value)
        args["end"] = _date_text(self.end.value)
        args["repeats"] = self.repeats.value or None
        return args

    def clear_errors(self) -> None:
        for widget in self.errors.values():
            say(widget, "")
        self.result.value = ""

    def submit(self) -> None:
        """Save: one client call (schedule, or update when editing); errors land next to their field."""
        self.clear_errors()
        if not self.check_extra():
            return
        values = self.values()
        try:
            if self.editing is None:
                job = self.client.schedule(values.pop("service"), **values)
                verb = "Created"
            else:
                job = self.client.update(self.editing, **self._changes(values))
                verb = "Saved"
        except NbschedError as exc:
            self.show_error(exc)
            return
        if not job.active:
            when = "paused"
        else:
            when = f"next run {fmt_time(job.next_run)}" if job.next_run is not None else "no more runs"
        say(self.result, f"{verb} job {job.name!r}: {job.definition}; {when}.", "ok")
        self.on_saved(job.name)

    def _changes(self, values: dict) -> dict:
        changes = {key: value for key, value in values.items() if self.baseline.get(key) != value}
        changes.pop("name", None)
        trigger = next(key for key in ("every", "cron", "at") if key in values)
        if any(key in changes for key in ("every", "cron", "at")):
            changes[trigger] = values[trigger]
        return changes

    def show_error(self, error: Exception) -> str:
        field = field_of_error(error)
        say(self.errors[field], str(error), "error")
        if field in self.options:
            self.more.selected_index = 0
        return field

    # -- modes -------------------------------------------------------------------
    def set_services(self, names: list[str]) -> None:
        current = self.service.value
        self.service.options = names
        if current in names:
            self.service.value = current
        elif names:
            self.service.value = names[0]

    def reset(self) -> None:
        """Back to an empty form that creates a new job."""
        self.editing, self.baseline = None, {}
        self.heading.value = "<b>New job</b>"
        self.name.disabled = False
        self.name.value = ""
        self.save.description = "Create job"
        self.clear_errors()

    def load(self, name: str) -> None:
        """Fill the form from a stored job (one client call); Save then updates it."""
        record = self.client.job(name)
        self.clear_errors()
        self.editing = name
        self.heading.value = f"<b>Edit job {_escape(name)}</b> (the name cannot change)"
        self.name.value, self.name.disabled = name, True
        if record["service"] not in self.service.options:
            self.service.options = [*self.service.options, record["service"]]
        self.service.value = record["service"]
        self.tz.value = record["tz"]
        self.kind.value = record["kind"]
        self.at.value = _local(record.get("at"), record["tz"])
        self.start.value = _local(record.get("start"), record["tz"])
        self.end.value = _local(record.get("end"), record["tz"])
        for unit, amount in _split_seconds(record.get("every") or 0).items():
            self.interval[unit].value = amount
        self.cron.value = record.get("cron") or ""
        self.repeats.value = record.get("repeats") or 0
        extra = record.get("extra")
        self.extra.value = "" if extra is None else extra if isinstance(extra, str) else json.dumps(extra)
        for option in MORE_OPTIONS:
            self.options[option.key].value = _option_text(option, record.get(option.key))
        self.allow_subsecond.value = bool(record.get("allow_subsecond"))
        self.active.value = bool(record["active"])
        self.save.description = "Save changes"
        self.baseline = self.values()


def _escape(text: str) -> str:
    import html

    return html.escape(text)


def _date_text(value: datetime | None) -> str | None:
    """A picker's naive value as text the runner reads in the job's time zone."""
    return None if value is None else value.strftime(_DATE_FORMAT)


def _local(value: str | None, tz: str) -> datetime | None:
    if not value:
        return None
    from ...model.timeparse import zone

    return datetime.fromisoformat(value).astimezone(zone(tz)).replace(tzinfo=None, microsecond=0)
