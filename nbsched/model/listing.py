"""What a paged listing of jobs may ask for: its filter, its sort, its limit and offset (checked here, once).

The filter is a dict of any of ``search`` (text found, ignoring case, in the job's name or service),
``status`` (the last run's status, or ``"none"`` for a job that never ran) and ``state`` (active,
paused, finished, ended); ``sort`` is ``name``, ``next_run`` or ``last_run``, and ``-`` before it
reverses the order (``-last_run``: the most recent first). Jobs without a next or last run come last.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InvalidInput, did_you_mean
from .jobs import JOB_STATES, JobSpec, JobState, job_state
from .runs import STATUSES

#: The keys a jobs filter may have.
JOB_FILTERS = ("search", "status", "state")
#: What a jobs listing may be sorted by (``-`` before it: the other way round).
JOB_SORTS = ("name", "next_run", "last_run")
#: The ``status`` filter of jobs that never ran.
NEVER_RAN = "none"


@dataclass(frozen=True)
class JobFilter:
    """A checked jobs filter (``from_wire`` refuses a bad one, naming the key and what it takes)."""

    search: str = ""
    status: str | None = None
    state: str | None = None

    @classmethod
    def from_wire(cls, value) -> JobFilter:
        if value is None:
            return cls()
        if not isinstance(value, dict):
            raise InvalidInput(
                f"Invalid jobs filter {value!r}: use an object such as {{'search': 'sales', 'state': 'paused'}}.",
                field="filter",
            )
        unknown = [key for key in value if key not in JOB_FILTERS]
        if unknown:
            hint = did_you_mean(str(unknown[0]), JOB_FILTERS)
            raise InvalidInput(
                f"Unknown jobs filter {unknown[0]!r}.{hint} Filters: {', '.join(JOB_FILTERS)}.", field="filter"
            )
        for key, choices in (("status", (*STATUSES, NEVER_RAN)), ("state", JOB_STATES)):
            if value.get(key) not in (None, "", *choices):
                hint = did_you_mean(str(value[key]), choices)
                raise InvalidInput(
                    f"Invalid {key} filter {value[key]!r}.{hint} Use one of {', '.join(choices)}.", field=key
                )
        search = value.get("search") or ""
        if not isinstance(search, str):
            raise InvalidInput(f"Invalid search filter {search!r}: use text, e.g. 'sales'.", field="search")
        return cls(search.strip().lower(), value.get("status") or None, value.get("state") or None)

    def selects(self, spec: JobSpec, state: JobState, last_status: str | None) -> bool:
        if self.search and self.search not in spec.name.lower() and self.search not in spec.service.lower():
            return False
        if self.state is not None and job_state(spec, state) != self.state:
            return False
        return self.status is None or last_status == (None if self.status == NEVER_RAN else self.status)


def check_paging(limit, offset) -> tuple[int | None, int]:
    """``limit`` (None: no limit) and ``offset`` as whole numbers, 0 or more; a bad one is refused by name."""
    for what, value in (("limit", limit), ("offset", offset)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise InvalidInput(f"Invalid {what} {value!r}: use a whole number, 0 or more.", field=what)
    return limit, offset or 0


def check_sort(sort) -> tuple[str, bool]:
    """The key and direction (descending?) of a jobs sort such as ``-last_run``."""
    key = sort.removeprefix("-") if isinstance(sort, str) else sort
    if key not in JOB_SORTS:
        choices = [*JOB_SORTS, *(f"-{key}" for key in JOB_SORTS)]
        hint = did_you_mean(str(sort), choices)
        raise InvalidInput(f"Invalid sort {sort!r}.{hint} Use one of {', '.join(choices)}.", field="sort")
    return key, sort.startswith("-")
