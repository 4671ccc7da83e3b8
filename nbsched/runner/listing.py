"""Listings that page: the jobs a front end shows one page of, filtered and sorted in the runner.

A page is chosen among the job names: sorted by name (the engine's jobs come from the store in name
order and new ones are added at the end, so sorting them again is one pass), filtered only when a
filter is given, sorted by time on the times themselves; only the jobs of the page become records, so
a page of 100 costs a few milliseconds with 100,000 jobs. What a filter and a sort may say is
``model.listing``'s.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING

from ..model.listing import JobFilter, check_paging, check_sort
from .control import NO_RUNS, listed

if TYPE_CHECKING:
    from .engine import Engine


def job_page(engine: Engine, limit=None, offset=0, filter=None, sort="name") -> dict:
    """``{"total": jobs the filter selects, "offset": offset, "rows": the records of the page}``."""
    limit, offset = check_paging(limit, offset)
    chosen = JobFilter.from_wire(filter)
    key, descending = check_sort(sort)
    jobs, stats = engine.jobs, engine.stats
    names = sorted(jobs) if chosen == JobFilter() else sorted(selected(engine, chosen))
    end = None if limit is None else offset + limit
    page = [jobs[name] for name in ordered(engine, names, key, descending, end)[offset:end]]
    return {"total": len(names), "offset": offset, "rows": [listed(job, stats.get(job.uid, NO_RUNS)) for job in page]}


def ordered(engine: Engine, names: list[str], key: str, descending: bool, end: int | None) -> list[str]:
    """The first ``end`` (None: all) of ``names`` (sorted) in the order of ``key``: by name, or by time with the
    jobs that have none last (in name order) and jobs of the same time in name order (reversed with the time)."""
    if key == "name":
        return names[::-1] if descending else names
    moments = _moments(engine, names, key)
    timed = [(moment, name) for moment, name in zip(moments, names, strict=True) if moment is not None]
    if end is not None and end * 8 < len(timed):  # the first page or so: the smallest few, not all sorted
        timed = heapq.nlargest(end, timed) if descending else heapq.nsmallest(end, timed)
    else:
        timed.sort(reverse=descending)
    untimed = [name for moment, name in zip(moments, names, strict=True) if moment is None]
    return [name for _, name in timed] + untimed


def selected(engine: Engine, chosen: JobFilter) -> list[str]:
    """The names of the jobs ``chosen`` selects, in no order."""
    stats, names = engine.stats, []
    for name, job in engine.jobs.items():
        if chosen.selects(job.spec, job.state, getattr(stats.get(job.uid), "last_status", None)):
            names.append(name)
    return names


def _moments(engine: Engine, names: list[str], key: str) -> list:
    """Each job's time for ``key`` (None: it has none), in the order of ``names``."""
    jobs = engine.jobs
    if key == "next_run":
        return [job.state.next_fire if (job := jobs[name]).spec.active else None for name in names]
    stats = engine.stats
    return [getattr(stats.get(jobs[name].uid), "last_run", None) for name in names]
