"""How much history a job keeps (``history_keep``): a count of finished runs, or an age.

``1000`` (or ``"1000"``) keeps the newest 1,000 finished runs of the job; ``"30d"`` keeps those finished in the
last 30 days. ``None``: the runner's default, ``NBSCHED_HISTORY_KEEP`` (unset: everything is kept).
A run still running is never deleted, and does not count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ..errors import InvalidInput, InvalidJob
from .timeparse import format_duration, parse_duration

KEEP_HELP = "use a number of finished runs to keep, e.g. 1000, or an age, e.g. '30d' or '12h'"


@dataclass(frozen=True)
class Keep:
    """A rule of ``history_keep``, read: ``count`` newest finished runs, or those finished within ``age``."""

    count: int | None = None
    age: timedelta | None = None

    def before(self, now: datetime) -> datetime | None:
        """Runs finished before this go (an age rule); None for a count rule."""
        return None if self.age is None else now - self.age


def parse_keep(value: object, field: str = "history_keep") -> int | str | None:
    """``history_keep`` as given, normalised: a whole number (a count), a duration text such as ``"30d"``,
    or None. Refused with ``InvalidJob`` naming ``field``."""
    if value in (None, ""):
        return None
    given = value
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise InvalidJob(f"Invalid {field} {given!r}: keep at least 1 run; {KEEP_HELP}.", field=field)
        return value
    if isinstance(value, str | timedelta):
        try:
            age = parse_duration(value, what=field)
        except InvalidInput:
            pass
        else:
            if age > timedelta(0):
                return value.strip() if isinstance(value, str) else format_duration(age)
    raise InvalidJob(f"Invalid {field} {given!r:.60}: {KEEP_HELP}.", field=field)


def keep_rule(value: int | str | None) -> Keep | None:
    """The rule of a normalised ``history_keep`` (see ``parse_keep``)."""
    if value is None:
        return None
    if isinstance(value, int):
        return Keep(count=value)
    return Keep(age=parse_duration(value))
