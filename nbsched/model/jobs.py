"""The job model: a named schedule that runs one service, validated on construction.

``JobSpec.from_user(...)`` reads what a user typed (strings, timedeltas, dicts) and either
returns a valid, normalised spec or raises ``InvalidJob`` saying what is wrong and what a
valid value looks like. ``JobState`` is what changes as the job fires.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta

from .. import config
from ..errors import InvalidInput, InvalidJob
from .notify import parse_notify_on, parse_targets
from .retention import parse_keep
from .timeparse import format_duration, from_iso, iso, parse_datetime, parse_duration, zone
from .triggers import Cron, Interval, OneTime, Trigger, on_grid_from, pick_trigger

KINDS = ("one_time", "interval", "cron")
OVERLAP_POLICIES = ("skip", "queue", "queue_all", "replace", "allow")
MISFIRE_POLICIES = ("skip", "once", "all")
#: Where a run runs: in a long-lived worker shared with other runs, or in a fresh process of its own.
ISOLATION = ("worker", "process")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,199}$")
NAME_HELP = "names are 1-200 characters: letters, digits and . _ - : @ /, starting with a letter or digit"

#: What a job's ``state`` in a listing says: it fires (``active``), it is paused, it fired once and is done
#: (``finished``: a one-time job), or its ``end`` or ``repeats`` is reached (``ended``: no more fires).
JOB_STATES = ("active", "paused", "finished", "ended")
#: The keys of a job listing (``jobs``; ``%schedule list``; ``nbsched jobs --format json``).
JOB_LIST_FIELDS = (
    "name",
    "type",
    "definition",
    "service",
    "active",
    "state",
    "next_run",
    "last_run",
    "last_status",
    "runs",
    "note",
)

_MICROSECOND = timedelta(microseconds=1)
#: The fields whose values many jobs share (a service's name, a time zone, a policy, an interval): each
#: distinct value is kept once (``_shared``), not once per job; 100,000 jobs loaded from JSON held ~10
#: copies of such values each.
_SHARED_FIELDS = (
    "service",
    "kind",
    "tz",
    "every",
    "cron",
    "jitter",
    "timeout",
    "misfire",
    "overlap",
    "catchup",
    "note",
    "isolation",
)
#: How many distinct shared values are kept at most (beyond it, a value is kept as given).
_MAX_SHARED = 10_000
_shared_values: dict[tuple, object] = {}
#: The one copy kept of each schedule's words (``JobSpec.definition``): "every 1m" of 100,000 jobs is one string,
#: not 5.7 MB of them. Apart from the values above, so that many jobs' distinct words do not crowd those out.
_definitions: dict[str, str] = {}


def _shared(value: object) -> object:
    """The one copy kept of ``value`` (text or a number), equal to it and of its type."""
    if value is None or value.__class__ not in (str, float):
        return value
    key = (value.__class__, value if value.__class__ is str else repr(value))  # repr: -0.0 is not 0.0
    kept = _shared_values.get(key)
    if kept is None:
        if len(_shared_values) >= _MAX_SHARED:
            return value
        kept = _shared_values[key] = value
    return kept


@functools.lru_cache(maxsize=256)
def _interval(seconds: float) -> timedelta:
    """The ``timedelta`` of an interval in seconds, one per distinct interval."""
    return timedelta(seconds=seconds)


class _Cached:
    """Room for what a spec computes once (its trigger, its definition): slots beside the fields, so that
    they are not compared, copied or stored."""

    __slots__ = ("_definition", "_trigger")


@dataclass(frozen=True, slots=True)
class JobSpec(_Cached):
    """What a user asked for; never changes as the job fires.

    Slotted (a runner holds one per job: 100,000 of them), with the values jobs share kept once."""

    name: str
    service: str
    kind: str
    every: float | None = None  # seconds
    allow_subsecond: bool = False  # every may be shorter than config.MIN_INTERVAL_SECONDS
    cron: str | None = None
    at: datetime | None = None
    start: datetime | None = None
    end: datetime | None = None
    repeats: int | None = None
    tz: str = "UTC"
    extra: object = None
    active: bool = True
    jitter: float = 0.0
    timeout: float | None = None
    retries: int = 0
    misfire: str = "skip"
    overlap: str = "skip"
    catchup: float = 3600.0
    note: str = ""
    isolation: str = "worker"  # "process": each run in a fresh process (or the service's class says so)
    notify_on: tuple[str, ...] = ()  # the final statuses that notify (model.notify.NOTIFY_ON)
    notify: tuple[str, ...] = ()  # where notifications go: smtp:CONNECTION:ADDRESS, webhook:URL, service:NAME
    history_keep: int | str | None = None  # finished runs kept: a count or an age ("30d"); None: the default

    def __post_init__(self) -> None:
        for name in _SHARED_FIELDS:
            value = getattr(self, name)
            kept = _shared(value)
            if kept is not value:
                object.__setattr__(self, name, kept)

    def trigger(self) -> Trigger:
        """The trigger, built once per spec (a spec never changes; a firing job asks every fire).

        An interval's is built each time it is asked for, and not kept: its fires come from the spec's own
        ``start`` and ``every`` (``next_fire``), which saves an object per job (100,000 jobs: ~5 MB)."""
        try:
            return self._trigger
        except AttributeError:
            pass
        if self.kind == "interval":
            return Interval(_interval(self.every), self.start)
        trigger = Cron(self.cron, self.tz, seed=self.name) if self.kind == "cron" else OneTime(self.at)
        object.__setattr__(self, "_trigger", trigger)
        return trigger

    def definition(self) -> str:
        """The schedule in words, for listings (built once per spec, like the trigger)."""
        try:
            return self._definition
        except AttributeError:
            pass
        text = self._definition_text()
        text = _definitions.setdefault(text, text) if len(_definitions) < _MAX_SHARED else text
        object.__setattr__(self, "_definition", text)
        return text

    def _definition_text(self) -> str:
        if self.kind == "cron":
            text = f"cron {self.cron} ({self.tz})"
        elif self.kind == "interval":
            text = self.trigger().describe()
        else:
            text = f"once at {self._local(self.at)}"
        if self.repeats:
            text += f", {self.repeats} times"
        if self.end:
            text += f", until {self._local(self.end)}"
        return text

    def _local(self, moment: datetime) -> str:
        """A time as the user reads it: in the job's time zone, named."""
        return f"{moment.astimezone(zone(self.tz)):%Y-%m-%d %H:%M:%S} ({self.tz})"

    def first_fire(self, now: datetime, fires: int = 0) -> datetime | None:
        """The first fire at or after ``now`` and ``start`` (a one-time job in the past fires at once)."""
        if self.kind == "one_time":
            return self._bounded(max(self.at, now), fires) if fires == 0 else None
        after = max(now, self.start) - timedelta(microseconds=1)
        return self._bounded(self.trigger().next_fire(after), fires)

    def next_fire(self, after: datetime, fires: int) -> datetime | None:
        """The fire after ``after`` once ``fires`` fires have happened; None when the job is finished."""
        # Datetimes count whole microseconds: before ``start`` means at or before the microsecond before it.
        after = after if after >= self.start else self.start - _MICROSECOND
        if self.kind == "interval":
            fire = on_grid_from(self.start, _interval(self.every), after, strictly_after=True)
        else:
            fire = self.trigger().next_fire(after)
        return self._bounded(fire, fires)

    def _bounded(self, fire: datetime | None, fires: int) -> datetime | None:
        if fire is None or (self.repeats is not None and fires >= self.repeats):
            return None
        if self.end is not None and fire > self.end:
            return None
        return fire

    def to_record(self) -> dict:
        """A JSON-safe dict, the form the store and the socket carry. Its values are the spec's own (a spec
        never changes, and what takes the record encodes or copies it): no deep copy, which took half of a
        pause's time in the runner."""
        record = {name: getattr(self, name) for name in _SPEC_FIELDS}
        for key in ("at", "start", "end"):
            record[key] = iso(record[key])
        return record

    @classmethod
    def from_record(cls, record: dict) -> JobSpec:
        values = {k: record[k] for k in cls.__dataclass_fields__ if k in record}
        for key in ("at", "start", "end"):
            values[key] = from_iso(values.get(key))
        for key in ("notify_on", "notify"):
            values[key] = tuple(values.get(key) or ())
        return cls(**values)

    def changed(self, now: datetime, default_tz: str, **changes) -> JobSpec:
        """A new spec with ``changes`` applied and validated the same way as a new job."""
        current = self.to_record()
        if {"every", "cron", "at"} & set(changes):
            for key in ("every", "cron", "at"):
                current.pop(key, None)
        current.pop("kind", None)
        if "notify" in changes and not changes["notify"] and "notify_on" not in changes:
            current["notify_on"] = ()  # no targets left: nothing to tell
        current.update(changes)
        return JobSpec.from_user(now=now, default_tz=default_tz, **current)

    @classmethod
    def from_user(cls, *, now: datetime, default_tz: str, **raw) -> JobSpec:
        """Validate and normalise a job as a user typed it."""
        return _build(raw, now, default_tz)


#: JobSpec's fields, in order (its records' keys).
_SPEC_FIELDS = tuple(field.name for field in fields(JobSpec))


@dataclass(slots=True)
class JobState:
    """What changes as a job fires: stored beside the spec and updated with each claim (slotted: one per job)."""

    fires: int = 0
    next_fire: datetime | None = None
    last_fire: datetime | None = None
    paused_note: str = ""
    created_at: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.next_fire is None


def job_state(spec: JobSpec, state: JobState) -> str:
    """The job's state as listings show it (one of ``JOB_STATES``): done before paused, since a job that will
    fire no more does not fire when resumed either."""
    if state.finished:
        return "finished" if spec.kind == "one_time" else "ended"
    return "active" if spec.active else "paused"


def _build(raw: dict, now: datetime, default_tz: str) -> JobSpec:
    known = set(JobSpec.__dataclass_fields__) - {"kind"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise InvalidJob(f"Unknown job option(s) {', '.join(unknown)}; valid options are {', '.join(sorted(known))}.")
    name = _name(raw.get("name"), "job name", "name")
    service = _name(raw.get("service"), "service name", "service")
    tz = _tz(raw.get("tz"), default_tz)
    kind = {"every": "interval", "cron": "cron", "at": "one_time"}[pick_trigger(raw, f"Job {name!r}")]
    start = _when(raw.get("start"), tz, now, "start") or now
    end = _when(raw.get("end"), tz, now, "end")
    if end is not None and end <= start:
        raise InvalidJob(
            f"Job {name!r}: end {end.isoformat()} is not after start {start.isoformat()}; move end later.", field="end"
        )
    values = dict(
        name=name,
        service=service,
        kind=kind,
        start=start,
        end=end,
        tz=tz,
        repeats=_count(raw.get("repeats"), "repeats", minimum=1),
        extra=validate_extra(raw.get("extra")),
        active=_flag(raw.get("active", True), "active"),
        jitter=_seconds(raw.get("jitter"), "jitter", allow_zero=True) or 0.0,
        timeout=_seconds(raw.get("timeout"), "timeout"),
        retries=_count(raw.get("retries"), "retries", minimum=0) or 0,
        misfire=_choice(raw.get("misfire") or "skip", MISFIRE_POLICIES, "misfire"),
        overlap=_choice(raw.get("overlap") or "skip", OVERLAP_POLICIES, "overlap"),
        catchup=_seconds(raw.get("catchup") or config.DEFAULT_CATCHUP, "catchup"),
        note=validate_note(raw.get("note")),
        allow_subsecond=_flag(raw.get("allow_subsecond", False), "allow_subsecond"),
        isolation=_choice(raw.get("isolation") or "worker", ISOLATION, "isolation"),
        notify=parse_targets(raw.get("notify")),
        history_keep=parse_keep(raw.get("history_keep")),
    )
    values["notify_on"] = parse_notify_on(raw.get("notify_on"), has_targets=bool(values["notify"]))
    if kind == "interval":
        try:
            every = parse_duration(raw["every"], what="interval")
        except InvalidInput as exc:
            raise InvalidJob(str(exc), field="every") from None
        if every <= timedelta(0):
            raise InvalidJob(
                f"Invalid interval {format_duration(every)!r} for job {name!r}: "
                "it must be positive, e.g. '90s', '5m', '1h30m' or {'minutes': 5}.",
                field="every",
            )
        if every.total_seconds() < config.MIN_INTERVAL_SECONDS and not values["allow_subsecond"]:
            raise InvalidJob(
                f"Invalid interval {format_duration(every)!r} for job {name!r}: the shortest is "
                f"{config.MIN_INTERVAL_SECONDS:g}s, e.g. '1s' or '5m'; for a shorter one pass allow_subsecond=True "
                "(--allow-subsecond).",
                field="every",
            )
        values["every"] = every.total_seconds()
    elif kind == "cron":
        values["cron"] = Cron(raw["cron"], tz, seed=name).expression
    else:
        values["at"] = _when(raw["at"], tz, now, "at")
    spec = JobSpec(**values)
    spec.trigger()  # validates the trigger as a whole
    _check_jitter(spec, raw.get("jitter"))
    return spec


def _check_jitter(spec: JobSpec, given: object) -> None:
    """Refuse a jitter longer than the job's interval (for a cron job: the shortest time between its next fires)."""
    if not spec.jitter:
        return
    limit, what = config.MAX_ONE_TIME_JITTER_SECONDS, "a day for a one-time job"
    if spec.kind == "interval":
        limit, what = spec.every, "the job's interval"
    elif spec.kind == "cron":
        fires, fire = [], spec.trigger().first_fire(spec.start)
        while fire is not None and len(fires) < 6:
            fires.append(fire)
            fire = spec.trigger().next_fire(fire)
        if len(fires) > 1:
            limit = min((later - earlier).total_seconds() for earlier, later in itertools.pairwise(fires))
            what = "the time between two of the job's fires"
    if spec.jitter > limit:
        most = format_duration(timedelta(seconds=limit))
        raise InvalidJob(
            f"Invalid jitter {given!r} for job {spec.name!r}: use at most {what} ({most}), e.g. '5s'.", field="jitter"
        )


def _name(value: object, what: str, field: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise InvalidJob(f"Invalid {what} {value!r}: {NAME_HELP}, e.g. 'sync' or 'api.scheduler.sync'.", field=field)
    return value


def _tz(value: object, default_tz: str) -> str:
    name = value or default_tz
    try:
        zone(name)
    except InvalidInput as exc:
        raise InvalidJob(str(exc), field="tz") from None
    return name


def _when(value: object, tz: str, now: datetime, what: str) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        return parse_datetime(value, tz, now, what=what)
    except InvalidInput as exc:
        raise InvalidJob(str(exc), field=what) from None


def _seconds(value: object, what: str, allow_zero: bool = False) -> float | None:
    if value in (None, ""):
        return None
    try:
        seconds = parse_duration(value, what=what).total_seconds()
    except InvalidInput as exc:
        raise InvalidJob(str(exc), field=what) from None
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise InvalidJob(f"Invalid {what} {value!r}: it must be a positive duration, e.g. '5s' or '2m'.", field=what)
    return seconds


def _count(value: object, what: str, minimum: int) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = int(value)
        if isinstance(value, bool) or number != float(value):
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise InvalidJob(f"Invalid {what} {value!r}: use a whole number, {minimum} or more.", field=what) from None
    if number < minimum:
        raise InvalidJob(f"Invalid {what} {value!r}: use a whole number, {minimum} or more.", field=what)
    return number


def _flag(value: object, what: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "yes", "1", "false", "no", "0"):
        return value.lower() in ("true", "yes", "1")
    raise InvalidJob(f"Invalid {what} {value!r}: use true or false.", field=what)


def _choice(value: object, choices: tuple[str, ...], what: str) -> str:
    if value not in choices:
        raise InvalidJob(f"Invalid {what} policy {value!r}: use one of {', '.join(choices)}.", field=what)
    return value


def validate_note(value: object) -> str:
    """Return ``value`` if it can be a job's note (shown in listings): one line of printable text, not too long."""
    if value in (None, ""):
        return ""
    if not isinstance(value, str) or not value.isprintable():
        raise InvalidJob(
            f"Invalid note {value!r:.60}: use one line of plain text, e.g. 'paused until the API is back'.",
            field="note",
        )
    if len(value) > config.MAX_NOTE_CHARS:
        raise InvalidJob(
            f"The note is too long ({len(value)} characters); keep it to {config.MAX_NOTE_CHARS}, "
            "e.g. 'paused until the API is back'.",
            field="note",
        )
    return value


def validate_extra(value: object) -> object:
    """Return ``value`` if it can be a job's extra (text or JSON data within the size limit)."""
    if value is None:
        return None
    try:
        encoded = json.dumps(value)
    except (TypeError, ValueError):
        raise InvalidJob(
            f"Invalid extra of type {type(value).__name__}: use text, or JSON-serialisable data such as a dict.",
            field="extra",
        ) from None
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:  # JSON has no NaN or infinity: stored, they would come back as null
        raise InvalidJob(
            "Invalid extra: it holds NaN or infinity, which JSON cannot carry; use null, a string or a number.",
            field="extra",
        ) from None
    if len(encoded.encode()) > config.MAX_EXTRA_BYTES:
        raise InvalidJob(
            f"Extra is too large ({len(encoded.encode())} bytes); the limit is {config.MAX_EXTRA_BYTES} bytes. "
            "Keep large data in a file or the kvdb and pass its name.",
            field="extra",
        )
    return value


__all__ = ["KINDS", "MISFIRE_POLICIES", "OVERLAP_POLICIES", "JobSpec", "JobState", "replace"]
